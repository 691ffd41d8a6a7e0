"""`streams reset` on the real broker: nothing of the app is left, and a rerun starts over."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

import streams as st
from streams.core.errors import StreamsError
from streams.runtime.config import Config
from streams.runtime.kafka import KafkaBroker
from streams.runtime.reset import plan_reset, reset_application
from streams.runtime.worker import Worker
from tests.integration.test_kafka_workers import produce, read_all

pytestmark = pytest.mark.kafka


def topology(app: str, src: str, out: str) -> st.Topology:
    t = st.Topology(app)
    (
        t.source(src)
        .key_by(lambda v: f"g{v['id'] % 5}")  # a repartition topic
        .count("counts")  # a changelog topic
        .to(out, value=st.serde.INT)
    )
    return t


async def run_once(bootstrap: str, topo: st.Topology, state_dir: Path) -> None:
    broker = KafkaBroker(bootstrap)
    w = Worker(topo, broker, Config(state_dir=str(state_dir), state_backend="rocksdb"))
    await asyncio.wait_for(w.run(until_idle=True), 120)
    await broker.close()


async def app_topics(bootstrap: str, app: str) -> list[str]:
    broker = KafkaBroker(bootstrap)
    admin = await broker._admin()
    names = [t for t in await admin.list_topics() if t.startswith(f"{app}-")]
    await broker.close()
    return sorted(names)


def final_counts(bootstrap: str, out: str) -> dict[str, int]:
    last: dict[str, int] = {}
    for k, v in read_all(bootstrap, out, 1):
        last[k] = v
    return last


def test_reset_deletes_topics_group_and_state_and_a_rerun_counts_from_zero(
    kafka_bootstrap: str, kafka_topic_factory, tmp_path: Path
) -> None:
    app = f"reset-{uuid.uuid4().hex[:8]}"
    src, out = kafka_topic_factory(partitions=2), kafka_topic_factory(partitions=1)
    produce(kafka_bootstrap, src, 2, 0, 200)
    topo = topology(app, src, out)
    state = tmp_path / "state"

    asyncio.run(run_once(kafka_bootstrap, topo, state))
    first = final_counts(kafka_bootstrap, out)
    assert first == {f"g{g}": 40 for g in range(5)}
    made = asyncio.run(app_topics(kafka_bootstrap, app))
    assert f"{app}-counts-changelog" in made and any(t.endswith("-repartition") for t in made)
    assert state.exists()

    async def reset() -> list[str]:
        broker = KafkaBroker(kafka_bootstrap)
        plan = await reset_application(topo, broker, state_dir=str(state))
        await broker.close()
        return plan.done

    done = asyncio.run(reset())
    assert f"deleted consumer group {app}" in done
    assert not state.exists()
    deadline = time.monotonic() + 30  # topic deletion completes asynchronously
    while asyncio.run(app_topics(kafka_bootstrap, app)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert asyncio.run(app_topics(kafka_bootstrap, app)) == []

    async def offsets() -> dict[object, object]:
        broker = KafkaBroker(kafka_bootstrap)
        admin = await broker._admin()
        got = await admin.list_consumer_group_offsets(app)
        await broker.close()
        return dict(got)

    assert asyncio.run(offsets()) == {}

    # a rerun reads the input from the start with empty state: the same counts again (appended)
    asyncio.run(run_once(kafka_bootstrap, topo, state))
    rerun = read_all(kafka_bootstrap, out, 1)
    assert len(rerun) >= 10
    assert final_counts(kafka_bootstrap, out) == first  # from zero, not 80 per key


def test_reset_refuses_while_a_worker_is_running(
    kafka_bootstrap: str, kafka_topic_factory, tmp_path: Path
) -> None:
    app = f"reset-live-{uuid.uuid4().hex[:8]}"
    src, out = kafka_topic_factory(partitions=1), kafka_topic_factory(partitions=1)
    produce(kafka_bootstrap, src, 1, 0, 10)
    topo = topology(app, src, out)

    async def go() -> None:
        broker = KafkaBroker(kafka_bootstrap)
        w = Worker(topo, broker, Config(state_dir=str(tmp_path)))
        runner = asyncio.create_task(w.run())
        try:
            deadline = time.monotonic() + 60
            while w.processed < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            other = KafkaBroker(kafka_bootstrap)
            with pytest.raises(StreamsError, match="stop its workers"):
                await plan_reset(topo, other, state_dir=str(tmp_path))
            await other.close()
        finally:
            w.stop()
            await asyncio.wait_for(runner, 60)
            await broker.close()

    asyncio.run(go())


def test_cli_reset_dry_run_and_confirmation(
    kafka_bootstrap: str,
    kafka_topic_factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from streams.cli import main

    app = f"reset-cli-{uuid.uuid4().hex[:8]}"
    src, out = kafka_topic_factory(partitions=1), kafka_topic_factory(partitions=1)
    for k, v in {"APP": app, "IN": src, "OUT": out}.items():
        monkeypatch.setenv(f"STREAMS_TEST_{k}", v)
    produce(kafka_bootstrap, src, 1, 0, 10)
    ref = "tests.integration.kafka_apps:distinct_ids"
    state = tmp_path / "state"
    from tests.integration.kafka_apps import distinct_ids

    asyncio.run(run_once(kafka_bootstrap, distinct_ids(), state))
    args = ["reset", ref, "--bootstrap", kafka_bootstrap, "--state-dir", str(state)]

    assert main([*args, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"delete topic {app}-ids-changelog" in printed and f"consumer group {app}" in printed
    assert state.exists() and asyncio.run(app_topics(kafka_bootstrap, app))

    monkeypatch.setattr("builtins.input", lambda _prompt: "no")
    assert main(args) == 1  # not confirmed: nothing deleted
    assert state.exists() and asyncio.run(app_topics(kafka_bootstrap, app))

    monkeypatch.setattr("builtins.input", lambda _prompt: app)
    assert main(args) == 0
    assert not state.exists()
