"""Pydantic field types for codes and dates as they arrive: normalised once, validated here,
never echoed back in an error (a wrong practitioner code may be somebody's ID number)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field

from app import codes

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2099, 12, 31)


def _norm(v: object) -> object:
    return codes.normalize(v) if isinstance(v, str) else v


def _institution(v: str) -> str:
    if not codes.INSTITUTION_RE.match(v):
        raise ValueError(
            "must be a national institution code: H or P + 6-digit division + 5-digit sequence, "
            "e.g. H37080200001"
        )
    return v


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


def _service_date(v: object) -> object:
    """A date, or a full ISO datetime reduced to its date in Asia/Shanghai."""
    if isinstance(v, str) and len(v) > 10:
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError("must be an ISO date (2026-11-22) or datetime") from None
        if dt.tzinfo is not None:
            dt = dt.astimezone(SHANGHAI)
        return dt.date()
    return v


InstitutionCode = Annotated[
    str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_institution)
]
LocalCode = Annotated[str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_local)]
NationalPractitionerCode = Annotated[
    str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_national_practitioner)
]
AnyPractitionerCode = Annotated[
    str, BeforeValidator(_norm), Field(max_length=40), AfterValidator(_any_practitioner)
]
RegionCode = Annotated[str, BeforeValidator(_norm), AfterValidator(_region)]
Day = Annotated[date, AfterValidator(_in_range)]
ServiceDay = Annotated[date, BeforeValidator(_service_date), AfterValidator(_in_range)]


def today_shanghai() -> date:
    return datetime.now(SHANGHAI).date()
