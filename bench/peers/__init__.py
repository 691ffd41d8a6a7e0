"""Nexmark comparison peers: faust-streaming, quixstreams, bytewax, Kafka Streams, PyFlink.

    python -m bench nexmark compare --queries q0,q1,q2,q5,q7,q8 --events 1000000  # table + record
    python -m bench nexmark compare --check     # correctness of every system, 20K events
    python -m bench nexmark compare --install-only                # just create the peer venvs

Each peer runs in its own virtualenv under ``~/.cache/streams-dsl/peers/<name>/`` (see
:mod:`bench.peers.envs`), never in the project's environment; its query implementations live in
``bench/peers/<name>_app.py``, which runs inside that venv and imports only the peer library,
the standard library and :mod:`bench.peers.common` (stdlib only). Kafka Streams is a Maven
project, ``bench/peers/kafka-streams/`` (see its README), built into a jar on first use.
The Kafka peers need a broker (``scripts/kafka/kafka start``, or ``--bootstrap``); so does
``ours-kafka``, our own worker on that broker (:mod:`bench.peers.ours_app`). Installing the
peers is not part of the test suite (CI stays offline from PyPI beyond the project's own
dependencies): tests/bench/test_nexmark_peers.py checks each installed peer's q8 and skips the
others (``STREAMS_BENCH_PEERS=require`` makes a missing peer fail); run ``--check`` by hand after
changing a peer app or a query's semantics; it exits 1 on any mismatch.
"""
