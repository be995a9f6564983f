"""Clerks' dispositions of findings (3103), for the agency: who continued despite a finding, at
which institution, for which practitioner, when and why.

A disposition (app.interfaces.national.dispositions) names a decision; what that decision found
is in ``national_findings``, written off the hot path when the 3101/3102/2204/2301 answer was
sent. The two are joined on decision and institution, so a key can only ever attach a
disposition to its own institution's decisions; a disposition whose findings are not (or not
yet) recorded is listed with ``findings`` null rather than left out.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import and_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.any_of import any_of
from app.db.tables import aliases, dispositions, national_findings, practitioners
from app.fields import SHANGHAI

Disposition = Literal["continue", "return", "any"]
WAYS = {1: "continue", 2: "return"}


async def _targets(
    conn: AsyncConnection, kind: str, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(institution, local code) → what the institution's alias of ``kind`` names."""
    return {
        (i, lc): t
        for i, lc, t in await conn.execute(
            select(aliases.c.institution_code, aliases.c.local_code, aliases.c.target).where(
                aliases.c.kind == kind,
                any_of(aliases.c.institution_code, sorted({i for i, _ in pairs})),
                any_of(aliases.c.local_code, sorted({c for _, c in pairs})),
            )
        )
    }


async def _display_codes(
    conn: AsyncConnection, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(institution, practitioner token as checked) → the practitioner's code as officers see
    it: a national code or masked ID number, and a local code through the institution's alias.
    A code nobody knows is absent (the token is shown: a code, or ``ID:`` + HMAC)."""
    local = await _targets(conn, "practitioner", pairs)
    wanted = sorted({t for _, t in pairs} | set(local.values()))
    shown = dict(
        (
            await conn.execute(
                select(practitioners.c.token, practitioners.c.display_code).where(
                    any_of(practitioners.c.token, wanted)
                )
            )
        ).all()
    )
    out = {}
    for inst, tok in pairs:
        code = shown.get(tok) or shown.get(local.get((inst, tok), ""))
        if code is not None:
            out[inst, tok] = code
    return out


async def list_overrides(
    conn: AsyncConnection,
    institution: str | None,
    since: date | None,
    until: date | None,
    disposition: Disposition,
    blocking: bool | None,
    limit: int,
) -> dict[str, Any]:
    """Dispositions, newest first. ``since``/``until``: the day recorded (Asia/Shanghai),
    ``until`` inclusive. ``blocking``: only those whose findings were (or were not) blocking."""
    d, f = dispositions, national_findings
    found = (
        select(f)
        .where(f.c.decision_id == d.c.decision_id, f.c.institution_code == d.c.institution_code)
        .order_by(f.c.id)
        .limit(1)
        .lateral("f")
    )
    q = (
        select(
            d.c.decision_id,
            d.c.institution_code,
            d.c.dspo_way,
            d.c.reason,
            d.c.warn_type,
            d.c.opter,
            d.c.api_key_id,
            d.c.recorded_at,
            found.c.id.label("finding"),
            found.c.at,
            found.c.infno,
            found.c.department_code,
            found.c.practitioner_token,
            found.c.service_date,
            found.c.emergency,
            found.c.reasons,
            found.c.blocking,
            found.c.claim_ref,
        )
        .select_from(d)
        .outerjoin(found, true())
        .order_by(d.c.recorded_at.desc(), d.c.id.desc())
        .limit(limit)
    )
    conds = []
    if institution is not None:
        conds.append(d.c.institution_code == institution)
    if since is not None:
        conds.append(d.c.recorded_at >= datetime.combine(since, time(), SHANGHAI))
    if until is not None:
        conds.append(
            d.c.recorded_at < datetime.combine(until + timedelta(days=1), time(), SHANGHAI)
        )
    if disposition != "any":
        conds.append(d.c.dspo_way == (1 if disposition == "continue" else 2))
    if blocking is not None:
        conds.append(found.c.blocking.is_(blocking))
    if conds:
        q = q.where(and_(*conds))
    rows = (await conn.execute(q)).mappings().all()
    found_rows = [r for r in rows if r["finding"] is not None]
    shown = await _display_codes(
        conn, {(r["institution_code"], r["practitioner_token"]) for r in found_rows}
    )
    depts = await _targets(
        conn, "department", {(r["institution_code"], r["department_code"]) for r in found_rows}
    )
    items = []
    for r in rows:
        findings = None
        if r["finding"] is not None:
            key = (r["institution_code"], r["practitioner_token"])
            findings = {
                "checked_at": r["at"].isoformat(),
                "infno": r["infno"],
                "department_code": depts.get(
                    (r["institution_code"], r["department_code"]), r["department_code"]
                ),
                "practitioner_code": shown.get(key, r["practitioner_token"]),
                "service_date": r["service_date"].isoformat(),
                "emergency": r["emergency"],
                "reasons": list(r["reasons"]),
                "blocking": r["blocking"],
                "claim_ref": r["claim_ref"],
            }
        items.append(
            {
                "decision_id": r["decision_id"],
                "institution_code": r["institution_code"],
                "disposition": WAYS[r["dspo_way"]],
                "reason": r["reason"],
                "warn_type": r["warn_type"],
                "opter": r["opter"],
                "api_key_id": r["api_key_id"],
                "recorded_at": r["recorded_at"].isoformat(),
                "findings": findings,
            }
        )
    return {"items": items}
