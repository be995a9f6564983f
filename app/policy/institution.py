"""``evaluate_institution``: an institution's and its departments' timelines and notices.

Institution intervals apply to every check at that institution, so the sanctions that follow
an institution's own status (济宁 §三(四), 舟山 §十五: its practitioners' agreements are
suspended or terminated with it) are expressed here, once, plus a notice — never copied into
practitioner outcomes. The automatic rules live in :mod:`app.policy.institution_rules`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from app.policy import ledger, messages
from app.policy.events import Event, Registration
from app.policy.institution_rules import institution_rules
from app.policy.manual import manual_rule
from app.policy.outcomes import (
    DepartmentOutcome,
    InstitutionOutcome,
    Interval,
    Notice,
    PractitionerOutcome,
    Status,
)
from app.policy.practitioner import interval_key, notice_key
from app.policy.profile import Profile
from app.policy.staff import StaffCounts
from app.policy.workdays import WorkingCalendar


def evaluate_institution(
    profile: Profile,
    code: str,
    events: Sequence[Event],
    practitioners: Mapping[str, PractitionerOutcome],
    categories: Mapping[str, str],
    calendar: WorkingCalendar,
    as_of: dt.date | None = None,
    staff: StaffCounts | None = None,
) -> tuple[InstitutionOutcome, dict[str, DepartmentOutcome]]:
    """The institution ``code`` and each of its departments that has an interval or notice.

    ``events``: the institution's and its departments' actions, the registrations and
    violations at it (appeals may be included; outcomes in ``practitioners`` already reflect
    them). ``categories``: practitioner code -> doctor / nurse / pharmacist / technician / carer.

    ``staff``: how many are registered here on a day (:class:`~app.policy.staff.StaffCounts`).
    Without it, every registration at the institution must be among ``events`` and counted
    here; with it, ``events``' registrations, ``practitioners`` and ``categories`` may be
    limited to the practitioners the rules read (see
    :func:`~app.policy.institution_rules.institution_rules`) — the same judgement, without
    reading a large hospital's whole staff. ``as_of`` applies to ``events`` only.
    """
    mine = [e for e in ledger.visible(events, as_of) if _at(e, code)]
    intervals: list[Interval] = []
    notices: list[Notice] = []
    departments: dict[str, tuple[list[Interval], list[Notice]]] = {}

    actions = ledger.institution_actions(mine)
    restores = [a.start for a in actions if a.action == "restore"]
    for a in actions:
        if a.action == "restore":
            continue
        status: Status = "suspended" if a.action == "suspend" else "terminated"
        end = _restored(a.start, a.end, restores)
        if end is not None and end <= a.start:
            continue
        label = profile.label(f"institution_{status}")
        intervals.append(
            Interval(
                a.start,
                end,
                status,
                manual_rule(a.reason),
                code,
                profile.institution_emergency_exempt,
                messages.manual(label, end, a.reason),
            )
        )
        if profile.institution_follow_rule:
            verb = "中止" if status == "suspended" else "解除"
            notices.append(
                Notice(
                    a.start,
                    "agreements_follow_institution",
                    code,
                    profile.institution_follow_rule,
                    end,
                    f"该机构医保支付资格相关人员服务协议同时{verb}",
                )
            )

    dept_actions = ledger.department_actions(mine)
    for d in dept_actions:
        if d.action == "restore":
            continue
        dept_restores = [
            r.start for r in dept_actions if r.action == "restore" and r.department == d.department
        ]
        end = _restored(d.start, d.end, dept_restores)
        if end is not None and end <= d.start:
            continue
        ivs, _ = departments.setdefault(d.department, ([], []))
        ivs.append(
            Interval(
                d.start,
                end,
                "suspended",
                manual_rule(d.reason),
                code,
                profile.department_emergency_exempt,
                messages.manual(profile.label("department_suspended"), end, d.reason),
            )
        )

    registrations = sorted(
        (e for e in mine if isinstance(e, Registration)),
        key=lambda r: (r.start, r.practitioner, r.department, r.end or dt.date.max),
    )
    if staff is None:
        staff = StaffCounts.of(registrations, categories)
    auto = institution_rules(
        profile,
        code,
        mine,
        registrations,
        practitioners,
        categories,
        restores,
        dept_actions,
        staff,
    )
    intervals += auto.intervals
    notices += auto.notices
    for department, (ivs, ns) in auto.departments.items():
        target = departments.setdefault(department, ([], []))
        target[0].extend(ivs)
        target[1].extend(ns)

    outcome = InstitutionOutcome(code, _sorted_intervals(intervals), _sorted_notices(notices))
    return outcome, {
        dept: DepartmentOutcome(code, dept, _sorted_intervals(ivs), _sorted_notices(ns))
        for dept, (ivs, ns) in sorted(departments.items())
        if ivs or ns
    }


def _at(event: Event, code: str) -> bool:
    return getattr(event, "institution", code) == code


def _restored(start: dt.date, end: dt.date | None, restores: Iterable[dt.date]) -> dt.date | None:
    for day in sorted(restores):
        if start < day and (end is None or day < end):
            return day
    return end


def _sorted_intervals(items: Iterable[Interval]) -> tuple[Interval, ...]:
    return tuple(sorted(set(items), key=interval_key))


def _sorted_notices(items: Iterable[Notice]) -> tuple[Notice, ...]:
    return tuple(sorted(set(items), key=notice_key))
