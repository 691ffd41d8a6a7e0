"""Stream-stream windowed joins and table-table joins through the driver."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from streams import windows
from streams.testing import TopologyTestDriver


def ss_join(how, before=10, after=10, grace=0, ooo=0):
    t = st.Topology("ss")
    left = t.source("left", timestamp="ts", max_out_of_orderness=ooo)
    right = t.source("right", timestamp="ts", max_out_of_orderness=ooo)
    (
        left.join(
            right,
            lambda lv, rv: (lv and lv["id"], rv and rv["id"]),
            how=how,
            window=windows.join_window(before, after, grace=grace),
            name="j",
        ).to("out")
    )
    return t


def pipe(d, side, ts, id_, key="k"):
    d.pipe(side, {"ts": ts, "id": id_}, key=key, timestamp=ts)


def out(d):
    return [tuple(r.value) for r in d.read("out")]


def test_inner_join_within_the_window_inclusive_bounds():
    d = TopologyTestDriver(ss_join("inner", ooo=20))
    pipe(d, "left", 100, "L1")
    pipe(d, "right", 110, "R1")  # t_l + after: inclusive -> match
    pipe(d, "right", 111, "R2")  # just outside
    pipe(d, "right", 90, "R3")  # t_l - before: inclusive -> match (out of order, not late)
    assert out(d) == [("L1", "R1"), ("L1", "R3")]
    pipe(d, "left", 120, "L2")  # meets R1 (110) and R2 (111) from the left side
    assert out(d) == [("L2", "R1"), ("L2", "R2")]


def test_left_join_emits_unmatched_only_after_the_window_closes():
    d = TopologyTestDriver(ss_join("left", grace=5))
    pipe(d, "left", 100, "L1")
    pipe(d, "left", 200, "L2")
    # the right topic has not spoken yet, so it holds the watermark back: nothing closes
    assert out(d) == []
    pipe(d, "right", 205, "R1")  # matches L2; the watermark (200) now closes L1's window
    assert out(d) == [("L2", "R1"), ("L1", None)]
    pipe(d, "right", 400, "R9")
    assert out(d) == []  # L2 matched: no null result for it, ever


def test_outer_join_emits_unmatched_of_both_sides_once():
    d = TopologyTestDriver(ss_join("outer"))
    pipe(d, "right", 100, "R1")
    pipe(d, "left", 300, "L1")
    assert out(d) == []  # the watermark is 100 (the right side): nothing has closed
    pipe(d, "left", 1000, "L2")
    pipe(d, "right", 1000, "R2")  # watermark 1000: R1's and L1's windows close, unmatched
    assert out(d) == [("L2", "R2"), (None, "R1"), ("L1", None)]
    pipe(d, "left", 5000, "L3")
    pipe(d, "right", 5000, "R3")
    assert out(d) == [("L3", "R3")]  # L2/R2 matched: never emitted with None


def test_keys_do_not_cross():
    d = TopologyTestDriver(ss_join("inner"), partitions=2)
    pipe(d, "left", 100, "L1", key="a")
    pipe(d, "right", 100, "R1", key="b")
    assert out(d) == []


def test_late_record_is_dropped_not_joined():
    d = TopologyTestDriver(ss_join("left"))
    pipe(d, "left", 100, "L1")
    pipe(d, "right", 500, "R1")
    pipe(d, "left", 500, "L2")  # watermark 500 closes L1 -> (L1, None); L2 meets R1
    pipe(d, "right", 105, "R2")  # late for every window that could hold it
    assert out(d) == [("L2", "R1"), ("L1", None)]
    assert d.dropped == {("j", "late"): 1}


def test_stream_join_declarations():
    t = st.Topology("sj")
    a, b = t.source("a"), t.source("b")
    with pytest.raises(st.TopologyError, match="needs name="):
        a.join(b, lambda x, y: x, window=windows.join_window(10))
    with pytest.raises(st.TopologyError, match="needs window="):
        a.join(b, lambda x, y: x, name="j")
    with pytest.raises(st.TopologyError, match="with itself"):
        a.join(a, lambda x, y: x, window=windows.join_window(10), name="j2")
    with pytest.raises(st.TopologyError, match="positive span"):
        windows.join_window(0, 0)


@settings(max_examples=40, deadline=None)
@given(
    hs.lists(
        hs.tuples(hs.sampled_from(["left", "right"]), hs.integers(0, 2), hs.integers(0, 300)),
        max_size=40,
    ),
    hs.integers(0, 30),
    hs.integers(0, 30),
)
def test_windowed_inner_join_equals_a_nested_loop_join(events, before, after):
    """Events in timestamp order: the join's final result equals a batch nested-loop join of
    the same data restricted to the window predicate."""
    if before + after == 0:
        after = 1
    events = sorted(events, key=lambda e: e[2])
    d = TopologyTestDriver(ss_join("inner", before, after))
    lefts, rights = [], []
    for i, (side, k, ts) in enumerate(events):
        pipe(d, side, ts, f"{side[0]}{i}", key=f"k{k}")
        (lefts if side == "left" else rights).append((f"k{k}", ts, f"{side[0]}{i}"))
    got = sorted(out(d))
    want = sorted(
        (li, ri)
        for lk, lt, li in lefts
        for rk, rt, ri in rights
        if lk == rk and lt - before <= rt <= lt + after
    )
    assert got == want


# -- table-table -----------------------------------------------------------------------------
def tt(how):
    t = st.Topology("tt2")
    users = t.table("users")
    tiers = t.table("tiers")
    users.join(
        tiers, lambda u, ti: {"name": u and u["name"], "tier": ti and ti["tier"]}, how=how
    ).changes().to("out")
    return t


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("inner", [None, {"name": "ann", "tier": "gold"}, None]),
        (
            "left",
            [
                {"name": "ann", "tier": None},
                {"name": "ann", "tier": "gold"},
                {"name": "ann", "tier": None},
            ],
        ),
        (
            "outer",
            [
                {"name": "ann", "tier": None},
                {"name": "ann", "tier": "gold"},
                {"name": "ann", "tier": None},
            ],
        ),
    ],
)
def test_table_table_join_with_retractions(how, expected):
    d = TopologyTestDriver(tt(how))
    d.pipe("users", {"name": "ann"}, key="u1")
    d.pipe("tiers", {"tier": "gold"}, key="u1")
    d.pipe("tiers", None, key="u1")  # the right row is deleted
    assert d.read_values("out") == expected


def test_table_table_outer_join_right_only_and_full_deletion():
    d = TopologyTestDriver(tt("outer"))
    d.pipe("tiers", {"tier": "gold"}, key="u2")
    d.pipe("tiers", None, key="u2")
    assert d.read_key_values("out") == [("u2", {"name": None, "tier": "gold"}), ("u2", None)]


def test_a_record_at_the_watermark_still_joins_inclusive_bounds():
    """Found by the property test: with before=0 a right record at t must stay joinable while
    the watermark is t (a left record at t is on time)."""
    d = TopologyTestDriver(ss_join("inner", before=0, after=1))
    pipe(d, "left", 0, "L0")
    pipe(d, "right", 0, "R1")
    pipe(d, "left", 0, "L2")
    assert out(d) == [("L0", "R1"), ("L2", "R1")]
