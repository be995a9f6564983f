"""One finding the platform's way, and the record of what was answered.

A finding is one reason of a line's verdict (docs/contract.md). Rendered with the fields of the
platform's 3101 ``output.result`` (binzhe12123/Medical ``SY.Com.Medical.Model/SYB/YYJGFW/
SQMX3101.cs``: 规则ID ``rule_id``, 规则名称 ``rule_name``, 违规内容 ``vola_cont``, 严重程度
``sev_deg``, 违规依据 ``vola_evid``, 违规行为分类 ``vola_bhvr_type``, 违规金额 ``vola_amt``):

- ``rule_id`` the reason code, ``rule_name`` the regional rule it cites (the code's meaning
  where it cites none: an unknown code), ``vola_cont`` its message;
- ``sev_deg``: ``1`` (明确违规) for a blocking finding, ``3`` (轻度可疑) for one that is not —
  the platform's dictionary as HIS code reads it (oepnhisC/OpenHis-Web
  ``src/views/yibao/ShiQianFenXi.vue``: 1 明确违规, 2 高度可疑, 3 轻度可疑); claimgate never
  answers ``2``: a finding blocks or it does not;
- ``vola_evid`` the interval behind it, ``[from, to)``, and whether the emergency exemption
  lifted it; ``vola_bhvr_type`` whose status it is (institution, department, practitioner,
  emergency) — claimgate's own values, the platform's dictionary for this field not being
  public;
- ``vola_amt``: the order's or fee row's amount when the finding blocks (the fund would not pay
  it), else 0.

Every decision with findings is recorded (``national_findings``, off the hot path like
sanctioned attempts): what a clerk's disposition (3103) overrides, listed by
``GET /v1/admin/overrides``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from app.checks.lines import Line
from app.checks.reasons import REASONS, Reason
from app.checks.usecase import LineVerdict
from app.codes import practitioner_token
from app.db.buffered import BufferedRecorder
from app.db.tables import national_findings
from app.interfaces.national.envelope import Amount, decimal

CENT = Decimal("0.01")


def money(v: Amount | None) -> float:
    return float(decimal(v).quantize(CENT)) if v is not None else 0.0


def _subject(code: str) -> str:
    for prefix in ("INSTITUTION", "DEPARTMENT", "EMERGENCY"):
        if code.startswith(prefix + "_"):
            return prefix.lower()
    return "practitioner"


def _evidence(reason: Reason) -> str:
    parts = []
    if "from" in reason:
        parts.append(f"[{reason['from']}, {reason.get('to') or '…'})")
    if reason.get("exempted"):
        parts.append("exempted: emergency (急诊/抢救)")
    return "; ".join(parts)


def finding(reason: Reason, amount: Amount | None) -> dict[str, Any]:
    code = reason["code"]
    return {
        "rule_id": code,
        "rule_name": reason.get("rule") or REASONS.get(code, code),
        "vola_cont": reason["message"],
        "sev_deg": "1" if reason["blocking"] else "3",
        "vola_evid": _evidence(reason),
        "vola_bhvr_type": _subject(code),
        "vola_amt": money(amount) if reason["blocking"] else 0.0,
    }


class FindingRecorder(BufferedRecorder):
    table = national_findings
    label = "national-finding"

    def note(self, infno: str, line: Line, verdict: LineVerdict, claim_ref: str | None) -> None:
        """A decision answered in the platform's shape; kept only when it found something.
        ``line`` carries the institution as judged (an alias resolved)."""
        if not verdict.reasons:
            return
        self._append(
            {
                "at": datetime.now(UTC),
                "decision_id": verdict.decision_id,
                "infno": infno,
                "institution_code": line.institution,
                "department_code": line.department,
                "practitioner_token": practitioner_token(line.practitioner, self.pii_secret),
                "service_date": date.fromisoformat(line.day),
                "emergency": line.emergency,
                "reasons": [r["code"] for r in verdict.reasons],
                "blocking": verdict.decision == "deny",
                "claim_ref": claim_ref,
            }
        )
