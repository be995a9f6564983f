"""四川 2025 (川医保规〔2025〕1号): a provincial 实施细则 under the national framework, as data;
its version history (the bare framework before 2025-03-26); the national tally across regions."""

from __future__ import annotations

import pytest

from app.policy import Event, evaluate_practitioner, profile_for_region, sites_counted

from .cases import Case, check
from .factories import CAL, blocking, d, profile, reg, vio

SICHUAN = profile("sichuan-2025")
NATIONAL = profile("national-2024")

CASES = [
    Case(
        "§记分管理 记分达5分 谈话提醒 学习培训 (payable, until the year ends)",
        (vio("v1", "2025-05-06", 5),),
        warnings=(("2025-05-06", "2026-01-01"),),
        notices=(
            ("interview", "2025-05-06", "2026-01-01"),
            ("training_required", "2025-05-06", "2026-01-01"),
        ),
    ),
    Case(
        "§记分管理 记分达9分 暂停医保支付资格2个月",
        (vio("v1", "2025-05-06", 9),),
        blocking=(("2025-05-06", "2025-07-06", "suspended"),),
        rules=("sichuan-2025 §记分管理 记分达9分",),
    ),
    Case(
        "§记分管理 记分达10分 暂停4个月",
        (vio("v1", "2025-05-06", 4), vio("v2", "2025-06-01", 6)),
        blocking=(("2025-06-01", "2025-10-01", "suspended"),),
        rules=("达10分",),
    ),
    Case(
        "§记分管理 记分达11分 暂停6个月",
        (vio("v1", "2025-05-06", 11),),
        blocking=(("2025-05-06", "2025-11-06", "suspended"),),
    ),
    Case(
        "§记分管理 记分达12分 终止 (the framework's ban: 1 year accumulated)",
        (vio("v1", "2025-05-06", 9), vio("v2", "2025-08-01", 3)),
        blocking=(
            ("2025-05-06", "2025-07-06", "suspended"),
            ("2025-08-01", None, "terminated"),
        ),
        notices=(("reapplication_banned", "2025-08-01", "2026-08-01"),),
    ),
    Case(
        "§记分管理 一次性记满12分: 3 years without 再次登记备案",
        (vio("v1", "2025-05-06", 12),),
        blocking=(("2025-05-06", None, "terminated"),),
        notices=(("reapplication_banned", "2025-05-06", "2028-05-06"),),
    ),
    Case(
        "§记分管理 escalation after the 2 months were served: 10 points → 4 months in full",
        (vio("v1", "2025-04-01", 9), vio("v2", "2025-07-01", 1)),
        blocking=(
            ("2025-04-01", "2025-06-01", "suspended"),
            ("2025-07-01", "2025-11-01", "suspended"),
        ),
        rules=("达9分", "达10分"),
    ),
    Case(
        "§记分管理 escalation while the 2 months run: stretched to 4 months from the first day",
        (vio("v1", "2025-04-01", 9), vio("v2", "2025-05-01", 1)),
        blocking=(
            ("2025-04-01", "2025-05-01", "suspended"),
            ("2025-05-01", "2025-08-01", "suspended"),
        ),
    ),
    # Versions: national-2024 (the framework, 3 months at 9 points) before 2025-03-26.
    Case(
        "versions: a finding of 2025-02-03 is judged by the framework in force then (3 months)",
        (vio("v1", "2025-02-03", 9),),
        blocking=(("2025-02-03", "2025-05-03", "suspended"),),
        rules=("national-2024 §记分管理 累计记分达到9分",),
    ),
    Case(
        "versions: from 2025-03-26 the 细则 judges (2 months)",
        (vio("v1", "2025-03-26", 9),),
        blocking=(("2025-03-26", "2025-05-26", "suspended"),),
        rules=("sichuan-2025",),
    ),
    Case(
        "versions: the 细则 never rewrites the past — February's 3 months stand; 10 points in"
        " June take the 细则's 4 months from that day",
        (vio("v1", "2025-02-03", 9), vio("v2", "2025-06-02", 1)),
        blocking=(
            ("2025-02-03", "2025-05-03", "suspended"),
            ("2025-06-02", "2025-10-02", "suspended"),
        ),
        rules=("national-2024", "sichuan-2025 §记分管理 记分达10分"),
    ),
    Case(
        "versions: the points of the year carry across the change of text (5 + 4 = 9 in April)",
        (vio("v1", "2025-02-03", 5), vio("v2", "2025-04-07", 4)),
        blocking=(("2025-04-07", "2025-06-07", "suspended"),),
        rules=("sichuan-2025 §记分管理 记分达9分",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.article for c in CASES])
def test_case(case: Case) -> None:
    check(SICHUAN, case)


def test_a_new_province_is_a_new_file() -> None:
    """Every 四川 city and prefecture (and their counties) selects the 细则."""
    for region in ("510100", "510104", "511400", "513400", "513433"):
        assert profile_for_region(region).id == "sichuan-2025"
    assert SICHUAN.previous is NATIONAL
    assert SICHUAN.at(d("2025-03-25")) is NATIONAL
    assert SICHUAN.at(d("2025-03-26")) is SICHUAN
    assert NATIONAL.at(d("2030-01-01")) is NATIONAL  # the framework's own regions keep it


BEIJING, CHENGDU, JINAN = "H11010500001", "H51010400001", "H37080200001"


def _two_regions() -> list[Event]:
    """A doctor practising in 北京 (national-2024) and in 成都 (sichuan-2025)."""
    return [
        reg(institution=BEIJING, start="2024-01-01"),
        reg(institution=CHENGDU, start="2024-06-01"),
        vio("b", "2025-05-06", 5, institution=BEIJING),
        vio("c", "2025-06-03", 4, institution=CHENGDU),
    ]


def test_national_tally_adds_up_points_across_regions() -> None:
    """医保发〔2024〕23号: one record per person nationwide — 5 points in 北京 and 4 in 成都 are 9,
    and each region applies its own measure to the total at its own sites."""
    profiles = {BEIJING: NATIONAL, CHENGDU: SICHUAN}
    counted = sites_counted(profiles)
    assert counted == {
        "national-2024": frozenset({BEIJING, CHENGDU}),
        "sichuan-2025": frozenset({BEIJING, CHENGDU}),
    }
    events = _two_regions()
    sichuan = evaluate_practitioner(SICHUAN, "P1", events, CAL)
    national = evaluate_practitioner(NATIONAL, "P1", events, CAL)
    assert blocking(sichuan) == [("2025-06-03", "2025-08-03", "suspended")]  # 四川: 2 months
    assert blocking(national) == [("2025-06-03", "2025-09-03", "suspended")]  # framework: 3
    assert [p.points for p in sichuan.periods] == [9]


def test_a_city_tally_does_not_mix_with_the_national_one() -> None:
    """济宁 2024 predates the framework and shares records city-wide only."""
    jining = profile("jining-2024")
    counted = sites_counted({BEIJING: NATIONAL, CHENGDU: SICHUAN, JINAN: jining})
    assert counted["jining-2024"] == frozenset({JINAN})
    assert counted["sichuan-2025"] == frozenset({BEIJING, CHENGDU})
