"""Score recommendations against the generator's ground truth, next to a popularity baseline.

A time split: the recommendations each user had at the *cutoff* (the last one emitted before
it; by default 80% into the events) are compared with what happened after it, and with the
user's latent interests (which the topology never sees):

* **next purchase**: users who bought something new after the cutoff; a hit when one of
  those products was recommended.
* **purchase category**: the same users; a hit when a recommended product shares a category
  with one of those purchases.
* **top interest**: users with a recommendation; a hit when the user's strongest latent
  category (``Clickstream.user_preferences``) is the category of a recommended product.

The **popularity** baseline recommends to everyone the ``n`` products viewed most before the
cutoff, minus what the user already bought: no personalization, no trend awareness.

>>> from apps.personalization.generator import generate
>>> cs = generate(2_000, seed=1, users=50, products=100)
>>> t = cutoff_ms(cs)
>>> pop = popularity_recommendations(cs, t, 5)
>>> all(len(items) == 5 for items in pop.values())
True
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apps.personalization.generator import Clickstream


@dataclass(frozen=True)
class Measure:
    """One row of the quality table: hits of the app and of the baseline among ``users``."""

    name: str
    users: int
    app_hits: int
    baseline_hits: int

    @property
    def app_rate(self) -> float:
        return self.app_hits / self.users if self.users else 0.0

    @property
    def baseline_rate(self) -> float:
        return self.baseline_hits / self.users if self.users else 0.0


def categories(cs: Clickstream) -> dict[str, str]:
    """product -> category, over the initial catalog and the new products."""
    cat = {r["product_id"]: r["category"] for r in cs.catalog}
    cat.update({r["product_id"]: r["category"] for _, r in cs.catalog_updates})
    return cat


def cutoff_ms(cs: Clickstream, share: float = 0.8) -> int:
    """The event time by which ``share`` of the events happened."""
    ts: list[int] = sorted(e["ts"] for e in cs.events)
    return ts[min(int(len(ts) * share), len(ts) - 1)]


def recommendations_at(
    records: Iterable[tuple[str, dict[str, Any]]], cutoff: int
) -> dict[str, list[str]]:
    """Per user, the products of the last recommendation with ``ts < cutoff``."""
    out: dict[str, tuple[int, list[str]]] = {}
    for user, rec in records:
        if rec["ts"] < cutoff and (user not in out or rec["ts"] >= out[user][0]):
            out[user] = (rec["ts"], [i["product_id"] for i in rec["items"]])
    return {u: items for u, (_, items) in out.items()}


def _bought_before(cs: Clickstream, cutoff: int) -> dict[str, set[str]]:
    bought: dict[str, set[str]] = defaultdict(set)
    for e in cs.events:
        if e["type"] == "purchase" and e["ts"] < cutoff:
            bought[e["user_id"]].add(e["product_id"])
    return bought


def popularity_recommendations(cs: Clickstream, cutoff: int, n: int) -> dict[str, list[str]]:
    """The baseline: the most viewed products before ``cutoff``, minus each user's purchases."""
    views = Counter(e["product_id"] for e in cs.events if e["type"] == "view" and e["ts"] < cutoff)
    ranked = [pid for pid, _ in sorted(views.items(), key=lambda kv: (-kv[1], kv[0]))]
    bought = _bought_before(cs, cutoff)
    users = {e["user_id"] for e in cs.events if e["ts"] < cutoff}
    out = {}
    for u in users:
        own = bought.get(u, set())
        out[u] = [p for p in ranked[: n + len(own)] if p not in own][:n]
    return out


def quality(cs: Clickstream, app: dict[str, list[str]], cutoff: int, n: int) -> list[Measure]:
    """The three measures for the app's recommendations ``app`` (user -> products)."""
    cat = categories(cs)
    base = popularity_recommendations(cs, cutoff, n)
    before = _bought_before(cs, cutoff)
    after: dict[str, set[str]] = defaultdict(set)
    for e in cs.events:
        new = e["product_id"] not in before.get(e["user_id"], ())
        if e["type"] == "purchase" and e["ts"] >= cutoff and new:
            after[e["user_id"]].add(e["product_id"])

    def hit_product(recs: dict[str, list[str]], u: str) -> bool:
        return bool(after[u] & set(recs.get(u, ())))

    def hit_category(recs: dict[str, list[str]], u: str) -> bool:
        return bool({cat[p] for p in after[u]} & {cat[p] for p in recs.get(u, ())})

    def hit_interest(recs: dict[str, list[str]], u: str) -> bool:
        prefs = cs.user_preferences[u]
        top = max(prefs, key=lambda c: (prefs[c], c))
        return top in {cat[p] for p in recs.get(u, ())}

    buyers = sorted(after)
    with_recs = sorted(app)
    return [
        Measure(
            "next purchase recommended",
            len(buyers),
            sum(hit_product(app, u) for u in buyers),
            sum(hit_product(base, u) for u in buyers),
        ),
        Measure(
            "next purchase's category",
            len(buyers),
            sum(hit_category(app, u) for u in buyers),
            sum(hit_category(base, u) for u in buyers),
        ),
        Measure(
            "top latent interest covered",
            len(with_recs),
            sum(hit_interest(app, u) for u in with_recs),
            sum(hit_interest(base, u) for u in with_recs),
        ),
    ]


__all__ = [
    "Measure",
    "categories",
    "cutoff_ms",
    "popularity_recommendations",
    "quality",
    "recommendations_at",
]
