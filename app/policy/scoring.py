"""Point rules: from a practitioner's standing violations, exams and restores to sanctions.

The ledger is replayed day by day in a fixed order (new agreements and registrations, then
restores, then an officer's shortening decisions, then exams, then the day's violations).
Readings that hold for every profile:

- Versions: each decision is taken under the profile version in force on its day
  (:meth:`Profile.at`); a sanction keeps the rules it was decided under (its restore mode, its
  ban, its labels), so a new version never rewrites the past.
- Findings are counted as the text combines them (:mod:`app.policy.acts`: one act recorded
  under several items counts once, at the highest — 济宁 §四).
- Findings of one day are one batch: their points are added together and only the highest
  threshold crossed applies ("crossing several thresholds at once applies the highest").
- A longer ban for a termination one finding reached alone (``single_ban_years``) follows the
  finding's item where the text ties it to the act (济宁 §六(三)), else its points.
- Each threshold fires at most once per scoring period (thresholds are identified by their
  points, so a new version's tiers continue the period's count).
- Escalation within one scoring period, two rules side by side:
  * reached while the period's suspension still runs: that suspension is stretched to the
    higher tier's length counted from its first day (the segment from the new date carries the
    new rule);
  * reached after the practitioner was restored (served, or lifted): the higher tier's measure
    applies in full from the day it is reached — 济宁 §五(二) "中止期满后自动恢复，同一记分周期
    内的积分仍然累计", 兰州 §十七 "用协议期内剩余分值继续": 6 points → 3 months served, then
    9 points → 6 months from that day.
  So fewer violations can cost more time (a finding that lands while a suspension runs merges
  two measures into one); what always holds is that a finding never lightens the sanctions in
  force or decided on its own date, and never changes anything before it.
  An escalation is not a further suspension for repeat rules unless the profile says
  ``escalation_counts_as_repeat``: "suspended twice" means suspended for the points of two
  scoring periods.
- A tier reached in a new period while an older period's suspension still runs is a new
  suspension from its own date, lasting at least to the old end.
- A termination cuts a running suspension; nothing escalates a running termination. After a
  termination the suspension count starts again from zero.
- A termination ends, institution by institution, with a new record of the profile's
  readmission kind (an agreement, or a registration = 再次登记备案) dated on or after the ban's
  end (and, where required, after a passed exam dated on or after it): the first such record
  ends it everywhere it was not still pending; at every other institution where the
  practitioner was on record it stays, as an interval at that institution, until a record
  there. An officer's restore ends it everywhere (on or after the ban's end; before it only
  where the profile allows restoring by hand).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from app.policy import carried, messages
from app.policy.acts import Finding, findings
from app.policy.dates import ONE_DAY, add_months, add_years, last_day
from app.policy.events import (
    Agreement,
    Bonus,
    CarriedOver,
    Exam,
    ManualAction,
    Registration,
    Violation,
)
from app.policy.manual import restored_end
from app.policy.outcomes import Interval, Notice, PeriodPoints
from app.policy.periods import Period, Periods
from app.policy.profile import Profile, Threshold
from app.policy.workdays import WorkingCalendar

Record = Agreement | Registration


@dataclass(slots=True)
class _Block:
    """A blocking sanction segment while the replay runs; ``end`` None = not ended (yet)."""

    start: dt.date
    status: Literal["suspended", "terminated"]
    rule: str
    rules: Profile  # the version the sanction was decided under
    end: dt.date | None = None
    deadline: dt.date | None = None  # suspension: nominal end (exam / application modes)
    ban_until: dt.date | None = None  # termination
    failed_once: bool = False
    since: dt.date | None = None  # suspension: first day of the suspension this segment continues
    readmitted: bool = False  # termination: a qualifying new record has been seen
    passed_on: dt.date | None = None  # termination: the qualifying exam pass
    ended_by_readmission: bool = False

    def running(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)

    def readmission_opens(self) -> dt.date:
        """The first day a new record may end this termination."""
        return self.ban_until if self.ban_until is not None else self.start + ONE_DAY


@dataclass(slots=True)
class Result:
    """What the point rules produced for one practitioner."""

    intervals: list[Interval] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    periods: list[PeriodPoints] = field(default_factory=list)


(
    _ORDER_CARRIED,
    _ORDER_RECORD,
    _ORDER_RESTORE,
    _ORDER_SHORTEN,
    _ORDER_EXAM,
    _ORDER_VIOLATIONS,
) = range(6)


class _Replay:
    def __init__(
        self,
        profile: Profile,
        code: str,
        periods: Periods,
        calendar: WorkingCalendar,
        bonuses: Sequence[Bonus],
    ) -> None:
        self.p = profile
        self.code = code
        self.periods = periods
        self.calendar = calendar
        self.bonuses = bonuses
        self.blocks: list[_Block] = []
        self.warnings: list[Interval] = []
        self.notices: list[Notice] = []
        self.totals: dict[Period, int] = {}
        self.fired: dict[Period, int] = {}  # the points of the highest threshold fired
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

    def record(self, day: dt.date, kind: str) -> None:
        """A new agreement or registration starts on ``day``: it may end a termination."""
        block = self._running(day)
        if block is None or block.status != "terminated" or block.start >= day:
            return
        rule = block.rules.readmission
        if rule.record != kind or day < block.readmission_opens():
            return
        block.readmitted = True
        if rule.exam and block.passed_on is None:
            return
        self._end_termination(block, day, readmitted=True)

    def carry(self, balance: CarriedOver) -> None:
        """An opening balance, read as :mod:`app.policy.carried` says: the period's points so
        far, the thresholds they reach marked applied, the status in force as a sanction of
        this replay's own (the balance is the truth on its day: a sanction running here is cut
        where the carried one starts)."""
        day = balance.as_of
        rules = self.p.at(day)
        period = self.periods.of(day)
        total = self.totals.get(period, 0) + balance.points
        self.totals[period] = total
        self.fired[period] = max(self.fired.get(period, 0), carried.highest_reached(rules, total))
        since = min(balance.since or day, day)
        self._notice(
            day, "carried_over", balance.rule, until=balance.until, detail=carried.detail(balance)
        )
        running = self._running(day)
        if balance.status and running is not None:
            running.end = max(running.start, since)
        decided = self.p.at(since)
        if balance.status == "terminated":
            self.terminations += 1
            self.suspensions = 0
            self.period_suspension.clear()
            ban_until = carried.ban_end(rules, balance, total)
            self.blocks.append(
                _Block(since, "terminated", balance.rule, decided, ban_until=ban_until)
            )
            return
        tier = carried.tier(rules, total)
        if tier is not None:
            self.suspensions += 1
            self.period_suspension[period] = (since, tier.months)
        if balance.status != "suspended":
            return
        nominal = balance.until
        if nominal is None and tier is not None:
            nominal = period[1] if tier.until_period_end else add_months(since, tier.months)
        if decided.restore == "automatic" or (tier is not None and tier.until_period_end):
            block = _Block(since, "suspended", balance.rule, decided, end=nominal, since=since)
        else:
            # restored by exam or on application; without a known term, from its first day
            deadline = nominal if nominal is not None else since
            block = _Block(
                since, "suspended", balance.rule, decided, deadline=deadline, since=since
            )
        self.blocks.append(block)

    def restore(self, day: dt.date) -> None:
        block = self._running(day)
        if block is None or block.start >= day:
            return
        rules = block.rules
        if block.status == "terminated":
            if rules.manual_restore or block.ban_until is None or day >= block.ban_until:
                self._end_termination(block, day, readmitted=False)
            else:
                self._notice(
                    day,
                    "restore_refused",
                    block.rule,
                    until=block.ban_until,
                    detail="禁止期内不得恢复",
                )
        elif rules.restore == "application" and block.end is None:
            assert block.deadline is not None
            if day < block.deadline:
                # 舟山 §十四 待中止期满 ... 提交恢复履行申请: a request before the term ends
                # is not one; the institution files it (again) once the term is over
                self._notice(
                    day,
                    "reinstatement_premature",
                    rules.restore_rule,
                    until=block.deadline,
                    detail="中止期满前提交的恢复申请不予受理，期满后须重新提交",
                )
                return
            block.end = day
        elif rules.manual_restore:
            block.end = day

    def shorten(self, action: ManualAction) -> None:
        """威海 §二(三): bonus points earned during a suspension let an officer shorten it."""
        day = action.start
        block = self._running(day)
        if block is None or block.status != "suspended" or action.end is None:
            return
        rule = block.rules.bonus
        if rule is None:
            return
        since = block.since or block.start
        if not any(since <= b.date <= day for b in self.bonuses):
            self._notice(
                day,
                "shortening_refused",
                rule.rule,
                detail="暂停期间无加分，不得缩减暂停期限",
            )
            return
        new_end = max(action.end, day)  # never back-dated before the decision
        if block.end is not None:
            if new_end >= block.end:
                return  # a shortening never lengthens
            block.end = new_end
        else:
            assert block.deadline is not None
            if new_end >= block.deadline:
                return
            block.deadline = new_end
        self._notice(
            day,
            "suspension_shortened",
            rule.rule,
            until=new_end,
            detail=f"暂停期间有加分，暂停期限缩减至{last_day(new_end)}",
        )

    def exam(self, exam: Exam) -> None:
        block = self._running(exam.date)
        if block is not None and block.status == "terminated":
            if exam.passed:
                self._readmission_exam(block, exam.date)
            return
        if block is not None and block.rules.restore == "exam" and block.rules.exam is not None:
            if block.end is None:
                self._exam_during_suspension(block, exam)
            return
        rules = self.p.at(exam.date)
        if rules.failed_exam is not None and not exam.passed:
            self._terminate(exam.date, rules, rules.failed_exam.rule, rules.failed_exam.ban_years)

    def _exam_during_suspension(self, block: _Block, exam: Exam) -> None:
        rule = block.rules.exam
        assert rule is not None
        assert block.deadline is not None
        if exam.passed:
            block.end = max(block.deadline, exam.date)
        elif not block.failed_once and rule.fail_extension_months:
            block.failed_once = True
            block.deadline = add_months(max(block.deadline, exam.date), rule.fail_extension_months)
            self._notice(
                exam.date,
                "exam_required",
                rule.rule,
                until=block.deadline,
                detail="考试不合格，暂停期限延长，期满须再次考试合格方可恢复",
            )
        elif block.failed_once and rule.fail_again_ban_years is not None:
            self._terminate(exam.date, block.rules, rule.fail_again_rule, rule.fail_again_ban_years)

    def _readmission_exam(self, block: _Block, day: dt.date) -> None:
        """兰州 §十八: a pass after the ban, with a new record, ends the termination."""
        if not block.rules.readmission.exam or day < block.readmission_opens():
            return
        if block.passed_on is None:
            block.passed_on = day
        if block.readmitted:
            self._end_termination(block, day, readmitted=True)

    def violations(self, day: dt.date, batch: list[Finding]) -> None:
        rules = self.p.at(day)
        period = self.periods.of(day)
        before = self.totals.get(period, 0)
        total = before + sum(f.points for f in batch)
        self.totals[period] = total
        fired = self.fired.get(period, 0)
        crossed = [th for th in rules.thresholds if fired < th.min_points <= total]
        threshold = crossed[-1] if crossed else None
        if threshold is not None:
            self.fired[period] = threshold.min_points
        if threshold is not None and threshold.action == "terminate":
            single = any(f.one_shot(self.p, threshold.min_points) for f in batch)
            ban = threshold.ban_years
            if single and threshold.single_ban_years is not None:
                ban = threshold.single_ban_years
            self._terminate(self._effective(day, rules), rules, threshold.rule, ban)
        elif self._consecutive(rules, period, before, total):
            rule = rules.consecutive
            assert rule is not None
            self._terminate(self._effective(day, rules), rules, rule.rule, rule.ban_years)
        elif threshold is not None and threshold.action == "suspend":
            self._suspend(self._effective(day, rules), rules, threshold, period)
        elif threshold is not None:
            self._warn(day, rules, threshold, period, total)

    # -- rules -------------------------------------------------------------------------

    def _effective(self, day: dt.date, rules: Profile) -> dt.date:
        """The day a sanction decided on ``day`` takes effect (after any notice period)."""
        if rules.notice is None:
            return day
        start = self.calendar.add_working_days(day, rules.notice.working_days)
        self._notice(
            day,
            "sanction_notified",
            rules.notice.rule,
            until=start,
            detail=f"书面告知后{rules.notice.working_days}个工作日生效",
        )
        return start

    def _consecutive(self, rules: Profile, period: Period, before: int, total: int) -> bool:
        rule = rules.consecutive
        if rule is None or not (before < rule.min_points <= total):
            return False
        earlier = period
        for _ in range(rule.periods - 1):
            earlier = self.periods.previous(earlier)
            if self.totals.get(earlier, 0) < rule.min_points:
                return False
        return True

    def _warn(
        self, day: dt.date, rules: Profile, threshold: Threshold, period: Period, total: int
    ) -> None:
        label = threshold.label or "警告"
        detail = f"{period[0].isoformat()}起记分周期累计扣分{total}分"
        self.warnings.append(
            Interval(
                day,
                period[1],
                "warning",
                threshold.rule,
                None,
                rules.emergency_exempt,
                f"{label}（{detail}）",
            )
        )
        for kind in threshold.notices:
            self._notice(day, kind, threshold.rule, until=period[1], detail=detail)

    def _suspend(
        self, start: dt.date, rules: Profile, threshold: Threshold, period: Period
    ) -> None:
        running = self._running(start)
        if running is not None and running.status == "terminated":
            return
        earlier = self.period_suspension.get(period)
        stretched = earlier is not None and running is not None
        if threshold.until_period_end:
            target = period[1]
        elif stretched:
            assert earlier is not None
            # the period's suspension still runs: it now lasts the higher tier from its start
            target = add_months(earlier[0], threshold.months)
        else:
            # the first of the period, or the earlier one was served and restored: the tier's
            # measure in full from today (济宁 §五(二), 兰州 §十七)
            target = add_months(start, threshold.months)
        since = earlier[0] if stretched and earlier is not None else start
        self.period_suspension[period] = (since, threshold.months)
        failed_once = False
        if running is not None:
            old_end = running.end if running.end is not None else running.deadline
            assert old_end is not None
            target = max(target, old_end)
            running.end = start
            failed_once = running.failed_once
        if earlier is None or rules.escalation_counts_as_repeat:
            self.suspensions += 1
        repeat = rules.repeat_suspension
        if repeat is not None and self.suspensions >= repeat.count:
            self._terminate(start, rules, f"{threshold.rule}；{repeat.rule}", repeat.ban_years)
            return
        if rules.restore == "automatic" or threshold.until_period_end:
            self.blocks.append(
                _Block(start, "suspended", threshold.rule, rules, end=target, since=since)
            )
            return
        self.blocks.append(
            _Block(
                start,
                "suspended",
                threshold.rule,
                rules,
                deadline=target,
                failed_once=failed_once,
                since=since,
            )
        )
        if rules.restore == "exam":
            assert rules.exam is not None
            self._notice(
                start,
                "exam_required",
                rules.exam.rule,
                until=target,
                detail="暂停期满须考试合格方可恢复",
            )
        else:
            self._notice(
                start,
                "reinstatement_required",
                rules.restore_rule,
                until=target,
                detail="中止期满后由所在定点医疗机构提交恢复申请及整改报告",
            )

    def _terminate(self, start: dt.date, rules: Profile, rule: str, ban_years: int) -> None:
        running = self._running(start)
        if running is not None and running.status == "terminated":
            return
        if running is not None:
            running.end = start
        self.terminations += 1
        self.suspensions = 0
        self.period_suspension.clear()
        repeat = rules.repeat_termination
        if repeat is not None and self.terminations >= repeat.count:
            ban_years = max(ban_years, repeat.ban_years)
            rule = f"{rule}；{repeat.rule}"
        ban_until = add_years(start, ban_years) if ban_years > 0 else None
        self.blocks.append(_Block(start, "terminated", rule, rules, ban_until=ban_until))
        readmission = rules.readmission
        if ban_until is not None:
            what = "再次登记备案" if readmission.record == "registration" else "重新签订服务协议"
            detail = f"{ban_years}年内不得{what}"
            if readmission.exam:
                detail += "；期满后须经统一培训并考核合格"
            self._notice(start, "reapplication_banned", rule, until=ban_until, detail=detail)

    def _end_termination(self, block: _Block, day: dt.date, *, readmitted: bool) -> None:
        block.end = day
        block.ended_by_readmission = readmitted
        self.periods.restart(day)

    def _notice(
        self, day: dt.date, kind: str, rule: str, *, until: dt.date | None = None, detail: str = ""
    ) -> None:
        self.notices.append(Notice(day, kind, self.code, rule, until, detail))

    # -- output ------------------------------------------------------------------------

    def intervals(
        self, records: Sequence[Record], passes: Sequence[dt.date], restores: Sequence[ManualAction]
    ) -> list[Interval]:
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
                    b.rules.emergency_exempt,
                    self._message(b),
                )
            )
            if b.ended_by_readmission:
                out += self._still_terminated(b, records, passes, restores)
        return out

    def _still_terminated(
        self,
        block: _Block,
        records: Sequence[Record],
        passes: Sequence[dt.date],
        restores: Sequence[ManualAction],
    ) -> list[Interval]:
        """The termination at each institution the practitioner was on record at, until a new
        record there: re-entering at one institution is not re-entering at all of them.

        Each interval starts with the termination itself, so rules that count terminations by
        their first day (兰州 §二十二, 济宁 §五(三)) still see one termination.
        """
        assert block.end is not None
        rule = block.rules.readmission
        opens = block.readmission_opens()
        exam_day = min((d for d in passes if d >= opens), default=opens) if rule.exam else opens
        kind = Registration if rule.record == "registration" else Agreement
        mine = [r for r in records if isinstance(r, kind)]
        held = sorted(
            {
                r.institution
                for r in mine
                if r.start < block.end and (r.end is None or r.end > block.end)
            }
        )
        out: list[Interval] = []
        for institution in held:
            again = min(
                (r.start for r in mine if r.institution == institution and r.start >= opens),
                default=None,
            )
            end = None if again is None else max(again, exam_day)
            if end is not None and end <= block.end:
                continue
            end = restored_end(block.end, end, institution, restores)
            what = "登记备案" if rule.record == "registration" else "签订服务协议"
            out.append(
                Interval(
                    block.start,
                    end,
                    "terminated",
                    f"{block.rule}；{rule.rule}" if rule.rule else block.rule,
                    institution,
                    block.rules.emergency_exempt,
                    f"{self._message(block)}（须在本机构重新{what}）",
                )
            )
        return out

    def _message(self, b: _Block) -> str:
        if b.status == "terminated":
            return messages.banned(b.rules.label("terminated"), b.ban_until)
        reason = ""
        if b.end is None and b.deadline is not None:
            wait = "考试合格" if b.rules.restore == "exam" else "提交恢复申请"
            reason = f"期满{b.deadline.isoformat()}后须{wait}方可恢复"
        return messages.until(b.rules.label("suspended"), b.end, reason)


def score(
    profile: Profile,
    code: str,
    violations: list[Violation],
    exams: list[Exam],
    records: Sequence[Record],
    actions: Sequence[ManualAction],
    bonuses: Sequence[Bonus],
    calendar: WorkingCalendar,
    balance: CarriedOver | None = None,
) -> Result:
    """Replay one practitioner's point-relevant ledger under ``profile``.

    ``records``: their agreements and registrations; ``actions``: their officers' actions (the
    practitioner-wide restores and shortening decisions act on point sanctions here);
    ``balance``: the opening balance the replay continues from, if any.
    """
    agreements = [r for r in records if isinstance(r, Agreement)]
    periods = Periods(profile, agreements)
    replay = _Replay(profile, code, periods, calendar, bonuses)
    everywhere = [a for a in actions if a.institution is None]

    acts = findings(profile, violations)
    batches: dict[dt.date, list[Finding]] = {}
    for f in acts:
        batches.setdefault(f.date, []).append(f)
    steps: list[tuple[dt.date, int, object]] = []
    if balance is not None:
        steps.append((balance.as_of, _ORDER_CARRIED, balance))
    steps += [(r.start, _ORDER_RECORD, r) for r in records]
    steps += [(a.start, _ORDER_RESTORE, a) for a in everywhere if a.action == "restore"]
    steps += [(a.start, _ORDER_SHORTEN, a) for a in everywhere if a.action == "shorten"]
    steps += [(e.date, _ORDER_EXAM, e) for e in exams]
    steps += [(day, _ORDER_VIOLATIONS, batch) for day, batch in batches.items()]
    # exams of one day: a failure before a pass, so a day with both ends restored; shortening
    # decisions of one day: the shortest first, so the later ones change nothing
    steps.sort(key=lambda s: (s[0], s[1], _tie(s[2])))
    for day, order, item in steps:
        if order == _ORDER_CARRIED:
            assert isinstance(item, CarriedOver)
            replay.carry(item)
        elif order == _ORDER_RECORD:
            replay.record(day, "agreement" if isinstance(item, Agreement) else "registration")
        elif order == _ORDER_RESTORE:
            replay.restore(day)
        elif order == _ORDER_SHORTEN:
            assert isinstance(item, ManualAction)
            replay.shorten(item)
        elif order == _ORDER_EXAM:
            assert isinstance(item, Exam)
            replay.exam(item)
        else:
            assert isinstance(item, list)
            replay.violations(day, item)

    by_period: dict[Period, list[Finding]] = {}
    for f in acts:
        by_period.setdefault(periods.of(f.date), []).append(f)
    passes = sorted(e.date for e in exams if e.passed)
    restores = [a for a in actions if a.action == "restore"]
    result = Result(intervals=replay.intervals(records, passes, restores), notices=replay.notices)
    brought: dict[Period, int] = {}
    if balance is not None and balance.points:
        brought[periods.of(balance.as_of)] = balance.points
    result.periods = [
        PeriodPoints(
            start,
            end,
            sum(f.points for f in by_period.get((start, end), [])) + brought.get((start, end), 0),
            tuple(v.id for f in by_period.get((start, end), []) for v in f.violations),
            brought.get((start, end), 0),
        )
        for start, end in sorted(set(by_period) | set(brought))
    ]
    return result


def _tie(item: object) -> tuple[bool, str, dt.date]:
    if isinstance(item, Exam):
        return (item.passed, "", dt.date.min)
    if isinstance(item, Agreement | Registration):
        return (isinstance(item, Registration), item.institution, dt.date.min)
    if isinstance(item, ManualAction):
        return (False, "", item.end or dt.date.max)
    return (False, "", dt.date.min)
