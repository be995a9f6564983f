"""The append-only records of every write — ledger events and audit rows — and the engine's
inputs read back: a subject's events as the engine's records, and the working-day calendar's
overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Insert,
    Integer,
    Text,
    bindparam,
    column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.any_of import any_of
from app.db.tables import audit_log, calendar_overrides, events, registrations
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
    return (await practitioners_inputs(conn, [token])).events[token]


async def practitioners_events(
    conn: AsyncConnection, tokens: Sequence[str]
) -> dict[str, list[Event]]:
    """:func:`practitioner_events` for many practitioners."""
    return (await practitioners_inputs(conn, tokens)).events


@dataclass(frozen=True, slots=True)
class PractitionerInputs:
    """What judging practitioners reads: each one's events (registrations, agreements, then
    the ledger's in order), the profile of every institution those name, and the calendar."""

    events: dict[str, list[Event]]
    profiles: dict[str, str]  # institution code -> profile id
    calendar: WorkingCalendar
    # token -> (display code, category), when asked for (``people=True``), by token
    people: dict[str, tuple[str, str]]
    # When asked for (``stored=True``): their stored outcomes (subject -> document), and their
    # rows of table staff_inputs as (institution, practitioner) pairs
    outcomes: dict[str, Any]
    staff: set[tuple[str, str]]


# One statement for all of it: each read is a PostgreSQL round trip, and a write's latency is
# mostly its round trips (issue 14). Tag 0 registrations, 1 agreements, 2 ledger events (by
# id), 3 institutions' profiles (of every institution the rows name: a superset of the sites
# app.projection.recompute.site_of finds), 4 calendar overrides, 5 the practitioners' own rows
# (when :func:`practitioners_inputs` is asked for them), 6 their stored outcomes (``p:<token>:``
# as a range in the byte order of the pattern index on outcomes.subject, migration 0003) and 7
# their rows of staff_inputs (both when asked for).
_INPUTS = (
    text(
        """
    WITH ev AS (
        SELECT e.id, e.practitioner_token, e.kind, e.institution_code, e.payload
          FROM events e
         WHERE e.practitioner_token = ANY(:tokens) AND e.kind = ANY(:kinds)
    ), rg AS (
        SELECT g.id, g.practitioner_token, g.institution_code, g.department_code, g.start, g."end"
          FROM registrations g WHERE g.practitioner_token = ANY(:tokens)
    ), ag AS (
        SELECT a.id, a.practitioner_token, a.institution_code, a.start, a."end"
          FROM agreements a WHERE a.practitioner_token = ANY(:tokens)
    )
    SELECT 0 AS t, id AS n, practitioner_token AS p, institution_code AS i,
           department_code AS d, start AS s, "end" AS e, NULL::text AS k, NULL::jsonb AS j
      FROM rg
    UNION ALL
    SELECT 1, id, practitioner_token, institution_code, NULL, start, "end", NULL, NULL FROM ag
    UNION ALL
    SELECT 2, id, practitioner_token, institution_code, NULL, NULL, NULL, kind, payload FROM ev
    UNION ALL
    SELECT 3, 0, NULL, c.code, c.profile_id, NULL, NULL, NULL, NULL
      FROM institutions c
     WHERE c.code IN (SELECT institution_code FROM rg
                      UNION SELECT institution_code FROM ag
                      UNION SELECT institution_code FROM ev
                      UNION SELECT payload ->> 'institution' FROM ev)
    UNION ALL
    SELECT 4, CASE WHEN o.working THEN 1 ELSE 0 END, NULL, NULL, NULL, o.day, NULL, NULL, NULL
      FROM calendar_overrides o
    UNION ALL
    SELECT 5, 0, r.token, NULL, r.display_code, NULL, NULL, r.category, NULL
      FROM practitioners r WHERE :people AND r.token = ANY(:tokens)
    UNION ALL
    SELECT 6, 0, o.subject, NULL, NULL, NULL, NULL, NULL, o.doc
      FROM unnest(CAST(:tokens AS text[])) AS u(t)
      JOIN outcomes o ON o.subject ~>=~ ('p:' || u.t || ':') AND o.subject ~<~ ('p:' || u.t || ';')
     WHERE :stored
    UNION ALL
    SELECT 7, 0, s.practitioner_token, s.institution_code, NULL, NULL, NULL, NULL, NULL
      FROM staff_inputs s WHERE :stored AND s.practitioner_token = ANY(:tokens)
    ORDER BY t, n, p
    """
    )
    .bindparams(
        bindparam("tokens", type_=ARRAY(Text)),
        bindparam("kinds", type_=ARRAY(Text)),
        bindparam("people", type_=Boolean),
        bindparam("stored", type_=Boolean),
    )
    .columns(
        column("t", Integer),
        column("n", BigInteger),
        column("p", Text),
        column("i", Text),
        column("d", Text),
        column("s", Date),
        column("e", Date),
        column("k", Text),
        column("j", JSONB),
    )
)


async def practitioners_inputs(
    conn: AsyncConnection, tokens: Sequence[str], *, people: bool = False, stored: bool = False
) -> PractitionerInputs:
    """:class:`PractitionerInputs` of ``tokens``, read in one statement; with ``people``, their
    own rows too (read without a lock: the caller holds them, or needs none); with ``stored``,
    what their last recompute stored (outcomes, staff_inputs)."""
    out: dict[str, list[Event]] = {t: [] for t in tokens}
    profiles: dict[str, str] = {}
    overrides: dict[date, bool] = {}
    rows_of: dict[str, tuple[str, str]] = {}
    outcomes: dict[str, Any] = {}
    staff: set[tuple[str, str]] = set()
    rows = await conn.execute(
        _INPUTS,
        {
            "tokens": list(tokens),
            "kinds": list(PRACTITIONER_KINDS),
            "people": people,
            "stored": stored,
        },
    )
    for tag, n, token, inst, dept, start, end, kind, payload in rows:
        if tag == 0:
            out[token].append(Registration(token, inst, dept, start, end))
        elif tag == 1:
            out[token].append(Agreement(token, inst, start, end))
        elif tag == 2:
            ev = to_engine(kind, token, inst, payload)
            if ev is not None:
                out[token].append(ev)
        elif tag == 3:
            profiles[inst] = dept
        elif tag == 4:
            overrides[start] = bool(n)
        elif tag == 5:
            rows_of[token] = (dept, kind)
        elif tag == 6:
            outcomes[token] = payload
        else:
            staff.add((inst, token))
    return PractitionerInputs(out, profiles, WorkingCalendar(overrides), rows_of, outcomes, staff)


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
