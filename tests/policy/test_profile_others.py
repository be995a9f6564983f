"""郑州, 沈阳 2011, the national 2024 framework and the 100-point template: case tables."""

from __future__ import annotations

import pytest

from app.policy import Agreement, evaluate_practitioner

from .cases import Case, check
from .factories import CAL, d, exam, profile, reg, vio

ZHENGZHOU = [
    Case(
        "§十四 扣分累计6至8分 暂停医保处方权3个月",
        (vio("v1", "2025-03-01", 6),),
        blocking=(("2025-03-01", "2025-06-01", "suspended"),),
        rules=("6至8分",),
    ),
    Case(
        "§十四 扣分累计9至11分 暂停医保处方权6个月",
        (vio("v1", "2025-03-01", 4), vio("v2", "2025-04-01", 5)),
        blocking=(("2025-04-01", "2025-10-01", "suspended"),),
        rules=("9至11分",),
    ),
    Case(
        "§十四 扣分累计12分 取消医保医师资格 (no ban in the text)",
        (vio("v1", "2025-03-01", 6), vio("v2", "2025-09-01", 6)),
        blocking=(
            ("2025-03-01", "2025-06-01", "suspended"),
            ("2025-09-01", None, "terminated"),
        ),
    ),
    Case(
        "§十四 暂停期限可跨年度执行",
        (vio("v1", "2025-12-01", 6),),
        blocking=(("2025-12-01", "2026-03-01", "suspended"),),
    ),
    Case(
        "§十四 扣分分值记录在考核年度，不跨年度累积",
        (vio("v1", "2025-12-01", 5), vio("v2", "2026-01-02", 5)),
    ),
    Case(
        "§十五 扣除当年全部积分 (recorded as 12 points)",
        (vio("v1", "2025-05-01", 12),),
        blocking=(("2025-05-01", None, "terminated"),),
    ),
]

SHENYANG = [
    Case(
        "§十一(四) 累计扣分满5分 暂停半年; 考试合格后方可恢复",
        (vio("v1", "2025-01-10", 5), exam("2025-05-01", passed=True)),
        blocking=(("2025-01-10", "2025-07-10", "suspended"),),
    ),
    Case(
        "§十一(四) 累计扣分满10分 暂停一年",
        (vio("v1", "2025-01-10", 10), exam("2025-12-01", passed=True)),
        blocking=(("2025-01-10", "2026-01-10", "suspended"),),
    ),
    Case(
        "§十一(四) without a passed exam the suspension stays",
        (vio("v1", "2025-01-10", 5),),
        blocking=(("2025-01-10", None, "suspended"),),
        notices=(("exam_required", "2025-01-10", "2025-07-10"),),
    ),
    Case(
        "§十一(四) a failed exam has no sanction of its own: restored at the passing exam",
        (
            vio("v1", "2025-01-10", 5),
            exam("2025-07-01", passed=False),
            exam("2025-09-01", passed=True),
        ),
        blocking=(("2025-01-10", "2025-09-01", "suspended"),),
    ),
    Case(
        "§十一(四) reading: 5 → 10 in one year escalates, it is not a second suspension",
        (vio("v1", "2025-01-10", 5), vio("v2", "2025-03-01", 5), exam("2026-04-01", passed=True)),
        blocking=(
            ("2025-01-10", "2025-03-01", "suspended"),
            ("2025-03-01", "2026-04-01", "suspended"),
        ),
    ),
    Case(
        "§十一(四) 两次达到暂停 取消资格 一年之内不得重新申请",
        (vio("v1", "2025-01-10", 5), exam("2025-06-01", passed=True), vio("v2", "2026-02-01", 5)),
        blocking=(
            ("2025-01-10", "2025-07-10", "suspended"),
            ("2026-02-01", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2026-02-01", "2027-02-01"),),
    ),
    Case(
        "§十一 基础分数为10分: 4 points is nothing",
        (vio("v1", "2025-01-10", 4),),
    ),
]

NATIONAL = [
    Case(
        "§记分管理 累计记分达到9分 暂停医保支付资格 (parameter: 3 months)",
        (vio("v1", "2025-02-01", 4), vio("v2", "2025-03-01", 5)),
        blocking=(("2025-03-01", "2025-06-01", "suspended"),),
    ),
    Case(
        "§记分管理 8 points: nothing",
        (vio("v1", "2025-02-01", 8),),
    ),
    Case(
        "§记分管理 累计记满12分 终止，1年内不得再次登记备案",
        (vio("v1", "2025-02-01", 9), vio("v2", "2025-04-01", 3)),
        blocking=(
            ("2025-02-01", "2025-04-01", "suspended"),
            ("2025-04-01", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2025-04-01", "2026-04-01"),),
    ),
    Case(
        "§记分管理 一次性记满12分 终止，3年内不得再次登记备案",
        (vio("v1", "2025-02-01", 12),),
        blocking=(("2025-02-01", None, "terminated"),),
        notices=(("reapplication_banned", "2025-02-01", "2028-02-01"),),
    ),
    Case(
        "§记分管理 记分下一个自然年度自动清零",
        (vio("v1", "2024-12-01", 8), vio("v2", "2025-01-02", 8)),
    ),
    Case(
        "§记分管理 终止期满后再次登记备案: a registration after the ban makes them payable there",
        (
            reg(institution="H1", start="2020-01-01"),
            vio("v1", "2025-02-01", 12),
            reg(institution="H2", start="2028-03-01"),
        ),
        blocking=(
            ("2025-02-01", "2028-03-01", "terminated"),
            ("2025-02-01", None, "terminated"),  # at H1, not registered there again
        ),
        at=(
            ("H2", "2028-02-29", True),
            ("H2", "2028-03-01", False),
            ("H1", "2028-03-01", True),
        ),
    ),
    Case(
        "§记分管理 3年内不得再次登记备案: a registration inside the ban ends nothing, then or later",
        (
            reg(institution="H1", start="2020-01-01"),
            vio("v1", "2025-02-01", 12),
            reg(institution="H1", department="D2", start="2027-05-01"),
        ),
        blocking=(("2025-02-01", None, "terminated"),),
        at=(("H1", "2027-05-01", True), ("H1", "2029-01-01", True)),
    ),
    Case(
        "§记分管理 1年内不得再次登记备案 (accumulated): registered again at the same hospital",
        (
            reg(institution="H1", start="2020-01-01"),
            vio("v1", "2025-02-01", 9),
            vio("v2", "2025-04-01", 3),
            reg(institution="H1", department="D2", start="2026-04-01"),
        ),
        blocking=(
            ("2025-02-01", "2025-04-01", "suspended"),
            ("2025-04-01", "2026-04-01", "terminated"),
        ),
        at=(("H1", "2026-03-31", True), ("H1", "2026-04-01", False)),
    ),
    Case(
        "§记分管理 an agreement is not a 登记备案: it does not re-admit here",
        (vio("v1", "2025-02-01", 12), Agreement("P1", "H1", d("2028-03-01"), None)),
        blocking=(("2025-02-01", None, "terminated"),),
    ),
]

TEMPLATE_100 = [
    Case(
        "§十二 记分60分及以上: nothing (40 deducted)",
        (vio("v1", "2025-02-01", 40),),
    ),
    Case(
        "§十二 记分不足60分 培训和管理 (payable)",
        (vio("v1", "2025-02-01", 41),),
        warnings=(("2025-02-01", "2026-01-01"),),
        notices=(("training_required", "2025-02-01", "2026-01-01"),),
    ),
    Case(
        "§十二 记分不足40分 暂停执业资格 (until the score resets)",
        (vio("v1", "2025-02-01", 30), vio("v2", "2025-05-01", 31)),
        blocking=(("2025-05-01", "2026-01-01", "suspended"),),
    ),
    Case(
        "§十二 记分不足20分 取消医保医师资格",
        (vio("v1", "2025-02-01", 81),),
        blocking=(("2025-02-01", None, "terminated"),),
    ),
    Case(
        "§十二 每年1月1日至12月31日为一个记分周期",
        (vio("v1", "2024-06-01", 61), vio("v2", "2025-03-01", 30)),
        blocking=(("2024-06-01", "2025-01-01", "suspended"),),
    ),
]

TABLES = [
    ("zhengzhou", ZHENGZHOU),
    ("shenyang-2011", SHENYANG),
    ("national-2024", NATIONAL),
    ("template-100", TEMPLATE_100),
]


@pytest.mark.parametrize(
    ("profile_id", "case"),
    [(pid, case) for pid, table in TABLES for case in table],
    ids=[f"{pid} {case.article}" for pid, table in TABLES for case in table],
)
def test_case(profile_id: str, case: Case) -> None:
    check(profile(profile_id), case)


def test_zhengzhou_labels_say_what_is_suspended() -> None:
    out = evaluate_practitioner(profile("zhengzhou"), "P1", [vio("v1", "2025-03-01", 6)], CAL)
    assert out.intervals[0].message == "医保处方权暂停至2025-05-31"
    assert not out.intervals[0].emergency_exempt
