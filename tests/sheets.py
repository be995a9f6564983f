"""Spreadsheets made the way agencies make them, for the interchange tests: Chinese headers with
spaces and notes, a merged title, merged two-row headers, blank rows and notes under the table,
GBK tab-separated text, ID numbers Excel turned into numbers."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

from app.codes import is_resident_id

WEIHAI_HEADER = [
    "序号",
    "执业 定点 医疗 机构 代码",
    "执业 定点 医疗 机构 名称",
    "姓名",
    "性别",
    "身份证号码",
    "医师类 别或其 他卫生 技术人 员类别",
    "行政 职务",
    "职称",
    "执业 科别",
    "资格 证书 编码",
    "执业 证书 编码",
    "联系电话",
    "累计 扣分",
    "服务状 态 (0 有效、1 暂停、2 解除)",
    "备注",
]


def resident_id(region: str, born: str, seq: int) -> str:
    """A resident ID number with a right GB 11643 check character."""
    body = f"{region}{born}{seq:03d}"
    for check in "0123456789X":
        if is_resident_id(body + check):
            return body + check
    raise AssertionError("unreachable")


def xlsx(
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    merges: Sequence[str] = (),
    sheet: str = "Sheet1",
) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    if title is not None:
        ws.append([title])
    for r in rows:
        ws.append(list(r))
    for m in merges:
        ws.merge_cells(m)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def delimited(rows: Sequence[Sequence[Any]], sep: str = ",", encoding: str = "utf-8") -> bytes:
    text = "\r\n".join(sep.join("" if c is None else str(c) for c in r) for r in rows)
    return text.encode(encoding)


def read_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]
