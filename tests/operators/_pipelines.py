"""A pipeline the columnar source tests share: filter and enrich transactions, then count
them per user in tumbling windows (so a source's batches reach a columnar chain, a
repartition and a windowed aggregation)."""

import streams as st
from streams import windows


def tx_pipeline(src: st.Stream) -> None:
    """``big`` (amount > 10, with cents) and ``counts`` (per user per second) of ``src``."""
    big = src.filter(st.col("amount") > 10).with_columns(cents=st.col("amount") * 100)
    big.select("user", "cents").to("big")
    (
        big.key_by(st.col("user"))
        .window("per-user", windows.tumbling(ms=1000))
        .count()
        .to("counts", key=st.serde.JSON)
    )
