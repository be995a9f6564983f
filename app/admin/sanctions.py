"""Violations (扣分), appeals (异议), exams and the credit file (诚信档案): the writes that feed
the policy engine, and what they changed."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin import catalogues
from app.admin import schemas as s
from app.admin.lookups import audit, require_institution, require_practitioner
from app.db.any_of import any_of
from app.db.tables import agreements, events, institutions, outcomes, registrations
from app.errors import Conflict, InvalidField, NotFound
from app.policy import ManualAction, evaluate_practitioner, load_profiles, sites_counted
from app.policy.manual import banned_restore
from app.projection import codec, ledger
from app.projection.ledger import WriteContext
from app.projection.recompute import Recompute, site_of


async def _snapshot(conn: AsyncConnection, token: str) -> dict[str, Any]:
    """Stored outcomes of the practitioner and of every institution and department they touch."""
    insts = [
        r[0]
        for r in await conn.execute(
            select(registrations.c.institution_code)
            .where(registrations.c.practitioner_token == token)
            .union(
                select(agreements.c.institution_code).where(
                    agreements.c.practitioner_token == token
                )
            )
        )
    ]
    conds: list[ColumnElement[bool]] = [outcomes.c.subject.like(f"p:{token}:%")]
    for inst in insts:
        conds += [outcomes.c.subject == f"i:{inst}", outcomes.c.subject.like(f"d:{inst}:%")]
    rows = await conn.execute(select(outcomes.c.subject, outcomes.c.doc).where(or_(*conds)))
    return {subj: doc for subj, doc in rows}


def _key(iv: dict[str, Any]) -> tuple[Any, ...]:
    return (iv["start"], iv["end"], iv["status"], iv["rule"], iv.get("institution"))


def _changes(before: dict[str, Any], after: dict[str, Any], display: str) -> list[dict[str, Any]]:
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
    after: dict[str, Any], token: str, profile_id: str, day: date
) -> dict[str, Any] | None:
    doc = after.get(f"p:{token}:{profile_id}")
    for p in (doc or {}).get("periods", []):
        if p["start"] <= day.isoformat() < p["end"]:
            return {
                "from": p["start"],
                "to": p["end"],
                "points": p["points"],
                "violations": p["violations"],
            }
    return None


async def record_violation(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, body: s.ViolationIn, secret: str
) -> dict[str, Any]:
    token = await require_practitioner(
        conn, body.practitioner_code, secret, "body.practitioner_code"
    )
    profile_id = await require_institution(conn, body.institution_code, "body.institution_code")
    works_there = (
        await conn.execute(
            select(registrations.c.id)
            .where(
                registrations.c.practitioner_token == token,
                registrations.c.institution_code == body.institution_code,
            )
            .limit(1)
        )
    ).first()
    if works_there is None:
        raise InvalidField(
            "the practitioner has never been registered at this institution",
            field="body.institution_code",
            code="NOT_REGISTERED_THERE",
        )
    # issue 19: the points are the catalogue's (or an officer's documented exception)
    priced = catalogues.priced(profile_id, body)
    # Lock first, so the snapshot is the state this violation is judged after.
    await rc.lock_practitioner(token)
    await catalogues.check_act(conn, token, body)
    before = await _snapshot(conn, token)
    vid = "V" + secrets.token_hex(6).upper()
    payload = {
        "id": vid,
        "date": body.date.isoformat(),
        "item": body.item,
        "description": body.description,
        "department": body.department_code,
        **priced,
    }
    event_id = await ledger.append(
        conn,
        ctx,
        "violation",
        payload,
        practitioner=token,
        institution=body.institution_code,
        department=body.department_code,
        occurred_on=body.date,
    )
    await audit(
        conn,
        ctx,
        "violation.record",
        vid,
        {**payload, "practitioner": codes.display_code(body.practitioner_code)},
    )
    rc.practitioners.add(token)
    rc.institutions.add(body.institution_code)
    await rc.run()
    after = await _snapshot(conn, token)
    display = codes.display_code(body.practitioner_code)
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


async def decide_appeal(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, vid: str, body: s.AppealIn
) -> dict[str, Any]:
    token, inst, violation = await _find_violation(conn, vid)
    await rc.lock_practitioner(token)
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
    before = await _snapshot(conn, token)
    payload = {"violation": vid, "outcome": body.outcome, "date": body.date.isoformat()}
    await ledger.append(
        conn, ctx, "appeal", payload, practitioner=token, institution=inst, occurred_on=body.date
    )
    await audit(conn, ctx, f"appeal.{body.outcome}", vid, payload)
    rc.practitioners.add(token)
    rc.institutions.add(inst)
    await rc.run()
    after = await _snapshot(conn, token)
    display = await _display(conn, token)
    return {**payload, "changes": _changes(before, after, display)}


async def record_exam(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, body: s.ExamIn, secret: str
) -> dict[str, Any]:
    token = await require_practitioner(
        conn, body.practitioner_code, secret, "body.practitioner_code"
    )
    await rc.lock_practitioner(token)
    before = await _snapshot(conn, token)
    payload = {"date": body.date.isoformat(), "passed": body.passed}
    event_id = await ledger.append(
        conn, ctx, "exam", payload, practitioner=token, occurred_on=body.date
    )
    display = codes.display_code(body.practitioner_code)
    await audit(conn, ctx, "exam.record", display, payload)
    rc.practitioners.add(token)
    await rc.run()
    after = await _snapshot(conn, token)
    return {
        "event_id": event_id,
        "practitioner_code": display,
        **payload,
        "changes": _changes(before, after, display),
    }


async def record_bonus(
    conn: AsyncConnection, rc: Recompute, ctx: WriteContext, body: s.BonusIn, secret: str
) -> dict[str, Any]:
    """Bonus points (加分, 威海 §二(三)): recorded; they never offset deductions, but where the
    region allows it they let an officer shorten a suspension running when they were earned."""
    token = await require_practitioner(
        conn, body.practitioner_code, secret, "body.practitioner_code"
    )
    await rc.lock_practitioner(token)
    before = await _snapshot(conn, token)
    payload = {"date": body.date.isoformat(), "points": body.points, "item": body.item}
    event_id = await ledger.append(
        conn, ctx, "bonus", payload, practitioner=token, occurred_on=body.date
    )
    display = codes.display_code(body.practitioner_code)
    await audit(conn, ctx, "bonus.record", display, payload)
    rc.practitioners.add(token)
    await rc.run()
    after = await _snapshot(conn, token)
    return {
        "event_id": event_id,
        "practitioner_code": display,
        **payload,
        "changes": _changes(before, after, display),
    }


async def refuse_banned_restore(
    conn: AsyncConnection, token: str, restore: ManualAction, field: str
) -> None:
    """舟山 §十四: a hand-made 注销 (5 years) or 解除 (1 year) is a ban; a restore that would reach
    it before the ban's end is refused here, before anything is written (the engine would
    ignore it anyway)."""
    evs = await ledger.practitioner_events(conn, token)
    actions = [e for e in evs if isinstance(e, ManualAction)]
    sites = sorted({s_ for e in evs if (s_ := site_of(e)) is not None})
    profiles = load_profiles()
    pids = {
        pid
        for (pid,) in await conn.execute(
            select(institutions.c.profile_id).where(any_of(institutions.c.code, sites))
        )
    }
    calendar = await Recompute(conn).calendar()
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


async def _display(conn: AsyncConnection, token: str) -> str:
    from app.db.tables import practitioners

    return str(
        (
            await conn.execute(
                select(practitioners.c.display_code).where(practitioners.c.token == token)
            )
        ).scalar_one()
    )


async def credit_file(
    conn: AsyncConnection, code: str, secret: str, as_of: date | None
) -> dict[str, Any]:
    """Every violation, appeal, exam, sanction and notice, with the rule cited, as of a date."""
    token = await require_practitioner(conn, code, secret, "path.code")
    evs = await ledger.practitioner_events(conn, token)
    rows = await conn.execute(
        select(events.c.kind, events.c.institution_code, events.c.payload, events.c.recorded_at)
        .where(
            events.c.practitioner_token == token, events.c.kind.in_(("violation", "appeal", "exam"))
        )
        .order_by(events.c.id)
    )
    appeals: dict[str, dict[str, Any]] = {}
    violations: list[dict[str, Any]] = []
    exams: list[dict[str, Any]] = []
    for kind, inst, p, _ in rows:
        day = p["date"]
        if as_of is not None and day > as_of.isoformat():
            continue
        if kind == "violation":
            violations.append(
                {
                    "id": p["id"],
                    "institution_code": inst,
                    "date": day,
                    "points": p["points"],
                    "item": p.get("item", ""),
                    "description": p.get("description", ""),
                    **catalogues.credit_fields(p),
                }
            )
        elif kind == "appeal":
            appeals[p["violation"]] = {"outcome": p["outcome"], "date": day}
        else:
            exams.append({"date": day, "passed": p["passed"]})
    for v in violations:
        v["appeal"] = appeals.get(v["id"])
        v["counts"] = not (v["appeal"] and v["appeal"]["outcome"] == "upheld")

    sites = sorted({s_ for e in evs if (s_ := site_of(e)) is not None})
    profile_of = {
        c: pid
        for c, pid in await conn.execute(
            select(institutions.c.code, institutions.c.profile_id).where(
                any_of(institutions.c.code, sites)
            )
        )
    }
    calendar = await Recompute(conn).calendar()
    profiles = load_profiles()
    judged: list[dict[str, Any]] = []
    counted = sites_counted({c: profiles[p] for c, p in profile_of.items()})
    for pid in sorted(set(profile_of.values())):
        mine = {c for c, p in profile_of.items() if p == pid}
        subset = [e for e in evs if site_of(e) is None or site_of(e) in counted[pid]]
        out = evaluate_practitioner(profiles[pid], token, subset, calendar, as_of)
        data = codec.to_json(out)
        judged.append(
            {
                "profile": pid,
                "institutions": sorted(mine),
                "sanctions": [
                    {
                        "from": iv["start"],
                        "to": iv["end"],
                        "status": iv["status"],
                        "rule": iv["rule"],
                        "institution": iv["institution"],
                        "message": iv["message"],
                    }
                    for iv in data["intervals"]
                ],
                "notices": data["notices"],
                "periods": [
                    {
                        "from": p["start"],
                        "to": p["end"],
                        "points": p["points"],
                        "violations": p["violations"],
                    }
                    for p in data["periods"]
                ],
            }
        )
    return {
        "practitioner_code": await _display(conn, token),
        "as_of": as_of.isoformat() if as_of else None,
        "violations": violations,
        "exams": exams,
        "by_profile": judged,
    }


async def list_attempts(
    conn: AsyncConnection, institution: str | None, since: date | None, limit: int
) -> dict[str, Any]:
    """Claims checked under a sanctioned code, newest first, for the agency to act on."""
    from app.db.tables import practitioners
    from app.db.tables import sanctioned_attempts as sa_

    q = (
        select(sa_, practitioners.c.display_code)
        .outerjoin(practitioners, practitioners.c.token == sa_.c.practitioner_token)
        .order_by(sa_.c.id.desc())
        .limit(limit)
    )
    if institution is not None:
        q = q.where(sa_.c.institution_code == institution)
    if since is not None:
        q = q.where(sa_.c.service_date >= since)
    items = [
        {
            "at": r.at.isoformat(),
            "institution_code": r.institution_code,
            "department_code": r.department_code,
            "practitioner_code": r.display_code,
            "service_date": r.service_date.isoformat(),
            "reasons": list(r.reasons),
            "emergency": r.emergency,
            "decision_id": r.decision_id,
            "claim_id": r.claim_id,
        }
        for r in await conn.execute(q)
    ]
    return {"items": items}
