"""Acts and inspections (济宁 §四 "同一次检查发现不同违规行为的，分别扣分；同一违规行为涉及不同扣分
情形的，按最高分值扣分"), consequences that follow the item (§六(三), §五(二)), and findings
recorded by item judged exactly as the same points entered by hand were before catalogues."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from app.policy import (
    Appeal,
    Event,
    PractitionerOutcome,
    Violation,
    evaluate,
    evaluate_practitioner,
)
from app.policy.catalogue import price
from app.policy.profile import Profile

from .cases import Case, check
from .factories import CAL, d, profile, reg

JINING = profile("jining-2024")


def by_item(
    vid: str,
    day: str,
    item_id: str,
    *,
    points: int | None = None,
    reason: str | None = None,
    act: str = "",
    inspection: str = "",
    rules: Profile = JINING,
    practitioner: str = "P1",
    institution: str = "H1",
) -> Violation:
    """A finding recorded by its catalogue item, priced as the admin write prices it."""
    priced = price(rules, d(day), item_id=item_id, points=points, exception_reason=reason)
    assert priced.item is not None
    return Violation(
        vid,
        practitioner,
        institution,
        d(day),
        priced.points,
        item_id=item_id,
        catalogue=priced.catalogue,
        act=act,
        inspection=inspection,
    )


def by_hand(vid: str, day: str, points: int, practitioner: str = "P1") -> Violation:
    """A finding as it was recorded before catalogues: points and words only."""
    return Violation(vid, practitioner, "H1", d(day), points, "病历书写不规范")


CASES = [
    Case(
        "§四 同一违规行为涉及不同扣分情形的，按最高分值扣分: one act under 6 + 3 counts 6",
        (
            by_item("a", "2025-03-02", "4.3.1", act="A1", inspection="I1"),
            by_item("b", "2025-03-02", "4.2.2", act="A1", inspection="I1"),
        ),
        blocking=(("2025-03-02", "2025-06-02", "suspended"),),
        rules=("6-8分",),
    ),
    Case(
        "§四 同一次检查发现不同违规行为的，分别扣分: two acts in one inspection, 6 + 3 = 9",
        (
            by_item("a", "2025-03-02", "4.3.1", act="A1", inspection="I1"),
            by_item("b", "2025-03-02", "4.2.2", act="A2", inspection="I1"),
        ),
        blocking=(("2025-03-02", "2025-09-02", "suspended"),),
        rules=("9-11分",),
    ),
    Case(
        "§四 one act under 12 + 1 counts 12 → 解除; §五(二) a §四(四) act: 2 years",
        (
            by_item("a", "2025-03-02", "4.4.3", act="A1"),
            by_item("b", "2025-03-02", "4.1.8", act="A1"),
        ),
        blocking=(("2025-03-02", None, "terminated"),),
        notices=(("reapplication_banned", "2025-03-02", "2027-03-02"),),
    ),
    Case(
        "§四 the same act id on another day is another act (never reaches back): 6 + 6 = 12",
        (
            by_item("a", "2025-03-02", "4.3.1", act="A1"),
            by_item("b", "2025-05-02", "4.3.2", act="A1"),
        ),
        blocking=(("2025-03-02", "2025-05-02", "suspended"), ("2025-05-02", None, "terminated")),
        notices=(("reapplication_banned", "2025-05-02", "2026-05-02"),),
    ),
    Case(
        "§四 an upheld appeal of the act's highest item: the other item counts (3 → nothing)",
        (
            by_item("a", "2025-03-02", "4.3.1", act="A1"),
            by_item("b", "2025-03-02", "4.2.2", act="A1"),
            Appeal("a", "upheld", d("2025-04-01")),
        ),
    ),
    Case(
        "§六(三) and §五(二) by the item: a §四(四) act priced lower by exception is still 严重违规",
        (
            by_item("a", "2025-03-02", "4.4.5", points=6, reason="局务会决定"),
            by_item("b", "2025-03-02", "4.3.1"),
        ),
        blocking=(("2025-03-02", None, "terminated"),),
        # 6 + 6 = 12 on one day, and one of them is a §四(四) act: the serious case, 2 years
        notices=(("reapplication_banned", "2025-03-02", "2027-03-02"),),
    ),
    Case(
        "§五(二) by the item: another act priced 12 by exception is not the serious case: 1 year",
        (by_item("a", "2025-03-02", "4.1.1", points=12, reason="局务会决定"),),
        blocking=(("2025-03-02", None, "terminated"),),
        notices=(("reapplication_banned", "2025-03-02", "2026-03-02"),),
    ),
    Case(
        "§五(二) a finding recorded by points alone is judged by its number, as before: 2 years",
        (by_hand("a", "2025-03-02", 12),),
        blocking=(("2025-03-02", None, "terminated"),),
        notices=(("reapplication_banned", "2025-03-02", "2027-03-02"),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.article for c in CASES])
def test_jining_case(case: Case) -> None:
    check(JINING, case)


def test_an_act_is_one_finding_in_the_period_with_all_its_items() -> None:
    out = evaluate_practitioner(
        JINING,
        "P1",
        [
            by_item("a", "2025-03-02", "4.3.1", act="A1"),
            by_item("b", "2025-03-02", "4.2.2", act="A1"),
            by_item("c", "2025-03-02", "4.1.1", act="A2"),
        ],
        CAL,
    )
    [period] = out.periods
    assert (period.points, period.violations) == (7, ("a", "b", "c"))


def _listed(events: Sequence[Event]) -> list[tuple[str, str]]:
    result = evaluate(JINING, events, {}, CAL)
    return [
        (n.date.isoformat(), n.detail)
        for n in result.institutions["H1"].notices
        if n.kind == "key_monitoring"
    ]


def test_key_monitoring_counts_acts_not_the_items_they_were_recorded_under() -> None:
    """§六(三) 其他违规3项以上: three items of one act are one 违规; three acts are three."""
    one_act: list[Event] = [
        reg(),
        *(
            by_item(f"v{k}", "2025-03-02", item, act="A1")
            for k, item in enumerate(("4.1.1", "4.1.2", "4.1.3"))
        ),
    ]
    assert _listed(one_act) == []
    three_acts: list[Event] = [
        reg(),
        *(
            by_item(f"v{k}", "2025-03-02", item, act=f"A{k}")
            for k, item in enumerate(("4.1.1", "4.1.2", "4.1.3"))
        ),
    ]
    assert _listed(three_acts) == [
        ("2025-03-02", "医保支付资格相关人员P1本记分周期违规3项，列入重点监控名单")
    ]


def test_key_monitoring_follows_the_serious_act_not_the_number() -> None:
    """§六(三) 严重违规（一次性扣12分的）: a §四(四) act, whatever points an exception gave it."""
    lower: list[Event] = [reg(), by_item("a", "2025-03-02", "4.4.5", points=6, reason="局务会决定")]
    assert _listed(lower) == [
        (
            "2025-03-02",
            "医保支付资格相关人员P1严重违规（jining-2024 §四(四)5 每次扣12分），列入重点监控名单",
        )
    ]
    not_serious: list[Event] = [
        reg(),
        by_item("a", "2025-03-02", "4.1.1", points=12, reason="局务会决定"),
    ]
    assert _listed(not_serious) == []
    # recorded by points alone (before catalogues): its number decides, as it did
    hand: list[Event] = [reg(), by_hand("a", "2025-03-02", 12)]
    assert _listed(hand) == [("2025-03-02", "医保支付资格相关人员P1一次性扣12分，列入重点监控名单")]


def test_the_framework_singles_out_a_finding_by_its_number() -> None:
    """医保发〔2024〕23号 一次性记满12分 → 3 years: one act of 12 in the 10-12 band; 11 + 1 from
    two acts on one day reach 12 too, but not in one finding: 1 year."""
    national = profile("national-2024")
    one = evaluate_practitioner(
        national, "P1", [by_item("a", "2025-03-02", "10-12", points=12, rules=national)], CAL
    )
    two = evaluate_practitioner(
        national,
        "P1",
        [
            by_item("a", "2025-03-02", "10-12", points=11, rules=national),
            by_item("b", "2025-03-02", "1-3", points=1, rules=national, act="B"),
        ],
        CAL,
    )

    def ban_until(out: PractitionerOutcome) -> list[str]:
        return [
            n.until.isoformat() for n in out.notices if n.kind == "reapplication_banned" and n.until
        ]

    assert ban_until(one) == ["2028-03-02"]
    assert ban_until(two) == ["2026-03-02"]


def test_a_text_that_counts_one_inspection_once_merges_its_acts() -> None:
    """No seed text says it, but the model holds it: same_inspection = "highest"."""
    merged = dataclasses.replace(
        JINING, combination=dataclasses.replace(JINING.combination, same_inspection="highest")
    )
    events = [
        by_item("a", "2025-03-02", "4.3.1", act="A1", inspection="I1"),
        by_item("b", "2025-03-02", "4.2.2", act="A2", inspection="I1"),
        by_item("c", "2025-03-02", "4.1.1", act="A3", inspection="I2"),
    ]
    assert [p.points for p in evaluate_practitioner(merged, "P1", events, CAL).periods] == [7]
    assert [p.points for p in evaluate_practitioner(JINING, "P1", events, CAL).periods] == [10]


# -- by item = by hand ------------------------------------------------------------------------

# (profile, [(date, item id, points for a range item)]) — a year of findings per text, with
# its tiers reached; recorded by item, then as the same points by hand
LEDGERS: list[tuple[str, list[tuple[str, str, int | None]]]] = [
    (
        "weihai-2018",
        [
            ("2025-02-03", "2.1.1.3", None),
            ("2025-03-03", "2.1.2.2", None),
            ("2025-04-01", "2.1.4.1", None),
            ("2025-09-01", "2.1.3.2", None),
        ],
    ),
    ("weihai-2018", [("2025-02-03", "2.1.5.1", None), ("2026-03-03", "2.1.4.2", None)]),
    (
        "jining-2024",
        [
            ("2025-02-03", "4.2.1", None),
            ("2025-02-20", "4.1.8", None),
            ("2025-03-03", "4.1.2", None),
            ("2025-06-10", "4.2.5", None),
            ("2025-11-02", "4.2.2", None),
        ],
    ),
    # §四(四) by item and 12 by hand: both the serious case (2-year ban, 重点监控名单)
    ("jining-2024", [("2025-02-03", "4.1.8", None), ("2025-04-03", "4.4.4", None)]),
    (
        "zhengzhou",
        [
            ("2025-02-03", "16.1", None),
            ("2025-03-03", "17.4", None),
            ("2025-03-04", "16.2", None),
            ("2025-03-05", "17.1", None),
            ("2025-08-01", "16.3", None),
            ("2025-09-01", "15.4", None),
        ],
    ),
    (
        "shenyang-2011",
        [
            ("2025-02-03", "11.1.2", None),
            ("2025-03-03", "11.2.5", None),
            ("2026-02-03", "11.3.2", None),
        ],
    ),
    (
        "lanzhou-2014",
        [
            ("2025-02-03", "14.1", 3),
            ("2025-03-03", "13.5", None),
            ("2025-07-03", "14.7", 2),
            ("2025-09-03", "12.6", None),
        ],
    ),
    (
        "zhoushan-2022",
        [("2025-02-03", "4-6", 5), ("2025-03-03", "4-6", 4), ("2025-09-03", "1-3", 3)],
    ),
    ("national-2024", [("2025-02-03", "7-9", 9), ("2025-08-03", "10-12", 12)]),
    (
        "sichuan-2025",
        [
            ("2025-02-03", "4-6", 6),
            ("2025-04-03", "1-3", 3),
            ("2025-05-03", "1-3", 1),
            ("2025-09-03", "1-3", 2),
        ],
    ),
]


def _comparable(out: PractitionerOutcome) -> tuple[object, ...]:
    # every interval and period exactly; notices but for the words of their detail
    notices = [(n.date, n.kind, n.subject, n.rule, n.until) for n in out.notices]
    return out.intervals, out.periods, notices


@pytest.mark.parametrize(("profile_id", "ledger"), LEDGERS)
def test_a_finding_by_item_gives_the_timeline_its_points_gave_by_hand(
    profile_id: str, ledger: list[tuple[str, str, int | None]]
) -> None:
    rules = profile(profile_id)
    items = [
        by_item(f"v{k}", day, item, points=points, rules=rules)
        for k, (day, item, points) in enumerate(ledger)
    ]
    hand = [by_hand(v.id, v.date.isoformat(), v.points) for v in items]
    events: list[Event] = [reg(start="2020-01-01")]
    with_items = evaluate(rules, [*events, *items], {}, CAL)
    with_points = evaluate(rules, [*events, *hand], {}, CAL)
    practitioner = with_points.practitioners["P1"]
    assert any(iv.blocking for iv in practitioner.intervals), "the ledger reaches a tier"
    assert _comparable(with_items.practitioners["P1"]) == _comparable(practitioner)
    institution = [(n.date, n.kind, n.until) for n in with_points.institutions["H1"].notices]
    assert [(n.date, n.kind, n.until) for n in with_items.institutions["H1"].notices] == institution
