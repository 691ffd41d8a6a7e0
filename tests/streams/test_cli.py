import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import load_topology, main
from streams.core.errors import StreamsError

REPO = Path(__file__).resolve().parents[2]

APP = """
import streams as st

def make():
    t = st.Topology("cli-app")
    t.source("in").filter(st.col("n") > 1).map_values(st.col("n") * 10).to("out")
    return t

topo = make()
"""


@pytest.fixture
def app_module(tmp_path, monkeypatch):
    (tmp_path / "cliapp.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_load_topology_object_and_factory(app_module):
    assert load_topology("cliapp:topo").app_id == "cli-app"
    assert load_topology("cliapp:make").app_id == "cli-app"
    with pytest.raises(StreamsError, match="MODULE:ATTR"):
        load_topology("cliapp")
    with pytest.raises(StreamsError, match="no attribute"):
        load_topology("cliapp:nope")
    with pytest.raises(StreamsError, match="cannot import"):
        load_topology("no_such_mod_xyz:t")


def test_describe(app_module, capsys):
    assert main(["describe", "cliapp:topo"]) == 0
    assert "Sub-topology 0" in capsys.readouterr().out
    assert main(["describe", "cliapp:topo", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart")


def test_run_embedded_with_input_file(app_module, capsys):
    f = app_module / "in.jsonl"
    f.write_text(
        "\n".join(json.dumps(r) for r in [{"n": 1}, {"value": {"n": 2}, "key": "a"}, {"n": 3}])
    )
    assert main(["run", "cliapp:topo", "--input", f"in={f}", "--print", "out"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["out[0]@0 key='a' value=20", "out[0]@1 key=None value=30"]


def test_bad_reference_exits_2(app_module, capsys):
    assert main(["describe", "cliapp:nope"]) == 2
    assert "error:" in capsys.readouterr().err


def test_console_entry_point_runs(app_module):
    r = subprocess.run(
        [sys.executable, "-m", "streams", "describe", "cliapp:topo"],
        capture_output=True,
        text=True,
        cwd=app_module,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "cli-app" in r.stdout


def test_run_with_json_logs(app_module):
    """Every log line is one JSON object (run as a subprocess: logging is process-global)."""
    f = app_module / "in.jsonl"
    f.write_text("\n".join(json.dumps({"n": n}) for n in range(5)))
    cmd = ["run", "cliapp:topo", "--input", f"in={f}", "--log-format", "json"]
    proc = subprocess.run(
        [sys.executable, "-m", "streams", *cmd],
        capture_output=True,
        text=True,
        cwd=app_module,
        env={**os.environ, "PYTHONPATH": f"{app_module}:{REPO}"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    logged = [json.loads(ln) for ln in lines if ln.startswith("{")]
    assert logged, proc.stderr
    assert all({"ts", "level", "logger", "message"} <= rec.keys() for rec in logged)
    assert all(ln.startswith("{") for ln in lines if "streams." in ln)


POLICY_APP = """
import streams as st

def make(on_error):
    t = st.Topology("bad-lines")
    t.source("in", on_error=on_error).map_values(st.col("n") * 10).to("out")
    return t

fail, skip, dead = make("fail"), make("skip"), make("dead_letter")
"""


@pytest.fixture
def bad_lines(tmp_path, monkeypatch):
    (tmp_path / "policyapp.py").write_text(POLICY_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    f = tmp_path / "in.jsonl"
    f.write_bytes(b'{"n": 1}\n{not json\n{"n": 2}\n')
    return f


def test_a_bad_input_line_under_fail_exits_2_naming_file_and_line(bad_lines, capsys):
    assert main(["run", "policyapp:fail", "--input", f"in={bad_lines}", "--print", "out"]) == 2
    err = capsys.readouterr().err
    assert f"error: --input {bad_lines}, line 2: not JSON" in err
    assert "Traceback" not in err


def test_a_bad_input_line_under_skip_is_counted(bad_lines, capsys):
    assert main(["run", "policyapp:skip", "--input", f"in={bad_lines}", "--print", "out"]) == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines() == ["out[0]@0 key=None value=10", "out[0]@1 key=None value=20"]
    assert "dropped 1 records" in cap.err


def test_a_bad_input_line_under_dead_letter_goes_to_the_dlq_as_it_was(bad_lines, capsys):
    args = ["run", "policyapp:dead", "--input", f"in={bad_lines}", "--print", "bad-lines-dlq"]
    assert main(args) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("bad-lines-dlq[0]@0 key=None value=b'{not json' headers=")
    assert "'streams.error.type': 'SerializationError'" in line
    assert "'streams.source.offset': '1'" in line


def test_print_names_the_topics_it_can_print(app_module, capsys):
    f = app_module / "in.jsonl"
    f.write_text('{"n": 2}\n')
    assert main(["run", "cliapp:topo", "--input", f"in={f}", "--print", "nope"]) == 2
    assert "not a sink or dead-letter topic of cli-app (out)" in capsys.readouterr().err
