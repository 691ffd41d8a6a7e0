"""Foreign-key table-table join: updates on either side and foreign-key changes."""

import pytest

import streams as st
from streams.testing import TopologyTestDriver


def topology(how="inner"):
    t = st.Topology("fk")
    orders = t.table("orders")
    products = t.table("products")
    (
        orders.join_on(
            products,
            "product",
            lambda o, p: {"qty": o["qty"], "name": p and p["name"]},
            how=how,
            name="order-products",
        )
        .changes()
        .to("out")
    )
    return t


@pytest.mark.parametrize("partitions", [1, 3])
def test_fk_join_follows_both_sides_and_foreign_key_changes(partitions):
    d = TopologyTestDriver(topology(), partitions=partitions)
    d.pipe("products", {"name": "apple"}, key="p1")
    d.pipe("products", {"name": "pear"}, key="p2")
    d.pipe("orders", {"product": "p1", "qty": 2}, key="o1")
    assert d.read_key_values("out") == [("o1", {"qty": 2, "name": "apple"})]
    d.pipe("products", {"name": "green apple"}, key="p1")  # right update reaches subscribers
    assert d.read_key_values("out") == [("o1", {"qty": 2, "name": "green apple"})]
    d.pipe("orders", {"product": "p2", "qty": 2}, key="o1")  # the foreign key changes
    assert d.read_key_values("out") == [("o1", {"qty": 2, "name": "pear"})]
    d.pipe("products", {"name": "red apple"}, key="p1")  # o1 no longer follows p1
    assert d.read_key_values("out") == []
    d.pipe("orders", {"product": "p9", "qty": 2}, key="o1")  # inner: no p9 -> deletion
    assert d.read_key_values("out") == [("o1", None)]
    d.pipe("products", {"name": "plum"}, key="p9")
    assert d.read_key_values("out") == [("o1", {"qty": 2, "name": "plum"})]
    d.pipe("orders", None, key="o1")  # the left row is deleted
    assert d.read_key_values("out") == [("o1", None)]
    d.pipe("products", {"name": "prune"}, key="p9")
    assert d.read_key_values("out") == []


def test_fk_left_join_and_right_deletion():
    d = TopologyTestDriver(topology("left"), partitions=2)
    d.pipe("orders", {"product": "p1", "qty": 1}, key="o1")
    assert d.read_key_values("out") == [("o1", {"qty": 1, "name": None})]
    d.pipe("products", {"name": "fig"}, key="p1")
    d.pipe("products", None, key="p1")
    assert d.read_key_values("out") == [
        ("o1", {"qty": 1, "name": "fig"}),
        ("o1", {"qty": 1, "name": None}),
    ]
    d.pipe("orders", {"product": None, "qty": 1}, key="o1")  # no foreign key at all
    assert d.read_key_values("out") == [("o1", {"qty": 1, "name": None})]


def test_fk_join_topics_and_stores():
    plan = topology().compile()
    names = {it.name for it in plan.internal_topics}
    assert {
        "fk-order-products-subscriptions-repartition",
        "fk-order-products-responses-repartition",
        "fk-order-products-fk-changelog",
        "fk-order-products-subscribers-changelog",
    } <= names
