"""The decision log's writer: every answered line, buffered on the hot path, COPYed in batches.

The check use case hands over each request's lines once (:meth:`DecisionLog.answered`, the
:class:`~app.checks.usecase.DecisionSink`): one ``deque.extend`` of tuples that point at what
the answer was built from — no dict, no token, no serialisation on the hot path. The flush
encodes them as PostgreSQL's binary ``COPY`` rows, what repeats (a request's stamp, a verdict, a
practitioner's token, a code, a date) encoded once (app.decisions.rows), and writes them with one
``COPY`` per slice into ``decision_log``, which routes each row to its day's partition
(app.decisions.partitions).

Losing a record is never silent: the buffer is bounded (``CLAIMGATE_DECISION_LOG_BUFFER_SIZE``)
and its overflow counted as ``dropped`` (``claimgate_records_total{recorder="decisions"}``,
alerted on); a row PostgreSQL refuses is isolated and counted; a shutdown drains it within
``CLAIMGATE_SHUTDOWN_TIMEOUT_S`` (app.db.buffered).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.checks.lines import Line
from app.checks.verdicts import Verdict
from app.db.buffered import BufferedRecorder
from app.db.tables import decision_log
from app.decisions.partitions import maintain
from app.decisions.rows import COLUMNS, RowEncoder

log = logging.getLogger("claimgate.decisions")

MAINTENANCE_INTERVAL_S = 3600.0
_ROWS_PER_TURN = 512


class DecisionLog(BufferedRecorder):
    table = decision_log
    label = "decision-log"

    def __init__(
        self,
        engine: AsyncEngine,
        pii_secret: str,
        *,
        capacity: int = 500_000,
        interval_s: float = 0.5,
        retention_days: int = 400,
    ) -> None:
        super().__init__(engine, pii_secret, capacity=capacity, interval_s=interval_s)
        self.retention_days = retention_days
        # What repeats across rows (a request's stamp, a verdict, a practitioner's token, a
        # code, a date) is encoded once (app.decisions.rows).
        self._encoder = RowEncoder(pii_secret)

    def answered(
        self,
        key_id: int,
        lines: Sequence[Line],
        verdicts: Sequence[Verdict],
        decision_ids: Sequence[bytes],
        source: str,
        checked_at: str,
    ) -> None:
        buf = self._buf
        over = len(buf) + len(lines) - self.capacity
        if over > 0:
            self.dropped += over  # the extend below pushes out the oldest
        buf.extend(
            zip(
                itertools.repeat(key_id),
                lines,
                verdicts,
                decision_ids,
                itertools.repeat(source),
                itertools.repeat(checked_at),
            )
        )

    def answered_one(
        self,
        key_id: int,
        line: Line,
        verdict: Verdict,
        decision_id: bytes,
        source: str,
        checked_at: str,
    ) -> None:
        if len(self._buf) == self.capacity:
            self.dropped += 1  # the append below pushes out the oldest
        self._buf.append((key_id, line, verdict, decision_id, source, checked_at))

    async def _insert(self, rows: list[Any]) -> None:
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            async with driver.transaction():
                # A slice of rows encoded, then COPYed, at a time: a flush is thousands of rows
                # at full load, and building them in one go held every check for tens of ms
                # (the checks' p99 doubled, docs/performance.md); each COPY's round trip gives
                # the checks' loop its turn.
                encode = self._encoder.encode
                for i in range(0, len(rows), _ROWS_PER_TURN):
                    await driver.copy_to_table(
                        "decision_log",
                        # a memoryview: asyncpg takes bytes for a file's path
                        source=memoryview(encode(rows[i : i + _ROWS_PER_TURN])),
                        columns=COLUMNS,
                        format="binary",
                    )

    async def maintain_partitions(self, stop: asyncio.Event) -> None:
        """Partitions ahead and retention, now and every hour (app.decisions.partitions)."""
        while not stop.is_set():
            try:
                await maintain(self.engine, self.retention_days)
            except Exception as exc:  # PostgreSQL away: the days ahead leave time to retry
                log.warning("decision log partition maintenance failed (%s)", type(exc).__name__)
                wait = 60.0
            else:
                wait = MAINTENANCE_INTERVAL_S
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
