"""Benchmarks: ``python -m bench <name>``. Results go to ``bench/RESULTS.md`` with ``--record``."""
