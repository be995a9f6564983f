"""Stable reason codes of a check answer, and the shape of a reason. They are part of the
contract (docs/contract.md): never rename one."""

from __future__ import annotations

from typing import NotRequired, TypedDict

# One finding of a check, as the answer carries it. "from" is a keyword, hence this spelling.
Reason = TypedDict(
    "Reason",
    {
        "code": str,  # one of REASONS
        "blocking": bool,
        "message": str,
        "from": NotRequired[str],  # the interval behind the finding, where there is one
        "to": NotRequired[str | None],
        "rule": NotRequired[str],  # the regional rule cited
        "exempted": NotRequired[bool],  # lifted by the emergency exemption
    },
)

REASONS: dict[str, str] = {
    "INSTITUTION_UNKNOWN": "the institution code is not a 定点医药机构 known to the agency",
    "INSTITUTION_SUSPENDED": "the institution's own agreement is suspended on the service date",
    "INSTITUTION_TERMINATED": "the institution's own agreement is terminated",
    "DEPARTMENT_UNKNOWN": "the department (or its local alias) is not registered at the institution",
    "DEPARTMENT_SUSPENDED": "the department's settlement is suspended on the service date",
    "PRACTITIONER_UNKNOWN": "no practitioner with this code (nor an alias of it) is known",
    "PRACTITIONER_NOT_REGISTERED": "the practitioner is not registered at this institution on the service date",
    "PRACTITIONER_OTHER_DEPARTMENT": "registered at the institution, but in another department (non-blocking)",
    "AGREEMENT_MISSING": "no service agreement at this institution covers the service date",
    "AGREEMENT_EXPIRED": "the service agreement at this institution ended before the service date",
    "PRACTITIONER_SUSPENDED": "the practitioner's agreement / payment eligibility is suspended (暂停/中止)",
    "PRACTITIONER_TERMINATED": "the practitioner's agreement is terminated (解除/终止/取消)",
    "CODE_LOCKED": "the practitioner's code is locked (封锁) at this institution",
    "CODE_CANCELLED": "the practitioner's code is cancelled (注销)",
    "PRACTITIONER_WARNED": "the practitioner is under a warning or 约谈 (non-blocking)",
    "EMERGENCY_EXEMPTION_APPLIED": "emergency (急诊/抢救): the region exempts the findings marked exempted",
}

STATUS_REASON = {
    "suspended": "PRACTITIONER_SUSPENDED",
    "terminated": "PRACTITIONER_TERMINATED",
    "code_locked": "CODE_LOCKED",
    "code_cancelled": "CODE_CANCELLED",
}

INSTITUTION_STATUS_REASON = {
    "suspended": "INSTITUTION_SUSPENDED",
    "terminated": "INSTITUTION_TERMINATED",
}
