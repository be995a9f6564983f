"""What the agency reads to act on a practitioner's record: the credit file (诚信档案) as of a
date, judged by each region's profile, and the claims checked under a sanctioned code."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.admin import catalogues
from app.admin.lookups import display_code_of, require_practitioner
from app.db.any_of import any_of
from app.db.tables import events, institutions, practitioners
from app.db.tables import sanctioned_attempts as sa_
from app.policy import evaluate_practitioner, load_profiles, sites_counted
from app.projection import codec, ledger
from app.projection.recompute import site_of


async def credit_file(
    conn: AsyncConnection, code: str, secret: str, as_of: date | None
) -> dict[str, Any]:
    """Every violation, appeal, exam, sanction and notice, with the rule cited, as of a date."""
    token = await require_practitioner(conn, code, secret, "path.code")
    evs = await ledger.practitioner_events(conn, token)
    rows = await conn.execute(
        select(events.c.kind, events.c.institution_code, events.c.payload, events.c.recorded_at)
        .where(
            events.c.practitioner_token == token,
            events.c.kind.in_(("violation", "appeal", "exam", "carried_over")),
        )
        .order_by(events.c.id)
    )
    appeals: dict[str, dict[str, Any]] = {}
    violations: list[dict[str, Any]] = []
    exams: list[dict[str, Any]] = []
    balances: list[dict[str, Any]] = []
    for kind, inst, p, _ in rows:
        day = p["as_of"] if kind == "carried_over" else p["date"]
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
        elif kind == "carried_over":
            balances.append({"institution_code": inst, **p})
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
    calendar = await ledger.read_calendar(conn)
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
                        "carried": p.get("carried", 0),
                    }
                    for p in data["periods"]
                ],
            }
        )
    return {
        "practitioner_code": await display_code_of(conn, token),
        "as_of": as_of.isoformat() if as_of else None,
        "carried_over": balances,
        "violations": violations,
        "exams": exams,
        "by_profile": judged,
    }


async def list_attempts(
    conn: AsyncConnection, institution: str | None, since: date | None, limit: int
) -> dict[str, Any]:
    """Claims checked under a sanctioned code, newest first, for the agency to act on."""
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
