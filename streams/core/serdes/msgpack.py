"""MessagePack values: ``bytes`` stay ``bytes``, ``str`` stays ``str``, any hashable map key.

>>> MSGPACK.deserialize(MSGPACK.serialize({"k": b"\\x00", 1: [1.5, None]}))
{'k': b'\\x00', 1: [1.5, None]}

Tuples come back as lists (MessagePack has one array type).
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack  # type: ignore[import-untyped]

from streams.core.errors import SerializationError


class MsgpackSerde:
    """``msgpack`` with ``use_bin_type=True`` and ``raw=False``, ``strict_map_key=False``."""

    def __init__(self, name: str = "msgpack") -> None:
        self.name = name
        self._local = threading.local()  # a reused Packer is ~3x faster than packb()

    def _packer(self) -> Any:
        packer = msgpack.Packer(use_bin_type=True)
        self._local.packer = packer
        return packer

    def __repr__(self) -> str:
        return f"MsgpackSerde({self.name!r})"

    def serialize(self, obj: Any) -> bytes | None:
        if obj is None:
            return None
        packer = getattr(self._local, "packer", None) or self._packer()
        try:
            data: bytes = packer.pack(obj)
        except Exception as e:
            packer.reset()
            raise SerializationError(
                f"{self.name}: cannot encode {type(obj).__name__}: {type(e).__name__}: {e}"
            ) from e
        return data

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as e:  # ExtraData, FormatError, StackError, ValueError, UnicodeError
            detail = str(e) or "not valid MessagePack"
            raise SerializationError(
                f"{self.name}: cannot decode {len(data)} bytes: {type(e).__name__}: {detail}"
            ) from e


MSGPACK = MsgpackSerde()
"""The shared MessagePack serde."""

__all__ = ["MSGPACK", "MsgpackSerde"]
