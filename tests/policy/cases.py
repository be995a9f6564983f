"""A case table runner: each case names the article it comes from and its expected timeline."""

from __future__ import annotations

from dataclasses import dataclass

from app.policy import Event, evaluate_practitioner
from app.policy.profile import Profile

from .factories import CAL, blocked_at, blocking, d

Span = tuple[str, str | None, str]


@dataclass(frozen=True)
class Case:
    article: str
    events: tuple[Event, ...]
    blocking: tuple[Span, ...] = ()
    warnings: tuple[tuple[str, str], ...] = ()
    # (kind, date, until) that must be among the notices
    notices: tuple[tuple[str, str, str | None], ...] = ()
    # a substring of each blocking interval's rule, in order
    rules: tuple[str, ...] = ()
    # (institution, day, blocked?): what a check at that institution on that day decides
    at: tuple[tuple[str, str, bool], ...] = ()


def check(profile: Profile, case: Case) -> None:
    out = evaluate_practitioner(profile, "P1", case.events, CAL)
    assert blocking(out) == list(case.blocking)
    warnings = [
        (iv.start.isoformat(), iv.end.isoformat() if iv.end else "")
        for iv in out.intervals
        if iv.status == "warning"
    ]
    assert warnings == list(case.warnings)
    notices = {
        (n.kind, n.date.isoformat(), n.until.isoformat() if n.until else None) for n in out.notices
    }
    for expected in case.notices:
        assert expected in notices, sorted(notices)
    if case.rules:
        rules = [iv.rule for iv in out.intervals if iv.blocking]
        assert len(rules) == len(case.rules)
        for rule, part in zip(rules, case.rules, strict=True):
            assert part in rule
    for institution, day, blocked in case.at:
        assert blocked_at(out, institution, d(day)) is blocked, (institution, day)
    for iv in out.intervals:
        assert iv.rule
        assert iv.message
        assert iv.end is None or iv.start < iv.end
