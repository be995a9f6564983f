"""济宁 2024 (济医保发〔2024〕7号): the case table and the institution rules."""

from __future__ import annotations

import pytest

from app.policy import (
    Agreement,
    Appeal,
    Event,
    InstitutionAction,
    evaluate,
    evaluate_practitioner,
)

from .cases import Case, check
from .factories import CAL, d, exam, profile, reg, spans, vio

JINING = profile("jining-2024")

CASES = [
    Case(
        "§五(一) 累计扣分达到5分 约谈 (non-blocking until the year ends)",
        (vio("v1", "2025-03-02", 5),),
        warnings=(("2025-03-02", "2026-01-01"),),
        notices=(("interview", "2025-03-02", "2026-01-01"),),
    ),
    Case(
        "§五(一) 累计扣分6-8分 中止服务协议3个月",
        (vio("v1", "2025-03-02", 6),),
        blocking=(("2025-03-02", "2025-06-02", "suspended"),),
        rules=("6-8分",),
    ),
    Case(
        "§五(一) 累计扣分9-11分 中止6个月 (2025-03-31 + 6 months clamps to 09-30)",
        (vio("v1", "2025-03-31", 9),),
        blocking=(("2025-03-31", "2025-09-30", "suspended"),),
        rules=("9-11分",),
    ),
    Case(
        "§五(一) 12分 at once: the highest threshold only; §五(二) serious case banned 2 years",
        (vio("v1", "2025-03-02", 12),),
        blocking=(("2025-03-02", None, "terminated"),),
        notices=(("reapplication_banned", "2025-03-02", "2027-03-02"),),
    ),
    Case(
        "§五(一) 累计扣分12分 解除服务协议; §五(二) accumulated: banned 1 year",
        (vio("v1", "2025-01-10", 6), vio("v2", "2025-05-10", 6)),
        blocking=(
            ("2025-01-10", "2025-04-10", "suspended"),
            ("2025-05-10", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2025-05-10", "2026-05-10"),),
    ),
    # Escalation in one year, the two rules side by side (issue 15):
    Case(
        "§五(一) 9分 reached while 中止 runs: stretched to 6 months from its first day",
        (vio("v1", "2025-03-02", 6), vio("v2", "2025-04-01", 3)),
        blocking=(
            ("2025-03-02", "2025-04-01", "suspended"),
            ("2025-04-01", "2025-09-02", "suspended"),
        ),
        rules=("6-8分", "9-11分"),
    ),
    Case(
        "§五(二) 期满后自动恢复，同一记分周期内的积分仍然累计: 9分 after the 3 months were served"
        " → 中止 6 months in full from that day",
        (vio("v1", "2025-01-10", 6), vio("v2", "2025-06-01", 3)),
        blocking=(
            ("2025-01-10", "2025-04-10", "suspended"),
            ("2025-06-01", "2025-12-01", "suspended"),
        ),
        rules=("6-8分", "9-11分"),
    ),
    Case(
        "§五(二) 非同一记分周期的不再累计: 6 points, then 3 the next year is nothing",
        (vio("v1", "2025-10-10", 6), vio("v2", "2026-02-01", 3)),
        blocking=(("2025-10-10", "2026-01-10", "suspended"),),
    ),
    Case(
        "§四 每年度末扣分清零: 5 + 1 across 1 January is no suspension",
        (vio("v1", "2025-12-01", 5), vio("v2", "2026-01-05", 1)),
        warnings=(("2025-12-01", "2026-01-01"),),
    ),
    Case(
        "§四 a 中止 runs across the year end",
        (vio("v1", "2025-11-15", 6),),
        blocking=(("2025-11-15", "2026-02-15", "suspended"),),
    ),
    Case(
        "§四 多点执业的 扣分分值累加计算",
        (
            vio("v1", "2025-03-01", 3, institution="H1"),
            vio("v2", "2025-04-01", 3, institution="H2"),
        ),
        blocking=(("2025-04-01", "2025-07-01", "suspended"),),
    ),
    Case(
        "§五(一) 连续三年违规扣分9分以上 解除服务协议",
        (vio("a", "2023-02-01", 9), vio("b", "2024-02-01", 9), vio("c", "2025-02-01", 9)),
        blocking=(
            ("2023-02-01", "2023-08-01", "suspended"),
            ("2024-02-01", "2024-08-01", "suspended"),
            ("2025-02-01", None, "terminated"),
        ),
        rules=("9-11分", "9-11分", "连续三年"),
        notices=(("reapplication_banned", "2025-02-01", "2026-02-01"),),
    ),
    Case(
        "§五(一) two years with 9 points and a gap year are not three consecutive",
        (vio("a", "2022-02-01", 9), vio("b", "2023-02-01", 9), vio("c", "2025-02-01", 9)),
        blocking=(
            ("2022-02-01", "2022-08-01", "suspended"),
            ("2023-02-01", "2023-08-01", "suspended"),
            ("2025-02-01", "2025-08-01", "suspended"),
        ),
    ),
    Case(
        "§六(一) 异议 upheld: the points and the 中止 are gone",
        (vio("v1", "2025-03-02", 6), Appeal("v1", "upheld", d("2025-03-20"))),
    ),
    Case(
        "§六(一) 异议 rejected, then upheld at the second level: the latest decision counts",
        (
            vio("v1", "2025-03-02", 6),
            Appeal("v1", "rejected", d("2025-03-10")),
            Appeal("v1", "upheld", d("2025-04-01")),
        ),
    ),
    Case(
        "§六(一) 异议 rejected: the 中止 stands",
        (vio("v1", "2025-03-02", 6), Appeal("v1", "rejected", d("2025-03-20"))),
        blocking=(("2025-03-02", "2025-06-02", "suspended"),),
    ),
    Case(
        "§三(三) 测试未合格者 解除服务协议，1年内不再签订",
        (exam("2025-06-01", passed=False),),
        blocking=(("2025-06-01", None, "terminated"),),
        notices=(("reapplication_banned", "2025-06-01", "2026-06-01"),),
    ),
    Case(
        "§五(二) a new agreement signed after the ban ends the 解除 there; one signed inside the"
        " ban does not, then or later",
        (
            vio("v1", "2025-03-02", 12),
            Agreement("P1", "H1", d("2026-06-01"), None),
            Agreement("P1", "H2", d("2027-04-01"), None),
        ),
        blocking=(
            ("2025-03-02", "2027-04-01", "terminated"),
            ("2025-03-02", None, "terminated"),  # at H1
        ),
        at=(
            ("H2", "2027-03-31", True),
            ("H2", "2027-04-01", False),
            ("H1", "2027-04-01", True),
            ("H1", "2030-01-01", True),
        ),
    ),
    Case(
        "§五(二) §三(二) 多点执业: signing again at one site is not signing again at the other",
        (
            Agreement("P1", "H1", d("2024-01-01"), None),
            Agreement("P1", "H2", d("2024-01-01"), None),
            vio("v1", "2025-01-10", 6),
            vio("v2", "2025-05-10", 6),
            Agreement("P1", "H1", d("2026-06-01"), None),
            Agreement("P1", "H2", d("2026-09-01"), None),
        ),
        blocking=(
            ("2025-01-10", "2025-04-10", "suspended"),
            ("2025-05-10", "2026-06-01", "terminated"),
            ("2025-05-10", "2026-09-01", "terminated"),  # at H2
        ),
        at=(
            ("H1", "2026-06-01", False),
            ("H2", "2026-06-01", True),
            ("H2", "2026-09-01", False),
        ),
    ),
    Case(
        "§五(二) back after the ban, the points start again: 6 points later that year → 中止",
        (
            vio("v1", "2025-01-06", 12),
            Agreement("P1", "H1", d("2027-02-01"), None),
            vio("v2", "2027-05-01", 6),
        ),
        blocking=(
            ("2025-01-06", "2027-02-01", "terminated"),
            ("2027-05-01", "2027-08-01", "suspended"),
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.article for c in CASES])
def test_case(case: Case) -> None:
    check(JINING, case)


def test_emergency_exempt_per_interval() -> None:
    """§五(二) 医保基金不予支付（急诊、抢救除外）."""
    out = evaluate_practitioner(JINING, "P1", [vio("v1", "2025-03-02", 6)], CAL)
    assert [iv.emergency_exempt for iv in out.intervals] == [True]
    assert out.intervals[0].message == "医保支付资格中止至2025-06-01"


def test_period_points_after_appeals() -> None:
    events: list[Event] = [
        vio("v1", "2025-03-02", 2),
        vio("v2", "2025-04-02", 3),
        vio("v3", "2026-01-02", 1),
        Appeal("v2", "upheld", d("2025-05-01")),
    ]
    out = evaluate_practitioner(JINING, "P1", events, CAL)
    assert [(p.start.isoformat(), p.points, p.violations) for p in out.periods] == [
        ("2025-01-01", 2, ("v1",)),
        ("2026-01-01", 1, ("v3",)),
    ]


def test_staff_share_30_percent_notice() -> None:
    """§五(三) 被中止或解除服务协议的人数达到或超过总数的30% → the agency may act."""
    staff: list[Event] = [reg(p, "H1") for p in ("P1", "P2", "P3", "P4")]
    one: list[Event] = [*staff, vio("v1", "2025-03-01", 6, practitioner="P1")]
    result = evaluate(JINING, one, {}, CAL)
    assert [n.kind for n in result.institutions["H1"].notices] == []  # 1 of 4 = 25 %
    two: list[Event] = [*one, vio("v2", "2025-05-01", 9, practitioner="P2")]
    notices = evaluate(JINING, two, {}, CAL).institutions["H1"].notices
    assert [(n.kind, n.date) for n in notices] == [("institution_threshold", d("2025-05-01"))]
    assert "30%" in notices[0].detail


def test_key_monitoring_list() -> None:
    """§六(三) 一次性扣12分 or 其他违规3项以上 in a period → 重点监控名单."""
    events: list[Event] = [
        reg("P1", "H1"),
        reg("P2", "H2"),
        reg("P3", "H3"),
        vio("a", "2025-02-01", 12, practitioner="P1", institution="H1"),
        *(vio(f"b{i}", f"2025-0{i}-01", 1, practitioner="P2", institution="H2") for i in (2, 3, 4)),
        *(vio(f"c{i}", f"2025-0{i}-01", 1, practitioner="P3", institution="H3") for i in (2, 3)),
    ]
    result = evaluate(JINING, events, {}, CAL)
    listed = {
        code: [(n.date.isoformat(), n.kind) for n in o.notices if n.kind == "key_monitoring"]
        for code, o in result.institutions.items()
    }
    assert listed == {
        "H1": [("2025-02-01", "key_monitoring")],
        "H2": [("2025-04-01", "key_monitoring")],
        "H3": [],
    }
    appealed = evaluate(JINING, [*events, Appeal("b3", "upheld", d("2025-05-01"))], {}, CAL)
    assert [n.kind for n in appealed.institutions["H2"].notices] == []


def test_institution_suspended_practitioners_follow() -> None:
    """§三(四) 定点医药机构被中止 → its staff's agreements are suspended with it."""
    events: list[Event] = [
        reg("P1", "H1"),
        InstitutionAction("H1", "suspend", d("2025-04-01"), d("2025-07-01"), "年度考核不合格"),
    ]
    result = evaluate(JINING, events, {"P1": "doctor"}, CAL)
    inst = result.institutions["H1"]
    assert spans(inst.intervals) == [("2025-04-01", "2025-07-01", "suspended")]
    assert inst.intervals[0].emergency_exempt
    assert [n.kind for n in inst.notices] == ["agreements_follow_institution"]
    assert result.practitioners["P1"].intervals == ()


def test_staff_share_counts_everyone_registered_that_day_exactly() -> None:
    """§五(三) 达到或超过总数的30%: 3 of 10 reaches it, 3 of 11 does not."""
    sanctioned = [vio(f"v{i}", "2025-03-01", 6, practitioner=f"P{i}") for i in range(3)]

    def notices(headcount: int) -> list[str]:
        staff: list[Event] = [reg(f"P{i}", "H1") for i in range(headcount)]
        result = evaluate(JINING, [*staff, *sanctioned], {}, CAL)
        notices = result.institutions["H1"].notices
        return [n.detail for n in notices if n.kind == "institution_threshold"]

    assert len(notices(10)) == 1
    assert "3人/共10人" in notices(10)[0]
    assert notices(11) == []
