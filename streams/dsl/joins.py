"""Stream-stream joins: both sides buffered in window stores, matched within a window.

>>> import streams as st
>>> t = st.Topology("app")
>>> a, b = t.source("a"), t.source("b")
>>> j = a.join(b, lambda x, y: (x, y), window=st.windows.join_window(60_000), name="ab")
>>> [s.name for s in t.node(j.step).stores]
['ab-left', 'ab-right']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streams.core.errors import TopologyError
from streams.plan import nodes as plan
from streams.plan.windows import JoinWindows

if TYPE_CHECKING:
    from streams.dsl.stream import Stream


def join_streams(
    self: Stream,
    other: Stream,
    joiner: Callable[[Any, Any], Any],
    *,
    how: str,
    window: JoinWindows | None,
    name: str | None,
) -> Stream:
    """``self.join(other, ...)`` within a window (see :meth:`Stream.join`)."""
    t = self._topology
    if name is None:
        raise TopologyError("a stream-stream join needs name= (it names its buffer stores)")
    step = t.builder.step_name("join", name)
    if not isinstance(window, JoinWindows):
        raise TopologyError(
            f"step '{step}': a stream-stream join needs window=windows.join_window(...)"
        )
    if how not in ("inner", "left", "outer"):
        raise TopologyError(f"step '{step}': how must be 'inner', 'left' or 'outer'")
    if other._topology is not t:
        raise TopologyError(f"step '{step}': stream '{other.step}' belongs to another topology")
    if other._step == self._step:
        raise TopologyError(
            f"step '{step}': joining step '{self._step}' with itself; branch or map one side first"
        )
    f = plan.as_fn(step, "joiner", joiner, 2, allow_expr=False)
    left = self._stateful_parent(f"{step}-left") if t.key_changed(self._step) else self._step
    right = other._stateful_parent(f"{step}-right") if t.key_changed(other._step) else other._step
    retention = window.before_ms + window.after_ms + window.grace_ms
    node = plan.StreamStreamJoin(
        step=step,
        parents=(left, right),
        window=window,
        joiner=f,
        how=how,  # type: ignore[arg-type]
        left_store=plan.StoreSpec(f"{step}-left", "window", retention_ms=retention),
        right_store=plan.StoreSpec(f"{step}-right", "window", retention_ms=retention),
    )
    return self._then_stateful(node)


__all__ = ["join_streams"]
