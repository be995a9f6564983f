"""兰州 2014 (定岗医师管理办法): agreement-term scoring and the institution rule of §二十二."""

from __future__ import annotations

import pytest

from app.policy import Agreement, Event, InstitutionAction, evaluate

from .cases import Case, check
from .factories import CAL, d, exam, profile, reg, spans, vio

LANZHOU = profile("lanzhou-2014")
TERM = Agreement("P1", "H1", d("2024-07-01"), None)

CASES = [
    Case(
        "§十七 协议期内累计扣分达6分 暂停医疗保险服务3个月",
        (TERM, vio("v1", "2025-01-10", 6)),
        blocking=(("2025-01-10", "2025-04-10", "suspended"),),
    ),
    Case(
        "§十七 协议期内累计扣分达8分 暂停6个月",
        (TERM, vio("v1", "2025-01-10", 8)),
        blocking=(("2025-01-10", "2025-07-10", "suspended"),),
    ),
    # Escalation in one term, the two rules side by side (issue 15):
    Case(
        "§十七 暂停期满后 用协议期内剩余分值继续: 8分 after the 3 months were served → 暂停 6"
        " months in full from that day",
        (TERM, vio("v1", "2025-01-10", 6), vio("v2", "2025-09-01", 2)),
        blocking=(
            ("2025-01-10", "2025-04-10", "suspended"),
            ("2025-09-01", "2026-03-01", "suspended"),
        ),
        rules=("达6分", "达8分"),
    ),
    Case(
        "§十七 8分 reached while the 6-point 暂停 runs: stretched to 6 months from its first day",
        (TERM, vio("v1", "2025-01-10", 6), vio("v2", "2025-03-01", 2)),
        blocking=(
            ("2025-01-10", "2025-03-01", "suspended"),
            ("2025-03-01", "2025-07-10", "suspended"),
        ),
        rules=("达6分", "达8分"),
    ),
    Case(
        "§十一 协议期内 (not the natural year): 5 + 1 across 1 January still counts",
        (TERM, vio("v1", "2024-12-01", 5), vio("v2", "2025-01-05", 1)),
        blocking=(("2025-01-05", "2025-04-05", "suspended"),),
    ),
    Case(
        "§六(三) 协议期限为两年: a new term starts with fresh points",
        (TERM, vio("v1", "2026-06-01", 5), vio("v2", "2026-07-02", 1)),
    ),
    Case(
        "§十七 累计扣分达10分 终止协议; §十八 一年后方可再次获得",
        (TERM, vio("v1", "2025-01-10", 10)),
        blocking=(("2025-01-10", None, "terminated"),),
        notices=(("reapplication_banned", "2025-01-10", "2026-01-10"),),
    ),
    Case(
        "§十八 一年后 a new agreement without 统一培训并考核合格 does not re-admit",
        (TERM, vio("v1", "2025-01-10", 10), Agreement("P1", "H1", d("2026-03-01"), None)),
        blocking=(("2025-01-10", None, "terminated"),),
        notices=(("reapplication_banned", "2025-01-10", "2026-01-10"),),
    ),
    Case(
        "§十八 须在一年后 考核合格: an exam passed inside the year does not count",
        (
            TERM,
            vio("v1", "2025-01-10", 10),
            exam("2025-12-01", passed=True),
            Agreement("P1", "H1", d("2026-03-01"), None),
        ),
        blocking=(("2025-01-10", None, "terminated"),),
    ),
    Case(
        "§十八 一年后经统一培训并考核合格 + a new agreement: re-admitted on the later day",
        (
            TERM,
            vio("v1", "2025-01-10", 10),
            exam("2026-02-20", passed=True),
            Agreement("P1", "H1", d("2026-03-01"), None),
        ),
        blocking=(("2025-01-10", "2026-03-01", "terminated"),),
        at=(("H1", "2026-02-28", True), ("H1", "2026-03-01", False)),
    ),
    Case(
        "§十八 an agreement signed first, the exam passed after it: re-admitted on the exam day",
        (
            TERM,
            vio("v1", "2025-01-10", 10),
            Agreement("P1", "H1", d("2026-02-01"), None),
            exam("2026-02-20", passed=False),
            exam("2026-03-05", passed=True),
        ),
        blocking=(("2025-01-10", "2026-03-05", "terminated"),),
    ),
    Case(
        "§十八 两次被取消资格者 第二次取消资格五年后可重新申请",
        (
            TERM,
            vio("v1", "2025-01-10", 10),
            exam("2026-02-20", passed=True),
            Agreement("P1", "H1", d("2026-03-01"), None),  # re-signed after the ban and exam
            vio("v2", "2026-05-01", 10),  # a new term: its own 10 points
        ),
        blocking=(
            ("2025-01-10", "2026-03-01", "terminated"),
            ("2026-05-01", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2026-05-01", "2031-05-01"),),
        rules=("达10分", "两次被取消"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.article for c in CASES])
def test_case(case: Case) -> None:
    check(LANZHOU, case)


def _institution(doctors: int, terminated: int, nurses_terminated: int = 0) -> list[Event]:
    events: list[Event] = []
    categories = {}
    for i in range(doctors):
        events.append(reg(f"D{i}", "H1", start="2024-01-01"))
        categories[f"D{i}"] = "doctor"
    for i in range(terminated):
        events.append(vio(f"t{i}", f"2025-0{i + 1}-01", 10, practitioner=f"D{i}"))
    for i in range(nurses_terminated):
        events.append(reg(f"N{i}", "H1", start="2024-01-01"))
        events.append(vio(f"n{i}", "2025-01-01", 10, practitioner=f"N{i}"))
    return events


CATEGORIES = {**{f"D{i}": "doctor" for i in range(60)}, **{f"N{i}": "nurse" for i in range(9)}}


@pytest.mark.parametrize(
    ("doctors", "terminated", "terminated_on", "notices"),
    [
        (8, 1, "2025-01-01", 1),  # 不足10人的 有1人 → 终止
        (15, 1, None, 1),  # 不足20人 needs 2: 1 of 15 is only ≥ 2 % → notice
        (15, 2, "2025-02-01", 2),  # 不足20人的 有2人 → 终止
        (50, 1, None, 1),  # 2 % exactly → 扣分 不得评A (notice)
        (50, 2, None, 2),  # 4 %: still a notice
        (50, 3, "2025-03-01", 3),  # 6 % ≥ 5 % → 终止
        (60, 1, None, 0),  # 1.7 %: nothing
    ],
)
def test_terminated_doctors_share(
    doctors: int, terminated: int, terminated_on: str | None, notices: int
) -> None:
    """§二十二 被取消资格的定岗医师达到核定医师总数的2% / 5% (不足20人2人, 不足10人1人)."""
    result = evaluate(LANZHOU, _institution(doctors, terminated), CATEGORIES, CAL)
    inst = result.institutions["H1"]
    expected = [] if terminated_on is None else [(terminated_on, None, "terminated")]
    assert spans(inst.intervals) == expected
    assert len([n for n in inst.notices if n.kind == "institution_threshold"]) == notices


def test_only_doctors_count() -> None:
    events = _institution(8, 0, nurses_terminated=1)
    assert evaluate(LANZHOU, events, CATEGORIES, CAL).institutions["H1"].intervals == ()


def test_institution_restored_after_rectification() -> None:
    """§二十二 待医疗机构完成整改，经验收合格后 ... 恢复定点服务."""
    events = [
        *_institution(8, 1),
        InstitutionAction("H1", "restore", d("2025-06-01"), None, "整改验收合格"),
    ]
    inst = evaluate(LANZHOU, events, CATEGORIES, CAL).institutions["H1"]
    assert spans(inst.intervals) == [("2025-01-01", "2025-06-01", "terminated")]
