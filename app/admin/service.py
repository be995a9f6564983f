"""Admin writes and reads. Each write runs inside the caller's transaction: entity change,
ledger event, audit row; the caller then runs the collected recompute and commits once."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin import schemas as s
from app.admin.aliases import refuse_shadowed_departments
from app.admin.lookups import (
    audit,
    lock_institution,
    require_department,
    require_institution,
    require_practitioner,
)
from app.cache.layout import institution_key, view_key
from app.db.any_of import any_of
from app.db.tables import (
    agreements,
    calendar_overrides,
    departments,
    institutions,
    outcomes,
    practitioners,
    registrations,
)
from app.errors import InvalidField, NotFound
from app.policy import ManualAction, UnknownRegion, load_profiles, profile_for_region
from app.projection import ledger
from app.projection.ledger import WriteContext
from app.projection.recompute import Recompute
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
async def put_institution(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, code: str, body: s.InstitutionIn
) -> dict[str, Any]:
    try:
        profile = profile_for_region(body.region_code)
    except UnknownRegion as exc:
        raise unknown_region(exc, "body.region_code") from None
    values = {"name": body.name, "region_code": body.region_code, "profile_id": profile.id}
    stmt = insert(institutions).values(code=code, **values)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[institutions.c.code], set_=values)
    )
    await ledger.append(
        conn, ctx, "institution_upserted", {"code": code, **values}, institution=code
    )
    await audit(conn, ctx, "institution.put", code, values)
    rc.institutions.add(code)
    # Every practitioner there is re-judged: the profile may have changed with the region.
    rc.practitioners |= set(await _staff(conn, code))
    return {"code": code, **values}


async def put_department(
    conn: AsyncConnection,
    rc: Recompute,
    ctx: WriteContext,
    inst: str,
    dept: str,
    body: s.DepartmentIn,
) -> dict[str, Any]:
    await lock_institution(conn, inst)
    await refuse_shadowed_departments(conn, inst, {dept: "path.department_code"})
    stmt = insert(departments).values(institution_code=inst, code=dept, name=body.name)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[departments.c.institution_code, departments.c.code],
            set_={"name": body.name},
        )
    )
    await ledger.append(
        conn, ctx, "department_upserted", {"name": body.name}, institution=inst, department=dept
    )
    await audit(conn, ctx, "department.put", f"{inst}/{dept}", {"name": body.name})
    rc.institutions.add(inst)
    return {"institution_code": inst, "code": dept, "name": body.name}


async def put_practitioner(
    conn: AsyncConnection,
    rc: Recompute,
    ctx: WriteContext,
    code: str,
    body: s.PractitionerIn,
    secret: str,
) -> dict[str, Any]:
    token = codes.practitioner_token(code, secret)
    id_number = body.id_number or (code if codes.is_resident_id(code) else None)
    values: dict[str, Any] = {
        "display_code": codes.display_code(code),
        "category": body.category,
        "name": body.name,
        "id_digest": codes.pii_digest(secret, id_number) if id_number else None,
        "id_masked": codes.mask_resident_id(id_number) if id_number else None,
    }
    stmt = insert(practitioners).values(token=token, **values)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=[practitioners.c.token], set_=values)
    )
    public = {k: v for k, v in values.items() if k != "id_digest"}
    await ledger.append(conn, ctx, "practitioner_upserted", public, practitioner=token)
    await audit(conn, ctx, "practitioner.put", values["display_code"], public)
    rc.practitioners.add(token)
    return _practitioner_out(values)


def _practitioner_out(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": values["display_code"],
        "category": values["category"],
        "name": values["name"],
        "id_number": values["id_masked"],
    }


async def _add_dated(
    conn: AsyncConnection,
    rc: Recompute,
    ctx: WriteContext,
    *,
    table: Table,
    event: str,
    token: str,
    values: dict[str, Any],
) -> int:
    """Insert a registration or agreement row with its ledger event and audit row."""
    new_id: int = (
        await conn.execute(
            table.insert().values(practitioner_token=token, **values).returning(table.c.id)
        )
    ).scalar_one()
    change = {
        "id": new_id,
        **{k: s.iso(v) if isinstance(v, date) else v for k, v in values.items()},
    }
    await ledger.append(
        conn,
        ctx,
        event,
        change,
        practitioner=token,
        institution=values["institution_code"],
        department=values.get("department_code"),
        occurred_on=values["start"],
    )
    await audit(conn, ctx, event.replace("_added", ".add"), str(new_id), change)
    rc.practitioners.add(token)
    rc.institutions.add(values["institution_code"])
    return new_id


async def add_registration(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, body: s.RegistrationIn, secret: str
) -> dict[str, Any]:
    token = await require_practitioner(
        conn, body.practitioner_code, secret, "body.practitioner_code"
    )
    await require_institution(conn, body.institution_code, "body.institution_code")
    await require_department(
        conn, body.institution_code, body.department_code, "body.department_code"
    )
    values = body.model_dump(include={"institution_code", "department_code", "start", "end"})
    reg_id = await _add_dated(
        conn, rc, ctx, table=registrations, event="registration_added", token=token, values=values
    )
    return await get_registration(conn, reg_id)


async def end_registration(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, reg_id: int, body: s.RegistrationEnd
) -> dict[str, Any]:
    row = (
        await conn.execute(
            select(registrations).where(registrations.c.id == reg_id).with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            "no registration has this id",
            field="path.registration_id",
            code="REGISTRATION_NOT_FOUND",
        )
    if body.end <= row.start:
        raise InvalidField("end must be after the registration's start", field="body.end")
    if row.end is not None and row.end <= body.end:
        raise InvalidField(
            f"the registration already ended on {row.end}; an unbinding can only bring the end forward",
            field="body.end",
        )
    await conn.execute(
        update(registrations).where(registrations.c.id == reg_id).values(end=body.end)
    )
    change = {"id": reg_id, "end": s.iso(body.end)}
    await ledger.append(
        conn,
        ctx,
        "registration_ended",
        change,
        practitioner=row.practitioner_token,
        institution=row.institution_code,
        department=row.department_code,
        occurred_on=body.end,
    )
    await audit(conn, ctx, "registration.end", str(reg_id), change)
    rc.practitioners.add(row.practitioner_token)
    rc.institutions.add(row.institution_code)
    return await get_registration(conn, reg_id)


async def add_agreement(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, body: s.AgreementIn, secret: str
) -> dict[str, Any]:
    token = await require_practitioner(
        conn, body.practitioner_code, secret, "body.practitioner_code"
    )
    await require_institution(conn, body.institution_code, "body.institution_code")
    values = body.model_dump(include={"institution_code", "start", "end"})
    agr_id = await _add_dated(
        conn, rc, ctx, table=agreements, event="agreement_added", token=token, values=values
    )
    return await get_agreement(conn, agr_id)


async def practitioner_action(
    conn: AsyncConnection,
    rc: Recompute,
    ctx: WriteContext,
    code: str,
    body: s.PractitionerActionIn,
    secret: str,
) -> dict[str, Any]:
    token = await require_practitioner(conn, code, secret, "path.code")
    if body.institution_code is not None:
        await require_institution(conn, body.institution_code, "body.institution_code")
    if body.action == "restore":
        from app.admin.sanctions import refuse_banned_restore

        restore = ManualAction(token, body.institution_code, "restore", body.start, None, "")
        await refuse_banned_restore(conn, token, restore, "body.start")
    payload = {
        "action": body.action,
        "institution": body.institution_code,
        "start": s.iso(body.start),
        "end": s.iso(body.end),
        "reason": body.reason,
    }
    event_id = await ledger.append(
        conn,
        ctx,
        "practitioner_action",
        payload,
        practitioner=token,
        institution=body.institution_code,
        occurred_on=body.start,
    )
    await audit(conn, ctx, f"practitioner.{body.action}", codes.display_code(code), payload)
    rc.practitioners.add(token)
    return {"event_id": event_id, "practitioner_code": codes.display_code(code), **payload}


async def institution_action(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, code: str, body: s.InstitutionActionIn
) -> dict[str, Any]:
    await require_institution(conn, code, "path.code")
    payload = {
        "action": body.action,
        "start": s.iso(body.start),
        "end": s.iso(body.end),
        "reason": body.reason,
    }
    event_id = await ledger.append(
        conn, ctx, "institution_action", payload, institution=code, occurred_on=body.start
    )
    await audit(conn, ctx, f"institution.{body.action}", code, payload)
    rc.institutions.add(code)
    return {"event_id": event_id, "institution_code": code, **payload}


async def department_action(
    conn: AsyncConnection,
    rc: Recompute,
    ctx: WriteContext,
    inst: str,
    dept: str,
    body: s.DepartmentActionIn,
) -> dict[str, Any]:
    await require_institution(conn, inst, "path.code")
    await require_department(conn, inst, dept, "path.department_code")
    payload = {
        "department": dept,
        "action": body.action,
        "start": s.iso(body.start),
        "end": s.iso(body.end),
        "reason": body.reason,
    }
    event_id = await ledger.append(
        conn,
        ctx,
        "department_action",
        payload,
        institution=inst,
        department=dept,
        occurred_on=body.start,
    )
    await audit(conn, ctx, f"department.{body.action}", f"{inst}/{dept}", payload)
    rc.institutions.add(inst)
    return {"event_id": event_id, "institution_code": inst, **payload}


async def put_calendar_day(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, day: date, body: s.CalendarDayIn
) -> dict[str, Any]:
    stmt = insert(calendar_overrides).values(day=day, working=body.working, note=body.note)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[calendar_overrides.c.day],
            set_={"working": body.working, "note": body.note},
        )
    )
    await audit(conn, ctx, "calendar.put", day.isoformat(), body.model_dump(mode="json"))
    # Only profiles that count working days (a notice period, an unbinding deadline) can move.
    counting = [
        p.id for p in load_profiles().values() if p.notice is not None or p.unbinding is not None
    ]
    insts = [
        c
        for (c,) in await conn.execute(
            select(institutions.c.code).where(any_of(institutions.c.profile_id, counting))
        )
    ]
    staff = await conn.execute(
        select(registrations.c.practitioner_token)
        .where(any_of(registrations.c.institution_code, insts))
        .distinct()
    )
    rc.practitioners |= {t for (t,) in staff}
    rc.institutions |= set(insts)
    return {
        "day": day.isoformat(),
        "working": body.working,
        "note": body.note,
        "rejudged_institutions": len(insts),
    }


# -- reads --------------------------------------------------------------------------------------
async def _staff(conn: AsyncConnection, inst: str) -> list[str]:
    rows = await conn.execute(
        select(registrations.c.practitioner_token)
        .where(registrations.c.institution_code == inst)
        .distinct()
    )
    return [r[0] for r in rows]


def _intervals(rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [
        {
            "from": r[0],
            "to": r[1],
            "status": r[2],
            "rule": r[3],
            "message": r[4],
            "emergency_exempt": bool(r[5]),
        }
        for r in rows
    ]


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
    docs = await read_docs(conn, [institution_key(code)])
    version, doc = docs.get(institution_key(code), (None, None))
    notices = (
        await conn.execute(select(outcomes.c.doc).where(outcomes.c.subject == f"i:{code}"))
    ).scalar_one_or_none()
    return {
        "code": code,
        "name": row.name,
        "region_code": row.region_code,
        "profile": row.profile_id,
        "version": version,
        "status": _intervals(doc["s"]) if doc else [],
        "departments": [
            {"code": d, "name": v["n"], "status": _intervals(v["s"])}
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


async def get_practitioner(conn: AsyncConnection, code: str, secret: str) -> dict[str, Any]:
    token = await require_practitioner(conn, code, secret, "path.code")
    row = (await conn.execute(select(practitioners).where(practitioners.c.token == token))).one()
    regs = await conn.execute(
        select(registrations)
        .where(registrations.c.practitioner_token == token)
        .order_by(registrations.c.id)
    )
    agrs = await conn.execute(
        select(agreements).where(agreements.c.practitioner_token == token).order_by(agreements.c.id)
    )
    reg_list = [_dated_out(r._mapping, row.display_code) for r in regs]
    agr_list = [_dated_out(a._mapping, row.display_code) for a in agrs]
    sites = sorted(
        {r["institution_code"] for r in reg_list} | {a["institution_code"] for a in agr_list}
    )
    views = await read_docs(conn, [view_key(i, token) for i in sites])
    status = []
    for inst in sites:
        v = views.get(view_key(inst, token))
        if v is not None:
            status.append(
                {
                    "institution_code": inst,
                    "version": v[0],
                    "status": _intervals(v[1]["s"]),
                    "warnings": _intervals(v[1]["w"]),
                }
            )
    return {
        **_practitioner_out({**row._mapping}),
        "registrations": reg_list,
        "agreements": agr_list,
        "status_by_institution": status,
    }


def _dated_out(m: Any, display: str) -> dict[str, Any]:
    """A registration or agreement row as the API shows it."""
    out = {
        "id": m["id"],
        "practitioner_code": display,
        "institution_code": m["institution_code"],
    }
    if "department_code" in m:
        out["department_code"] = m["department_code"]
    out["start"] = s.iso(m["start"])
    out["end"] = s.iso(m["end"])
    return out


async def _get_dated(conn: AsyncConnection, table: Table, row_id: int, what: str) -> dict[str, Any]:
    row = (
        await conn.execute(
            select(table, practitioners.c.display_code)
            .join(practitioners, practitioners.c.token == table.c.practitioner_token)
            .where(table.c.id == row_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            f"no {what} has this id", field=f"path.{what}_id", code=f"{what.upper()}_NOT_FOUND"
        )
    return _dated_out(row._mapping, row.display_code)


async def get_registration(conn: AsyncConnection, reg_id: int) -> dict[str, Any]:
    return await _get_dated(conn, registrations, reg_id, "registration")


async def get_agreement(conn: AsyncConnection, agr_id: int) -> dict[str, Any]:
    return await _get_dated(conn, agreements, agr_id, "agreement")
