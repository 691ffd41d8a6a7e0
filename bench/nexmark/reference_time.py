"""Reference results of Nexmark q10 and q12 (DuckDB), over a :class:`NexmarkReference`.

``q10`` is the official query's rows: every bid with ``dt``/``hm``, its ``dateTime`` formatted
in UTC (``DATE_FORMAT(dateTime, 'yyyy-MM-dd')`` / ``'HH:mm'``). ``q12`` counts bids per
bidder in *processing-time* windows, so which window a bid lands in depends on when it is
processed; the part of its result that does not is the total per bidder over all windows,
which is what this returns (``bidder``, ``bid_count``): a correct run's counts summed per
bidder equal it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (reference.py imports this module for its QUERIES)
    from bench.nexmark.reference import NexmarkReference, Row, Source


def _q10(ref: NexmarkReference) -> list[Row]:
    """Log to file system. Order: arrival.

    ``SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime, 'yyyy-MM-dd'),
    DATE_FORMAT(dateTime, 'HH:mm') FROM bid;`` into a sink ``PARTITIONED BY (dt, hm)``.
    """
    return ref.sql(
        """SELECT auction, bidder, price, "dateTime", extra,
                  strftime(epoch_ms("dateTime"), '%Y-%m-%d') AS dt,
                  strftime(epoch_ms("dateTime"), '%H:%M') AS hm
           FROM bid ORDER BY seq"""
    )


def _q12(ref: NexmarkReference) -> list[Row]:
    """Bids per bidder over all processing-time windows. Order: bidder.

    ``SELECT bidder, count(*) as bid_count, window_start AS starttime, window_end AS endtime
    FROM TABLE(TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
    GROUP BY bidder, window_start, window_end;`` with ``p_time = PROCTIME()``: summed over
    the windows, ``SELECT bidder, count(*) AS bid_count FROM bid GROUP BY bidder``.
    """
    return ref.sql("SELECT bidder, count(*) AS bid_count FROM bid GROUP BY bidder ORDER BY bidder")


def q10(source: Source) -> list[Row]:
    """See :func:`_q10`."""
    from bench.nexmark.reference import _with_ref

    return _with_ref(source, _q10)


def q12(source: Source) -> list[Row]:
    """See :func:`_q12`."""
    from bench.nexmark.reference import _with_ref

    return _with_ref(source, _q12)


__all__ = ["q10", "q12"]
