"""Every ```python block of the guide runs, so a renamed API breaks the build, not the reader.

The blocks of one page run in order in one namespace, in a temporary directory. A block that
cannot run here (it needs a Kafka broker, say) is preceded by ``<!-- skip: why -->``; those are
counted and kept few. Examples assert what they claim, so a wrong page fails too.
"""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)
SKIP = re.compile(r"<!--\s*skip:\s*(?P<why>.+?)\s*-->\s*$")
MAX_SKIPPED = 4


def blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` of each python block of ``page``."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        if m.group("lang") not in ("python", "py"):
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        indent = m.group("indent")
        body = "".join(
            ln[len(indent) :] if ln.startswith(indent) else ln
            for ln in m.group("body").splitlines(keepends=True)
        )
        out.append((line + 1, body, skip.group("why") if skip else None))
    return out


PAGES = sorted(p for p in DOCS.rglob("*.md"))
ALL = {p: blocks(p) for p in PAGES}


def test_the_guide_has_examples_and_few_are_skipped():
    ran = sum(1 for bs in ALL.values() for *_, why in bs if why is None)
    skipped = [(p.name, ln, why) for p, bs in ALL.items() for ln, _, why in bs if why]
    assert ran >= 40, ran
    assert len(skipped) <= MAX_SKIPPED, skipped


@pytest.mark.parametrize(
    "page", [p for p in PAGES if ALL[p]], ids=lambda p: str(p.relative_to(DOCS))
)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    rel = page.relative_to(DOCS.parent)
    for line, code, why in ALL[page]:
        if why is not None:
            compile(code, f"{rel}:{line}", "exec")  # skipped blocks still have to parse
            continue
        exec(compile(code, f"{rel}:{line}", "exec"), namespace)
