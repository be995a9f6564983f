"""Answering checks: fetch the documents (L1 → Redis, or PostgreSQL when Redis cannot answer),
then decide. At most two round trips per request, whatever the batch size.

Round 1 fetches, per line, the institution document, the practitioner's view and a possible
local-code alias — all under the institution's hash tag. Round 2, only for lines that round 1
could not settle, fetches the aliased view, the practitioner's global "known" marker and the
cache's built marker, so that a cold or flushed Redis is never read as "unknown".
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import codes
from app.cache.l1 import MISSING, Entry, L1Cache
from app.cache.layout import BUILT_KEY, alias_key, decode, institution_key, known_key, view_key
from app.checks.decide import decide
from app.errors import Unavailable
from app.projection.store import read_docs

log = logging.getLogger("claimgate.checks")

Fetch = Callable[[list[str]], Awaitable[dict[str, Entry]]]


@dataclass(slots=True)
class Line:
    institution: str
    department: str
    practitioner: str
    day: str
    emergency: bool
    claim_id: str | None


class CacheCold(Exception):
    """Redis answered but does not (yet) hold a complete copy."""


class CheckService:
    def __init__(
        self,
        *,
        redis: Redis,
        engine: AsyncEngine,
        l1: L1Cache,
        pii_secret: str,
        redis_retry_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.engine = engine
        self.l1 = l1
        self.pii_secret = pii_secret
        self.redis_retry_s = redis_retry_s
        self._redis_down_until = 0.0
        # Set by the runtime's outbox watch when the mirror lags the truth past the staleness
        # bound (no sync worker running, Redis slow to take writes): answer from PostgreSQL.
        self.mirror_behind = False
        self.degraded_answers = 0

    # -- fetchers ---------------------------------------------------------------------------
    async def _fetch_cache(self, keys: list[str]) -> dict[str, Entry]:
        l1 = self.l1
        out: dict[str, Entry] = {}
        todo: list[str] = []
        if l1.enabled:
            for k in keys:
                # The built marker is always asked of Redis: a FLUSHDB publishes nothing, so an
                # L1 copy of it would read a flushed cache as "unknown".
                e = MISSING if k == BUILT_KEY else l1.get(k)
                if e is MISSING:
                    todo.append(k)
                else:
                    out[k] = e
        else:
            todo = keys
        if todo:
            epoch = l1.epoch
            raws = await self.redis.mget(todo)
            try:
                fetched = [
                    (k, decode(r) if r is not None else None)
                    for k, r in zip(todo, raws, strict=True)
                ]
            except ValueError:
                log.warning("unreadable value in Redis; answering from PostgreSQL")
                raise CacheCold() from None
            out.update(fetched)
            l1.put_many([(k, r) for k, r in zip(todo, raws, strict=True) if k != BUILT_KEY], epoch)
        return out

    async def _fetch_db(self, keys: list[str]) -> dict[str, Entry]:
        async with self.engine.connect() as conn:
            found = await read_docs(conn, keys)
        return {k: found.get(k) for k in keys}

    # -- the two rounds ---------------------------------------------------------------------
    async def _judge(
        self, lines: Sequence[Line], tokens: list[str], fetch: Fetch, check_built: bool
    ) -> list[dict[str, Any]]:
        keys1: list[str] = []
        for ln, tok in zip(lines, tokens, strict=True):
            keys1 += (
                institution_key(ln.institution),
                view_key(ln.institution, tok),
                alias_key(ln.institution, tok),
            )
        got = await fetch(list(dict.fromkeys(keys1)))

        keys2: set[str] = set()
        for ln, tok in zip(lines, tokens, strict=True):
            if got[institution_key(ln.institution)] is None:
                keys2.add(BUILT_KEY)
            elif got[view_key(ln.institution, tok)] is None:
                alias = got[alias_key(ln.institution, tok)]
                if alias is not None:
                    keys2.add(view_key(ln.institution, alias[1]["t"]))
                else:
                    keys2.add(known_key(tok))
                    keys2.add(BUILT_KEY)
        if keys2:
            if not check_built:
                keys2.discard(BUILT_KEY)
            got.update(await fetch(sorted(keys2)))
            if check_built and BUILT_KEY in keys2 and got[BUILT_KEY] is None:
                # Misses seen while the mirror is not built say nothing about the truth: keep
                # none of them in the L1, or they would outlive the rebuild's "*" invalidation.
                self.l1.invalidate([k for k, e in got.items() if e is None])
                raise CacheCold()

        answers = []
        for ln, tok in zip(lines, tokens, strict=True):
            inst = got[institution_key(ln.institution)]
            view = got.get(view_key(ln.institution, tok)) if inst is not None else None
            known = False
            if inst is not None and view is None:
                alias = got[alias_key(ln.institution, tok)]
                if alias is not None:
                    view = got.get(view_key(ln.institution, alias[1]["t"]))
                    known = True
                else:
                    known = got.get(known_key(tok)) is not None
            allowed, reasons = decide(
                inst[1] if inst else None,
                ln.department,
                view[1] if view else None,
                known,
                ln.day,
                ln.emergency,
            )
            answers.append(
                {
                    "decision": "allow" if allowed else "deny",
                    "reasons": reasons,
                    "data_version": {
                        "institution": inst[0] if inst else None,
                        "practitioner": view[0] if view else None,
                    },
                }
            )
        return answers

    async def check(self, lines: Sequence[Line]) -> tuple[list[dict[str, Any]], str]:
        """Answers in order, and the source they came from ("cache" or "database")."""
        secret = self.pii_secret
        tokens = [codes.practitioner_token(ln.practitioner, secret) for ln in lines]
        if not self.mirror_behind and time.monotonic() >= self._redis_down_until:
            try:
                return await self._judge(lines, tokens, self._fetch_cache, True), "cache"
            except CacheCold:
                pass
            except (RedisError, OSError) as exc:
                log.warning("redis unavailable (%s); answering from PostgreSQL", type(exc).__name__)
                self._redis_down_until = time.monotonic() + self.redis_retry_s
        try:
            answers = await self._judge(lines, tokens, self._fetch_db, False)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.error("neither Redis nor PostgreSQL could answer (%s)", type(exc).__name__)
            raise Unavailable(
                "the gate cannot reach its status store; retry, or settle by the agency's "
                "fallback procedure — this is not an allow"
            ) from None
        self.degraded_answers += len(lines)
        return answers, "database"


class _DecisionIds:
    """Unique decision ids, 32 hex digits like a UUID but a tenth of uuid4's cost per line:
    80 random bits per process (renewed after a fork) followed by a 48-bit counter."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._next = itertools.count()

    def __call__(self) -> str:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._prefix = os.urandom(10).hex()
            self._next = itertools.count()
        return f"{self._prefix}{next(self._next):012x}"


decision_id = _DecisionIds()


def stamp(answer: dict[str, Any], line: Line, source: str, checked_at: str) -> dict[str, Any]:
    answer["source"] = source
    answer["checked_at"] = checked_at
    answer["decision_id"] = decision_id()
    answer["service_date"] = line.day
    if line.claim_id is not None:
        answer["claim_id"] = line.claim_id
    return answer


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
