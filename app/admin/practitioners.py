"""Practitioners (医保医师 and the other 相关人员), their registrations (执业登记, 多点执业) and
service agreements (服务协议), actions an officer takes by hand, and how officers read them
back. A resident ID number is kept only as a keyed digest and a masked form."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin import schemas as s
from app.admin.lookups import require_department, require_institution, require_practitioner
from app.admin.responses import status_rows
from app.admin.unit_of_work import Audit, UnitOfWork
from app.cache.layout import view_key
from app.cache.shapes import ViewDoc
from app.db.tables import agreements, practitioners, registrations
from app.errors import InvalidField, NotFound
from app.policy import ManualAction, load_profiles
from app.policy.manual import banned_restore
from app.projection import ledger
from app.projection.recompute import site_of
from app.projection.store import read_docs


# -- writes -------------------------------------------------------------------------------------
async def put_practitioner(
    uow: UnitOfWork, code: str, body: s.PractitionerIn, secret: str
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
    await uow.conn.execute(
        stmt.on_conflict_do_update(index_elements=[practitioners.c.token], set_=values)
    )
    public = {k: v for k, v in values.items() if k != "id_digest"}
    await uow.record(
        "practitioner_upserted",
        public,
        practitioner=token,
        audit=Audit("practitioner.put", values["display_code"]),
    )
    return _practitioner_out(values)


async def practitioner_action(
    uow: UnitOfWork, code: str, body: s.PractitionerActionIn, secret: str
) -> dict[str, Any]:
    if body.institution_code is None:
        token = await uow.require_practitioner(code, secret, "path.code")
    else:
        token, _, _ = await uow.require_practitioner_at(
            code, secret, "path.code", body.institution_code, "body.institution_code"
        )
    if body.action == "restore":
        restore = ManualAction(token, body.institution_code, "restore", body.start, None, "")
        await refuse_banned_restore(uow.conn, token, restore, "body.start")
    payload = body.event_payload(institution=body.institution_code)
    event_id = await uow.record(
        "practitioner_action",
        payload,
        practitioner=token,
        institution=body.institution_code,
        occurred_on=body.start,
        audit=Audit(f"practitioner.{body.action}", codes.display_code(code)),
    )
    return {"event_id": event_id, "practitioner_code": codes.display_code(code), **payload}


async def refuse_banned_restore(
    conn: AsyncConnection, token: str, restore: ManualAction, field: str
) -> None:
    """舟山 §十四: a hand-made 注销 (5 years) or 解除 (1 year) is a ban; a restore that would reach
    it before the ban's end is refused here, before anything is written (the engine would
    ignore it anyway)."""
    inputs = await ledger.practitioners_inputs(conn, [token])
    evs = inputs.events[token]
    actions = [e for e in evs if isinstance(e, ManualAction)]
    sites = {s_ for e in evs if (s_ := site_of(e)) is not None}
    profiles = load_profiles()
    pids = {pid for code, pid in inputs.profiles.items() if code in sites}
    calendar = inputs.calendar
    for pid in sorted(pids):
        refused = banned_restore(profiles[pid], actions, restore, calendar)
        if refused is not None:
            rule, until = refused
            raise InvalidField(
                f"a restore on this day would lift a sanction that bars a new agreement until "
                f"{until.isoformat()} ({rule}); it cannot be lifted before then",
                field=field,
                code="RESTORE_BANNED",
            )


async def add_registration(uow: UnitOfWork, body: s.RegistrationIn, secret: str) -> dict[str, Any]:
    conn = uow.conn
    token = await require_practitioner(
        conn, body.practitioner_code, secret, "body.practitioner_code"
    )
    await require_institution(conn, body.institution_code, "body.institution_code")
    await require_department(
        conn, body.institution_code, body.department_code, "body.department_code"
    )
    values = body.model_dump(include={"institution_code", "department_code", "start", "end"})
    reg_id = await _add_dated(uow, registrations, "registration_added", token, values)
    return await get_registration(conn, reg_id)


async def end_registration(uow: UnitOfWork, reg_id: int, body: s.RegistrationEnd) -> dict[str, Any]:
    conn = uow.conn
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
    await uow.record(
        "registration_ended",
        {"id": reg_id, "end": s.iso(body.end)},
        practitioner=row.practitioner_token,
        institution=row.institution_code,
        department=row.department_code,
        occurred_on=body.end,
        audit=Audit("registration.end", str(reg_id)),
    )
    return await get_registration(conn, reg_id)


async def add_agreement(uow: UnitOfWork, body: s.AgreementIn, secret: str) -> dict[str, Any]:
    token = await require_practitioner(
        uow.conn, body.practitioner_code, secret, "body.practitioner_code"
    )
    await require_institution(uow.conn, body.institution_code, "body.institution_code")
    values = body.model_dump(include={"institution_code", "start", "end"})
    agr_id = await _add_dated(uow, agreements, "agreement_added", token, values)
    return await get_agreement(uow.conn, agr_id)


async def _add_dated(
    uow: UnitOfWork, table: Table, event: str, token: str, values: dict[str, Any]
) -> int:
    """Insert a registration or agreement row and record it."""
    new_id: int = (
        await uow.conn.execute(
            table.insert().values(practitioner_token=token, **values).returning(table.c.id)
        )
    ).scalar_one()
    change = {
        "id": new_id,
        **{k: s.iso(v) if isinstance(v, date) else v for k, v in values.items()},
    }
    await uow.record(
        event,
        change,
        practitioner=token,
        institution=values["institution_code"],
        department=values.get("department_code"),
        occurred_on=values["start"],
        audit=Audit(event.replace("_added", ".add"), str(new_id)),
    )
    return new_id


# -- reads --------------------------------------------------------------------------------------
def _practitioner_out(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": values["display_code"],
        "category": values["category"],
        "name": values["name"],
        "id_number": values["id_masked"],
    }


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
        entry = views.get(view_key(inst, token))
        if entry is not None:
            view: ViewDoc = entry.doc
            status.append(
                {
                    "institution_code": inst,
                    "version": entry.version,
                    "status": status_rows(view["s"]),
                    "warnings": status_rows(view["w"]),
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
