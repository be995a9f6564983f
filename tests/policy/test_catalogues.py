"""Catalogues (issue 19): every text's itemised point table as data, the loader's checks on it,
pricing a finding by item, and the 违规类别 lookup the spreadsheet import uses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.policy import ProfileError, load_profiles
from app.policy.catalogue import CatalogueError, describe, item_by_category, price
from app.policy.loader import read_profile

from .factories import d, profile

# (id prefix → number of items, points) per table of each text, as the seed texts list them
TABLES: dict[str, dict[str, tuple[int, tuple[int, int]]]] = {
    # 000 威海 §二(一) 1-5: 7 × 1分, 7 × 2分, 8 × 4分, 7 × 6分, 6 × 一次性12分
    "weihai-2018": {
        "2.1.1.": (7, (1, 1)),
        "2.1.2.": (7, (2, 2)),
        "2.1.3.": (8, (4, 4)),
        "2.1.4.": (7, (6, 6)),
        "2.1.5.": (6, (12, 12)),
    },
    # 001 济宁 §四(一)-(四): 8 × 1分, 5 × 3分, 4 × 6分, 6 × 12分
    "jining-2024": {
        "4.1.": (8, (1, 1)),
        "4.2.": (5, (3, 3)),
        "4.3.": (4, (6, 6)),
        "4.4.": (6, (12, 12)),
    },
    # 002 郑州 第十五条 (扣除当年全部积分 = 12), 第十六条 2分, 第十七条 1分
    "zhengzhou": {"15.": (4, (12, 12)), "16.": (3, (2, 2)), "17.": (9, (1, 1))},
    # 002 沈阳 第十一条(一) 1分, (二) 5分, (三) 10分
    "shenyang-2011": {"11.1.": (5, (1, 1)), "11.2.": (5, (5, 5)), "11.3.": (4, (10, 10))},
    # 004 兰州 第十二条 10分, 第十三条 5分, 第十四条 1-3分
    "lanzhou-2014": {"12.": (6, (10, 10)), "13.": (8, (5, 5)), "14.": (9, (1, 3))},
}
BANDS = {"1-3": (1, 3), "4-6": (4, 6), "7-9": (7, 9), "10-12": (10, 12)}


@pytest.mark.parametrize("profile_id", sorted(TABLES))
def test_every_seed_table_is_in_its_profile_line_by_line(profile_id: str) -> None:
    p = profile(profile_id)
    seen: dict[str, list[tuple[int, int]]] = {}
    for item in p.catalogue:
        prefix = next(k for k in TABLES[profile_id] if item.id.startswith(k))
        seen.setdefault(prefix, []).append((item.min_points, item.max_points))
        assert item.rule.startswith(f"{profile_id} §"), item.rule
        assert item.act
    assert {k: (len(v), v[0]) for k, v in seen.items()} == TABLES[profile_id]
    for prefix, points in seen.items():
        assert len(set(points)) == 1, prefix


def test_item_ids_are_the_article_numbers_and_cite_the_article() -> None:
    jining = profile("jining-2024")
    revoked = jining.item("4.4.4")
    assert revoked is not None
    assert revoked.rule == "jining-2024 §四(四)4 每次扣12分"
    assert revoked.act == "被卫生健康部门吊销执业证书，或者注销注册、收回执业证书的"
    assert revoked.one_shot
    weihai = profile("weihai-2018").item("2.1.5.2")
    assert weihai is not None
    assert weihai.rule == "weihai-2018 §二(一)5(2) 一次性扣12分"
    assert "骗取社会保险基金" in weihai.act
    zhengzhou = profile("zhengzhou").item("16.3")
    assert zhengzhou is not None
    assert zhengzhou.rule == "zhengzhou §十六(三) 每例扣2分"
    lanzhou = profile("lanzhou-2014").item("14.8")
    assert lanzhou is not None
    assert lanzhou.rule == "lanzhou-2014 §十四(八) 一次扣计1-3分"
    assert (lanzhou.min_points, lanzhou.max_points, lanzhou.points_text) == (1, 3, "1-3")


@pytest.mark.parametrize("profile_id", ["national-2024", "sichuan-2025", "zhoushan-2022"])
def test_the_framework_and_its_provincial_versions_carry_the_four_bands(profile_id: str) -> None:
    p = profile(profile_id)
    assert {i.id: (i.min_points, i.max_points) for i in p.catalogue} == BANDS
    assert p.combination.one_shot == "points"  # 一次性记满12分: by the number


def test_only_jinings_serious_acts_are_one_shot_and_only_there_by_item() -> None:
    for p in load_profiles().values():
        flagged = [i.id for i in p.catalogue if i.one_shot]
        if p.id == "jining-2024":
            assert flagged == [f"4.4.{k}" for k in range(1, 7)]
            assert p.combination.one_shot == "item"
            assert "§六(三)" in p.combination.one_shot_rule
        else:
            assert flagged == []
            assert p.combination.one_shot == "points"


def test_template_has_no_table_and_every_profile_says_how_findings_combine() -> None:
    assert profile("template-100").catalogue == ()
    for p in load_profiles().values():
        assert (p.combination.same_act, p.combination.same_inspection) == ("highest", "each")
        assert p.combination.rule.startswith(f"{p.id} §")
    assert "按最高分值扣分" in profile("jining-2024").combination.rule
    # where a text is silent on one act under several items, its rule says so
    for pid in ("weihai-2018", "zhengzhou", "shenyang-2011", "lanzhou-2014"):
        assert "文本未规定" in profile(pid).combination.rule


# -- the loader refuses a malformed catalogue ------------------------------------------------

_HEAD = (
    'id = "x-1"\nname = "x"\nsource = "x"\nregions = ["110100"]\nemergency_exempt = true\n'
    "agreement_required = false\nid_number_as_service_code = false\n"
)
_ITEM = '[[catalogue]]\nid = "{id}"\nrule = "{rule}"\nact = "某违规行为的"\npoints = {points}\n'


def _item(item_id: str = "1.1", rule: str = "x-1 §一(一)1", points: str = "1") -> str:
    return _ITEM.format(id=item_id, rule=rule, points=points)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_item(rule="§一(一)1"), "must cite the article"),
        (_item(rule="y-1 §一(一)1"), "must cite the article"),
        (_item() + _item(), "listed twice"),
        (_item(points="13"), "within 1-12"),
        (_item(points="0"), "within 1-12"),
        (_item(points="[3, 1]"), "within 1-12"),
        (_item(points="[2, 2]"), "a range low < high"),
        (_item(points="[1, 13]"), "within 1-12"),
        (_item(points="[1]"), "a number of points or a range"),
        (_item(points="true"), "a number of points or a range"),
        (_item(points='"6"'), "expected"),
        (_item(item_id="四.1"), "is not an item id"),
        (_item(item_id=""), "is not an item id"),
        (_item() + "surprise = 1\n", "unknown keys"),
        (_item() + "one_shot = true\n", "one_shot items count only"),
        (
            _item() + '[combination]\nsame_act = "highest"\nsame_inspection = "each"\n'
            'rule = "x-1 §一"\none_shot = "item"\none_shot_rule = "x-1 §二"\n',
            "no item is one_shot",
        ),
        ('[combination]\nsame_act = "sum"\nsame_inspection = "each"\nrule = "x-1 §一"\n', "sum"),
        ('[combination]\nsame_act = "highest"\nsame_inspection = "each"\n', "missing key"),
        (
            '[combination]\nsame_act = "highest"\nsame_inspection = "each"\nrule = "x-1 §一"\n'
            'one_shot = "item"\n',
            "needs the one_shot_rule",
        ),
    ],
)
def test_a_malformed_catalogue_is_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "x-1.toml"
    path.write_text(_HEAD + body, encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        read_profile(path)


def test_points_are_checked_against_the_profiles_own_scale(tmp_path: Path) -> None:
    path = tmp_path / "x-1.toml"
    path.write_text(
        _HEAD + "[scoring]\ninitial_points = 10\n" + _item(points="12"), encoding="utf-8"
    )
    with pytest.raises(ProfileError, match="within 1-10"):
        read_profile(path)
    path.write_text(
        _HEAD + "[scoring]\ninitial_points = 100\n" + _item(points="[10, 40]"), encoding="utf-8"
    )
    assert read_profile(path).catalogue[0].points_text == "10-40"


# -- pricing a finding ------------------------------------------------------------------------

DAY = d("2025-06-02")


def test_a_fixed_item_gives_its_points() -> None:
    priced = price(profile("jining-2024"), DAY, item_id="4.3.4", points=None, exception_reason=None)
    assert (priced.points, priced.basis, priced.catalogue) == (6, "catalogue", "jining-2024")
    assert priced.item is not None
    assert priced.item.rule == "jining-2024 §四(三)4 每次扣6分"
    same = price(profile("jining-2024"), DAY, item_id="4.3.4", points=6, exception_reason=None)
    assert same == priced


def test_a_range_is_validated_and_names_the_item_and_its_range() -> None:
    lanzhou = profile("lanzhou-2014")
    assert price(lanzhou, DAY, item_id="14.2", points=3, exception_reason=None).points == 3
    for points in (None, 4, 0):
        with pytest.raises(CatalogueError) as err:
            price(lanzhou, DAY, item_id="14.2", points=points, exception_reason=None)
        assert err.value.code == "POINTS_OUT_OF_RANGE"
        assert err.value.field == "points"
        assert "14.2" in err.value.message
        assert "1-3" in err.value.message
        assert "§十四(二)" in err.value.message


def test_a_fixed_item_refuses_other_points_without_an_exception() -> None:
    with pytest.raises(CatalogueError) as err:
        price(profile("weihai-2018"), DAY, item_id="2.1.1.3", points=7, exception_reason=None)
    assert err.value.code == "POINTS_OUT_OF_RANGE"
    assert "2.1.1.3" in err.value.message
    assert "deducts 1 points" in err.value.message


def test_an_unknown_item_is_refused_without_echoing_it() -> None:
    with pytest.raises(CatalogueError) as err:
        price(profile("jining-2024"), DAY, item_id="9.9.9", points=None, exception_reason=None)
    assert (err.value.code, err.value.field) == ("ITEM_UNKNOWN", "item_id")
    assert "9.9.9" not in err.value.message
    # an item of another text is unknown here (威海's ids are not 济宁's)
    with pytest.raises(CatalogueError, match="no item with this id"):
        price(profile("jining-2024"), DAY, item_id="2.1.1.1", points=None, exception_reason=None)


def test_free_points_only_as_a_documented_exception() -> None:
    jining = profile("jining-2024")
    with pytest.raises(CatalogueError) as err:
        price(jining, DAY, item_id=None, points=7, exception_reason=None)
    assert (err.value.code, err.value.field) == ("ITEM_REQUIRED", "item_id")
    with pytest.raises(CatalogueError, match="give item_id"):
        price(jining, DAY, item_id=None, points=None, exception_reason="复议决定")
    free = price(jining, DAY, item_id=None, points=7, exception_reason="复议决定")
    assert (free.points, free.basis, free.item, free.reason) == (7, "exception", None, "复议决定")
    tied = price(jining, DAY, item_id="4.4.5", points=6, exception_reason="情节轻微 局务会决定")
    assert (tied.points, tied.basis) == (6, "exception")
    assert tied.item is not None
    assert tied.item.one_shot
    with pytest.raises(CatalogueError) as err:
        price(jining, DAY, item_id="4.4.5", points=12, exception_reason="多余")
    assert (err.value.field, err.value.code) == ("exception_reason", "INVALID_FIELD")


def test_a_text_without_a_table_takes_points() -> None:
    priced = price(profile("template-100"), DAY, item_id=None, points=45, exception_reason=None)
    assert (priced.points, priced.basis) == (45, "free")


def test_a_finding_is_priced_by_the_version_of_its_date() -> None:
    sichuan = profile("sichuan-2025")
    before = price(sichuan, d("2025-03-25"), item_id="10-12", points=12, exception_reason=None)
    after = price(sichuan, d("2025-03-26"), item_id="10-12", points=12, exception_reason=None)
    assert (before.catalogue, after.catalogue) == ("national-2024", "sichuan-2025")
    assert describe(sichuan, d("2025-03-25"))["version"] == "national-2024"
    described = describe(sichuan)
    assert described["version"] == "sichuan-2025"
    assert [v["id"] for v in described["versions"]] == ["sichuan-2025", "national-2024"]
    assert described["items"][3] == {
        "id": "10-12",
        "article": "sichuan-2025 §记分管理 (national-2024 §记分管理) 一次记分10-12分",
        "act": "按行为性质和负有责任程度记10-12分的违法违规行为",
        "points": "10-12",
        "min_points": 10,
        "max_points": 12,
        "one_shot": False,
    }


# -- 违规类别 → item (the spreadsheet import's preset) ------------------------------------------


@pytest.mark.parametrize(
    ("profile_id", "category", "item_id"),
    [
        ("jining-2024", "4.4.4", "4.4.4"),
        ("jining-2024", "§四(四)4", "4.4.4"),
        ("jining-2024", "四（四）4", "4.4.4"),
        ("jining-2024", " 被卫生健康部门吊销执业证书，或者注销注册、收回执业证书 ", "4.4.4"),
        ("jining-2024", "借用、套用或出借医保代码", "4.3.4"),
        ("jining-2024", "高套病种", "4.2.3"),
        ("zhengzhou", "第十五条第（一）项", "15.1"),
        ("zhengzhou", "超标准用药", "17.4"),
        ("weihai-2018", "二(一)5(1)", "2.1.5.1"),
        ("weihai-2018", "未按规定验证身份证、社保卡接收参保患者的。", "2.1.1.1"),
        ("lanzhou-2014", "第十四条（三）", "14.3"),
        ("national-2024", "10—12分", "10-12"),
        ("shenyang-2011", "将名章转借给被暂停或取消资格的医保医师开具医保处方", "11.2.3"),
    ],
)
def test_a_category_names_its_item(profile_id: str, category: str, item_id: str) -> None:
    item = item_by_category(profile(profile_id), category)
    assert item is not None
    assert item.id == item_id


@pytest.mark.parametrize(
    ("profile_id", "category"),
    [
        ("jining-2024", "骗取医保基金"),  # §四(四)2 and §四(四)5: ambiguous
        ("jining-2024", "扣分"),  # too short to mean one act
        ("jining-2024", "不存在的违规"),
        ("jining-2024", ""),
        ("template-100", "故意虚报医疗费用"),  # no table
        ("national-2024", "记分管理"),  # every band cites it
    ],
)
def test_an_ambiguous_or_unknown_category_names_nothing(profile_id: str, category: str) -> None:
    assert item_by_category(profile(profile_id), category) is None


def test_a_category_is_looked_up_in_the_version_of_the_day() -> None:
    sichuan = profile("sichuan-2025")
    on_day = item_by_category(sichuan, "1-3", dt.date(2025, 1, 1))
    assert on_day is not None
    assert on_day.rule.startswith("national-2024 §")
