"""Recording claims checked under a sanctioned code, off the hot path.

The national framework (医保发〔2024〕23号) treats billing under a suspended or terminated code
as a violation in itself, so the agency needs to see every such attempt. The check only appends
to a bounded in-memory buffer; a background task writes the buffer to PostgreSQL every
``interval_s``. If PostgreSQL is down the buffer waits; if it overflows the oldest records are
dropped and counted (reported by /v1/ops/status), never slowing or failing a check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.checks.lines import Line
from app.codes import practitioner_token
from app.db.tables import sanctioned_attempts

log = logging.getLogger("claimgate.attempts")


class AttemptRecorder:
    def __init__(
        self,
        engine: AsyncEngine,
        pii_secret: str,
        *,
        capacity: int = 100_000,
        interval_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.pii_secret = pii_secret
        self.interval_s = interval_s
        self._buf: deque[dict[str, Any]] = deque(maxlen=capacity)
        self.recorded = 0
        self.dropped = 0

    def note(self, line: Line, codes: tuple[str, ...], decision_id: str) -> None:
        """Called for an answer with sanction codes among its reasons (Verdict.sanctions)."""
        if len(self._buf) == self._buf.maxlen:
            self.dropped += 1
        self._buf.append(
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

    async def flush(self) -> int:
        if not self._buf:
            return 0
        rows, self._buf = list(self._buf), deque(maxlen=self._buf.maxlen)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sanctioned_attempts.insert(), rows)
        except BaseException:
            self._buf.extendleft(reversed(rows))  # keep them for the next round
            raise
        self.recorded += len(rows)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            try:
                await self.flush()
            except Exception as exc:  # PostgreSQL down: keep the buffer, try again
                log.warning("could not record sanctioned attempts (%s)", type(exc).__name__)
