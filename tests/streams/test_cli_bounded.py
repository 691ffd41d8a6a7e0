"""``streams run --input topic=file.parquet``: a bounded run that closes every window."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streams.cli import main

APP = """
import streams as st
from streams import windows

topo = st.Topology("cli-bounded")
(
    topo.source("in", timestamp="ts")
    .filter(st.col("n") > 1)
    .key_by("user")
    .window("per-minute", windows.tumbling(minutes=1), emit="final")
    .count()
    .to("out")
)
"""


@pytest.fixture
def app_module(tmp_path, monkeypatch):
    (tmp_path / "boundedapp.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("suffix", ["parquet", "arrow"])
def test_run_over_a_parquet_or_arrow_file(app_module, capsys, suffix):
    table = pa.table({"user": ["a", "a", "b", "a"], "n": [1, 2, 3, 4], "ts": [0, 10, 20, 70_000]})
    f = app_module / f"in.{suffix}"
    if suffix == "parquet":
        pq.write_table(table, f)
    else:
        with pa.ipc.new_file(str(f), table.schema) as w:
            w.write_table(table)
    assert main(["run", "boundedapp:topo", "--input", f"in={f}", "--print", "out"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3  # the last window closed at the end of the input, too
    assert "key='a' value={'n': 1, 'window_start': 0, 'window_end': 60000}" in out[0]


FILES_APP = """
import streams as st
from streams import windows

topo = st.Topology("cli-files")
(
    topo.source_from(st.connectors.ParquetSource("in"), timestamp="ts")
    .key_by("user")
    .window("per-minute", windows.tumbling(minutes=1), emit="final")
    .count()
    .to("out")
)
"""


def test_run_over_a_file_source_closes_every_window_at_its_end(tmp_path, monkeypatch, capsys):
    (tmp_path / "filesapp.py").write_text(FILES_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"user": ["a", "b"], "ts": [0, 10]}), tmp_path / "in" / "1.parquet")
    pq.write_table(pa.table({"user": ["a"], "ts": [70_000]}), tmp_path / "in" / "2.parquet")
    assert main(["run", "filesapp:topo", "--print", "out"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3  # the window of the last file closed too: the source ended
