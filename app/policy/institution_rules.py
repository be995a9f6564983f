"""Automatic institution and department rules computed from practitioners' outcomes.

- department (威海 §二(二)1): the ``min_practitioners``-th distinct practitioner of one
  department warned or suspended within a period suspends the department's settlement for
  ``months`` from that day, once per period. A practitioner belongs to the departments they
  are registered in at this institution on the day the sanction starts (and the department
  named on that day's violation here, if any); a sanction counts wherever its points were
  scored, because it is the practitioner's.
- staff share (济宁 §五(三)): practitioners registered here whose suspension or termination
  started in the period, over everyone registered here that day (plus themselves); reaching
  the share raises one ``institution_threshold`` notice per period for the agency to decide.
- terminated doctors (兰州 §二十二): doctors registered here whose termination started within
  the last ``window_months`` (one agreement term, counted back from each termination, since
  an institution's own term is not on the ledger); enough of them terminates the
  institution's agreement from that day until an officer restores it; the lower share only
  raises a notice.
- key monitoring (济宁 §六(三)): one practitioner with a one-shot finding here (an act the
  text names 严重违规, or — recorded without an item — of at least ``single_points``), or
  ``violations`` standing acts here in one period, puts the institution on the 重点监控名单
  (one notice per practitioner and period).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.policy import ledger, messages
from app.policy.acts import findings
from app.policy.dates import add_months
from app.policy.events import Appeal, DepartmentAction, Event, Registration, Violation
from app.policy.outcomes import Interval, Notice, PractitionerOutcome
from app.policy.periods import Periods
from app.policy.profile import Profile
from app.policy.staff import StaffCounts


@dataclass(slots=True)
class AutoResult:
    intervals: list[Interval] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    departments: dict[str, tuple[list[Interval], list[Notice]]] = field(default_factory=dict)


def institution_rules(
    profile: Profile,
    code: str,
    events: list[Event],
    registrations: list[Registration],
    practitioners: Mapping[str, PractitionerOutcome],
    categories: Mapping[str, str],
    restores: list[dt.date],
    department_actions: list[DepartmentAction],
    staff: StaffCounts,
) -> AutoResult:
    """``registrations`` and ``practitioners`` need only hold the practitioners whose outcome
    has a warning, suspension or termination here (or everywhere), or who have a violation
    here: nobody else changes a rule's result except as a head in ``staff``."""
    result = AutoResult()
    # periods of institution rules never depend on one practitioner's agreements
    periods = Periods(profile, [])
    # unique by id, sorted by date: a replayed write never counts twice
    violations = ledger.effective_violations((e for e in events if isinstance(e, Violation)), [])
    if profile.department is not None:
        _department(
            profile,
            code,
            registrations,
            practitioners,
            violations,
            periods,
            department_actions,
            result,
        )
    if profile.staff_share is not None:
        _staff_share(profile, code, registrations, practitioners, periods, staff, result)
    if profile.terminated_doctors is not None:
        _terminated_doctors(
            profile, code, registrations, practitioners, categories, restores, staff, result
        )
    if profile.key_monitoring is not None:
        appeals = [e for e in events if isinstance(e, Appeal)]
        _key_monitoring(profile, code, violations, appeals, practitioners, periods, result)
    return result


def _registered(registrations: Iterable[Registration], day: dt.date) -> list[Registration]:
    return [r for r in registrations if r.start <= day and (r.end is None or day < r.end)]


def _by_practitioner(registrations: Iterable[Registration]) -> dict[str, list[Registration]]:
    grouped: dict[str, list[Registration]] = {}
    for r in registrations:
        grouped.setdefault(r.practitioner, []).append(r)
    return grouped


def _heads(
    staff: StaffCounts,
    day: dt.date,
    hit: Iterable[str],
    regs_of: Mapping[str, list[Registration]],
    category: str | None = None,
) -> int:
    """Everyone registered on ``day`` (of ``category``), plus the practitioners of ``hit``
    who were not registered that day: a sanction counted is counted among the staff."""
    return staff.on(day, category) + sum(1 for p in hit if not _registered(regs_of.get(p, ()), day))


class _OffRoll:
    """How many of the practitioners counted so far were not registered here on a day, for
    days asked in ascending order — :func:`_heads`'s surplus, kept as the days advance.

    The staff share rule asks it at every sanction's start, and the sanctioned at a big
    hospital are hundreds: rescanning every one of them per day made the re-judgement
    quadratic (about a quarter of a second of CPU at a 15,000-staff 济宁 hospital, on every
    write that changed what it reads; issue 14). A practitioner's standing can change only on
    the days their registrations start or end, so only those are revisited."""

    def __init__(self, regs_of: Mapping[str, list[Registration]]) -> None:
        self._regs_of = regs_of
        self._members: set[str] = set()
        self._off: set[str] = set()
        self._changes: list[tuple[dt.date, str]] = []  # a heap of (day, practitioner)

    def add(self, practitioner: str, day: dt.date) -> None:
        if practitioner in self._members:
            return
        self._members.add(practitioner)
        regs = self._regs_of.get(practitioner, [])
        for r in regs:
            for edge in (r.start, r.end):
                if edge is not None and edge > day:
                    heapq.heappush(self._changes, (edge, practitioner))
        self._judge(practitioner, day)

    def count(self, day: dt.date) -> int:
        while self._changes and self._changes[0][0] <= day:
            self._judge(heapq.heappop(self._changes)[1], day)
        return len(self._off)

    def _judge(self, practitioner: str, day: dt.date) -> None:
        if _registered(self._regs_of.get(practitioner, ()), day):
            self._off.discard(practitioner)
        else:
            self._off.add(practitioner)


def _sanctions(outcome: PractitionerOutcome, code: str, statuses: frozenset[str]) -> list[Interval]:
    return [
        iv for iv in outcome.intervals if iv.status in statuses and iv.institution in (None, code)
    ]


def _department(
    profile: Profile,
    code: str,
    registrations: list[Registration],
    practitioners: Mapping[str, PractitionerOutcome],
    violations: list[Violation],
    periods: Periods,
    department_actions: list[DepartmentAction],
    result: AutoResult,
) -> None:
    rule = profile.department
    assert rule is not None
    first: dict[tuple[tuple[dt.date, dt.date], str], dict[str, dt.date]] = {}
    for practitioner, outcome in sorted(practitioners.items()):
        regs = [r for r in registrations if r.practitioner == practitioner]
        for iv in _sanctions(outcome, code, frozenset({"warning", "suspended"})):
            depts = {r.department for r in _registered(regs, iv.start)}
            depts |= {
                v.department
                for v in violations
                if v.practitioner == practitioner and v.date == iv.start and v.department
            }
            for dept in depts:
                seen = first.setdefault((periods.of(iv.start), dept), {})
                if practitioner not in seen or iv.start < seen[practitioner]:
                    seen[practitioner] = iv.start
    for (_, dept), seen in sorted(first.items()):
        if len(seen) < rule.min_practitioners:
            continue
        day = sorted(seen.values())[rule.min_practitioners - 1]
        end: dt.date | None = add_months(day, rule.months)
        for a in department_actions:
            if a.department == dept and a.action == "restore" and day < a.start < (end or a.start):
                end = a.start
                break
        ivs, notices = result.departments.setdefault(dept, ([], []))
        ivs.append(
            Interval(
                day,
                end,
                "suspended",
                rule.rule,
                code,
                rule.emergency_exempt,
                messages.until(profile.label("department_suspended"), end),
            )
        )
        who = "、".join(sorted(seen))
        notices.append(
            Notice(
                day,
                "department_suspended",
                f"{code}/{dept}",
                rule.rule,
                end,
                f"同一科室{len(seen)}人被警告或暂停：{who}",
            )
        )


def _staff_share(
    profile: Profile,
    code: str,
    registrations: list[Registration],
    practitioners: Mapping[str, PractitionerOutcome],
    periods: Periods,
    staff_counts: StaffCounts,
    result: AutoResult,
) -> None:
    rule = profile.staff_share
    assert rule is not None
    starts = _starts_here(
        code, registrations, practitioners, frozenset({"suspended", "terminated"})
    )
    regs_of = _by_practitioner(registrations)
    done: set[tuple[dt.date, dt.date]] = set()
    counted: dict[tuple[dt.date, dt.date], set[str]] = {}
    off: dict[tuple[dt.date, dt.date], _OffRoll] = {}
    for day, practitioner in starts:
        period = periods.of(day)
        hit = counted.setdefault(period, set())
        hit.add(practitioner)
        if period in done:
            continue
        roll = off.setdefault(period, _OffRoll(regs_of))
        roll.add(practitioner, day)
        # as _heads(staff_counts, day, hit, regs_of), without rescanning ``hit``
        staff = staff_counts.on(day) + roll.count(day)
        if len(hit) * 100 >= rule.percent * staff:
            done.add(period)
            result.notices.append(
                Notice(
                    day,
                    "institution_threshold",
                    code,
                    rule.rule,
                    period[1],
                    f"本记分周期被中止或解除服务协议{len(hit)}人/共{staff}人，达到"
                    f"{rule.percent}%，经办机构可以中止或解除该机构医保服务协议",
                )
            )


def _starts_here(
    code: str,
    registrations: list[Registration],
    practitioners: Mapping[str, PractitionerOutcome],
    statuses: frozenset[str],
) -> list[tuple[dt.date, str]]:
    """(first day, practitioner) of each sanction that began while registered here."""
    # Registrations grouped once: an institution's staff is thousands, and a scan of all its
    # registrations per practitioner made every re-judgement quadratic.
    by_practitioner = _by_practitioner(registrations)
    starts: set[tuple[dt.date, str]] = set()
    for practitioner, outcome in practitioners.items():
        regs = by_practitioner.get(practitioner, [])
        for iv in _sanctions(outcome, code, statuses):
            if _registered(regs, iv.start):
                starts.add((iv.start, practitioner))
    return sorted(starts)


def _terminated_doctors(
    profile: Profile,
    code: str,
    registrations: list[Registration],
    practitioners: Mapping[str, PractitionerOutcome],
    categories: Mapping[str, str],
    restores: list[dt.date],
    staff_counts: StaffCounts,
    result: AutoResult,
) -> None:
    rule = profile.terminated_doctors
    assert rule is not None
    doctors = {p for p, c in categories.items() if c == rule.category}
    doctor_regs = [r for r in registrations if r.practitioner in doctors]
    regs_of = _by_practitioner(doctor_regs)
    terminations = _starts_here(
        code,
        doctor_regs,
        {p: o for p, o in practitioners.items() if p in doctors},
        frozenset({"terminated"}),
    )
    blocked_until: dt.date | None = dt.date.min
    noticed: set[int] = set()
    for day, _ in terminations:
        window_start = add_months(day, -rule.window_months)
        hit = {p for d, p in terminations if window_start < d <= day}
        staff = _heads(staff_counts, day, hit, regs_of, rule.category)
        needed = next((n for below, n in sorted(rule.small_institutions) if staff < below), None)
        enough = (
            len(hit) >= needed
            if needed is not None
            else len(hit) * 100 >= rule.terminate_percent * staff
        )
        share = f"{len(hit)}人/共{staff}名医师"
        if enough and (blocked_until is not None and day >= blocked_until):
            end = next((r for r in sorted(restores) if r > day), None)
            blocked_until = end
            result.intervals.append(
                Interval(
                    day,
                    end,
                    "terminated",
                    rule.terminate_rule,
                    code,
                    profile.institution_emergency_exempt,
                    messages.until(profile.label("institution_terminated"), end),
                )
            )
            result.notices.append(
                Notice(
                    day,
                    "institution_threshold",
                    code,
                    rule.terminate_rule,
                    end,
                    f"协议期内被取消资格的医师{share}，终止医疗服务协议",
                )
            )
        elif (
            not enough and len(hit) * 100 >= rule.notice_percent * staff and len(hit) not in noticed
        ):
            noticed.add(len(hit))
            result.notices.append(
                Notice(
                    day,
                    "institution_threshold",
                    code,
                    rule.notice_rule,
                    None,
                    f"协议期内被取消资格的医师{share}，达到{rule.notice_percent}%",
                )
            )


def _key_monitoring(
    profile: Profile,
    code: str,
    violations: list[Violation],
    appeals: list[Appeal],
    practitioners: Mapping[str, PractitionerOutcome],
    periods: Periods,
    result: AutoResult,
) -> None:
    rule = profile.key_monitoring
    assert rule is not None
    standing = {v.id for v in ledger.effective_violations(violations, appeals)}
    for v in violations:
        outcome = practitioners.get(v.practitioner)
        if outcome is not None:
            # the practitioner's own outcome saw every appeal of theirs; it decides
            ids = {i for p in outcome.periods for i in p.violations}
            if v.id in ids:
                standing.add(v.id)
            else:
                standing.discard(v.id)
    seen: dict[tuple[str, tuple[dt.date, dt.date]], int] = {}
    listed: set[tuple[str, tuple[dt.date, dt.date]]] = set()
    # §六(三) counts violation behaviours: one act recorded under several items is one
    for f in findings(profile, (v for v in violations if v.id in standing)):
        practitioner = f.violations[0].practitioner
        key = (practitioner, periods.of(f.date))
        seen[key] = seen.get(key, 0) + 1
        if key in listed:
            continue
        one_shot = f.one_shot(profile, rule.single_points)
        if one_shot or seen[key] >= rule.violations:
            listed.add(key)
            item = f.one_shot_item(profile) if one_shot else None
            if item is not None:
                why = f"严重违规（{item.rule}）"
            elif one_shot:
                why = f"一次性扣{f.points}分"
            else:
                why = f"本记分周期违规{seen[key]}项"
            result.notices.append(
                Notice(
                    f.date,
                    "key_monitoring",
                    code,
                    rule.rule,
                    None,
                    f"医保支付资格相关人员{practitioner}{why}，列入重点监控名单",
                )
            )
