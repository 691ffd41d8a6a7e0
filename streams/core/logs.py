"""Logging set-up for ``streams run``: readable text on a terminal, JSON lines for collectors.

Each JSON line has ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the exception
text under ``exc`` when there is one, and any ``extra={...}`` fields given to the log call.

>>> import io, json, logging
>>> buf = io.StringIO()
>>> h = logging.StreamHandler(buf)
>>> h.setFormatter(JsonFormatter())
>>> log = logging.getLogger("streams.doctest")
>>> log.addHandler(h); log.propagate = False
>>> log.warning("partition %s stalled", 3, extra={"partition": 3})
>>> rec = json.loads(buf.getvalue())
>>> rec["level"], rec["message"], rec["partition"]
('WARNING', 'partition 3 stalled', 3)
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

# attributes every LogRecord has: anything else came from ``extra=``
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v
        return json.dumps(out, default=str)


def configure_logging(fmt: Literal["text", "json"] = "text", level: int = logging.INFO) -> None:
    """Send log records to stderr as text or JSON lines (replaces earlier root handlers)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
