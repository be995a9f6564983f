"""The append-only records of every write — ledger events and audit rows — and the engine's
inputs read back: a subject's events as the engine's records, and the working-day calendar's
overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.any_of import any_of
from app.db.tables import agreements, audit_log, calendar_overrides, events, registrations
from app.policy import (
    Agreement,
    Appeal,
    Bonus,
    CarriedOver,
    DepartmentAction,
    Event,
    Exam,
    InstitutionAction,
    ManualAction,
    Registration,
    Violation,
    WorkingCalendar,
)

PRACTITIONER_KINDS = (
    "practitioner_action",
    "violation",
    "appeal",
    "exam",
    "bonus",
    "carried_over",
)
INSTITUTION_KINDS = ("institution_action", "department_action")


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Who wrote, for the ledger and the audit log."""

    api_key_id: int | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One event to append: its kind and payload, and the subjects it is about (the columns
    the engine's reads select on)."""

    kind: str
    payload: dict[str, Any]
    practitioner: str | None = None  # token
    institution: str | None = None
    department: str | None = None
    occurred_on: date | None = None

    def row(self, ctx: WriteContext) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "payload": self.payload,
            "practitioner_token": self.practitioner,
            "institution_code": self.institution,
            "department_code": self.department,
            "occurred_on": self.occurred_on,
            "api_key_id": ctx.api_key_id,
            "request_id": ctx.request_id,
        }


async def append(
    conn: AsyncConnection,
    ctx: WriteContext,
    entry: LedgerEntry,
    audit: tuple[str, str, dict[str, Any]] | None = None,
) -> int:
    """Append one event, and with ``audit`` (action, target, change) its audit row in the same
    statement (one round trip, issue 14); return the event's id."""
    stmt = events.insert().values(entry.row(ctx)).returning(events.c.id)
    if audit is None:
        event_id: int = (await conn.execute(stmt)).scalar_one()
        return event_id
    appended = stmt.cte("appended")
    audited = _audit_row(ctx, *audit).cte("audited")
    return int((await conn.execute(select(appended.c.id).add_cte(audited))).scalar_one())


async def append_many(
    conn: AsyncConnection, ctx: WriteContext, entries: Sequence[LedgerEntry]
) -> None:
    """Append many events, a few thousand rows per statement."""
    rows = [e.row(ctx) for e in entries]
    for i in range(0, len(rows), 3000):
        await conn.execute(events.insert(), rows[i : i + 3000])


async def append_audit(
    conn: AsyncConnection, ctx: WriteContext, action: str, target: str, change: dict[str, Any]
) -> None:
    """One audit row: what was done (``practitioner.suspend``), to what (a code or an id, never
    an ID number in clear), and the change as an officer reads it."""
    await conn.execute(_audit_row(ctx, action, target, change))


def _audit_row(ctx: WriteContext, action: str, target: str, change: dict[str, Any]) -> Insert:
    return audit_log.insert().values(
        api_key_id=ctx.api_key_id,
        request_id=ctx.request_id,
        action=action,
        target=target,
        change=change,
    )


async def read_calendar(conn: AsyncConnection) -> WorkingCalendar:
    """The working-day calendar with the agency's overrides (PUT /v1/admin/calendar/{day})."""
    rows = await conn.execute(select(calendar_overrides.c.day, calendar_overrides.c.working))
    return WorkingCalendar({day: working for day, working in rows})


def _d(s: str | None) -> date | None:
    return None if s is None else date.fromisoformat(s)


def to_engine(kind: str, token: str | None, inst: str | None, p: dict[str, Any]) -> Event | None:
    """One ledger row as an engine input; rows the engine does not judge give None."""
    if kind == "practitioner_action":
        assert token is not None
        return ManualAction(
            token,
            p.get("institution"),
            p["action"],
            date.fromisoformat(p["start"]),
            _d(p.get("end")),
            p["reason"],
        )
    if kind == "institution_action":
        assert inst is not None
        return InstitutionAction(
            inst, p["action"], date.fromisoformat(p["start"]), _d(p.get("end")), p["reason"]
        )
    if kind == "department_action":
        assert inst is not None
        return DepartmentAction(
            inst,
            p["department"],
            p["action"],
            date.fromisoformat(p["start"]),
            _d(p.get("end")),
            p["reason"],
        )
    if kind == "violation":
        assert token is not None
        assert inst is not None
        return Violation(
            str(p["id"]),
            token,
            inst,
            date.fromisoformat(p["date"]),
            int(p["points"]),
            p.get("item", ""),
            p.get("department"),
            # issue 19; absent (None) in violations written before catalogues
            item_id=p.get("item_id") or "",
            catalogue=p.get("catalogue") or "",
            act=p.get("act_id") or "",
            inspection=p.get("inspection_id") or "",
        )
    if kind == "appeal":
        return Appeal(str(p["violation"]), p["outcome"], date.fromisoformat(p["date"]))
    if kind == "exam":
        assert token is not None
        return Exam(token, date.fromisoformat(p["date"]), bool(p["passed"]))
    if kind == "bonus":
        assert token is not None
        return Bonus(token, date.fromisoformat(p["date"]), int(p["points"]), p.get("item", ""))
    if kind == "carried_over":
        assert token is not None
        return CarriedOver(
            token,
            inst,
            date.fromisoformat(p["as_of"]),
            p["source"],
            int(p["points"]),
            p.get("status") or "",
            _d(p.get("since")),
            _d(p.get("until")),
        )
    return None


async def practitioner_events(conn: AsyncConnection, token: str) -> list[Event]:
    """Everything about one practitioner: registrations, agreements and ledger events."""
    return (await practitioners_events(conn, [token]))[token]


async def practitioners_events(
    conn: AsyncConnection, tokens: Sequence[str]
) -> dict[str, list[Event]]:
    """:func:`practitioner_events` for many practitioners in three queries."""
    out: dict[str, list[Event]] = {t: [] for t in tokens}
    for r in await conn.execute(
        select(
            registrations.c.practitioner_token,
            registrations.c.institution_code,
            registrations.c.department_code,
            registrations.c.start,
            registrations.c.end,
        ).where(any_of(registrations.c.practitioner_token, tokens))
    ):
        out[r[0]].append(Registration(r[0], r[1], r[2], r[3], r[4]))
    for a in await conn.execute(
        select(
            agreements.c.practitioner_token,
            agreements.c.institution_code,
            agreements.c.start,
            agreements.c.end,
        ).where(any_of(agreements.c.practitioner_token, tokens))
    ):
        out[a[0]].append(Agreement(a[0], a[1], a[2], a[3]))
    rows = await conn.execute(
        select(
            events.c.practitioner_token, events.c.kind, events.c.institution_code, events.c.payload
        )
        .where(any_of(events.c.practitioner_token, tokens), events.c.kind.in_(PRACTITIONER_KINDS))
        .order_by(events.c.id)
    )
    for token, kind, inst, payload in rows:
        ev = to_engine(kind, token, inst, payload)
        if ev is not None:
            out[token].append(ev)
    return out


async def registrations_at(
    conn: AsyncConnection, code: str, tokens: Sequence[str] | None = None
) -> list[Event]:
    """The registrations at institution ``code``: all, or those of ``tokens``."""
    stmt = select(
        registrations.c.practitioner_token,
        registrations.c.department_code,
        registrations.c.start,
        registrations.c.end,
    ).where(registrations.c.institution_code == code)
    if tokens is not None:
        if not tokens:
            return []
        stmt = stmt.where(any_of(registrations.c.practitioner_token, tokens))
    return [Registration(r[0], code, r[1], r[2], r[3]) for r in await conn.execute(stmt)]


async def institution_events(
    conn: AsyncConnection, code: str, *, with_registrations: bool = True
) -> list[Event]:
    """An institution's own actions, its departments' actions, violations and (unless
    ``with_registrations`` is false) every registration at it."""
    out: list[Event] = await registrations_at(conn, code) if with_registrations else []
    rows = await conn.execute(
        select(events.c.kind, events.c.practitioner_token, events.c.payload)
        .where(
            events.c.institution_code == code,
            or_(events.c.kind.in_(INSTITUTION_KINDS), events.c.kind == "violation"),
        )
        .order_by(events.c.id)
    )
    for kind, token, payload in rows:
        ev = to_engine(kind, token, code, payload)
        if ev is not None:
            out.append(ev)
    # Appeals are filed against violations; the engine needs them to discount upheld ones.
    appeals = await conn.execute(
        select(events.c.kind, events.c.practitioner_token, events.c.payload).where(
            events.c.kind == "appeal", events.c.institution_code == code
        )
    )
    for kind, token, payload in appeals:
        ev = to_engine(kind, token, code, payload)
        if ev is not None:
            out.append(ev)
    return out
