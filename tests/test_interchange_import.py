"""Spreadsheet imports through POST /v1/admin/imports: agencies' real layouts import exactly;
Excel's mangled numbers, wrong encodings and bad rows are refused with the rows named and
nothing written; a dry run writes nothing; the same file twice applies once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import text

from app.interchange.endpoints import ImportReport
from tests.conftest import Harness
from tests.sheets import WEIHAI_HEADER, delimited, resident_id, xlsx

pytestmark = pytest.mark.asyncio(loop_scope="session")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WH = "H37100200001"  # 威海 (371002 → the 371000 profile)
ID1 = resident_id("371002", "19800101", 1)
ID2 = resident_id("371002", "19850202", 2)
ID3 = resident_id("371002", "19900303", 3)


def weihai_rows() -> list[list[Any]]:
    return [
        WEIHAI_HEADER,
        [
            1,
            WH,
            "威海市立医院",
            "张伟",
            "男",
            ID1,
            1,
            2,
            "主治医师",
            "内科",
            "Q001",
            "L001",
            "13800000001",
            3,
            0,
            None,
        ],
        [
            2,
            "Ｈ３７１００２００００１ ",
            "威海市立医院",
            " 李娜 ",
            "女",
            ID2,
            "1",
            None,
            "医师",
            "内科专业",
            "Q002",
            "L002",
            None,
            6,
            "1 暂停",
            "复核中",
        ],
        [None] * 16,
        [
            3,
            WH,
            "威海市立医院",
            "王芳",
            "女",
            ID3 + " ",
            3,
            None,
            "护士",
            "外科",
            None,
            None,
            None,
            0,
            0,
            None,
        ],
        ["填报说明:"],
        [
            "1. 医师类别或其他卫生技术人员类别: 1 执业医师 (含助理医师)、2 药剂人员、3 护理人员、4 其他技术人员"
        ],
    ]


async def post(
    h: Harness, data: bytes, preset: str, ctype: str = XLSX, **params: Any
) -> httpx.Response:
    return await h.client.post(
        "/v1/admin/imports",
        params={"preset": preset, **params},
        content=data,
        headers={**h.auth("agency"), "Content-Type": ctype},
    )


async def count(h: Harness, table: str) -> int:
    async with h.runtime.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def nothing_written(h: Harness) -> None:
    for table in ("institutions", "practitioners", "registrations", "events", "audit_log"):
        assert await count(h, table) == 0, table


async def test_a_weihai_roster_as_agencies_make_it_imports_exactly(h: Harness) -> None:
    data = xlsx(weihai_rows(), title="威海市医保医师基础信息库", merges=["A1:P1"])
    dry = await post(h, data, "weihai-roster", dry_run="true", as_of="2026-06-30")
    assert dry.status_code == 200, dry.text
    report = dry.json()
    TypeAdapter(ImportReport).validate_python(report, strict=True)
    assert report["ok"]
    assert report["rows"] == 3
    assert report["problems"] == []
    assert report["counts"] == {
        "institutions": 1,
        "departments": 2,
        "practitioners": 3,
        "registrations": 3,
        "agreements": 0,
        "opening_balances": 2,
    }
    await nothing_written(h)

    r = await post(h, data, "weihai-roster", as_of="2026-06-30")
    assert r.status_code == 201, r.text
    assert r.json()["applied"]
    assert r.json()["counts"] == report["counts"]
    got = (await h.client.get(f"/v1/admin/practitioners/{ID2}", headers=h.auth("agency"))).json()
    assert got["name"] == "李娜"
    assert got["category"] == "doctor"
    assert got["id_number"] == ID2[:4] + "**********" + ID2[-4:]
    assert [x["department_code"] for x in got["registrations"]] == ["A03"]
    # 服务状态 1 暂停 as of 2026-06-30 stands; 威海 restores only by exam
    [status] = got["status_by_institution"]
    assert [(s["from"], s["to"], s["status"]) for s in status["status"]] == [
        ("2026-06-30", None, "suspended")
    ]
    assert "carried over from weihai-roster sha256:" in status["status"][0]["rule"]
    inst = (await h.client.get(f"/v1/admin/institutions/{WH}", headers=h.auth("agency"))).json()
    assert inst["name"] == "威海市立医院"
    assert sorted(d["code"] for d in inst["departments"]) == ["A03", "A04"]


async def test_the_same_file_twice_applies_once(h: Harness) -> None:
    data = xlsx(weihai_rows())
    first = await post(h, data, "weihai-roster", as_of="2026-06-30")
    assert first.status_code == 201, first.text
    counts = {t: await count(h, t) for t in ("registrations", "events", "audit_log")}
    again = await post(h, data, "weihai-roster", as_of="2026-06-30")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert {t: await count(h, t) for t in counts} == counts
    # a different file under the same key is not the same import
    other = await post(
        h,
        xlsx(weihai_rows()[:2]),
        "weihai-roster",
        as_of="2026-06-30",
    )
    assert other.status_code == 201  # its own key: its one new line is already on record
    assert other.json()["counts"]["registrations"] == 0


async def test_excel_mangled_ids_are_refused_with_their_rows_and_nothing_is_written(
    h: Harness,
) -> None:
    rows = weihai_rows()
    rows[1][5] = float(ID1)  # typed into a number cell: 3.71002198001010e17
    rows[2][5] = "3.71002E+17"  # already saved as text in scientific notation
    rows[4][5] = ID3[:6] + ID3[8:17]  # a 15-digit old number
    rows[4][1] = 37100200001  # an institution code typed as a number
    r = await post(h, xlsx(rows, title="威海市医保医师基础信息库"), "weihai-roster")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "IMPORT_ROWS_INVALID"
    problems = {(p["row"], p["column"]) for p in body["report"]["problems"]}
    assert problems == {
        (3, "身份证号码（F列）"),
        (4, "身份证号码（F列）"),
        (6, "身份证号码（F列）"),
        (6, "执业定点医疗机构代码（B列）"),
    }
    assert all(
        "数字" in p["problem"] or "科学计数法" in p["problem"] or "15位" in p["problem"]
        for p in body["report"]["problems"]
    )
    for secret in (ID1, ID1[:12], ID2, ID3[:15], "张伟", "李娜", "13800000001"):
        assert secret not in r.text
    await nothing_written(h)


async def test_a_gbk_tab_separated_national_export_imports(h: Harness) -> None:
    header = [
        "医疗机构编码",
        "医疗机构名称",
        "医保医生代码",
        "姓名",
        "性别",
        "身份证件类型",
        "身份证件号码",
        "人员状态",
        "合同起始时间",
        "合同截止时间",
        "医生执业证书编码",
        "执业类别",
        "执业范围",
        "执业级别",
        "专业技术职务",
    ]
    jn = "H37080200001"  # 济宁
    rows = [
        header,
        [
            jn,
            "济宁市第一人民医院",
            "D370802000001",
            "赵磊",
            "男",
            "01",
            resident_id("370802", "19790505", 5),
            "正常",
            "2024-01-01",
            "2026-12-31",
            "110370800000001",
            "临床",
            "内科专业",
            "执业医师",
            "主治医师",
        ],
        [
            jn,
            "济宁市第一人民医院",
            "N370802000002",
            "钱敏",
            "女",
            "居民身份证",
            resident_id("370802", "19920606", 6),
            "正常",
            "2025-03-01",
            "",
            "",
            "护理",
            "外科",
            "",
            "护师",
        ],
        [
            jn,
            "济宁市第一人民医院",
            "D370802000003",
            "孙强",
            "男",
            "01",
            resident_id("370802", "19700707", 7),
            "注销",
            "2020-01-01",
            "2025-12-31",
            "",
            "临床",
            "眼科专业",
            "执业医师",
            "主任医师",
        ],
    ]
    data = delimited(rows, "\t", "gbk")
    r = await post(h, data, "national-staff", "text/tab-separated-values", as_of="2026-06-30")
    assert r.status_code == 201, r.text
    assert r.json()["encoding"] == "GBK"
    assert r.json()["counts"]["agreements"] == 3
    got = (
        await h.client.get("/v1/admin/practitioners/N370802000002", headers=h.auth("agency"))
    ).json()
    assert (got["name"], got["category"]) == ("钱敏", "nurse")
    assert got["agreements"][0]["start"] == "2025-03-01"
    assert got["agreements"][0]["end"] is None
    left = (
        await h.client.get("/v1/admin/practitioners/D370802000003", headers=h.auth("agency"))
    ).json()
    assert left["registrations"][0]["end"] == "2026-06-30"  # 注销: no longer there
    first = (
        await h.client.get("/v1/admin/practitioners/D370802000001", headers=h.auth("agency"))
    ).json()
    assert first["agreements"][0]["end"] == "2027-01-01"  # 合同截止时间 is the last day


async def test_an_encoding_that_does_not_fit_is_refused_naming_what_was_tried(h: Harness) -> None:
    rows = [
        ["机构代码", "机构名称", "科室名称", "人员代码", "姓名", "人员类别"],
        [WH, "威海市立医院", "内科", ID1, "张伟", "医师"],
    ]
    # Excel's "Unicode text" is UTF-16: decodable as GBK, but no header comes out of it
    r = await post(h, delimited(rows, "\t", "utf-16"), "claimgate-roster", "text/csv")
    assert r.status_code == 422, r.text
    [p] = r.json()["report"]["problems"]
    assert (p["row"], p["column"]) == (None, None)
    assert "UTF-8、GBK、GB18030" in p["problem"]
    gbk_said_utf8 = await post(
        h, delimited(rows, ",", "gbk"), "claimgate-roster", "text/csv; charset=utf-8"
    )
    assert gbk_said_utf8.status_code == 422
    assert "UTF-8" in gbk_said_utf8.json()["report"]["problems"][0]["problem"]
    ok = await post(
        h, delimited(rows, ",", "gb18030"), "claimgate-roster", "text/csv", dry_run="true"
    )
    assert ok.status_code == 200
    assert ok.json()["ok"], ok.text
    await nothing_written(h)


async def test_a_two_row_header_under_merged_cells_is_read(h: Harness) -> None:
    top = [
        "序号",
        "执业定点医疗机构",
        None,
        "姓名",
        "性别",
        "身份证号码",
        "人员类别",
        "执业科别",
        "服务情况",
        None,
    ]
    sub = [None, "代码", "名称", None, None, None, None, None, "累计扣分", "服务状态"]
    rows: list[list[Any]] = [top, sub, [1, WH, "威海市立医院", "张伟", "男", ID1, 1, "内科", 2, 0]]
    merges = ["B2:C2", "A2:A3", "D2:D3", "E2:E3", "F2:F3", "G2:G3", "H2:H3", "I2:J2"]
    data = xlsx(rows, title="威海市医保医师基础信息库", merges=["A1:J1", *merges])
    r = await post(h, data, "weihai-roster", as_of="2026-06-30")
    assert r.status_code == 201, r.text
    assert r.json()["counts"]["opening_balances"] == 1
    file = (
        await h.client.get(f"/v1/admin/practitioners/{ID1}/file", headers=h.auth("agency"))
    ).json()
    [balance] = file["carried_over"]
    assert (balance["points"], balance["status"], balance["as_of"]) == (2, "", "2026-06-30")


async def test_bad_rows_are_named_and_a_bad_file_writes_nothing(h: Harness) -> None:
    rows: list[list[Any]] = [
        [
            "机构代码*",
            "机构名称*",
            "科室名称",
            "人员代码*",
            "姓名*",
            "人员类别*",
            "累计扣分",
            "服务状态",
            "状态起始日期",
        ],
        [WH, "威海市立医院", "心血管内科", ID1, "张伟", "医师", 6, "暂停", "2026-05-01"],
        [WH, "威海市立医院", "内科", "D371002000001", "", "药师", "六", "停职", ""],
        [WH, "威海市立医院", "内科", ID2, "李娜", "大夫", 0, "有效", "2026-05-01"],
        [WH, "威海市立医院", "内科", ID3, "王芳", "护士", 3, "暂停", 46000],
    ]
    r = await post(h, xlsx(rows), "claimgate-roster")
    assert r.status_code == 422
    got = sorted((p["row"], p["column"]) for p in r.json()["report"]["problems"])
    assert got == [
        (2, "科室名称（C列）"),  # found by the database check: no 诊疗科目 of that name
        (3, "姓名*（E列）"),
        (3, "服务状态（H列）"),
        (3, "累计扣分（G列）"),
        (4, "人员类别*（F列）"),
        (4, "状态起始日期（I列）"),
        (5, "状态起始日期（I列）"),
    ]
    await nothing_written(h)


async def test_what_is_not_a_spreadsheet_is_refused(h: Harness) -> None:
    r = await h.client.post(
        "/v1/admin/imports?preset=weihai-roster", json={"a": 1}, headers=h.auth("agency")
    )
    assert r.status_code == 415
    r = await post(h, b"PK\x03\x04garbage", "weihai-roster")
    assert r.status_code == 422
    assert r.json()["code"] == "IMPORT_UNREADABLE"
    r = await post(h, xlsx(weihai_rows()), "no-such-preset")
    assert r.status_code == 422
    assert r.json()["code"] == "PRESET_UNKNOWN"
    r = await post(h, xlsx([["随便", "什么"], [1, 2]]), "weihai-roster")
    assert r.status_code == 422
    assert "未找到本预设" in r.json()["report"]["problems"][0]["problem"]
    await nothing_written(h)
