"""Recording claims checked under a sanctioned code, off the hot path.

The national framework (医保发〔2024〕23号) treats billing under a suspended or terminated code
as a violation in itself, so the agency needs to see every such attempt. The check only appends
to a bounded in-memory buffer; a background task writes the buffer to PostgreSQL every
``interval_s`` (``CLAIMGATE_ATTEMPTS_FLUSH_INTERVAL_S``), never slowing or failing a check:
:class:`~app.db.buffered.BufferedRecorder`, shared with the national interface's findings and
the decision log, where the four ways a record leaves the buffer (recorded, refused, dropped,
still queued) are described.

What can still be lost, by design: the check answers before its record is written, so a
process that dies without shutting down (SIGKILL, out of memory, power) loses the records of its
last ``interval_s``, plus whatever it was holding while PostgreSQL was unreachable. A shutdown
(SIGTERM, Ctrl-C) flushes until the buffer is empty or ``CLAIMGATE_SHUTDOWN_TIMEOUT_S``
passes. Writing the record before answering would close that window, at the price of tying
every sanctioned answer to PostgreSQL, which checks must not need (they answer from Redis while
PostgreSQL is down). A flush whose commit outcome is unknown (the connection dropped after the
COMMIT was sent) is retried: a record may then appear twice, never not at all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.checks.lines import Line
from app.codes import practitioner_token
from app.db.buffered import BufferedRecorder
from app.db.tables import sanctioned_attempts


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
