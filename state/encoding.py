"""Order-preserving byte encodings shared by the stores.

Timestamps are int64 stored big-endian with the sign bit flipped, so byte order equals numeric
order, negative values included.

>>> encode_ts(-1) < encode_ts(0) < encode_ts(1)
True
>>> decode_ts(encode_ts(-5))
-5
>>> prefix_end(b"a\\xff"), prefix_end(b"\\xff")
(b'b', None)
"""

from __future__ import annotations

import struct

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_BIAS = 1 << 63
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def encode_ts(ts: int) -> bytes:
    """8 bytes whose byte order matches the numeric order of the int64 ``ts``."""
    try:
        return _U64.pack(ts + _BIAS)
    except struct.error:
        raise ValueError(f"timestamp {ts!r} is not an int64") from None


def decode_ts(data: bytes, offset: int = 0) -> int:
    """Inverse of :func:`encode_ts`, reading 8 bytes at ``offset``."""
    return int(_U64.unpack_from(data, offset)[0]) - _BIAS


def encode_len(n: int) -> bytes:
    """A 4-byte big-endian length; length-prefixed keys are never a prefix of one another."""
    return _U32.pack(n)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no such key)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


__all__ = ["INT64_MAX", "INT64_MIN", "decode_ts", "encode_len", "encode_ts", "prefix_end"]
