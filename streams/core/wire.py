"""The wire format of event time on repartition topics (written by sinks, read by tasks).

* A **control record** (header :data:`CONTROL_HEADER`, no key or value) announces a writer's
  watermark: its partition, the number of writers, the watermark. Only control records move a
  writer's watermark; writers send one at the end of a batch, a punctuation, or when idle.
* A **carried watermark** (header :data:`RECORD_WM_HEADER`, same payload) rides on every data
  record of a repartition read by timed steps: the watermark its writer judged that record
  against. It bounds that record only (records of one writer may arrive out of offset order
  when branches merge). An Arrow IPC message (:mod:`operators.arrow_ipc`) carries each
  record's in a column and, in this header, its writer and the largest of them.

>>> decode_control(encode_control(2, 4, 1_000))
(2, 4, 1000)
>>> control_of([(CONTROL_HEADER, encode_control(0, 1, 5))]) is not None
True
>>> scan([("x", b"1"), (RECORD_WM_HEADER, b"p")])
(None, b'p', False)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

MIN_WATERMARK = -(1 << 63)
IDLE = (1 << 63) - 1  # announced by an upstream task whose inputs are all idle
END_OF_TIME = (1 << 63) - 2  # the watermark after end_of_input(): every window closes
CONTROL_HEADER = "__streams_wm"
RECORD_WM_HEADER = "__streams_rwm"
ARROW_HEADER = "__streams_arrow"
"""Marks a repartition message that holds an Arrow IPC stream of records (its value)."""
_CTRL = struct.Struct(">iiq")


def encode_control(upstream_partition: int, upstream_count: int, watermark: int) -> bytes:
    return _CTRL.pack(upstream_partition, upstream_count, watermark)


def decode_control(data: bytes) -> tuple[int, int, int]:
    p, n, wm = _CTRL.unpack(data)
    return int(p), int(n), int(wm)


def control_of(headers: Sequence[tuple[str, bytes]] | None) -> bytes | None:
    """The watermark payload if a record is a control record, else None."""
    if headers:
        for k, v in headers:
            if k == CONTROL_HEADER:
                return v
    return None


def scan(
    headers: Sequence[tuple[str, bytes]] | None,
) -> tuple[bytes | None, bytes | None, bool]:
    """``(control payload, carried watermark payload, an Arrow message?)`` of a record's
    headers, in one pass."""
    ctrl = carried = None
    arrow = False
    if headers:
        for k, v in headers:
            if k == CONTROL_HEADER:
                ctrl = v
            elif k == RECORD_WM_HEADER:
                carried = v
            elif k == ARROW_HEADER:
                arrow = True
    return ctrl, carried, arrow


__all__ = [
    "ARROW_HEADER",
    "CONTROL_HEADER",
    "END_OF_TIME",
    "IDLE",
    "MIN_WATERMARK",
    "RECORD_WM_HEADER",
    "control_of",
    "decode_control",
    "encode_control",
    "scan",
]
