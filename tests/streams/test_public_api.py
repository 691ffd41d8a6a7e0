"""The curated public surface: sorted, complete, and every name resolves."""

import subprocess
import sys

import streams


def test_all_is_sorted_and_resolves():
    assert streams.__all__ == sorted(streams.__all__)
    for name in streams.__all__:
        assert getattr(streams, name) is not None


def test_unknown_attribute_raises():
    import pytest

    with pytest.raises(AttributeError):
        _ = streams.nope  # type: ignore[attr-defined]


def test_low_layers_import_without_the_dsl():
    """state/ and operators/ sit below the DSL: importing them must not import it."""
    code = (
        "import sys, state, operators.aggregate;"
        "bad = [m for m in ('streams.dsl.topology', 'streams.testing', 'streams.runtime.worker')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
