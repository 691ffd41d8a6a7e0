"""Our side of the comparison: ``bench.nexmark.runner.run_file`` in its own process.

    python -m bench.peers.ours_app --query q5 --input events.jsonl --output rows.jsonl

The same as ``python -m bench nexmark run`` (embedded runtime, one partition), except that
peak RSS is this process image's own (``VmHWM``, see :func:`bench.peers.common.peak_rss_mb`).
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.nexmark.runner import run_file
from bench.peers.common import peak_rss_mb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ours_app")
    p.add_argument("--query", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    stats = run_file(args.query, args.input, args.output, partitions=1)
    stats["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
