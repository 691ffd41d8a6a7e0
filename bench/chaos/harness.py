"""``python -m bench chaos``: exactly-once (and at-least-once) under SIGKILLs, a broker restart
and a rebalance storm, on a real Kafka broker of its own.

The harness starts a private broker (``scripts/kafka/kafka start --home``), creates fresh
topics, loads the ``users`` table, then produces ``--records`` events in chunks at ``--rate``
while 2-3 worker processes (``python -m streams run bench.chaos.app:topology``) process them.
Between chunks it injects the chaos, spread evenly over the run:

* ``--kills`` SIGKILLs of a random worker, restarted after ``--restart-delay`` seconds (same
  state directory); the time to recover is measured from the kill until every input partition's
  committed offset has moved past where it was (or reached the end);
* one broker restart (SIGKILL of the broker, restarted with its data: ``restart --hard``);
* a rebalance storm: extra workers join and leave a few times.

At the end it produces one record per partition far in the future (so every window closes),
waits until the outputs are complete (or ``--timeout``), stops the workers and checks, with a
``read_committed`` consumer, against the counts computed from the produced events:

* ``exactly_once``: each (segment, window) is emitted exactly once with the exact count, and
  every user's count output is strictly increasing and ends at the exact count: 0 lost, 0
  duplicated, state exact;
* ``at_least_once``: every window and every user's final count is at least the exact one (0 lost).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]

from bench.chaos.app import WINDOW_MS
from streams.core.serde import INT

REPO = Path(__file__).resolve().parents[2]
KAFKA = REPO / "scripts" / "kafka" / "kafka"
SEGMENTS = 8
T0 = 1_700_000_000_000  # event time of the first event
STEP_MS = 10  # event time between consecutive events


@dataclass
class Options:
    records: int = 100_000
    rate: int = 5_000  # events/s produced
    partitions: int = 4
    workers: int = 3
    users: int = 500
    kills: int = 3
    restart_delay: float = 1.0
    broker_restart: bool = True
    storm: bool = True
    guarantee: str = "exactly_once"
    seed: int = 7
    timeout: float = 300.0
    bootstrap: str | None = None  # an external broker: no broker restart
    log_dir: str | None = None
    keep_broker: bool = False  # leave the broker running (post-mortem); stop it with the script


@dataclass
class Report:
    guarantee: str
    records: int
    windows_expected: int
    windows_seen: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    users_wrong: int = 0
    users_regressions: int = 0
    recoveries_s: list[float] = field(default_factory=list)
    broker_restart_s: float | None = None
    storm_joins: int = 0
    wall_s: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.guarantee == "exactly_once":
            return (
                not (self.lost or self.duplicated or self.wrong or self.users_wrong)
                and not self.users_regressions
            )
        return not (self.lost or self.users_wrong)

    def summary(self) -> str:
        rec = ", ".join(f"{r:.1f}" for r in self.recoveries_s) or "-"
        lines = [
            f"chaos ({self.guarantee}): {self.records} records, {self.wall_s:.0f} s",
            f"  windows: expected {self.windows_expected}, seen {self.windows_seen}, lost "
            f"{self.lost}, duplicated {self.duplicated}, wrong count {self.wrong}",
            f"  per-user counts: wrong final {self.users_wrong}, "
            f"regressions {self.users_regressions}",
            f"  recovery after each kill (s): {rec}",
            f"  broker restart: {self.broker_restart_s and f'{self.broker_restart_s:.1f} s'}; "
            f"rebalance storm joins: {self.storm_joins}",
            f"  result: {'PASS' if self.ok else 'FAIL'}",
            *(f"  e.g. {e}" for e in self.examples[:10]),
        ]
        return "\n".join(lines)


class Workers:
    """Worker processes of the chaos app, each with its own state dir and log."""

    def __init__(self, opts: Options, bootstrap: str, env: dict[str, str], root: Path) -> None:
        self.opts, self.bootstrap, self.env, self.root = opts, bootstrap, env, root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        cmd = [sys.executable, "-m", "streams", "run", "bench.chaos.app:topology"]
        cmd += ["--bootstrap", self.bootstrap, "--guarantee", self.opts.guarantee]
        cmd += ["--state-dir", str(self.root / "state" / name)]
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )

    def kill(self, name: str) -> None:
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self, name: str, timeout: float = 60) -> None:
        p = self.procs[name]
        if p.poll() is not None:  # it died on its own: that is a finding, not a stop
            self.check_alive()
        del self.procs[name]
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                tail = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {name} exited with {p.returncode}:\n{tail}")

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def _kafka(*args: str) -> str:
    res = subprocess.run(
        [sys.executable, str(KAFKA), *args], capture_output=True, text=True, timeout=300
    )
    if res.returncode != 0:
        raise RuntimeError(f"scripts/kafka/kafka {' '.join(args)} failed:\n{res.stderr}")
    lines = res.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def make_events(opts: Options) -> list[tuple[str, int, int]]:
    """(user key, event id, event time) in production order."""
    rng = random.Random(opts.seed)
    return [(f"u{rng.randrange(opts.users)}", i, T0 + i * STEP_MS) for i in range(opts.records)]


def expected(
    events: list[tuple[str, int, int]],
) -> tuple[Counter[tuple[str, int]], Counter[str]]:
    windows: Counter[tuple[str, int]] = Counter()
    users: Counter[str] = Counter()
    for user, _i, ts in events:
        windows[(segment(user), ts - ts % WINDOW_MS)] += 1
        users[user] += 1
    return windows, users


def segment(user: str) -> str:
    return f"s{int(user[1:]) % SEGMENTS}"


class Outputs:
    """A read_committed consumer of both outputs, accumulating in the background."""

    def __init__(self, bootstrap: str, windows_topic: str, counts_topic: str) -> None:
        self.bootstrap = bootstrap
        self.topics = (windows_topic, counts_topic)
        self.windows: list[tuple[str, int, int]] = []  # (segment, window start, count)
        self.counts: dict[str, list[int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:  # survives the broker restart by reconnecting
            c = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            try:
                await c.start()
                positions: dict[Any, int] = {}
                while True:
                    batch = await c.getmany(timeout_ms=500)
                    for tp, msgs in batch.items():
                        for m in msgs:
                            if m.offset < positions.get(tp, 0):
                                continue
                            positions[tp] = m.offset + 1
                            self._add(tp.topic, m.key, m.value)
            except asyncio.CancelledError:
                await c.stop()
                raise
            except Exception:  # broker restart: start over from scratch
                self.windows.clear()
                self.counts.clear()
                await c.stop()
                await asyncio.sleep(1)

    def _add(self, topic: str, key: bytes, value: bytes) -> None:
        if topic == self.topics[0]:
            v = json.loads(value)
            self.windows.append((key.decode(), v["window_start"], v["n"]))
        else:
            self.counts.setdefault(key.decode(), []).append(INT.deserialize(value))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _committed(admin: Any, group: str, tps: list[Any]) -> dict[Any, int]:
    try:
        got = await admin.list_consumer_group_offsets(group, partitions=tps)
    except Exception:  # the coordinator moves during a broker restart
        return {}
    return {tp: (om.offset if om.offset >= 0 else 0) for tp, om in got.items()}


async def _end_offsets(bootstrap: str, tps: list[Any]) -> dict[Any, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        return dict(await c.end_offsets(tps))
    finally:
        await c.stop()


async def _recovery_time(
    bootstrap: str, group: str, tps: list[Any], before: dict[Any, int], timeout: float
) -> float:
    """Seconds until every input partition's committed offset moved past ``before``."""
    t0 = time.monotonic()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while time.monotonic() - t0 < timeout:
            now = await _committed(admin, group, tps)
            ends = await _end_offsets(bootstrap, tps)
            if now and all(
                now.get(tp, 0) > before.get(tp, 0) or now.get(tp, 0) >= ends[tp] for tp in tps
            ):
                return time.monotonic() - t0
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    return float("nan")


async def run(opts: Options) -> Report:
    """Run one chaos scenario and return its report (see the module docstring)."""
    t_start = time.monotonic()
    root = Path(opts.log_dir or tempfile.mkdtemp(prefix="chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    own_broker = opts.bootstrap is None
    home = root / "kafka"
    bootstrap = opts.bootstrap or _kafka("start", "--home", str(home))
    uid = uuid.uuid4().hex[:8]
    names = {
        "CHAOS_APP": f"chaos-{uid}",
        "CHAOS_EVENTS": f"chaos-events-{uid}",
        "CHAOS_USERS": f"chaos-users-{uid}",
        "CHAOS_WINDOWS": f"chaos-windows-{uid}",
        "CHAOS_COUNTS": f"chaos-counts-{uid}",
    }
    env = {**os.environ, **names, "PYTHONPATH": str(REPO)}
    rng = random.Random(opts.seed)
    events = make_events(opts)
    want_windows, want_users = expected(events)
    report = Report(opts.guarantee, opts.records, len(want_windows))
    workers = Workers(opts, bootstrap, env, root)
    outputs = Outputs(bootstrap, names["CHAOS_WINDOWS"], names["CHAOS_COUNTS"])
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        p = opts.partitions
        # event times are in 2023: without retention.ms=-1 the broker's time-based retention
        # deletes input and output records mid-run (seen as "lost" early windows)
        keep = {"retention.ms": "-1"}
        await admin.create_topics(
            [
                NewTopic(names["CHAOS_EVENTS"], p, 1, topic_configs=keep),
                NewTopic(names["CHAOS_USERS"], p, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(names["CHAOS_WINDOWS"], 1, 1, topic_configs=keep),
                NewTopic(names["CHAOS_COUNTS"], p, 1, topic_configs=keep),
            ]
        )
        await admin.close()
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            linger_ms=20,
            request_timeout_ms=120_000,
        )
        await producer.start()
        for j in range(opts.users):
            user = f"u{j}"
            value = json.dumps({"segment": segment(user)}).encode()
            await producer.send(names["CHAOS_USERS"], value, key=user.encode(), timestamp_ms=T0 - 1)
        await producer.flush()
        await outputs.start()
        for n in range(opts.workers):
            workers.start(f"w{n}")
        tps = [TopicPartition(names["CHAOS_EVENTS"], i) for i in range(p)]

        # chaos actions, spread over the chunks
        chunks = max(10, opts.kills * 3 + 6)
        size = -(-len(events) // chunks)
        actions: dict[int, list[str]] = {}
        for k in range(opts.kills):
            actions.setdefault(1 + (k * (chunks - 2)) // max(1, opts.kills), []).append("kill")
        if opts.broker_restart and own_broker:
            actions.setdefault(chunks // 2, []).append("broker")
        if opts.storm:
            actions.setdefault((chunks * 3) // 4, []).append("storm")
        for c in range(chunks):
            t_chunk = time.monotonic()
            for user, i, ts in events[c * size : (c + 1) * size]:
                value = json.dumps({"id": i}).encode()
                await producer.send(
                    names["CHAOS_EVENTS"], value, key=user.encode(), timestamp_ms=ts
                )
            await producer.flush()
            workers.check_alive()
            for action in actions.get(c, []):
                if action == "kill":
                    victim = rng.choice(sorted(workers.procs))
                    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
                    await admin.start()
                    before = await _committed(admin, names["CHAOS_APP"], tps)
                    await admin.close()
                    workers.kill(victim)
                    await asyncio.sleep(opts.restart_delay)
                    workers.start(victim)
                    report.recoveries_s.append(
                        await _recovery_time(bootstrap, names["CHAOS_APP"], tps, before, 120)
                        + opts.restart_delay
                    )
                elif action == "broker":
                    t0 = time.monotonic()
                    await asyncio.to_thread(_kafka, "restart", "--hard", "--home", str(home))
                    report.broker_restart_s = time.monotonic() - t0
                elif action == "storm":
                    for r in range(3):
                        extra = f"x{r}"
                        workers.start(extra)
                        report.storm_joins += 1
                        await asyncio.sleep(3)
                        workers.stop(extra)
            pause = size / opts.rate - (time.monotonic() - t_chunk)
            if pause > 0:
                await asyncio.sleep(pause)
        last = events[-1][2] if events else T0
        for part in range(p):  # far ahead: every window before it closes
            await producer.send(
                names["CHAOS_EVENTS"],
                b"{}",
                key=b"flush",
                partition=part,
                timestamp_ms=last + 10 * WINDOW_MS,
            )
        await producer.flush()
        await producer.stop()

        deadline = time.monotonic() + opts.timeout
        while time.monotonic() < deadline:
            workers.check_alive()
            seen = {(s, w) for s, w, _n in outputs.windows}
            finals = {u: v[-1] for u, v in outputs.counts.items() if v}
            if len(seen) >= len(want_windows) and all(
                finals.get(u, 0) >= n for u, n in want_users.items()
            ):
                break
            await asyncio.sleep(1)
        workers.stop_all()
        await asyncio.sleep(2)  # the last commits' markers
        await outputs.stop()
        final = Outputs(bootstrap, names["CHAOS_WINDOWS"], names["CHAOS_COUNTS"])
        await final.start()  # one clean read of everything committed
        await asyncio.sleep(5)
        await final.stop()
        _check(report, final, want_windows, want_users)
    finally:
        workers.stop_all()
        await outputs.stop()
        if own_broker and not opts.keep_broker:
            _kafka("stop", "--home", str(home))
    report.wall_s = time.monotonic() - t_start
    return report


def _check(
    report: Report,
    out: Outputs,
    want_windows: Counter[tuple[str, int]],
    want_users: Counter[str],
) -> None:
    got: dict[tuple[str, int], list[int]] = {}
    for s, w, n in out.windows:
        got.setdefault((s, w), []).append(n)
    report.windows_seen = len(got)
    exact = report.guarantee == "exactly_once"
    for key, n in want_windows.items():
        counts = got.get(key)
        if not counts:
            report.lost += 1
            report.examples.append(f"lost window {key}: expected count {n}")
            continue
        report.duplicated += len(counts) - 1
        if (exact and counts != [n]) or (not exact and max(counts) < n):
            report.wrong += 1
            report.examples.append(f"window {key}: expected [{n}], got {counts}")
    for user, n in want_users.items():
        seq = out.counts.get(user, [])
        if not seq or (seq[-1] != n if exact else seq[-1] < n):
            report.users_wrong += 1
        report.users_regressions += sum(1 for a, b in itertools.pairwise(seq) if b <= a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.split("\n")[0])
    d = Options()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=20_000, help="events/s produced")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=d.partitions)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument(
        "--guarantee", choices=["exactly_once", "at_least_once"], default="exactly_once"
    )
    ap.add_argument("--no-broker-restart", action="store_true")
    ap.add_argument("--no-storm", action="store_true")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--bootstrap", help="use this broker (no broker restart) instead of our own")
    ap.add_argument("--log-dir", help="keep worker logs and state here")
    ap.add_argument("--keep-broker", action="store_true", help="leave the broker running")
    a = ap.parse_args(argv)
    opts = Options(
        records=a.records,
        rate=a.rate,
        workers=a.workers,
        partitions=a.partitions,
        kills=a.kills,
        guarantee=a.guarantee,
        broker_restart=not a.no_broker_restart,
        storm=not a.no_storm,
        seed=a.seed,
        bootstrap=a.bootstrap,
        log_dir=a.log_dir,
        keep_broker=a.keep_broker,
    )
    report = asyncio.run(run(opts))
    print(report.summary())
    return 0 if report.ok else 1
