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
from tests import national_payloads as n

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
    """A 3101 as public HIS code builds it (the builders of tests/national_payloads.py, which
    name their sources), one encounter whose orders are the group's lines."""
    inst, first = group[0]["institution_code"], group[0]
    orders = [
        n.order(
            f"RX{k:05d}{i:02d}",
            rxno=f"CF{k:05d}",
            grpno=str(i),
            drord_begn_date=f"{ln['service_date']} 09:46:47",
            drord_dept_codg=ln["department_code"],
            drord_dr_codg=ln["practitioner_code"],
        )
        for i, ln in enumerate(group)
    ]
    encounter = n.encounter(
        orders,
        mdtrt_id=f"MZ{k:08d}",
        medins_id=inst,
        medins_admdvs=inst[1:7],
        adm_date=f"{first['service_date']} 09:40:00",
        dscg_date=f"{first['service_date']} 09:40:00",
        dr_codg=first["practitioner_code"],
        adm_dept_codg=first["department_code"],
        med_type="11",
    )
    return n.review(
        "3101",
        [encounter],
        fixmedins_code=inst,
        msgid=f"{inst}20261123093000{k % 10_000:04d}",
        mdtrtarea_admvs=inst[1:7],
        insuplc_admdvs=inst[1:7],
    )


def bodies(data: Dataset, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(3101 messages, batch bodies of the same lines), ``count`` of each."""
    groups = _groups(data, count)
    return (
        [_message(g, k) for k, g in enumerate(groups)],
        [{"checks": g} for g in groups],
    )
