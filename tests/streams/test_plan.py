"""The logical and physical plans are plain data, and every node kind has one operator entry."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

import streams as st
from operators import registry
from operators.windowed_columnar import KeyedBatch, WindowBatch
from streams.compiler.compile import PhysicalPlan, compile_plan
from streams.core.errors import TopologyError
from streams.plan import nodes as plan
from streams.plan.builder import PlanBuilder
from streams.plan.logical import LogicalPlan


def _app() -> st.Topology:
    t = st.Topology("app", on_error="skip")
    s = t.source("in").filter(st.col("x") > 1).key_by("u")
    s.map_values(lambda v: v).on_error("dead_letter").to("side")
    s.count("c").to("out")
    s.window("w", st.windows.tumbling(ms=60_000)).aggregate(n=st.agg.count()).to("win")
    return t


def _objects(x: Any, seen: set[int]) -> Any:
    """Every object reachable through dataclass fields, mappings and sequences."""
    if id(x) in seen:
        return
    seen.add(id(x))
    yield x
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        for f in dataclasses.fields(x):
            yield from _objects(getattr(x, f.name), seen)
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _objects(k, seen)
            yield from _objects(v, seen)
    elif isinstance(x, list | tuple | set | frozenset):
        for v in x:
            yield from _objects(v, seen)


def test_the_physical_plan_holds_no_topology() -> None:
    names = {f.name for f in dataclasses.fields(PhysicalPlan)}
    assert "topology" not in names
    p = _app().compile()
    dsl = [o for o in _objects(p, set()) if type(o).__module__.startswith("streams.dsl")]
    assert dsl == []
    assert isinstance(p.logical, LogicalPlan)


def test_the_logical_plan_is_data_the_compiler_takes_alone() -> None:
    t = _app()
    lp = t.logical_plan()
    assert lp.on_error == "skip" and dict(lp.step_policies) == {"map-values-3": "dead_letter"}
    again = compile_plan(copy.deepcopy(lp))  # no Topology anywhere
    from streams.compiler.describe import describe_text

    assert describe_text(again) == t.describe()
    assert copy.deepcopy(t.compile()).app_id == "app"


def test_the_physical_plan_carries_what_tasks_need() -> None:
    p = _app().compile()
    segs = [seg for sub in p.subtopologies for seg in sub.segments.values()]
    for seg in segs:
        assert tuple(n.step for n in seg.nodes) == seg.steps
        assert set(seg.policies) == set(seg.steps)
        assert seg.execution == "auto"
    assert any(seg.policies.get("map-values-3") == "dead_letter" for seg in segs)
    stores = {s.spec.name: s for sub in p.subtopologies for s in sub.stores}
    assert stores["c"].definition.changelog == "app-c-changelog"
    assert isinstance(stores["c"].node, plan.Aggregate)


def test_a_table_read_from_its_topic_is_not_logged() -> None:
    t = st.Topology("app")
    t.source("tx").join(t.table("cards"), lambda v, c: v).to("out")
    (info,) = [s for sub in t.compile().subtopologies for s in sub.stores]
    assert info.changelog == "cards" and info.definition.logged is False


def test_the_builder_checks_what_it_is_given() -> None:
    b = PlanBuilder("app")
    b.add(plan.Source(step="s", parents=(), topic="in"))
    with pytest.raises(TopologyError, match="duplicate step id"):
        b.step_name("x", "s")
    with pytest.raises(TopologyError, match="unknown parent"):
        b.add(plan.Sink(step="k", parents=("nope",), topic="out"))
    b.claim_store("st", "a")
    with pytest.raises(TopologyError, match="already belongs"):
        b.claim_store("st", "b")
    before = b.build()
    b.set_policy("s", "skip")
    assert b.build() is not before and b.build().policy_for("s") == "skip"


def test_every_node_class_has_one_registry_entry() -> None:
    classes = set(registry.node_classes())
    assert classes == set(registry.REGISTRY)
    for cls in classes:
        spec = registry.REGISTRY[cls]
        assert (spec.segment == "chain") == cls.fusable, cls
        if spec.segment in ("sink", "repartition", "stateful"):
            assert spec.build is not None, cls
        if spec.segment == "chain" and cls is not plan.Branch:
            assert spec.fused is not None, cls


def test_describe_asks_the_operator_how_an_aggregation_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _app().describe()
    assert "aggregate [columnar] c" in text
    assert "window_aggregate [columnar + windows on Arrow] w" in text
    monkeypatch.setattr(KeyedBatch, "for_node", classmethod(lambda cls, n: None))
    monkeypatch.setattr(WindowBatch, "for_node", classmethod(lambda cls, n: None))
    text = _app().describe()
    assert "aggregate [row] c" in text and "window_aggregate [row] w" in text


def test_the_task_builds_processors_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    spec = registry.REGISTRY[plan.Sink]

    def build(node: Any, exits: Any, ctx: Any) -> Any:
        built.append(node.step)
        assert spec.build is not None
        return spec.build(node, exits, ctx)

    monkeypatch.setitem(
        registry.REGISTRY,  # type: ignore[arg-type]
        plan.Sink,
        dataclasses.replace(spec, build=build),
    )
    d = st.TopologyTestDriver(_app())
    d.pipe("in", {"x": 2, "u": "a"}, key="a")
    assert sorted(built) == ["sink-4", "sink-5", "sink-6"]
    assert d.read_values("side") == [{"x": 2, "u": "a"}]


def test_replace_keeps_kind_and_parents_and_invalidates_the_compiled_plan():
    import dataclasses

    import pytest

    import streams as st
    from streams.core.errors import TopologyError
    from streams.plan import nodes as plan

    t = st.Topology("swap")
    t.source("in").filter(st.col("n") > 0).to("out")
    before = t.compile()
    sink = next(n for n in t.nodes if isinstance(n, plan.Sink))
    t.builder.replace(dataclasses.replace(sink, topic="elsewhere"))
    assert t.compile() is not before
    assert "elsewhere" in t.compile().sink_topics
    with pytest.raises(TopologyError, match="keeps the step's kind"):
        t.builder.replace(plan.Source(step=sink.step, parents=(), topic="x"))
    with pytest.raises(TopologyError, match="does not exist"):
        t.builder.replace(dataclasses.replace(sink, step="nope"))
