"""威海 2018 (威人社发〔2018〕56号): the case table, exam restoration, the department rule."""

from __future__ import annotations

import pytest

from app.policy import Appeal, Event, evaluate, evaluate_practitioner

from .cases import Case, check
from .factories import CAL, bonus, d, exam, manual, profile, reg, spans, vio

WEIHAI = profile("weihai-2018")

CASES = [
    Case(
        "§二(二)1 累计被扣分满3分的 给予警告",
        (vio("v1", "2025-03-02", 3),),
        warnings=(("2025-03-02", "2026-01-01"),),
        notices=(("warning", "2025-03-02", "2026-01-01"),),
    ),
    Case(
        "§二(二)1 满6分 暂停3个月; §二(二)2 without a passed exam it is not restored",
        (vio("v1", "2025-01-10", 6),),
        blocking=(("2025-01-10", None, "suspended"),),
        notices=(("exam_required", "2025-01-10", "2025-04-10"),),
        rules=("满6分",),
    ),
    Case(
        "§二(二)2 exam passed during the term → restored when the term ends",
        (vio("v1", "2025-01-10", 6), exam("2025-04-01", passed=True)),
        blocking=(("2025-01-10", "2025-04-10", "suspended"),),
    ),
    Case(
        "§二(二)2 exam passed after the term → restored on the exam day",
        (vio("v1", "2025-01-10", 6), exam("2025-05-06", passed=True)),
        blocking=(("2025-01-10", "2025-05-06", "suspended"),),
    ),
    Case(
        "§二(二)2 考核不合格的 暂停期限延缓1个月, then passed",
        (
            vio("v1", "2025-01-10", 6),
            exam("2025-04-01", passed=False),
            exam("2025-05-01", passed=True),
        ),
        blocking=(("2025-01-10", "2025-05-10", "suspended"),),
        notices=(("exam_required", "2025-04-01", "2025-05-10"),),
    ),
    Case(
        "§二(二)2 延缓期满考试仍不合格的 取消资格 且一年内不得重新申请",
        (
            vio("v1", "2025-01-10", 6),
            exam("2025-04-01", passed=False),
            exam("2025-05-12", passed=False),
        ),
        blocking=(
            ("2025-01-10", "2025-05-12", "suspended"),
            ("2025-05-12", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2025-05-12", "2026-05-12"),),
        rules=("满6分", "考试仍不合格"),
    ),
    Case(
        "§二(二)1 满9分 暂停6个月",
        (vio("v1", "2025-01-10", 9), exam("2025-07-01", passed=True)),
        blocking=(("2025-01-10", "2025-07-10", "suspended"),),
        rules=("满9分",),
    ),
    Case(
        "§二(二)1 满12分 暂停1年; §二 暂停时间不受自然年度限制",
        (vio("v1", "2025-03-01", 12), exam("2026-02-20", passed=True)),
        blocking=(("2025-03-01", "2026-03-01", "suspended"),),
        rules=("满12分",),
    ),
    Case(
        "§二(二)1 reading: 9 points in the year of a restored 6-point suspension is no 2nd one;"
        " the 9-point measure applies in full from that day (6 months, then the exam)",
        (vio("v1", "2025-01-10", 6), exam("2025-04-01", passed=True), vio("v2", "2025-06-01", 3)),
        blocking=(
            ("2025-01-10", "2025-04-10", "suspended"),
            ("2025-06-01", None, "suspended"),
        ),
        notices=(("exam_required", "2025-06-01", "2025-12-01"),),
        rules=("满6分", "满9分"),
    ),
    Case(
        "§二(二)1 reading: 9 points while suspended: 6 months from the first day, then the exam",
        (vio("v1", "2025-01-10", 6), vio("v2", "2025-03-01", 3), exam("2025-06-01", passed=True)),
        blocking=(
            ("2025-01-10", "2025-03-01", "suspended"),
            ("2025-03-01", "2025-07-10", "suspended"),
        ),
    ),
    Case(
        "§二(二)1 两次被暂停 取消资格 且两年内不得重新申请",
        (vio("v1", "2025-01-10", 6), exam("2025-04-01", passed=True), vio("v2", "2026-02-01", 6)),
        blocking=(
            ("2025-01-10", "2025-04-10", "suspended"),
            ("2026-02-01", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2026-02-01", "2028-02-01"),),
        rules=("满6分", "两次被暂停"),
    ),
    Case(
        "§二(二)1 re-admission by restore after the two-year ban",
        (
            vio("v1", "2025-01-10", 6),
            exam("2025-04-01", passed=True),
            vio("v2", "2026-02-01", 6),
            manual("restore", "2027-06-01"),
            manual("restore", "2028-03-01"),
        ),
        blocking=(
            ("2025-01-10", "2025-04-10", "suspended"),
            ("2026-02-01", "2028-03-01", "terminated"),
        ),
    ),
    Case(
        "§二(二)1 多点执业的医保医师在不同执业地点违规的 扣分值累计计算",
        (
            vio("v1", "2025-03-01", 3, institution="H1"),
            vio("v2", "2025-04-01", 3, institution="H2"),
        ),
        blocking=(("2025-04-01", None, "suspended"),),
        warnings=(("2025-03-01", "2026-01-01"),),
    ),
    Case(
        "§二(二)2 restoration only by exam: an officer's restore does not lift it",
        (vio("v1", "2025-01-10", 6), manual("restore", "2025-06-01")),
        blocking=(("2025-01-10", None, "suspended"),),
    ),
    Case(
        "§二(三) 暂停期间有加分的 可酌情缩减: shortened to 03-10, exam passed → restored 03-10",
        (
            vio("v1", "2025-01-10", 6),
            bonus("2025-02-01", 2),
            manual("shorten", "2025-02-15", "2025-03-10", reason="举报冒名住院 加分"),
            exam("2025-03-01", passed=True),
        ),
        blocking=(("2025-01-10", "2025-03-10", "suspended"),),
        notices=(("suspension_shortened", "2025-02-15", "2025-03-10"),),
    ),
    Case(
        "§二(三) shortened, still restored only by exam (§二(二)2): open until the pass",
        (
            vio("v1", "2025-01-10", 6),
            bonus("2025-02-01", 1),
            manual("shorten", "2025-02-15", "2025-03-10"),
            exam("2025-03-20", passed=True),
        ),
        blocking=(("2025-01-10", "2025-03-20", "suspended"),),
    ),
    Case(
        "§二(三) 暂停期间有加分的: bonus points earned before the suspension allow nothing",
        (
            bonus("2025-01-05", 5),
            vio("v1", "2025-01-10", 6),
            manual("shorten", "2025-02-15", "2025-03-10"),
            exam("2025-03-01", passed=True),
        ),
        blocking=(("2025-01-10", "2025-04-10", "suspended"),),
        notices=(("shortening_refused", "2025-02-15", None),),
    ),
    Case(
        "§二(三) a shortening never lengthens the term",
        (
            vio("v1", "2025-01-10", 6),
            bonus("2025-02-01", 2),
            manual("shorten", "2025-02-15", "2025-06-01"),
            exam("2025-03-01", passed=True),
        ),
        blocking=(("2025-01-10", "2025-04-10", "suspended"),),
    ),
    Case(
        "§二(三) bonus points never offset deductions: 4 + 2 points with a bonus of 3 is still 6",
        (vio("v1", "2025-01-10", 4), bonus("2025-02-01", 3), vio("v2", "2025-03-01", 2)),
        blocking=(("2025-03-01", None, "suspended"),),
        warnings=(("2025-01-10", "2026-01-01"),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.article for c in CASES])
def test_case(case: Case) -> None:
    check(WEIHAI, case)


def test_practitioner_sanctions_are_not_emergency_exempt() -> None:
    out = evaluate_practitioner(WEIHAI, "P1", [vio("v1", "2025-01-10", 6)], CAL)
    assert [iv.emergency_exempt for iv in out.intervals] == [False]
    assert "考试合格" in out.intervals[0].message


def _department_events(second_department: str = "D1") -> list[Event]:
    return [
        reg("P1", "H1", "D1"),
        reg("P2", "H1", second_department),
        vio("a", "2025-03-01", 3, practitioner="P1"),  # 警告
        vio("b", "2025-05-01", 6, practitioner="P2"),  # 暂停
    ]


def test_department_suspended_when_two_of_it_are_warned_or_suspended() -> None:
    """§二(二)1 同一科室2人及以上被警告或被暂停 → 暂停该科室的社保结算业务3个月."""
    result = evaluate(WEIHAI, _department_events(), {}, CAL)
    dept = result.departments[("H1", "D1")]
    assert spans(dept.intervals) == [("2025-05-01", "2025-08-01", "suspended")]
    assert dept.intervals[0].emergency_exempt is False  # no emergency exception here
    assert dept.intervals[0].message == "科室医保结算暂停至2025-07-31"
    assert [n.kind for n in dept.notices] == ["department_suspended"]


def test_department_rule_needs_two_of_the_same_department() -> None:
    result = evaluate(WEIHAI, _department_events("D2"), {}, CAL)
    assert result.departments == {}


def test_department_rule_counts_within_one_year() -> None:
    events: list[Event] = [
        reg("P1", "H1", "D1"),
        reg("P2", "H1", "D1"),
        vio("a", "2024-11-01", 3, practitioner="P1"),
        vio("b", "2025-02-01", 3, practitioner="P2"),
    ]
    assert evaluate(WEIHAI, events, {}, CAL).departments == {}


def test_department_suspension_follows_an_upheld_appeal() -> None:
    events = [*_department_events(), Appeal("b", "upheld", d("2025-06-01"))]
    assert evaluate(WEIHAI, events, {}, CAL).departments == {}


def test_a_shortening_is_ignored_where_the_text_has_no_bonus_rule() -> None:
    """济宁 has no 加分 article: an officer's shortening changes nothing there."""
    events: list[Event] = [
        vio("v1", "2025-01-10", 6),
        bonus("2025-02-01", 2),
        manual("shorten", "2025-02-15", "2025-03-10"),
    ]
    out = evaluate_practitioner(profile("jining-2024"), "P1", events, CAL)
    assert [(iv.start, iv.end) for iv in out.intervals] == [(d("2025-01-10"), d("2025-04-10"))]
