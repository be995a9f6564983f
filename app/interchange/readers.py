"""Bytes → sheets of cells: XLSX (and the older XLS) through python-calamine, CSV and TSV in
UTF-8, GBK or GB18030.

The encoding of a text file is not guessed from byte statistics: each candidate (the one the
caller names, else UTF-8, GBK, GB18030 in that order) must decode the whole file strictly *and*
give the preset's header row. A wrong encoding yields no header the preset knows, so a file is
either read in the encoding that makes sense of it or refused with the encodings tried named —
mojibake is never imported. UTF-8 goes first because valid UTF-8 is almost never text in
another encoding; GB18030 last because it decodes more byte sequences than GBK.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from app.interchange.cells import Raw
from app.interchange.report import Refused, Report

ENCODINGS = ("utf-8", "gbk", "gb18030")
_NAMES = {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}
_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the binary .xls of Excel 97-2003

Span = tuple[int, int, int, int]  # a merged range: first row, first column, last row, last column


@dataclass(slots=True)
class Sheet:
    """One sheet: ``rows[i]`` is the spreadsheet's row ``first_row + i`` (numbered from 1),
    its cells from column ``first_column`` (0 = A); ``merged`` in the same coordinates as
    ``rows``."""

    name: str
    rows: list[list[Raw]]
    first_row: int = 1
    first_column: int = 0
    merged: list[Span] = field(default_factory=list)
    encoding: str | None = None

    def number(self, index: int) -> int:
        return self.first_row + index


Recognises = Callable[[Sheet], bool]


def is_workbook(data: bytes) -> bool:
    return data.startswith(_ZIP) or data.startswith(_OLE2)


def read(
    data: bytes, report: Report, recognises: Recognises, charset: str | None = None
) -> list[Sheet]:
    """The sheets of ``data``: a workbook's, or the one sheet a text file is. Refused (with the
    reason in ``report``) when nothing readable is there."""
    if not data.strip():
        report.add(None, None, "文件为空")
        raise Refused(report)
    if is_workbook(data):
        return _workbook(data, report)
    return [_text(data, report, recognises, charset)]


def _workbook(data: bytes, report: Report) -> list[Sheet]:
    import python_calamine as calamine

    try:
        book = calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheets = []
        for name in book.sheet_names:
            s = book.get_sheet_by_name(name)
            r0, c0 = s.start or (0, 0)
            merged = [
                (a - r0, b - c0, c - r0, d - c0)
                for (a, b), (c, d) in (getattr(s, "merged_cell_ranges", None) or [])
            ]
            rows: list[list[Raw]] = [list(r) for r in s.to_python()]
            sheets.append(Sheet(name, rows, r0 + 1, c0, merged))
    except Exception as exc:  # calamine's errors are many types; none says more to an officer
        report.add(
            None, None, f"无法读取工作簿（{type(exc).__name__}）：文件损坏、加密或不是 Excel 文件"
        )
        raise Refused(report) from None
    return sheets


def _text(data: bytes, report: Report, recognises: Recognises, charset: str | None) -> Sheet:
    tried = (charset.lower(),) if charset else ENCODINGS
    decoded_any = False
    for encoding in tried:
        try:
            body = data.decode("utf-8-sig" if encoding in ("utf-8", "utf8") else encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        decoded_any = True
        sheet = _delimited(body, encoding)
        if recognises(sheet):
            return sheet
    names = "、".join(_NAMES.get(e, e) for e in tried)
    if charset and not decoded_any:
        report.add(None, None, f"文件不是声明的 {names} 编码")
    elif not decoded_any:
        report.add(None, None, f"无法识别文件编码：已尝试 {names}，均无法解码")
    else:
        report.add(
            None,
            None,
            f"未找到本预设的表头：已尝试 {names} 编码（文件编码可能有误，或不是本预设的表格）",
        )
    raise Refused(report)


def _delimited(body: str, encoding: str) -> Sheet:
    first = next((line for line in body.splitlines() if line.strip()), "")
    delimiter = "\t" if first.count("\t") >= max(1, first.count(",")) else ","
    rows: list[list[Raw]] = [list(r) for r in csv.reader(io.StringIO(body), delimiter=delimiter)]
    return Sheet(
        "csv" if delimiter == "," else "tsv", rows, encoding=_NAMES.get(encoding, encoding)
    )
