"""Reading the decision log: one decision by its id, or a page of them by claim id,
practitioner, institution and day (newest first, a cursor to the next page).

A practitioner is searched by the token its rows keep (:func:`app.codes.practitioner_token`):
the code as the caller sends it, or an ID number turned into its HMAC here; an answer shows the
practitioner's display code (an ID number masked) where the roster knows them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.codes import practitioner_token
from app.db.tables import decision_log as dl
from app.db.tables import practitioners
from app.errors import InvalidField, NotFound

_CURSOR = re.compile(r"([0-9T:.+\-]{19,40})~([0-9a-f]{32})").fullmatch


def _item(r: Any) -> dict[str, Any]:
    return {
        "decision_id": r.decision_id,
        "answered_at": r.answered_at.isoformat(),
        "key_id": r.key_id,
        "institution_code": r.institution_code,
        "department_code": r.department_code,
        "practitioner_code": r.display_code or r.practitioner_token,
        "service_date": r.service_date.isoformat(),
        "emergency": r.emergency,
        "decision": r.decision,
        "reasons": list(r.reasons),
        "data_version": {
            "institution": r.institution_version,
            "practitioner": r.practitioner_version,
        },
        "claim_id": r.claim_id,
        "source": r.source,
    }


def _select() -> Any:
    return select(dl, practitioners.c.display_code).outerjoin(
        practitioners, practitioners.c.token == dl.c.practitioner_token
    )


async def get_decision(conn: AsyncConnection, decision_id: str) -> dict[str, Any]:
    row = (await conn.execute(_select().where(dl.c.decision_id == decision_id))).first()
    if row is None:
        raise NotFound(
            "no decision is logged under this id (the log keeps "
            "CLAIMGATE_DECISION_LOG_RETENTION_DAYS days; a record is written within a second)",
            field="path.decision_id",
            code="DECISION_NOT_FOUND",
        )
    return _item(row)


async def list_decisions(
    conn: AsyncConnection,
    secret: str,
    *,
    claim_id: str | None,
    practitioner: str | None,
    institution: str | None,
    day: date | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A page of decisions, newest first; ``next_cursor`` continues it (None: the last page)."""
    if claim_id is None and practitioner is None and institution is None and day is None:
        raise InvalidField(
            "name at least one of claim_id, practitioner, institution, day",
            field="query",
            code="SEARCH_TOO_BROAD",
        )
    q = _select()
    if claim_id is not None:
        q = q.where(dl.c.claim_id == claim_id)
    if practitioner is not None:
        q = q.where(dl.c.practitioner_token == practitioner_token(practitioner, secret))
    if institution is not None:
        q = q.where(dl.c.institution_code == institution)
    if day is not None:
        q = q.where(dl.c.day == day)  # the partition of that day alone
    if cursor is not None:
        m = _CURSOR(cursor)
        try:
            at = datetime.fromisoformat(m.group(1)) if m else None
        except ValueError:
            at = None
        if m is None or at is None:
            raise InvalidField("not a cursor this search returned", field="query.cursor")
        q = q.where(
            or_(
                dl.c.answered_at < at,
                and_(dl.c.answered_at == at, dl.c.decision_id < m.group(2)),
            )
        )
    q = q.order_by(dl.c.answered_at.desc(), dl.c.decision_id.desc()).limit(limit + 1)
    rows = list(await conn.execute(q))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return {
        "items": [_item(r) for r in rows],
        "next_cursor": (
            None if last is None else f"{last.answered_at.isoformat()}~{last.decision_id}"
        ),
    }
