"""Selecting and normalising the events the engine looks at.

Everything here makes the engine independent of the order events were written in: events
are filtered by ``as_of`` and by subject, then sorted by a total key; an appeal's outcome is
the latest decision on the violation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from app.policy.events import (
    Agreement,
    Appeal,
    Bonus,
    CarriedOver,
    DepartmentAction,
    Event,
    Exam,
    InstitutionAction,
    ManualAction,
    Registration,
    Violation,
)


def event_date(event: Event) -> dt.date:
    """The day an event is dated by (its ``date``, else its ``start``)."""
    if isinstance(event, Violation | Appeal | Exam | Bonus):
        return event.date
    if isinstance(event, CarriedOver):
        return event.as_of
    return event.start


def visible(events: Iterable[Event], as_of: dt.date | None) -> list[Event]:
    """The distinct events known on ``as_of`` (all of them when ``as_of`` is None).

    An event recorded twice (a replayed write) is one event: identical records are one fact.
    """
    unique = dict.fromkeys(events)
    if as_of is None:
        return list(unique)
    return [e for e in unique if event_date(e) <= as_of]


def effective_violations(
    violations: Iterable[Violation], appeals: Iterable[Appeal]
) -> list[Violation]:
    """Violations whose points stand: not removed by an upheld appeal, sorted by date and id.

    When a violation has several appeal decisions the latest one counts (a second-level 异议
    decides over the first); on the same day "upheld" wins, so the result never depends on
    the order the decisions were recorded in.
    """
    decisive: dict[str, tuple[dt.date, bool]] = {}
    for appeal in appeals:
        key = (appeal.date, appeal.outcome == "upheld")
        if appeal.violation not in decisive or key > decisive[appeal.violation]:
            decisive[appeal.violation] = key
    # duplicates of one id (a replayed write) count once
    unique = {v.id: v for v in sorted(violations, key=_violation_key)}
    standing = [v for v in unique.values() if not decisive.get(v.id, (dt.date.min, False))[1]]
    return sorted(standing, key=_violation_key)


def _violation_key(v: Violation) -> tuple[dt.date, str, str, int, str]:
    return (v.date, v.id, v.institution, v.points, v.item)


def of_practitioner(code: str, events: Sequence[Event]) -> list[Event]:
    """This practitioner's events, with the appeals of their violations."""
    own: list[Event] = [
        e
        for e in events
        if isinstance(
            e, Registration | Agreement | Violation | Exam | Bonus | ManualAction | CarriedOver
        )
        and e.practitioner == code
    ]
    ids = {e.id for e in own if isinstance(e, Violation)}
    own.extend(e for e in events if isinstance(e, Appeal) and e.violation in ids)
    return own


def institution_actions(events: Iterable[Event]) -> list[InstitutionAction]:
    return sorted(
        (e for e in events if isinstance(e, InstitutionAction)),
        key=lambda e: (e.start, e.action, e.end or dt.date.max, e.reason),
    )


def department_actions(events: Iterable[Event]) -> list[DepartmentAction]:
    return sorted(
        (e for e in events if isinstance(e, DepartmentAction)),
        key=lambda e: (e.start, e.department, e.action, e.end or dt.date.max, e.reason),
    )


def opening_balance(events: Iterable[Event]) -> CarriedOver | None:
    """The balance that counts: the latest ``as_of`` (a later one supersedes an earlier). Two
    different balances of one day are refused when written; should both be there, the one
    with more points (then the later ``since``) counts, so the result never depends on order."""
    balances = [e for e in events if isinstance(e, CarriedOver)]
    if not balances:
        return None
    return max(
        balances,
        key=lambda b: (b.as_of, b.points, b.status, b.since or b.as_of, b.until or dt.date.max),
    )
