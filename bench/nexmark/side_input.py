"""Nexmark q13's bounded side input: a CSV of ``key,value`` rows, ``value`` = ``str(key)``.

As the nexmark repo's ``SideInputGenerator`` writes it (``i,i`` for ``i`` in ``[0, ROWS)``, no
header), so a lookup of ``auction % ROWS`` always finds a row. Standard library only: the peer
apps import it inside their own venvs.

>>> rows = load(path())
>>> len(rows), rows[0], rows[9_999]
(10000, '0', '9999')
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROWS = 10_000


def write(dest: str | os.PathLike[str], rows: int = ROWS) -> Path:
    """Write the side input to ``dest`` (atomically: a concurrent reader sees all or nothing)."""
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    tmp.write_text("".join(f"{i},{i}\n" for i in range(rows)))
    tmp.replace(dest)
    return dest


def path() -> Path:
    """The side input file (in the temp directory; written on first use)."""
    p = Path(tempfile.gettempdir()) / f"nexmark-side-input-{ROWS}.csv"
    if not p.exists():
        write(p)
    return p


def load(src: str | os.PathLike[str]) -> dict[int, str]:
    """The side input as ``{key: value}``."""
    with open(src) as f:
        pairs = (line.rstrip("\n").split(",", 1) for line in f if line.strip())
        return {int(k): v for k, v in pairs}


__all__ = ["ROWS", "load", "path", "write"]
