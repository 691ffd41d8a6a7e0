"""Every notebook in notebooks/ runs top to bottom without an error (CI runs them with the suite).

Each notebook is executed in a fresh Jupyter kernel (ipykernel's ``python3``, i.e. this
interpreter), with the notebook's own directory as the working directory, as a reader would run
it. The notebooks assert the points they make, so a wrong result fails here too. Nothing is
written back: the committed notebooks stay without outputs (see test_notebooks_clean.py).
Run one with ``python -m pytest tests/test_notebooks.py -k 02``.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

CELL_TIMEOUT_S = 120  # one cell; each notebook takes seconds (pytest's own timeout is 300 s)


def test_the_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    for prefix in ("01-", "02-", "03-", "04-", "05-"):
        assert any(n.startswith(prefix) for n in names), (prefix, names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count is not None for c in ran)
