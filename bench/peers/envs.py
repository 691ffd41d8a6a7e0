"""Per-peer virtualenvs under ``~/.cache/streams-dsl/peers/<name>/``: created on first use, reused.

    python -m bench nexmark compare --install-only     # create (or check) all of them

Each venv is made with ``python3.11 -m venv`` and gets exactly one pinned peer (plus its own
dependencies) from PyPI; a ``.installed`` marker holds the pin, so a changed pin rebuilds the
venv. Nothing is ever installed into the project's own environment.

The Kafka Streams peer is no venv but a Maven project, ``bench/peers/kafka-streams/``: its
shaded jar is built on first use (:func:`kafka_streams_jar`: ``mvn -q -o package``, online if
the offline build lacks dependencies in ``~/.m2``) and run with :func:`java`.
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
    "pyflink": "apache-flink==1.20.3",  # runs on Java 17; its jars ship in apache-flink-libraries
}
PYTHON = os.environ.get("STREAMS_PEERS_PYTHON", "python3.11")

KAFKA_STREAMS_DIR = Path(__file__).resolve().parent / "kafka-streams"
KAFKA_STREAMS_JAR = KAFKA_STREAMS_DIR / "target" / "nexmark-kafka-streams.jar"
KAFKA_STREAMS_VERSION = "3.9.2"  # kafka.version in bench/peers/kafka-streams/pom.xml
# the JVM peers' options (the machine is shared: small heaps)
JVM_OPTS = os.environ.get("STREAMS_PEERS_JVM_OPTS", "-Xmx512m").split()


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


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    exe = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not exe or not os.path.exists(exe):
        raise RuntimeError("java not found (JAVA_HOME or PATH); the JVM peers need Java 17")
    return exe


def kafka_streams_jar() -> Path:
    """The Kafka Streams peer's shaded jar, built with Maven if missing or older than a source
    (or the pom)."""
    sources = [KAFKA_STREAMS_DIR / "pom.xml", *(KAFKA_STREAMS_DIR / "src").rglob("*.java")]
    if KAFKA_STREAMS_JAR.exists() and KAFKA_STREAMS_JAR.stat().st_mtime >= max(
        p.stat().st_mtime for p in sources
    ):
        return KAFKA_STREAMS_JAR
    mvn = shutil.which("mvn")
    if not mvn:
        raise RuntimeError("mvn not found on PATH (needed once to build the Kafka Streams peer)")
    print(f"peers: building {KAFKA_STREAMS_JAR} (missing or stale)", file=sys.stderr, flush=True)
    base = [mvn, "-q", "-B", "-f", str(KAFKA_STREAMS_DIR / "pom.xml")]
    for offline in (["-o"], []):  # offline first; online fetches from Maven Central into ~/.m2
        r = subprocess.run([*base, *offline, "package"], capture_output=True, text=True)
        if r.returncode == 0 and KAFKA_STREAMS_JAR.exists():
            return KAFKA_STREAMS_JAR
    raise RuntimeError("maven could not build the Kafka Streams peer:\n" + r.stdout[-3000:])


__all__ = [
    "JVM_OPTS",
    "KAFKA_STREAMS_JAR",
    "KAFKA_STREAMS_VERSION",
    "PEERS",
    "ensure",
    "is_ready",
    "java",
    "kafka_streams_jar",
    "python",
    "root",
    "venv_dir",
    "version",
]
