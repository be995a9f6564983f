"""One cell read as what its column holds: text, a code, a resident ID number, a date or a whole
number. Agencies' spreadsheets are typed by hand and by Excel, so each reader folds what is
harmless (full-width forms, spaces around and inside codes, zero-width characters) and refuses
what would have to be guessed — above all a code or ID number Excel stored as a number
(``3.70802E+17`` has lost its last digits; ``0532…`` its leading zero): the row is named, the
value never.

Every refusal is a :class:`CellError` whose message is Chinese and holds no cell value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from app import codes

Raw = object  # what a reader gives: str, int, float, bool, date, datetime, None


class CellError(ValueError):
    """What is wrong with a cell, in the words of the report (never its value)."""


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# Mojibake's marks: the replacement character and private-use code points (GB18030 maps its
# user-defined areas there); C0/C1 controls cannot come from a typed cell.
_GARBLED = re.compile("[\ufffd\ue000-\uf8ff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SCIENTIFIC = re.compile(r"[0-9]+(?:\.[0-9]*)?E[+-]?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")

NUMBER_STORED = (
    "以数字格式存储：Excel 会把长号码改写为科学计数法、去掉前导零，无法确定原号码，"
    "请将该列设为文本格式后重新填写"
)
SCIENTIFIC = "是科学计数法形式（长号码已被 Excel 改写，末位已丢失），请将该列设为文本格式后重新填写"


def is_blank(raw: Raw) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.translate(_INVISIBLE).strip())


def _is_number(raw: Raw) -> bool:
    return isinstance(raw, int | float) and not isinstance(raw, bool)


def text(raw: Raw) -> str:
    """Free text (a name, a title, a note): full-width forms folded, invisible characters
    dropped, spaces trimmed. A whole number typed in a text column reads as its digits."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        raise CellError("应为文字，不是逻辑值")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise CellError("应为文字，不是小数")
        raw = int(raw)
    if isinstance(raw, dt.date):
        raise CellError("应为文字，不是日期")
    out = unicodedata.normalize("NFKC", str(raw)).translate(_INVISIBLE).strip()
    if _GARBLED.search(out):
        raise CellError("含有无法识别的字符（文件编码可能有误）")
    if _CONTROL.search(out):
        raise CellError("含有控制字符")
    return " ".join(out.split())  # line breaks inside a cell, doubled spaces


def code(raw: Raw) -> str:
    """A code (institution, practitioner, certificate, department): text only, spaces and
    full-width forms dropped, upper case. Stored as a number, or in scientific notation: refused."""
    if _is_number(raw):
        raise CellError(NUMBER_STORED)
    out = codes.normalize(text(raw))
    if _SCIENTIFIC.fullmatch(out):
        raise CellError(SCIENTIFIC)
    return out


def id_number(raw: Raw) -> str:
    """A resident ID number (GB 11643): 18 characters whose check character is right."""
    out = code(raw)
    if _DIGITS.fullmatch(out) and len(out) == 15:
        raise CellError("是15位旧身份证号码，请换成18位身份证号码")
    if not codes.looks_like_resident_id(out):
        raise CellError("应为18位身份证号码（前17位数字，最后一位数字或X）")
    if not codes.is_resident_id(out):
        raise CellError("身份证号码校验位不正确")
    return out


_TIME = re.compile(r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?")
_DATE_FORMS = (
    re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})"),
    re.compile(r"([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日?"),
    re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})"),
)


def day(raw: Raw) -> dt.date:
    """A date: a date cell, or text as 2026-06-30, 2026/6/30, 2026.6.30, 2026年6月30日 or
    20260630. A number (an Excel serial day without a date format) is not guessed."""
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if _is_number(raw):
        raise CellError("日期以数字存储，请填写为 2026-06-30 的形式或设为日期格式")
    parts = text(raw).split()
    if len(parts) == 2 and _TIME.fullmatch(parts[1]):
        parts = parts[:1]  # "2026-06-30 00:00:00", as a date cell exported to CSV reads
    value = "".join(parts)
    for form in _DATE_FORMS:
        m = form.fullmatch(value)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                raise CellError("不是日历上的日期") from None
    raise CellError("应为日期，如 2026-06-30")


def whole(raw: Raw, low: int, high: int) -> int:
    """A whole number between ``low`` and ``high`` (a points count, a 序号, a category number)."""
    if isinstance(raw, bool):
        raise CellError("应为整数")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise CellError("应为整数")
        raw = int(raw)
    if isinstance(raw, int):
        value = raw
    else:
        t = "".join(text(raw).split()).removesuffix("分")
        if not _DIGITS.fullmatch(t):
            raise CellError("应为整数")
        value = int(t)
    if not low <= value <= high:
        raise CellError(f"应在{low}到{high}之间")
    return value
