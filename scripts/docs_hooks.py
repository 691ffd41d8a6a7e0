"""MkDocs hooks: reference pages generated from the code at build time, so they cannot drift.

A page asks for a generated section with a marker on a line of its own:

* ``<!-- generated: config-reference -->``: every field of :class:`streams.runtime.config.Config`
  (type, default, description). A field without a description fails the build.
* ``<!-- generated: metrics-reference -->``: every metric a worker registers, read from a live
  :class:`streams.runtime.metrics.WorkerMetrics` registry (name, type, labels, help).
* ``<!-- generated: cli-reference -->``: ``streams --help`` and each subcommand's help.

``mkdocs.yml`` lists this file under ``hooks:``; ``tests/docs/`` imports it too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import typing
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


class DocsError(Exception):
    """A generated section cannot be made (e.g. a config field has no description)."""


# -- configuration ------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    text = str(tp) if not isinstance(tp, type) else tp.__name__
    return text.replace("typing.", "").replace("NoneType", "None")


def config_reference(config_cls: Any = None) -> str:
    """A Markdown table of the Config fields; raises DocsError for a field without a doc."""
    if config_cls is None:
        from streams.runtime.config import Config

        config_cls = Config
    hints = typing.get_type_hints(config_cls)
    missing = [
        f.name for f in dataclasses.fields(config_cls) if not str(f.metadata.get("doc", "")).strip()
    ]
    if missing:
        raise DocsError(
            f"{config_cls.__name__} field(s) without a description: {', '.join(missing)} "
            "(give each field metadata=_doc('...'))"
        )
    rows = ["| setting | type | default | description |", "|---|---|---|---|"]
    for f in dataclasses.fields(config_cls):
        doc = " ".join(str(f.metadata["doc"]).split()).replace("|", "\\|")
        type_ = _type_name(hints[f.name]).replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{type_}` | `{f.default!r}` | {doc} |")
    return "\n".join(rows)


# -- metrics ------------------------------------------------------------------------------------
_SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def metric_families() -> list[tuple[str, str, list[str], str]]:
    """``(exposed name, type, labels, help)`` for every metric of a worker's registry.

    The registry is a real :class:`WorkerMetrics`; each labelled metric gets one child and the
    collection-time gauges one sample, so every family shows its labels.
    """
    from prometheus_client.metrics import MetricWrapperBase

    from streams.runtime.broker import TopicPartition
    from streams.runtime.metrics import WorkerMetrics

    m = WorkerMetrics(frozenset())
    for metric in vars(m).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*(f"<{n}>" for n in metric._labelnames))
    m.lag = {TopicPartition("<topic>", 0): 0}
    m.store_sizes = lambda: [("<store>", 0, 0)]
    m.task_states = lambda: {"<state>": 0}
    out = []
    for fam in m.registry.collect():
        labels = sorted({k for s in fam.samples for k in s.labels if k != "le"})
        names = [fam.name + s for s in _SUFFIXES.get(fam.type, [""])]
        out.append((", ".join(names), fam.type, labels, fam.documentation))
    return out


def metrics_reference() -> str:
    rows = ["| metric | type | labels | description |", "|---|---|---|---|"]
    for names, type_, labels, doc in metric_families():
        shown = "<br>".join(f"`{n}`" for n in names.split(", "))
        label_text = ", ".join(f"`{x}`" for x in labels) or "—"
        rows.append(f"| {shown} | {type_} | {label_text} | {doc} |")
    return "\n".join(rows)


# -- command line -------------------------------------------------------------------------------
def _help(argv: list[str]) -> str:
    from streams.cli import main

    buf = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: make the page stable
    try:
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    text = buf.getvalue().strip()
    if not text:
        raise DocsError(f"`streams {' '.join(argv)}` printed no help")
    return text


def cli_reference() -> str:
    parts = []
    for cmd in (None, "describe", "run", "reset"):
        argv = [cmd, "--help"] if cmd else ["--help"]
        title = f"streams {cmd}" if cmd else "streams"
        parts.append(f"### `{title}`\n\n```text\n{_help(argv)}\n```")
    return "\n\n".join(parts)


GENERATORS = {
    "config-reference": config_reference,
    "metrics-reference": metrics_reference,
    "cli-reference": cli_reference,
}


def render(markdown: str) -> str:
    """Replace every marker with its generated section (unknown markers fail)."""

    def sub(m: re.Match[str]) -> str:
        gen = GENERATORS.get(m.group(1))
        if gen is None:
            raise DocsError(f"unknown generated section {m.group(1)!r}")
        return gen()

    return MARKER.sub(sub, markdown)


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    return render(markdown)


# -- pages from outside docs/ -------------------------------------------------------------------
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: repository files the guide links to, published in the site at the same relative path
EXTERNAL = ["bench/RESULTS.md", "notebooks/README.md"]


def external_files() -> list[str]:
    notebooks = sorted(
        f"notebooks/{n}"
        for n in os.listdir(os.path.join(ROOT, "notebooks"))
        if n.endswith(".ipynb")
    )
    return [*EXTERNAL, *notebooks]


def on_files(files: Any, *, config: Any) -> Any:
    from mkdocs.structure.files import File

    for rel in external_files():
        files.append(File.generated(config, rel, abs_src_path=os.path.join(ROOT, rel)))
    return files
