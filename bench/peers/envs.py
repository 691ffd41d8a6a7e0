"""Per-peer virtualenvs under ``~/.cache/streams-dsl/peers/<name>/``: created on first use, reused.

    python -m bench nexmark compare --install-only     # create (or check) all of them

Each venv is made with ``python3.11 -m venv`` and gets exactly one pinned peer (plus its own
dependencies) from PyPI; a ``.installed`` marker holds the pin, so a changed pin rebuilds the
venv. Nothing is ever installed into the project's own environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Pinned versions, verified to install on CPython 3.11 (Linux x86_64) from PyPI.
PEERS: dict[str, str] = {
    "bytewax": "bytewax==0.21.1",
    "quixstreams": "quixstreams==3.28.1",
    "faust": "faust-streaming==0.15.3",
}
PYTHON = os.environ.get("STREAMS_PEERS_PYTHON", "python3.11")


def root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streams-dsl" / "peers"


def venv_dir(name: str) -> Path:
    return root() / name


def python(name: str) -> Path:
    return venv_dir(name) / "bin" / "python"


def is_ready(name: str) -> bool:
    marker = venv_dir(name) / ".installed"
    return python(name).exists() and marker.exists() and marker.read_text().strip() == PEERS[name]


def ensure(name: str, quiet: bool = True) -> Path:
    """The peer's venv python, creating the venv and installing the pinned peer if needed."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    if is_ready(name):
        return python(name)
    d = venv_dir(name)
    if d.exists():
        shutil.rmtree(d)
    d.parent.mkdir(parents=True, exist_ok=True)
    print(f"peers: creating {d} with {PEERS[name]} (first use)", file=sys.stderr, flush=True)
    out = subprocess.DEVNULL if quiet else None
    subprocess.run([PYTHON, "-m", "venv", str(d)], check=True, stdout=out)
    pip = [str(python(name)), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "-q", PEERS[name]], check=True, stdout=out)
    (d / ".installed").write_text(PEERS[name] + "\n")
    return python(name)


def version(name: str) -> str:
    """Installed version of the peer's distribution (from its venv)."""
    dist = PEERS[name].split("==")[0]
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    r = subprocess.run([str(python(name)), "-c", code], capture_output=True, text=True)
    return r.stdout.strip() or "?"


__all__ = ["PEERS", "ensure", "is_ready", "python", "root", "venv_dir", "version"]
