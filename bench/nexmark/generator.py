"""The Nexmark event generator: people, auctions and bids, as in Apache Beam's / Flink's Nexmark.

The model (Beam ``GeneratorConfig`` / ``Generator`` / ``{Person,Auction,Bid}Generator``)
-----------------------------------------------------------------------------------------
Events are numbered ``0, 1, 2, ...`` (the *event number* ``n``). The *event id* is
``first_event_id + n`` and decides what the event is: ``id % 50`` below 1 is a person, below
4 an auction, else a bid (proportions Person 1 : Auction 3 : Bid 46, i.e. 2% / 6% / 92%).
The id also decides the entity's own id: the k-th person (k from 0) gets ``id = 1000 + k``
and the k-th auction ``id = 1000 + k``, so both are dense and increase in stream order.

References point back at recent entities, as in Beam:

* a bid is for a *hot* auction with probability ``1 - 1/hot_auction_ratio`` (the first
  auction of the current batch of 100), otherwise for a random auction among the last
  ``num_in_flight_auctions`` (100) plus up to 10 not yet created ("lead") ids;
* a bid's bidder is a *hot* bidder with probability ``1 - 1/hot_bidders_ratio`` (the second
  person of the current batch of 100), otherwise a random person among the last
  ``num_active_people`` (1000) plus up to 10 lead ids; auctions pick sellers the same way
  with ``hot_sellers_ratio`` (the first person of the batch);
* categories are ``10..14``; prices are ``round(10 ** (6 u) * 100)`` cents; an auction
  expires after a random length averaging the time it takes to create
  ``num_in_flight_auctions`` more auctions; the ``extra`` padding makes people ~200 bytes,
  auctions ~500 and bids ~100, as Beam's ``avg*ByteSize``.

Time: event ``n`` is due at ``t(n) = first_event_time_ms + int(n * 1e6 / rate_per_s) // 1000``
(Beam's ``timestampForEvent`` with ``interEventDelayUs = 1e6 / firstEventRate``), so the
default 10,000 events/s puts 10 events in each millisecond. ``dateTime`` and ``expires`` are
epoch milliseconds (ints).

Out-of-order events: with probability ``prob_delayed_event`` (Beam default 0.1) an event is
*late*: its ``dateTime`` is ``t(n) - d`` with ``d`` uniform in ``[1, max_out_of_order_ms]``
(clamped at ``first_event_time_ms``), while it keeps its place ``n`` in the stream. As every
event before it in the stream has ``dateTime <= t(n)``, an event is never more than
``max_out_of_order_ms`` behind the maximum ``dateTime`` seen so far; keeping that at most
4 s (the Nexmark watermark is ``max seen - 4 s``) means no event is ever behind the watermark.
Beam instead holds a delayed event back in *arrival* order by ``occasionalDelaySec``; the
lateness it produces is the same, but here every entity id stays at its event number, which
keeps generation chunkable.

Determinism: everything comes from ``random.Random`` seeded from ``(seed, block)`` for blocks
of :data:`BLOCK` consecutive event numbers, so a run is a pure function of the seed and any
slice ``[a, b)`` of the stream can be generated alone (``first_event_number=a``) and is equal
to the same slice of a full run. (Seeding one ``Random`` per event, ~5 µs, would cost more
than generating the event.) Strings (names, descriptions, e-mails, ``extra``) are slices of
fixed pseudo-random pools at random offsets with Beam's length distributions; they have the
same alphabet and lengths as Beam's strings, not the same bytes.

>>> from bench.nexmark.generator import generate
>>> events = list(generate(50, seed=1))
>>> [e["type"] for e in events[:6]]
['person', 'auction', 'auction', 'auction', 'bid', 'bid']
>>> events[0]["id"], events[1]["id"], events[3]["id"]
(1000, 1000, 1002)
>>> events[4]["auction"] in range(1000, 1013) and events[4]["bidder"] in range(1000, 1011)
True
>>> sorted(events[4])
['auction', 'bidder', 'channel', 'dateTime', 'extra', 'price', 'type', 'url']
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "AUCTION_FIELDS",
    "BID_FIELDS",
    "BLOCK",
    "DEFAULT_FIRST_EVENT_TIME_MS",
    "FIRST_AUCTION_ID",
    "FIRST_CATEGORY_ID",
    "FIRST_PERSON_ID",
    "NEXMARK_WATERMARK_DELAY_MS",
    "NUM_CATEGORIES",
    "PERSON_FIELDS",
    "GeneratorConfig",
    "count_kinds",
    "event_kind",
    "generate",
    "generate_blocks",
    "last_base0_auction_id",
    "last_base0_person_id",
    "write_jsonl",
]

FIRST_PERSON_ID = 1000
FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID = 10
NUM_CATEGORIES = 5
PERSON_ID_LEAD = 10
AUCTION_ID_LEAD = 10
HOT_SELLER_RATIO = 100
HOT_AUCTION_RATIO = 100
HOT_BIDDER_RATIO = 100
HOT_CHANNELS_RATIO = 2
CHANNELS_NUMBER = 10_000
NEXMARK_WATERMARK_DELAY_MS = 4_000
"""The Nexmark watermark trails the largest event time seen by this much."""
DEFAULT_FIRST_EVENT_TIME_MS = 1_700_000_000_000
"""2023-11-14T22:13:20Z: a fixed, 10-second-aligned default so runs are reproducible."""
BLOCK = 1024
"""Event numbers ``[k * BLOCK, (k + 1) * BLOCK)`` share one ``random.Random``."""

PERSON_FIELDS = (
    "id", "name", "emailAddress", "creditCard", "city", "state", "dateTime", "extra",
)  # fmt: skip
AUCTION_FIELDS = (
    "id", "itemName", "description", "initialBid", "reserve", "dateTime", "expires",
    "seller", "category", "extra",
)  # fmt: skip
BID_FIELDS = ("auction", "bidder", "price", "channel", "url", "dateTime", "extra")

US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")
US_CITIES = (
    "Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond",
    "Seattle", "Kent", "Cheyenne",
)  # fmt: skip
FIRST_NAMES = (
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter",
    "Walter",
)  # fmt: skip
LAST_NAMES = (
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
)  # fmt: skip
HOT_CHANNELS = ("Google", "Facebook", "Baidu", "Apple")

_MASK64 = (1 << 64) - 1
_POOL_SIZE = 1 << 16
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _make_pools() -> tuple[str, str]:
    r = random.Random("nexmark-string-pools")
    letters = "".join(r.choices(_LETTERS, k=_POOL_SIZE + 1024))
    # Beam's nextString: each char is a space with probability 1/13, else a random letter.
    spaced = "".join(
        " " if r.random() * 13 < 1 else _LETTERS[int(r.random() * 26)]
        for _ in range(_POOL_SIZE + 128)
    )
    return letters, spaced


_LETTER_POOL, _SPACED_POOL = _make_pools()


def _base_url(r: random.Random) -> str:
    """Beam's ``getBaseUrl``: three random path segments (spaces as ``_``)."""
    parts = []
    for _ in range(3):
        n = 3 + int(r.random() * 2)  # nextString(random, 5, '_'): length 3..4
        s = "".join(
            "_" if r.random() * 13 < 1 else _LETTERS[int(r.random() * 26)] for _ in range(n)
        )
        parts.append(s)
    return "https://www.nexmark.com/" + "/".join(parts) + "/item.htm?query=1"


_HOT_URLS = tuple(_base_url(random.Random(f"nexmark-hot-url-{i}")) for i in range(4))


def _java_int_reverse(n: int) -> int:
    """``Math.abs(Integer.reverse(n))`` for ``0 <= n < 2**31``."""
    v = int(f"{n & 0xFFFFFFFF:032b}"[::-1], 2)
    if v >= 1 << 31:
        v -= 1 << 32
    return abs(v)


def _make_channels() -> tuple[tuple[str, str], ...]:
    """Beam's ``getNextChannelAndurl`` for every channel number, made deterministic.

    Beam draws each channel's URL from an unseeded ``Random`` on first use; here one seeded
    ``Random`` draws them all up front (~30 ms), so the table is the same in every process.
    """
    r = random.Random("nexmark-channels")
    table = []
    for number in range(CHANNELS_NUMBER):
        url = _base_url(r)
        if r.random() * 10 >= 1:
            url = f"{url}&channel_id={_java_int_reverse(number)}"
        table.append((f"channel-{number}", url))
    return tuple(table)


_CHANNELS = _make_channels()
# Beam: with probability 1/HOT_CHANNELS_RATIO (1/2) one of 10,000 channels, else one of the 4 hot
# channels. One uniform pick from this table of 2 x 10,000 entries has the same distribution.
_CHANNEL_TABLE = _CHANNELS + tuple(
    (HOT_CHANNELS[i % 4], _HOT_URLS[i % 4]) for i in range(CHANNELS_NUMBER)
)


@dataclasses.dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """Knobs of the generator; defaults are Beam's ``NexmarkConfiguration`` defaults."""

    seed: int = 0
    first_event_time_ms: int = DEFAULT_FIRST_EVENT_TIME_MS
    """Beam ``baseTime``: ``dateTime`` of event number 0 (epoch ms)."""
    rate_per_s: float = 10_000.0
    """Beam ``firstEventRate``: event ``n`` is due ``n / rate_per_s`` s after the base."""
    max_out_of_order_ms: int = 3_000
    """A late event is up to this many ms behind the largest earlier ``dateTime`` (<= 4000).
    Default 3 s as Beam's ``occasionalDelaySec``."""
    prob_delayed_event: float = 0.1
    """Beam ``probDelayedEvent``: the fraction of events that are late."""
    first_event_id: int = 0
    person_proportion: int = 1
    auction_proportion: int = 3
    bid_proportion: int = 46
    num_active_people: int = 1000
    num_in_flight_auctions: int = 100
    hot_auction_ratio: int = 2
    hot_sellers_ratio: int = 4
    hot_bidders_ratio: int = 4
    avg_person_byte_size: int = 200
    avg_auction_byte_size: int = 500
    avg_bid_byte_size: int = 100

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        if not 0 <= self.max_out_of_order_ms <= NEXMARK_WATERMARK_DELAY_MS:
            raise ValueError(
                f"max_out_of_order_ms must be in [0, {NEXMARK_WATERMARK_DELAY_MS}] so that the "
                f"Nexmark watermark (max seen - {NEXMARK_WATERMARK_DELAY_MS} ms) drops no event"
            )
        if not 0.0 <= self.prob_delayed_event <= 1.0:
            raise ValueError("prob_delayed_event must be in [0, 1]")
        if min(self.person_proportion, self.auction_proportion, self.bid_proportion) < 1:
            raise ValueError("proportions must be >= 1")
        if self.first_event_id < 0:
            raise ValueError("first_event_id must be >= 0")

    @property
    def total_proportion(self) -> int:
        return self.person_proportion + self.auction_proportion + self.bid_proportion

    @property
    def inter_event_delay_us(self) -> float:
        return 1_000_000.0 / self.rate_per_s

    def timestamp_for_event(self, event_number: int) -> int:
        """Beam ``timestampForEvent``: the on-time ``dateTime`` of event ``event_number``."""
        return self.first_event_time_ms + int(event_number * self.inter_event_delay_us) // 1000


def event_kind(cfg: GeneratorConfig, event_number: int) -> str:
    """``"person"``, ``"auction"`` or ``"bid"``: what event ``event_number`` is."""
    rem = (cfg.first_event_id + event_number) % cfg.total_proportion
    if rem < cfg.person_proportion:
        return "person"
    if rem < cfg.person_proportion + cfg.auction_proportion:
        return "auction"
    return "bid"


def last_base0_person_id(cfg: GeneratorConfig, event_id: int) -> int:
    """Beam ``lastBase0PersonId``: the newest person id (minus 1000) at ``event_id``."""
    epoch, offset = divmod(event_id, cfg.total_proportion)
    if offset >= cfg.person_proportion:
        offset = cfg.person_proportion - 1
    return epoch * cfg.person_proportion + offset


def last_base0_auction_id(cfg: GeneratorConfig, event_id: int) -> int:
    """Beam ``lastBase0AuctionId``: the newest auction id (minus 1000) at ``event_id``."""
    epoch, offset = divmod(event_id, cfg.total_proportion)
    if offset < cfg.person_proportion:
        epoch -= 1
        offset = cfg.auction_proportion - 1
    elif offset >= cfg.person_proportion + cfg.auction_proportion:
        offset = cfg.auction_proportion - 1
    else:
        offset -= cfg.person_proportion
    return epoch * cfg.auction_proportion + offset


def _count_below(limit: int, cfg: GeneratorConfig) -> tuple[int, int, int]:
    """(persons, auctions, bids) among event ids ``[0, limit)``."""
    p, a, total = cfg.person_proportion, cfg.auction_proportion, cfg.total_proportion
    full, rem = divmod(limit, total)
    persons = full * p + min(rem, p)
    auctions = full * a + min(max(rem - p, 0), a)
    return persons, auctions, limit - persons - auctions


def count_kinds(cfg: GeneratorConfig, n: int, first_event_number: int = 0) -> dict[str, int]:
    """How many of each type ``generate(n, first_event_number=...)`` yields (no generation)."""
    lo = cfg.first_event_id + first_event_number
    p1, a1, b1 = _count_below(lo + n, cfg)
    p0, a0, b0 = _count_below(lo, cfg)
    return {"person": p1 - p0, "auction": a1 - a0, "bid": b1 - b0}


def _extra_params(current_size: int, avg: int) -> tuple[int, int]:
    """Beam ``nextExtra`` length: ``(min, span)``, the length being ``min + rand(span)``."""
    if current_size > avg:
        return 0, 0
    desired = avg - current_size
    delta = int(desired * 0.2 + 0.5)  # Java Math.round
    return desired - delta, 2 * delta


def _block_seed(seed: int, block: int) -> int:
    return ((seed & _MASK64) << 64) | block


def _gen_block(cfg: GeneratorConfig, block: int, count: int) -> list[dict[str, Any]]:
    """Events ``block * BLOCK`` .. ``block * BLOCK + count - 1`` (``count <= BLOCK``).

    One hot loop for speed: per-epoch (50 events) id bounds are computed once per epoch, and
    a uniform draw that decided a branch is rescaled and reused inside the branch.
    """
    rnd = random.Random(_block_seed(cfg.seed, block)).random
    out: list[dict[str, Any]] = []
    append = out.append

    P = cfg.person_proportion
    A = cfg.auction_proportion
    PA = P + A
    total = cfg.total_proportion
    base = cfg.first_event_time_ms
    delay_us = cfg.inter_event_delay_us
    delay_int = int(delay_us) if delay_us == int(delay_us) else 0
    p_late = cfg.prob_delayed_event
    max_ooo = cfg.max_out_of_order_ms if p_late > 0 else 0
    active_people = cfg.num_active_people
    in_flight = cfg.num_in_flight_auctions
    hot_auction = cfg.hot_auction_ratio
    hot_sellers = cfg.hot_sellers_ratio
    hot_bidders = cfg.hot_bidders_ratio
    events_for_auctions = (in_flight * total) // A
    avg_person = cfg.avg_person_byte_size
    avg_auction = cfg.avg_auction_byte_size
    bid_extra_min, bid_extra_span = _extra_params(32, cfg.avg_bid_byte_size)
    letters = _LETTER_POOL
    spaced = _SPACED_POOL
    pool = _POOL_SIZE
    pool_mask = _POOL_SIZE - 1
    channels = _CHANNEL_TABLE
    n_channels = len(channels)
    first_names, last_names = FIRST_NAMES, LAST_NAMES
    cities, states = US_CITIES, US_STATES
    nf, nl, nc, ns = len(first_names), len(last_names), len(cities), len(states)

    def epoch_bounds(epoch: int) -> tuple[int, int, int, int, int, int, int]:
        """Id choices valid for every auction/bid of ``epoch`` (ids include the 1000 base)."""
        num_people = epoch * P + P  # lastBase0PersonId + 1 for auctions and bids
        last_auction = epoch * A + A - 1  # lastBase0AuctionId for bids
        act = min(num_people, active_people)
        a_lo = max(last_auction - in_flight, 0)
        return (
            (last_auction // HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO + FIRST_AUCTION_ID,
            a_lo + FIRST_AUCTION_ID,
            last_auction - a_lo + 1 + AUCTION_ID_LEAD,
            ((num_people - 1) // HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1 + FIRST_PERSON_ID,
            ((num_people - 1) // HOT_SELLER_RATIO) * HOT_SELLER_RATIO + FIRST_PERSON_ID,
            num_people - act + FIRST_PERSON_ID,
            act + PERSON_ID_LEAD,
        )

    start = block * BLOCK
    if delay_int:
        times = [base + k * delay_int // 1000 for k in range(start, start + count)]
    else:
        times = [base + int(k * delay_us) // 1000 for k in range(start, start + count)]
    if max_ooo:
        # Each event is late with probability p_late: jump from one late event to the next
        # with geometric gaps, then delay it uniformly by 1..max_ooo ms.
        log_q = math.log(1.0 - p_late) if p_late < 1.0 else 0.0
        i = -1
        while True:
            i += 1 if not log_q else 1 + int(math.log(1.0 - rnd()) / log_q)
            if i >= BLOCK:  # not count: a block's draws must not depend on its length
                break
            t = -1 - int(rnd() * max_ooo)
            if i < count:
                t += times[i]
                times[i] = t if t > base else base
    epoch, off = divmod(cfg.first_event_id + start, total)
    hot_a, a_lo, a_span, hot_b, hot_s, p_lo, p_span = epoch_bounds(epoch)
    off -= 1  # incremented first thing in the loop
    for i, ts in enumerate(times):
        off += 1
        if off == total:
            off = 0
            epoch += 1
            hot_a, a_lo, a_span, hot_b, hot_s, p_lo, p_span = epoch_bounds(epoch)
        if off >= PA:
            # ---- bid: P(hot auction) = 1 - 1/hot_auction_ratio, etc. ----
            u = rnd() * hot_auction
            auction = hot_a if u >= 1 else a_lo + int(u * a_span)
            u = rnd() * hot_bidders
            bidder = hot_b if u >= 1 else p_lo + int(u * p_span)
            price = int(10.0 ** (rnd() * 6.0) * 100.0 + 0.5)
            channel, url = channels[int(rnd() * n_channels)]
            u = rnd()
            o = int(u * 4294967296.0) & pool_mask
            append(
                {
                    "type": "bid",
                    "auction": auction,
                    "bidder": bidder,
                    "price": price,
                    "channel": channel,
                    "url": url,
                    "dateTime": ts,
                    "extra": letters[o : o + bid_extra_min + int(u * bid_extra_span)],
                }
            )
        elif off >= P:
            # ---- auction ----
            u = rnd() * hot_sellers
            seller = hot_s if u >= 1 else p_lo + int(u * p_span)
            category = FIRST_CATEGORY_ID + int(rnd() * NUM_CATEGORIES)
            initial_bid = int(10.0 ** (rnd() * 6.0) * 100.0 + 0.5)
            # Beam nextAuctionLengthMs: average = time to create num_in_flight_auctions more.
            n = start + i
            if delay_int:
                horizon = (n + events_for_auctions) * delay_int // 1000 - n * delay_int // 1000
            else:
                horizon = (
                    int((n + events_for_auctions) * delay_us) // 1000 - int(n * delay_us) // 1000
                )
            expires = ts + 1 + int(rnd() * (horizon * 2 if horizon > 0 else 1))
            o = int(rnd() * pool)
            name = spaced[o : o + 3 + int(rnd() * 17)].strip()
            o = int(rnd() * pool)
            desc = spaced[o : o + 3 + int(rnd() * 97)].strip()
            reserve = initial_bid + int(10.0 ** (rnd() * 6.0) * 100.0 + 0.5)
            emin, espan = _extra_params(48 + len(name) + len(desc), avg_auction)
            u = rnd()
            o = int(u * 4294967296.0) & pool_mask
            append(
                {
                    "type": "auction",
                    "id": epoch * A + off - P + FIRST_AUCTION_ID,
                    "itemName": name,
                    "description": desc,
                    "initialBid": initial_bid,
                    "reserve": reserve,
                    "dateTime": ts,
                    "expires": expires,
                    "seller": seller,
                    "category": category,
                    "extra": letters[o : o + emin + int(u * espan)],
                }
            )
        else:
            # ---- person ----
            name = first_names[int(rnd() * nf)] + " " + last_names[int(rnd() * nl)]
            o = int(rnd() * pool)
            user = spaced[o : o + 3 + int(rnd() * 4)].strip()
            o = int(rnd() * pool)
            domain = spaced[o : o + 3 + int(rnd() * 2)].strip()
            email = f"{user}@{domain}.com"
            card = (
                f"{int(rnd() * 10000):04d} {int(rnd() * 10000):04d} "
                f"{int(rnd() * 10000):04d} {int(rnd() * 10000):04d}"
            )
            city = cities[int(rnd() * nc)]
            state = states[int(rnd() * ns)]
            emin, espan = _extra_params(
                8 + len(name) + len(email) + len(card) + len(city) + len(state), avg_person
            )
            u = rnd()
            o = int(u * 4294967296.0) & pool_mask
            append(
                {
                    "type": "person",
                    "id": epoch * P + off + FIRST_PERSON_ID,
                    "name": name,
                    "emailAddress": email,
                    "creditCard": card,
                    "city": city,
                    "state": state,
                    "dateTime": ts,
                    "extra": letters[o : o + emin + int(u * espan)],
                }
            )
    return out


def generate_blocks(
    n: int, cfg: GeneratorConfig, first_event_number: int = 0
) -> Iterator[list[dict[str, Any]]]:
    """Events ``first_event_number .. first_event_number + n - 1`` as lists of <= BLOCK dicts."""
    if n < 0 or first_event_number < 0:
        raise ValueError("n and first_event_number must be >= 0")
    stop = first_event_number + n
    block = first_event_number // BLOCK
    while block * BLOCK < stop:
        b0 = block * BLOCK
        rows = _gen_block(cfg, block, min(stop - b0, BLOCK))
        skip = first_event_number - b0
        yield rows[skip:] if skip > 0 else rows
        block += 1


def generate(
    n: int,
    seed: int = 0,
    first_event_time_ms: int = DEFAULT_FIRST_EVENT_TIME_MS,
    rate_per_s: float = 10_000.0,
    max_out_of_order_ms: int = 3_000,
    *,
    first_event_number: int = 0,
    config: GeneratorConfig | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``n`` Nexmark events as dicts with a ``type`` key (person, auction or bid).

    ``config`` overrides the keyword knobs (``seed`` etc.) when given.
    ``first_event_number`` starts mid-stream: ``generate(k, first_event_number=a)`` equals
    ``list(generate(a + k))[a:]``.
    """
    cfg = config or GeneratorConfig(
        seed=seed,
        first_event_time_ms=first_event_time_ms,
        rate_per_s=rate_per_s,
        max_out_of_order_ms=max_out_of_order_ms,
    )
    for rows in generate_blocks(n, cfg, first_event_number):
        yield from rows


def _encode_range(args: tuple[GeneratorConfig, int, int]) -> bytes:
    """JSON lines of events ``[first, first + count)`` (a worker task of :func:`write_jsonl`)."""
    cfg, first, count = args
    encode_lines = msgspec.json.Encoder().encode_lines
    return b"".join(encode_lines(rows) for rows in generate_blocks(count, cfg, first))


def _cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (the pool's workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


_CHUNK = 64 * BLOCK
"""Events per write (and per worker task) in :func:`write_jsonl`."""


def write_jsonl(
    path: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    first_event_time_ms: int = DEFAULT_FIRST_EVENT_TIME_MS,
    rate_per_s: float = 10_000.0,
    max_out_of_order_ms: int = 3_000,
    *,
    first_event_number: int = 0,
    config: GeneratorConfig | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Write ``n`` events as JSON lines to ``path``; return stats (counts, seconds, bytes).

    ``workers > 1`` generates chunks of the stream in that many processes; the file is
    byte-for-byte the same as with one worker (generation is chunkable).
    """
    cfg = config or GeneratorConfig(
        seed=seed,
        first_event_time_ms=first_event_time_ms,
        rate_per_s=rate_per_s,
        max_out_of_order_ms=max_out_of_order_ms,
    )
    if n < 0 or first_event_number < 0:
        raise ValueError("n and first_event_number must be >= 0")
    # Chunks aligned to BLOCK so that no block is generated twice.
    stop = first_event_number + n
    tasks = []
    a = first_event_number
    while a < stop:
        b = min((a // _CHUNK + 1) * _CHUNK, stop)
        tasks.append((cfg, a, b - a))
        a = b
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    written = 0
    with Path(path).open("wb") as f:
        if workers > 1 and len(tasks) > 1:
            import multiprocessing as mp

            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with mp.get_context(method).Pool(workers) as pool:
                for data in pool.imap(_encode_range, tasks):
                    written += f.write(data)
        else:
            for task in tasks:
                written += f.write(_encode_range(task))
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    return {
        "events": n,
        "seconds": round(seconds, 3),
        "events_per_s": round(n / seconds) if seconds > 0 else None,
        "cpu_seconds": round(cpu, 3),
        "events_per_cpu_s": round(n / cpu) if cpu > 0 else None,
        "counts": count_kinds(cfg, n, first_event_number),
        "bytes": written,
        "seed": cfg.seed,
        "first_event_number": first_event_number,
        "workers": workers,
    }
