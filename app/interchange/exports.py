"""The roster in the layout of 附件1 (威海市医保医师基础信息库) and the credit file in that of
附件2 (诚信档案库), for an institution, a region or one practitioner.

The masking rule: an ID number leaves claimgate only as its mask (``3710**********001X``),
whatever the key's role. claimgate keeps no ID number in clear — only a keyed hash to find a
person by it, and the mask to show — so no export could carry one, and none pretends to.
Names are shown (agency keys only read these routes). Phone numbers are never kept: 联系电话
stays empty.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.admin.lookups import require_practitioner
from app.db.any_of import any_of
from app.db.tables import events, practitioners, registrations
from app.interchange import roster
from app.interchange.writers import Cell

ANNEX1 = (
    "序号",
    "执业定点医疗机构代码",
    "执业定点医疗机构名称",
    "姓名",
    "性别",
    "身份证号码",
    "医师类别或其他卫生技术人员类别",
    "行政职务",
    "职称",
    "执业科别",
    "资格证书编码",
    "执业证书编码",
    "联系电话",
    "累计扣分",
    "服务状态(0有效、1暂停、2解除)",
    "备注",
    "医保人员代码",
)
ANNEX2 = (
    *ANNEX1[:13],
    "违规类别",
    "违规行为描述",
    "单次扣分",
    "累计扣分",
    "服务状态(0有效、1暂停、2解除)",
    "备注",
    "违规日期",
    "条款",
    "计分依据",
    "申诉结果",
    "医保人员代码",
)


def _person_cells(line: dict[str, Any]) -> list[Cell]:
    a = line["attributes"]
    return [
        line["institution_code"],
        line["institution_name"],
        line["name"],
        a.get("sex"),
        line["id_number"],
        roster.CATEGORY_NUMBER.get(line["category"]),
        a.get("post"),
        a.get("title"),
        line["department_name"],
        a.get("qualification_no"),
        a.get("licence_no"),
        None,  # 联系电话: never kept
    ]


def _state(status: str) -> int:
    return roster.SERVICE_STATE.get(status, 0)


async def roster_rows(conn: AsyncConnection, f: roster.Filters) -> list[list[Cell]]:
    """附件1 lines, one per registration in force on ``f.on``, numbered from 1."""
    lines = await roster.lines(conn, f)
    return [
        [
            n,
            *_person_cells(line),
            line["points"],
            _state(line["status"]),
            line["attributes"].get("note"),
            line["practitioner_code"],
        ]
        for n, line in enumerate(lines, 1)
    ]


async def credit_rows(
    conn: AsyncConnection,
    on: dt.date,
    *,
    institution: str | None = None,
    practitioner: str | None = None,
    secret: str = "",
) -> list[list[Cell]]:
    """附件2 lines: each violation (and each opening balance, 违规类别 "期初结转"), oldest
    first, with the running total of its scoring period and the status on ``on``."""
    f = roster.Filters(on=on, institution=institution)
    token = None
    if practitioner is not None:
        token = await require_practitioner(conn, practitioner, secret, "query.practitioner_code")
    people = await _people(conn, f, token)
    if not people:
        return []
    q = (
        select(
            events.c.practitioner_token,
            events.c.kind,
            events.c.institution_code,
            events.c.payload,
        )
        .where(
            any_of(events.c.practitioner_token, sorted(people)),
            events.c.kind.in_(("violation", "appeal", "carried_over")),
        )
        .order_by(events.c.id)
    )
    appeals: dict[str, str] = {}
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for tok, kind, inst, p in await conn.execute(q):
        if kind == "appeal":
            appeals[p["violation"]] = p["outcome"]
        elif institution is None or inst == institution:
            found.append((tok, kind, inst, p))
    found.sort(key=lambda x: (x[0], x[3].get("date") or x[3]["as_of"], x[1] != "carried_over"))
    running: dict[tuple[str, str], int] = defaultdict(int)
    out: list[list[Cell]] = []
    for tok, kind, inst, p in found:
        line = people[tok].get(inst) or next(iter(people[tok].values()))
        day = p.get("date") or p["as_of"]
        period = (tok, day[:4])  # the natural year; agreement periods show the year too
        if kind == "carried_over":
            running[period] += int(p["points"])
            cells: list[Cell] = [
                "期初结转",
                f"carried over from {p['source']} as of {p['as_of']}",
                int(p["points"]),
            ]
            tail: list[Cell] = [p["as_of"], None, "carried_over", None]
        else:
            upheld = appeals.get(p["id"]) == "upheld"
            if not upheld:
                running[period] += int(p["points"])
            cells = [
                p.get("item") or p.get("act") or "",
                p.get("description") or p.get("act") or "",
                int(p["points"]),
            ]
            tail = [day, p.get("article"), p.get("basis", "legacy"), appeals.get(p["id"])]
        out.append(
            [
                len(out) + 1,
                *_person_cells(line),
                *cells,
                running[period],
                _state(line["status"]),
                line["attributes"].get("note"),
                *tail,
                line["practitioner_code"],
            ]
        )
    return out


async def _people(
    conn: AsyncConnection, f: roster.Filters, token: str | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """token → institution → roster line (the registration in force, else the latest)."""
    q = select(registrations.c.practitioner_token, registrations.c.institution_code)
    if token is not None:
        q = q.where(registrations.c.practitioner_token == token)
    if f.institution is not None:
        q = q.where(registrations.c.institution_code == f.institution)
    tokens = sorted({t for t, _ in await conn.execute(q)})
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for line in await roster.lines(conn, f):
        out[line["token"]][line["institution_code"]] = line
    rows = await conn.execute(
        select(
            practitioners.c.token,
            practitioners.c.display_code,
            practitioners.c.name,
            practitioners.c.category,
            practitioners.c.id_masked,
            practitioners.c.attributes,
        ).where(any_of(practitioners.c.token, tokens))
    )
    for r in rows:
        if r.token in out:
            continue
        # not registered anywhere on the day: their file still lists them, status unknown
        out[r.token][""] = {
            "institution_code": None,
            "institution_name": None,
            "name": r.name,
            "category": r.category,
            "id_number": r.id_masked,
            "attributes": dict(r.attributes or {}),
            "department_name": None,
            "status": "active",
            "practitioner_code": r.display_code,
        }
    return {t: v for t, v in out.items() if t in tokens}
