"""Synthetic card transactions: schema, determinism and that injected fraud is what it says."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest

from apps.fraud_detection.generator import (
    PATTERNS,
    TRANSACTION_FIELDS,
    Dataset,
    decode_transaction,
    generate,
    ground_truth_summary,
    haversine_km,
    is_valid_record,
    write_jsonl,
)

N = 100_000


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return generate(N, seed=42, malformed_rate=0.005)


def _speed_kmh(a: dict[str, Any], b: dict[str, Any]) -> float:
    d = haversine_km(a["lat"], a["lon"], b["lat"], b["lon"])
    dt_h = abs(b["ts"] - a["ts"]) / 3_600_000
    if dt_h == 0:
        return 0.0 if d < 1e-9 else float("inf")
    return d / dt_h


def _by_card(ds: Dataset) -> dict[str, list[dict[str, Any]]]:
    """Each card's transactions in event-time order (emission order breaks ties)."""
    cards: dict[str, list[tuple[int, int, dict[str, Any]]]] = defaultdict(list)
    for i, tx in enumerate(ds.transactions):
        cards[tx["card_id"]].append((tx["ts"], i, tx))
    return {c: [t for _, _, t in sorted(v, key=lambda x: x[:2])] for c, v in cards.items()}


def test_deterministic_by_seed() -> None:
    a = generate(3_000, seed=5, cards=400, merchants=300, malformed_rate=0.01)
    b = generate(3_000, seed=5, cards=400, merchants=300, malformed_rate=0.01)
    c = generate(3_000, seed=6, cards=400, merchants=300, malformed_rate=0.01)
    assert a.transactions == b.transactions and a.fraud == b.fraud
    assert a.malformed == b.malformed and a.malformed_positions == b.malformed_positions
    assert a.blocklist == b.blocklist and a.episodes == b.episodes
    assert a.transactions != c.transactions


def test_world_independent_of_traffic_parameters() -> None:
    a = generate(1_000, seed=3, cards=200, merchants=100, fraud_rate=0.0)
    b = generate(2_000, seed=3, cards=200, merchants=100, fraud_rate=0.05)
    assert a.cards == b.cards and a.merchants == b.merchants and a.blocklist == b.blocklist
    assert not a.fraud


def test_schema_and_types(ds: Dataset) -> None:
    assert len(ds.transactions) == N
    merchants = {m["merchant_id"]: m for m in ds.merchants}
    cards = {c["card_id"] for c in ds.cards}
    assert len(ds.cards) == 5_000 and len(ds.merchants) == 2_000
    ids = set()
    for tx in ds.transactions:
        assert tuple(tx) == TRANSACTION_FIELDS
        assert isinstance(tx["amount"], float) and tx["amount"] > 0
        assert round(tx["amount"], 2) == tx["amount"]
        assert isinstance(tx["ts"], int) and not isinstance(tx["ts"], bool)
        assert isinstance(tx["lat"], float) and isinstance(tx["lon"], float)
        assert -90 <= tx["lat"] <= 90 and -180 <= tx["lon"] <= 180
        assert tx["currency"] == "EUR"
        assert tx["card_id"] in cards
        m = merchants[tx["merchant_id"]]
        assert tx["merchant_category"] == m["category"] and tx["country"] == m["country"]
        ids.add(tx["tx_id"])
    assert len(ids) == N
    assert len(ds.blocklist) == 20 and ds.blocklist <= set(merchants)


def test_time_order_with_small_disorder(ds: Dataset) -> None:
    ts = [tx["ts"] for tx in ds.transactions]
    span_h = (max(ts) - min(ts)) / 3_600_000
    assert 1.8 < span_h < 2.6
    running_max = ts[0]
    late = 0
    for t in ts[1:]:
        assert t >= running_max - 3_000  # out of order by at most a few seconds
        late += t < running_max
        running_max = max(running_max, t)
    assert 0.01 < late / N < 0.1


def test_fraud_rate_and_mix(ds: Dataset) -> None:
    summary = ground_truth_summary(ds)
    assert summary["total"] == len(ds.fraud)
    assert 0.012 < summary["total"] / N < 0.018
    for pattern, share in {
        "card_testing": 0.4,
        "amount_spike": 0.2,
        "impossible_travel": 0.2,
        "blocklisted_merchant": 0.2,
    }.items():
        assert summary[pattern] / summary["total"] == pytest.approx(share, abs=0.05), pattern
    tx_ids = {tx["tx_id"] for tx in ds.transactions}
    assert set(ds.fraud) <= tx_ids
    assert set(ds.fraud.values()) == set(PATTERNS)
    labelled = [t for ep in ds.episodes for t in ep["tx_ids"]]
    assert sorted(labelled) == sorted(ds.fraud)


def test_custom_mix() -> None:
    only = generate(20_000, seed=1, cards=1_000, merchants=500, mix={"amount_spike": 1.0})
    assert set(only.fraud.values()) == {"amount_spike"}
    assert len(only.fraud) == 300
    with pytest.raises(ValueError):
        generate(100, mix={"nope": 1.0})


def test_card_testing_bursts(ds: Dataset) -> None:
    txs = {tx["tx_id"]: tx for tx in ds.transactions}
    bursts = [ep for ep in ds.episodes if ep["pattern"] == "card_testing"]
    assert bursts
    online = {m["merchant_id"] for m in ds.merchants if m["online"]}
    n_online = 0
    for ep in bursts:
        burst = [txs[t] for t in ep["tx_ids"]]
        assert 8 <= len(burst) <= 20
        assert {t["card_id"] for t in burst} == {ep["card_id"]}
        span = max(t["ts"] for t in burst) - min(t["ts"] for t in burst)
        assert 60_000 <= span <= 300_000
        assert all(0.5 <= t["amount"] <= 5.0 for t in burst)
        n_online += sum(t["merchant_id"] in online for t in burst)
    assert n_online / sum(len(ep["tx_ids"]) for ep in bursts) > 0.6  # mostly online


def test_amount_spikes(ds: Dataset) -> None:
    spikes = {t for t, p in ds.fraud.items() if p == "amount_spike"}
    cards = {c["card_id"]: c for c in ds.cards}
    prior: dict[str, list[float]] = defaultdict(list)
    checked = 0
    for tx in ds.transactions:  # emission order: what a streaming detector has seen
        if tx["tx_id"] in spikes:
            history = prior[tx["card_id"]]
            assert len(history) >= 5
            assert tx["amount"] >= 10 * statistics.median(history)
            assert tx["amount"] >= 10 * cards[tx["card_id"]]["typical_amount"]
            checked += 1
        prior[tx["card_id"]].append(tx["amount"])
    assert checked == len(spikes) > 0


def test_impossible_travel(ds: Dataset) -> None:
    travel = {t for t, p in ds.fraud.items() if p == "impossible_travel"}
    checked = 0
    for txs in _by_card(ds).values():
        for a, b in itertools.pairwise(txs):
            if b["tx_id"] in travel:
                assert _speed_kmh(a, b) > 900
                assert 20 * 60_000 <= b["ts"] - a["ts"] <= 60 * 60_000
                assert a["tx_id"] not in ds.fraud
                checked += 1
    assert checked == len(travel) > 0


def test_legitimate_traffic_has_no_impossible_travel(ds: Dataset) -> None:
    legit = violations = 0
    for txs in _by_card(ds).values():
        for a, b in itertools.pairwise(txs):
            if b["tx_id"] not in ds.fraud:
                legit += 1
                violations += _speed_kmh(a, b) > 900
    assert legit > 0.9 * N
    assert violations / legit < 0.001


def test_blocklisted_merchants(ds: Dataset) -> None:
    labelled = {t for t, p in ds.fraud.items() if p == "blocklisted_merchant"}
    at_blocked = {tx["tx_id"] for tx in ds.transactions if tx["merchant_id"] in ds.blocklist}
    assert labelled == at_blocked and labelled  # every purchase there is fraud, and only those
    merchants = {m["merchant_id"]: m for m in ds.merchants}
    assert {merchants[m]["merchant_id"] for m in ds.blocklist} <= ds.blocklist


def test_malformed_records(ds: Dataset, tmp_path: Path) -> None:
    assert len(ds.malformed) == round(N * 0.005) == len(ds.malformed_positions)
    assert ds.malformed_positions == sorted(ds.malformed_positions)
    for raw in ds.malformed:
        assert isinstance(raw, bytes) and b"\n" not in raw
        assert not is_valid_record(raw)
        with pytest.raises(msgspec.DecodeError):
            decode_transaction(raw)
    kinds = Counter()
    for raw in ds.malformed:
        try:
            obj = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            kinds["not json"] += 1
            continue
        kinds["object" if isinstance(obj, dict) else "other json"] += 1
    assert kinds["not json"] and kinds["object"] and kinds["other json"]

    assert all(is_valid_record(msgspec.json.encode(tx)) for tx in ds.transactions[:2_000])
    path = tmp_path / "tx.jsonl"
    lines = write_jsonl(path, ds)
    assert lines == N + len(ds.malformed)
    raw_lines = path.read_bytes().split(b"\n")[:-1]
    assert len(raw_lines) == lines
    assert sum(not is_valid_record(r) for r in raw_lines) == len(ds.malformed)
    first_bad = ds.malformed_positions[0] + 0  # transactions before the first bad record
    assert raw_lines[first_bad] == ds.malformed[0]


def test_haversine() -> None:
    assert haversine_km(0, 0, 0, 0) == 0
    assert haversine_km(52.3676, 4.9041, 40.7128, -74.0060) == pytest.approx(5_860, rel=0.01)


def test_same_seed_same_data_across_processes():
    """Determinism must not depend on Python's per-process hash seed (set iteration order)."""
    import subprocess
    import sys

    code = (
        "import hashlib, json; from apps.fraud_detection.generator import generate; "
        "print(hashlib.md5(json.dumps(generate(3000, seed=42).transactions, "
        "sort_keys=True).encode()).hexdigest())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": str(h)},
            check=True,
        ).stdout
        for h in (1, 2, 3)
    }
    assert len(outs) == 1
