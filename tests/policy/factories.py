"""Small explicit factories for policy-engine tests."""

from __future__ import annotations

import datetime as dt

from app.policy import (
    Bonus,
    Exam,
    Interval,
    ManualAction,
    PractitionerOutcome,
    Registration,
    Violation,
    WorkingCalendar,
    load_profiles,
)
from app.policy.events import PractitionerActionKind
from app.policy.profile import Profile

CAL = WorkingCalendar()
PROFILES = load_profiles()


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def profile(profile_id: str) -> Profile:
    return PROFILES[profile_id]


def reg(
    practitioner: str = "P1",
    institution: str = "H1",
    department: str = "D1",
    start: str = "2020-01-01",
    end: str | None = None,
) -> Registration:
    return Registration(practitioner, institution, department, d(start), d(end) if end else None)


def vio(
    vid: str,
    day: str,
    points: int,
    practitioner: str = "P1",
    institution: str = "H1",
    department: str | None = None,
) -> Violation:
    return Violation(vid, practitioner, institution, d(day), points, department=department)


def exam(day: str, passed: bool, practitioner: str = "P1") -> Exam:
    return Exam(practitioner, d(day), passed)


def bonus(day: str, points: int, practitioner: str = "P1", item: str = "培训考核优异") -> Bonus:
    return Bonus(practitioner, d(day), points, item)


def manual(
    action: PractitionerActionKind,
    start: str,
    end: str | None = None,
    institution: str | None = None,
    practitioner: str = "P1",
    reason: str = "稽核",
) -> ManualAction:
    return ManualAction(
        practitioner,
        institution,
        action,
        d(start),
        d(end) if end else None,
        reason,
    )


def blocking(outcome: PractitionerOutcome) -> list[tuple[str, str | None, str]]:
    """(start, end, status) of each blocking interval: the shape most cases compare."""
    return [
        (iv.start.isoformat(), _iso(iv.end), iv.status) for iv in outcome.intervals if iv.blocking
    ]


def blocked_at(outcome: PractitionerOutcome, institution: str, day: dt.date) -> bool:
    """Whether a claim at ``institution`` on ``day`` meets a blocking interval."""
    return any(
        iv.blocking and iv.covers(day) and iv.institution in (None, institution)
        for iv in outcome.intervals
    )


def spans(intervals: tuple[Interval, ...]) -> list[tuple[str, str | None, str]]:
    return [(iv.start.isoformat(), _iso(iv.end), iv.status) for iv in intervals]


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()
