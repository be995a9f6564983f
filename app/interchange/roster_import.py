"""A roster's records checked against the database (:func:`check`) and written (:func:`apply`).

:func:`check` only reads: the dry run's whole work, and the real import's first step inside its
transaction (so what it checked still holds when it writes). It resolves each line's
institution (existing, or new under the region of its code), department (a code, a name there,
or a 诊疗科目), practitioner token, and decides what is new: institutions and departments not
there yet, registrations and agreements not already on record (a retry or a second roster
adds nothing twice), and opening balances.

:func:`apply` writes the plan set-based on the unit of work: entity rows, their ledger events,
the ``carried_over`` events of the balances, one audit row; the committer recomputes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin.aliases import department_aliases_among
from app.admin.bulk import insert_dated, practitioner_row, upsert_practitioners
from app.admin.unit_of_work import Audit, UnitOfWork
from app.db.any_of import any_of
from app.db.tables import agreements, departments, events, institutions, registrations
from app.interchange import departments as subjects
from app.interchange.records import Person
from app.interchange.report import Report
from app.policy import UnknownRegion, profile_for_region
from app.projection.ledger import LedgerEntry


@dataclass(frozen=True, slots=True)
class Options:
    """What an import is told besides its file. ``as_of``: the day the file describes (a
    balance's date; the end of registrations the national export marks as left).
    ``registered_from``: where a roster gives no start, registrations start here. ``region``:
    the region of new institutions whose code's division no profile covers. ``source``: what
    a carried-over sanction cites."""

    as_of: dt.date
    registered_from: dt.date
    source: str
    region: str | None = None


@dataclass(slots=True)
class Plan:
    new_institutions: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_departments: dict[tuple[str, str], str] = field(default_factory=dict)
    practitioners: dict[str, dict[str, Any]] = field(default_factory=dict)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    agreements: list[dict[str, Any]] = field(default_factory=list)
    balances: list[LedgerEntry] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "institutions": len(self.new_institutions),
            "departments": len(self.new_departments),
            "practitioners": len(self.practitioners),
            "registrations": len(self.registrations),
            "agreements": len(self.agreements),
            "opening_balances": len(self.balances),
        }


async def _pairs(conn: AsyncConnection, sql: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await conn.execute(sql)]


async def check(
    conn: AsyncConnection, people: list[Person], opts: Options, report: Report, secret: str
) -> Plan:
    plan = Plan()
    inst_codes = sorted({p.institution_code for p in people})
    known_inst = dict(
        await _pairs(
            conn,
            select(institutions.c.code, institutions.c.profile_id).where(
                any_of(institutions.c.code, inst_codes)
            ),
        )
    )
    dept_rows = await _pairs(
        conn,
        select(departments.c.institution_code, departments.c.code, departments.c.name).where(
            any_of(departments.c.institution_code, inst_codes)
        ),
    )
    dept_codes = {(i, c) for i, c, _ in dept_rows}
    by_name: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i, c, n in dept_rows:
        by_name[(i, n)].append(c)

    first_row: dict[str, Person] = {}
    department_of: dict[int, str] = {}
    for p in people:
        _institution(p, known_inst, plan, opts, report)
        dept = _department(p, dept_codes, by_name, plan, report)
        if dept is not None:
            department_of[p.row] = dept
        token = codes.practitioner_token(p.practitioner_code, secret)
        seen = first_row.setdefault(token, p)
        if seen is not p and (seen.name, seen.category) != (p.name, p.category):
            report.add(p.row, "姓名", f"与第{seen.row}行为同一人员代码，但姓名或人员类别不同")
        row = practitioner_row(p.practitioner_code, p.name, p.category, p.id_number, secret)
        row["attributes"] = {
            **plan.practitioners.get(token, {}).get("attributes", {}),
            **p.attributes,
        }
        plan.practitioners[token] = row

    shadowed = await department_aliases_among(conn, plan.new_departments)
    for p in people:
        if (p.institution_code, department_of.get(p.row, "")) in shadowed:
            report.add(p.row, p.department_column, "科室代码与本机构的科室别名冲突，请先删除该别名")

    await _dated(conn, people, department_of, plan, opts, report, secret)
    await _balances(conn, people, first_row, plan, opts, report, secret)
    report.counts = plan.counts()
    return plan


def _institution(
    p: Person, known: dict[str, str], plan: Plan, opts: Options, report: Report
) -> None:
    code = p.institution_code
    if code in known:
        return
    new = plan.new_institutions.get(code)
    if new is not None:
        if new["name"] != p.institution_name:
            report.add(p.row, "机构名称", f"与第{new['row']}行为同一机构代码，但机构名称不同")
        return
    region = p.region_code or opts.region or code[1:7]
    try:
        profile = profile_for_region(region)
    except UnknownRegion:
        report.add(
            p.row,
            "机构代码",
            "机构不存在，且其区划没有对应的地区政策配置：请先建立机构，或指定区划（region）",
        )
        return
    plan.new_institutions[code] = {
        "code": code,
        "name": p.institution_name,
        "region_code": region,
        "profile_id": profile.id,
        "row": p.row,
    }


def _department(
    p: Person,
    existing: set[tuple[str, str]],
    by_name: dict[tuple[str, str], list[str]],
    plan: Plan,
    report: Report,
) -> str | None:
    inst, cell = p.institution_code, p.department
    if subjects.looks_like_code(cell):
        code = codes.normalize(cell)
        if (inst, code) in existing or (inst, code) in plan.new_departments:
            return code
        name = p.department_name or subjects.NAME_OF_CODE.get(code)
        if name:
            plan.new_departments[(inst, code)] = name
            return code
        report.add(
            p.row, p.department_column, "本机构没有这个科室代码：请填写科室名称，或先建立科室"
        )
        return None
    named = by_name.get((inst, cell), [])
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        report.add(p.row, p.department_column, "本机构有多个同名科室：请填写科室代码")
        return None
    found = subjects.subject(cell)
    if found is None:
        report.add(
            p.row,
            p.department_column,
            "无法对应科室代码：请填写科室代码（如 A03）或诊疗科目名称（如 内科）",
        )
        return None
    code, name = found
    if (inst, code) not in existing:
        plan.new_departments.setdefault((inst, code), cell if cell != name else name)
    return code


async def _dated(
    conn: AsyncConnection,
    people: list[Person],
    department_of: dict[int, str],
    plan: Plan,
    opts: Options,
    report: Report,
    secret: str,
) -> None:
    """Registrations and agreements not on record yet (an open one at the same place counts)."""
    tokens = sorted(plan.practitioners)
    open_regs = {
        (t, i, d)
        for t, i, d in await _pairs(
            conn,
            select(
                registrations.c.practitioner_token,
                registrations.c.institution_code,
                registrations.c.department_code,
            ).where(
                any_of(registrations.c.practitioner_token, tokens),
                (registrations.c.end.is_(None)) | (registrations.c.end > opts.as_of),
            ),
        )
    }
    agrs = set(
        await _pairs(
            conn,
            select(
                agreements.c.practitioner_token,
                agreements.c.institution_code,
                agreements.c.start,
                agreements.c.end,
            ).where(any_of(agreements.c.practitioner_token, tokens)),
        )
    )
    seen: dict[tuple[str, str, str], int] = {}
    for p in people:
        dept = department_of.get(p.row)
        if dept is None:
            continue
        token = codes.practitioner_token(p.practitioner_code, secret)
        key = (token, p.institution_code, dept)
        if key in seen:
            report.add(p.row, "姓名", f"与第{seen[key]}行重复（同一人员、机构和科室）")
            continue
        seen[key] = p.row
        start = p.registered_from or opts.registered_from
        end = (
            p.registered_until if not p.left else min(p.registered_until or opts.as_of, opts.as_of)
        )
        if end is not None and end <= start:
            report.add(p.row, None, "执业截止日期早于执业起始日期（或人员已注销而合同尚未开始）")
            continue
        if key not in open_regs:
            plan.registrations.append(
                {
                    "practitioner_token": token,
                    "institution_code": p.institution_code,
                    "department_code": dept,
                    "start": start,
                    "end": end,
                }
            )
        if p.agreement is not None:
            a = (token, p.institution_code, *p.agreement)
            if a not in agrs:
                agrs.add(a)
                plan.agreements.append(
                    {
                        "practitioner_token": token,
                        "institution_code": p.institution_code,
                        "start": p.agreement[0],
                        "end": p.agreement[1],
                    }
                )


async def _balances(
    conn: AsyncConnection,
    people: list[Person],
    first_row: dict[str, Person],
    plan: Plan,
    opts: Options,
    report: Report,
    secret: str,
) -> None:
    """One opening balance per practitioner whose lines state points or a status that is not
    有效; lines of one practitioner must agree. A balance is refused where it would count
    twice: claimgate already holds violations of theirs dated on or before ``as_of``, or a
    different balance of the same day."""
    stated: dict[str, tuple[Any, ...]] = {}
    for p in people:
        if p.points is None and p.status is None:
            continue
        token = codes.practitioner_token(p.practitioner_code, secret)
        mine = (p.points or 0, p.status or "", p.status_since, p.status_until)
        if stated.setdefault(token, mine) != mine:
            report.add(
                p.row,
                "累计扣分",
                f"与第{first_row[token].row}行为同一人员，但累计扣分或服务状态不同",
            )
        if p.status_since is not None and p.status_since > opts.as_of:
            report.add(p.row, "状态起始日期", "晚于结转日（as_of）")
    wanted = {t: s for t, s in stated.items() if s[0] or s[1]}
    if not wanted:
        return
    earlier = {
        t
        for (t,) in await _pairs(
            conn,
            select(events.c.practitioner_token)
            .where(
                any_of(events.c.practitioner_token, sorted(wanted)),
                events.c.kind == "violation",
                events.c.occurred_on <= opts.as_of,
            )
            .distinct(),
        )
    }
    carried = {
        (t, p["as_of"]): p
        for t, p in await _pairs(
            conn,
            select(events.c.practitioner_token, events.c.payload).where(
                any_of(events.c.practitioner_token, sorted(wanted)),
                events.c.kind == "carried_over",
            ),
        )
    }
    for token, (points, status, since, until) in sorted(wanted.items()):
        p = first_row[token]
        if token in earlier:
            report.add(
                p.row,
                "累计扣分",
                "该人员在结转日及之前已有 claimgate 记录的违规：期初结转会重复计分",
            )
            continue
        payload = {
            "as_of": opts.as_of.isoformat(),
            "source": opts.source,
            "points": points,
            "status": status,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }
        prior = carried.get((token, opts.as_of.isoformat()))
        if prior is not None:
            if {k: prior.get(k) for k in payload if k != "source"} != {
                k: v for k, v in payload.items() if k != "source"
            }:
                report.add(p.row, "累计扣分", "该人员同一结转日已有不同的期初结转")
            continue
        plan.balances.append(
            LedgerEntry(
                "carried_over",
                payload,
                practitioner=token,
                institution=p.institution_code,
                occurred_on=opts.as_of,
            )
        )


async def apply(uow: UnitOfWork, plan: Plan, audit: Audit) -> dict[str, int]:
    """Write the plan; the committer recomputes everyone it names."""
    conn = uow.conn
    evs: list[LedgerEntry] = []
    if plan.new_institutions:
        rows = [{k: v for k, v in i.items() if k != "row"} for i in plan.new_institutions.values()]
        await conn.execute(insert(institutions).values(rows).on_conflict_do_nothing())
        evs += [LedgerEntry("institution_upserted", r, institution=r["code"]) for r in rows]
    if plan.new_departments:
        items = sorted(plan.new_departments.items())
        for n in range(0, len(items), 4000):
            await conn.execute(
                insert(departments)
                .values(
                    [
                        {"institution_code": i, "code": c, "name": nm}
                        for (i, c), nm in items[n : n + 4000]
                    ]
                )
                .on_conflict_do_nothing()
            )
        evs += [
            LedgerEntry("department_upserted", {"name": nm}, institution=i, department=c)
            for (i, c), nm in items
        ]
    evs += await upsert_practitioners(conn, list(plan.practitioners.values()))
    evs += await insert_dated(conn, registrations, plan.registrations, "registration_added")
    evs += await insert_dated(conn, agreements, plan.agreements, "agreement_added")
    evs += plan.balances
    await uow.record_many(evs, audit=audit)
    return plan.counts()
