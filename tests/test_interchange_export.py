"""Out again: a roster imported then exported in the 附件1 layout gives back the same roster (ID
numbers masked: claimgate keeps none in clear); the credit file shows where an opening balance
came from; the list pages and filters; a mid-year balance then a violation sanctions as the
whole year recorded here would."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from app.codes import mask_resident_id
from tests.conftest import Harness
from tests.sheets import read_xlsx, resident_id, xlsx
from tests.test_interchange_import import WH, post, weihai_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")
JN = "H37080200001"


async def test_an_import_then_an_export_gives_back_the_same_roster(h: Harness) -> None:
    rows = weihai_rows()
    assert (await post(h, xlsx(rows), "weihai-roster", as_of="2026-06-30")).status_code == 201
    got = await h.client.get(
        "/v1/admin/exports/roster",
        params={"institution_code": WH, "on": "2026-06-30"},
        headers=h.auth("agency"),
    )
    assert got.status_code == 200
    exported = read_xlsx(got.content)
    assert exported[0][:16] == [
        *(["序号", "执业定点医疗机构代码", "执业定点医疗机构名称", "姓名", "性别", "身份证号码"]),
        "医师类别或其他卫生技术人员类别",
        *(["行政职务", "职称", "执业科别", "资格证书编码", "执业证书编码", "联系电话", "累计扣分"]),
        "服务状态(0有效、1暂停、2解除)",
        "备注",
    ]

    def same(r: list[Any], masked: bool = False) -> tuple[Any, ...]:
        """A line as the roster means it: codes and words trimmed and folded, the ID masked,
        numbers as numbers; 联系电话 is not kept, 序号 is renumbered."""
        import unicodedata

        t = [
            unicodedata.normalize("NFKC", str(c)).strip() if c not in (None, "") else None
            for c in r
        ]
        dept = {"内科专业": "内科"}.get(t[9] or "", t[9])
        return (
            t[1],
            t[2],
            t[3],
            t[4],
            t[5] if masked else mask_resident_id(t[5] or ""),
            int(t[6] or 0),
            t[7],
            t[8],
            dept,
            t[10],
            t[11],
            int(t[13] or 0),
            int((t[14] or "0")[0]),
            t[15],
        )

    original = sorted(same(r) for r in rows[1:] if r[0] in (1, 2, 3))
    back = sorted(same(r, masked=True) for r in exported[1:])
    assert back == original

    csv_ = await h.client.get(
        "/v1/admin/exports/roster",
        params={"region_code": "371000", "on": "2026-06-30", "format": "csv"},
        headers=h.auth("agency"),
    )
    assert csv_.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(csv_.content.decode("utf-8-sig"))))
    assert [line[1:14] for line in lines] == [
        [str(c) if c is not None else "" for c in r[1:14]] for r in exported
    ]
    for secret in (rows[1][5], rows[2][5], "13800000001"):
        assert str(secret) not in csv_.text


async def test_the_list_pages_and_filters(h: Harness) -> None:
    assert (
        await post(h, xlsx(weihai_rows()), "weihai-roster", as_of="2026-06-30")
    ).status_code == 201

    async def listed(**params: Any) -> dict[str, Any]:
        r = await h.client.get(
            "/v1/admin/practitioners",
            params={"on": "2026-07-01", **params},
            headers=h.auth("agency"),
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    everyone = await listed(institution_code=WH)
    assert [i["name"] for i in everyone["items"]] == ["张伟", "李娜", "王芳"]
    assert [i["points"] for i in everyone["items"]] == [3, 6, 0]
    assert [i["name"] for i in (await listed(status="suspended"))["items"]] == ["李娜"]
    assert [i["name"] for i in (await listed(sanctioned="true"))["items"]] == ["李娜"]
    assert [i["name"] for i in (await listed(sanctioned="false"))["items"]] == ["张伟", "王芳"]
    assert [i["name"] for i in (await listed(has_points="true"))["items"]] == ["张伟", "李娜"]
    assert [i["name"] for i in (await listed(region_code="371000", status="active"))["items"]] == [
        "张伟",
        "王芳",
    ]
    page = await listed(limit=2)
    assert len(page["items"]) == 2
    rest = await listed(limit=2, cursor=page["next_cursor"])
    assert [i["name"] for i in rest["items"]] == ["王芳"]
    assert rest["next_cursor"] is None
    assert all("token" not in i for i in everyone["items"])


async def _check(h: Harness, code: str, day: str) -> str:
    r = await h.client.post(
        "/v1/checks",
        json={
            "institution_code": JN,
            "department_code": "A03",
            "practitioner_code": code,
            "service_date": day,
        },
        headers=h.auth("gateway"),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["decision"])


async def test_a_mid_year_balance_then_a_violation_sanctions_as_the_whole_year(h: Harness) -> None:
    """济宁: A has the whole year here (6 points in April → 中止3个月 from 04-10); B comes with
    the same year as a roster's balance. A new 3-point finding on 07-01 stretches both to six
    months from 04-10 (§五(二)): the same days refused, the same rule from 07-01."""
    a, b = "D370802000011", "D370802000012"
    header = [
        "机构代码",
        "机构名称",
        "科室代码",
        "人员代码",
        "姓名",
        "人员类别",
        "执业起始日期",
        "协议起始日期",
        "累计扣分",
        "服务状态",
        "状态起始日期",
    ]
    rows: list[list[Any]] = [
        header,
        [
            JN,
            "济宁市第一人民医院",
            "A03",
            a,
            "甲",
            "医师",
            "2024-01-01",
            "2024-01-01",
            None,
            None,
            None,
        ],
        [
            JN,
            "济宁市第一人民医院",
            "A03",
            b,
            "乙",
            "医师",
            "2024-01-01",
            "2024-01-01",
            6,
            "暂停",
            "2026-04-10",
        ],
    ]
    r = await post(h, xlsx(rows), "claimgate-roster", as_of="2026-06-30")
    assert r.status_code == 201, r.text
    for code, day in ((a, "2026-04-10"), (a, "2026-07-01"), (b, "2026-07-01")):
        v = await h.client.post(
            "/v1/admin/violations",
            json={
                "practitioner_code": code,
                "institution_code": JN,
                "date": day,
                "item_id": "4.2.1" if day == "2026-07-01" else "4.3.1",
            },
            headers={**h.auth("agency"), "Idempotency-Key": f"{code}{day}"},
        )
        assert v.status_code == 201, v.text
    await h.synced()
    days = ["2026-06-30", "2026-07-01", "2026-10-09", "2026-10-10", "2027-01-01"]
    assert [await _check(h, b, d) for d in days] == [await _check(h, a, d) for d in days]
    assert [await _check(h, b, d) for d in days] == ["deny", "deny", "deny", "allow", "allow"]
    files = {}
    for code in (a, b):
        f = (
            await h.client.get(f"/v1/admin/practitioners/{code}/file", headers=h.auth("agency"))
        ).json()
        [judged] = f["by_profile"]
        files[code] = [
            (s["from"], s["to"], s["rule"])
            for s in judged["sanctions"]
            if s["from"] >= "2026-07-01"
        ]
        assert judged["periods"][-1]["points"] == 9
    assert files[a] == files[b]
    credit = await h.client.get(
        "/v1/admin/exports/credit-file",
        params={"practitioner_code": b, "format": "csv", "on": "2026-07-02"},
        headers=h.auth("agency"),
    )
    lines = list(csv.reader(io.StringIO(credit.content.decode("utf-8-sig"))))
    assert [(x[13], x[15], x[16]) for x in lines[1:]] == [
        ("期初结转", "6", "6"),
        (lines[2][13], "3", "9"),
    ]
    assert lines[1][14].startswith("carried over from claimgate-roster sha256:")
    assert lines[1][14].endswith(" as of 2026-06-30")


async def test_violation_lines_are_recorded_by_their_catalogue_item(h: Harness) -> None:
    rid = resident_id("371002", "19800101", 1)
    assert (
        await post(h, xlsx(weihai_rows()), "weihai-roster", as_of="2026-06-30")
    ).status_code == 201
    header = [
        "序号",
        "执业定点医疗机构代码",
        "名称",
        "姓名",
        "身份证号码",
        "违规类别",
        "违规行为描述",
        "单次扣分",
        "违规日期",
    ]
    rows: list[list[Any]] = [
        header,
        [1, WH, "威海市立医院", "张伟", rid, "2.1.1.1", "未验证身份证", None, "2026-07-02"],
        [2, WH, "威海市立医院", "张伟", rid, "§二(一)1(3)", "病历不规范", 1, "2026/7/3"],
        [3, WH, "威海市立医院", "张伟", rid, "乱收费", "", None, "2026-07-04"],
        [4, WH, "威海市立医院", "张伟", rid, "2.1.1.1", "", 5, "2026-07-05"],
    ]
    bad = await post(h, xlsx(rows), "violations")
    assert bad.status_code == 422
    assert sorted((p["row"], p["column"]) for p in bad.json()["report"]["problems"]) == [
        (4, "违规类别"),
        (5, "单次扣分"),
    ]
    ok = await post(h, xlsx(rows[:3]), "violations")
    assert ok.status_code == 201, ok.text
    f = (await h.client.get(f"/v1/admin/practitioners/{rid}/file", headers=h.auth("agency"))).json()
    assert [(v["item_id"], v["points"], v["basis"]) for v in f["violations"]] == [
        ("2.1.1.1", 1, "catalogue"),
        ("2.1.1.3", 1, "catalogue"),
    ]
    # carried 3 + 2 new = 5: still below the 6-point suspension
    assert f["by_profile"][0]["periods"][-1] == {
        "from": "2026-01-01",
        "to": "2027-01-01",
        "points": 5,
        "violations": [v["id"] for v in f["violations"]],
        "carried": 3,
    }


async def test_the_template_is_a_workbook_the_roster_preset_reads(h: Harness) -> None:
    r = await h.client.get("/v1/admin/imports/template", headers=h.auth("agency"))
    assert r.status_code == 200
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["人员名册", "违规记录", "填写说明"]
    header = [c.value for c in book["人员名册"][1]]
    assert header[:3] == ["机构代码*", "机构名称*", "区划代码"]
    book["人员名册"].append(
        [JN, "济宁市第一人民医院", None, None, "内科", "D370802000001", "王伟", "医师"]
    )
    out = io.BytesIO()
    book.save(out)
    dry = await post(h, out.getvalue(), "claimgate-roster", dry_run="true")
    assert dry.status_code == 200
    assert dry.json()["ok"], dry.text
    assert dry.json()["sheet"] == "人员名册"
