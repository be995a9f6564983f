"""Property tests (hypothesis) over every profile.

- replaying the ledger in any order gives the same evaluation;
- a finding never changes anything before its own date;
- a finding never lightens the sanctions in force or decided on its own date (judged with what
  is known that day);
- points never carry across a period boundary.

What no longer holds, and why: "fewer violations never sanctioned longer". Under the texts'
escalation rules (issue 15: 济宁 §五(二), 兰州 §十七) a higher tier reached after the first
suspension was served applies in full from that day, while one reached during it stretches
the running suspension. So in 济宁 6 points (Feb) + 2 (Mar) + 1 (Apr) + 1 (Jul) cost 6 months
(9 points reached in April, while the 3 months run), and the same ledger without the April
finding costs 3 + 6 = 9 months (9 points reached in July, after they were served). The two
causal properties above are what the texts do satisfy: a finding only ever adds, from its
own date on, to what the practitioner faced that day.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy import (
    Agreement,
    Appeal,
    Bonus,
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
BY_HAND: tuple[PractitionerActionKind, ...] = (
    "suspend",
    "restore",
    "lock_code",
    "terminate",
    "cancel_code",
)
INSTITUTION_ACTIONS: tuple[InstitutionActionKind, ...] = ("suspend", "restore")
DEPARTMENT_ACTIONS: tuple[DepartmentActionKind, ...] = ("suspend", "restore")


def _points(profile: Profile) -> st.SearchStrategy[int]:
    # large enough to reach every threshold in a few findings, on the 12, 10 or 100 scale
    return st.integers(1, max(3, profile.initial_points // 3))


@st.composite
def violations(
    draw: st.DrawFn, profile: Profile, practitioners: tuple[str, ...] = PRACTITIONERS
) -> list[Violation]:
    items = [(v.id, i.id) for v in profile.versions() for i in v.catalogue] or [("", "")]
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(practitioners),
                st.sampled_from(INSTITUTIONS),
                DAYS,
                _points(profile),
                # findings grouped into acts and inspections (济宁 §四), some by catalogue item
                st.sampled_from(("", "", "a", "b")),
                st.sampled_from(("", "i")),
                st.sampled_from(items),
            ),
            max_size=12,
        )
    )
    return [
        Violation(
            f"v{i}",
            p,
            h,
            day,
            pts,
            item_id=item,
            catalogue=catalogue,
            act=act,
            inspection=inspection,
        )
        for i, (p, h, day, pts, act, inspection, (catalogue, item)) in enumerate(rows)
    ]


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
        Bonus(p, day, points)
        for p, day, points in draw(
            st.lists(st.tuples(st.sampled_from(PRACTITIONERS), DAYS, st.integers(1, 5)), max_size=2)
        )
    ]
    events += [
        ManualAction(p, None, "shorten", day, day + dt.timedelta(days=days), "加分")
        for p, day, days in draw(
            st.lists(
                st.tuples(st.sampled_from(PRACTITIONERS), DAYS, st.integers(1, 120)), max_size=2
            )
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


Scope = str | None


def _blocked(intervals: tuple[Interval, ...], scope: Scope) -> list[tuple[dt.date, dt.date]]:
    """Days blocked for a claim at ``scope`` (None: everywhere) as merged ``[start, end)``."""
    spans = sorted(
        (iv.start, iv.end or dt.date.max)
        for iv in intervals
        if iv.blocking and iv.institution in (None, scope)
    )
    merged: list[tuple[dt.date, dt.date]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _within(small: list[tuple[dt.date, dt.date]], big: list[tuple[dt.date, dt.date]]) -> bool:
    """Every day of ``small`` lies in ``big`` (both merged and sorted)."""
    return all(any(b0 <= s0 and s1 <= b1 for b0, b1 in big) for s0, s1 in small)


@st.composite
def a_finding_added(draw: st.DrawFn) -> tuple[Profile, list[Event], Violation]:
    """A profile, a ledger of every kind of event, and one more finding about P1."""
    profile = draw(st.sampled_from(PROFILES))
    events = draw(ledgers(profile))
    if not any(isinstance(e, Registration) and e.practitioner == "P1" for e in events):
        events.append(Registration("P1", "H1", "D1", dt.date(2020, 1, 1), None))
    # findings packed into two years, so that tiers are reached while sanctions still run
    dense = st.dates(min_value=dt.date(2024, 6, 1), max_value=dt.date(2025, 12, 31))
    acts = st.sampled_from(("", "a"))
    days: list[dt.date] = []
    for i, (day, points, institution, act) in enumerate(
        draw(
            st.lists(
                st.tuples(dense, _points(profile), st.sampled_from(INSTITUTIONS), acts),
                max_size=6,
            )
        )
    ):
        days.append(day)
        events.append(Violation(f"p{i}", "P1", institution, day, points, act=act))
    # sometimes on the day of an earlier finding, so that it may join that act (济宁 §四)
    day = draw(st.sampled_from(days) | dense) if days else draw(dense)
    points = draw(_points(profile))
    institution = draw(st.sampled_from(INSTITUTIONS))
    act = draw(acts)
    return profile, events, Violation("added", "P1", institution, day, points, act=act)


@settings(max_examples=300, deadline=None)
@given(a_finding_added())
def test_a_finding_never_changes_anything_before_its_date(
    case: tuple[Profile, list[Event], Violation],
) -> None:
    profile, events, added = case
    day = added.date

    def before(events: list[Event]) -> set[tuple[object, ...]]:
        out = evaluate_practitioner(profile, "P1", events, CAL)
        return {
            (iv.start, min(iv.end or dt.date.max, day), iv.status, iv.institution, iv.rule)
            for iv in out.intervals
            if iv.start < day
        }

    assert before([*events, added]) == before(events)


@settings(max_examples=300, deadline=None)
@given(a_finding_added())
def test_a_finding_never_lightens_what_stands_on_its_date(
    case: tuple[Profile, list[Event], Violation],
) -> None:
    """Judged with what is known on the finding's date, every day blocked without it stays
    blocked with it, at every institution (what follows later may merge or move sanctions)."""
    profile, events, added = case
    without = evaluate_practitioner(profile, "P1", events, CAL, as_of=added.date)
    with_it = evaluate_practitioner(profile, "P1", [*events, added], CAL, as_of=added.date)
    for scope in (None, *INSTITUTIONS):
        assert _within(_blocked(without.intervals, scope), _blocked(with_it.intervals, scope)), (
            scope
        )


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
        assert period.points == _combined(profile, inside)
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


def _combined(profile: Profile, found: list[Violation]) -> int:
    """Points of ``found`` as every shipped text combines them: one act (a practitioner's
    findings with one act id on one day) once, at its highest; different acts each."""
    assert all(
        (v.combination.same_act, v.combination.same_inspection) == ("highest", "each")
        for v in profile.versions()
    )
    acts: dict[tuple[str, dt.date, str], int] = {}
    for v in found:
        key = (v.practitioner, v.date, v.act or f"#{v.id}")
        acts[key] = max(acts.get(key, 0), v.points)
    return sum(acts.values())


def test_fewer_findings_can_cost_more_time_under_the_text() -> None:
    """Why "fewer violations never sanctioned longer" was dropped (济宁 §五(一)(二), issue 15):
    without the April finding, 9 points are reached after the 3 months were served and the
    9-11 measure applies in full; with it, they are reached while the 3 months run."""
    jining = next(p for p in PROFILES if p.id == "jining-2024")
    found = [
        Violation("a", "P1", "H1", dt.date(2025, 2, 1), 6),
        Violation("b", "P1", "H1", dt.date(2025, 3, 1), 2),
        Violation("c", "P1", "H1", dt.date(2025, 4, 1), 1),
        Violation("d", "P1", "H1", dt.date(2025, 7, 1), 1),
    ]

    def months(events: list[Violation]) -> int:
        spans = _blocked(evaluate_practitioner(jining, "P1", events, CAL).intervals, None)
        return sum((e.year - s.year) * 12 + e.month - s.month for s, e in spans)

    assert months(found) == 6
    assert months([v for v in found if v.id != "c"]) == 9
