"""Officers' hand-made practitioner actions and the code lock that follows an unbinding.

A manual action becomes an interval with rule ``manual: <reason>``. A restore ends, on its
day, every open manual interval and unbinding lock in its scope: institution None reaches
every institution, an institution code only that institution's intervals. A sanction that
starts on the restore's own day is not ended by it. (Point sanctions
are restored inside :mod:`app.policy.scoring`, where restoring affects what follows.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypeVar

from app.policy import messages
from app.policy.dates import add_years
from app.policy.events import ManualAction, Registration
from app.policy.outcomes import Interval, Notice, Status
from app.policy.profile import Profile
from app.policy.workdays import WorkingCalendar

T = TypeVar("T")

_STATUS: dict[str, Status] = {
    "suspend": "suspended",
    "terminate": "terminated",
    "lock_code": "code_locked",
    "cancel_code": "code_cancelled",
}


def manual_rule(reason: str) -> str:
    return f"manual: {reason}"


def manual_intervals(
    profile: Profile, code: str, actions: list[ManualAction]
) -> tuple[list[Interval], list[Notice]]:
    restores = [a for a in actions if a.action == "restore"]
    intervals: list[Interval] = []
    notices: list[Notice] = []
    for a in actions:
        if a.action == "restore":
            continue
        status = _STATUS[a.action]
        end = restored_end(a.start, a.end, a.institution, restores)
        if end is not None and end <= a.start:
            continue
        intervals.append(
            Interval(
                a.start,
                end,
                status,
                manual_rule(a.reason),
                a.institution,
                profile.emergency_exempt,
                messages.manual(profile.label(status), end, a.reason),
            )
        )
        for ban in profile.manual_bans:
            if ban.action == a.action and ban.years > 0:
                notices.append(
                    Notice(
                        a.start,
                        "reapplication_banned",
                        code,
                        ban.rule,
                        add_years(a.start, ban.years),
                        f"{ban.years}年内不得重新签订服务协议",
                    )
                )
    return intervals, notices


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
