"""The personalization topology against the generator's ground truth (TopologyTestDriver)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import streams as st
from apps.personalization.evaluate import (
    categories,
    cutoff_ms,
    popularity_recommendations,
    quality,
    recommendations_at,
)
from apps.personalization.generator import Clickstream, generate
from apps.personalization.topology import (
    CATALOG,
    EVENTS,
    RECOMMENDATIONS,
    SESSIONS,
    TOP_N,
    TREND_ADVANCE_MS,
    TREND_TOP,
    TREND_WINDOW_MS,
    TRENDING,
    build_topology,
    top_products,
)

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    cs: Clickstream
    recs: list[st.testing.Record]
    sessions: list[tuple[str, dict[str, Any]]]
    trending: list[dict[str, Any]]
    stored: dict[str, Any]


def _run(cs: Clickstream, chunk: int = 1_500, partitions: int = 2) -> Run:
    d = st.TopologyTestDriver(build_topology(), partitions=partitions)
    d.pipe_many(CATALOG, [(r["product_id"], r, ts) for ts, r in cs.catalog_records()])
    clicks = [(e["user_id"], e, e["ts"]) for e in cs.events]
    for i in range(0, len(clicks), chunk):  # micro-batches, as a worker fetches them
        d.pipe_many(EVENTS, clicks[i : i + chunk])
    d.end_of_input()
    store = d.store("recommendations")
    users = {e["user_id"] for e in cs.events}
    run = Run(
        cs,
        d.read(RECOMMENDATIONS),
        d.read_key_values(SESSIONS),
        d.read_values(TRENDING),
        {u: store.get(u) for u in users if u in store},
    )
    d.close()
    return run


@pytest.fixture(scope="module")
def run() -> Run:
    return _run(generate(24_000, seed=5, users=500, products=400))


def test_sessions_are_the_true_sessions(run: Run) -> None:
    cs = run.cs
    found = {(k, v["window_start"], v["window_end"]) for k, v in run.sessions}
    truth = {(u, s, e) for u, ss in cs.sessions.items() for s, e in ss}
    assert len(run.sessions) == len(found) == len(truth)  # each emitted once, when it closed
    assert found == truth
    purchases: Counter[tuple[str, int]] = Counter()
    starts = {u: [s for s, _ in ss] for u, ss in cs.sessions.items()}
    for e in cs.events:
        start = max(s for s in starts[e["user_id"]] if s <= e["ts"])
        purchases[(e["user_id"], start)] += e["type"] == "purchase"
    for user, v in run.sessions:
        assert v["purchases"] == purchases[(user, v["window_start"])]
        assert (v["revenue"] > 0) == (v["purchases"] > 0)


def _direct_view_counts(cs: Clickstream) -> dict[tuple[str, int], Counter[str]]:
    cat = categories(cs)
    counts: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for e in cs.events:
        if e["type"] != "view":
            continue
        ts = e["ts"]
        last = ts - ts % TREND_ADVANCE_MS
        for start in range(last - TREND_WINDOW_MS + TREND_ADVANCE_MS, last + 1, TREND_ADVANCE_MS):
            counts[(cat[e["product_id"]], start)][e["product_id"]] += 1
    return counts


def test_trending_counts_equal_a_direct_count(run: Run) -> None:
    direct = _direct_view_counts(run.cs)
    seen = set()
    for w in run.trending:
        key = (w["category"], w["window_start"])
        assert key not in seen  # every window once (emit="final")
        seen.add(key)
        assert w["window_end"] - w["window_start"] == TREND_WINDOW_MS
        counts = direct[key]
        assert w["views"] == sum(counts.values())
        assert w["top"] == top_products(counts, TREND_TOP)
    assert seen == set(direct)
    busiest = max(run.trending, key=lambda w: w["views"])
    assert len(busiest["top"]) == TREND_TOP and busiest["top"][0][1] > busiest["top"][-1][1]


def test_purchased_items_are_never_recommended(run: Run) -> None:
    bought: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in run.cs.events:
        if e["type"] == "purchase":
            bought[e["user_id"]].append((e["ts"], e["product_id"]))
    checked = 0
    for r in run.recs:
        before = {p for t, p in bought[r.key] if t <= r.value["ts"]}
        items = {i["product_id"] for i in r.value["items"]}
        assert not items & before, (r.key, r.value["ts"])
        checked += bool(before)
    assert checked > 1_000  # many recommendations came after a purchase


def test_store_holds_the_last_emitted_recommendation(run: Run) -> None:
    last: dict[str, Any] = {}
    for r in run.recs:  # per user, one partition, in order
        assert r.timestamp == r.value["ts"]
        last[r.key] = r.value
    assert len(last) > 450
    assert run.stored == last


def test_recommendations_are_ranked_catalog_products(run: Run) -> None:
    cat = categories(run.cs)
    for r in run.recs:
        items = r.value["items"]
        assert 0 < len(items) <= TOP_N
        assert len({i["product_id"] for i in items}) == len(items)
        scores = [i["score"] for i in items]
        assert scores == sorted(scores, reverse=True)
        assert all(cat[i["product_id"]] == i["category"] for i in items)


def test_heavy_viewers_of_a_category_get_it_recommended(run: Run) -> None:
    cat = categories(run.cs)
    views: dict[str, Counter[str]] = defaultdict(Counter)
    for e in run.cs.events:
        if e["type"] == "view":
            views[e["user_id"]][cat[e["product_id"]]] += 1
    shares = []
    for user, counts in views.items():
        top, n = counts.most_common(1)[0]
        if n >= 15 and n >= 0.5 * sum(counts.values()):
            recommended = [i["category"] for i in run.stored[user]["items"]]
            assert top in recommended, (user, counts, recommended)
            shares.append(recommended.count(top) / len(recommended))
    assert len(shares) >= 30
    assert sum(shares) / len(shares) >= 0.5  # most of the list, on average


def test_a_crafted_user_gets_books_without_what_she_bought() -> None:
    cs_catalog = [
        {"product_id": f"{c}{i}", "category": c, "price": 10.0}
        for c in ("b", "t")
        for i in range(5)
    ]
    d = st.TopologyTestDriver(build_topology())
    for r in cs_catalog:
        d.pipe(CATALOG, r, key=r["product_id"], timestamp=0)
    minute = 60_000
    clicks = []
    for m in range(0, 90, 2):  # background traffic: b3 and t1 are popular
        for i, pid in enumerate(("b3", "b3", "b0", "t1", "t1", "t2")):
            clicks.append((m * minute + i, f"bg{m}", pid, "view"))
    for i, pid in enumerate(("b0", "b3", "b3", "b4", "b3")):
        clicks.append((45 * minute + i * 10_000 + 7, "ann", pid, "view"))
    clicks.append((46 * minute + 7, "ann", "b3", "add_to_cart"))
    clicks.append((47 * minute + 7, "ann", "b3", "purchase"))
    clicks.append((48 * minute + 7, "ann", "t1", "view"))
    for n, (ts, user, pid, kind) in enumerate(sorted(clicks)):  # in event-time order
        ev = {"event_id": f"e{n}", "user_id": user, "product_id": pid, "type": kind, "ts": ts}
        d.pipe(EVENTS, ev, key=user, timestamp=ts)
    d.end_of_input()
    recs = [r.value for r in d.read(RECOMMENDATIONS) if r.key == "ann"]
    assert recs and recs[0]["items"][0]["product_id"] == "b3"  # popular in her category
    final = [i["product_id"] for i in recs[-1]["items"]]
    assert "b3" not in final  # bought
    assert final[0] == "b0"  # her category's most popular product she has not bought
    assert final == ["b0", "t1", "t2"]  # then her other category's; b4 never trended
    assert d.store("recommendations").get("ann") == recs[-1]


def test_recommendations_beat_popularity(run: Run) -> None:
    cutoff = cutoff_ms(run.cs)
    at = recommendations_at(((r.key, r.value) for r in run.recs), cutoff)
    assert all(
        len(items) <= TOP_N for items in popularity_recommendations(run.cs, cutoff, TOP_N).values()
    )
    rows = {m.name: m for m in quality(run.cs, at, cutoff, TOP_N)}
    nxt = rows["next purchase recommended"]
    assert nxt.users >= 50
    assert nxt.app_rate > nxt.baseline_rate
    interest = rows["top latent interest covered"]
    assert interest.users >= 450
    assert interest.app_rate >= 0.9 > interest.baseline_rate


def test_the_demo_runs_end_to_end() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "apps.personalization", "--events", "6000", "--users", "150"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    assert "events/s" in r.stdout and r.stdout.count("REC u-") >= 3
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("sessions"))
    found, total = line.split("(")[1].split(" of the ")[0], line.split(" of the ")[1].split()[0]
    assert found == total  # every true session found exactly
    assert "next purchase recommended" in r.stdout


def test_workers_need_kafka() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "apps.personalization", "--workers", "2"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert r.returncode == 2 and "--workers N needs --bootstrap" in r.stderr


def test_recommendations_fire_as_event_time_moves() -> None:
    """Clicks wait for the watermark behind two repartition topics (event-time timers), and
    are released as it moves, not only at the end of the input."""
    cs = generate(6_000, seed=2, users=100, products=200)
    d = st.TopologyTestDriver(build_topology(), partitions=2)
    d.pipe_many(CATALOG, [(r["product_id"], r, ts) for ts, r in cs.catalog_records()])
    clicks = [(e["user_id"], e, e["ts"]) for e in cs.events]
    half = len(clicks) // 2
    d.pipe_many(EVENTS, clicks[:half])
    d.pipe_many(EVENTS, clicks[half : half + 100])
    early = d.read(RECOMMENDATIONS)
    assert len(early) > 100
    assert max(r.timestamp for r in early) <= clicks[half + 99][2]
