"""The named choices (error policy, execution, emit, guarantee): one check each, errors that
name the value and the allowed ones."""

from __future__ import annotations

import pytest

import streams as st
from operators.errors import ErrorPolicy
from streams import agg, windows
from streams.core.policies import (
    EMITS,
    ERROR_POLICIES,
    EXECUTIONS,
    GUARANTEES,
    check_emit,
    check_error_policy,
    check_execution,
    check_guarantee,
)


def test_allowed_values():
    assert ERROR_POLICIES == ("fail", "skip", "dead_letter")
    assert EXECUTIONS == ("auto", "row", "columnar")
    assert EMITS == ("update", "final")
    assert GUARANTEES == ("at_least_once", "exactly_once")
    for v in ERROR_POLICIES:
        assert check_error_policy(v) == v
    for v in EXECUTIONS:
        assert check_execution(v) == v


@pytest.mark.parametrize(
    ("check", "msg"),
    [
        (check_error_policy, "on_error must be 'fail', 'skip' or 'dead_letter', not 'bogus'"),
        (check_execution, "execution must be 'auto', 'row' or 'columnar', not 'bogus'"),
        (check_emit, "emit must be 'update' or 'final', not 'bogus'"),
    ],
)
def test_a_bad_value_is_named_with_the_allowed_ones(check, msg):
    with pytest.raises(st.TopologyError) as e:
        check("bogus")
    assert str(e.value) == msg
    with pytest.raises(st.TopologyError) as e:
        check("bogus", where="step 's'")
    assert str(e.value) == f"step 's': {msg}"


def test_every_entry_point_uses_the_check():
    with pytest.raises(st.TopologyError, match="on_error must be .* not 'retry'"):
        st.Topology("a", on_error="retry")  # type: ignore[arg-type]
    with pytest.raises(st.TopologyError, match="execution must be .* not 'fast'"):
        st.Topology("a", execution="fast")  # type: ignore[arg-type]
    t = st.Topology("a")
    with pytest.raises(st.TopologyError, match="step 'source-in': on_error must be .*'x'"):
        t.source("in", on_error="x")  # type: ignore[arg-type]
    s = t.source("in2").map_values(lambda v: v)
    with pytest.raises(st.TopologyError, match="on_error must be 'fail', 'skip' or 'dead_letter'"):
        s.on_error("x")  # type: ignore[arg-type]
    with pytest.raises(st.TopologyError, match="step 'w': emit must be 'update' or 'final'"):
        s.window("w", windows.tumbling(seconds=1), emit="x").aggregate(n=agg.count())  # type: ignore[arg-type]
    with pytest.raises(st.TopologyError, match="step 'p': on_error must be .* not 'x'"):
        ErrorPolicy("p", "x")


def test_config_guarantee():
    assert check_guarantee("exactly_once") == "exactly_once"
    with pytest.raises(
        st.StreamsError,
        match="processing_guarantee must be 'at_least_once' or 'exactly_once', got 'twice'",
    ):
        st.Config(processing_guarantee="twice")  # type: ignore[arg-type]


def test_config_state_backend():
    """A misspelt backend is an error naming the choices, not silently RocksDB."""
    assert st.Config(state_backend="memory").state_backend == "memory"
    with pytest.raises(
        st.StreamsError, match="state_backend must be 'rocksdb' or 'memory', got 'rocks'"
    ):
        st.Config(state_backend="rocks")  # type: ignore[arg-type]
