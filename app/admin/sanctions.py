"""Violations (扣分), appeals (异议), exams and bonus points (加分): the writes that feed the
policy engine's scoring, each answering with every timeline change it caused.

What changed is read from the stored outcomes before the event and after a recompute of it
inside the write's transaction (:meth:`~app.admin.unit_of_work.UnitOfWork.flush`); the
practitioner's row is locked first, so "before" is the state the event is judged after.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from sqlalchemy import Text, column, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin import catalogues
from app.admin import schemas as s
from app.admin.lookups import (
    display_code_of,
)
from app.admin.unit_of_work import Audit, UnitOfWork
from app.db.tables import events
from app.errors import Conflict, InvalidField, NotFound

Outcomes = dict[str, Any]  # stored outcome documents by subject (table ``outcomes``)


async def _snapshot(conn: AsyncConnection, token: str) -> Outcomes:
    """Stored outcomes of the practitioner and of every institution and department they touch,
    in one statement (a write's latency is its round trips, issue 14)."""
    rows = await conn.execute(_SNAPSHOT, {"lo": f"p:{token}:", "hi": f"p:{token};", "t": token})
    return {subj: doc for subj, doc in rows}


# Prefixes as ranges (``p:<token>:`` up to ``p:<token>;``, ';' follows ':') in the byte order of
# the pattern index on outcomes.subject (migration 0003): LIKE wants a constant pattern to use
# an index, and the departments' prefixes come from the rows joined here. The institutions are
# unnested from an array so the planner counts on a few (it guesses ten): read from the tables,
# it guessed hundreds, the departments' join millions of rows, and its cost crossed
# jit_above_cost — compiling the plan took 8 ms of a 1 ms query.
_SNAPSHOT = text(
    """
    WITH i AS (
        SELECT code FROM unnest(ARRAY(
            SELECT institution_code FROM registrations WHERE practitioner_token = :t
             UNION
            SELECT institution_code FROM agreements WHERE practitioner_token = :t
        )) AS u(code)
    )
    SELECT o.subject, o.doc FROM outcomes o WHERE o.subject ~>=~ :lo AND o.subject ~<~ :hi
    UNION ALL
    SELECT o.subject, o.doc FROM i JOIN outcomes o ON o.subject = 'i:' || i.code
    UNION ALL
    SELECT o.subject, o.doc
      FROM i JOIN outcomes o
        ON o.subject ~>=~ ('d:' || i.code || ':') AND o.subject ~<~ ('d:' || i.code || ';')
    """
).columns(column("subject", Text), column("doc", JSONB))


def _key(iv: dict[str, Any]) -> tuple[Any, ...]:
    return (iv["start"], iv["end"], iv["status"], iv["rule"], iv.get("institution"))


def _changes(before: Outcomes, after: Outcomes, display: str) -> list[dict[str, Any]]:
    """Intervals added or removed, per subject, in words an officer reads."""
    out: list[dict[str, Any]] = []
    for subject in sorted(set(before) | set(after)):
        old = {_key(iv): iv for iv in (before.get(subject) or {}).get("intervals", [])}
        new = {_key(iv): iv for iv in (after.get(subject) or {}).get("intervals", [])}
        kind, _, rest = subject.partition(":")
        if kind == "p":
            who = {"practitioner_code": display, "profile": rest.split(":", 1)[1]}
        elif kind == "i":
            who = {"institution_code": rest}
        else:
            inst, _, dept = rest.partition(":")
            who = {"institution_code": inst, "department_code": dept}
        for change, keys in (
            ("added", new.keys() - old.keys()),
            ("removed", old.keys() - new.keys()),
        ):
            for k in sorted(keys, key=str):
                iv = (new if change == "added" else old)[k]
                out.append(
                    {
                        "change": change,
                        **who,
                        "from": iv["start"],
                        "to": iv["end"],
                        "status": iv["status"],
                        "rule": iv["rule"],
                        "institution": iv.get("institution"),
                        "message": iv.get("message", ""),
                    }
                )
    return out


def _period_points(
    after: Outcomes, token: str, profile_id: str, day: date
) -> dict[str, Any] | None:
    doc = after.get(f"p:{token}:{profile_id}")
    for p in (doc or {}).get("periods", []):
        if p["start"] <= day.isoformat() < p["end"]:
            return {
                "from": p["start"],
                "to": p["end"],
                "points": p["points"],
                "violations": p["violations"],
                "carried": p.get("carried", 0),
            }
    return None


async def _record_judged(
    uow: UnitOfWork,
    token: str,
    kind: str,
    payload: dict[str, Any],
    *,
    audit: Audit,
    institution: str | None = None,
    department: str | None = None,
    occurred_on: date,
) -> tuple[int, Outcomes, Outcomes]:
    """Record an event about a practitioner whose row the caller has locked, and re-judge them
    at once: (event id, stored outcomes before, after)."""
    before = await _snapshot(uow.conn, token)
    event_id = await uow.record(
        kind,
        payload,
        practitioner=token,
        institution=institution,
        department=department,
        occurred_on=occurred_on,
        audit=audit,
    )
    await uow.flush()
    return event_id, before, await _snapshot(uow.conn, token)


async def record_violation(uow: UnitOfWork, body: s.ViolationIn, secret: str) -> dict[str, Any]:
    conn = uow.conn
    token, profile_id, works_there = await uow.require_practitioner_at(
        body.practitioner_code,
        secret,
        "body.practitioner_code",
        body.institution_code,
        "body.institution_code",
    )
    if not works_there:
        raise InvalidField(
            "the practitioner has never been registered at this institution",
            field="body.institution_code",
            code="NOT_REGISTERED_THERE",
        )
    # The points are the catalogue's (or an officer's documented exception): docs/policy-readings.md
    priced = catalogues.priced(profile_id, body)
    await catalogues.check_act(conn, token, body)
    vid = "V" + secrets.token_hex(6).upper()
    payload = {
        "id": vid,
        "date": body.date.isoformat(),
        "item": body.item,
        "description": body.description,
        "department": body.department_code,
        **priced,
    }
    display = codes.display_code(body.practitioner_code)
    event_id, before, after = await _record_judged(
        uow,
        token,
        "violation",
        payload,
        institution=body.institution_code,
        department=body.department_code,
        occurred_on=body.date,
        audit=Audit("violation.record", vid, {**payload, "practitioner": display}),
    )
    return {
        "id": vid,
        "event_id": event_id,
        "practitioner_code": display,
        "institution_code": body.institution_code,
        **{k: payload[k] for k in ("date", "points", "item", "description")},
        **{k: payload[k] for k in catalogues.FIELDS},
        "department_code": body.department_code,
        "period": _period_points(after, token, profile_id, body.date),
        "changes": _changes(before, after, display),
    }


async def _find_violation(conn: AsyncConnection, vid: str) -> tuple[str, str, dict[str, Any]]:
    row = (
        await conn.execute(
            select(events.c.practitioner_token, events.c.institution_code, events.c.payload).where(
                events.c.kind == "violation", events.c.payload["id"].astext == vid
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            "no violation is recorded under this id",
            field="path.violation_id",
            code="VIOLATION_NOT_FOUND",
        )
    return row[0], row[1], row[2]


async def decide_appeal(uow: UnitOfWork, vid: str, body: s.AppealIn) -> dict[str, Any]:
    conn = uow.conn
    token, inst, violation = await _find_violation(conn, vid)
    await uow.lock_practitioner(token)
    prior = (
        await conn.execute(
            select(events.c.payload).where(
                events.c.kind == "appeal", events.c.payload["violation"].astext == vid
            )
        )
    ).first()
    if prior is not None:
        raise Conflict(
            f"the appeal of this violation was already decided ({prior[0]['outcome']} on "
            f"{prior[0]['date']})",
            code="APPEAL_ALREADY_DECIDED",
        )
    if body.date < date.fromisoformat(violation["date"]):
        raise InvalidField(
            "an appeal cannot be decided before the violation's date", field="body.date"
        )
    payload = {"violation": vid, "outcome": body.outcome, "date": body.date.isoformat()}
    _, before, after = await _record_judged(
        uow,
        token,
        "appeal",
        payload,
        institution=inst,
        occurred_on=body.date,
        audit=Audit(f"appeal.{body.outcome}", vid),
    )
    display = await display_code_of(conn, token)
    return {**payload, "changes": _changes(before, after, display)}


async def record_exam(uow: UnitOfWork, body: s.ExamIn, secret: str) -> dict[str, Any]:
    payload = {"date": body.date.isoformat(), "passed": body.passed}
    return await _record_own(uow, body.practitioner_code, secret, "exam", payload, body.date)


async def record_bonus(uow: UnitOfWork, body: s.BonusIn, secret: str) -> dict[str, Any]:
    """Bonus points (加分, 威海 §二(三)): recorded; they never offset deductions, but where the
    region allows it they let an officer shorten a suspension running when they were earned."""
    payload = {"date": body.date.isoformat(), "points": body.points, "item": body.item}
    return await _record_own(uow, body.practitioner_code, secret, "bonus", payload, body.date)


async def _record_own(
    uow: UnitOfWork, code: str, secret: str, kind: str, payload: dict[str, Any], day: date
) -> dict[str, Any]:
    """An exam or a bonus: an event of the practitioner's own, wherever they work."""
    token = await uow.require_practitioner(code, secret, "body.practitioner_code")
    display = codes.display_code(code)
    event_id, before, after = await _record_judged(
        uow, token, kind, payload, occurred_on=day, audit=Audit(f"{kind}.record", display)
    )
    return {
        "event_id": event_id,
        "practitioner_code": display,
        **payload,
        "changes": _changes(before, after, display),
    }
