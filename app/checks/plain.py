"""Check lines that need no normalising, validated by hand for the fast path.

``CheckIn`` (pydantic) normalises codes (full-width to ASCII, whitespace, case) and then
validates them; for a body that is already plain that is several microseconds a line of
Python-level validators. :func:`plain_line` accepts only a subset of what ``CheckIn`` accepts —
codes already in their normal form, a ``YYYY-MM-DD`` service date, a real boolean — and for such
a line builds exactly the :class:`Line` the model would have led to. Anything else returns None,
and the request goes to the route, whose model normalises it or names the field that is wrong.

A parsed body no longer shows whether a key was given twice (orjson, like every JSON parser
that builds a dict, keeps the last), so :func:`unique_keys` judges that from the raw bytes; a
body it cannot clear goes to the route too, which refuses the duplicate (app.api.bodies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from app.api.bodies import duplicate_key
from app.checks.lines import Line
from app.fields import MAX_DATE, MIN_DATE

# Full matches (``$`` would let a trailing newline through, which the model strips first), and
# ASCII digits only (``\d`` takes full-width ones too, which the model turns into ASCII first).
# Every institution and practitioner form the model takes (a national code, a resident ID
# number, a local code) is a local-code shape once normalised, so one pattern covers the three
# codes alike; the check use case tells a local institution code from a national one.
_LOCAL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}").fullmatch
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_FIELDS = frozenset(
    {
        "institution_code",
        "department_code",
        "practitioner_code",
        "service_date",
        "emergency",
        "claim_id",
    }
)
_LOW, _HIGH = MIN_DATE.isoformat(), MAX_DATE.isoformat()
_CLAIM_ID_MAX = 64


# Service dates already found to be days: a HIS sends the same few dates all day, and parsing
# one costs more than the rest of the line's checks together. Bounded: dates may be sent at will.
_DAYS: dict[str, str] = {}


def _day(v: Any, today: str) -> str | None:
    if v is None:
        return today
    if type(v) is not str:
        return None
    known = _DAYS.get(v)
    if known is not None:
        return known
    if not _DAY(v) or not _LOW <= v <= _HIGH:
        return None
    try:
        date.fromisoformat(v)  # 2026-02-30 is shaped right but is no day
    except ValueError:
        return None
    if len(_DAYS) >= 4096:
        _DAYS.clear()
    _DAYS[v] = v
    return v


def plain_line(d: Any, today: str) -> Line | None:
    """The line ``d`` asks about, or None when only the model can judge it."""
    if type(d) is not dict or not _FIELDS.issuperset(d):
        return None
    inst = d.get("institution_code")
    dept = d.get("department_code")
    prac = d.get("practitioner_code")
    if (
        type(inst) is not str
        or type(dept) is not str
        or type(prac) is not str
        or not _LOCAL(inst)
        or not _LOCAL(dept)
        or not _LOCAL(prac)
    ):
        return None
    day = _day(d.get("service_date"), today)
    emergency = d.get("emergency", False)
    claim_id = d.get("claim_id")
    if (
        day is None
        or type(emergency) is not bool
        or (
            claim_id is not None
            and (
                type(claim_id) is not str
                or len(claim_id) > _CLAIM_ID_MAX
                # False for every character the model's Text refuses (Cc, Cs, Zl, Zp), and for
                # some it takes (a full-width space, a zero-width joiner), which go to the
                # route: a third of the cost of the model's own pattern.
                or not claim_id.isprintable()
            )
        )
    ):
        return None
    return Line(inst, dept, prac, day, emergency, claim_id)


def plain_batch(d: Any, today: str, limit: int) -> list[Line] | None:
    """The lines of a batch body, or None when any part of it needs the model (or the route's
    own refusal, such as a batch over ``limit``)."""
    if type(d) is not dict or len(d) != 1:
        return None
    checks = d.get("checks")
    if type(checks) is not list or not 0 < len(checks) <= limit:
        return None
    out = []
    for c in checks:
        line = plain_line(c, today)
        if line is None:
            return None
        out.append(line)
    return out


def unique_keys(body: bytes, keys: int, lines: Sequence[Line]) -> bool:
    """True only if no object in ``body`` gives a key twice, for a body whose parsed objects hold
    ``keys`` keys in all and whose lines are ``lines`` (as :func:`plain_line` read them).

    Why counting colons is exact: outside strings, JSON has a ``:`` only between a member's name
    and its value, so the body's members number its colons less those inside strings, and a key
    given twice (however spelt: ``"\\u0065mergency"`` is ``"emergency"``) leaves fewer keys than
    members. The bytes of a multi-byte UTF-8 character are all >= 0x80, so ``body.count(b":")``
    counts exactly the colon characters. In a plain line no key, code or date holds a colon;
    only a claim id can, so the colons inside strings are those of the parsed claim ids — less
    any a claim id spelt as an escape, ``\\u003a`` (JSON has no other way to escape a colon),
    which the bytes do not show: a body with one goes to a parser that sees every pair,
    :func:`app.api.bodies.duplicate_key`.
    """
    colons = body.count(b":")
    if colons == keys:
        return True  # every colon separates a member: as many members as distinct keys
    # A backslash first: memchr finds none in most bodies at once. (``\\u003`` also catches
    # escaped digits and ``;<=>?``: a rare, harmless re-parse.)
    if b"\\" in body and b"\\u003" in body:
        return duplicate_key(body) is None
    inside = "".join([ln.claim_id for ln in lines if ln.claim_id]).count(":")
    return colons - inside == keys
