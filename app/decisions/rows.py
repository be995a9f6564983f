"""The decision log's rows, encoded for ``COPY … (FORMAT binary)`` straight from the buffer.

A flush is thousands of rows a second at full load, and it runs in the serving process: built
as Python tuples and encoded value by value by the driver, a row cost the checks' process
several microseconds, a fifth of a check's throughput (docs/performance.md). Most of a row
repeats across rows, so it is encoded once and spliced as bytes:

- per request: the day, the answer's time, the key, the source — one chunk per
  (``checked_at``, key, source);
- per verdict: the decision, the reason codes, the two data versions — one chunk per distinct
  verdict (``Verdict.core`` holds them all);
- per line: the decision id, institution, department, the practitioner's token, the service
  date, emergency, claim id — each field's encoding remembered per value, but the decision id
  and the claim id, which are the line's own.

The columns are COPYed in :data:`COLUMNS` order, grouped as above. The format is PostgreSQL's
binary COPY (a 19-byte header, then per row a field count and each field as a length and its
bytes, -1 for NULL; a trailer of -1): every column here is text, a date, a timestamp, an
integer, a boolean or an array of text, whose binary forms are stable across versions.
PostgreSQL checks every value against its column as it would a value sent any other way (a
claim id over 64 characters is refused, and the flush isolates that row).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from app.checks.verdicts import Verdict
from app.codes import practitioner_token

COLUMNS = (
    # per request
    "day",
    "answered_at",
    "key_id",
    "source",
    # per verdict
    "decision",
    "reasons",
    "institution_version",
    "practitioner_version",
    # per line
    "decision_id",
    "institution_code",
    "department_code",
    "practitioner_token",
    "service_date",
    "emergency",
    "claim_id",
)
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)

_EPOCH_DAY = date(2000, 1, 1).toordinal()  # PostgreSQL's epoch
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_SHANGHAI = timedelta(hours=8)
_VARCHAR = 1043  # the element type of reasons (varchar(40)[])
_ROW = struct.pack(">h", len(COLUMNS))
_NULL = struct.pack(">i", -1)
_TRUE = struct.pack(">ib", 1, 1)
_FALSE = struct.pack(">ib", 1, 0)
_ID = struct.pack(">i", 32)  # every decision id is 32 hex digits
_int4 = struct.Struct(">ii").pack
_int8 = struct.Struct(">iq").pack
_len = struct.Struct(">i").pack
_BOUND = 65_536  # each remembered encoding's cache; cleared when full (codes may be sent at will)


def text(value: str) -> bytes:
    raw = value.encode()
    return _len(len(raw)) + raw


def _date(d: date) -> bytes:
    return _int4(4, d.toordinal() - _EPOCH_DAY)


def _bigint(v: int | None) -> bytes:
    return _NULL if v is None else _int8(8, v)


def _array(codes: Sequence[str]) -> bytes:
    if not codes:
        return _len(12) + struct.pack(">iii", 0, 0, _VARCHAR)
    items = b"".join(text(c) for c in codes)
    body = struct.pack(">iiiii", 1, 0, _VARCHAR, len(codes), 1) + items
    return _len(len(body)) + body


class RowEncoder:
    """Buffered entries → binary COPY data. Remembers what repeats (bounded)."""

    def __init__(self, pii_secret: str) -> None:
        self.pii_secret = pii_secret
        self._requests: dict[tuple[str, int | None, str], bytes] = {}
        self._verdicts: dict[bytes, bytes] = {}
        self._texts: dict[str, bytes] = {}  # institution and department codes
        self._tokens: dict[str, bytes] = {}  # practitioner code as sent → its token's field
        self._days: dict[str, bytes] = {}
        self._seconds: dict[str, tuple[bytes, int]] = {}  # "2026-12-01T08:00:00" → day, µs

    def encode(self, entries: Iterable[tuple[Any, ...]]) -> bytes:
        """``entries``: (key_id, Line, Verdict, decision id, source, checked_at), as buffered. A
        value that cannot be encoded raises ValueError (the flush isolates and counts its row
        as refused, app.db.buffered)."""
        try:
            return self._encode(entries)
        except struct.error as exc:  # a number past its column's range
            raise ValueError("a decision-log value out of its column's range") from exc

    def _encode(self, entries: Iterable[tuple[Any, ...]]) -> bytes:
        out = [HEADER]
        add = out.extend  # every row's pieces, joined once at the end
        requests, verdicts, texts = self._requests, self._verdicts, self._texts
        tokens, days = self._tokens, self._days
        for key_id, ln, v, did, source, checked_at in entries:
            claim = ln.claim_id
            add(
                (
                    _ROW,
                    # a remembered encoding is never empty: ``or`` works it out when missing
                    requests.get((checked_at, key_id, source))
                    or self._request(checked_at, key_id, source),
                    verdicts.get(v.core) or self._verdict(v),
                    _ID if len(did) == 32 else _len(len(did)),
                    did,
                    texts.get(ln.institution) or self._text(ln.institution),
                    texts.get(ln.department) or self._text(ln.department),
                    tokens.get(ln.practitioner) or self._token(ln.practitioner),
                    days.get(ln.day) or self._day(ln.day),
                    _TRUE if ln.emergency else _FALSE,
                    _NULL if claim is None else text(claim),
                )
            )
        out.append(TRAILER)
        return b"".join(out)

    def _request(self, checked_at: str, key_id: int | None, source: str) -> bytes:
        # A new one every millisecond at load: the second's day and time are worked out once
        # (checked_at as app.checks.verdicts stamps it, "2026-12-01T08:00:00.123+00:00").
        if len(checked_at) == 29 and checked_at[19] == "." and checked_at.endswith("+00:00"):
            second = self._seconds.get(checked_at[:19])
            if second is None:
                second = self._second(checked_at[:19])
            day, micros = second[0], second[1] + int(checked_at[20:23]) * 1000
        else:
            t = datetime.fromisoformat(checked_at)
            day, micros = _date((t + _SHANGHAI).date()), (t - _EPOCH) // timedelta(microseconds=1)
        chunk = (
            day + _int8(8, micros) + (_NULL if key_id is None else _int4(4, key_id)) + text(source)
        )
        if len(self._requests) >= 4096:
            self._requests.clear()
        self._requests[(checked_at, key_id, source)] = chunk
        return chunk

    def _second(self, second: str) -> tuple[bytes, int]:
        t = datetime.fromisoformat(second + "+00:00")
        out = _date((t + _SHANGHAI).date()), (t - _EPOCH) // timedelta(microseconds=1)
        if len(self._seconds) >= 4096:
            self._seconds.clear()
        self._seconds[second] = out
        return out

    def _verdict(self, v: Verdict) -> bytes:
        dv = orjson.loads(b"{" + v.core + b"}")["data_version"]
        chunk = (
            text("allow" if v.allowed else "deny")
            + _array(v.codes)
            + _bigint(dv["institution"])
            + _bigint(dv["practitioner"])
        )
        if len(self._verdicts) >= _BOUND:
            self._verdicts.clear()
        self._verdicts[v.core] = chunk
        return chunk

    def _text(self, value: str) -> bytes:
        field = text(value)
        if len(self._texts) >= _BOUND:
            self._texts.clear()
        self._texts[value] = field
        return field

    def _token(self, code: str) -> bytes:
        field = text(practitioner_token(code, self.pii_secret))
        if len(self._tokens) >= _BOUND:
            self._tokens.clear()
        self._tokens[code] = field
        return field

    def _day(self, value: str) -> bytes:
        field = _date(date.fromisoformat(value))
        if len(self._days) >= 4096:
            self._days.clear()
        self._days[value] = field
        return field
