"""Verdicts: a decision serialised once, stamped per answer.

A verdict is what the documents say about one line — decision, reasons, data versions — kept as
the JSON fragment it will be sent as, with what the rest of the service needs to know about it
(allowed, the sanction codes among its reasons). The per-answer fields (source, time, decision
id, service date, claim id) are spliced in as bytes, so an answer that was decided before costs
no dict building and no serialisation of its reasons.

The memo keeps verdicts per (institution, department, practitioner token, day, emergency) for as
long as the L1 they were decided from is valid: it is tied to the L1's epoch, which moves on
every invalidation message, every flush and every lost subscription. A doctor sees dozens of
patients a day with several claim lines each, so most lines repeat a key decided minutes ago.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from app.checks.reasons import STATUS_REASON, Reason

# Checks made under these codes are recorded as sanctioned attempts (app.checks.attempts).
SANCTION_CODES = frozenset(STATUS_REASON.values())

MemoKey = tuple[str, str, str, str, bool]


class Verdict(NamedTuple):
    core: bytes  # '"decision":…,"reasons":[…],"data_version":{…}' — a JSON object's inside
    allowed: bool
    sanctions: tuple[str, ...]  # the SANCTION_CODES among the reasons, in order
    codes: tuple[str, ...]  # every reason code, in order (metrics, the decision log)


def verdict_of(allowed: bool, reasons: list[Reason], data_version: dict[str, Any]) -> Verdict:
    core = orjson.dumps(
        {
            "decision": "allow" if allowed else "deny",
            "reasons": reasons,
            "data_version": data_version,
        }
    )[1:-1]
    codes = tuple(r["code"] for r in reasons)
    return Verdict(core, allowed, tuple(c for c in codes if c in SANCTION_CODES), codes)


class VerdictMemo:
    """Verdicts by line key, valid for one L1 epoch. Bounded: emptied when full (a memo, not a
    store — a verdict costs microseconds to recompute from the L1)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.epoch = -1
        self._data: dict[MemoKey, Verdict] = {}
        self.hits = 0

    def valid_for(self, epoch: int) -> dict[MemoKey, Verdict]:
        """The verdicts decided under ``epoch``; everything older is dropped first."""
        if epoch != self.epoch:
            self._data = {}
            self.epoch = epoch
        return self._data

    def put(self, key: MemoKey, verdict: Verdict) -> None:
        """Remember a verdict decided under the current epoch (the caller checks that no
        invalidation arrived while it was being decided)."""
        if self.size <= 0:
            return
        if len(self._data) >= self.size:
            self._data = {}
        self._data[key] = verdict

    def __len__(self) -> int:
        return len(self._data)


class _DecisionIds:
    """Unique decision ids, 32 hex digits like a UUID but a tenth of uuid4's cost per line:
    80 random bits per process (renewed after a fork) followed by a 48-bit counter."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = b""
        self._next = itertools.count()

    def __call__(self) -> bytes:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._prefix = os.urandom(10).hex().encode()
            self._next = itertools.count()
        return self._prefix + b"%012x" % next(self._next)


decision_id = _DecisionIds()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def stamp_head(source: str, checked_at: str) -> bytes:
    """The fields every answer of one request shares, up to the decision id's opening quote."""
    return b',"source":"%s","checked_at":"%s","decision_id":"' % (
        source.encode(),
        checked_at.encode(),
    )


def render(verdict: Verdict, head: bytes, did: bytes, day: str, claim_id: str | None) -> bytes:
    """One answer object: the verdict, the shared stamp, and this line's own fields."""
    tail = b'"}' if claim_id is None else b'","claim_id":' + orjson.dumps(claim_id) + b"}"
    return b'{%b%b%b","service_date":"%b%b' % (verdict.core, head, did, day.encode(), tail)
