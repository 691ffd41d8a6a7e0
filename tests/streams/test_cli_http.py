"""`streams run --http HOST:PORT`: the worker serves metrics, health and queries while it runs."""

import json

import pytest

from streams.cli import main

APP = """
import streams as st

topo = st.Topology("cli-http")
topo.source("in").count("counts").to("out", value=st.serde.INT)
"""


@pytest.fixture
def app_module(tmp_path, monkeypatch):
    (tmp_path / "clihttpapp.py").write_text(APP)
    (tmp_path / "in.jsonl").write_text(json.dumps({"key": "a", "value": {}}) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def served(err: str) -> list[str]:
    """The "HTTP server on ADDRESS" log lines (the CLI logs to stderr)."""
    return [ln.split("HTTP server on ")[1] for ln in err.splitlines() if "HTTP server on " in ln]


def test_run_with_http_serves_on_the_given_address(app_module, capfd):
    args = ["run", "clihttpapp:topo", "--input", f"in={app_module / 'in.jsonl'}"]
    assert main([*args, "--http", "127.0.0.1:0"]) == 0
    addresses = served(capfd.readouterr().err)
    assert len(addresses) == 1 and addresses[0].startswith("127.0.0.1:")
    assert int(addresses[0].split(":")[1]) > 0  # port 0: a free port was picked


def test_http_is_off_by_default_and_a_bad_address_is_an_error(app_module, capfd):
    args = ["run", "clihttpapp:topo", "--input", f"in={app_module / 'in.jsonl'}"]
    assert main(args) == 0
    assert served(capfd.readouterr().err) == []
    assert main([*args, "--http", "localhost"]) == 2
    assert "HOST:PORT" in capfd.readouterr().err
