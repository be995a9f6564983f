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

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from app.checks.reasons import STATUS_REASON, Reason
from app.unique_ids import ProcessIds

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
    Bounded: when full, an institution's verdicts make room (a memo, not a store — a verdict
    costs microseconds to recompute from the L1)."""

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
            # Room is made an institution at a time, the longest remembered first: emptying the
            # whole memo freed 100,000 verdicts at once, a 10 ms stall for every check in
            # flight, every few seconds while lines the memo cannot hold came in.
            by = self._by_institution
            while self._count >= self.size and by:
                self._count -= len(by.pop(next(iter(by))))
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


decision_id = ProcessIds()  # a decision's id, one per line


class _Clock:
    """The answers' ``checked_at`` and the bytes every answer of a request shares, formatted
    once per millisecond and source instead of once per request: at thousands of checks a
    second most requests fall in a millisecond already formatted, and the formatting was a
    tenth of a remembered check's own work. The date and time up to the second are formatted
    once per second, the milliseconds spliced in: at a few thousand checks a second the
    millisecond changes every few requests, and a datetime formatted each time was a third of
    a remembered check's use case (py-spy, docs/performance.md)."""

    def __init__(self) -> None:
        self._ms = -1
        self._iso = ""
        self._sec = -1
        self._head = ""  # up to the second: "2026-12-01T08:00:00"
        self._heads: dict[str, bytes] = {}

    def now_iso(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            # Whole seconds, then the milliseconds: a float of ``ms / 1000`` may round down.
            secs, frac = divmod(ms, 1000)
            if secs != self._sec:
                self._head = datetime.fromtimestamp(secs, UTC).isoformat(timespec="seconds")[:19]
                self._sec = secs
            self._iso = f"{self._head}.{frac:03d}+00:00"
            self._heads = {}
            self._ms = ms
        return self._iso

    def stamp(self, source: str) -> tuple[str, bytes]:
        """Now, and the answers' shared fields for ``source`` at now."""
        checked_at = self.now_iso()
        head = self._heads.get(source)
        if head is None:
            head = self._heads[source] = stamp_head(source, checked_at)
        return checked_at, head


_clock = _Clock()
now_iso = _clock.now_iso
stamp = _clock.stamp


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
