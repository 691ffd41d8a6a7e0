"""Notebooks are committed clean: no stored outputs, and they pass ruff.

Outputs are build artefacts (they change on every run and bloat diffs); CI regenerates them by
executing each notebook (test_notebooks.py). Strip before committing with
``nbstripout notebooks/*.ipynb`` (or ``nbstripout --install`` once, to let git do it: see
.gitattributes). pyproject's ruff config excludes ``notebooks`` from ``ruff check .``, so this test
lints them by naming the files explicitly.
"""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have stored outputs or execution counts; "
        f"run `nbstripout {path.relative_to(REPO)}`"
    )
    assert "widgets" not in nb.metadata, f"{path.name}: widget state stored"


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_notebooks_pass_ruff(command):
    if not NOTEBOOKS:
        pytest.skip("no notebooks")
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    r = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
