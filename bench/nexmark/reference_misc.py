"""Reference results of Nexmark q6 and q13 (DuckDB), mixed into
:class:`bench.nexmark.reference.NexmarkReference` (same tables, same conventions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.nexmark import side_input

if TYPE_CHECKING:
    from bench.nexmark.reference import Source

Row = dict[str, Any]
Q6_ROWS_PRECEDING = 10


class MiscQueries:
    """q6 and q13 over the ``person``/``auction``/``bid`` tables of :class:`NexmarkReference`."""

    def sql(self, query: str) -> list[Row]:  # (NexmarkReference's)
        raise NotImplementedError

    def q6(self) -> list[Row]:
        """Average selling price by seller. Order: ``seller``.

        ``SELECT Q.seller, AVG(Q.price) OVER (PARTITION BY Q.seller ORDER BY Q.dateTime ROWS
        BETWEEN 10 PRECEDING AND CURRENT ROW) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY
        A.id, A.seller ORDER BY B.price DESC) AS rownum FROM (SELECT A.id, A.seller, B.price,
        B.dateTime FROM auction AS A, bid AS B WHERE A.id = B.auction and B.dateTime between
        A.dateTime and A.expires) WHERE rownum <= 1) AS Q;``

        As printed, the SQL filters ``rownum`` in the SELECT that defines it; read here as the
        evident intent (the filter outside). The OVER window gives a row per winning bid; updating
        per seller (each new or changed winner revises it; Flink itself cannot run this SQL, its
        OVER window does not take the ranking's retractions), the final value per seller is the
        average at the seller's latest winner: over its latest **11** auctions (10 preceding + the
        current row, as the SQL says, where the description says 10). Keys: ``seller``,
        ``avg_price`` (the sink's name). Ties: an auction's winner is its highest bid, then the
        earliest, then the earliest arrival (as q9); auctions are ordered by the winner's
        ``dateTime``, then the auction id. Auctions without a bid in ``[dateTime, expires]``
        (inclusive) do not count. The average is a DOUBLE (Flink's AVG over BIGINT truncates).
        """
        return self.sql(
            f"""WITH Q AS (
                  SELECT * FROM (
                    SELECT A.id, A.seller, B.price, B."dateTime",
                           ROW_NUMBER() OVER (
                             PARTITION BY A.id, A.seller ORDER BY B.price DESC, B."dateTime", B.seq
                           ) AS rownum
                    FROM auction A JOIN bid B ON A.id = B.auction
                    WHERE B."dateTime" BETWEEN A."dateTime" AND A.expires
                  ) WHERE rownum <= 1
                ), O AS (
                  SELECT seller,
                         AVG(price) OVER (
                           PARTITION BY seller ORDER BY "dateTime", id
                           ROWS BETWEEN {Q6_ROWS_PRECEDING} PRECEDING AND CURRENT ROW
                         ) AS avg_price,
                         ROW_NUMBER() OVER (
                           PARTITION BY seller ORDER BY "dateTime" DESC, id DESC
                         ) AS latest
                  FROM Q
                )
                SELECT seller, avg_price FROM O WHERE latest = 1 ORDER BY seller"""
        )

    def q13(self) -> list[Row]:
        """Bounded side input join. Order: bid arrival.

        The side input is :mod:`bench.nexmark.side_input` (``key,value`` rows, ``i,i`` for
        ``i < 10000``, as the nexmark repo's ``SideInputGenerator`` writes them), read here
        with DuckDB's CSV reader; the processing-time temporal join of a bounded table that
        never changes is a plain inner join. Keys: the sink's.

        ``SELECT B.auction, B.bidder, B.price, B.dateTime, S.value FROM (SELECT *, PROCTIME()
        as p_time FROM bid) B JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S ON
        mod(B.auction, 10000) = S.key;``
        """
        path = str(side_input.path()).replace("'", "''")
        return self.sql(
            f"""WITH S AS (
                  SELECT * FROM read_csv('{path}', header = false,
                                         columns = {{'key': 'BIGINT', 'value': 'VARCHAR'}})
                )
                SELECT B.auction, B.bidder, B.price, B."dateTime", S.value
                FROM bid B JOIN S ON B.auction % {side_input.ROWS} = S.key
                ORDER BY B.seq"""
        )


def q6(source: Source) -> list[Row]:
    """See :meth:`MiscQueries.q6`."""
    from bench.nexmark.reference import _with_ref

    return _with_ref(source, MiscQueries.q6)


def q13(source: Source) -> list[Row]:
    """See :meth:`MiscQueries.q13`."""
    from bench.nexmark.reference import _with_ref

    return _with_ref(source, MiscQueries.q13)


__all__ = ["MiscQueries", "q6", "q13"]
