"""The decision itself: documents + service date in, decision and reasons out. Pure and cheap.

Dates are ISO strings throughout (``YYYY-MM-DD``), compared as strings: ISO order is date order,
so a check is lookups and string comparisons, no parsing. The documents' shapes are named in
app.cache.shapes (built by app.projection.docs).
"""

from __future__ import annotations

from app.cache.shapes import (
    AGR_FROM,
    AGR_TO,
    EXEMPT,
    FROM,
    MESSAGE,
    REG_DEPARTMENT,
    REG_FROM,
    REG_TO,
    RULE,
    STATUS,
    TO,
    DepartmentDoc,
    InstitutionDoc,
    IntervalRow,
    ViewDoc,
)
from app.checks.reasons import INSTITUTION_STATUS_REASON, STATUS_REASON, Reason


def _covers(start: str, end: str | None, day: str) -> bool:
    return start <= day and (end is None or day < end)


def _reason(code: str, blocking: bool, iv: IntervalRow | None = None, message: str = "") -> Reason:
    if iv is None:
        return {"code": code, "blocking": blocking, "message": message}
    return {
        "code": code,
        "blocking": blocking,
        "from": iv[FROM],
        "to": iv[TO],
        "rule": iv[RULE],
        "message": iv[MESSAGE],
    }


def _intervals(
    out: list[Reason],
    intervals: list[IntervalRow],
    codes: dict[str, str],
    day: str,
    emergency: bool,
) -> bool:
    """Append a reason per interval covering ``day``; return whether any was exempted."""
    exempted = False
    for iv in intervals:
        if _covers(iv[FROM], iv[TO], day):
            code = codes.get(iv[STATUS])
            if code is None:
                continue
            if emergency and iv[EXEMPT]:
                r = _reason(code, False, iv)
                r["exempted"] = True
                exempted = True
            else:
                r = _reason(code, True, iv)
            out.append(r)
    return exempted


def resolve_department(inst: InstitutionDoc, department: str) -> tuple[str, DepartmentDoc | None]:
    """The department a code names, and its document (None: unknown). A real department code
    names itself, before any alias: an alias stored under a real code (refused since
    app.admin.aliases, but data may predate that) must never hide that department's status."""
    dept = inst["d"].get(department)
    if dept is not None or "da" not in inst:
        return department, dept
    code = inst["da"].get(department, department)
    return code, inst["d"].get(code)


def decide(
    inst: InstitutionDoc | None,
    department: str,
    view: ViewDoc | None,
    known: bool,
    day: str,
    emergency: bool,
) -> tuple[bool, list[Reason]]:
    """Return (allowed, reasons). Every finding is returned, blocking or not."""
    if inst is None:
        return False, [_reason("INSTITUTION_UNKNOWN", True, message="机构编码未登记为定点医药机构")]
    out: list[Reason] = []
    exempted = _intervals(out, inst["s"], INSTITUTION_STATUS_REASON, day, emergency)

    dept_code, dept = resolve_department(inst, department)
    if dept is None:
        # The message never repeats the code: what a HIS sent may be anything, an ID number too.
        out.append(_reason("DEPARTMENT_UNKNOWN", True, message="科室编码未在本机构登记"))
    else:
        exempted |= _intervals(
            out, dept["s"], {"suspended": "DEPARTMENT_SUSPENDED"}, day, emergency
        )

    if view is None:
        if known:
            exempted |= _unregistered(out, inst, emergency)
        else:
            out.append(_reason("PRACTITIONER_UNKNOWN", True, message="医保医师代码未登记"))
    else:
        exempted |= _practitioner(out, inst, view, dept_code, day, emergency)

    if exempted:
        out.append(
            _reason(
                "EMERGENCY_EXEMPTION_APPLIED",
                False,
                message="急诊抢救：按本统筹区规定，标注为豁免的限制不阻止结算",
            )
        )
    return not any(r["blocking"] for r in out), out


def _unregistered(out: list[Reason], inst: InstitutionDoc, emergency: bool) -> bool:
    exempt = emergency and bool(inst["ee"])
    r = _reason(
        "PRACTITIONER_NOT_REGISTERED", not exempt, message="该医师在服务日期未在本机构执业登记"
    )
    if exempt:
        r["exempted"] = True
    out.append(r)
    return exempt


def _practitioner(
    out: list[Reason],
    inst: InstitutionDoc,
    view: ViewDoc,
    dept_code: str,
    day: str,
    emergency: bool,
) -> bool:
    exempted = False
    regs = [r for r in view["r"] if _covers(r[REG_FROM], r[REG_TO], day)]
    if not regs:
        exempted |= _unregistered(out, inst, emergency)
    elif not any(r[REG_DEPARTMENT] == dept_code for r in regs):
        out.append(
            _reason(
                "PRACTITIONER_OTHER_DEPARTMENT",
                False,
                message="该医师登记在本机构其他科室：" + "、".join(r[REG_DEPARTMENT] for r in regs),
            )
        )

    if inst["ar"] and not any(_covers(a[AGR_FROM], a[AGR_TO], day) for a in view["a"]):
        expired = any(a[AGR_TO] is not None and a[AGR_TO] <= day for a in view["a"])
        code = "AGREEMENT_EXPIRED" if expired else "AGREEMENT_MISSING"
        exempt = emergency and bool(inst["ee"])
        r = _reason(
            code, not exempt, message="服务协议已到期" if expired else "服务日期无有效服务协议"
        )
        if exempt:
            r["exempted"] = True
            exempted = True
        out.append(r)

    exempted |= _intervals(out, view["s"], STATUS_REASON, day, emergency)
    for iv in view["w"]:
        if _covers(iv[FROM], iv[TO], day):
            out.append(_reason("PRACTITIONER_WARNED", False, iv))
    return exempted
