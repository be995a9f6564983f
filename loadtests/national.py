"""The national interface's scenario: a 3101 of one patient, one encounter and 20 orders, against
a ``POST /v1/checks/batch`` of the same 20 lines (docs/performance.md, "The national interface").

Both bodies are built from the same lines, grouped by institution (one 3101 message names one
institution), without emergencies (an encounter has one 医疗类别 for all its orders), so the two
scenarios judge exactly the same lines and their ratio is the price of the envelope: reading
it, rendering the platform's answer, noting the findings.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from loadtests.dataset import Dataset

ORDERS = 20


def _groups(data: Dataset, count: int) -> list[list[dict[str, Any]]]:
    """``count`` groups of ``ORDERS`` lines, each group one institution's (traffic-weighted)."""
    lines = data.check_lines(ORDERS * count * 4, seed=2204)
    by_inst: dict[str, list[dict[str, Any]]] = defaultdict(list)
    groups = []
    for ln in lines:
        ln.pop("emergency", None)
        bucket = by_inst[ln["institution_code"]]
        bucket.append(ln)
        if len(bucket) == ORDERS:
            groups.append(list(bucket))
            bucket.clear()
            if len(groups) == count:
                break
    return groups


def _message(group: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """A 3101 as public HIS code builds it (tests/national_payloads.py names the sources)."""
    inst = group[0]["institution_code"]
    orders = [
        {
            "rx_id": f"RX{k:05d}{i:02d}",
            "rxno": f"CF{k:05d}",
            "grpno": str(i),
            "long_drord_flag": "0",
            "hilist_type": "101",
            "chrg_type": "09",
            "drord_bhvr": "0",
            "hilist_code": "86901201000526",
            "hilist_name": "氯化钠注射液",
            "hilist_lv": "01",
            "hilist_pric": "1.50",
            "hosplist_code": "10512",
            "hosplist_name": "氯化钠注射液",
            "cnt": "1.00",
            "pric": "1.5000",
            "sumamt": "1.50",
            "ownpay_amt": "0",
            "selfpay_amt": "0",
            "spec": "250ml",
            "spec_unt": "瓶",
            "drord_begn_date": f"{ln['service_date']} 09:46:47",
            "drord_stop_date": "",
            "drord_dept_codg": ln["department_code"],
            "drord_dept_name": "科室",
            "drord_dr_codg": ln["practitioner_code"],
            "drord_dr_name": "医师",
            "drord_dr_profttl": "2",
            "curr_drord_flag": "1",
        }
        for i, ln in enumerate(group)
    ]
    encounter = {
        "fsi_diagnose_dtos": [],
        "fsi_order_dtos": orders,
        "fsi_operation_dtos": [],
        "mdtrt_id": f"MZ{k:08d}",
        "medins_id": inst,
        "medins_name": "压测医院",
        "medins_admdvs": inst[1:7],
        "medins_type": "A1",
        "medins_lv": "05",
        "adm_date": f"{group[0]['service_date']} 09:40:00",
        "dscg_date": f"{group[0]['service_date']} 09:40:00",
        "dr_codg": group[0]["practitioner_code"],
        "adm_dept_codg": group[0]["department_code"],
        "med_mdtrt_type": "1",
        "med_type": "11",
        "matn_stas": "0",
        "insutype": "310",
        "reim_flag": "1",
        "out_setl_flag": "2",
    }
    patient = {
        "fsi_encounter_dtos": [encounter],
        "patn_id": f"BR{k:07d}",
        "patn_name": "患者",
        "gend": "1",
        "brdy": "1980-01-01",
        "poolarea": inst[1:7],
        "curr_mdtrt_id": f"MZ{k:08d}",
    }
    return {
        "infno": "3101",
        "msgid": f"{inst}20261123093000{k % 10_000:04d}",
        "mdtrtarea_admvs": inst[1:7],
        "insuplc_admdvs": inst[1:7],
        "recer_sys_code": "HIS",
        "dev_no": "",
        "dev_safe_info": "",
        "cainfo": "",
        "signtype": "",
        "infver": "V1.0",
        "opter_type": "2",
        "opter": "1001",
        "opter_name": "收费员",
        "inf_time": "2026-11-23 09:30:00",
        "fixmedins_code": inst,
        "fixmedins_name": "压测医院",
        "sign_no": "",
        "input": {"data": {"patient_dtos": [patient], "task_id": f"T{k}", "trig_scen": "2"}},
    }


def bodies(data: Dataset, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(3101 messages, batch bodies of the same lines), ``count`` of each."""
    groups = _groups(data, count)
    return (
        [_message(g, k) for k, g in enumerate(groups)],
        [{"checks": g} for g in groups],
    )
