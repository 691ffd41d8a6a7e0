"""Synthetic card transactions with injected, labelled fraud (the fraud-detection demo's input).

Data model
----------
*World* (built from ``seed`` alone, so changing the fraud rate or size keeps the same world):

- ``cards`` (default 5,000): ``card_id``, a home city/country and a home position (near one of
  ~40 real cities, mostly European), a spending profile (``amount_mu``/``amount_sigma``: the
  lognormal parameters of the card's base amount, ``typical_amount = exp(amount_mu)``), a few
  favourite merchant ``categories`` with weights, an ``activity`` weight (mean 1; how often the
  card is used) and a ``current_city`` (≈3% of cards are abroad, travelling).
- ``merchants`` (default 2,000): ``merchant_id``, ``category`` (see ``CATEGORIES``), ``city``,
  ``country``, ``lat``/``lon`` and ``online`` (card-not-present). ~1% of them are published in
  ``Dataset.blocklist``; legitimate customers never use those.

*Transaction* (one plain dict, also the JSON record of the input topic)::

    {"tx_id": "tx-00000042", "card_id": "c-01234", "merchant_id": "m-00077",
     "merchant_category": "grocery", "amount": 23.17, "currency": "EUR",
     "ts": 1717200003024, "lat": 52.37, "lon": 4.89, "country": "NL"}

``ts`` is event time in epoch ms. ``lat``/``lon`` is where the card was used: the merchant's
position for card-present purchases, the cardholder's (device) position for online ones.
``country`` is the merchant's country. Transactions are listed in emission (arrival) order:
time increases overall (by default ~72 ms per transaction, so 100K cover 2 hours) and ~5% of
them arrive up to 3 s late, i.e. out of event-time order.

Legitimate behaviour is physically consistent: a cardholder moves between card-present
merchants at ≤ 60 km/h, so consecutive legitimate transactions of a card never imply
impossible travel.

*Ground truth* is kept beside the transactions, never inside them. ``Dataset.fraud`` maps the
``tx_id`` of each fraudulent transaction to its pattern (``PATTERNS``):

- ``card_testing``: a burst of 8-20 amounts of 0.50-5.00 EUR on one card within 1-5 minutes,
  mostly at online merchants (every transaction of the burst is labelled);
- ``amount_spike``: one amount ≥ 10x the card's median earlier amount (and ≥ 10x its typical
  amount, above mean + 6 sd of its profile), on a card with at least 5 earlier transactions;
- ``impossible_travel``: a normal transaction, then 20-60 minutes later a card-present one in
  a city ≥ 2,500 km away (only the second is labelled; the card then stays quiet until a
  return at < 400 km/h would have been possible);
- ``blocklisted_merchant``: a purchase at a merchant in ``Dataset.blocklist``.

``Dataset.episodes`` groups the labelled transactions per injected incident. With
``malformed_rate > 0`` the dataset also carries raw records that are not valid transactions
(broken JSON, non-UTF-8 bytes, missing fields, wrong types) for the dead-letter path;
``Dataset.raw_records()`` interleaves them with the JSON-encoded transactions.

Example
-------
>>> ds = generate(5_000, seed=1, cards=300, merchants=200, malformed_rate=0.01)
>>> len(ds.transactions), len(ds.malformed), len(ds.blocklist)
(5000, 50, 2)
>>> sorted(ds.transactions[0]) == sorted(TRANSACTION_FIELDS)
True
>>> summary = ground_truth_summary(ds)
>>> summary["total"] == len(ds.fraud) and set(summary) == {*PATTERNS, "total"}
True
>>> all(not is_valid_record(raw) for raw in ds.malformed)
True
>>> round(haversine_km(52.3676, 4.9041, 48.8566, 2.3522))  # Amsterdam - Paris
430
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec

__all__ = [
    "CATEGORIES",
    "CITIES",
    "DEFAULT_MIX",
    "PATTERNS",
    "TRANSACTION_FIELDS",
    "Dataset",
    "TransactionRecord",
    "decode_transaction",
    "generate",
    "ground_truth_summary",
    "haversine_km",
    "is_valid_record",
    "write_jsonl",
]

PATTERNS: Final = ("card_testing", "amount_spike", "impossible_travel", "blocklisted_merchant")
"""Fraud pattern names, as used in ``Dataset.fraud`` and ``DEFAULT_MIX``."""

DEFAULT_MIX: Final[Mapping[str, float]] = {
    "card_testing": 0.40,
    "amount_spike": 0.20,
    "impossible_travel": 0.20,
    "blocklisted_merchant": 0.20,
}
"""Default share of the *fraudulent transactions* per pattern (normalised when used)."""

TRANSACTION_FIELDS: Final = (
    "tx_id",
    "card_id",
    "merchant_id",
    "merchant_category",
    "amount",
    "currency",
    "ts",
    "lat",
    "lon",
    "country",
)

DEFAULT_START_MS: Final = 1_717_200_000_000  # 2024-06-01T00:00:00Z
MS_PER_TX: Final = 72  # default duration: 100K transactions over 2 hours

LEGIT_SPEED_KMH: Final = 60.0  # cardholders move between card-present merchants at most this fast
RETURN_SPEED_KMH: Final = 400.0  # after impossible travel, the card is quiet until this is possible
FAR_CITY_KM: Final = 2_500.0  # impossible travel goes at least this far
LATE_FRACTION: Final = 0.05  # share of transactions that arrive late ...
MAX_LATENESS_MS: Final = 3_000  # ... by up to this much
SPREAD_DEG: Final = 0.04  # merchants and homes lie within ± this many degrees of the city centre


class City(NamedTuple):
    name: str
    country: str
    lat: float
    lon: float
    weight: float  # relative share of cards and merchants


CITIES: Final[tuple[City, ...]] = (
    City("Amsterdam", "NL", 52.3676, 4.9041, 3.0),
    City("Rotterdam", "NL", 51.9244, 4.4777, 2.0),
    City("Berlin", "DE", 52.5200, 13.4050, 3.0),
    City("Munich", "DE", 48.1351, 11.5820, 2.0),
    City("Hamburg", "DE", 53.5511, 9.9937, 2.0),
    City("Paris", "FR", 48.8566, 2.3522, 3.0),
    City("Lyon", "FR", 45.7640, 4.8357, 2.0),
    City("Marseille", "FR", 43.2965, 5.3698, 1.5),
    City("London", "GB", 51.5074, -0.1278, 3.0),
    City("Manchester", "GB", 53.4808, -2.2426, 1.5),
    City("Dublin", "IE", 53.3498, -6.2603, 1.5),
    City("Madrid", "ES", 40.4168, -3.7038, 2.5),
    City("Barcelona", "ES", 41.3874, 2.1686, 2.0),
    City("Lisbon", "PT", 38.7223, -9.1393, 1.5),
    City("Rome", "IT", 41.9028, 12.4964, 2.5),
    City("Milan", "IT", 45.4642, 9.1900, 2.0),
    City("Vienna", "AT", 48.2082, 16.3738, 1.5),
    City("Zurich", "CH", 47.3769, 8.5417, 1.0),
    City("Brussels", "BE", 50.8503, 4.3517, 1.5),
    City("Copenhagen", "DK", 55.6761, 12.5683, 1.0),
    City("Stockholm", "SE", 59.3293, 18.0686, 1.0),
    City("Oslo", "NO", 59.9139, 10.7522, 1.0),
    City("Helsinki", "FI", 60.1699, 24.9384, 1.0),
    City("Warsaw", "PL", 52.2297, 21.0122, 1.5),
    City("Prague", "CZ", 50.0755, 14.4378, 1.0),
    City("Budapest", "HU", 47.4979, 19.0402, 1.0),
    City("Athens", "GR", 37.9838, 23.7275, 1.0),
    City("Istanbul", "TR", 41.0082, 28.9784, 1.0),
    City("New York", "US", 40.7128, -74.0060, 1.0),
    City("Chicago", "US", 41.8781, -87.6298, 0.5),
    City("San Francisco", "US", 37.7749, -122.4194, 0.5),
    City("Toronto", "CA", 43.6532, -79.3832, 0.5),
    City("Mexico City", "MX", 19.4326, -99.1332, 0.5),
    City("Sao Paulo", "BR", -23.5505, -46.6333, 0.5),
    City("Buenos Aires", "AR", -34.6037, -58.3816, 0.5),
    City("Lagos", "NG", 6.5244, 3.3792, 0.5),
    City("Johannesburg", "ZA", -26.2041, 28.0473, 0.5),
    City("Dubai", "AE", 25.2048, 55.2708, 0.5),
    City("Mumbai", "IN", 19.0760, 72.8777, 0.5),
    City("Singapore", "SG", 1.3521, 103.8198, 0.5),
    City("Hong Kong", "HK", 22.3193, 114.1694, 0.5),
    City("Tokyo", "JP", 35.6762, 139.6503, 0.5),
    City("Sydney", "AU", -33.8688, 151.2093, 0.5),
)


class Category(NamedTuple):
    merchant_share: float  # share of merchants in this category
    purchase_share: float  # how popular the category is as a favourite of cards
    log_offset: float  # amounts are exp(card mu + offset + card sigma * N(0, 1))
    online_share: float  # share of this category's merchants that are online-only


CATEGORIES: Final[Mapping[str, Category]] = {
    "grocery": Category(0.15, 0.20, 0.0, 0.05),
    "fuel": Category(0.07, 0.10, 0.4, 0.0),
    "restaurants": Category(0.14, 0.14, 0.1, 0.0),
    "coffee": Category(0.08, 0.12, -1.6, 0.0),
    "pharmacy": Category(0.05, 0.05, -0.4, 0.1),
    "transport": Category(0.05, 0.08, -0.9, 0.3),
    "clothing": Category(0.10, 0.06, 0.6, 0.3),
    "electronics": Category(0.07, 0.03, 1.0, 0.4),
    "travel": Category(0.05, 0.02, 1.3, 0.6),
    "entertainment": Category(0.07, 0.06, 0.0, 0.4),
    "online": Category(0.14, 0.13, 0.2, 1.0),
    "jewelry": Category(0.03, 0.01, 1.5, 0.1),
}
"""Merchant categories with their shares, amount offsets and online shares."""

_CATEGORY_NAMES: Final = tuple(CATEGORIES)
_SMALL_TICKET: Final = frozenset({"grocery", "fuel", "coffee", "transport", "pharmacy"})
_BIG_TICKET: Final = frozenset({"electronics", "jewelry", "travel"})

_KM_PER_DEG_LAT: Final = 110.57
_KM_PER_DEG_LON: Final = 111.32
_LEGIT_KM_PER_MS: Final = LEGIT_SPEED_KMH / 3_600_000
# beyond this gap any two points of one city are within legitimate reach: no distance check
_SAFE_GAP_MS: Final = int(2 * SPREAD_DEG * _KM_PER_DEG_LON * 2 / _LEGIT_KM_PER_MS) + 1
_INF: Final = 1 << 62


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees.

    >>> haversine_km(0.0, 0.0, 0.0, 1.0) > 111
    True
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


class TransactionRecord(msgspec.Struct):
    """Strict schema of one transaction record; what the dead-letter check decodes into."""

    tx_id: str
    card_id: str
    merchant_id: str
    merchant_category: str
    amount: float
    currency: str
    ts: int
    lat: float
    lon: float
    country: str


_DECODER: Final = msgspec.json.Decoder(TransactionRecord)
_ENCODER: Final = msgspec.json.Encoder()


def decode_transaction(raw: bytes) -> TransactionRecord:
    """Decode one raw record; raises ``msgspec.DecodeError`` (incl. ``ValidationError``)."""
    return _DECODER.decode(raw)


def is_valid_record(raw: bytes) -> bool:
    """Whether ``raw`` is a well-formed transaction record (JSON object, all fields, types)."""
    try:
        _DECODER.decode(raw)
    except msgspec.DecodeError:
        return False
    return True


@dataclass
class Dataset:
    """Generated transactions plus everything needed to score a detector on them."""

    transactions: list[dict[str, Any]]
    """Valid transactions in emission order (see the module docstring for the schema)."""
    malformed: list[bytes]
    """Raw records that are not valid transactions (for the dead-letter path)."""
    malformed_positions: list[int]
    """``malformed[i]`` arrives just before ``transactions[malformed_positions[i]]``
    (a position of ``len(transactions)`` means after the last one); non-decreasing."""
    fraud: dict[str, str]
    """Ground truth: ``tx_id`` -> pattern for every fraudulent transaction."""
    blocklist: set[str]
    """Published merchant blocklist (merchant ids)."""
    merchants: list[dict[str, Any]]
    cards: list[dict[str, Any]]
    episodes: list[dict[str, Any]] = field(default_factory=list)
    """One dict per injected incident: ``pattern``, ``card_id``, ``tx_ids`` (labelled ones)
    and, for impossible travel, ``anchor_tx_id`` (the legitimate transaction before it)."""
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    end_ms: int = DEFAULT_START_MS

    def raw_records(self) -> Iterator[bytes]:
        """The input topic as raw values: JSON transactions with the malformed ones mixed in."""
        bad = iter(zip(self.malformed_positions, self.malformed, strict=True))
        nxt = next(bad, None)
        for i, tx in enumerate(self.transactions):
            while nxt is not None and nxt[0] <= i:
                yield nxt[1]
                nxt = next(bad, None)
            yield _ENCODER.encode(tx)
        while nxt is not None:
            yield nxt[1]
            nxt = next(bad, None)


def write_jsonl(path: str | Path, dataset: Dataset, include_malformed: bool = True) -> int:
    """Write the dataset as one record per line (``raw_records()``); returns the line count.

    Malformed records never contain a newline, so each stays one line.
    """
    lines = 0
    with open(path, "wb") as f:
        if include_malformed:
            for raw in dataset.raw_records():
                f.write(raw + b"\n")
                lines += 1
        else:
            for tx in dataset.transactions:
                f.write(_ENCODER.encode(tx) + b"\n")
                lines += 1
    return lines


def ground_truth_summary(dataset: Dataset) -> dict[str, int]:
    """Number of fraudulent transactions per pattern (every pattern present), plus ``total``."""
    counts = dict.fromkeys(PATTERNS, 0)
    for pattern in dataset.fraud.values():
        counts[pattern] += 1
    counts["total"] = len(dataset.fraud)
    return counts


# --------------------------------------------------------------------------------------------
# world


@dataclass
class _World:
    cards: list[dict[str, Any]]
    merchants: list[dict[str, Any]]
    blocklist: list[int]  # merchant indices
    card_city: list[int]  # current city of each card
    tables: list[list[tuple[list[int], bool]]]  # per card: (merchant pool, online) choices
    online_fallback: list[list[int]]  # per card: general online merchants to use instead
    physical: dict[tuple[int, str], list[int]]  # (city, category) -> usable merchants
    online: dict[str, list[int]]  # category -> usable online merchants
    far_cities: list[list[int]]  # per city: cities >= FAR_CITY_KM away with merchants
    cards_in_city: dict[int, list[int]]


def _jitter(rnd: random.Random, city: City) -> tuple[float, float]:
    lat = city.lat + rnd.uniform(-SPREAD_DEG, SPREAD_DEG)
    lon = city.lon + rnd.uniform(-SPREAD_DEG, SPREAD_DEG) / math.cos(math.radians(city.lat))
    return round(lat, 5), round(lon, 5)


def _build_world(seed: int, n_cards: int, n_merchants: int) -> _World:
    rnd = random.Random(f"fraud-world:{seed}")
    city_w = [c.weight for c in CITIES]
    cat_merchant_w = [c.merchant_share for c in CATEGORIES.values()]

    merchants: list[dict[str, Any]] = []
    m_city: list[int] = []
    for i in range(n_merchants):
        ci = rnd.choices(range(len(CITIES)), city_w)[0]
        cat = rnd.choices(_CATEGORY_NAMES, cat_merchant_w)[0]
        lat, lon = _jitter(rnd, CITIES[ci])
        merchants.append(
            {
                "merchant_id": f"m-{i:05d}",
                "category": cat,
                "city": CITIES[ci].name,
                "country": CITIES[ci].country,
                "lat": lat,
                "lon": lon,
                "online": rnd.random() < CATEGORIES[cat].online_share,
            }
        )
        m_city.append(ci)

    # ~1% blocklisted, about half of them online shops in risky categories
    n_block = max(1, round(0.01 * n_merchants)) if n_merchants else 0
    risky_online = [
        i
        for i, m in enumerate(merchants)
        if m["online"] and m["category"] in ("online", "electronics", "jewelry")
    ]
    blocked = rnd.sample(risky_online, min(len(risky_online), (n_block + 1) // 2))
    taken = set(blocked)
    rest = [i for i in range(n_merchants) if i not in taken]
    blocked += rnd.sample(rest, min(len(rest), n_block - len(blocked)))
    blocked_set = set(blocked)

    physical: dict[tuple[int, str], list[int]] = {}
    online: dict[str, list[int]] = {}
    online_by_country: dict[tuple[str, str], list[int]] = {}
    for i, m in enumerate(merchants):
        if i in blocked_set:
            continue
        if m["online"]:
            online.setdefault(m["category"], []).append(i)
            online_by_country.setdefault((m["country"], m["category"]), []).append(i)
        else:
            physical.setdefault((m_city[i], m["category"]), []).append(i)
    any_online = [i for pool in online.values() for i in pool]
    if not any_online:
        raise ValueError("no usable online merchants; use more merchants")

    cities_with_shops = sorted({c for c, _ in physical})
    far_cities: list[list[int]] = []
    for a in CITIES:
        far = [
            j
            for j in cities_with_shops
            if haversine_km(a.lat, a.lon, CITIES[j].lat, CITIES[j].lon) >= FAR_CITY_KM + 100
        ]
        far_cities.append(far)

    cards: list[dict[str, Any]] = []
    card_city: list[int] = []
    tables: list[list[tuple[list[int], bool]]] = []
    online_fallback: list[list[int]] = []
    cards_in_city: dict[int, list[int]] = {}
    city_cum = list(itertools.accumulate(city_w))
    purchase_cum = list(itertools.accumulate(c.purchase_share for c in CATEGORIES.values()))
    fallback_by_country: dict[str, list[int]] = {}
    for city in CITIES:
        domestic = [
            j
            for c in ("online", "entertainment")
            for j in online_by_country.get((city.country, c), [])
        ]
        fallback_by_country[city.country] = domestic or online.get("online") or any_online
    random_ = rnd.random

    def draw(cum: list[float]) -> int:
        return min(bisect.bisect(cum, random_() * cum[-1]), len(cum) - 1)

    for i in range(n_cards):
        home = draw(city_cum)
        here = home if random_() >= 0.03 else draw(city_cum)
        home_lat, home_lon = _jitter(rnd, CITIES[home])
        pos = (home_lat, home_lon) if here == home else _jitter(rnd, CITIES[here])
        country = CITIES[home].country
        fallback = fallback_by_country[country]
        # 3-5 favourite categories with Dirichlet(1) weights, plus one occasional other one
        n_favs = 3 + int(random_() * 3)
        favs: list[str] = []
        while len(favs) < n_favs:
            c = _CATEGORY_NAMES[draw(purchase_cum)]
            if c not in favs:
                favs.append(c)
        raw_w = [rnd.expovariate(1.0) + 0.05 for _ in favs]
        tot = sum(raw_w)
        prefs = {c: round(w / tot, 4) for c, w in zip(favs, raw_w, strict=True)}
        mu = math.log(rnd.uniform(12.0, 70.0))
        sigma = rnd.uniform(0.35, 0.8)
        # choice table: ~90% favourites (by weight), ~10% any category; each category maps to
        # a few regular shops in the current city, or to web shops
        slots = [round(18 * w / tot) or 1 for w in raw_w]
        table: list[tuple[list[int], bool]] = []
        for cat, k in zip([*favs, _CATEGORY_NAMES[draw(purchase_cum)]], [*slots, 2], strict=True):
            shops = physical.get((here, cat), [])
            webshops = online_by_country.get((country, cat)) or online.get(cat, [])
            if webshops and (not shops or random_() < CATEGORIES[cat].online_share):
                j = int(random_() * len(webshops))
                entry = ((webshops[j:] + webshops[:j])[:4], True)
            elif shops:  # a few regular shops
                j = int(random_() * len(shops))
                entry = ((shops[j:] + shops[:j])[:3], False)
            else:
                entry = (fallback, True)
            table.extend([entry] * k)
        cards.append(
            {
                "card_id": f"c-{i:05d}",
                "home_city": CITIES[home].name,
                "home_country": country,
                "home_lat": home_lat,
                "home_lon": home_lon,
                "current_city": CITIES[here].name,
                "pos_lat": pos[0],
                "pos_lon": pos[1],
                "amount_mu": round(mu, 4),
                "amount_sigma": round(sigma, 4),
                "typical_amount": round(math.exp(mu), 2),
                "categories": prefs,
                "activity": rnd.lognormvariate(-0.32, 0.8),  # mean ~1
            }
        )
        card_city.append(here)
        tables.append(table)
        online_fallback.append(fallback)
        cards_in_city.setdefault(here, []).append(i)
    return _World(
        cards,
        merchants,
        sorted(blocked),
        card_city,
        tables,
        online_fallback,
        physical,
        online,
        far_cities,
        cards_in_city,
    )


# --------------------------------------------------------------------------------------------
# simulation


class _Sim:
    """Per-card state plus the emitters; transactions go to ``self.out`` in emission order."""

    def __init__(self, world: _World, rnd: random.Random) -> None:
        self.w = world
        self.rnd = rnd
        self.out: list[dict[str, Any]] = []
        self.fraud: dict[str, str] = {}
        ms = world.merchants
        self.m_id = [m["merchant_id"] for m in ms]
        self.m_cat = [m["category"] for m in ms]
        self.m_country = [m["country"] for m in ms]
        self.m_lat: list[float] = [m["lat"] for m in ms]
        self.m_lon: list[float] = [m["lon"] for m in ms]
        self.m_online = [m["online"] for m in ms]
        self.m_off = [CATEGORIES[m["category"]].log_offset for m in ms]
        cs = world.cards
        n = len(cs)
        self.c_id = [c["card_id"] for c in cs]
        self.c_mu = [c["amount_mu"] for c in cs]
        self.c_sig = [c["amount_sigma"] for c in cs]
        self.c_cos = [math.cos(math.radians(c["pos_lat"])) for c in cs]
        self.pos_lat: list[float] = [c["pos_lat"] for c in cs]  # where the cardholder is
        self.pos_lon: list[float] = [c["pos_lon"] for c in cs]
        self.last_ts = [-_INF] * n
        self.last_phys = [-1] * n  # last card-present merchant (the holder stands there)
        self.busy = [-_INF] * n  # no legitimate use before this ts (incident in progress)
        self.displaced = [False] * n  # last tx was far away (impossible travel)
        self._hist: dict[str, list[float]] = {}  # card_id -> amounts, built lazily
        self._hist_upto = 0  # self.out[:_hist_upto] is in _hist

    # -- helpers -------------------------------------------------------------------------

    def reachable(self, ci: int, m: int, ts: int) -> bool:
        """Can the holder of card ``ci`` be at card-present merchant ``m`` at ``ts``?"""
        if self.displaced[ci]:
            return False
        dt = ts - self.last_ts[ci]
        if dt >= _SAFE_GAP_MS and self.w.merchants[m]["city"] == self.w.cards[ci]["current_city"]:
            return True
        dy = (self.m_lat[m] - self.pos_lat[ci]) * _KM_PER_DEG_LAT
        dx = (self.m_lon[m] - self.pos_lon[ci]) * _KM_PER_DEG_LON * self.c_cos[ci]
        lim = max(dt, 0) * _LEGIT_KM_PER_MS
        return dx * dx + dy * dy <= lim * lim * 0.9

    def emit(self, ci: int, m: int, amount: float, ts: int, online: bool) -> str:
        """Append one transaction of card ``ci`` at merchant ``m`` (fraud and anchors)."""
        if online:
            lat, lon = self.pos_lat[ci], self.pos_lon[ci]
        else:
            lat, lon = self.m_lat[m], self.m_lon[m]
        tx_id = "tx-" + str(len(self.out)).zfill(8)
        amount = round(amount, 2)
        self.out.append(
            {
                "tx_id": tx_id,
                "card_id": self.c_id[ci],
                "merchant_id": self.m_id[m],
                "merchant_category": self.m_cat[m],
                "amount": amount,
                "currency": "EUR",
                "ts": ts,
                "lat": lat,
                "lon": lon,
                "country": self.m_country[m],
            }
        )
        self.last_ts[ci] = ts
        return tx_id

    def amounts(self, ci: int) -> list[float]:
        """Amounts of card ``ci`` so far, in emission order (indexed lazily: rarely needed)."""
        hist = self._hist
        for tx in self.out[self._hist_upto :]:
            hist.setdefault(tx["card_id"], []).append(tx["amount"])
        self._hist_upto = len(self.out)
        return hist.get(self.c_id[ci], [])

    def move_to(self, ci: int, m: int, again: bool = True) -> None:
        """The holder of ``ci`` is now at merchant ``m`` (and may buy there again)."""
        self.pos_lat[ci], self.pos_lon[ci] = self.m_lat[m], self.m_lon[m]
        self.last_phys[ci] = m if again else -1
        self.displaced[ci] = False

    def pick_card(
        self, ts: int, weighted: list[int] | None = None, among: list[int] | None = None
    ) -> int:
        """A card free for an incident at ``ts`` (not busy, not displaced)."""
        rnd = self.rnd
        pool = among if among is not None else weighted
        n_cards = len(self.c_id)
        for _ in range(200):
            ci = pool[rnd.randrange(len(pool))] if pool else rnd.randrange(n_cards)
            if self.busy[ci] <= ts and not self.displaced[ci] and self.last_ts[ci] <= ts:
                return ci
        free = [
            c
            for c in range(n_cards)
            if self.busy[c] <= ts and not self.displaced[c] and self.last_ts[c] <= ts
        ]
        return rnd.choice(free) if free else rnd.randrange(n_cards)

    def amount(self, ci: int, m: int) -> float:
        a = math.exp(self.c_mu[ci] + self.m_off[m] + self.c_sig[ci] * self.rnd.gauss(0.0, 1.0))
        return max(a, 0.5)


@dataclass
class _Episode:
    pattern: str
    times: list[int]
    card: int = -1
    merchant: int = -1
    online: bool = True
    tx_ids: list[str] = field(default_factory=list)
    anchor_tx_id: str | None = None


def _plan(
    rnd: random.Random, n: int, fraud_rate: float, mix: Mapping[str, float], start: int, dur: int
) -> list[_Episode]:
    unknown = set(mix) - set(PATTERNS)
    if unknown:
        raise ValueError(f"unknown fraud patterns {sorted(unknown)}; known: {PATTERNS}")
    total_w = sum(max(0.0, w) for w in mix.values())
    target = round(n * fraud_rate)
    if target == 0 or total_w <= 0:
        return []
    share = {p: max(0.0, mix.get(p, 0.0)) / total_w for p in PATTERNS}

    def at(lo: float, hi: float) -> int:
        return start + int(rnd.uniform(lo, hi) * dur)

    eps: list[_Episode] = []
    ct_target = round(target * share["card_testing"])
    planned = 0
    while planned < ct_target:
        size = rnd.randint(8, 20)
        span = rnd.randint(60_000, 300_000)
        t0 = at(0.01, 0.97)
        offsets = sorted(rnd.randint(0, span) for _ in range(size - 2))
        eps.append(_Episode("card_testing", [t0, *(t0 + o for o in offsets), t0 + span]))
        planned += size
    for _ in range(round(target * share["amount_spike"])):
        eps.append(_Episode("amount_spike", [at(0.25, 0.99)]))
    for _ in range(round(target * share["impossible_travel"])):
        gap = rnd.randint(20, 60) * 60_000
        t1 = max(start + gap, at(0.02, 0.99))
        eps.append(_Episode("impossible_travel", [t1 - gap, t1]))
    for _ in range(round(target * share["blocklisted_merchant"])):
        eps.append(_Episode("blocklisted_merchant", [at(0.01, 0.99)]))
    return eps


def _fraud_event(sim: _Sim, ep: _Episode, step: int, ts: int, weighted: list[int]) -> None:
    rnd, w = sim.rnd, sim.w
    if ep.pattern == "card_testing":
        if step == 0:
            ci = ep.card = sim.pick_card(ts)  # stolen numbers: any card, active or not
            sim.busy[ci] = ep.times[-1] + 1
            shops = [
                m
                for cat in sorted(_SMALL_TICKET)  # sorted: set order changes with the hash seed
                for m in w.physical.get((w.card_city[ci], cat), [])
                if sim.reachable(ci, m, ts)
            ]
            if shops and rnd.random() < 0.2:
                ep.merchant, ep.online = rnd.choice(shops), False
            else:
                pool = w.online.get("online") or w.online_fallback[ci]
                ep.merchant, ep.online = rnd.choice(pool), True
        ci, m = ep.card, ep.merchant
        if ep.online and rnd.random() < 0.3:  # bots rotate between web shops
            m = rnd.choice(w.online.get("online") or w.online_fallback[ci])
        tx = sim.emit(ci, m, rnd.uniform(0.5, 5.0), ts, ep.online)
        if not ep.online:
            sim.move_to(ci, m)
        sim.fraud[tx] = ep.pattern
        ep.tx_ids.append(tx)

    elif ep.pattern == "amount_spike":
        best, best_n = -1, -1
        for _ in range(300):
            c = weighted[rnd.randrange(len(weighted))]
            if sim.busy[c] > ts or sim.displaced[c] or sim.last_ts[c] > ts:
                continue
            n_prior = len(sim.amounts(c))
            if n_prior >= 5:
                best = c
                break
            if n_prior > best_n:
                best, best_n = c, n_prior
        ci = ep.card = best if best >= 0 else sim.pick_card(ts)
        shops = [
            m
            for cat in sorted(_BIG_TICKET)
            for m in w.physical.get((w.card_city[ci], cat), [])
            if sim.reachable(ci, m, ts)
        ]
        if shops and rnd.random() < 0.5:
            m, online = rnd.choice(shops), False
        else:
            pool = [m for cat in sorted(_BIG_TICKET) for m in w.online.get(cat, [])]
            m, online = rnd.choice(pool or w.online_fallback[ci]), True
        prior = sim.amounts(ci)
        mu, sigma = sim.c_mu[ci], sim.c_sig[ci]
        mean = math.exp(mu + sigma * sigma / 2)
        sd = mean * math.sqrt(math.expm1(sigma * sigma))
        floor = max(10 * math.exp(mu), mean + 6 * sd)
        if prior:
            floor = max(floor, 10 * statistics.median(prior), 2 * max(prior))
        tx = sim.emit(ci, m, floor * rnd.uniform(1.1, 2.5), ts, online)
        if not online:
            sim.move_to(ci, m)
        sim.fraud[tx] = ep.pattern
        ep.tx_ids.append(tx)

    elif ep.pattern == "impossible_travel":
        if step == 0:  # an ordinary purchase where the holder is (not labelled) ...
            ci = ep.card = sim.pick_card(ts, weighted=weighted)
            lp = sim.last_phys[ci]
            if lp >= 0 and rnd.random() < 0.5:
                m, online = lp, False  # again at the shop where the holder stands
            else:
                m, online = rnd.choice(w.online_fallback[ci]), True
            ep.anchor_tx_id = sim.emit(ci, m, sim.amount(ci, m), ts, online)
            sim.busy[ci] = ep.times[1] + 1
            return
        ci = ep.card  # ... then a card-present one on another continent
        here = w.card_city[ci]
        far = w.far_cities[here] or [
            max(
                sorted({c for c, _ in w.physical}),
                key=lambda j: haversine_km(
                    CITIES[here].lat, CITIES[here].lon, CITIES[j].lat, CITIES[j].lon
                ),
            )
        ]
        city = rnd.choice(far)
        pool = [m for (c, _), ms in w.physical.items() if c == city for m in ms]
        m = rnd.choice(pool)
        lat, lon = sim.pos_lat[ci], sim.pos_lon[ci]
        tx = sim.emit(ci, m, sim.amount(ci, m) * rnd.uniform(1.0, 3.0), ts, False)
        sim.displaced[ci] = True  # the holder is still at home: quiet until a return is possible
        back_km = haversine_km(lat, lon, sim.m_lat[m], sim.m_lon[m]) + 50
        sim.busy[ci] = ts + int(back_km / RETURN_SPEED_KMH * 3_600_000) + 60_000
        sim.fraud[tx] = ep.pattern
        ep.tx_ids.append(tx)

    else:  # blocklisted_merchant
        m = rnd.choice(w.blocklist)
        online = sim.m_online[m]
        ci = -1
        if not online:  # a local card whose holder can get there
            city = next(i for i, c in enumerate(CITIES) if c.name == w.merchants[m]["city"])
            locals_ = w.cards_in_city.get(city, [])
            for _ in range(min(50, 3 * len(locals_))):
                c = rnd.choice(locals_)
                if (
                    sim.busy[c] <= ts
                    and not sim.displaced[c]
                    and sim.last_ts[c] <= ts
                    and sim.reachable(c, m, ts)
                ):
                    ci = c
                    break
            if ci < 0:
                web = [b for b in w.blocklist if sim.m_online[b]]
                if web:
                    m, online = rnd.choice(web), True
        if ci < 0:
            ci = sim.pick_card(ts, weighted=weighted)
        ep.card = ci
        tx = sim.emit(ci, m, sim.amount(ci, m) * rnd.uniform(1.0, 4.0), ts, online)
        if not online:
            sim.move_to(ci, m, again=False)  # legitimate purchases never go to blocklisted shops
        sim.fraud[tx] = ep.pattern
        ep.tx_ids.append(tx)


def generate(
    n: int,
    seed: int = 42,
    cards: int = 5_000,
    merchants: int = 2_000,
    fraud_rate: float = 0.015,
    malformed_rate: float = 0.0,
    start_ms: int = DEFAULT_START_MS,
    duration_ms: int | None = None,
    mix: Mapping[str, float] | None = None,
) -> Dataset:
    """Generate ``n`` valid transactions (fraud included) plus ``round(n * malformed_rate)``
    malformed records.

    ``fraud_rate`` is the target share of fraudulent transactions (card-testing bursts are
    whole, so the realised rate is within a burst of it); ``mix`` weights the patterns by their
    share of fraudulent transactions (default ``DEFAULT_MIX``; missing patterns get 0).
    ``duration_ms`` defaults to ``n * 72`` ms. The world (cards, merchants, blocklist) depends
    only on ``seed``, ``cards`` and ``merchants``.
    """
    if n < 0 or not 0.0 <= fraud_rate <= 0.5 or malformed_rate < 0:
        raise ValueError("need n >= 0, 0 <= fraud_rate <= 0.5 and malformed_rate >= 0")
    if cards < 1 or merchants < 10:
        raise ValueError("need at least 1 card and 10 merchants")
    world = _build_world(seed, cards, merchants)
    dur = duration_ms if duration_ms is not None else max(1, n * MS_PER_TX)
    rnd = random.Random(f"fraud-traffic:{seed}")
    episodes = _plan(rnd, n, fraud_rate, mix if mix is not None else DEFAULT_MIX, start_ms, dur)

    heap: list[tuple[int, int, int, int]] = []  # (ts, seq, episode, step)
    for e, ep in enumerate(episodes):
        for s, t in enumerate(ep.times):
            heap.append((t, len(heap), e, s))
    heapq.heapify(heap)
    n_legit = n - len(heap)
    if n_legit < 0:
        raise ValueError("fraud_rate too high for this n")

    sim = _Sim(world, rnd)
    _run(sim, episodes, heap, n_legit, start_ms, dur)

    bad, positions = _malformed(seed, sim.out, round(n * malformed_rate))
    return Dataset(
        transactions=sim.out,
        malformed=bad,
        malformed_positions=positions,
        fraud=sim.fraud,
        blocklist={world.merchants[m]["merchant_id"] for m in world.blocklist},
        merchants=world.merchants,
        cards=world.cards,
        episodes=[
            {
                "pattern": ep.pattern,
                "card_id": sim.c_id[ep.card],
                "tx_ids": ep.tx_ids,
                **({"anchor_tx_id": ep.anchor_tx_id} if ep.anchor_tx_id else {}),
            }
            for ep in episodes
        ],
        seed=seed,
        start_ms=start_ms,
        end_ms=start_ms + dur,
    )


def _run(
    sim: _Sim,
    episodes: list[_Episode],
    heap: list[tuple[int, int, int, int]],
    n_legit: int,
    start_ms: int,
    dur: int,
) -> None:
    """Emit ``n_legit`` legitimate transactions on a steady clock, interleaved with the
    incidents in ``heap`` at their own times. The legitimate path is inlined: it is ~99% of
    the work."""
    rnd = sim.rnd
    random, exp = rnd.random, math.exp
    n_cards = len(sim.c_id)
    # activity-weighted card draws: a ticket list (1-12 tickets per card) beats choices()
    tickets = [
        c for c, card in enumerate(sim.w.cards) for _ in range(max(1, round(card["activity"] * 4)))
    ]
    n_tickets = len(tickets)
    # N(0, 1) quantiles for amounts: an index draw plus exp() instead of gauss()
    z = [statistics.NormalDist().inv_cdf((i + 0.5) / 4096) for i in range(4096)]
    tables, fallbacks = sim.w.tables, sim.w.online_fallback
    out, busy = sim.out, sim.busy
    c_id, c_mu, c_sig, c_cos = sim.c_id, sim.c_mu, sim.c_sig, sim.c_cos
    pos_lat, pos_lon, last_ts = sim.pos_lat, sim.pos_lon, sim.last_ts
    last_phys, displaced = sim.last_phys, sim.displaced
    m_id, m_cat, m_country, m_lat, m_lon = sim.m_id, sim.m_cat, sim.m_country, sim.m_lat, sim.m_lon
    m_off = sim.m_off
    km_lat, km_lon, km_per_ms = _KM_PER_DEG_LAT, _KM_PER_DEG_LON, _LEGIT_KM_PER_MS
    safe_gap, late, lateness = _SAFE_GAP_MS, LATE_FRACTION, MAX_LATENESS_MS
    heappop = heapq.heappop
    step = dur / max(n_legit, 1)
    next_incident = heap[0][0] if heap else _INF + 1
    for k in range(n_legit + 1):
        base = start_ms + int(k * step) if k < n_legit else _INF
        while next_incident <= base:
            _, _, e, s = heappop(heap)
            _fraud_event(sim, episodes[e], s, episodes[e].times[s], tickets)
            next_incident = heap[0][0] if heap else _INF + 1
        if k == n_legit:
            break
        ci = tickets[int(random() * n_tickets)]
        ts = base - int(random() * lateness) if random() < late else base
        if busy[ci] > ts:  # card is in an incident: someone else pays now
            tries = 0
            while busy[ci] > ts:
                ci = tickets[int(random() * n_tickets)]
                tries += 1
                if tries > 100:
                    ci = min(range(n_cards), key=busy.__getitem__)
                    ts = max(ts, busy[ci])

        # -- one legitimate transaction, physically consistent with the card's past --
        if displaced[ci]:  # first use after an impossible-travel incident: online, from home
            pool = fallbacks[ci]
            m = pool[int(random() * len(pool))]
            displaced[ci] = False
        else:
            table = tables[ci]
            pool, online = table[int(random() * len(table))]
            m = pool[int(random() * len(pool))]
            if not online:
                dt = ts - last_ts[ci]
                if dt < safe_gap:  # could the holder have got to this shop in time?
                    dy = (m_lat[m] - pos_lat[ci]) * km_lat
                    dx = (m_lon[m] - pos_lon[ci]) * km_lon * c_cos[ci]
                    lim = dt * km_per_ms if dt > 0 else 0.0
                    if dx * dx + dy * dy > 0.9 * lim * lim:
                        lp = last_phys[ci]
                        if lp >= 0 and random() < 0.5:
                            m = lp  # another purchase where the holder already is
                        else:
                            pool = fallbacks[ci]
                            m = pool[int(random() * len(pool))]
                            online = True
                if not online:  # the holder is now at the shop
                    pos_lat[ci] = m_lat[m]
                    pos_lon[ci] = m_lon[m]
                    last_phys[ci] = m
        amount = exp(c_mu[ci] + m_off[m] + c_sig[ci] * z[int(random() * 4096)])
        amount = int(amount * 100.0 + 0.5) / 100 if amount > 0.5 else 0.5  # 2 decimals
        out.append(
            {
                "tx_id": "tx-" + str(len(out)).zfill(8),
                "card_id": c_id[ci],
                "merchant_id": m_id[m],
                "merchant_category": m_cat[m],
                "amount": amount,
                "currency": "EUR",
                "ts": ts,
                "lat": pos_lat[ci],
                "lon": pos_lon[ci],
                "country": m_country[m],
            }
        )
        last_ts[ci] = ts


# --------------------------------------------------------------------------------------------
# malformed records


def _malformed(seed: int, txs: list[dict[str, Any]], count: int) -> tuple[list[bytes], list[int]]:
    """``count`` raw records that fail ``decode_transaction``, and where they arrive."""
    rnd = random.Random(f"fraud-malformed:{seed}")
    out: list[bytes] = []
    template: dict[str, Any] = {
        "tx_id": "tx-x",
        "card_id": "c-00000",
        "merchant_id": "m-00000",
        "merchant_category": "grocery",
        "amount": 12.5,
        "currency": "EUR",
        "ts": DEFAULT_START_MS,
        "lat": 52.37,
        "lon": 4.9,
        "country": "NL",
    }
    wrong_types: list[tuple[str, Any]] = [
        ("amount", "12,50"),
        ("amount", None),
        ("ts", "2024-06-01T10:00:00Z"),
        ("ts", 1717200000000.5),
        ("card_id", 4242424242424242),
        ("lat", "52.37N"),
        ("tx_id", None),
        ("country", ["NL"]),
    ]
    for i in range(count):
        tx = dict(rnd.choice(txs)) if txs else dict(template)
        tx["tx_id"] = f"tx-bad-{i:06d}"
        kind = rnd.randrange(6)
        if kind == 0:  # truncated JSON
            raw = _ENCODER.encode(tx)
            raw = raw[: rnd.randint(1, len(raw) - 2)]
        elif kind == 1:  # binary garbage, not UTF-8
            raw = b"\xff" + bytes(
                rnd.choice([b for b in range(256) if b not in (10, 13)])
                for _ in range(rnd.randint(4, 40))
            )
        elif kind == 2:  # not JSON at all: a CSV line
            raw = ",".join(str(tx[f]) for f in TRANSACTION_FIELDS).encode()
        elif kind == 3:  # missing required field(s)
            for f in rnd.sample(TRANSACTION_FIELDS, rnd.randint(1, 3)):
                del tx[f]
            raw = _ENCODER.encode(tx)
        elif kind == 4:  # wrong type
            f, v = rnd.choice(wrong_types)
            tx[f] = v
            raw = _ENCODER.encode(tx)
        else:  # valid JSON, but not an object
            raw = _ENCODER.encode([tx[f] for f in TRANSACTION_FIELDS])
        out.append(raw)
    positions = sorted(rnd.randint(0, len(txs)) for _ in range(count))
    return out, positions
