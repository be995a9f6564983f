"""舟山 2022 (舟医保发〔2022〕16号): notice in working days, restoration, unbinding."""

from __future__ import annotations

import pytest

from app.policy import (
    Agreement,
    CalendarYearUnknown,
    Event,
    InstitutionAction,
    WorkingCalendar,
    evaluate,
    evaluate_practitioner,
)
from app.policy.manual import banned_restore

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
        "§十四 待中止期满 ... 提交恢复申请 (second reading): a request filed before the term ends"
        " is not one — it restores nothing, then or later",
        (vio("v1", "2025-03-03", 9), manual("restore", "2025-05-01")),
        blocking=(("2025-03-10", None, "suspended"),),
        notices=(("reinstatement_premature", "2025-05-01", "2025-06-10"),),
        at=(("H1", "2025-06-10", True), ("H1", "2026-01-01", True)),
    ),
    Case(
        "§十四 filed too early, then again after the term: restored on the second request",
        (
            vio("v1", "2025-03-03", 9),
            manual("restore", "2025-05-01"),
            manual("restore", "2025-06-16"),
        ),
        blocking=(("2025-03-10", "2025-06-16", "suspended"),),
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
        "§十四 解除服务协议的 一年内不再签订 — the local text governs a one-shot 12 too (not the"
        " national 3 years)",
        (vio("v1", "2025-01-06", 12),),
        blocking=(("2025-01-13", None, "terminated"),),
        notices=(("reapplication_banned", "2025-01-13", "2026-01-13"),),
    ),
    Case(
        "§十四 解除: an agreement after the year re-admits; an officer's restore inside it does not",
        (
            vio("v1", "2025-01-06", 12),
            manual("restore", "2025-06-02"),
            Agreement("P1", "H1", d("2026-02-02"), None),
        ),
        blocking=(("2025-01-13", "2026-02-02", "terminated"),),
        notices=(("restore_refused", "2025-06-02", "2026-01-13"),),
    ),
    Case(
        "§十四 注销医保医师编码 五年内不得签订; §十六 by hand it takes effect 5 working days after"
        " the decision (04-01 → 04-09 across 清明)",
        (manual("cancel_code", "2025-04-01", reason="情节严重"),),
        blocking=(("2025-04-09", None, "code_cancelled"),),
        notices=(
            ("sanction_notified", "2025-04-01", "2025-04-09"),
            ("reapplication_banned", "2025-04-09", "2030-04-09"),
        ),
    ),
    Case(
        "§十四 注销 is a ban: an officer's restore inside the five years is refused, one after"
        " them lifts it",
        (
            manual("cancel_code", "2025-04-01", reason="情节严重"),
            manual("restore", "2026-04-01"),
            manual("restore", "2030-05-06"),
        ),
        blocking=(("2025-04-09", "2030-05-06", "code_cancelled"),),
        notices=(("restore_refused", "2026-04-01", "2030-04-09"),),
    ),
    Case(
        "§十四 解除 by hand: the one-year ban binds a restore too",
        (
            manual("terminate", "2025-04-01", reason="严重违规"),
            manual("restore", "2025-09-01"),
        ),
        blocking=(("2025-04-09", None, "terminated"),),
        notices=(
            ("reapplication_banned", "2025-04-09", "2026-04-09"),
            ("restore_refused", "2025-09-01", "2026-04-09"),
        ),
    ),
    Case(
        "§十六 a hand-made 中止 takes effect 5 working days after the decision, keeping its length",
        (manual("suspend", "2025-03-03", "2025-06-03", reason="稽核"),),
        blocking=(("2025-03-10", "2025-06-10", "suspended"),),
        notices=(("sanction_notified", "2025-03-03", "2025-03-10"),),
    ),
    Case(
        "§十六 a restore during the notice period cancels the hand-made 中止",
        (manual("suspend", "2025-03-03", reason="稽核"), manual("restore", "2025-03-05")),
    ),
    Case(
        "§八 a hand-made code lock is not a §十六 decision: not shifted",
        (manual("lock_code", "2025-03-03", institution="H1"),),
        blocking=(("2025-03-03", None, "code_locked"),),
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


def test_the_admin_api_can_tell_a_banned_restore_before_writing_it() -> None:
    """§十四: the pure check the admin API runs to refuse a restore inside a 注销's ban."""
    actions = [
        manual("cancel_code", "2025-04-01", institution="H1", reason="情节严重"),
        manual("suspend", "2025-04-01", institution="H2"),
    ]
    refused = banned_restore(ZHOUSHAN, actions, manual("restore", "2026-04-01"), CAL)
    assert refused is not None
    rule, until = refused
    assert "注销" in rule
    assert until == d("2030-04-09")
    # scoped to the other institution it reaches only the suspension there: allowed
    assert (
        banned_restore(ZHOUSHAN, actions, manual("restore", "2026-04-01", institution="H2"), CAL)
        is None
    )
    # after the five years: allowed
    assert banned_restore(ZHOUSHAN, actions, manual("restore", "2030-04-09"), CAL) is None
    # 济宁 has no such ban
    assert (
        banned_restore(profile("jining-2024"), actions, manual("restore", "2026-04-01"), CAL)
        is None
    )
