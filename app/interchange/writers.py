"""Tables out as XLSX (openpyxl, write-only: rows streamed, memory flat) or CSV (UTF-8 with a
byte-order mark, which Excel needs to open Chinese text right; GBK on request, as the national
platform writes). Every cell is written as text or a whole number, never a float: a code stays
the code it is when the file is opened and saved again."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Literal

Cell = str | int | None
Format = Literal["xlsx", "csv"]
MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def xlsx(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Cell]]]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    for title, header, rows in sheets:
        ws = book.create_sheet(title[:31])
        bold = []
        for h in header:
            c = WriteOnlyCell(ws, value=h)
            c.font = Font(bold=True)
            bold.append(c)
        ws.append(bold)
        for row in rows:
            ws.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], charset: str = "utf-8"
) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(["" if c is None else c for c in row] for row in rows)
    if charset.lower() in ("gbk", "gb18030"):
        return buf.getvalue().encode(charset, errors="replace")
    return buf.getvalue().encode("utf-8-sig")


def table(
    fmt: Format,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    charset: str = "utf-8",
) -> tuple[bytes, str]:
    """(the file, its media type)."""
    if fmt == "xlsx":
        return xlsx([(title, header, rows)]), MEDIA["xlsx"]
    media = "text/csv; charset=gbk" if charset.lower() == "gbk" else MEDIA["csv"]
    return csv_bytes(header, rows, charset), media
