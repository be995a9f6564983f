"""Opening balances (期初结转): a mid-year balance followed by new findings must produce the same
sanctions as the whole year recorded here. Each case records a year in full, reads the balance
off its outcome on ``as_of`` as an agency's roster states it (累计扣分, 服务状态 and since when;
no end date), then replays the balance plus what came after and compares, day by day, what a
check would decide, and the sanctions that start after ``as_of`` with the rules they cite."""

from __future__ import annotations

import datetime as dt

import pytest

from app.policy import CarriedOver, Event, PractitionerOutcome, evaluate_practitioner
from app.policy.events import CarriedStatus
from app.policy.profile import Profile

from .factories import CAL, d, exam, profile, reg, vio

JINING = profile("jining-2024")
WEIHAI = profile("weihai-2018")


def balance_of(out: PractitionerOutcome, as_of: dt.date, until: bool = False) -> CarriedOver:
    """What the agency's roster says on ``as_of``: the period's points and the status in force
    (its first day: where the chain of blocking intervals covering ``as_of`` starts)."""
    points = next((p.points for p in out.periods if p.start <= as_of < p.end), 0)
    covering = [iv for iv in out.intervals if iv.blocking and iv.covers(as_of)]
    if not covering:
        return CarriedOver("P1", "H1", as_of, "roster", points)
    iv = covering[0]
    since = iv.start
    while True:  # an escalated suspension is a chain of segments: its first day
        before = [b for b in out.intervals if b.blocking and b.end == since]
        if not before:
            break
        since = before[0].start
    status: CarriedStatus = "terminated" if iv.status == "terminated" else "suspended"
    return CarriedOver(
        "P1", "H1", as_of, "roster", points, status, since, iv.end if until else None
    )


def decided(out: PractitionerOutcome, day: dt.date) -> str | None:
    return next((iv.status for iv in out.intervals if iv.blocking and iv.covers(day)), None)


def after(out: PractitionerOutcome, as_of: dt.date) -> list[tuple[object, ...]]:
    return sorted(
        (iv.start, iv.end, iv.status, iv.rule)
        for iv in out.intervals
        if iv.start > as_of and iv.status != "warning"
    )


def assert_equivalent(
    rules: Profile, before: list[Event], later: list[Event], as_of: str, until: bool = False
) -> tuple[PractitionerOutcome, PractitionerOutcome]:
    day = d(as_of)
    base = [reg(start="2020-01-01")]
    full = evaluate_practitioner(rules, "P1", [*base, *before, *later], CAL)
    balance = balance_of(evaluate_practitioner(rules, "P1", [*base, *before], CAL), day, until)
    carried = evaluate_practitioner(rules, "P1", [*base, balance, *later], CAL)
    for n in range(1, 900):
        when = day + dt.timedelta(days=n)
        assert decided(carried, when) == decided(full, when), when
    assert after(carried, day) == after(full, day)
    new_notices = {(n.kind, n.date, n.until) for n in full.notices if n.date > day}
    assert new_notices == {(n.kind, n.date, n.until) for n in carried.notices if n.date > day}
    for p in full.periods:
        if p.end > day:
            mine = next(q for q in carried.periods if q.start == p.start)
            assert mine.points == p.points
    return full, carried


CASES = [
    pytest.param(
        JINING,
        [vio("v1", "2026-02-10", 3), vio("v2", "2026-04-10", 3)],
        [vio("v3", "2026-07-01", 3)],
        id="济宁 §五(二) 9 points while the 6-point 中止 runs: stretched to 6 months",
    ),
    pytest.param(
        JINING,
        [vio("v1", "2026-01-10", 6)],
        [vio("v3", "2026-07-05", 3)],
        id="济宁 §五(二) 9 points after the 中止 was served: 6 months from that day",
    ),
    pytest.param(
        JINING,
        [vio("v1", "2026-05-01", 9)],
        [vio("v3", "2026-08-01", 3)],
        id="济宁 §五(三) 12 points while the 9-point 中止 runs: 解除",
    ),
    pytest.param(
        JINING,
        [vio("v1", "2026-03-01", 4)],
        [vio("v3", "2026-07-01", 1), vio("v4", "2026-08-01", 1)],
        id="济宁 §五(一) 4 carried, then 5 → 约谈, then 6 → 中止",
    ),
    pytest.param(
        JINING,
        [vio("v1", "2026-03-01", 5)],
        [vio("v3", "2026-07-01", 1)],
        id="济宁 §五(一) a carried 约谈 is not held again; 6 → 中止",
    ),
    pytest.param(
        WEIHAI,
        [vio("v1", "2026-03-10", 6)],
        [vio("v3", "2026-07-05", 3), exam("2026-09-20", passed=True)],
        id="威海 §二(二)1 9 points while the suspension awaits its exam: stretched",
    ),
    pytest.param(
        WEIHAI,
        [vio("v1", "2026-03-10", 6), exam("2026-06-12", passed=True)],
        [vio("v3", "2026-07-05", 3), exam("2027-01-20", passed=True)],
        id="威海 §二(二)1 9 points after the exam restored: 6 months from that day",
    ),
    pytest.param(
        WEIHAI,
        [vio("v1", "2026-02-01", 3)],
        [vio("v3", "2026-07-05", 3), exam("2026-10-20", passed=False)],
        id="威海 §二(二)1 a carried 警告, then 6 → 暂停; §二(二)2 a failed exam extends it",
    ),
    pytest.param(
        WEIHAI,
        [vio("v1", "2026-01-10", 6), exam("2026-04-15", False), exam("2026-05-20", False)],
        [reg(institution="H2", start="2027-06-01"), vio("v3", "2027-08-01", 6, institution="H2")],
        id="威海 §二(二)2 a carried 取消 (its ban's end given) holds until re-registered after it",
    ),
]


@pytest.mark.parametrize(("rules", "before", "later"), CASES)
def test_a_mid_year_balance_then_new_findings_is_the_whole_year(
    rules: Profile, before: list[Event], later: list[Event]
) -> None:
    # a roster gives no end date; a termination's ban end is given (取消 ... 一年内不得重新申请)
    terminated = any(getattr(e, "passed", True) is False for e in before)
    assert_equivalent(rules, before, later, "2026-06-30", until=terminated)


def test_the_carried_sanction_cites_its_source_and_date() -> None:
    _, carried = assert_equivalent(
        JINING, [vio("v1", "2026-04-10", 6)], [vio("v3", "2026-07-01", 3)], "2026-06-30"
    )
    first = next(iv for iv in carried.intervals if iv.blocking)
    assert (first.start, first.end) == (d("2026-04-10"), d("2026-07-01"))
    assert first.rule == "carried over from roster as of 2026-06-30"
    notes = [n for n in carried.notices if n.kind == "carried_over"]
    assert [(n.date, n.detail) for n in notes] == [
        (d("2026-06-30"), "期初结转：本记分周期累计扣分6分，服务状态暂停（自2026-04-10起）")
    ]
    period = next(p for p in carried.periods if p.start == d("2026-01-01"))
    assert (period.points, period.carried, period.violations) == (9, 6, ("v3",))


def test_only_the_latest_balance_counts() -> None:
    early = CarriedOver("P1", "H1", d("2026-03-31"), "roster Q1", 5)
    late = CarriedOver("P1", "H1", d("2026-06-30"), "roster Q2", 2)
    out = evaluate_practitioner(JINING, "P1", [reg(), early, late, vio("v", "2026-07-01", 3)], CAL)
    # 2 + 3 = 5: an interview, not the 中止 that 5 + 2 + 3 would be
    assert not [iv for iv in out.intervals if iv.blocking]
    assert ("interview", d("2026-07-01")) in {(n.kind, n.date) for n in out.notices}


def test_a_suspension_carried_without_a_tier_waits_for_the_regions_restore() -> None:
    """An officer's own 暂停 (no points behind it) in 威海 ends only by a passed exam."""
    hand = CarriedOver("P1", "H1", d("2026-06-30"), "roster", 0, "suspended", d("2026-05-01"))
    out = evaluate_practitioner(WEIHAI, "P1", [reg(), hand], CAL)
    assert [(iv.start, iv.end) for iv in out.intervals if iv.blocking] == [(d("2026-05-01"), None)]
    out = evaluate_practitioner(WEIHAI, "P1", [reg(), hand, exam("2026-07-10", True)], CAL)
    assert [(iv.start, iv.end) for iv in out.intervals if iv.blocking] == [
        (d("2026-05-01"), d("2026-07-10"))
    ]
