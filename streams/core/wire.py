"""The wire format of event time: watermark control records on repartition topics and the
sentinel watermarks (written by sinks, read by tasks).

>>> decode_control(encode_control(2, 4, 1_000))
(2, 4, 1000)
>>> control_of([(CONTROL_HEADER, encode_control(0, 1, 5))]) is not None
True
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

MIN_WATERMARK = -(1 << 63)
IDLE = (1 << 63) - 1  # announced by an upstream task whose inputs are all idle
END_OF_TIME = (1 << 63) - 2  # the watermark after end_of_input(): every window closes
CONTROL_HEADER = "__streams_wm"
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


__all__ = [
    "CONTROL_HEADER",
    "END_OF_TIME",
    "IDLE",
    "MIN_WATERMARK",
    "control_of",
    "decode_control",
    "encode_control",
]
