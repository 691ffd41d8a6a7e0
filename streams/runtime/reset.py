"""Application reset: start an application over from the beginning of its input.

Like Kafka Streams' application-reset tool, :func:`reset_application` deletes the app's
internal topics (``{app_id}-…-repartition`` and ``{app_id}-…-changelog``, also ones an older
version of the topology left), deletes its consumer group (so the committed input offsets are
gone and the next run reads from the earliest offsets) and removes its local state directory.
The workers must be stopped: a group with live members is refused. The dead-letter topic is
kept (it holds records someone has to look at), unless ``delete_dead_letters``.

Run it as ``streams reset MODULE:ATTR --bootstrap HOST:PORT [--yes] [--dry-run]``.

>>> plan = ResetPlan("app", ["app-counts-changelog"], True, ".streams-state/app")
>>> print(plan.describe())
reset application 'app':
  delete topic app-counts-changelog
  delete consumer group app (committed input offsets)
  delete local state .streams-state/app
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from streams.compiler.compile import Compilable
from streams.core.errors import BrokerError, StreamsError
from streams.runtime.kafka import KafkaBroker
from streams.runtime.kafka_common import _wrap

_INTERNAL_SUFFIXES = ("-repartition", "-changelog")
_LIVE_GROUP_STATES = {"Stable", "PreparingRebalance", "CompletingRebalance"}
_GROUP_ID_NOT_FOUND = 69


@dataclass
class ResetPlan:
    """What a reset deletes (see :meth:`describe`)."""

    app_id: str
    topics: list[str]
    group_exists: bool
    state_dir: str | None
    done: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"reset application '{self.app_id}':"]
        lines += [f"  delete topic {t}" for t in self.topics]
        if self.group_exists:
            lines.append(f"  delete consumer group {self.app_id} (committed input offsets)")
        if self.state_dir:
            lines.append(f"  delete local state {self.state_dir}")
        if len(lines) == 1:
            lines.append("  nothing to delete")
        return "\n".join(lines)


def _internal(app_id: str, topic: str, dlq: bool) -> bool:
    if dlq and topic == f"{app_id}-dlq":
        return True
    return topic.startswith(f"{app_id}-") and topic.endswith(_INTERNAL_SUFFIXES)


async def plan_reset(
    topology: Compilable,
    broker: KafkaBroker,
    *,
    state_dir: str | None = None,
    delete_dead_letters: bool = False,
) -> ResetPlan:
    """Find what belongs to the application; refuse while its workers are running."""
    app = topology.app_id
    admin = await broker._admin()
    groups = await _wrap("describe group", admin.describe_consumer_groups([app]))
    members, gstate = _group_info(groups)
    if gstate in _LIVE_GROUP_STATES or members:
        raise StreamsError(
            f"application '{app}' has {members} running member(s) (group state {gstate}): "
            "stop its workers before resetting it"
        )
    topics = sorted(
        t
        for t in await _wrap("list topics", admin.list_topics())
        if _internal(app, t, delete_dead_letters)
    )
    local = state_dir or os.path.join(".streams-state", app)
    return ResetPlan(
        app, topics, gstate not in (None, "Dead"), local if os.path.exists(local) else None
    )


def _group_info(groups: list[object]) -> tuple[int, str | None]:
    """(members, state) of the one described group; (0, None) when the broker knows none."""
    for resp in groups:
        for g in getattr(resp, "groups", []):
            # v0..v5: (error_code, group_id, state, protocol_type, protocol, members, ...)
            error_code, _gid, state, _ptype, _proto, members = g[:6]
            if error_code == _GROUP_ID_NOT_FOUND:
                return 0, None
            return len(members), state
    return 0, None


async def execute_reset(broker: KafkaBroker, plan: ResetPlan) -> None:
    """Delete what ``plan`` lists (each step recorded in ``plan.done``)."""
    admin = await broker._admin()
    if plan.topics:
        await _wrap("delete topics", admin.delete_topics(plan.topics))
        plan.done += [f"deleted topic {t}" for t in plan.topics]
    if plan.group_exists:
        await _delete_group(admin, plan.app_id)
        plan.done.append(f"deleted consumer group {plan.app_id}")
    if plan.state_dir and os.path.exists(plan.state_dir):
        shutil.rmtree(plan.state_dir)
        plan.done.append(f"deleted local state {plan.state_dir}")


async def _delete_group(admin: object, group: str) -> None:
    from aiokafka.protocol.admin import DeleteGroupsRequest  # type: ignore[import-untyped]

    coordinator = await _wrap("find coordinator", admin.find_coordinator(group))  # type: ignore[attr-defined]
    resp = await _wrap(
        "delete group",
        admin._send_request(DeleteGroupsRequest([group]), coordinator),  # type: ignore[attr-defined]
    )
    for gid, code in resp.results:
        if code not in (0, _GROUP_ID_NOT_FOUND):
            raise BrokerError(f"kafka: deleting consumer group {gid} failed (error code {code})")


async def reset_application(
    topology: Compilable,
    broker: KafkaBroker,
    *,
    state_dir: str | None = None,
    delete_dead_letters: bool = False,
) -> ResetPlan:
    """Plan and execute a reset in one call (no confirmation: the CLI asks)."""
    plan = await plan_reset(
        topology, broker, state_dir=state_dir, delete_dead_letters=delete_dead_letters
    )
    await execute_reset(broker, plan)
    return plan
