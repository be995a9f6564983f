"""``evaluate_practitioner``: one practitioner's ledger to their timeline and notices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from app.policy import ledger
from app.policy.events import (
    Agreement,
    Appeal,
    Bonus,
    Event,
    Exam,
    ManualAction,
    Registration,
    Violation,
)
from app.policy.manual import manual_intervals, unbinding_locks
from app.policy.outcomes import Interval, Notice, PractitionerOutcome
from app.policy.profile import Profile
from app.policy.scoring import score
from app.policy.workdays import WorkingCalendar


def evaluate_practitioner(
    profile: Profile,
    code: str,
    events: Sequence[Event],
    calendar: WorkingCalendar,
    as_of: dt.date | None = None,
) -> PractitionerOutcome:
    """The timeline of ``code`` under ``profile`` from the events known on ``as_of``.

    Events about other practitioners are ignored, so passing a whole ledger is safe. The
    result depends only on the set of events, never on their order.
    """
    own = ledger.visible(ledger.of_practitioner(code, events), as_of)
    registrations = sorted(
        (e for e in own if isinstance(e, Registration)),
        key=lambda r: (r.start, r.institution, r.department, r.end or dt.date.max),
    )
    agreements = sorted(
        (e for e in own if isinstance(e, Agreement)),
        key=lambda a: (a.start, a.institution, a.end or dt.date.max),
    )
    violations = ledger.effective_violations(
        (e for e in own if isinstance(e, Violation)), (e for e in own if isinstance(e, Appeal))
    )
    exams = sorted((e for e in own if isinstance(e, Exam)), key=lambda e: (e.date, e.passed))
    actions = sorted(
        (e for e in own if isinstance(e, ManualAction)),
        key=lambda a: (a.start, a.action, a.institution or "", a.end or dt.date.max, a.reason),
    )
    restores = [a for a in actions if a.action == "restore"]
    bonuses = sorted(
        (e for e in own if isinstance(e, Bonus)), key=lambda b: (b.date, b.points, b.item)
    )

    points = score(
        profile,
        code,
        violations,
        exams,
        [*agreements, *registrations],
        actions,
        bonuses,
        calendar,
        ledger.opening_balance(own),
    )
    by_hand, hand_notices = manual_intervals(profile, code, actions, calendar)
    locks, lock_notices = unbinding_locks(profile, code, registrations, restores, calendar)

    intervals = sorted(set(points.intervals + by_hand + locks), key=interval_key)
    notices = sorted(set(points.notices + hand_notices + lock_notices), key=notice_key)
    return PractitionerOutcome(code, tuple(intervals), tuple(notices), tuple(points.periods))


def interval_key(iv: Interval) -> tuple[dt.date, dt.date, str, str, str, str]:
    return (iv.start, iv.end or dt.date.max, iv.status, iv.institution or "", iv.rule, iv.message)


def notice_key(n: Notice) -> tuple[dt.date, str, str, str, dt.date, str]:
    return (n.date, n.kind, n.subject, n.rule, n.until or dt.date.max, n.detail)
