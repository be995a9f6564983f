"""Officers' hand-made practitioner actions and the code lock that follows an unbinding.

A manual action becomes an interval with rule ``manual: <reason>``. A restore ends, on its
day, every open manual interval and unbinding lock in its scope: institution None reaches
every institution, an institution code only that institution's intervals. A sanction that
starts on the restore's own day is not ended by it. (Point sanctions
are restored inside :mod:`app.policy.scoring`, where restoring affects what follows.)

Where the profile (the version in force on the decision day) has a notice period, a hand-made
中止/解除/注销 takes effect after it like a point-based one (舟山 §十六): ``start`` is the day
of the decision, the interval starts on the notice's last day and keeps the length the officer
gave. A hand-made action with a re-application ban (舟山 §十四 解除 one year, 注销 five years)
is a ban, not a notice: a restore before the ban's end does not lift it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypeVar

from app.policy import messages
from app.policy.dates import add_years
from app.policy.events import ManualAction, Registration
from app.policy.outcomes import Interval, Notice, Status
from app.policy.profile import ManualBan, Profile
from app.policy.workdays import WorkingCalendar

T = TypeVar("T")

_STATUS: dict[str, Status] = {
    "suspend": "suspended",
    "terminate": "terminated",
    "lock_code": "code_locked",
    "cancel_code": "code_cancelled",
}
# 舟山 §十六 作出中止、解除医保医师服务协议或注销医保医师编码的，应当提前5个工作日书面告知
_NOTIFIED = frozenset({"suspend", "terminate", "cancel_code"})
# decisions about point sanctions, judged in app.policy.scoring
_NOT_INTERVALS = frozenset({"restore", "shorten"})


def manual_rule(reason: str) -> str:
    return f"manual: {reason}"


def manual_intervals(
    profile: Profile, code: str, actions: list[ManualAction], calendar: WorkingCalendar
) -> tuple[list[Interval], list[Notice]]:
    restores = [a for a in actions if a.action == "restore"]
    intervals: list[Interval] = []
    notices: list[Notice] = []
    for a in actions:
        if a.action in _NOT_INTERVALS:
            continue
        rules = profile.at(a.start)
        status = _STATUS[a.action]
        start, end = effective_span(rules, a, calendar)
        if start != a.start:
            assert rules.notice is not None
            notices.append(
                Notice(
                    a.start,
                    "sanction_notified",
                    code,
                    rules.notice.rule,
                    start,
                    f"书面告知后{rules.notice.working_days}个工作日生效",
                )
            )
        ban = _ban(rules, a.action)
        ban_until = add_years(start, ban.years) if ban is not None else None
        allowed = [r for r in restores if ban_until is None or r.start >= ban_until]
        # counted from the decision: a restore during the notice period cancels the sanction
        end = restored_end(a.start, end, a.institution, allowed)
        if ban is not None and ban_until is not None:
            for r in restores:
                if (
                    _reaches(r, a)
                    and a.start < r.start < ban_until
                    and (end is None or r.start < end)
                ):
                    notices.append(
                        Notice(
                            r.start,
                            "restore_refused",
                            code,
                            ban.rule,
                            ban_until,
                            "禁止期内不得恢复",
                        )
                    )
        if end is not None and end <= start:
            continue
        intervals.append(
            Interval(
                start,
                end,
                status,
                manual_rule(a.reason),
                a.institution,
                rules.emergency_exempt,
                messages.manual(rules.label(status), end, a.reason),
            )
        )
        if ban is not None and ban_until is not None:
            notices.append(
                Notice(
                    start,
                    "reapplication_banned",
                    code,
                    ban.rule,
                    ban_until,
                    f"{ban.years}年内不得重新签订服务协议",
                )
            )
    return intervals, notices


def effective_span(
    rules: Profile, action: ManualAction, calendar: WorkingCalendar
) -> tuple[dt.date, dt.date | None]:
    """``[start, end)`` of a hand-made sanction once its notice period (if any) has run."""
    if rules.notice is None or action.action not in _NOTIFIED:
        return action.start, action.end
    start = calendar.add_working_days(action.start, rules.notice.working_days)
    shift = start - action.start
    return start, None if action.end is None else action.end + shift


def banned_restore(
    profile: Profile, actions: list[ManualAction], restore: ManualAction, calendar: WorkingCalendar
) -> tuple[str, dt.date] | None:
    """(rule, ban end) of a hand-made sanction under a ban that ``restore`` would reach.

    What the admin API refuses before writing; the engine ignores such a restore anyway.
    """
    for a in sorted(actions, key=lambda a: (a.start, a.action, a.institution or "")):
        if a.action in _NOT_INTERVALS or not _reaches(restore, a):
            continue
        rules = profile.at(a.start)
        ban = _ban(rules, a.action)
        if ban is None:
            continue
        start, end = effective_span(rules, a, calendar)
        until = add_years(start, ban.years)
        if a.start < restore.start < until and (end is None or restore.start < end):
            return ban.rule, until
    return None


def _ban(rules: Profile, action: str) -> ManualBan | None:
    return next((b for b in rules.manual_bans if b.action == action and b.years > 0), None)


def _reaches(restore: ManualAction, action: ManualAction) -> bool:
    return restore.institution is None or restore.institution == action.institution


def unbinding_locks(
    profile: Profile,
    code: str,
    registrations: list[Registration],
    restores: list[ManualAction],
    calendar: WorkingCalendar,
) -> tuple[list[Interval], list[Notice]]:
    """舟山 §八: leaving an institution locks the code there until a new registration.

    The lock starts on the unbinding day itself: the rule gives the institution three working
    days to lock the code, but the practitioner may not bill there from that day on, so the
    gate enforces it at once and the deadline becomes a notice for the institution.
    """
    rule = profile.unbinding
    if rule is None:
        return [], []
    intervals: list[Interval] = []
    notices: list[Notice] = []
    for reg in registrations:
        end = reg.end
        if end is None:
            continue
        same = [r for r in registrations if r.institution == reg.institution and r is not reg]
        if any(r.start <= end and (r.end is None or end < r.end) for r in same):
            continue  # still bound there through another department
        later = [r.start for r in same if r.start > end]
        lock_end = restored_end(end, min(later) if later else None, reg.institution, restores)
        intervals.append(
            Interval(
                end,
                lock_end,
                "code_locked",
                rule.rule,
                reg.institution,
                profile.emergency_exempt,
                messages.until(profile.label("code_locked"), lock_end),
            )
        )
        deadline = calendar.add_working_days(end, rule.working_days)
        notices.append(
            Notice(
                end,
                "code_lock_due",
                code,
                rule.rule,
                deadline,
                f"{reg.institution}应于{rule.working_days}个工作日内封锁医保医师编码",
            )
        )
    return _dedupe(intervals), _dedupe(notices)


def restored_end(
    start: dt.date, end: dt.date | None, institution: str | None, restores: Iterable[ManualAction]
) -> dt.date | None:
    """``end``, or the first restore in scope that falls strictly inside ``[start, end)``."""
    for r in sorted(restores, key=lambda r: r.start):
        in_scope = r.institution is None or r.institution == institution
        if in_scope and start < r.start and (end is None or r.start < end):
            return r.start
    return end


def _dedupe(items: list[T]) -> list[T]:
    return list(dict.fromkeys(items))
