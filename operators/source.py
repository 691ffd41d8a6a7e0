"""Decoding a fetched batch of broker messages into rows.

The decode loop is generated per source (key serde, value serde, timestamp extractor inlined) so
a batch is one tight loop. A failure names the topic, partition, offset and what failed.

>>> from streams.serde import STR, JSON
>>> from streams.runtime.broker import Message
>>> d = Decoder("source-t", "t", 0, STR, JSON, None)
>>> d.decode([Message(b"k", b'{"a":1}', 5, (), 0)])
[('k', {'a': 1}, 5, (), 0)]
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from operators.base import Processor, Rows
from streams import plan
from streams.errors import ProcessingError, SerializationError
from streams.expr import CodeGen
from streams.serde import FnSerde, Serde

_ids = itertools.count()


class MessageLike(Protocol):
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def offset(self) -> int: ...


def to_millis(t: Any) -> int:
    """Normalize an extracted timestamp to epoch milliseconds (int); reject anything else."""
    if isinstance(t, bool):
        raise TypeError(f"timestamp must be epoch milliseconds, got bool {t!r}")
    if isinstance(t, float) and t == t and abs(t) != float("inf"):
        return int(t)
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise TypeError(f"timestamp {t!r} is a naive datetime: give it a timezone")
        return int(t.timestamp() * 1000)
    raise TypeError(f"timestamp must be epoch milliseconds (int), got {type(t).__name__} {t!r}")


def _deser(serde: Serde, g: CodeGen, var: str) -> str:
    if isinstance(serde, FnSerde):  # skip the method call and its None check
        f = g.const(serde.decode, "d")
        return f"None if {var} is None else {f}({var})"
    return f"{g.const(serde.deserialize, 'd')}({var})"


class Decoder:
    """Turns broker messages of one source partition into rows and feeds the children."""

    def __init__(
        self,
        step: str,
        topic: str,
        partition: int,
        key_serde: Serde,
        value_serde: Serde,
        timestamp: plan.Fn | None,
        children: list[Processor] | None = None,
    ) -> None:
        self.step, self.topic, self.partition = step, topic, partition
        self.children = children if children is not None else []
        g = CodeGen()
        lines = [
            "def _decode(msgs):",
            "    out = []; a = out.append",
            "    for m in msgs:",
            f"        kb = m.key; k = {_deser(key_serde, g, 'kb')}",
            f"        vb = m.value; v = {_deser(value_serde, g, 'vb')}",
        ]
        if timestamp is None:
            lines.append("        t = m.timestamp")
        else:
            src = timestamp.obj.py(g) if timestamp.is_expr else f"{g.const(timestamp.obj, 'f')}(v)"  # type: ignore[union-attr]
            lines.append(f"        t = {src}")
            lines.append(f"        if type(t) is not int: t = {g.const(to_millis, 'ms')}(t)")
        lines += ["        a((k, v, t, m.headers, m.offset))", "    return out"]
        self._what = {4: "key", 5: "value"}
        self.source = "\n".join(lines) + "\n"
        self._filename = f"<decode {next(_ids)}: {topic}>"
        ns: dict[str, Any] = dict(g.namespace)
        exec(compile(self.source, self._filename, "exec"), ns)
        self._fn: Callable[[Sequence[MessageLike]], Rows] = ns["_decode"]

    def decode(self, msgs: Sequence[MessageLike]) -> Rows:
        try:
            return self._fn(msgs)
        except Exception as e:
            raise self._locate(e) from e

    def process_messages(self, msgs: Sequence[MessageLike]) -> None:
        rows = self.decode(msgs)
        for c in self.children:
            c.process(rows)

    def _locate(self, exc: Exception) -> Exception:
        tb: types.TracebackType | None = exc.__traceback__
        line, offset = 0, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self._filename:
                line = tb.tb_lineno
                m = tb.tb_frame.f_locals.get("m")
                offset = getattr(m, "offset", None)
            tb = tb.tb_next
        what = self._what.get(line)
        where = {"topic": self.topic, "partition": self.partition, "offset": offset}
        if what is not None:
            return SerializationError(
                f"could not deserialize the {what}: {type(exc).__name__}: {exc}", **where
            )
        return ProcessingError(
            f"timestamp extraction failed: {type(exc).__name__}: {exc}", step=self.step, **where
        )


__all__ = ["Decoder", "MessageLike", "to_millis"]
