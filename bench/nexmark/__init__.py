"""Nexmark for streams-dsl: the event generator, a DuckDB reference for the queries, a CLI.

* :mod:`bench.nexmark.generator` — Beam/Flink-faithful event generator (dicts, JSONL).
* :mod:`bench.nexmark.reference` — independent batch results of the Nexmark queries (DuckDB).
* :mod:`bench.nexmark.cli` — ``python -m bench nexmark generate --events N --seed S --out F``.
"""
