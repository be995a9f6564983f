"""Institutions (定点医药机构) and their departments (科室): their rows, their status actions, and
how officers read them back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.admin import schemas as s
from app.admin.aliases import refuse_shadowed_departments
from app.admin.lookups import lock_institution, require_department, require_institution
from app.admin.responses import status_rows
from app.admin.unit_of_work import Audit, UnitOfWork
from app.cache.layout import institution_key
from app.cache.shapes import InstitutionDoc
from app.db.tables import departments, institutions, outcomes, registrations
from app.errors import InvalidField, NotFound
from app.policy import UnknownRegion, profile_for_region
from app.projection.store import read_docs


def unknown_region(exc: UnknownRegion, field: str) -> InvalidField:
    """The refusal of a region no profile covers, naming the field, not the code sent."""
    return InvalidField(
        "no policy profile covers this region (a 6-digit administrative division code; a "
        "profile matches it exactly or by its city code, the first four digits + '00'); "
        f"covered regions: {', '.join(exc.covered) or 'none'}",
        field=field,
        code="UNKNOWN_REGION",
    )


# -- writes -------------------------------------------------------------------------------------
async def put_institution(uow: UnitOfWork, code: str, body: s.InstitutionIn) -> dict[str, Any]:
    try:
        profile = profile_for_region(body.region_code)
    except UnknownRegion as exc:
        raise unknown_region(exc, "body.region_code") from None
    values = {"name": body.name, "region_code": body.region_code, "profile_id": profile.id}
    stmt = insert(institutions).values(code=code, **values)
    await uow.conn.execute(
        stmt.on_conflict_do_update(index_elements=[institutions.c.code], set_=values)
    )
    await uow.record(
        "institution_upserted",
        {"code": code, **values},
        institution=code,
        audit=Audit("institution.put", code, values),
        # Every practitioner there is re-judged: the profile may have changed with the region.
        also_practitioners=await _staff(uow.conn, code),
    )
    return {"code": code, **values}


async def put_department(
    uow: UnitOfWork, inst: str, dept: str, body: s.DepartmentIn
) -> dict[str, Any]:
    conn = uow.conn
    await lock_institution(conn, inst)
    await refuse_shadowed_departments(conn, inst, {dept: "path.department_code"})
    stmt = insert(departments).values(institution_code=inst, code=dept, name=body.name)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[departments.c.institution_code, departments.c.code],
            set_={"name": body.name},
        )
    )
    await uow.record(
        "department_upserted",
        {"name": body.name},
        institution=inst,
        department=dept,
        audit=Audit("department.put", f"{inst}/{dept}"),
    )
    return {"institution_code": inst, "code": dept, "name": body.name}


async def institution_action(
    uow: UnitOfWork, code: str, body: s.InstitutionActionIn
) -> dict[str, Any]:
    await require_institution(uow.conn, code, "path.code")
    payload = body.event_payload()
    event_id = await uow.record(
        "institution_action",
        payload,
        institution=code,
        occurred_on=body.start,
        audit=Audit(f"institution.{body.action}", code),
    )
    return {"event_id": event_id, "institution_code": code, **payload}


async def department_action(
    uow: UnitOfWork, inst: str, dept: str, body: s.DepartmentActionIn
) -> dict[str, Any]:
    await require_institution(uow.conn, inst, "path.code")
    await require_department(uow.conn, inst, dept, "path.department_code")
    payload = body.event_payload(department=dept)
    event_id = await uow.record(
        "department_action",
        payload,
        institution=inst,
        department=dept,
        occurred_on=body.start,
        audit=Audit(f"department.{body.action}", f"{inst}/{dept}"),
    )
    return {"event_id": event_id, "institution_code": inst, **payload}


async def _staff(conn: AsyncConnection, inst: str) -> list[str]:
    rows = await conn.execute(
        select(registrations.c.practitioner_token)
        .where(registrations.c.institution_code == inst)
        .distinct()
    )
    return [r[0] for r in rows]


# -- reads --------------------------------------------------------------------------------------
async def get_institution(conn: AsyncConnection, code: str) -> dict[str, Any]:
    row = (
        await conn.execute(select(institutions).where(institutions.c.code == code))
    ).one_or_none()
    if row is None:
        raise NotFound(
            "no institution is registered under this code",
            field="path.code",
            code="INSTITUTION_NOT_FOUND",
        )
    entry = (await read_docs(conn, [institution_key(code)])).get(institution_key(code))
    doc: InstitutionDoc | None = entry.doc if entry else None
    notices = (
        await conn.execute(select(outcomes.c.doc).where(outcomes.c.subject == f"i:{code}"))
    ).scalar_one_or_none()
    return {
        "code": code,
        "name": row.name,
        "region_code": row.region_code,
        "profile": row.profile_id,
        "version": entry.version if entry else None,
        "status": status_rows(doc["s"]) if doc else [],
        "departments": [
            {"code": d, "name": v["n"], "status": status_rows(v["s"])}
            for d, v in (doc["d"].items() if doc else [])
        ],
        "notices": (notices or {}).get("notices", []),
    }


async def get_department(conn: AsyncConnection, inst: str, dept: str) -> dict[str, Any]:
    await require_department(conn, inst, dept, "path.department_code")
    info = await get_institution(conn, inst)
    for d in info["departments"]:
        if d["code"] == dept:
            return {"institution_code": inst, **d}
    # Written but not yet projected cannot happen inside one transaction; keep a safe answer.
    return {"institution_code": inst, "code": dept, "status": []}
