"""How many statements one agency write sends to PostgreSQL (issue 14, target (b)).

A practitioner action or a violation at a 500-staff institution spends most of its time in
PostgreSQL round trips, not in the engine (docs/performance.md, "Fourth round: fewer round
trips per write"): each statement is a round trip, and on the writer thread each is also a
wait to take the interpreter back from the checks. So the count of statements is the latency
an agency officer notices, and the checks' p99 while the agency writes. These tests pin it, so
a change that adds a read to the write path is seen here instead of as a slower write weeks
later. The count is exact: one fewer is a reason to lower the pin, one more a reason to look
for the statement to merge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin import schemas as s
from app.admin.practitioners import practitioner_action
from app.admin.sanctions import record_violation
from app.admin.writes import Write, Writes
from app.db.engine import make_engine
from app.projection.ledger import WriteContext
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "test-secret"
INST = "H62010000032"  # 兰州: its rules read terminated doctors and violations
STAFF = [f"D62010000{n:04d}" for n in range(1, 13)]

# Statements sent by one write under an Idempotency-Key, BEGIN and COMMIT not counted (two more
# round trips each). Before issue 14's fourth round: 22 and 25. Both now send: the key's lock,
# then its lookup (in one statement the lookup would read before the lock is granted), the
# practitioner and institution, the event with its audit row, the practitioner's inputs, the
# changed outcomes, the projections read back, the key's answer. An action adds the changed
# projections with their outbox rows, and here staff_inputs (each practitioner's first
# suspension there makes the rules read them); a violation, the outcomes it answers with,
# before and after.
ACTION_STATEMENTS = 10
VIOLATION_STATEMENTS = 10


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split())[:160])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def _staff(h: Harness) -> None:
    await f.institution(h, INST, region="620100", name="兰州市某医院")
    await f.department(h, INST, "NK")
    for code in STAFF:
        await f.practitioner(h, code)
        await f.registration(h, code, INST, "NK")
        await f.agreement(h, code, INST)


def _action(n: int) -> s.PractitionerActionIn:
    return s.PractitionerActionIn.model_validate(
        {
            "action": "suspend",
            "institution_code": INST,
            "start": f"2026-03-{n + 2:02d}",
            "end": f"2026-03-{n + 3:02d}",
            "reason": "测试",
        }
    )


def _violation(n: int) -> s.ViolationIn:
    return s.ViolationIn.model_validate(
        {
            "practitioner_code": STAFF[n],
            "institution_code": INST,
            "department_code": "NK",
            "date": f"2026-04-{n + 2:02d}",
            "points": 1,
            "item": "测试",
            "exception_reason": "测试",
        }
    )


async def test_statements_of_a_practitioner_action_and_a_violation(
    h: Harness, servers: Servers
) -> None:
    await _staff(h)
    engine = make_engine(make_settings(servers))
    writes = Writes(engine)
    ctx = WriteContext(None, "req")
    try:
        sent: dict[str, list[str]] = {}
        answers: dict[str, tuple[int, dict[str, Any]]] = {}
        # The first writes prepare their statements; the pin is about the ones after.
        for n in range(4):
            with statements(engine) as sent["action"]:
                answers["action"] = await writes.run(
                    Write(ctx, "action", 201, f"a{n}", "fp"),
                    practitioner_action,
                    STAFF[n],
                    _action(n),
                    SECRET,
                )
            with statements(engine) as sent["violation"]:
                answers["violation"] = await writes.run(
                    Write(ctx, "violation", 201, f"v{n}", "fp"),
                    record_violation,
                    _violation(n),
                    SECRET,
                )
        # Each write did its work: the suspension recorded, the point counted in its period
        assert answers["action"][1]["action"] == "suspend"
        assert answers["violation"][1]["period"]["points"] == 1
        listing = "\n".join(sent["action"] + ["--"] + sent["violation"])
        assert len(sent["action"]) == ACTION_STATEMENTS, listing
        assert len(sent["violation"]) == VIOLATION_STATEMENTS, listing
        # A retry under the same key answers the first answer after the key's lock and lookup
        with statements(engine) as retried:
            again = await writes.run(
                Write(ctx, "violation", 201, "v3", "fp"), record_violation, _violation(3), SECRET
            )
        assert again == answers["violation"]
        assert len(retried) == 2, retried
    finally:
        await engine.dispose()
