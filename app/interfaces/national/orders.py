"""3101 明细审核事前分析服务 / 3102 事中分析服务: orders in, findings out.

``input.data`` (binzhe12123/Medical ``SY.Com.Medical.Model/SYB/YYJGFW/SQMX3101.cs``, built so by
oepnhisC/OpenHIS-Server ``api/yibaofuzhu/shiqianfenxiAPI.py``): ``syscode``, ``rule_ids``,
``task_id``, ``trig_scen``, ``patient_dtos[]`` → ``patn_id``, …, ``fsi_encounter_dtos[]`` →
``mdtrt_id``, ``medins_id``, ``dr_codg`` (医师标识), ``adm_dept_codg`` (入院科室标识),
``adm_date``, ``med_type`` (医疗类别), …, ``fsi_order_dtos[]`` → ``rx_id`` (处方(医嘱)标识),
``drord_begn_date`` (医嘱开始日期), ``drord_dept_codg`` (下达医嘱的科室标识), ``drord_dr_codg``
(开处方(医嘱)医生标识), ``sumamt``, ….

Each order is one check line:

- institution: the envelope's ``fixmedins_code`` (定点医药机构编号, the sender); the encounter's
  ``medins_id`` only when the envelope carries none — so a ``his`` key cannot reach past its
  own institution through an encounter;
- practitioner: ``drord_dr_codg``, else the encounter's ``dr_codg``;
- department: ``drord_dept_codg``, else the encounter's ``adm_dept_codg``;
- service date: the date of ``drord_begn_date``, else of ``adm_date``;
- emergency: the encounter's ``med_type`` is an emergency code (app.interfaces.national.medtypes).

The answer's ``output.result[]`` holds one entry per finding (app.interfaces.national.findings),
with the platform's 3101 output fields: ``jr_id`` (the order's decision id, which 3103's
``warn_rslt_id`` names; the findings of one order share it), ``patn_id``, ``mdtrt_id``,
``task_id`` and ``judge_result_detail_dtos[]`` naming the order (``jrd_id`` = the decision id,
``-`` and the finding's number). An order with no entry may be paid.
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


def _missing(at: str, key: str, encounter_key: str) -> e.Refused:
    return e.invalid(at + key, f"is required when the encounter gives no {encounter_key}")


def read(env: e.Envelope, emergency: frozenset[str], limit: int) -> tuple[list[Item], str]:
    """The request's orders as items, in order, and its ``task_id`` ("" when none)."""
    data = env.data
    task_id = e.text(data, "task_id", env.data_at, required=False) or ""
    items: list[Item] = []
    for pi, patient in enumerate(e.objects(data, "patient_dtos", env.data_at, limit=limit)):
        pat = f"{env.data_at}patient_dtos.{pi}."
        patn_id = e.text(patient, "patn_id", pat)
        encounters = e.objects(patient, "fsi_encounter_dtos", pat, limit=limit)
        for ei, enc in enumerate(encounters):
            at = f"{pat}fsi_encounter_dtos.{ei}."
            items += _encounter(env, enc, at, patn_id, emergency)
            if len(items) > limit:
                raise too_many(limit, at + "fsi_order_dtos")
    return items, task_id


def _encounter(
    env: e.Envelope, enc: dict[str, Any], at: str, patn_id: str, emergency: frozenset[str]
) -> list[Item]:
    mdtrt_id = e.text(enc, "mdtrt_id", at)
    med_type = e.code(enc, "med_type", at, valid=medtypes.valid)
    inst, inst_field = env.fixmedins_code, "fixmedins_code"
    if inst is None:
        inst = e.code(enc, "medins_id", at)
        inst_field = at + "medins_id"
    dr = e.code(enc, "dr_codg", at, required=False)
    dept = e.code(enc, "adm_dept_codg", at, required=False)
    adm = e.day(enc, "adm_date", at, required=False)
    urgent = med_type in emergency
    out = []
    for oi, order in enumerate(e.objects(enc, "fsi_order_dtos", at, limit=10**6)):
        oa = f"{at}fsi_order_dtos.{oi}."
        rx_id = e.text(order, "rx_id", oa)
        practitioner = e.code(order, "drord_dr_codg", oa, required=False) or dr
        department = e.code(order, "drord_dept_codg", oa, required=False) or dept
        day = e.day(order, "drord_begn_date", oa, required=False) or adm
        if practitioner is None:
            raise _missing(oa, "drord_dr_codg", "dr_codg")
        if department is None:
            raise _missing(oa, "drord_dept_codg", "adm_dept_codg")
        if day is None:
            raise _missing(oa, "drord_begn_date", "adm_date")
        line = Line(inst, department, practitioner, day, urgent, rx_id)
        refs = {"patn_id": patn_id, "mdtrt_id": mdtrt_id, "rx_id": rx_id}
        out.append(new_entry(Item, (line, inst_field, refs, e.amount(order, "sumamt", oa))))
    return out


def render(items: list[Item], verdicts: Verdicts, task_id: str) -> dict[str, Any]:
    result = []
    for item, v in zip(items, verdicts.lines, strict=True):
        refs = item.refs
        for n, reason in enumerate(v.reasons, 1):
            f = finding(reason, item.amount)
            result.append(
                {
                    "jr_id": v.decision_id,
                    **f,
                    "patn_id": refs["patn_id"],
                    "mdtrt_id": refs["mdtrt_id"],
                    "task_id": task_id,
                    "judge_result_detail_dtos": [
                        {
                            "jrd_id": f"{v.decision_id}-{n}",
                            "patn_id": refs["patn_id"],
                            "mdtrt_id": refs["mdtrt_id"],
                            "rx_id": refs["rx_id"],
                            "vola_item_type": "order",
                            "vola_amt": f["vola_amt"],
                        }
                    ],
                }
            )
    return {"result": result}
