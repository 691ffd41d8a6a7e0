"""Test a topology without a broker: :class:`TopologyTestDriver`, the :class:`Record`s it
reads back and the :class:`StoreView`s it shows.

>>> import streams as st
>>> from streams.testing import TopologyTestDriver
>>> t = st.Topology("t"); t.source("in").filter(st.col("n") > 0).to("out")
>>> d = TopologyTestDriver(t)
>>> d.pipe("in", {"n": 1}); d.read_values("out")
[{'n': 1}]
"""

from streams.runtime.driver import Record, StoreView, TopologyTestDriver

__all__ = ["Record", "StoreView", "TopologyTestDriver"]
