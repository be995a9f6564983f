"""医疗类别 (``med_type``): which visits are emergencies (急诊/抢救), for the regional emergency
exemption (docs/contract.md: ``emergency``).

The national dictionary, as HIS code written against the platform enumerates it (two code
bases found by their exact strings, e.g. ``TYPE_06("13", "急诊")`` / ``EMERGENCY(13,"13",
"急诊")``, and oepnhisC/OpenHIS-Server ``api/yibaofuzhu/shiqianfenxiAPI.py``, "11普通门诊
14门诊慢特病 21普通住院"): 11 普通门诊, 12 门诊挂号, 13 急诊, 14 门诊慢特病, 21 普通住院,
22 外伤住院, 23 转外诊治住院, 24 急诊转住院, 26 单病种住院, 51 生育门诊, 52 生育住院,
53 计划生育手术费; provinces extend it with longer codes (140104 门诊慢病, 2114 舒缓疗护住院,
990404 门诊特检特治). An emergency is 13 急诊 and 24 急诊转住院 (an inpatient stay that began
as an emergency: its orders are judged as emergency care).

Not to be confused with the pre-platform regional schemes some HIS still carry (Shanghai's old
S12 急诊 and S24 急诊观察, gfz1103/yb ``src/main/java/com/buit/his/shyb/source/enums/
MedicalCategoryEnum.java``; elsewhere 14 急诊抢救, 25 急诊转住院): a HIS speaking the national
interface sends the national codes. A region whose own codes mark emergencies too lists them in
``CLAIMGATE_NATIONAL_EMERGENCY_MED_TYPES`` (docs/operations.md).
"""

from __future__ import annotations

import re

EMERGENCY_DEFAULT = "13,24"
_CODE = re.compile(r"[0-9]{2,6}").fullmatch


def emergency_codes(setting: str) -> frozenset[str]:
    """The setting's comma-separated codes; ValueError for anything else."""
    out = frozenset(c.strip() for c in setting.split(","))
    if not out or not all(_CODE(c) for c in out):
        raise ValueError("must be 医疗类别 codes of 2-6 digits, comma separated, e.g. 13,24")
    return out


def valid(code: str) -> bool:
    """A 医疗类别 code: 2 to 6 digits (the national codes and their regional extensions)."""
    return _CODE(code) is not None
