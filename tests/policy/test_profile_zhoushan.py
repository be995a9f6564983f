"""舟山 2022 (舟医保发〔2022〕16号): notice in working days, restoration, unbinding."""

from __future__ import annotations

import pytest

from app.policy import (
    CalendarYearUnknown,
    Event,
    InstitutionAction,
    WorkingCalendar,
    evaluate,
    evaluate_practitioner,
)

from .cases import Case, check
from .factories import CAL, d, manual, profile, reg, spans, vio

ZHOUSHAN = profile("zhoushan-2022")

CASES = [
    Case(
        "§十六 提前5个工作日书面告知: a 中止 decided Monday 03-03 takes effect 03-10",
        (vio("v1", "2025-03-03", 9),),
        blocking=(("2025-03-10", None, "suspended"),),
        notices=(
            ("sanction_notified", "2025-03-03", "2025-03-10"),
            ("reinstatement_required", "2025-03-10", "2025-06-10"),
        ),
    ),
    Case(
        "§十六 working days skip 国庆 and count the Saturday 调休 day (09-30 → 10-14)",
        (vio("v1", "2025-09-30", 9),),
        blocking=(("2025-10-14", None, "suspended"),),
    ),
    Case(
        "§十四 中止期满 提交恢复申请及整改报告后恢复",
        (vio("v1", "2025-03-03", 9), manual("restore", "2025-07-01")),
        blocking=(("2025-03-10", "2025-07-01", "suspended"),),
    ),
    Case(
        "§十四 a request filed before the term ends restores when the term ends",
        (vio("v1", "2025-03-03", 9), manual("restore", "2025-05-01")),
        blocking=(("2025-03-10", "2025-06-10", "suspended"),),
    ),
    Case(
        "§十四 解除服务协议的 一年内不再签订 (accumulated 12)",
        (vio("v1", "2025-01-06", 9), vio("v2", "2025-05-06", 3)),
        blocking=(
            ("2025-01-13", "2025-05-13", "suspended"),
            ("2025-05-13", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2025-05-13", "2026-05-13"),),
    ),
    Case(
        "§十二 via national-2024: 一次性记满12分 → 3 years",
        (vio("v1", "2025-01-06", 12),),
        blocking=(("2025-01-13", None, "terminated"),),
        notices=(("reapplication_banned", "2025-01-13", "2028-01-13"),),
    ),
    Case(
        "§十四 注销医保医师编码 五年内不得签订 (by hand, not shifted by the notice rule)",
        (manual("cancel_code", "2025-04-01", reason="情节严重"),),
        blocking=(("2025-04-01", None, "code_cancelled"),),
        notices=(("reapplication_banned", "2025-04-01", "2030-04-01"),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.article for c in CASES])
def test_case(case: Case) -> None:
    check(ZHOUSHAN, case)


def test_unbinding_locks_the_code_at_that_institution() -> None:
    """§八 解除聘用关系 → 三个工作日内将医保医师国家编码封锁."""
    events = [reg("P1", "H1", start="2020-01-01", end="2025-04-01"), reg("P1", "H2")]
    out = evaluate_practitioner(ZHOUSHAN, "P1", events, CAL)
    assert [(iv.start, iv.end, iv.status, iv.institution) for iv in out.intervals] == [
        (d("2025-04-01"), None, "code_locked", "H1")
    ]
    assert out.intervals[0].emergency_exempt  # §十五 急救除外
    # 2025-04-04 is 清明: three working days from Tuesday 04-01 end on Monday 04-07
    assert [(n.kind, n.until) for n in out.notices] == [("code_lock_due", d("2025-04-07"))]


def test_rehiring_ends_the_lock_and_another_department_prevents_it() -> None:
    rehired = [
        reg("P1", "H1", start="2020-01-01", end="2025-04-01"),
        reg("P1", "H1", start="2025-09-01"),
    ]
    out = evaluate_practitioner(ZHOUSHAN, "P1", rehired, CAL)
    assert spans(out.intervals) == [("2025-04-01", "2025-09-01", "code_locked")]
    moved = [reg("P1", "H1", "D1", end="2025-04-01"), reg("P1", "H1", "D2", start="2024-01-01")]
    assert evaluate_practitioner(ZHOUSHAN, "P1", moved, CAL).intervals == ()


def test_no_unbinding_lock_where_the_profile_has_no_such_rule() -> None:
    events = [reg("P1", "H1", end="2025-04-01")]
    assert evaluate_practitioner(profile("jining-2024"), "P1", events, CAL).intervals == ()


def test_institution_suspended_doctors_follow() -> None:
    """§十五 定点医疗机构被中止 → 该医疗机构的医保医师协议同时中止（急救除外）."""
    events: list[Event] = [
        reg("P1", "H1"),
        InstitutionAction("H1", "suspend", d("2025-04-01"), None, "协议考核"),
    ]
    inst = evaluate(ZHOUSHAN, events, {"P1": "doctor"}, CAL).institutions["H1"]
    assert spans(inst.intervals) == [("2025-04-01", None, "suspended")]
    assert inst.intervals[0].emergency_exempt
    assert [n.rule for n in inst.notices] == [ZHOUSHAN.institution_follow_rule]


def test_notice_into_an_unknown_year_is_refused_then_overridable() -> None:
    events = [vio("v1", "2026-12-28", 9)]
    with pytest.raises(CalendarYearUnknown, match="2027"):
        evaluate_practitioner(ZHOUSHAN, "P1", events, CAL)
    # 2027-01-01 (a Friday) declared a holiday by the agency's override table
    calendar = WorkingCalendar({d("2027-01-01"): False})
    out = evaluate_practitioner(ZHOUSHAN, "P1", events, calendar)
    # 12-29, 12-30, 12-31, (01-01 off, weekend), 01-04, 01-05
    assert out.intervals[0].start == d("2027-01-05")
