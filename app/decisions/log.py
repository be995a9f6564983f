"""The decision log's writer: every answered line, buffered on the hot path, COPYed in batches.

The check use case hands over each request's lines once (:meth:`DecisionLog.answered`, the
:class:`~app.checks.usecase.DecisionSink`): one ``deque.extend`` of tuples that point at what
the answer was built from — no dict, no token, no serialisation on the hot path. The flush turns
them into rows (the practitioner's token, the data versions read from the verdict's JSON, once
per distinct verdict) and writes them with one ``COPY`` per batch into ``decision_log``, which
routes each row to its day's partition (app.decisions.partitions).

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
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from app.checks.lines import Line
from app.checks.verdicts import Verdict
from app.codes import practitioner_token
from app.db.buffered import BufferedRecorder
from app.db.tables import decision_log
from app.decisions.partitions import maintain

log = logging.getLogger("claimgate.decisions")

COLUMNS = (
    "day",
    "decision_id",
    "answered_at",
    "key_id",
    "institution_code",
    "department_code",
    "practitioner_token",
    "service_date",
    "emergency",
    "decision",
    "reasons",
    "institution_version",
    "practitioner_version",
    "claim_id",
    "source",
)
MAINTENANCE_INTERVAL_S = 3600.0
_SHANGHAI = timedelta(hours=8)
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
        self._versions: dict[bytes, tuple[int | None, int | None]] = {}
        self._times: dict[str, tuple[datetime, date]] = {}
        # Per line, what repeats across lines is looked up, not worked out again: the token of
        # a practitioner (a pattern match, and an HMAC for an ID number), a service date.
        self._tokens: dict[str, str] = {}
        self._days: dict[str, date] = {}

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

    def _row(self, entry: tuple[Any, ...]) -> tuple[Any, ...]:
        key_id, ln, v, did, source, checked_at = entry
        versions = self._versions.get(v.core)
        if versions is None:
            dv = orjson.loads(b"{" + v.core + b"}")["data_version"]
            versions = (dv["institution"], dv["practitioner"])
            if len(self._versions) >= 65_536:
                self._versions.clear()
            self._versions[v.core] = versions
        at = self._times.get(checked_at)
        if at is None:
            t = datetime.fromisoformat(checked_at)
            at = (t, (t + _SHANGHAI).date())
            if len(self._times) >= 4096:
                self._times.clear()
            self._times[checked_at] = at
        return (
            at[1],
            did.decode(),
            at[0],
            key_id,
            ln.institution,
            ln.department,
            self._token(ln.practitioner),
            self._day(ln.day),
            ln.emergency,
            "allow" if v.allowed else "deny",
            list(v.codes),
            versions[0],
            versions[1],
            ln.claim_id,
            source,
        )

    def _token(self, code: str) -> str:
        token = self._tokens.get(code)
        if token is None:
            if len(self._tokens) >= 65_536:
                self._tokens.clear()
            token = self._tokens[code] = practitioner_token(code, self.pii_secret)
        return token

    def _day(self, text: str) -> date:
        day = self._days.get(text)
        if day is None:
            if len(self._days) >= 4096:
                self._days.clear()
            day = self._days[text] = date.fromisoformat(text)
        return day

    async def _insert(self, rows: list[Any]) -> None:
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            async with driver.transaction():
                # A slice of rows built, then COPYed, at a time: a flush is thousands of rows at
                # full load, and building them in one go held every check for tens of ms (the
                # checks' p99 doubled, docs/performance.md); each COPY's round trip gives the
                # checks' loop its turn. Plain lists, not an async generator: asyncpg encodes a
                # list without a coroutine step per row.
                for i in range(0, len(rows), _ROWS_PER_TURN):
                    records = [self._row(r) for r in rows[i : i + _ROWS_PER_TURN]]
                    await driver.copy_records_to_table(
                        "decision_log", records=records, columns=COLUMNS
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
