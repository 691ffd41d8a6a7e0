"""The named choices of a topology and a worker, each one ``Literal`` with one check.

A value comes in as a plain string (from user code, a CLI, a config file); the check says what
it got and what it takes:

>>> check_error_policy("dead_letter")
'dead_letter'
>>> check_execution("vector")
Traceback (most recent call last):
...
streams.core.errors.TopologyError: execution must be 'auto', 'row' or 'columnar', not 'vector'
>>> check_emit("all", where="step 'w'")
Traceback (most recent call last):
...
streams.core.errors.TopologyError: step 'w': emit must be 'update' or 'final', not 'all'
"""

from __future__ import annotations

from typing import Literal, TypeVar, get_args

from streams.core.errors import StreamsError, TopologyError

#: what a step does when a user function fails on a record (see :mod:`operators.errors`)
ErrorPolicyName = Literal["fail", "skip", "dead_letter"]
#: how steps run their batches: Python over rows, Arrow columns, or Arrow when the batch is
Execution = Literal["auto", "row", "columnar"]
#: when a windowed aggregation emits: each change, or once when its window closes
Emit = Literal["update", "final"]
#: a worker's processing guarantee
Guarantee = Literal["at_least_once", "exactly_once"]
#: where state stores keep their data: RocksDB on local disk, or RAM (rebuilt from changelogs)
StateBackend = Literal["rocksdb", "memory"]

ERROR_POLICIES: tuple[ErrorPolicyName, ...] = get_args(ErrorPolicyName)
EXECUTIONS: tuple[Execution, ...] = get_args(Execution)
EMITS: tuple[Emit, ...] = get_args(Emit)
GUARANTEES: tuple[Guarantee, ...] = get_args(Guarantee)
STATE_BACKENDS: tuple[StateBackend, ...] = get_args(StateBackend)

_T = TypeVar("_T", bound=str)


def _one_of(allowed: tuple[str, ...]) -> str:
    quoted = [repr(a) for a in allowed]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _check(
    what: str,
    value: object,
    allowed: tuple[_T, ...],
    where: str,
    error: type[StreamsError] = TopologyError,
) -> _T:
    if value not in allowed:
        prefix = f"{where}: " if where else ""
        raise error(f"{prefix}{what} must be {_one_of(allowed)}, not {value!r}")
    return value


def check_error_policy(value: object, *, where: str = "") -> ErrorPolicyName:
    """``value`` as an error policy; a :class:`TopologyError` naming it and the allowed ones
    (prefixed with ``where``, e.g. ``"step 'parse'"``) if it is not one."""
    return _check("on_error", value, ERROR_POLICIES, where)


def check_execution(value: object, *, where: str = "") -> Execution:
    """``value`` as an execution mode, else a :class:`TopologyError` naming the allowed ones."""
    return _check("execution", value, EXECUTIONS, where)


def check_emit(value: object, *, where: str = "") -> Emit:
    """``value`` as a windowed aggregation's emit mode, else a :class:`TopologyError`."""
    return _check("emit", value, EMITS, where)


def check_guarantee(value: object) -> Guarantee:
    """``value`` as a processing guarantee, else a :class:`StreamsError` (a worker's config,
    not a topology, is wrong) naming the allowed ones."""
    return _check("processing_guarantee", value, GUARANTEES, "", StreamsError)


def check_state_backend(value: object) -> StateBackend:
    """``value`` as a state backend, else a :class:`StreamsError` naming the allowed ones."""
    return _check("state_backend", value, STATE_BACKENDS, "", StreamsError)


__all__ = [
    "EMITS",
    "ERROR_POLICIES",
    "EXECUTIONS",
    "GUARANTEES",
    "STATE_BACKENDS",
    "Emit",
    "ErrorPolicyName",
    "Execution",
    "Guarantee",
    "StateBackend",
    "check_emit",
    "check_error_policy",
    "check_execution",
    "check_guarantee",
    "check_state_backend",
]
