"""Pydantic field types for codes, dates and text as they arrive: normalised once, validated
here, never echoed back in an error (a wrong practitioner code may be somebody's ID number).

Text a person typed (names, reasons, notes, claim references) refuses what no sensible value
holds and what breaks what comes after it:

- Unicode category Cc, the C0 and C1 control characters and DEL: NUL cannot be stored in a
  PostgreSQL text column at all (one such row once stopped the record of sanctioned attempts),
  and the others break log lines, CSV exports and terminals;
- Cs, unpaired surrogates (``"\\ud800"`` is valid JSON): no UTF-8 encoder, hence no database
  driver, accepts them;
- U+2028 and U+2029, the line and paragraph separators: line breaks to JavaScript and to many
  log viewers, and never part of a name.

Everything else stays: Chinese, the middle dot of minority and foreign names (阿卜杜拉·艾山),
combining marks, zero-width joiners, emoji. A free-text description may span lines (tab, LF,
CR). Codes are normalised first (whitespace, including tab and newline, is dropped) and then
matched against ASCII-only patterns, so any other control character in a code is refused too.

Dates are JSON strings, never numbers: pydantic's lax reading takes ``1795305600`` (and even
``"1795305600"``) as a Unix timestamp, a different meaning from anything a HIS intends.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field

from app import codes

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2099, 12, 31)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]").search
# The same without tab, LF and CR: for text that may span lines.
_CONTROL_BUT_LINES = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"
).search
# Control characters that are not whitespace: normalisation would keep them in a code.
_CONTROL_IN_CODE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff]").search
_NO_CONTROL = (
    "must not contain control characters (U+0000-U+001F, U+007F-U+009F), unpaired surrogates "
    "or the line separators U+2028/U+2029"
)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_VIOLATION_ID = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,39}").fullmatch


def _one_line(v: str) -> str:
    if _CONTROL(v):
        raise ValueError(_NO_CONTROL)
    return v


def _lines(v: str) -> str:
    if _CONTROL_BUT_LINES(v):
        raise ValueError(_NO_CONTROL.replace("U+001F", "U+001F other than tab, LF, CR"))
    return v


def _norm(v: object) -> object:
    if not isinstance(v, str):
        return v
    if _CONTROL_IN_CODE(v):
        raise ValueError("must not contain control characters")
    return codes.normalize(v)


def _institution(v: str) -> str:
    if not codes.INSTITUTION_RE.match(v):
        raise ValueError(
            "must be a national institution code: H or P + 6-digit division + 5-digit sequence, "
            "e.g. H37080200001"
        )
    return v


def _any_institution(v: str) -> str:
    if codes.INSTITUTION_RE.match(v) or codes.LOCAL_CODE_RE.match(v):
        return v  # a local code: resolved through the agency's institution aliases
    raise ValueError(
        "must be a national institution code (H or P + 6-digit division + 5-digit sequence, "
        "e.g. H37080200001) or a local code registered as an institution alias (1-32 "
        "characters of A-Z, 0-9, '.', '_' or '-')"
    )


def _local(v: str) -> str:
    if not codes.LOCAL_CODE_RE.match(v):
        raise ValueError("must be 1-32 characters of A-Z, 0-9, '.', '_' or '-'")
    return v


def _national_practitioner(v: str) -> str:
    if codes.is_national_practitioner(v) or codes.is_resident_id(v):
        return v
    if codes.looks_like_resident_id(v):
        raise ValueError(
            "is shaped like a resident ID number but its GB 11643 check digit is wrong"
        )
    raise ValueError(
        "must be a national practitioner code (D, N, HY or HJ + 12 digits, e.g. D370802000001) "
        "or an 18-digit resident ID number where the region uses it"
    )


def _any_practitioner(v: str) -> str:
    if codes.is_national_practitioner(v) or codes.looks_like_resident_id(v):
        return v
    if codes.LOCAL_CODE_RE.match(v):
        return v  # a hospital's local code: resolved through the institution's aliases
    raise ValueError(
        "must be a national practitioner code, a resident ID number or a local code "
        "(1-32 characters of A-Z, 0-9, '.', '_' or '-')"
    )


def _region(v: str) -> str:
    if not codes.REGION_RE.match(v):
        raise ValueError("must be a 6-digit administrative division code, e.g. 370800")
    return v


def _in_range(v: date) -> date:
    if not MIN_DATE <= v <= MAX_DATE:
        raise ValueError(f"must lie between {MIN_DATE} and {MAX_DATE}")
    return v


def _day(v: object) -> date:
    """A JSON string ``YYYY-MM-DD`` (ASCII digits) naming a real day; nothing else (a ``date``
    passes too: Python callers build models from dates, JSON never holds one)."""
    if type(v) is date:
        return v
    if not isinstance(v, str) or not _ISO_DAY(v):
        raise ValueError("must be an ISO date string, YYYY-MM-DD (e.g. 2026-11-22)")
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise ValueError("is not a day of the calendar") from None


def _service_date(v: object) -> date:
    """A date, or a full ISO datetime string reduced to its date in Asia/Shanghai."""
    if not isinstance(v, str) or len(v) <= 10:
        return _day(v)
    if not v.isascii():
        raise ValueError("must be an ISO date (2026-11-22) or datetime")
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise ValueError("must be an ISO date (2026-11-22) or datetime") from None
    # Far from the range, the conversion to Shanghai time overflows (year 1 or 9999 with an
    # offset); refuse those as out of range before converting.
    if not MIN_DATE.year - 1 <= dt.year <= MAX_DATE.year + 1:
        raise ValueError(f"must lie between {MIN_DATE} and {MAX_DATE}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(SHANGHAI)
    return dt.date()


def _violation_id(v: str) -> str:
    if not _VIOLATION_ID(v):
        raise ValueError("must be a violation id as recorded, e.g. V3F2A9C0D11E4")
    return v


InstitutionCode = Annotated[
    str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_institution)
]
AnyInstitutionCode = Annotated[
    str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_any_institution)
]
LocalCode = Annotated[str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_local)]
NationalPractitionerCode = Annotated[
    str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_national_practitioner)
]
AnyPractitionerCode = Annotated[
    str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_any_practitioner)
]
RegionCode = Annotated[str, BeforeValidator(_norm), AfterValidator(_region)]
ViolationId = Annotated[str, BeforeValidator(_norm), AfterValidator(_violation_id)]
Day = Annotated[date, BeforeValidator(_day), AfterValidator(_in_range)]
ServiceDay = Annotated[date, BeforeValidator(_service_date), AfterValidator(_in_range)]
Text = Annotated[str, AfterValidator(_one_line)]
"""One line of text a person typed: a name, a reason, a note, a claim reference."""
MultilineText = Annotated[str, AfterValidator(_lines)]
"""Free text that may span lines: a violation's description."""


def today_shanghai() -> date:
    return datetime.now(SHANGHAI).date()


class _Today:
    """Today in Shanghai as ``YYYY-MM-DD``, worked out again only when the clock leaves the day
    it was worked out for: the fast path needs it for every check (a line without a service
    date means today), and asking the time zone each time cost more than the rest of a line's
    validation."""

    def __init__(self) -> None:
        self._from = self._until = 0.0
        self._iso = ""

    def __call__(self) -> str:
        now = time.time()
        if not self._from <= now < self._until:  # a new day, or a clock stepped back
            day = datetime.fromtimestamp(now, SHANGHAI).date()
            start = datetime.combine(day, dt_time(0), SHANGHAI)
            self._from = start.timestamp()
            self._until = (start + timedelta(days=1)).timestamp()
            self._iso = day.isoformat()
        return self._iso


today_shanghai_iso = _Today()
