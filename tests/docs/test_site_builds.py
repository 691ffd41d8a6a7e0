"""The documentation site builds with ``mkdocs build --strict`` (no broken link, no missing
reference) and its generated reference pages list what the code defines."""

import dataclasses
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    return out


def test_strict_build_passes(site):
    assert (site / "index.html").exists()
    assert (site / "reference" / "topology" / "index.html").exists()


def test_configuration_reference_lists_every_field(site):
    from streams.runtime.config import Config

    page = (site / "operations" / "configuration" / "index.html").read_text()
    for f in dataclasses.fields(Config):
        assert f"<code>{f.name}</code>" in page, f.name


def test_metrics_reference_lists_every_registered_metric(site):
    from streams.runtime.metrics import WorkerMetrics

    page = (site / "operations" / "metrics" / "index.html").read_text()
    names = [m.name for m in WorkerMetrics(frozenset()).registry.collect()]
    assert len(names) >= 10
    for name in names:
        assert name in page, name


def test_cli_reference_shows_every_subcommand(site):
    page = (site / "operations" / "cli" / "index.html").read_text()
    for cmd in ("describe", "run", "reset"):
        assert f"usage: streams {cmd}" in page


def test_api_reference_renders_the_public_classes(site):
    page = (site / "reference" / "topology" / "index.html").read_text()
    assert 'id="streams.Topology.source"' in page
    assert 'id="streams.Stream.window"' in page


def test_a_config_field_without_description_fails_the_build():
    hooks = _hooks()

    @dataclasses.dataclass(frozen=True)
    class Bad:
        documented: int = dataclasses.field(default=1, metadata={"doc": "fine"})
        undocumented: int = 2

    with pytest.raises(hooks.DocsError, match="undocumented"):
        hooks.config_reference(Bad)


def test_an_unknown_generated_section_fails():
    hooks = _hooks()
    with pytest.raises(hooks.DocsError, match="nope"):
        hooks.render("<!-- generated: nope -->\n")
