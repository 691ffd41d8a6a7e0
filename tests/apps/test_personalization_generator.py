"""Synthetic clickstream: schema, determinism, sessions, funnel, affinity and trending."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

import pytest

from apps.personalization.generator import (
    CATEGORIES,
    EVENT_TYPES,
    SESSION_GAP_MS,
    Clickstream,
    generate,
)

N = 200_000


@pytest.fixture(scope="module")
def cs() -> Clickstream:
    return generate(N, seed=7)


def _categories(cs: Clickstream) -> dict[str, str]:
    cat = {r["product_id"]: r["category"] for r in cs.catalog}
    cat.update({r["product_id"]: r["category"] for _, r in cs.catalog_updates})
    return cat


def _by_user(cs: Clickstream) -> dict[str, list[dict[str, Any]]]:
    users: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in cs.events:
        users[ev["user_id"]].append(ev)
    for evs in users.values():
        evs.sort(key=lambda e: e["ts"])
    return users


def test_deterministic_by_seed() -> None:
    a = generate(5_000, seed=3, users=300, products=200)
    b = generate(5_000, seed=3, users=300, products=200)
    c = generate(5_000, seed=4, users=300, products=200)
    assert a == b
    assert a.events != c.events


def test_schema(cs: Clickstream) -> None:
    assert len(cs.events) == N
    assert len(cs.catalog) == 2_000 and len(cs.user_preferences) == 5_000
    for rec in cs.catalog:
        assert set(rec) == {"product_id", "category", "price"}
        assert rec["category"] in CATEGORIES
        assert isinstance(rec["price"], float) and rec["price"] > 0
    assert len({r["category"] for r in cs.catalog}) == len(CATEGORIES)
    assert len({e["event_id"] for e in cs.events}) == N
    for ev in cs.events:
        assert tuple(ev) == ("event_id", "user_id", "product_id", "type", "ts")
        assert ev["type"] in EVENT_TYPES
        assert isinstance(ev["ts"], int)


def test_catalog_updates(cs: Clickstream) -> None:
    ts = [t for t, _ in cs.catalog_updates]
    assert ts == sorted(ts) and cs.start_ms <= ts[0] and ts[-1] <= cs.end_ms
    known = {r["product_id"] for r in cs.catalog}
    new = {r["product_id"]: t for t, r in cs.catalog_updates if r["product_id"] not in known}
    changes = [r for _, r in cs.catalog_updates if r["product_id"] in known]
    assert len(new) == 40 and len(changes) >= 100
    used = Counter(e["product_id"] for e in cs.events)
    assert any(p in used for p in new)  # new products are actually browsed ...
    for ev in cs.events:
        if ev["product_id"] in new:  # ... but only once they exist
            assert ev["ts"] >= new[ev["product_id"]]
    assert set(used) <= known | set(new)


def test_small_disorder(cs: Clickstream) -> None:
    ts = [e["ts"] for e in cs.events]
    running = ts[0]
    late = 0
    for t in ts[1:]:
        assert t >= running - 2_000
        late += t < running
        running = max(running, t)
    assert late > 0


def test_sessions(cs: Clickstream) -> None:
    users = _by_user(cs)
    assert set(users) == set(cs.sessions)
    for user, evs in users.items():
        found: list[tuple[int, int]] = []
        start = prev = evs[0]["ts"]
        for ev in evs[1:]:
            gap = ev["ts"] - prev
            if gap > SESSION_GAP_MS:
                found.append((start, prev))
                start = ev["ts"]
            else:
                assert 5_000 <= gap <= 180_000  # within a session: 5 s - 3 min
            prev = ev["ts"]
        found.append((start, prev))
        truth = cs.sessions[user]
        assert found == truth
        for (_, end), (nxt, _) in itertools.pairwise(truth):
            assert nxt - end > SESSION_GAP_MS


def test_funnel(cs: Clickstream) -> None:
    c = Counter(e["type"] for e in cs.events)
    assert 0.07 <= c["add_to_cart"] / c["view"] <= 0.14
    assert 0.015 <= c["purchase"] / c["view"] <= 0.05
    assert c["purchase"] < c["add_to_cart"] < c["view"]


def test_purchases_only_of_viewed_products(cs: Clickstream) -> None:
    bought: dict[str, set[str]] = defaultdict(set)
    for user, evs in _by_user(cs).items():
        viewed: set[str] = set()
        carted: set[str] = set()
        for ev in evs:
            if ev["type"] == "view":
                viewed.add(ev["product_id"])
            elif ev["type"] == "add_to_cart":
                assert ev["product_id"] in viewed
                carted.add(ev["product_id"])
            else:
                assert ev["product_id"] in viewed and ev["product_id"] in carted
                bought[user].add(ev["product_id"])
    assert dict(bought) == cs.purchases


def test_views_skew_to_preferred_categories(cs: Clickstream) -> None:
    cat = _categories(cs)
    views: dict[str, Counter[str]] = defaultdict(Counter)
    for ev in cs.events:
        if ev["type"] == "view":
            views[ev["user_id"]][cat[ev["product_id"]]] += 1
    shares = []
    for user, counts in views.items():
        n = sum(counts.values())
        if n < 10:
            continue
        prefs = cs.user_preferences[user]
        assert abs(sum(prefs.values()) - 1) < 1e-9
        top3 = sorted(prefs, key=prefs.__getitem__, reverse=True)[:3]
        shares.append(sum(counts[c] for c in top3) / n)
    assert len(shares) > 1_000
    assert sum(shares) / len(shares) >= 0.6


def test_trending_products_are_boosted(cs: Clickstream) -> None:
    cat = _categories(cs)
    views_in: Counter[str] = Counter()
    cat_in: Counter[str] = Counter()
    windows = {pid: (c, t0, t1) for c, ws in cs.trending.items() for pid, t0, t1 in ws}
    assert set(cs.trending) == set(CATEGORIES)
    by_cat_events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in cs.events:
        if ev["type"] == "view":
            by_cat_events[cat[ev["product_id"]]].append(ev)
    boosted = 0
    for pid, (c, t0, t1) in windows.items():
        inside = [e for e in by_cat_events[c] if t0 <= e["ts"] < t1]
        outside = [e for e in by_cat_events[c] if not t0 <= e["ts"] < t1]
        share_in = sum(e["product_id"] == pid for e in inside) / max(1, len(inside))
        share_out = sum(e["product_id"] == pid for e in outside) / max(1, len(outside))
        views_in[pid] = len(inside)
        cat_in[c] += 1
        boosted += share_in > 3 * share_out and share_in > 0.05
    assert boosted >= 0.9 * len(windows)
