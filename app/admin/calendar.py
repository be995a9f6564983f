"""The working-day calendar's overrides (a holiday, a 调休 make-up day, a year the package does
not know yet), and everyone they re-judge."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.admin import schemas as s
from app.admin.unit_of_work import Audit, UnitOfWork
from app.db.any_of import any_of
from app.db.tables import calendar_overrides, institutions, registrations
from app.policy import load_profiles


async def put_calendar_day(uow: UnitOfWork, day: date, body: s.CalendarDayIn) -> dict[str, Any]:
    conn = uow.conn
    stmt = insert(calendar_overrides).values(day=day, working=body.working, note=body.note)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[calendar_overrides.c.day],
            set_={"working": body.working, "note": body.note},
        )
    )
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
    await uow.record_unledgered(
        audit=Audit("calendar.put", day.isoformat(), body.model_dump(mode="json")),
        practitioners=[t for (t,) in staff],
        institutions=insts,
    )
    return {
        "day": day.isoformat(),
        "working": body.working,
        "note": body.note,
        "rejudged_institutions": len(insts),
    }
