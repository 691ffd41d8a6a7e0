"""Human-readable renderings of a compiled topology: text (``describe()``) and Mermaid.

>>> import streams as st
>>> t = st.Topology("app")
>>> t.source("in").key_by("user").repartition("by-user").to("out")
>>> print(t.describe())
Topology app
  Sub-topology 0  (source topics: in)
    source-in  <- in
      chain [row] key-by-1 (key_by col('user'))
        repartition by-user (topic=app-by-user-repartition)  -> app-by-user-repartition
  Sub-topology 1  (source topics: app-by-user-repartition)
    by-user  <- app-by-user-repartition
      sink sink-2 (topic=out)  -> out
  Internal topics
    app-by-user-repartition  repartition  partitions=as inputs (in)

Where the fields of the values are known (:mod:`streams.plan.schema`), a source shows them and
so does every step that changes them:

>>> import pyarrow as pa
>>> t = st.Topology("app")
>>> s = t.source("in", schema=pa.schema([("user", pa.string()), ("n", pa.int64())]))
>>> s.with_columns(m=st.col("n") * 2).to("out")
>>> print(t.describe())  # doctest: +NORMALIZE_WHITESPACE
Topology app
  Sub-topology 0  (source topics: in)
    source-in  <- in  fields: user, n
      chain [columnar] with-columns-1 (with_columns m=(col('n') * 2))  fields: user, n, m
        sink sink-2 (topic=out)  -> out
"""

from __future__ import annotations

from operators.registry import describe_mode
from streams.compiler.compile import PhysicalPlan, Segment, SubTopology
from streams.core.types import RecordType
from streams.plan.schema import Fields


def _fields(f: Fields, rec: RecordType | None = None) -> str:
    if rec is not None:
        return f"  values: {rec.name}(" + ", ".join(rec.fields) + ")"
    return "" if f is None else "  fields: " + (", ".join(f) or "none")


def _changed_fields(p: PhysicalPlan, seg: Segment) -> str:
    """The fields (and record class) after ``seg`` when known and not those it was given."""
    lp = p.logical
    first, last = seg.nodes[0], seg.nodes[-1]
    out, rec = lp.schema_of(last.step), lp.schemas.record_out(last.step)
    parent = first.parents[0] if first.parents else None
    before = lp.schema_of(parent) if parent else None
    rec_before = lp.schemas.record_out(parent) if parent else None
    return "" if (out, rec) == (before, rec_before) else _fields(out, rec)


def _seg_line(seg: Segment) -> str:
    if seg.kind == "chain":
        parts = []
        for n in seg.nodes:
            d = n.detail()
            parts.append(f"{n.step} ({n.kind}{' ' + d if d else ''})")
        return f"chain [{seg.mode}] " + " > ".join(parts)
    n = seg.nodes[0]
    if seg.kind == "stateful":
        mode = describe_mode(n, seg.execution)  # (the operator's own batch planner says)
        return f"{n.kind}{f' [{mode}]' if mode else ''} {n.step} ({n.detail()})"
    return f"{seg.kind} {n.step} ({n.detail()})  -> {getattr(n, 'topic', '')}"


def _walk(
    p: PhysicalPlan, sub: SubTopology, seg_id: str, depth: int, seen: set[str], lines: list[str]
) -> None:
    if seg_id in seen:
        lines.append("  " * depth + f"(joins {seg_id})")
        return
    seen.add(seg_id)
    seg = sub.segments[seg_id]
    lines.append("  " * depth + _seg_line(seg) + _changed_fields(p, seg))
    for i, exit_ in enumerate(seg.exits):
        for child in exit_:
            if len(seg.exits) > 1:
                lines.append("  " * (depth + 1) + f"[branch {i}]")
            _walk(p, sub, child, depth + 1 + (len(seg.exits) > 1), seen, lines)


def describe_text(p: PhysicalPlan) -> str:
    lines = [f"Topology {p.app_id}"]
    for sub in p.subtopologies:
        lines.append(f"  Sub-topology {sub.id}  (source topics: {', '.join(sub.inputs)})")
        seen: set[str] = set()
        for topic, inp in sub.inputs.items():
            known = "" if inp.internal else _fields(p.logical.schema_of(inp.step), inp.record)
            lines.append(f"    {inp.step}  <- {topic}{known}")
            for child in inp.children:
                _walk(p, sub, child, 3, seen, lines)
        for s in sub.stores:
            lines.append(
                f"    store {s.spec.name} ({s.spec.kind}, step {s.step})  changelog {s.changelog}"
            )
    if p.internal_topics:
        lines.append("  Internal topics")
        for t in p.internal_topics:
            n = str(t.partitions) if t.partitions else f"as inputs ({', '.join(t.partitions_from)})"
            lines.append(f"    {t.name}  {t.kind}  partitions={n}")
    return "\n".join(lines)


def describe_mermaid(p: PhysicalPlan) -> str:
    """A ``flowchart`` of topics (stadium shapes) and steps, one subgraph per sub-topology."""

    def nid(s: str) -> str:
        return "n_" + "".join(c if c.isalnum() else "_" for c in s)

    lines = ["flowchart LR"]
    topics: set[str] = set()
    for sub in p.subtopologies:
        lines.append(f"  subgraph sub{sub.id}[Sub-topology {sub.id}]")
        for seg in sub.segments.values():
            label = "<br/>".join(seg.steps)
            lines.append(f'    {nid(seg.id)}["{seg.kind}: {label}"]')
        lines.append("  end")
        for topic, inp in sub.inputs.items():
            topics.add(topic)
            for c in inp.children:
                lines.append(f"  {nid('t_' + topic)} --> {nid(c)}")
        for seg in sub.segments.values():
            for i, exit_ in enumerate(seg.exits):
                label = f"|{i}|" if len(seg.exits) > 1 else ""
                for c in exit_:
                    lines.append(f"  {nid(seg.id)} -->{label} {nid(c)}")
            if seg.kind in ("sink", "repartition"):
                topic = getattr(seg.nodes[0], "topic", "")
                topics.add(topic)
                lines.append(f"  {nid(seg.id)} --> {nid('t_' + topic)}")
    for t in sorted(topics):
        lines.append(f'  {nid("t_" + t)}(["{t}"])')
    return "\n".join(lines)


__all__ = ["describe_mermaid", "describe_text"]
