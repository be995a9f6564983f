"""The roster as it stands on a day: one line per registration in force, with the
practitioner's status at that institution (from the view document checks read) and the points of
the scoring period holding the day (from the engine's stored outcome). What the list endpoint
pages through and the 附件1 export writes out.

Filters run in PostgreSQL (JSONB over the same documents), so a page is always full and paging
is by the registration's id (keyset: the cursor is the last id seen).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import TextClause, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import (
    departments,
    institutions,
    outcomes,
    practitioners,
    projections,
    registrations,
)

StatusFilter = Literal[
    "active", "suspended", "terminated", "code_locked", "code_cancelled", "warning"
]
# 附件1 服务状态: 0 有效、1 暂停、2 解除
SERVICE_STATE = {"suspended": 1, "code_locked": 1, "terminated": 2, "code_cancelled": 2}
CATEGORY_NUMBER = {"doctor": 1, "pharmacist": 2, "nurse": 3, "technician": 4, "carer": 4}


@dataclass(frozen=True, slots=True)
class Filters:
    on: dt.date
    institution: str | None = None
    region: str | None = None  # a region code; a city code (…00) covers its counties
    status: StatusFilter | None = None
    has_points: bool | None = None
    sanctioned: bool | None = None  # a blocking status on ``on``


_VIEW_KEY = func.concat(
    "cg:{", registrations.c.institution_code, "}:p:", registrations.c.practitioner_token
)
_SUBJECT = func.concat("p:", registrations.c.practitioner_token, ":", institutions.c.profile_id)
_DURING = "iv->>0 <= :on AND (iv->1 = 'null'::jsonb OR iv->>1 > :on)"


def _exists(sql: str, negate: bool = False) -> TextClause:
    return text(("NOT " if negate else "") + f"EXISTS ({sql})")


def _covering(status: str | None, negate: bool = False) -> TextClause:
    """A blocking interval (of ``status``, if given) covers the day, in the view's ``s`` rows."""
    cond = _DURING + ("" if status is None else " AND iv->>2 = :status")
    sql = f"SELECT 1 FROM jsonb_array_elements(projections.doc->'s') iv WHERE {cond}"
    return _exists(sql, negate)


_WARNED = _exists(f"SELECT 1 FROM jsonb_array_elements(projections.doc->'w') iv WHERE {_DURING}")


def _points(negate: bool) -> TextClause:
    return _exists(
        "SELECT 1 FROM jsonb_array_elements(outcomes.doc->'periods') pp "
        "WHERE pp->>'start' <= :on AND pp->>'end' > :on AND (pp->>'points')::int > 0",
        negate,
    )


def query(f: Filters, after: int = 0, limit: int | None = None) -> Any:
    q = (
        select(
            registrations.c.id,
            registrations.c.practitioner_token,
            registrations.c.institution_code,
            institutions.c.name.label("institution_name"),
            registrations.c.department_code,
            departments.c.name.label("department_name"),
            registrations.c.start,
            registrations.c.end,
            practitioners.c.display_code,
            practitioners.c.name,
            practitioners.c.category,
            practitioners.c.id_masked,
            practitioners.c.attributes,
            projections.c.doc.label("view"),
            outcomes.c.doc.label("outcome"),
        )
        .join(institutions, institutions.c.code == registrations.c.institution_code)
        .join(
            departments,
            and_(
                departments.c.institution_code == registrations.c.institution_code,
                departments.c.code == registrations.c.department_code,
            ),
        )
        .join(practitioners, practitioners.c.token == registrations.c.practitioner_token)
        .outerjoin(projections, projections.c.key == _VIEW_KEY)
        .outerjoin(outcomes, outcomes.c.subject == _SUBJECT)
        .where(
            registrations.c.id > after,
            registrations.c.start <= f.on,
            or_(registrations.c.end.is_(None), registrations.c.end > f.on),
        )
        .order_by(registrations.c.id)
    )
    if f.institution is not None:
        q = q.where(registrations.c.institution_code == f.institution)
    if f.region is not None:
        city = f.region.endswith("00") and not f.region.endswith("0000")
        q = q.where(
            institutions.c.region_code.like(f.region[:4] + "%")
            if city
            else institutions.c.region_code == f.region
        )
    if f.status == "active":
        q = q.where(_covering(None, negate=True))
    elif f.status == "warning":
        q = q.where(_WARNED)
    elif f.status is not None:
        q = q.where(_covering(f.status))
    if f.sanctioned is not None:
        q = q.where(_covering(None, negate=not f.sanctioned))
    if f.has_points is not None:
        q = q.where(_points(negate=not f.has_points))
    if limit is not None:
        q = q.limit(limit)
    return q.params(on=f.on.isoformat(), status=f.status or "")


def status_on(view: dict[str, Any] | None, on: dt.date) -> str:
    """The blocking status covering ``on`` at this institution, else "active"."""
    day = on.isoformat()
    for row in (view or {}).get("s", []):
        if row[0] <= day and (row[1] is None or day < row[1]):
            return str(row[2])
    return "active"


def points_on(outcome: dict[str, Any] | None, on: dt.date) -> int:
    day = on.isoformat()
    for p in (outcome or {}).get("periods", []):
        if p["start"] <= day < p["end"]:
            return int(p["points"])
    return 0


async def lines(
    conn: AsyncConnection, f: Filters, after: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    out = []
    for r in await conn.execute(query(f, after, limit)):
        out.append(
            {
                "registration_id": r.id,
                "token": r.practitioner_token,  # internal: never in an answer
                "institution_code": r.institution_code,
                "institution_name": r.institution_name,
                "department_code": r.department_code,
                "department_name": r.department_name,
                "practitioner_code": r.display_code,
                "name": r.name,
                "category": r.category,
                "id_number": r.id_masked,
                "attributes": dict(r.attributes or {}),
                "status": status_on(r.view, f.on),
                "points": points_on(r.outcome, f.on),
                "registered_from": r.start.isoformat(),
                "registered_until": r.end.isoformat() if r.end else None,
            }
        )
    return out
