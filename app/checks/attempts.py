"""Recording claims checked under a sanctioned code, off the hot path.

The national framework (医保发〔2024〕23号) treats billing under a suspended or terminated code
as a violation in itself, so the agency needs to see every such attempt. The check only appends
to a bounded in-memory buffer; a background task writes the buffer to PostgreSQL every
``interval_s`` (``CLAIMGATE_ATTEMPTS_FLUSH_INTERVAL_S``), never slowing or failing a check.
:class:`BufferedRecorder` is that buffer and writer for any table; the findings answered in the
national platform's shapes (app.interfaces.national.findings) are recorded the same way.

Every record noted leaves the buffer in exactly one of four ways, each counted (reported by
/v1/ops/status):

- ``recorded``: committed to ``sanctioned_attempts``;
- ``refused``: PostgreSQL refused that one row on its own (a data exception, SQLSTATE class 22,
  or an integrity violation, 23). A refused row is isolated by bisecting the batch it came in,
  so it never holds back the rows behind it; it is logged by SQLSTATE only, never its content;
- ``dropped``: pushed out of a full buffer (``CLAIMGATE_ATTEMPTS_BUFFER_SIZE``) while PostgreSQL
  could not take them, or still held when a shutdown's last flush ran out of time;
- still ``queued``.

Any other failure (PostgreSQL down, a timeout, a lock) keeps the rows, in order, for the next
round. What can still be lost, by design: the check answers before its record is written, so a
process that dies without shutting down (SIGKILL, out of memory, power) loses the records of its
last ``interval_s``, plus whatever it was holding while PostgreSQL was unreachable. A shutdown
(SIGTERM, Ctrl-C) flushes until the buffer is empty or ``CLAIMGATE_SHUTDOWN_TIMEOUT_S``
passes. Writing the record before answering would close that window, at the price of tying
every sanctioned answer to PostgreSQL, which checks must not need (they answer from Redis while
PostgreSQL is down). A flush whose commit outcome is unknown (the connection dropped after the
COMMIT was sent) is retried: a record may then appear twice, never not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.checks.lines import Line
from app.codes import practitioner_token
from app.db.tables import sanctioned_attempts

log = logging.getLogger("claimgate.attempts")

Row = dict[str, Any]


def _sqlstate(exc: BaseException) -> str | None:
    e: BaseException | None = exc
    for _ in range(4):
        if e is None:
            break
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str):
            return state
        e = getattr(e, "orig", None) or e.__cause__
    return None


def _refused(exc: Exception) -> bool:
    """The database refused the rows themselves (data exception or integrity violation): the
    same rows would fail again, whatever the database's health."""
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    state = _sqlstate(exc)
    return state is not None and state[:2] in ("22", "23")


class BufferedRecorder:
    """Rows appended to memory on the hot path (:meth:`_append`), written to ``table`` in
    batches by :meth:`run`, drained at shutdown by :meth:`drain`. ``label`` names the records in
    log lines, which never show their content."""

    table: Table
    label: str

    def __init__(
        self,
        engine: AsyncEngine,
        pii_secret: str,
        *,
        capacity: int = 100_000,
        interval_s: float = 0.2,
    ) -> None:
        self.engine = engine
        self.pii_secret = pii_secret  # for the practitioner tokens the rows keep
        self.interval_s = interval_s
        self.capacity = capacity
        self._buf: deque[Row] = deque(maxlen=capacity)
        self._lock = asyncio.Lock()
        self.recorded = 0
        self.dropped = 0
        self.refused = 0
        self.last_error: str | None = None
        # Wall-clock time of the last flush that left nothing it had taken unwritten.
        self.last_flush_at: float | None = None

    def _append(self, row: Row) -> None:
        if len(self._buf) == self.capacity:
            self.dropped += 1  # the append below pushes out the oldest
        self._buf.append(row)

    @property
    def queued(self) -> int:
        return len(self._buf)

    def status(self) -> dict[str, Any]:
        last = self.last_flush_at
        return {
            "queued": len(self._buf),
            "recorded": self.recorded,
            "dropped": self.dropped,
            "refused": self.refused,
            "flush_interval_s": self.interval_s,
            "last_flush_at": (
                None if last is None else datetime.fromtimestamp(last, UTC).isoformat()
            ),
            "last_flush_age_s": None if last is None else round(time.time() - last, 3),
            "last_error": self.last_error,
        }

    def _hold(self, rows: list[Row]) -> None:
        """Put rows that could not be written back at the head, oldest first, within capacity
        (the oldest go first if the rows noted meanwhile leave too little room)."""
        room = self.capacity - len(self._buf)
        if len(rows) > room:
            cut = len(rows) - max(room, 0)
            self.dropped += cut
            rows = rows[cut:]
        self._buf.extendleft(reversed(rows))

    async def _insert(self, rows: list[Row]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(self.table.insert(), rows)

    async def flush(self) -> int:
        """Write what the buffer holds; return how many rows were recorded. A failure that is
        not a refusal of particular rows keeps every unwritten row and is raised."""
        async with self._lock:
            rows = list(self._buf)
            self._buf.clear()
            written = 0
            chunks: deque[list[Row]] = deque([rows] if rows else [])
            while chunks:
                chunk = chunks.popleft()
                try:
                    await self._insert(chunk)
                except Exception as exc:
                    if not _refused(exc):
                        self._hold([r for c in (chunk, *chunks) for r in c])
                        raise
                    if len(chunk) > 1:  # find the row: halves, in order
                        mid = len(chunk) // 2
                        chunks.extendleft((chunk[mid:], chunk[:mid]))
                        continue
                    self.refused += 1
                    log.error(
                        "PostgreSQL refused a %s record (SQLSTATE %s); it is counted as "
                        "refused and the records behind it are written",
                        self.label,
                        _sqlstate(exc),
                    )
                except BaseException:
                    # Cancelled mid-insert: whether it committed is unknown; a duplicate record
                    # is better than a lost one.
                    self._hold([r for c in (chunk, *chunks) for r in c])
                    raise
                else:
                    written += len(chunk)
                    self.recorded += len(chunk)
            self.last_flush_at = time.time()
            self.last_error = None
            return written

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            try:
                await self.flush()
            except Exception as exc:  # PostgreSQL down: keep the buffer, try again
                self.last_error = type(exc).__name__
                log.warning("could not write %s records (%s)", self.label, type(exc).__name__)

    async def drain(self, timeout_s: float) -> None:
        """At shutdown: flush until the buffer is empty or ``timeout_s`` has passed (waiting
        first for a flush already under way). What is left is counted as dropped, and logged as
        a count."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while True:
                    try:
                        await self.flush()
                    except Exception as exc:
                        self.last_error = type(exc).__name__
                        await asyncio.sleep(min(0.1, self.interval_s))
                        continue
                    if not self._buf:
                        break
        if self._buf:
            lost = len(self._buf)
            self.dropped += lost
            self._buf.clear()
            log.error(
                "shutdown: %d %s records could not be written within %.1f s (last error %s) "
                "and are lost",
                lost,
                self.label,
                timeout_s,
                self.last_error,
            )


class AttemptRecorder(BufferedRecorder):
    table = sanctioned_attempts
    label = "sanctioned-attempt"

    def note(self, line: Line, codes: tuple[str, ...], decision_id: str) -> None:
        """Called for an answer with sanction codes among its reasons (Verdict.sanctions)."""
        self._append(
            {
                "at": datetime.now(UTC),
                "institution_code": line.institution,
                "department_code": line.department,
                "practitioner_token": practitioner_token(line.practitioner, self.pii_secret),
                "service_date": date.fromisoformat(line.day),
                "reasons": list(codes),
                "emergency": line.emergency,
                "decision_id": decision_id,
                "claim_id": line.claim_id,
            }
        )
