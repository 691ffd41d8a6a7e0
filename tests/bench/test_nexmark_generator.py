"""The Nexmark generator: determinism, chunking, the Beam model's proportions and id rules,
field names, and bounded out-of-orderness."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.nexmark import generator as gen
from bench.nexmark.cli import main as cli_main
from bench.nexmark.generator import (
    AUCTION_FIELDS,
    BID_FIELDS,
    DEFAULT_FIRST_EVENT_TIME_MS,
    PERSON_FIELDS,
    GeneratorConfig,
    count_kinds,
    event_kind,
    generate,
    last_base0_auction_id,
    last_base0_person_id,
    write_jsonl,
)

N = 100_000


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(generate(N, seed=42))


def test_same_seed_same_events_other_seed_differs() -> None:
    a = list(generate(3000, seed=7))
    assert a == list(generate(3000, seed=7))
    b = list(generate(3000, seed=8))
    assert a != b
    # Same skeleton (ids, types, on-time timestamps) but different random fields.
    assert [e["type"] for e in a] == [e["type"] for e in b]
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 2900


def test_chunks_equal_slices_of_a_full_run() -> None:
    full = list(generate(5000, seed=3))
    for start, n in [(0, 5000), (1, 10), (1023, 2), (1500, 3000), (4999, 1), (2048, 0)]:
        assert list(generate(n, seed=3, first_event_number=start)) == full[start : start + n]


def test_write_jsonl_same_bytes_for_any_worker_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gen, "_CHUNK", 2 * gen.BLOCK)  # several tasks on a small run
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    s1 = write_jsonl(one, 9000, seed=5, first_event_number=700)
    s2 = write_jsonl(two, 9000, seed=5, first_event_number=700, workers=2)
    assert one.read_bytes() == two.read_bytes()
    lines = one.read_bytes().splitlines()
    assert [json.loads(x) for x in lines] == list(generate(9000, seed=5, first_event_number=700))
    assert s1["counts"] == s2["counts"] == Counter(json.loads(x)["type"] for x in lines)
    assert s1["bytes"] == one.stat().st_size


def test_proportions(events: list[dict[str, Any]]) -> None:
    counts = Counter(e["type"] for e in events)
    assert counts == {"person": N // 50, "auction": 3 * N // 50, "bid": 46 * N // 50}
    assert counts == count_kinds(GeneratorConfig(), N)
    for t, share in (("person", 0.02), ("auction", 0.06), ("bid", 0.92)):
        assert abs(counts[t] / N - share) < 0.001
    # The kind is a function of the event id: 1 person, 3 auctions, 46 bids per 50.
    assert [e["type"] for e in events[:50]] == ["person"] + ["auction"] * 3 + ["bid"] * 46
    cfg = GeneratorConfig()
    assert all(event_kind(cfg, n) == e["type"] for n, e in enumerate(events[:5000]))
    assert count_kinds(cfg, 777, first_event_number=123) == Counter(
        e["type"] for e in events[123:900]
    )


def test_field_names_exact(events: list[dict[str, Any]]) -> None:
    fields = {"person": PERSON_FIELDS, "auction": AUCTION_FIELDS, "bid": BID_FIELDS}
    assert PERSON_FIELDS == (
        "id", "name", "emailAddress", "creditCard", "city", "state", "dateTime", "extra",
    )  # fmt: skip
    assert AUCTION_FIELDS == (
        "id", "itemName", "description", "initialBid", "reserve", "dateTime", "expires",
        "seller", "category", "extra",
    )  # fmt: skip
    assert BID_FIELDS == ("auction", "bidder", "price", "channel", "url", "dateTime", "extra")
    for e in events[:20000]:
        assert tuple(e) == ("type", *fields[e["type"]])


def test_ids_follow_the_model(events: list[dict[str, Any]]) -> None:
    cfg = GeneratorConfig()
    persons = [e["id"] for e in events if e["type"] == "person"]
    auctions = [e["id"] for e in events if e["type"] == "auction"]
    assert persons == list(range(1000, 1000 + len(persons)))
    assert auctions == list(range(1000, 1000 + len(auctions)))
    hot_auction = hot_bidder = hot_seller = 0
    for n, e in enumerate(events):
        num_people = last_base0_person_id(cfg, n) + 1  # people created so far
        if e["type"] == "person":
            assert e["id"] - 1000 == num_people - 1
        elif e["type"] == "auction":
            assert e["id"] - 1000 == last_base0_auction_id(cfg, n)
            seller = e["seller"] - 1000
            # An active person (last 1000) or one of the next 10 ids ("lead").
            assert max(num_people - 1000, 0) <= seller < num_people + 10
            hot_seller += seller == ((num_people - 1) // 100) * 100
            assert 10 <= e["category"] <= 14
            assert e["reserve"] >= e["initialBid"] >= 1
            assert e["expires"] > e["dateTime"]
        else:
            last_auction = last_base0_auction_id(cfg, n)
            auction = e["auction"] - 1000
            # In flight (last 100) or up to 10 ahead: never an auction long gone.
            assert max(last_auction - 100, 0) <= auction <= last_auction + 10
            hot_auction += auction == (last_auction // 100) * 100
            bidder = e["bidder"] - 1000
            assert max(num_people - 1000, 0) <= bidder < num_people + 10
            hot_bidder += bidder == ((num_people - 1) // 100) * 100 + 1
            assert 100 <= e["price"] <= 100_000_000
            assert e["channel"] and e["url"].startswith("https://www.nexmark.com/")
    bids, auctions_n = 46 * N // 50, 3 * N // 50
    # P(hot) = 1 - 1/ratio (+ the chance a random pick lands on the hot id).
    assert 0.49 < hot_auction / bids < 0.53  # hot_auction_ratio = 2
    assert 0.74 < hot_bidder / bids < 0.76  # hot_bidders_ratio = 4
    assert 0.72 < hot_seller / auctions_n < 0.78  # hot_sellers_ratio = 4
    channels = Counter(e["channel"] for e in events if e["type"] == "bid")
    hot_channels = sum(channels[c] for c in gen.HOT_CHANNELS)
    assert 0.48 < hot_channels / bids < 0.52
    assert len(channels) > 5000


def test_sizes_close_to_beam_averages(events: list[dict[str, Any]]) -> None:
    def avg(t: str) -> float:
        sizes = [
            sum(len(v) if isinstance(v, str) else 8 for k, v in e.items() if k != "type")
            for e in events[:20000]
            if e["type"] == t
        ]
        return sum(sizes) / len(sizes)

    # Beam's size accounting differs slightly per type (channel/url are not counted).
    assert 180 < avg("person") < 220
    assert 450 < avg("auction") < 550


def test_timestamps_and_bounded_out_of_orderness(events: list[dict[str, Any]]) -> None:
    cfg = GeneratorConfig()
    late = 0
    max_seen = -1
    for n, e in enumerate(events):
        t = e["dateTime"]
        assert type(t) is int
        on_time = cfg.timestamp_for_event(n)
        assert on_time == DEFAULT_FIRST_EVENT_TIME_MS + n // 10  # 10,000 events/s
        assert on_time - cfg.max_out_of_order_ms <= t <= on_time
        assert t >= DEFAULT_FIRST_EVENT_TIME_MS
        if e["type"] == "auction":
            assert type(e["expires"]) is int
        late += t < on_time
        max_seen = max(max_seen, t)
        assert max_seen - t <= 3000  # never behind the watermark (max seen - 4 s)
    assert 0.08 < late / N < 0.11  # prob_delayed_event = 0.1 (minus clamped/zero delays)


@pytest.mark.parametrize("max_ooo", [0, 1, 250, 4000])
def test_out_of_orderness_parameter(max_ooo: int) -> None:
    max_seen, worst = -1, 0
    evs = list(generate(20000, seed=9, rate_per_s=1000, max_out_of_order_ms=max_ooo))
    for e in evs:
        max_seen = max(max_seen, e["dateTime"])
        worst = max(worst, max_seen - e["dateTime"])
    assert worst <= max_ooo
    if max_ooo >= 250:
        assert worst > max_ooo * 0.9
    # rate 1000/s: one event per ms; the last on-time event is due at +19,999 ms
    last_due = DEFAULT_FIRST_EVENT_TIME_MS + 19999
    assert last_due - max_ooo <= max(e["dateTime"] for e in evs) <= last_due


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_out_of_order_ms"):
        GeneratorConfig(max_out_of_order_ms=4001)
    with pytest.raises(ValueError):
        GeneratorConfig(rate_per_s=0)
    with pytest.raises(ValueError):
        list(generate(-1))


def test_first_event_time_and_rate() -> None:
    evs = list(generate(100, seed=1, first_event_time_ms=0, rate_per_s=50, max_out_of_order_ms=0))
    assert [e["dateTime"] for e in evs] == [n * 20 for n in range(100)]


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ev.jsonl"
    rc = cli_main(
        ["generate", "--events", "2500", "--seed", "4", "--out", str(out), "--rate", "500"]
    )
    assert rc == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["events"] == 2500
    assert stats["counts"] == {"person": 50, "auction": 150, "bid": 2300}
    assert stats["events_per_s"] > 0 and stats["seconds"] >= 0
    assert [json.loads(x) for x in out.read_text().splitlines()] == list(
        generate(2500, seed=4, rate_per_s=500)
    )
    rc = cli_main(["generate", "--events", "1", "--out", str(out), "--max-out-of-order-ms", "9000"])
    assert rc == 2
