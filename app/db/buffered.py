"""A bounded buffer of rows appended on a hot path and written to PostgreSQL off it.

The records a check leaves behind — sanctioned attempts (app.checks.attempts), the national
interface's findings (app.interfaces.national.findings), the decision log (app.decisions.log) —
must never slow or fail the check, and must never be lost silently. The check only appends to
a bounded in-memory buffer; a background task writes the buffer every ``interval_s``.

Every record noted leaves the buffer in exactly one of four ways, each counted (reported by
/v1/ops/status and /metrics):

- ``recorded``: committed;
- ``refused``: PostgreSQL refused that one row on its own (a data exception, SQLSTATE class 22,
  or an integrity violation, 23). A refused row is isolated by bisecting the batch it came in,
  so it never holds back the rows behind it; it is logged by SQLSTATE only, never its content;
- ``dropped``: pushed out of a full buffer while PostgreSQL could not take them, or still held
  when a shutdown's last flush ran out of time;
- still ``queued``.

Any other failure (PostgreSQL down, a timeout, a lock) keeps the rows, in order, for the next
round. A flush whose commit outcome is unknown (the connection dropped after the COMMIT was
sent) is retried: a record may then appear twice, never not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("claimgate.records")

Row = Any


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
    same rows would fail again, whatever the database's health. A COPY through asyncpg raises
    its own exceptions, and refuses a value it cannot encode before sending anything."""
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate
    elif isinstance(exc, DBAPIError) and not exc.connection_invalidated:
        state = _sqlstate(exc)
    else:
        # asyncpg could not encode a value (or the row could not be built): the row is wrong.
        return isinstance(exc, asyncpg.DataError | TypeError | ValueError | OverflowError)
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
        """Write one batch in one transaction (rows are dicts for ``table`` here; a subclass
        may keep other shapes and write them its own way, as the decision log does by COPY)."""
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
