"""An institution judged from the staff its rules read plus head counts equals it judged from its
whole staff (issue 14): over random staffs and histories, for each profile with institution
rules — 威海 §二(二)1 departments, 济宁 §五(三) staff share and §六(三) key monitoring, 兰州
§二十二 terminated doctors. And :class:`StaffCounts` counts what a scan of the registrations
counts, two departments at once as one head."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy import (
    Appeal,
    Event,
    ManualAction,
    Registration,
    StaffCounts,
    Violation,
    evaluate_institution,
    evaluate_practitioner,
)
from app.projection import codec
from app.projection.staff import read_by_rules

from .factories import CAL, profile

DAY0 = dt.date(2024, 1, 1)
SITES = ("H1", "H2")
DEPTS = ("A01", "A02", "A03")


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


days = st.integers(0, 900)
staff_size = st.integers(1, 10)


@st.composite
def registrations(draw: st.DrawFn, n: int) -> list[Registration]:
    out = []
    for p in range(n):
        for _ in range(draw(st.integers(1, 3))):
            start = draw(days)
            # an end before the start, on it, after it, or none
            length = draw(st.one_of(st.none(), st.integers(-30, 600)))
            end = None if length is None else start + length
            out.append(
                Registration(
                    f"P{p}",
                    draw(st.sampled_from(SITES)),
                    draw(st.sampled_from(DEPTS)),
                    day(start),
                    None if end is None else day(end),
                )
            )
    return out


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, list[Event], dict[str, str]]:
    profile_id = draw(
        st.sampled_from(["jining-2024", "lanzhou-2014", "weihai-2018", "weihai-2018"])
    )
    n = draw(staff_size)
    events: list[Event] = list(draw(registrations(n)))
    categories = {f"P{p}": draw(st.sampled_from(["doctor", "doctor", "nurse"])) for p in range(n)}
    vids: list[str] = []
    for k in range(draw(st.integers(0, 24))):
        if draw(st.booleans()):
            vids.append(f"v{k}")
            events.append(
                Violation(
                    f"v{k}",
                    f"P{draw(st.integers(0, n - 1))}",
                    draw(st.sampled_from(SITES)),
                    day(draw(days)),
                    draw(st.sampled_from([1, 3, 3, 4, 6, 9, 12])),
                    department=draw(st.sampled_from([None, *DEPTS])),
                )
            )
        else:
            start = draw(days)
            events.append(
                ManualAction(
                    f"P{draw(st.integers(0, n - 1))}",
                    draw(st.sampled_from([None, *SITES])),
                    draw(st.sampled_from(["suspend", "terminate", "suspend"])),
                    day(start),
                    draw(st.sampled_from([None, day(start + 90)])),
                    "稽核",
                )
            )
    for v in draw(st.lists(st.sampled_from(vids), max_size=3, unique=True)) if vids else []:
        events.append(Appeal(v, "upheld", day(950)))
    return profile_id, events, categories


def registered_on(
    regs: list[Registration],
    when: dt.date,
    category: str | None = None,
    categories: dict[str, str] | None = None,
) -> int:
    return len(
        {
            r.practitioner
            for r in regs
            if r.start <= when
            and (r.end is None or when < r.end)
            and (category is None or (categories or {}).get(r.practitioner) == category)
        }
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10).flatmap(registrations), st.data())
def test_staff_counts_count_each_registered_practitioner_once(
    regs: list[Registration], data: st.DataObject
) -> None:
    categories = {r.practitioner: data.draw(st.sampled_from(["doctor", "nurse"])) for r in regs}
    counts = StaffCounts.of(regs, categories)
    for n in range(-10, 1600, 7):
        when = day(n)
        assert counts.on(when) == registered_on(regs, when)
        assert counts.on(when, "doctor") == registered_on(regs, when, "doctor", categories)


@settings(max_examples=400, deadline=None)
@given(histories())
def test_judged_from_the_staff_the_rules_read_equals_judged_from_the_whole_staff(
    history: tuple[str, list[Event], dict[str, str]],
) -> None:
    profile_id, events, categories = history
    prof = profile(profile_id)
    for code in SITES:
        here: list[Event] = [
            e for e in events if isinstance(e, Appeal) or getattr(e, "institution", None) == code
        ]
        regs = [e for e in here if isinstance(e, Registration)]
        staff = sorted({r.practitioner for r in regs})
        outcomes = {p: evaluate_practitioner(prof, p, events, CAL) for p in staff}
        whole = evaluate_institution(prof, code, here, outcomes, categories, CAL)

        read = [
            p
            for p in staff
            if read_by_rules(
                code,
                codec.to_json(outcomes[p]),
                any(isinstance(e, Violation) and e.practitioner == p for e in here),
            )
        ]
        fewer = [e for e in here if not isinstance(e, Registration) or e.practitioner in read]
        short = evaluate_institution(
            prof,
            code,
            fewer,
            {p: outcomes[p] for p in read},
            {p: categories[p] for p in read},
            CAL,
            staff=StaffCounts.of(regs, categories),
        )
        assert short == whole


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10).flatmap(registrations), st.data())
def test_the_off_roll_counts_the_sanctioned_not_registered_on_each_day(
    regs: list[Registration], data: st.DataObject
) -> None:
    """济宁 §五(三) counts the sanctioned among the staff even when they were no longer registered
    on the day: the incremental count the rule keeps equals a scan of them, day after day."""
    from app.policy.institution_rules import _OffRoll, _registered

    regs_of: dict[str, list[Registration]] = {}
    for r in regs:
        regs_of.setdefault(r.practitioner, []).append(r)
    people = [*sorted(regs_of), "P99"]  # one never registered here
    starts = sorted(
        data.draw(st.lists(st.tuples(days, st.sampled_from(people)), min_size=1, max_size=30))
    )
    roll = _OffRoll(regs_of)
    hit: set[str] = set()
    for n, who in starts:
        roll.add(who, day(n))
        hit.add(who)
        scanned = sum(1 for p in hit if not _registered(regs_of.get(p, ()), day(n)))
        assert roll.count(day(n)) == scanned
