"""Point rules: from a practitioner's standing violations, exams and restores to sanctions.

The ledger is replayed day by day in a fixed order (agreement starts, restores and exams of a
day before its violations). Readings that hold for every profile:

- Violations of one day are one batch: their points are added together and only the highest
  threshold crossed applies ("crossing several thresholds at once applies the highest").
- Each threshold fires at most once per scoring period; a lower threshold crossed after a
  higher one (impossible by points, possible by profile order) never fires.
- Escalation: within one scoring period the suspension for points is the tier of the
  period's total. Reaching a higher tier while the period's suspension runs extends it to the
  higher tier's length counted from its first day (the segment from the new date carries the
  new rule); reaching it after the practitioner was restored adds the months the higher tier
  adds (6 → 9 points in 济宁: 3 months, then 3 more). So a year's points never cost more, or
  less, than their tier, whatever the order they came in. An escalation is not a further
  suspension for repeat rules unless the profile says ``escalation_counts_as_repeat``:
  "suspended twice" means suspended for the points of two scoring periods. Both choices keep
  the rules monotone: one more violation never shortens anything.
- A tier reached in a new period while an older period's suspension still runs is a new
  suspension from its own date, lasting at least to the old end.
- A termination cuts a running suspension; nothing escalates a running termination. After a
  termination the suspension count starts again from zero.
- A termination ends when the practitioner signs a new agreement (any institution) on or
  after the end of the ban, or when an officer records a restore (on or after the ban's end;
  before it only where the profile allows restoring by hand).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from app.policy import messages
from app.policy.dates import add_months, add_years
from app.policy.events import Agreement, Exam, ManualAction, Violation
from app.policy.outcomes import Interval, Notice, PeriodPoints
from app.policy.periods import Period, Periods
from app.policy.profile import Profile, Threshold
from app.policy.workdays import WorkingCalendar


@dataclass(slots=True)
class _Block:
    """A blocking sanction segment while the replay runs; ``end`` None = not ended (yet)."""

    start: dt.date
    status: Literal["suspended", "terminated"]
    rule: str
    end: dt.date | None = None
    deadline: dt.date | None = None  # suspension: nominal end (exam / application modes)
    ban_until: dt.date | None = None  # termination
    failed_once: bool = False

    def running(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(slots=True)
class Result:
    """What the point rules produced for one practitioner."""

    intervals: list[Interval] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    periods: list[PeriodPoints] = field(default_factory=list)


_ORDER_AGREEMENT, _ORDER_RESTORE, _ORDER_EXAM, _ORDER_VIOLATIONS = range(4)


class _Replay:
    def __init__(
        self,
        profile: Profile,
        code: str,
        periods: Periods,
        calendar: WorkingCalendar,
    ) -> None:
        self.p = profile
        self.code = code
        self.periods = periods
        self.calendar = calendar
        self.blocks: list[_Block] = []
        self.warnings: list[Interval] = []
        self.notices: list[Notice] = []
        self.totals: dict[Period, int] = {}
        self.fired: dict[Period, int] = {}
        self.suspensions = 0
        # per period: first day of its point suspension and the months its tier imposes
        self.period_suspension: dict[Period, tuple[dt.date, int]] = {}
        self.terminations = 0

    # -- state -------------------------------------------------------------------------

    @property
    def current(self) -> _Block | None:
        return self.blocks[-1] if self.blocks else None

    def _running(self, day: dt.date) -> _Block | None:
        block = self.current
        return block if block is not None and block.running(day) else None

    # -- events ------------------------------------------------------------------------

    def agreement(self, start: dt.date) -> None:
        block = self._running(start)
        if (
            block is not None
            and block.status == "terminated"
            and block.start < start
            and (block.ban_until is None or start >= block.ban_until)
        ):
            block.end = start
            self.periods.restart(start)

    def restore(self, day: dt.date) -> None:
        block = self._running(day)
        if block is None or block.start >= day:
            return
        if block.status == "terminated":
            if self.p.manual_restore or block.ban_until is None or day >= block.ban_until:
                block.end = day
                self.periods.restart(day)
        elif self.p.restore == "application" and block.end is None:
            # 舟山 §十四: the request restores at the end of the term, not before it
            assert block.deadline is not None
            block.end = max(day, block.deadline)
        elif self.p.manual_restore:
            block.end = day

    def exam(self, exam: Exam) -> None:
        block = self._running(exam.date)
        rule = self.p.exam
        if self.p.restore == "exam" and rule is not None:
            if block is None or block.status != "suspended" or block.end is not None:
                return
            assert block.deadline is not None
            if exam.passed:
                block.end = max(block.deadline, exam.date)
            elif not block.failed_once and rule.fail_extension_months:
                block.failed_once = True
                block.deadline = add_months(
                    max(block.deadline, exam.date), rule.fail_extension_months
                )
                self._notice(
                    exam.date,
                    "exam_required",
                    rule.rule,
                    until=block.deadline,
                    detail="考试不合格，暂停期限延长，期满须再次考试合格方可恢复",
                )
            elif block.failed_once and rule.fail_again_ban_years is not None:
                self._terminate(exam.date, rule.fail_again_rule, rule.fail_again_ban_years)
        elif self.p.failed_exam is not None and not exam.passed:
            if block is not None and block.status == "terminated":
                return
            self._terminate(exam.date, self.p.failed_exam.rule, self.p.failed_exam.ban_years)

    def violations(self, day: dt.date, batch: list[Violation]) -> None:
        period = self.periods.of(day)
        before = self.totals.get(period, 0)
        total = before + sum(v.points for v in batch)
        self.totals[period] = total
        fired = self.fired.get(period, -1)
        crossed = [
            i for i, th in enumerate(self.p.thresholds) if th.min_points <= total and i > fired
        ]
        threshold = self.p.thresholds[crossed[-1]] if crossed else None
        if crossed:
            self.fired[period] = crossed[-1]
        if threshold is not None and threshold.action == "terminate":
            single = any(v.points >= threshold.min_points for v in batch)
            ban = threshold.ban_years
            if single and threshold.single_ban_years is not None:
                ban = threshold.single_ban_years
            self._terminate(self._effective(day), threshold.rule, ban)
        elif self._consecutive(period, before, total):
            rule = self.p.consecutive
            assert rule is not None
            self._terminate(self._effective(day), rule.rule, rule.ban_years)
        elif threshold is not None and threshold.action == "suspend":
            self._suspend(self._effective(day), threshold, period)
        elif threshold is not None:
            self._warn(day, threshold, period, total)

    # -- rules -------------------------------------------------------------------------

    def _effective(self, day: dt.date) -> dt.date:
        """The day a sanction decided on ``day`` takes effect (after any notice period)."""
        if self.p.notice is None:
            return day
        start = self.calendar.add_working_days(day, self.p.notice.working_days)
        self._notice(
            day,
            "sanction_notified",
            self.p.notice.rule,
            until=start,
            detail=f"书面告知后{self.p.notice.working_days}个工作日生效",
        )
        return start

    def _consecutive(self, period: Period, before: int, total: int) -> bool:
        rule = self.p.consecutive
        if rule is None or not (before < rule.min_points <= total):
            return False
        earlier = period
        for _ in range(rule.periods - 1):
            earlier = self.periods.previous(earlier)
            if self.totals.get(earlier, 0) < rule.min_points:
                return False
        return True

    def _warn(self, day: dt.date, threshold: Threshold, period: Period, total: int) -> None:
        label = threshold.label or "警告"
        detail = f"{period[0].isoformat()}起记分周期累计扣分{total}分"
        self.warnings.append(
            Interval(
                day,
                period[1],
                "warning",
                threshold.rule,
                None,
                self.p.emergency_exempt,
                f"{label}（{detail}）",
            )
        )
        self._notice(day, threshold.notice, threshold.rule, until=period[1], detail=detail)

    def _suspend(self, start: dt.date, threshold: Threshold, period: Period) -> None:
        running = self._running(start)
        if running is not None and running.status == "terminated":
            return
        earlier = self.period_suspension.get(period)
        if threshold.until_period_end:
            target = period[1]
        elif earlier is None:
            target = add_months(start, threshold.months)
        elif running is not None:
            # the period's suspension still runs: it now lasts the higher tier from its start
            target = add_months(earlier[0], threshold.months)
        else:
            # already restored: top up by the months the higher tier adds
            target = add_months(start, threshold.months - earlier[1])
        self.period_suspension[period] = (earlier[0] if earlier else start, threshold.months)
        failed_once = False
        if running is not None:
            old_end = running.end if running.end is not None else running.deadline
            assert old_end is not None
            target = max(target, old_end)
            running.end = start
            failed_once = running.failed_once
        if earlier is None or self.p.escalation_counts_as_repeat:
            self.suspensions += 1
        repeat = self.p.repeat_suspension
        if repeat is not None and self.suspensions >= repeat.count:
            self._terminate(start, f"{threshold.rule}；{repeat.rule}", repeat.ban_years)
            return
        if self.p.restore == "automatic" or threshold.until_period_end:
            self.blocks.append(_Block(start, "suspended", threshold.rule, end=target))
            return
        self.blocks.append(
            _Block(start, "suspended", threshold.rule, deadline=target, failed_once=failed_once)
        )
        if self.p.restore == "exam":
            assert self.p.exam is not None
            self._notice(
                start,
                "exam_required",
                self.p.exam.rule,
                until=target,
                detail="暂停期满须考试合格方可恢复",
            )
        else:
            self._notice(
                start,
                "reinstatement_required",
                self.p.restore_rule,
                until=target,
                detail="中止期满后由所在定点医疗机构提交恢复申请及整改报告",
            )

    def _terminate(self, start: dt.date, rule: str, ban_years: int) -> None:
        running = self._running(start)
        if running is not None and running.status == "terminated":
            return
        if running is not None:
            running.end = start
        self.terminations += 1
        self.suspensions = 0
        self.period_suspension.clear()
        repeat = self.p.repeat_termination
        if repeat is not None and self.terminations >= repeat.count:
            ban_years = max(ban_years, repeat.ban_years)
            rule = f"{rule}；{repeat.rule}"
        ban_until = add_years(start, ban_years) if ban_years > 0 else None
        self.blocks.append(_Block(start, "terminated", rule, ban_until=ban_until))
        if ban_until is not None:
            self._notice(
                start,
                "reapplication_banned",
                rule,
                until=ban_until,
                detail=f"{ban_years}年内不得重新申请（签订服务协议）",
            )

    def _notice(
        self, day: dt.date, kind: str, rule: str, *, until: dt.date | None = None, detail: str = ""
    ) -> None:
        self.notices.append(Notice(day, kind, self.code, rule, until, detail))

    # -- output ------------------------------------------------------------------------

    def intervals(self) -> list[Interval]:
        out = list(self.warnings)
        for b in self.blocks:
            if b.end is not None and b.end <= b.start:
                continue  # superseded on its first day
            out.append(
                Interval(
                    b.start,
                    b.end,
                    b.status,
                    b.rule,
                    None,
                    self.p.emergency_exempt,
                    self._message(b),
                )
            )
        return out

    def _message(self, b: _Block) -> str:
        if b.status == "terminated":
            return messages.banned(self.p.label("terminated"), b.ban_until)
        reason = ""
        if b.end is None and b.deadline is not None:
            wait = "考试合格" if self.p.restore == "exam" else "提交恢复申请"
            reason = f"期满{b.deadline.isoformat()}后须{wait}方可恢复"
        return messages.until(self.p.label("suspended"), b.end, reason)


def score(
    profile: Profile,
    code: str,
    violations: list[Violation],
    exams: list[Exam],
    agreements: list[Agreement],
    restores: list[ManualAction],
    calendar: WorkingCalendar,
) -> Result:
    """Replay one practitioner's point-relevant ledger under ``profile``."""
    periods = Periods(profile, agreements)
    replay = _Replay(profile, code, periods, calendar)

    batches: dict[dt.date, list[Violation]] = {}
    for v in violations:
        batches.setdefault(v.date, []).append(v)
    steps: list[tuple[dt.date, int, object]] = []
    steps += [(a.start, _ORDER_AGREEMENT, a) for a in agreements]
    steps += [(r.start, _ORDER_RESTORE, r) for r in restores]
    steps += [(e.date, _ORDER_EXAM, e) for e in exams]
    steps += [(day, _ORDER_VIOLATIONS, batch) for day, batch in batches.items()]
    # exams of one day: a failure before a pass, so a day with both ends restored
    steps.sort(key=lambda s: (s[0], s[1], _tie(s[2])))
    for day, order, item in steps:
        if order == _ORDER_AGREEMENT:
            replay.agreement(day)
        elif order == _ORDER_RESTORE:
            replay.restore(day)
        elif order == _ORDER_EXAM:
            assert isinstance(item, Exam)
            replay.exam(item)
        else:
            assert isinstance(item, list)
            replay.violations(day, item)

    by_period: dict[Period, list[Violation]] = {}
    for v in violations:
        by_period.setdefault(periods.of(v.date), []).append(v)
    result = Result(intervals=replay.intervals(), notices=replay.notices)
    result.periods = [
        PeriodPoints(start, end, sum(v.points for v in vs), tuple(v.id for v in vs))
        for (start, end), vs in sorted(by_period.items())
    ]
    return result


def _tie(item: object) -> tuple[bool, str]:
    if isinstance(item, Exam):
        return (item.passed, "")
    if isinstance(item, Agreement):
        return (False, item.institution)
    return (False, "")
