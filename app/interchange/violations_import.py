"""Violation lines (诚信档案 附件2) checked against the database and recorded as violations —
the same ledger events as ``POST /v1/admin/violations``, priced by the catalogue of the
institution's region in force on each date.

A line's 违规类别 names its catalogue item (an id, an article, a band, the act's words:
:func:`app.policy.catalogue.item_by_category`), else its 违规行为描述 does; one that names no
single item is refused, never guessed. 单次扣分 must be what the item gives (a range item's
points within its range) unless 例外说明 documents an officer's exception — the catalogue's own
rule (app.policy.catalogue.price).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin.catalogues import stored_fields
from app.admin.unit_of_work import Audit, UnitOfWork
from app.db.any_of import any_of
from app.db.tables import events, institutions, practitioners, registrations
from app.interchange.records import Finding
from app.interchange.report import Report
from app.policy import load_profiles
from app.policy.catalogue import CatalogueError, item_by_category, price
from app.projection.ledger import LedgerEntry

_PRICE_PROBLEMS = {
    "POINTS_OUT_OF_RANGE": "单次扣分与扣分标准不符：条目{item}扣{points}分；其他分值须在例外说明中写明理由",
    "INVALID_FIELD": "单次扣分与扣分标准相符时不应填写例外说明",
    "ITEM_REQUIRED": "该地区有扣分标准：违规类别须对应其中的条目",
    "ITEM_UNKNOWN": "违规类别无法对应扣分标准条目",
}


@dataclass(slots=True)
class Plan:
    entries: list[LedgerEntry] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"violations": len(self.entries)}


async def check(
    conn: AsyncConnection, findings: list[Finding], report: Report, secret: str
) -> Plan:
    plan = Plan()
    tokens = {f.row: codes.practitioner_token(f.practitioner_code, secret) for f in findings}
    wanted = sorted(set(tokens.values()))
    known = {
        t
        for (t,) in await conn.execute(
            select(practitioners.c.token).where(any_of(practitioners.c.token, wanted))
        )
    }
    profile_of = dict(
        (c, p)
        for c, p in await conn.execute(
            select(institutions.c.code, institutions.c.profile_id).where(
                any_of(institutions.c.code, sorted({f.institution_code for f in findings}))
            )
        )
    )
    worked = {
        (t, i)
        for t, i in await conn.execute(
            select(registrations.c.practitioner_token, registrations.c.institution_code)
            .where(any_of(registrations.c.practitioner_token, wanted))
            .distinct()
        )
    }
    acts = await _acts(conn, wanted)
    profiles = load_profiles()
    for f in findings:
        token = tokens[f.row]
        if token not in known:
            report.add(f.row, "人员代码", "没有登记该人员：请先导入名册")
            continue
        profile_id = profile_of.get(f.institution_code)
        if profile_id is None:
            report.add(f.row, "机构代码", "没有登记该机构：请先导入名册")
            continue
        if (token, f.institution_code) not in worked:
            report.add(f.row, "机构代码", "该人员从未在此机构登记执业")
            continue
        profile = profiles[profile_id]
        item = item_by_category(profile, f.category, f.date)
        if item is None and f.description:
            item = item_by_category(profile, f.description, f.date)
        has_table = bool(profile.at(f.date).catalogue)
        if item is None and has_table and not f.exception_reason:
            report.add(
                f.row,
                "违规类别",
                "无法对应扣分标准中唯一的条目：请填写条目编号（如 2.1.1.1）、条款或违规行为原文",
            )
            continue
        try:
            priced = price(
                profile,
                f.date,
                item_id=item.id if item is not None else None,
                points=f.points,
                exception_reason=f.exception_reason,
            )
        except CatalogueError as exc:
            words = _PRICE_PROBLEMS.get(exc.code, "单次扣分不符合扣分标准")
            column = "例外说明" if exc.field == "exception_reason" else "单次扣分"
            shown = words.format(
                item=item.id if item else "", points=item.points_text if item else ""
            )
            report.add(f.row, column, shown)
            continue
        if f.act_id is not None:
            where = (f.institution_code, f.date.isoformat(), f.inspection_id)
            if acts.setdefault((token, f.act_id), where) != where:
                report.add(f.row, "违规行为编号", "同一违规行为的各条目须为同一日期、机构和检查")
                continue
        payload: dict[str, Any] = {
            "id": "V" + secrets.token_hex(6).upper(),
            "date": f.date.isoformat(),
            "item": f.category[:200],
            "description": f.description[:2000],
            "department": f.department,
            **stored_fields(priced, f.act_id, f.inspection_id),
        }
        plan.entries.append(
            LedgerEntry(
                "violation",
                payload,
                practitioner=token,
                institution=f.institution_code,
                department=f.department,
                occurred_on=f.date,
            )
        )
    report.counts = plan.counts()
    return plan


async def _acts(conn: AsyncConnection, tokens: list[str]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Act ids already recorded: (practitioner, act) → (institution, date, inspection)."""
    rows = await conn.execute(
        select(events.c.practitioner_token, events.c.institution_code, events.c.payload).where(
            any_of(events.c.practitioner_token, tokens),
            events.c.kind == "violation",
            events.c.payload["act_id"].astext.is_not(None),
        )
    )
    return {(t, p["act_id"]): (i, p["date"], p.get("inspection_id")) for t, i, p in rows}


async def apply(uow: UnitOfWork, plan: Plan, audit: Audit) -> dict[str, int]:
    await uow.record_many(plan.entries, audit=audit)
    return plan.counts()
