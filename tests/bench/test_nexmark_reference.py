"""The DuckDB reference of the Nexmark queries, checked against hand-computed results on a
tiny handcrafted stream and against brute-force Python on generated events."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.nexmark import reference as ref
from bench.nexmark.cli import main as cli_main
from bench.nexmark.generator import write_jsonl
from bench.nexmark.reference import QUERIES, NexmarkReference

T0 = 1_700_000_000_000  # a multiple of 10 s


def person(id_: int, name: str, state: str, t: int) -> dict[str, Any]:
    return {
        "type": "person", "id": id_, "name": name, "emailAddress": f"{name}@x.com",
        "creditCard": "0000 0000 0000 0000", "city": "Bend", "state": state,
        "dateTime": T0 + t, "extra": "",
    }  # fmt: skip


def auction(id_: int, seller: int, category: int, t: int, expires: int) -> dict[str, Any]:
    return {
        "type": "auction", "id": id_, "itemName": f"item{id_}", "description": "d",
        "initialBid": 1, "reserve": 2, "dateTime": T0 + t, "expires": T0 + expires,
        "seller": seller, "category": category, "extra": "",
    }  # fmt: skip


def bid(auction_: int, bidder: int, price: int, t: int, extra: str = "") -> dict[str, Any]:
    return {
        "type": "bid", "auction": auction_, "bidder": bidder, "price": price,
        "channel": "Google", "url": "https://www.nexmark.com/a/b/c/item.htm?query=1",
        "dateTime": T0 + t, "extra": extra,
    }  # fmt: skip


# Times are ms after T0; lines are in arrival order (some bids arrive late).
TINY = [
    person(1000, "Alice", "OR", 1000),
    person(1001, "Bob", "CA", 9999),
    auction(1000, 1000, 10, 5000, 20000),
    auction(1001, 1000, 10, 8000, 9999),
    person(1002, "Carol", "WA", 10000),
    auction(1002, 1001, 11, 10000, 40000),
    auction(1003, 1002, 12, 19999, 30000),
    bid(1000, 2000, 100, 0, "b1"),
    bid(1107, 2000, 500, 1500, "b2"),
    bid(1001, 2000, 300, 9999, "b4"),
    bid(1000, 2001, 500, 2000, "b3"),  # late
    bid(1107, 2002, 1, 3000, "b8"),  # late
    bid(1230, 2001, 500, 10000, "b5"),
    bid(1000, 2000, 700, 15000, "b6"),
    bid(1107, 2000, 50, 25000, "b7"),
    bid(1002, 2000, 10, 35001, "b9"),
    bid(1107, 2003, 5, 500, "b10"),  # very late
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NexmarkReference]:
    path = tmp_path_factory.mktemp("nexmark") / "tiny.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in TINY))
    r = NexmarkReference(path)
    yield r
    r.close()


def test_tiny_counts(tiny: NexmarkReference) -> None:
    assert tiny.counts() == {"person": 3, "auction": 4, "bid": 10}


def test_q1_currency(tiny: NexmarkReference) -> None:
    rows = tiny.q1()
    assert [r["extra"] for r in rows] == [
        "b1", "b2", "b4", "b3", "b8", "b5", "b6", "b7", "b9", "b10",
    ]  # fmt: skip
    expected = [90.8, 454.0, 272.4, 454.0, 0.908, 454.0, 635.6, 45.4, 9.08, 4.54]
    assert [r["price"] for r in rows] == pytest.approx(expected, rel=1e-12)
    assert set(rows[0]) == {"auction", "bidder", "price", "dateTime", "extra"}
    assert rows[0]["dateTime"] == T0 and rows[0]["auction"] == 1000 and rows[0]["bidder"] == 2000


def test_q2_selection(tiny: NexmarkReference) -> None:
    assert tiny.q2() == [
        {"auction": 1107, "price": 500},
        {"auction": 1107, "price": 1},
        {"auction": 1230, "price": 500},
        {"auction": 1107, "price": 50},
        {"auction": 1107, "price": 5},
    ]


def test_q3_local_items(tiny: NexmarkReference) -> None:
    assert tiny.q3() == [
        {"name": "Alice", "city": "Bend", "state": "OR", "id": 1000},
        {"name": "Alice", "city": "Bend", "state": "OR", "id": 1001},
    ]


def test_q4_avg_closing_price(tiny: NexmarkReference) -> None:
    # 1000: bids in [5000, 20000] -> 700 (the 0 and 2000 bids are before it opened);
    # 1001: the bid at exactly expires (9999) counts -> 300; category 10 -> (700+300)/2.
    # 1002 (category 11): 10. 1003: no bids -> no row for category 12.
    assert tiny.q4() == [{"category": 10, "final": 500.0}, {"category": 11, "final": 10.0}]


def test_q5_hot_items(tiny: NexmarkReference) -> None:
    # (window start after T0, auction, bids in [start, start + 10 s)); every auction with
    # the window's maximum count is listed.
    expected = [
        (-8000, 1107, 2),
        (-6000, 1107, 3),
        (-4000, 1107, 3),
        (-2000, 1107, 3),
        (0, 1107, 3),
        (2000, 1000, 1), (2000, 1001, 1), (2000, 1107, 1), (2000, 1230, 1),
        (4000, 1001, 1), (4000, 1230, 1),
        (6000, 1000, 1), (6000, 1001, 1), (6000, 1230, 1),
        (8000, 1000, 1), (8000, 1001, 1), (8000, 1230, 1),
        (10000, 1000, 1), (10000, 1230, 1),
        (12000, 1000, 1),
        (14000, 1000, 1),
        (16000, 1107, 1), (18000, 1107, 1), (20000, 1107, 1), (22000, 1107, 1),
        (24000, 1107, 1),
        (26000, 1002, 1), (28000, 1002, 1), (30000, 1002, 1), (32000, 1002, 1),
        (34000, 1002, 1),
    ]  # fmt: skip
    assert tiny.q5() == [
        {"auction": a, "num": n, "starttime": T0 + s, "endtime": T0 + s + 10000}
        for s, a, n in expected
    ]


def test_q7_highest_bid(tiny: NexmarkReference) -> None:
    # [0, 10 s): max 500, tied by b2 and b3 -> both. b5 (500 at exactly 10 s) belongs to
    # [10 s, 20 s) whose max is b6's 700, so it is not returned. [20, 30): b7. [30, 40): b9.
    assert [(r["extra"], r["price"], r["dateTime"] - T0) for r in tiny.q7()] == [
        ("b2", 500, 1500),
        ("b3", 500, 2000),
        ("b6", 700, 15000),
        ("b7", 50, 25000),
        ("b9", 10, 35001),
    ]
    assert set(tiny.q7()[0]) == {"auction", "bidder", "price", "dateTime", "extra"}


def test_q8_new_users(tiny: NexmarkReference) -> None:
    # Alice joined and sold (twice: one row) in [0, 10 s); Bob joined at 9999 but sold at
    # 10000 (next window); Carol joined at 10000 and sold at 19999, both in [10 s, 20 s).
    assert tiny.q8() == [
        {"id": 1000, "name": "Alice", "starttime": T0},
        {"id": 1002, "name": "Carol", "starttime": T0 + 10000},
    ]


def test_q11_sessions(tiny: NexmarkReference) -> None:
    # Bidder 2000 bids at 0, 1500, 9999, 15000, 25000, 35001: the 10,000 ms gap merges
    # (Flink's inclusive intersects), the 10,001 ms gap splits.
    def s(bidder: int, count: int, start: int, end: int) -> dict[str, int]:
        return {"bidder": bidder, "bid_count": count, "starttime": T0 + start, "endtime": T0 + end}

    assert tiny.q11() == [
        s(2000, 5, 0, 35000),
        s(2000, 1, 35001, 45001),
        s(2001, 2, 2000, 20000),
        s(2002, 1, 3000, 13000),
        s(2003, 1, 500, 10500),
    ]
    assert tiny.q11(merge_touching=False)[:3] == [
        s(2000, 4, 0, 25000),
        s(2000, 1, 25000, 35000),
        s(2000, 1, 35001, 45001),
    ]


def test_q18_q19_q20(tiny: NexmarkReference) -> None:
    last = {(r["bidder"], r["auction"]): r["extra"] for r in tiny.q18()}
    assert last == {
        (2000, 1000): "b6", (2000, 1107): "b7", (2000, 1001): "b4", (2000, 1002): "b9",
        (2001, 1000): "b3", (2001, 1230): "b5", (2002, 1107): "b8", (2003, 1107): "b10",
    }  # fmt: skip
    top = [(r["auction"], r["rank_number"], r["extra"]) for r in tiny.q19()]
    assert top[:3] == [(1000, 1, "b6"), (1000, 2, "b3"), (1000, 3, "b1")]
    assert [x for x in top if x[0] == 1107] == [
        (1107, 1, "b2"), (1107, 2, "b7"), (1107, 3, "b10"), (1107, 4, "b8"),
    ]  # fmt: skip
    q20 = tiny.q20()
    assert [(r["bid_extra"], r["auction"], r["auction_dateTime"] - T0) for r in q20] == [
        ("b1", 1000, 5000), ("b4", 1001, 8000), ("b3", 1000, 5000), ("b6", 1000, 5000),
    ]  # fmt: skip
    assert list(q20[0]) == [
        "auction", "bidder", "price", "channel", "url", "bid_dateTime", "bid_extra",
        "itemName", "description", "initialBid", "reserve", "auction_dateTime", "expires",
        "seller", "category", "auction_extra",
    ]  # fmt: skip


def test_ties_in_q18_and_q19(tmp_path: Path) -> None:
    path = tmp_path / "ties.jsonl"
    rows = [bid(1000, 1, 9, 100, "first"), bid(1000, 1, 9, 100, "second"), bid(1000, 1, 3, 50)]
    path.write_text("".join(json.dumps(e) + "\n" for e in rows))
    assert [r["extra"] for r in ref.q18(path)] == ["second"]  # last arrival wins
    assert [r["extra"] for r in ref.q19(path)] == ["first", "second", ""]  # arrival order


# ---------------------------------------------------------------- generated events


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("nexmark") / "gen.jsonl"
    # 100 events/s: 2,000 events span 20 s, so there are several windows and sessions.
    write_jsonl(path, 2000, seed=11, rate_per_s=100, max_out_of_order_ms=3000)
    return path, [json.loads(x) for x in path.read_text().splitlines()]


def test_every_query_runs_on_generated_events(
    generated: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, events = generated
    bids = [e for e in events if e["type"] == "bid"]
    with NexmarkReference(path) as r:
        results = {name: QUERIES[name](r) for name in QUERIES}
    assert len(results["q0"]) == len(results["q1"]) == len(bids)
    assert results["q0"][0] == {
        k: bids[0][k] for k in ("auction", "bidder", "price", "dateTime", "extra")
    }
    assert [x["auction"] for x in results["q2"]] == [
        b["auction"] for b in bids if b["auction"] % 123 == 0
    ]
    for name in ("q3", "q4", "q5", "q7", "q8", "q11", "q18", "q19", "q20"):
        assert results[name], name
    assert len(results["q18"]) == len({(b["bidder"], b["auction"]) for b in bids})
    assert sum(x["bid_count"] for x in results["q11"]) == len(bids)


def test_windowed_queries_match_brute_force(
    generated: tuple[Path, list[dict[str, Any]]],
) -> None:
    path, events = generated
    bids = [e for e in events if e["type"] == "bid"]
    # q5
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for b in bids:
        t = b["dateTime"]
        for s in range(t - t % 2000 - 8000, t + 1, 2000):
            counts[s][b["auction"]] += 1
    q5 = [
        {"auction": a, "num": n, "starttime": s, "endtime": s + 10000}
        for s in sorted(counts)
        for a, n in sorted(counts[s].items())
        if n == max(counts[s].values())
    ]
    # q7
    best: dict[int, int] = defaultdict(int)
    for b in bids:
        best[b["dateTime"] // 10000] = max(best[b["dateTime"] // 10000], b["price"])
    q7 = sorted(
        (
            (b["dateTime"], i, b)
            for i, b in enumerate(bids)
            if b["price"] == best[b["dateTime"] // 10000]
        ),
        key=lambda x: (x[0], x[1]),
    )
    # q8
    joined = {(p["id"], p["name"], p["dateTime"] // 10000) for p in events if p["type"] == "person"}
    sold = {(a["seller"], a["dateTime"] // 10000) for a in events if a["type"] == "auction"}
    q8 = sorted(
        ({"id": i, "name": n, "starttime": w * 10000} for i, n, w in joined if (i, w) in sold),
        key=lambda r: (r["starttime"], r["id"]),
    )
    # q11
    by_bidder: dict[int, list[int]] = defaultdict(list)
    for b in bids:
        by_bidder[b["bidder"]].append(b["dateTime"])
    q11 = []
    for bidder in sorted(by_bidder):
        ts = sorted(by_bidder[bidder])
        start = prev = ts[0]
        count = 0
        for t in ts:
            if t - prev > 10000:
                q11.append(
                    {
                        "bidder": bidder,
                        "bid_count": count,
                        "starttime": start,
                        "endtime": prev + 10000,
                    }
                )
                start, count = t, 0
            count += 1
            prev = t
        q11.append(
            {"bidder": bidder, "bid_count": count, "starttime": start, "endtime": prev + 10000}
        )
    with NexmarkReference(path) as r:
        assert r.q5() == q5
        assert [(x["dateTime"], x["price"], x["extra"]) for x in r.q7()] == [
            (t, b["price"], b["extra"]) for t, _, b in q7
        ]
        assert r.q8() == q8 and q8
        assert r.q11() == q11


def test_cli_reference(
    generated: tuple[Path, list[dict[str, Any]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = generated
    assert cli_main(["reference", "--in", str(path), "--query", "all", "--out", str(tmp_path)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["query"] for x in lines] == list(QUERIES)
    q5 = [json.loads(x) for x in (tmp_path / "q5.jsonl").read_text().splitlines()]
    assert q5 == ref.q5(path)
    assert cli_main(["reference", "--in", str(path), "--query", "q99"]) == 2
