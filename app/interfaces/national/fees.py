"""2204 门诊费用明细上传 / 2301 住院费用明细上传, pre-checked: the very rows a HIS is about to
upload, an answer per row.

``input.data.feedetail[]`` (binzhe12123/Medical ``SY.Com.Medical.Model/SYB/YBJS/ZJ2204.cs``):
``feedetl_sn`` (费用明细流水号, unique within a visit), ``mdtrt_id``, ``psn_no``,
``fee_ocur_time`` (费用发生时间), ``med_list_codg``, ``det_item_fee_sumamt``, ``cnt``, ``pric``,
``bilg_dept_codg`` (开单科室编码), ``bilg_dr_codg`` (开单医生编码), …. The rows are read where the
upload itself carries them, ``input.feedetail``, or under ``input.data`` like every other shape.

Each row is one check line: institution the envelope's ``fixmedins_code``; department
``bilg_dept_codg``; practitioner ``bilg_dr_codg``; service date the date of ``fee_ocur_time``.
A row is an emergency when its ``med_type`` is one (regional forms carry 医疗类别 on every row:
liutao2019/IBORN_HIS_ALL ``MEDICAL/顺德医保/佛山新医保接口/API.GZSI/Models/Request/
RequestGzsiModel2301.cs``, "医疗类别 Y"); the national 2204 row has none, and a row without one
is not an emergency — an emergency visit's fees are then best checked with 3101/3102, whose
encounter carries it.
``psn_no`` (人员编号) is not read: it may embed an ID number.

The answer's ``output.result[]`` holds one entry per row, in order, keyed by ``feedetl_sn`` as
the platform answers 2204: ``jr_id`` (the row's decision id), ``sev_deg`` (``1`` when a finding
blocks, ``3`` when there are only others, ``""`` when none), ``memo`` (the findings' messages,
as the platform's 2204 ``memo`` carries a row's errors) and ``vola_dtos[]``, one per finding
(app.interfaces.national.findings). A row with no finding may be paid. ``output.voladetail[]``
repeats each finding as the regional 2204 answers list violations (违规信息明细: ``mdtrt_id``,
``med_list_codg``, ``vola_type``, ``vola_dscr``; liutao2019/IBORN_HIS_ALL
``MEDICAL/广州医保/API.GZSI/Models/Voladetail.cs``), with ``feedetl_sn`` and ``sev_deg``, so a HIS
that already reads those reads ours.
"""

from __future__ import annotations

from typing import Any

from app.cache.shapes import new_entry
from app.checks.lines import Line
from app.checks.usecase import Verdicts
from app.interfaces.national import envelope as e
from app.interfaces.national import medtypes
from app.interfaces.national.findings import finding
from app.interfaces.national.items import Item, too_many


def read(env: e.Envelope, emergency: frozenset[str], limit: int) -> list[Item]:
    inst = env.fixmedins_code
    if inst is None:
        raise e.invalid("fixmedins_code", "is required")
    rows = e.objects(env.data, "feedetail", env.data_at, limit=10**6)
    if len(rows) > limit:
        raise too_many(limit, env.data_at + "feedetail")
    seen: set[tuple[str, str]] = set()
    items = []
    for i, row in enumerate(rows):
        at = f"{env.data_at}feedetail.{i}."
        sn = e.text(row, "feedetl_sn", at)
        mdtrt_id = e.text(row, "mdtrt_id", at)
        if (mdtrt_id, sn) in seen:
            raise e.invalid(at + "feedetl_sn", "is given twice for the visit; each row once")
        seen.add((mdtrt_id, sn))
        day = e.day(row, "fee_ocur_time", at)
        dept = e.code(row, "bilg_dept_codg", at)
        dr = e.code(row, "bilg_dr_codg", at)
        med_type = e.code(row, "med_type", at, required=False, valid=medtypes.valid)
        line = Line(inst, dept, dr, day, med_type in emergency, sn)
        refs = {"feedetl_sn": sn, "mdtrt_id": mdtrt_id}
        if (listed := e.text(row, "med_list_codg", at, required=False)) is not None:
            refs["med_list_codg"] = listed
        items.append(
            new_entry(
                Item, (line, "fixmedins_code", refs, e.amount(row, "det_item_fee_sumamt", at))
            )
        )
    return items


def render(items: list[Item], verdicts: Verdicts) -> dict[str, Any]:
    result, detail = [], []
    for item, v in zip(items, verdicts.lines, strict=True):
        refs = item.refs
        found = [finding(r, item.amount) for r in v.reasons]
        sev = "1" if v.decision == "deny" else ("3" if found else "")
        result.append(
            {
                "feedetl_sn": refs["feedetl_sn"],
                "mdtrt_id": refs["mdtrt_id"],
                "jr_id": v.decision_id,
                "sev_deg": sev,
                "memo": "；".join(f["vola_cont"] for f in found),
                "vola_dtos": found,
            }
        )
        detail += [
            {
                "mdtrt_id": refs["mdtrt_id"],
                "feedetl_sn": refs["feedetl_sn"],
                "med_list_codg": refs.get("med_list_codg", ""),
                "vola_type": f["rule_id"],
                "vola_dscr": f["vola_cont"],
                "sev_deg": f["sev_deg"],
            }
            for f in found
        ]
    return {"result": result, "voladetail": detail}
