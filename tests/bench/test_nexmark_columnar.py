"""``python -m bench nexmark run --mode columnar`` writes exactly the row mode's bytes."""

import pytest

from bench.nexmark.generator import write_jsonl
from bench.nexmark.runner import run_file


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    path = tmp_path_factory.mktemp("nxc") / "events.jsonl"
    write_jsonl(path, 4_000, seed=5, rate_per_s=200)
    return path


@pytest.mark.parametrize("query", ["q0", "q1", "q2", "q5", "q7", "q11"])
@pytest.mark.parametrize("from_arrow", [False, True])
def test_columnar_mode_writes_the_row_mode_bytes(events, tmp_path, query, from_arrow):
    outs = {}
    for mode in ("row", "columnar"):
        out = tmp_path / f"{mode}.jsonl"
        stats = run_file(query, str(events), str(out), 1, mode, from_arrow)
        assert stats["mode"] == mode
        outs[mode] = out.read_bytes()
    assert outs["columnar"] == outs["row"]
    assert outs["row"] or query == "q2"
