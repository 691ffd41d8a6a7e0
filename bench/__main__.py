"""``python -m bench <benchmark> [options]``: micro, state, kafka, nexmark, chaos, revisions,
connectors, async-io, scale."""

from __future__ import annotations

import sys


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(
            "usage: python -m bench "
            "{micro,state,kafka,nexmark,chaos,revisions,connectors,async-io,scale} [--help]"
        )
        return 0 if len(sys.argv) >= 2 else 2
    name, rest = sys.argv[1], sys.argv[2:]
    if name == "micro":
        from bench.micro import main as run
    elif name == "state":
        from bench.state import main as run
    elif name == "kafka":
        from bench.kafka import main as run
    elif name == "chaos":
        from bench.chaos.harness import main as run
    elif name == "nexmark":
        from bench.nexmark.cli import main as run
    elif name == "connectors":
        from bench.connectors import main as run
    elif name == "async-io":
        from bench.async_io import main as run
    elif name == "revisions":
        from bench.revisions import main as run
    elif name == "scale":
        from bench.scale import main as run
    else:
        print(f"unknown benchmark {name!r}", file=sys.stderr)
        return 2
    return run(rest)


sys.exit(main())
