"""The platform's envelope: reading a request, rendering an answer or a refusal.

A request (public HIS code builds it so: oepnhisC/OpenHIS-Server ``yibao/info.py``)::

    {"infno": "3101", "msgid": "<institution code><yyyyMMddHHmmss><4 digits>",
     "mdtrtarea_admvs": …, "insuplc_admdvs": …, "recer_sys_code": …, "dev_no": …,
     "dev_safe_info": …, "cainfo": …, "signtype": …, "infver": "V1.0", "opter_type": …,
     "opter": <operator code>, "opter_name": <operator name>, "inf_time": …,
     "fixmedins_code": <定点医药机构编号>, "fixmedins_name": …, "sign_no": …,
     "input": {"data": {…}}}

An answer: ``infcode`` 0 when the request was judged, else -1 with ``err_msg``; HIS code reads
``infcode`` first, then ``output`` or ``err_msg`` (the same file's callers, e.g.
``api/yibaofuzhu/shiqianfenxiAPI.py``).

Reading is strict where claimgate reads and silent where it does not: the platform's shapes
carry many members claimgate does not judge (and regional variants add more: ``enc_type``), so
a member not read is ignored, never refused; a member read is validated and a wrong one refuses
the whole request, naming its path (``input.data.patient_dtos.0.fsi_encounter_dtos.0.med_type``)
and never echoing its value. ``""`` and ``null`` both mean "not given", as HIS code sends them.
Codes and ids may come as JSON strings or integers (a HIS may serialise a numeric id column as
a number); dates as strings only (a number is not read as a timestamp, docs/contract.md).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal, overload

from app import codes
from app.fields import MAX_DATE, MIN_DATE, SHANGHAI

Obj = dict[str, Any]
INFNOS = ("3101", "3102", "2204", "2301", "3103")
VALIDATION = "VALIDATION_FAILED"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]").search
_DAY = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
).fullmatch


class Refused(Exception):
    """A request that was not judged: answered ``infcode`` -1 with ``err_msg`` =
    ``"<code>: <field>: <message>"`` (docs/integrating-his.md, "Errors"). Nothing was recorded.
    ``status`` is the HTTP status: 200, as the platform answers a refusal, but for a gate that
    cannot answer at all (503, retry)."""

    def __init__(self, code: str, field: str | None, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.status = status

    @property
    def err_msg(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.code}: {where}{self.message}"


def invalid(field: str, message: str) -> Refused:
    return Refused(VALIDATION, field, message)


# -- members ----------------------------------------------------------------------------------
# The common case first, at a fraction of the full reading's cost: a plain string, a code
# already in normal form, a date seen before in the message. Anything else takes the full
# reading, which gives the same value or names the problem.
_PLAIN_CODE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}").fullmatch
_NUMBER = re.compile(r"-?[0-9]{1,13}(?:\.[0-9]{1,6})?").fullmatch


def _given(v: Any) -> bool:
    return v is not None and v != ""


@overload
def text(
    obj: Obj, key: str, at: str, *, required: Literal[True] = ..., max_len: int = ...
) -> str: ...
@overload
def text(obj: Obj, key: str, at: str, *, required: bool, max_len: int = ...) -> str | None: ...
def text(obj: Obj, key: str, at: str, *, required: bool = True, max_len: int = 64) -> str | None:
    """A string member (an integer is taken as its digits); None when absent and optional."""
    v = obj.get(key)
    if type(v) is str and 0 < len(v) <= max_len and v.isprintable():
        return v  # isprintable: no control character, nor a line or paragraph separator
    if not _given(v):
        if required:
            raise invalid(at + key, "is required")
        return None
    if type(v) is int:
        v = str(v)
    if not isinstance(v, str):
        raise invalid(at + key, "must be a string")
    if len(v) > max_len:
        raise invalid(at + key, f"must be at most {max_len} characters")
    if _CONTROL(v):
        raise invalid(at + key, "must not contain control characters")
    return v


Valid = Callable[[str], bool]


@overload
def code(
    obj: Obj, key: str, at: str, *, required: Literal[True] = ..., valid: Valid | None = ...
) -> str: ...
@overload
def code(
    obj: Obj, key: str, at: str, *, required: bool, valid: Valid | None = ...
) -> str | None: ...
def code(
    obj: Obj, key: str, at: str, *, required: bool = True, valid: Valid | None = None
) -> str | None:
    """A code, normalised as every code is (full-width to ASCII, whitespace dropped, upper
    case), in the local-code shape (which every national code and ID number has), then held to
    ``valid`` where given."""
    v = obj.get(key)
    if type(v) is str and _PLAIN_CODE(v) and (valid is None or valid(v)):
        return v
    raw = text(obj, key, at, required=required)
    if raw is None:
        return None
    c = codes.normalize(raw)
    if not codes.LOCAL_CODE_RE.match(c) or (valid is not None and not valid(c)):
        raise invalid(at + key, "is not a code claimgate can read (A-Z, 0-9, '.', '_', '-')")
    return c


@lru_cache(maxsize=4096)
def _day_of(v: str) -> str:
    """The ISO date of ``v``, or a message saying why there is none (it starts with a space)."""
    m = _DAY(v)
    if m is None:
        return " must be a date string, yyyy-MM-dd or yyyy-MM-dd HH:mm:ss"
    try:
        d = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return " is not a day of the calendar"
    if not MIN_DATE <= d <= MAX_DATE:
        return f" must lie between {MIN_DATE} and {MAX_DATE}"
    return d.isoformat()


@overload
def day(obj: Obj, key: str, at: str, *, required: Literal[True] = ...) -> str: ...
@overload
def day(obj: Obj, key: str, at: str, *, required: bool) -> str | None: ...
def day(obj: Obj, key: str, at: str, *, required: bool = True) -> str | None:
    """The date of a ``yyyy-MM-dd[ HH:mm:ss]`` string, as the platform's times are written (in
    local time: the date part is the service date, no conversion)."""
    v = obj.get(key)
    if not _given(v):
        if required:
            raise invalid(at + key, "is required")
        return None
    if type(v) is not str or len(v) > 32:
        raise invalid(at + key, "must be a date string, yyyy-MM-dd or yyyy-MM-dd HH:mm:ss")
    out = _day_of(v)
    if out[0] == " ":
        raise invalid(at + key, out[1:])
    return out


Amount = str | int | float


def amount(obj: Obj, key: str, at: str) -> Amount | None:
    """A money amount, as sent: a JSON number or a numeric string (``"1.50"``); None when
    absent. Read as a decimal only where an answer shows it (:func:`decimal`)."""
    v = obj.get(key)
    if type(v) is str and _NUMBER(v):
        return v
    if not _given(v):
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise invalid(at + key, "must be a number")
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise invalid(at + key, "must be a number") from None
    if not d.is_finite():
        raise invalid(at + key, "must be a number")
    return v


def decimal(v: Amount) -> Decimal:
    """An amount :func:`amount` accepted, as a decimal."""
    return Decimal(str(v).strip())


def objects(obj: Obj, key: str, at: str, *, limit: int) -> list[Obj]:
    """A list of objects, at least one and at most ``limit``."""
    v = obj.get(key)
    if not isinstance(v, list) or not v:
        raise invalid(at + key, "must be a non-empty list")
    if len(v) > limit:
        raise invalid(at + key, f"holds at most {limit} items")
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            raise invalid(f"{at}{key}.{i}", "must be an object")
    return v


# -- the envelope -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Envelope:
    infno: str
    msgid: str
    fixmedins_code: str | None
    opter: str | None
    data: Obj
    data_at: str  # the path of ``data`` in the envelope, as errors name it: "input.data."


def read(body: Any, infno_in_path: str | None) -> Envelope:
    """The envelope of a parsed body; a body that is not one is :class:`Refused`. With an infno
    in the URL (``/v1/national/3101``) the envelope's must be the same."""
    if not isinstance(body, dict):
        raise Refused("MALFORMED_BODY", None, "the body must be a JSON object (the envelope)")
    infno = text(body, "infno", "", max_len=8)
    if infno not in INFNOS:
        raise Refused(
            "INFNO_UNSUPPORTED", "infno", f"claimgate answers {', '.join(INFNOS)}; not this one"
        )
    if infno_in_path is not None and infno != infno_in_path:
        raise Refused("INFNO_UNSUPPORTED", "infno", "differs from the infno in the URL")
    msgid = text(body, "msgid", "")
    inp = body.get("input")
    if not isinstance(inp, dict):
        raise invalid("input", "must be an object holding data")
    data, data_at = inp.get("data"), "input.data."
    if data is None and infno in ("2204", "2301") and "feedetail" in inp:
        data, data_at = inp, "input."  # the upload's own form: {"input": {"feedetail": […]}}
    if not isinstance(data, dict):
        raise invalid("input.data", "must be an object")
    return Envelope(
        infno,
        msgid,
        code(body, "fixmedins_code", "", required=False),
        text(body, "opter", "", required=False),
        data,
        data_at,
    )


# -- answers ----------------------------------------------------------------------------------
_clock: tuple[int, str] = (0, "")


def now() -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai, formatted once a second."""
    global _clock
    second = int(time.time())
    if _clock[0] != second:
        _clock = (second, datetime.fromtimestamp(second, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"))
    return _clock[1]


def _head(received_at: str) -> Obj:
    return {
        "inf_refmsgid": os.urandom(16).hex(),
        "refmsg_time": received_at,
        "respond_time": now(),
        "enctype": "",
        "cainfo": "",
        "signtype": "",
    }


def answer(output: Obj, received_at: str, warn_msg: str = "") -> Obj:
    return {
        "infcode": 0,
        **_head(received_at),
        "err_msg": "",
        "warn_msg": warn_msg,
        "output": output,
    }


def refusal(exc: Refused, received_at: str) -> Obj:
    return {
        "infcode": -1,
        **_head(received_at),
        "err_msg": exc.err_msg,
        "warn_msg": "",
        "output": {},
    }
