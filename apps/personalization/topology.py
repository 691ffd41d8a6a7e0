"""The personalization topology: sessions, catalog enrichment, affinity, trending, top-N.

Clicks (``{"event_id", "user_id", "product_id", "type", "ts"}``, keyed by user) flow through:

* **enrichment**: a stream-table join against the compacted product catalog (a global table:
  every worker holds all products, so clicks need no repartition by product; global tables
  also do not hold event time back). Clicks of unknown products are dropped.
* **sessions**: a session window per user (30 min gap) counts events, purchases and revenue;
  each session is emitted once, when it closes, to ``sessions``.
* **trending**: views re-keyed by category, counted per product in hopping windows (30 min,
  every 10 min); each closed window's top products go to ``trending-products``. The same
  category-keyed task (``attach-trending``) folds the closed windows into a popularity that
  decays with a 30 min half-life (so a quiet window does not erase what was popular), and
  holds each click until the watermark passes it, then attaches the popularity as of the
  latest window that closed before the click: a recommendation never uses later events.
* **recommendations**: per user (``recommend``), clicks re-ordered by event time (they come
  from several category tasks), a category affinity with exponential time decay (store
  ``affinity``, which also keeps the popularity lists the user's clicks carried), and the
  purchased products (store ``purchased``). A product scores ``P(category) * P(product |
  category)``: the user's decayed affinity share times the product's share of its category's
  popularity. The top ``TOP_N``, purchased products excluded, go to ``recommendations``
  whenever the set changes; the last one emitted per user stays in the store
  ``recommendations``.

The clicks source has no ``idle_timeout``: a bounded run ends event time explicitly
(``end_of_input``). With one, a run that outlasts it keeps announcing wall-clock watermarks
through the repartition topics, so ``run(until_idle=True)`` never sees the input drained.

>>> topo = build_topology()
>>> sorted(s.spec.name for sub in topo.compile().subtopologies for s in sub.stores)
['affinity', 'attach-trending-timers', 'category-buffer', 'purchased', 'recommend-timers', \
'recommendations', 'sessions', 'trend-latest', 'trending', 'user-buffer']
"""

from __future__ import annotations

import heapq
import os
from typing import Any

import streams as st
from streams import agg, windows

EVENTS = "clicks"
CATALOG = "product-catalog"
TRENDING = "trending-products"
SESSIONS = "sessions"
RECOMMENDATIONS = "recommendations"
APP_ID = "personalization"

SESSION_GAP_MS = 30 * 60_000
TREND_WINDOW_MS = 30 * 60_000
TREND_ADVANCE_MS = 10 * 60_000
TREND_TOP = 15  # products kept per category and window
POPULARITY_HALF_LIFE_MS = 30 * 60_000  # trending = window counts decayed with this half-life
POPULARITY_KEEP = 60  # products tracked per category
MAX_OUT_OF_ORDER_MS = 2_000
HALF_LIFE_MS = 6 * 3_600_000  # affinity halves after 6 hours without reinforcement
WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
TOP_N = 10
RANKED_CATEGORIES = 4  # candidates come from the user's strongest categories
MIN_SCORE = 1e-3  # decayed affinities below this are forgotten
TICK_MS = 1_000  # clicks wait for the watermark in one-second groups


def topics(prefix: str = "") -> dict[str, str]:
    """The topic names, with ``prefix`` (isolates runs on a shared broker)."""
    names = {
        "events": EVENTS,
        "catalog": CATALOG,
        "trending": TRENDING,
        "sessions": SESSIONS,
        "recommendations": RECOMMENDATIONS,
    }
    return {k: prefix + v for k, v in names.items()}


def _enrich(click: dict[str, Any], product: dict[str, Any]) -> dict[str, Any]:
    return {**click, "category": product["category"], "price": product["price"]}


def _count_product(acc: dict[str, int], view: dict[str, Any]) -> dict[str, int]:
    pid = view["product_id"]
    acc[pid] = acc.get(pid, 0) + 1
    return acc


def _merge_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, n in b.items():
        out[k] = out.get(k, 0) + n
    return out


def top_products(counts: dict[str, int], k: int = TREND_TOP) -> list[list[Any]]:
    """The ``k`` most viewed products, most viewed first (ties by product id)."""
    best = heapq.nsmallest(k, counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [[pid, n] for pid, n in best]


def _trend_record(w: dict[str, Any]) -> dict[str, Any]:
    return {
        "category": w["category"],
        "window_start": w["window_start"],
        "window_end": w["window_end"],
        "views": w["views"],
        "top": top_products(w["products"]),
    }


def _buffer(ctx: st.ProcessorContext, store: str) -> None:
    """Hold a click until the watermark passes it: per second of event time, one timer."""
    v = ctx.value
    at = -(-v["ts"] // TICK_MS) * TICK_MS
    buf = ctx.store(store)
    pending = buf.get(at)
    if pending is None:
        ctx.schedule(at, key=at)
        pending = []
    pending.append(v)
    buf.put(at, pending)


def _release(ctx: st.ProcessorContext, store: str) -> list[dict[str, Any]]:
    """The clicks of the second whose timer fired, in event-time order."""
    buf = ctx.store(store)
    clicks: list[dict[str, Any]] = buf.get(ctx.key) or []
    buf.delete(ctx.key)
    return sorted(clicks, key=lambda c: (c["ts"], c["event_id"]))


def _popularity(state: dict[str, Any] | None, w: dict[str, Any]) -> dict[str, Any]:
    """Fold a closed window into the category's decayed popularity; add its snapshot."""
    if state is None:
        state = {"end": w["window_end"], "total": 0.0, "pop": {}, "snaps": []}
    f = 0.5 ** (max(w["window_end"] - state["end"], 0) / POPULARITY_HALF_LIFE_MS)
    pop = {p: x * f for p, x in state["pop"].items()}
    for pid, n in w["top"]:
        pop[pid] = pop.get(pid, 0.0) + n
    pop = dict(heapq.nlargest(POPULARITY_KEEP, pop.items(), key=_second))
    total = state["total"] * f + w["views"]
    best = heapq.nsmallest(TREND_TOP, pop.items(), key=lambda kv: (-kv[1], kv[0]))
    snap = {
        "end": w["window_end"],
        "views": round(total, 3),
        "top": [[p, round(x, 3)] for p, x in best],
    }
    return {"end": w["window_end"], "total": total, "pop": pop, "snaps": [*state["snaps"], snap]}


def attach_trending(ctx: st.ProcessorContext) -> None:
    """Per category: fold closed trending windows into a decayed popularity (store
    ``trend-latest``); hold clicks until event time passes them."""
    v = ctx.value
    if "window_start" not in v:
        _buffer(ctx, "category-buffer")
        return
    latest = ctx.store("trend-latest")
    latest.put(ctx.key, _popularity(latest.get(ctx.key), v))


def release_with_trend(ctx: st.ProcessorContext) -> None:
    """Timer: attach to each held click the popularity as of the latest window that closed
    before it (never one that counts later events; ``None`` before the first)."""
    latest = ctx.store("trend-latest")
    now = ctx.key
    seen: set[str] = set()
    for v in _release(ctx, "category-buffer"):
        cat = v["category"]
        seen.add(cat)
        state = latest.get(cat)
        snaps = state["snaps"] if state else []
        trend = next((s for s in reversed(snaps) if s["end"] <= v["ts"]), None)
        ctx.forward(cat, {**v, "trend": trend}, timestamp=v["ts"])
    for cat in seen:  # later clicks are later than ``now``: one older snapshot is enough
        state = latest.get(cat)
        done = [s for s in state["snaps"] if s["end"] <= now] if state else []
        if len(done) > 1:
            later = [s for s in state["snaps"] if s["end"] > now]
            latest.put(cat, {**state, "snaps": [done[-1], *later]})


def rank(
    scores: dict[str, float],
    trends: dict[str, dict[str, Any]],
    exclude: set[str] | frozenset[str],
    n: int = TOP_N,
) -> list[tuple[float, str, str]]:
    """Top ``n`` ``(score, product, category)`` by affinity share(category) * trending
    share(product), best first (ties by product id), products in ``exclude`` left out.

    >>> trends = {"books": {"views": 10, "top": [["b1", 6], ["b2", 4]]},
    ...           "toys": {"views": 5, "top": [["t1", 5]]}}
    >>> [pid for _, pid, _ in rank({"books": 3.0, "toys": 1.0}, trends, {"b1"})]
    ['b2', 't1']
    """
    total = sum(scores.values())
    if total <= 0:
        return []
    cands: list[tuple[float, str, str]] = []
    for cat, s in heapq.nlargest(RANKED_CATEGORIES, scores.items(), key=_second):
        tr = trends.get(cat)
        if not tr or not tr["views"]:
            continue
        w = s / total / tr["views"]
        left = n  # a top list is sorted: n products per category are enough
        for pid, views in tr["top"]:
            if pid not in exclude:
                cands.append((w * views, pid, cat))
                left -= 1
                if not left:
                    break
    cands.sort(key=_best_first)
    return cands[:n]


def _second(kv: tuple[str, float]) -> float:
    return kv[1]


def _best_first(c: tuple[float, str, str]) -> tuple[float, str]:
    return -c[0], c[1]


def hold_for_user(ctx: st.ProcessorContext) -> None:
    """Clicks reach a user's task from several category tasks: re-order them by event time."""
    _buffer(ctx, "user-buffer")


def recommend(ctx: st.ProcessorContext) -> None:
    """Timer: apply each released click to its user; emit the top-N when it changes."""
    for v in _release(ctx, "user-buffer"):
        _recommend_one(ctx, v["user_id"], v)


def _recommend_one(ctx: st.ProcessorContext, user: str, v: dict[str, Any]) -> None:
    t, cat = v["ts"], v["category"]
    affinity = ctx.store("affinity")
    prof = affinity.get(user)
    if prof is None:
        prof = {"ts": t, "scores": {}, "trends": {}}
    decay = 0.5 ** (max(t - prof["ts"], 0) / HALF_LIFE_MS)
    scores = {c: s * decay for c, s in prof["scores"].items() if s * decay >= MIN_SCORE}
    scores[cat] = scores.get(cat, 0.0) + WEIGHTS[v["type"]]
    trends = prof["trends"]
    if v.get("trend") is not None:
        trends[cat] = v["trend"]
    affinity.put(user, {"ts": max(t, prof["ts"]), "scores": scores, "trends": trends})

    purchased = ctx.store("purchased")
    bought: list[str] = purchased.get(user) or []
    if v["type"] == "purchase" and v["product_id"] not in bought:
        bought = [*bought, v["product_id"]]
        purchased.put(user, bought)

    best = rank(scores, trends, set(bought))
    if not best:
        return
    recs = ctx.store("recommendations")
    prev = recs.get(user)
    if prev is not None and {i["product_id"] for i in prev["items"]} == {p for _, p, _ in best}:
        return  # the same list (scores move with every click; only changes are news)
    items = [{"product_id": p, "category": c, "score": round(x, 5)} for x, p, c in best]
    rec = {"user_id": user, "ts": t, "items": items}
    recs.put(user, rec)
    ctx.forward(user, rec, timestamp=t)


def _purchase(v: dict[str, Any]) -> int:
    return 1 if v["type"] == "purchase" else 0


def _revenue(v: dict[str, Any]) -> float:
    return float(v["price"]) if v["type"] == "purchase" else 0.0


def build_topology(app_id: str = APP_ID, prefix: str = "") -> st.Topology:
    """The topology; ``prefix`` goes in front of the application id and every topic name."""
    names = topics(prefix)
    topo = st.Topology(prefix + app_id)
    clicks = topo.source(
        names["events"],
        timestamp="ts",
        max_out_of_orderness=MAX_OUT_OF_ORDER_MS,
    )  # no idle_timeout: see the module docstring
    catalog = topo.global_table(names["catalog"], name="catalog")
    enriched = clicks.join(catalog, _enrich, key="product_id", name="enrich")

    (
        enriched.window("sessions", windows.session(ms=SESSION_GAP_MS))
        .aggregate(
            events=agg.count(),
            purchases=agg.sum(_purchase),
            revenue=agg.sum(_revenue),
        )
        .to(names["sessions"], name="sessions-out")
    )

    by_category = enriched.key_by("category", name="key-by-category").repartition("by-category")
    trending = (
        by_category.filter(st.col("type") == "view", name="views")
        .window("trending", windows.hopping(ms=TREND_WINDOW_MS, advance=TREND_ADVANCE_MS))
        .aggregate(
            category=agg.first("category"),
            views=agg.count(),
            products=agg.custom(
                init=dict, add=_count_product, merge=_merge_counts, name="per-product"
            ),
        )
        .map_values(_trend_record, name="trend-top")
    )
    trending.to(names["trending"], name="trending-out")
    (
        by_category.merge(trending, name="clicks-and-trends")
        .process(
            "attach-trending",
            attach_trending,
            stores=["trend-latest", "category-buffer"],
            on_timer=release_with_trend,
        )
        .key_by("user_id", name="key-by-user")
        .repartition("by-user")
        .process(
            "recommend",
            hold_for_user,
            stores=["user-buffer", "affinity", "purchased", "recommendations"],
            on_timer=recommend,
        )
        .to(names["recommendations"], name="recommendations-out")
    )
    return topo


def from_env() -> st.Topology:
    """For ``streams run apps.personalization.topology:from_env``: the topic/app-id prefix
    comes from ``$STREAMS_DEMO_PREFIX`` (what ``--workers`` passes to its worker processes)."""
    return build_topology(prefix=os.environ.get("STREAMS_DEMO_PREFIX", ""))


topology = build_topology()

__all__ = [
    "CATALOG",
    "EVENTS",
    "RECOMMENDATIONS",
    "SESSIONS",
    "TRENDING",
    "attach_trending",
    "build_topology",
    "from_env",
    "rank",
    "recommend",
    "top_products",
    "topics",
    "topology",
]
