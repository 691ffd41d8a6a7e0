"""Connectors: the public Source/Sink API and the built-in file connectors.

``stream.to_sink(sink)`` writes through a :class:`Sink` (``ParquetSink``, ``PostgresSink``,
``IcebergSink`` or your own); ``topo.source_from(source)`` reads
from a :class:`Source`. The contract (what a writer does at each phase of the task's commit,
how a source's position is kept) is in :mod:`operators.connectors.api`; the how-to
``docs/how-to/write-a-connector.md`` walks through writing one.

>>> import streams as st
>>> t = st.Topology("copy")
>>> t.source_from(st.connectors.JsonLinesSource("in/")).to_sink(st.connectors.ParquetSink("out/"))
>>> for line in t.describe().splitlines()[2:4]:
...     print(line)
    source-jsonl  <- JsonLinesSource path=in/ (anchor copy-source-jsonl-source)
      connector_sink parquet-out (parquet path=out/; store=parquet-out)
"""

from operators.connectors.api import (
    Guarantee,
    Headers,
    Sink,
    SinkBatch,
    SinkContext,
    SinkRecord,
    SinkState,
    SinkWriter,
    Source,
    SourceBatch,
    SourceContext,
    SourceReader,
)
from operators.connectors.files import CsvSource, JsonLinesSource, ParquetSource
from operators.connectors.iceberg import IcebergSink
from operators.connectors.parquet import ParquetSink
from operators.connectors.postgres import PostgresSink

__all__ = [
    "CsvSource",
    "Guarantee",
    "Headers",
    "IcebergSink",
    "JsonLinesSource",
    "ParquetSink",
    "ParquetSource",
    "PostgresSink",
    "Sink",
    "SinkBatch",
    "SinkContext",
    "SinkRecord",
    "SinkState",
    "SinkWriter",
    "Source",
    "SourceBatch",
    "SourceContext",
    "SourceReader",
]
