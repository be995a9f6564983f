"""Property tests (hypothesis) over every profile.

- replaying the ledger in any order gives the same evaluation;
- removing a violation never lengthens a sanction (the blocked days only shrink);
- points never carry across a period boundary.

The monotone property is checked on ledgers of violations, appeals and (where they do not
restore) exams: re-signing an agreement, an officer's restore and an exam that restores are
judged against the timeline as it stood, so their effect legitimately depends on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy import (
    Agreement,
    Appeal,
    DepartmentAction,
    Event,
    Exam,
    InstitutionAction,
    Interval,
    ManualAction,
    Registration,
    Violation,
    evaluate,
    evaluate_practitioner,
    load_profiles,
)
from app.policy.events import (
    AppealOutcome,
    DepartmentActionKind,
    InstitutionActionKind,
    PractitionerActionKind,
)
from app.policy.profile import Profile

from .factories import CAL

PROFILES = sorted(load_profiles().values(), key=lambda p: p.id)
DAYS = st.dates(min_value=dt.date(2021, 1, 1), max_value=dt.date(2025, 12, 31))
PRACTITIONERS = ("P1", "P2", "P3")
INSTITUTIONS = ("H1", "H2")
CATEGORIES = {"P1": "doctor", "P2": "doctor", "P3": "nurse"}
OUTCOMES: tuple[AppealOutcome, ...] = ("upheld", "rejected")
BY_HAND: tuple[PractitionerActionKind, ...] = ("suspend", "restore", "lock_code")
INSTITUTION_ACTIONS: tuple[InstitutionActionKind, ...] = ("suspend", "restore")
DEPARTMENT_ACTIONS: tuple[DepartmentActionKind, ...] = ("suspend", "restore")


def _points(profile: Profile) -> st.SearchStrategy[int]:
    # large enough to reach every threshold in a few findings, on the 12, 10 or 100 scale
    return st.integers(1, max(3, profile.initial_points // 3))


@st.composite
def violations(
    draw: st.DrawFn, profile: Profile, practitioners: tuple[str, ...] = PRACTITIONERS
) -> list[Violation]:
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(practitioners),
                st.sampled_from(INSTITUTIONS),
                DAYS,
                _points(profile),
            ),
            max_size=12,
        )
    )
    return [Violation(f"v{i}", p, h, day, pts) for i, (p, h, day, pts) in enumerate(rows)]


@st.composite
def ledgers(draw: st.DrawFn, profile: Profile) -> list[Event]:
    """Every kind of event, about a few practitioners at two institutions."""
    events: list[Event] = list(draw(violations(profile)))
    ids = [e.id for e in events if isinstance(e, Violation)]
    if ids:
        events += [
            Appeal(v, outcome, day)
            for v, outcome, day in draw(
                st.lists(
                    st.tuples(st.sampled_from(ids), st.sampled_from(OUTCOMES), DAYS),
                    max_size=4,
                )
            )
        ]
    for p, h, dept, start, end in draw(
        st.lists(
            st.tuples(
                st.sampled_from(PRACTITIONERS),
                st.sampled_from(INSTITUTIONS),
                st.sampled_from(["D1", "D2"]),
                DAYS,
                st.none() | DAYS,
            ),
            min_size=1,
            max_size=5,
        )
    ):
        events.append(Registration(p, h, dept, start, end if end and end > start else None))
    events += [
        Agreement(p, h, day, None)
        for p, h, day in draw(
            st.lists(
                st.tuples(st.sampled_from(PRACTITIONERS), st.sampled_from(INSTITUTIONS), DAYS),
                max_size=3,
            )
        )
    ]
    events += [
        Exam(p, day, passed)
        for p, day, passed in draw(
            st.lists(st.tuples(st.sampled_from(PRACTITIONERS), DAYS, st.booleans()), max_size=4)
        )
    ]
    events += [
        ManualAction(p, h, action, day, None, "稽核")
        for p, h, action, day in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(PRACTITIONERS),
                    st.none() | st.sampled_from(INSTITUTIONS),
                    st.sampled_from(BY_HAND),
                    DAYS,
                ),
                max_size=3,
            )
        )
    ]
    events += [
        InstitutionAction(h, action, day, None, "协议")
        for h, action, day in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(INSTITUTIONS), st.sampled_from(INSTITUTION_ACTIONS), DAYS
                ),
                max_size=2,
            )
        )
    ]
    events += [
        DepartmentAction(h, "D1", action, day, None, "科室")
        for h, action, day in draw(
            st.lists(
                st.tuples(st.sampled_from(INSTITUTIONS), st.sampled_from(DEPARTMENT_ACTIONS), DAYS),
                max_size=2,
            )
        )
    ]
    return events


@st.composite
def profile_and_ledger(draw: st.DrawFn) -> tuple[Profile, list[Event], list[Event]]:
    profile = draw(st.sampled_from(PROFILES))
    events = draw(ledgers(profile))
    return profile, events, draw(st.permutations(events))


@settings(max_examples=150, deadline=None)
@given(profile_and_ledger())
def test_any_replay_order_gives_the_same_evaluation(
    case: tuple[Profile, list[Event], list[Event]],
) -> None:
    profile, events, shuffled = case
    first = evaluate(profile, events, CATEGORIES, CAL)
    assert evaluate(profile, shuffled, CATEGORIES, CAL) == first
    assert evaluate(profile, [*events, *events], CATEGORIES, CAL) == first  # replays count once


def _blocked(intervals: tuple[Interval, ...]) -> list[tuple[dt.date, dt.date]]:
    """Practitioner-wide blocked days as merged ``[start, end)`` spans (open: date.max)."""
    spans = sorted(
        (iv.start, iv.end or dt.date.max)
        for iv in intervals
        if iv.blocking and iv.institution is None
    )
    merged: list[tuple[dt.date, dt.date]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


HORIZON = dt.date(2040, 1, 1)
# Month-end clamping (2025-03-31 + 3 months = 06-30) may shorten a span by up to 3 days:
# a later start can therefore be up to 3/31 of a month "longer" by the same rule.
CLAMP = 3 / 31


def _months(day: dt.date) -> float:
    """A linear month coordinate: spans of whole months measure whole numbers."""
    return day.year * 12 + day.month + day.day / 31


@dataclass(frozen=True)
class Severity:
    """How hard a timeline is on the practitioner, robust to sanctions merely moving later."""

    terminated: dt.date | None  # first day of the first termination
    open_from: dt.date | None  # first day of the first open-ended block
    months: float  # blocked time up to HORIZON, in months
    spans: int


def _severity(intervals: tuple[Interval, ...]) -> Severity:
    spans = _blocked(intervals)
    terminated = [
        iv.start for iv in intervals if iv.status == "terminated" and iv.institution is None
    ]
    return Severity(
        terminated=min(terminated, default=None),
        open_from=min((s for s, e in spans if e == dt.date.max), default=None),
        months=sum(_months(min(e, HORIZON)) - _months(s) for s, e in spans),
        spans=len(spans),
    )


def _no_harsher(after: Severity, before: Severity) -> bool:
    def no_earlier(a: dt.date | None, b: dt.date | None) -> bool:
        return a is None or (b is not None and b <= a)

    return (
        no_earlier(after.terminated, before.terminated)
        and no_earlier(after.open_from, before.open_from)
        and after.months <= before.months + CLAMP * after.spans
    )


@st.composite
def one_practitioner(draw: st.DrawFn) -> tuple[Profile, list[Event], int]:
    profile = draw(st.sampled_from(PROFILES))
    found: list[Event] = list(draw(violations(profile, ("P1",)).filter(bool)))
    if profile.restore != "exam":
        # where an exam restores, its result is judged against the suspension it ends (a
        # failure outside a suspension means nothing), so exams are left out there
        found += [
            Exam("P1", day, passed)
            for day, passed in draw(st.lists(st.tuples(DAYS, st.booleans()), max_size=3))
        ]
    found += [
        Appeal(v.id, "upheld", v.date)
        for v in draw(
            st.lists(st.sampled_from([e for e in found if isinstance(e, Violation)]), max_size=2)
        )
    ]
    found += [
        Registration("P1", "H1", "D1", dt.date(2020, 1, 1), None),
        Agreement("P1", "H1", dt.date(2020, 1, 1), None),
    ]
    count = sum(isinstance(e, Violation) for e in found)
    return profile, found, draw(st.integers(0, count - 1))


@settings(max_examples=300, deadline=None)
@given(one_practitioner())
def test_removing_a_violation_never_lengthens_a_sanction(
    case: tuple[Profile, list[Event], int],
) -> None:
    """Fewer points: no termination or open-ended block that starts earlier, no more months.

    Removing a violation may move a sanction later (its threshold is crossed later), so the
    blocked days are compared by how much and how hard, not day by day.
    """
    profile, events, index = case
    removed = [e for e in events if isinstance(e, Violation)][index]
    fewer = [e for e in events if e is not removed]
    before = _severity(evaluate_practitioner(profile, "P1", events, CAL).intervals)
    after = _severity(evaluate_practitioner(profile, "P1", fewer, CAL).intervals)
    assert _no_harsher(after, before), (after, before)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(PROFILES).flatmap(
        lambda p: st.tuples(st.just(p), violations(p, ("P1",)), violations(p, ("P1",)))
    )
)
def test_points_never_carry_across_a_period_boundary(
    case: tuple[Profile, list[Violation], list[Violation]],
) -> None:
    profile, found, earlier = case
    agreement = Agreement("P1", "H1", dt.date(2020, 3, 15), None)
    out = evaluate_practitioner(profile, "P1", [agreement, *found], CAL)
    # each period holds exactly the points dated inside it, and periods never overlap
    for period in out.periods:
        inside = [v for v in found if period.start <= v.date < period.end]
        assert period.points == sum(v.points for v in inside)
        assert set(period.violations) == {v.id for v in inside}
    for a, b in zip(out.periods, out.periods[1:], strict=False):
        assert a.end <= b.start
    # findings of earlier periods never change a later period's points
    if not found:
        return
    first = min(v.date for v in found)
    moved = [
        Violation(f"e{i}", "P1", v.institution, v.date.replace(year=2020), v.points)
        for i, v in enumerate(earlier)
        if v.date.replace(year=2020) < dt.date(2020, 3, 15) <= first
    ]
    again = evaluate_practitioner(profile, "P1", [agreement, *found, *moved], CAL)
    later = [p for p in again.periods if p.start >= dt.date(2020, 3, 15)]
    assert later == list(out.periods)
