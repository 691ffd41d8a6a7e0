"""The fraud-detection topology: four rules over card transactions, merged into ``alerts``.

* **velocity** (card testing): a sliding 5-minute window per card counts small transactions and
  sums them; many small ones in a short time is the signature of a stolen card being tested.
* **amount spike**: a running mean and variance of the card's log-amounts (Welford, in a store)
  scores each amount; a high z-score on a card with history is an anomaly.
* **impossible travel**: the card's last card-present position and time (in a store); a speed
  no airliner reaches means two physical cards.
* **blocklisted merchant**: a global table of blocked merchants joined on ``merchant_id``.

Every alert is then scored by a risk model behind HTTP (:mod:`apps.fraud_detection.model`),
through ``map_async``: ``{"tx_id", "card_id", "rule", "score", "reason", "ts", "risk"}``,
keyed by card.

>>> topo = build_topology()
>>> sorted(s.spec.name for sub in topo.compile().subtopologies for s in sub.stores)
['amount-stats', 'last-location', 'velocity']
"""

from __future__ import annotations

import math
import os
from typing import Any

import msgspec

import streams as st
from apps.fraud_detection.generator import decode_transaction, haversine_km
from apps.fraud_detection.model import ModelClient
from streams import agg, windows

TRANSACTIONS = "transactions"
BLOCKLIST = "merchant-blocklist"
ALERTS = "alerts"

VELOCITY_WINDOW_MS = 5 * 60_000
VELOCITY_MIN_COUNT = 4
VELOCITY_MAX_MEAN_EUR = 6.0
SPIKE_MIN_HISTORY = 5
SPIKE_MIN_Z = 3.0
SPIKE_MIN_RATIO = 8.0  # and at least this many times the card's usual (geometric mean) amount
SPIKE_IGNORE_BELOW_EUR = 5.0  # tiny amounts (card testing) would distort a card's profile
TRAVEL_MIN_KMH = 900.0
TRAVEL_MIN_KM = 500.0


def _alert(tx: dict[str, Any], rule: str, score: float, reason: str) -> dict[str, Any]:
    return {
        "tx_id": tx["tx_id"],
        "card_id": tx["card_id"],
        "rule": rule,
        "score": round(score, 3),
        "reason": reason,
        "ts": tx["ts"],
    }


def amount_spike(ctx: st.ProcessorContext) -> None:
    """Welford's running mean/variance of log(amount) per card; score before updating."""
    tx = ctx.value
    stats = ctx.store("amount-stats")
    n, mean, m2 = stats.get(ctx.key, (0, 0.0, 0.0))
    x = math.log(max(tx["amount"], 0.01))
    if n >= SPIKE_MIN_HISTORY:
        sd = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
        z = (x - mean) / max(sd, 0.25)  # floor the deviation: very regular cards
        if z >= SPIKE_MIN_Z and x - mean >= math.log(SPIKE_MIN_RATIO):
            ctx.forward(
                ctx.key,
                _alert(
                    tx,
                    "amount_spike",
                    z,
                    f"{tx['amount']:.2f} EUR is {math.exp(x - mean):.0f}x "
                    f"this card's usual amount (z={z:.1f})",
                ),
            )
            return  # an outlier does not teach the model what is normal
    if tx["amount"] < SPIKE_IGNORE_BELOW_EUR:
        return
    n += 1
    delta = x - mean
    mean += delta / n
    m2 += delta * (x - mean)
    stats.put(ctx.key, (n, mean, m2))


def impossible_travel(ctx: st.ProcessorContext) -> None:
    """Compare each transaction's position with the card's last one."""
    tx = ctx.value
    last = ctx.store("last-location")
    prev = last.get(ctx.key)
    if prev is not None:
        ts, lat, lon = prev
        km = haversine_km(lat, lon, tx["lat"], tx["lon"])
        hours = max(tx["ts"] - ts, 1) / 3_600_000
        kmh = km / hours
        if km >= TRAVEL_MIN_KM and kmh >= TRAVEL_MIN_KMH:
            ctx.forward(
                ctx.key,
                _alert(
                    tx,
                    "impossible_travel",
                    kmh / TRAVEL_MIN_KMH,
                    f"{km:.0f} km in {hours * 60:.0f} min ({kmh:.0f} km/h)",
                ),
            )
    if prev is None or tx["ts"] >= prev[0]:
        last.put(ctx.key, (tx["ts"], tx["lat"], tx["lon"]))


def _decode_transaction(raw: bytes) -> dict[str, Any]:
    """Strict decoding: a record with a missing field or a wrong type fails here, at the
    source, and goes to the dead-letter topic instead of breaking a rule downstream."""
    decode_transaction(raw)  # validates (fields, types)
    value: dict[str, Any] = _JSON_DECODE(raw)
    return value


TRANSACTION_SERDE = st.serde.of(msgspec.json.encode, _decode_transaction, name="transaction")
_JSON_DECODE = msgspec.json.Decoder().decode


MODEL_URL_ENV = "FRAUD_MODEL_URL"  # what --workers passes to its worker processes


def build_topology(
    app_id: str = "fraud-detector", prefix: str = "", model: ModelClient | None = None
) -> st.Topology:
    """The topology; ``prefix`` goes in front of the application id and every topic name
    (isolates runs on a shared broker). ``model``: the client of the model service (None: a
    client that starts a service of its own)."""
    topo = st.Topology(prefix + app_id)
    tx = topo.source(
        prefix + TRANSACTIONS,
        value=TRANSACTION_SERDE,
        timestamp="ts",
        max_out_of_orderness=3_000,
        idle_timeout=10_000,
        on_error="dead_letter",
    )  # -> "{app_id}-dlq"
    blocklist = topo.global_table(prefix + BLOCKLIST, name="global-merchant-blocklist")

    velocity = (
        tx.filter(st.col("amount") <= VELOCITY_MAX_MEAN_EUR, name="small-amounts")
        .window("velocity", windows.sliding(ms=VELOCITY_WINDOW_MS), emit="update")
        .aggregate(
            n=agg.count(),
            spent=agg.sum("amount"),
            tx_id=agg.last("tx_id"),
            card_id=agg.last("card_id"),
            ts=agg.last("ts"),
        )
        .filter(
            (st.col("n") >= VELOCITY_MIN_COUNT)
            & (st.col("spent") <= st.col("n") * VELOCITY_MAX_MEAN_EUR),
            name="velocity-rule",
        )
        .map_values(
            lambda w: _alert(
                w,
                "card_testing",
                w["n"] / VELOCITY_MIN_COUNT,
                f"{w['n']} small transactions, {w['spent']:.2f} EUR in 5 min",
            ),
            name="velocity-alert",
        )
    )
    spikes = tx.process("amount-spike", amount_spike, stores=["amount-stats"])
    travel = tx.process("impossible-travel", impossible_travel, stores=["last-location"])
    blocked = tx.join(
        blocklist,
        lambda t, m: _alert(
            t, "blocklisted_merchant", 1.0, f"merchant {t['merchant_id']} is blocklisted"
        ),
        key="merchant_id",
        name="blocklist-check",
    )
    alerts = velocity.merge(spikes, travel, blocked, name="all-alerts")
    # the model's risk for each alert: up to 50 calls in flight per task, in order
    scored = alerts.map_async(
        model or ModelClient(), concurrency=50, timeout=5.0, retries=2, name="model-risk"
    )
    scored.to(prefix + ALERTS)
    return topo


def from_env() -> st.Topology:
    """For ``streams run apps.fraud_detection.topology:from_env``: the topic/app-id prefix
    comes from ``$STREAMS_DEMO_PREFIX`` and the model service from ``$FRAUD_MODEL_URL`` (what
    ``--workers`` passes to its worker processes)."""
    return build_topology(
        prefix=os.environ.get("STREAMS_DEMO_PREFIX", ""),
        model=ModelClient(os.environ.get(MODEL_URL_ENV) or None),
    )


topology = build_topology()

__all__ = [
    "ALERTS",
    "BLOCKLIST",
    "MODEL_URL_ENV",
    "TRANSACTIONS",
    "build_topology",
    "from_env",
    "topology",
]
