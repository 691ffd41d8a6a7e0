"""The live status line: it reports what the worker is doing, tick by tick."""

import asyncio
import io
import re

import streams as st
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.status import status_line
from tests.streams.runtime.test_metrics import config, counting_topology, feed


def test_status_line_reports_records_lag_and_tasks(tmp_path):
    b = EmbeddedBroker()
    b.create_topic("in", 2)
    b.create_topic("out", 2)
    feed(b, 500)
    w = st.Worker(counting_topology(), b, config(tmp_path))
    out = io.StringIO()

    async def go():
        line = asyncio.create_task(status_line(w, out, every_s=0.05))
        runner = asyncio.create_task(w.run())
        for _ in range(200):  # until everything is processed and a tick has seen it
            await asyncio.sleep(0.05)
            if w.processed == 500 and "500 records" in out.getvalue():
                break
        w.stop()
        await runner
        line.cancel()
        await asyncio.gather(line, return_exceptions=True)

    asyncio.run(go())
    ticks = [t.strip() for t in out.getvalue().split("\r") if t.strip()]
    assert ticks, "no status written"
    pattern = r"[\d,]+ rec/s \| 500 records \| lag 0 \| tasks 2 running \| \d+ rebalance"
    assert any(re.match(pattern, t) for t in ticks), ticks[-3:]  # (a tick after stop: lag ?)
    assert out.getvalue().endswith("\n")  # the line is closed when the worker ends
    counts = [int(re.search(r"\| ([\d,]+) records", t).group(1).replace(",", "")) for t in ticks]
    assert counts == sorted(counts)  # the total only grows
