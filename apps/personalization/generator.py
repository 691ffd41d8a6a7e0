"""Synthetic clickstream with sessions, a product catalog and ground truth (personalization demo).

Data model
----------
- *Catalog*: ``products`` (default 2,000) records ``{"product_id", "category", "price"}`` over
  ``CATEGORIES`` (20). ``Clickstream.catalog`` is the initial state of a compacted catalog
  topic; ``Clickstream.catalog_updates`` is a time-ordered list of ``(ts, record)``: price
  changes (~5% of products) and a few new products (~2%), which only appear in events after
  their introduction. The latest record per ``product_id`` wins.
- *Users* (default 5,000) have latent category preferences: 2-4 favourite categories with
  Dirichlet(1) weights (``Clickstream.user_preferences``, the ground truth for affinity).
  ~88% of a user's product picks come from those categories, the rest from any category.
  Within a category products follow a Zipf-like popularity.
- *Events* ``{"event_id", "user_id", "product_id", "type", "ts"}`` with ``type`` one of
  ``"view"``, ``"add_to_cart"``, ``"purchase"`` (about 100 : 10 : 3). A cart is always of the
  product just viewed and a purchase always of a product in the session's cart, so users only
  buy what they viewed. Events come in sessions: within a session events are 5 s - 3 min apart,
  and sessions of one user are more than 30 minutes apart (``Clickstream.sessions`` lists the
  true ``(start_ms, end_ms)`` per user). ``Clickstream.events`` is in arrival order: sorted by
  ``ts`` except for a delivery delay of at most 2 s.
- *Trending*: per category a few products get a temporary boost (~30% of the category's picks)
  in a time window (``Clickstream.trending``).

Example
-------
>>> cs = generate(20_000, seed=1, users=500, products=300)
>>> len(cs.events), len(cs.catalog), len(cs.user_preferences)
(20000, 300, 500)
>>> sorted(cs.events[0])
['event_id', 'product_id', 'ts', 'type', 'user_id']
>>> all(abs(sum(w.values()) - 1) < 1e-6 for w in cs.user_preferences.values())
True
>>> max(a["ts"] - b["ts"] for a, b in zip(cs.events, cs.events[1:])) <= 2_000
True
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

__all__ = [
    "CATEGORIES",
    "EVENT_TYPES",
    "SESSION_GAP_MS",
    "Clickstream",
    "generate",
    "write_jsonl",
]

CATEGORIES: Final = (
    "electronics",
    "phones",
    "computers",
    "audio",
    "gaming",
    "books",
    "fashion_women",
    "fashion_men",
    "shoes",
    "beauty",
    "home",
    "kitchen",
    "garden",
    "toys",
    "sports",
    "outdoor",
    "grocery",
    "pets",
    "baby",
    "jewelry",
)
# median price per category (EUR)
_PRICE: Final = dict(
    zip(
        CATEGORIES,
        (120, 400, 700, 80, 50, 15, 45, 45, 70, 25, 40, 30, 35, 25, 50, 60, 6, 20, 30, 150),
        strict=True,
    )
)
EVENT_TYPES: Final = ("view", "add_to_cart", "purchase")
SESSION_GAP_MS: Final = 30 * 60_000  # sessions are separated by more than this
DEFAULT_START_MS: Final = 1_717_200_000_000  # 2024-06-01T00:00:00Z

MIN_STEP_MS: Final = 5_000  # within a session, events are 5 s ...
MAX_STEP_MS: Final = 180_000  # ... to 3 min apart
MIN_BREAK_MS: Final = SESSION_GAP_MS + 60_000  # true gaps between sessions: > 31 min
MAX_DELAY_MS: Final = 2_000  # arrival order differs from ts order by at most this
EXPLORE: Final = 0.12  # share of picks from a random category instead of the favourites
TREND_BOOST: Final = 0.3  # share of a category's picks that go to an active trending product
CART_PROB: Final = 0.12  # after a view, chance of adding that product to the cart
BUY_PROB: Final = 0.07  # per step, chance of buying something from a non-empty cart


@dataclass
class Clickstream:
    """Generated clickstream, catalog and the ground truth behind them."""

    events: list[dict[str, Any]]
    """Events in arrival order (``ts`` order up to a 2 s delivery delay)."""
    catalog: list[dict[str, Any]]
    """Initial catalog records (one per product)."""
    catalog_updates: list[tuple[int, dict[str, Any]]]
    """``(ts, record)`` catalog changes in time order: price changes and new products."""
    user_preferences: dict[str, dict[str, float]]
    """Ground truth affinity: user -> favourite category -> weight (weights sum to 1)."""
    sessions: dict[str, list[tuple[int, int]]]
    """True sessions per user: ``(first ts, last ts)``, in time order, gaps > 30 min."""
    trending: dict[str, list[tuple[str, int, int]]]
    """Per category: ``(product_id, start_ms, end_ms)`` windows of boosted popularity."""
    purchases: dict[str, set[str]]
    """Products each user bought."""
    start_ms: int = DEFAULT_START_MS
    end_ms: int = DEFAULT_START_MS

    def catalog_records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """The catalog topic: initial records at ``start_ms``, then the updates."""
        for rec in self.catalog:
            yield self.start_ms, rec
        yield from self.catalog_updates


def write_jsonl(path: str | Path, clickstream: Clickstream) -> int:
    """Write the events as JSON lines (arrival order); returns the number of lines."""
    enc = msgspec.json.Encoder()
    with open(path, "wb") as f:
        for ev in clickstream.events:
            f.write(enc.encode(ev) + b"\n")
    return len(clickstream.events)


def generate(
    n_events: int,
    seed: int = 7,
    users: int = 5_000,
    products: int = 2_000,
    start_ms: int = DEFAULT_START_MS,
    duration_ms: int | None = None,
) -> Clickstream:
    """Generate exactly ``n_events`` events for ``users`` users over ``products`` products.

    ``duration_ms`` is the nominal period over which sessions are spread (default: ~7 minutes
    per event per user, at least 2 hours); very active users may run past it, since session
    gaps always stay above 30 minutes.
    """
    if n_events < 0 or users < 1 or products < len(CATEGORIES):
        raise ValueError(f"need n_events >= 0, users >= 1, products >= {len(CATEGORIES)}")
    rnd = random.Random(f"clicks:{seed}")
    random_ = rnd.random
    per_user = n_events / users
    dur = duration_ms or max(2 * 3_600_000, int(per_user * 7 * 60_000))
    end_ms = start_ms + dur

    # -- catalog ------------------------------------------------------------------------
    cat_w = [rnd.uniform(0.5, 1.5) for _ in CATEGORIES]
    cat_cum = list(itertools.accumulate(cat_w))

    def pick(cum: list[float]) -> int:
        return min(bisect.bisect(cum, random_() * cum[-1]), len(cum) - 1)

    def price(cat: str) -> float:
        return round(max(0.99, _PRICE[cat] * rnd.lognormvariate(0, 0.5)), 2)

    catalog: list[dict[str, Any]] = []
    by_cat: list[list[str]] = [[] for _ in CATEGORIES]
    for i in range(products):
        c = i % len(CATEGORIES) if i < len(CATEGORIES) else pick(cat_cum)
        pid = f"p-{i:05d}"
        catalog.append(
            {"product_id": pid, "category": CATEGORIES[c], "price": price(CATEGORIES[c])}
        )
        by_cat[c].append(pid)
    # Zipf-like popularity within each category (order of by_cat is the popularity rank)
    pop_cum = [
        list(itertools.accumulate(1 / (r + 1) ** 0.9 for r in range(len(p)))) for p in by_cat
    ]

    updates: list[tuple[int, dict[str, Any]]] = []
    for rec in rnd.sample(catalog, max(1, products // 20)):
        for _ in range(rnd.choice((1, 1, 2))):
            new_price = round(max(0.99, rec["price"] * rnd.uniform(0.7, 1.25)), 2)
            updates.append((start_ms + int(random_() * dur), {**rec, "price": new_price}))
    new_products: list[list[tuple[int, str]]] = [[] for _ in CATEGORIES]
    for j in range(max(1, products // 50)):
        c = pick(cat_cum)
        pid = f"p-{products + j:05d}"
        t = start_ms + int(rnd.uniform(0.1, 0.8) * dur)
        updates.append(
            (t, {"product_id": pid, "category": CATEGORIES[c], "price": price(CATEGORIES[c])})
        )
        new_products[c].append((t, pid))
    updates.sort(key=lambda u: u[0])

    # -- trending windows: 2 products per category, each boosted for 10-25% of the period --
    trending: dict[str, list[tuple[str, int, int]]] = {}
    trend_by_cat: list[list[tuple[str, int, int]]] = []
    for c, cat in enumerate(CATEGORIES):
        wins = []
        for pid in rnd.sample(by_cat[c], min(2, len(by_cat[c]))):
            length = int(rnd.uniform(0.10, 0.25) * dur)
            t0 = start_ms + int(random_() * (dur - length))
            wins.append((pid, t0, t0 + length))
        trending[cat] = wins
        trend_by_cat.append(wins)

    # -- users --------------------------------------------------------------------------
    user_ids = [f"u-{i:05d}" for i in range(users)]
    prefs: dict[str, dict[str, float]] = {}
    fav_idx: list[list[int]] = []
    fav_cum: list[list[float]] = []
    for uid in user_ids:
        favs: list[int] = []
        k = rnd.randint(2, 4)
        while len(favs) < k:
            c = pick(cat_cum)
            if c not in favs:
                favs.append(c)
        w = [rnd.expovariate(1.0) + 0.02 for _ in favs]
        tot = sum(w)
        prefs[uid] = {CATEGORIES[c]: x / tot for c, x in zip(favs, w, strict=True)}
        fav_idx.append(favs)
        fav_cum.append(list(itertools.accumulate(w)))

    # events per user: activity-weighted multinomial
    activity = [rnd.lognormvariate(0, 0.6) for _ in range(users)]
    total_act = sum(activity)
    counts = [int(n_events * a / total_act) for a in activity]
    for u in rnd.choices(range(users), activity, k=n_events - sum(counts)):
        counts[u] += 1

    n_cats = len(CATEGORIES)
    bisect_ = bisect.bisect

    def choose_product(u: int, ts: int) -> str:
        if random_() < EXPLORE:
            c = int(random_() * n_cats)
        else:
            fc = fav_cum[u]
            c = fav_idx[u][bisect_(fc, random_() * fc[-1])]
        if random_() < TREND_BOOST:
            for pid, t0, t1 in trend_by_cat[c]:
                if t0 <= ts < t1:
                    return pid
        news = new_products[c]
        if news and random_() < 0.1:
            live = [pid for t, pid in news if t <= ts]
            if live:
                return live[int(random_() * len(live))]
        cum = pop_cum[c]
        return by_cat[c][bisect_(cum, random_() * cum[-1])]

    # -- sessions and events ------------------------------------------------------------
    raw: list[tuple[int, int, int, str, int]] = []  # (arrival, ts, user, product, type)
    sessions: dict[str, list[tuple[int, int]]] = {}
    purchases: dict[str, set[str]] = {}
    for u in range(users):
        n = counts[u]
        if n == 0:
            continue
        n_sess = max(1, min(round(n / rnd.uniform(6, 14)), 60))
        n_sess = min(n_sess, n)
        cuts = sorted(rnd.sample(range(1, n), n_sess - 1)) if n_sess > 1 else []
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
        steps = [
            [MIN_STEP_MS + int((MAX_STEP_MS - MIN_STEP_MS) * random_() ** 2) for _ in range(s - 1)]
            for s in sizes
        ]
        lengths = [sum(st) for st in steps]
        slack = max(0, dur - sum(lengths) - (n_sess - 1) * MIN_BREAK_MS)
        shares = [rnd.expovariate(1.0) for _ in range(n_sess + 1)]
        tot = sum(shares)
        t = start_ms + int(slack * shares[0] / tot)
        user_sessions: list[tuple[int, int]] = []
        bought: set[str] = set()
        for s_i, (size, st) in enumerate(zip(sizes, steps, strict=True)):
            if s_i:
                t += MIN_BREAK_MS + int(slack * shares[s_i] / tot)
            s_start = t
            cart: list[str] = []
            last_type, last_pid = -1, ""
            for e in range(size):
                if e:
                    t += st[e - 1]
                r = random_()
                if cart and r < BUY_PROB:
                    pid, typ = cart.pop(int(random_() * len(cart))), 2
                    bought.add(pid)
                elif last_type == 0 and random_() < CART_PROB and last_pid not in cart:
                    pid, typ = last_pid, 1
                    cart.append(pid)
                else:
                    pid, typ = choose_product(u, t), 0
                raw.append((t + int(random_() * MAX_DELAY_MS), t, u, pid, typ))
                last_type, last_pid = typ, pid
            user_sessions.append((s_start, t))
        sessions[user_ids[u]] = user_sessions
        if bought:
            purchases[user_ids[u]] = bought

    raw.sort()
    events = [
        {
            "event_id": "e-" + str(i).zfill(9),
            "user_id": user_ids[u],
            "product_id": pid,
            "type": EVENT_TYPES[typ],
            "ts": ts,
        }
        for i, (_, ts, u, pid, typ) in enumerate(raw)
    ]
    return Clickstream(
        events=events,
        catalog=catalog,
        catalog_updates=updates,
        user_preferences=prefs,
        sessions=sessions,
        trending=trending,
        purchases=purchases,
        start_ms=start_ms,
        end_ms=end_ms,
    )
