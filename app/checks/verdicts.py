"""Verdicts: a decision serialised once, stamped per answer.

A verdict is what the documents say about one line — decision, reasons, data versions — kept as
the JSON fragment it will be sent as, with what the rest of the service needs to know about it
(allowed, the sanction codes among its reasons). The per-answer fields (source, time, decision
id, service date, claim id) are spliced in as bytes, so an answer that was decided before costs
no dict building and no serialisation of its reasons.

The memo keeps verdicts per (institution, department, practitioner token, day, emergency) for as
long as the L1 documents they were decided from are valid: the L1 tells it every key an
invalidation message evicts (the institution's verdicts are forgotten), every flush and every
lost subscription (all are). A doctor sees dozens of
patients a day with several claim lines each, so most lines repeat a key decided minutes ago.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
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
    """Verdicts by line key, grouped by institution. An invalidated key under an institution's
    hash tag (``cg:{H37…}:…``: its document, a view or an alias there) forgets that
    institution's verdicts only; any other key (a practitioner's "known" marker, an
    institution alias) or a flush forgets them all. So an agency writing about one hospital's
    doctor leaves every other hospital's verdicts remembered: forgetting them all on every
    write sent checks down the slower path 20 times a second under agency traffic (issue 14).
    Bounded: emptied when full (a memo, not a store — a verdict costs microseconds to
    recompute from the L1)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._by_institution: dict[str, dict[MemoKey, Verdict]] = {}
        self._count = 0
        self.hits = 0

    def get(self, key: MemoKey) -> Verdict | None:
        mine = self._by_institution.get(key[0])
        return None if mine is None else mine.get(key)

    def put(self, key: MemoKey, verdict: Verdict) -> None:
        """Remember a verdict (the caller checks that no invalidation arrived while it was
        being decided)."""
        if self.size <= 0:
            return
        if self._count >= self.size:
            self._by_institution = {}
            self._count = 0
        mine = self._by_institution.get(key[0])
        if mine is None:
            mine = self._by_institution[key[0]] = {}
        if key not in mine:
            self._count += 1
        mine[key] = verdict

    def forget(self, keys: Iterable[str] | None) -> None:
        """Forget what the invalidated Redis ``keys`` may have decided (None: everything)."""
        if keys is None:
            self._by_institution = {}
            self._count = 0
            return
        for key in keys:
            if not key.startswith("cg:{"):
                self.forget(None)
                return
            gone = self._by_institution.pop(key[4 : key.find("}")], None)
            if gone is not None:
                self._count -= len(gone)

    def __len__(self) -> int:
        return self._count


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
