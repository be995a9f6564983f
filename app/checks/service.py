"""Answering checks: fetch the documents (L1 → Redis, or PostgreSQL when Redis cannot answer),
then decide. At most two round trips per request, whatever the batch size, and none for a line
whose verdict the memo holds (app.checks.verdicts).

Round 1 fetches, per line, the institution document, the practitioner's view and a possible
local-code alias — all under the institution's hash tag. Round 2, only for lines that round 1
could not settle, fetches the aliased view and the practitioner's global "known" marker.
A practitioner's own code wins over an alias stored under the same code: its view at the
institution first, and where it has none but is a known practitioner, it is judged as itself
(not registered here), never as the alias's target.

A key Redis does not hold means "unknown" only while Redis holds a complete copy; a cold or
flushed Redis holds nothing. So whenever a negative that decides an answer comes from Redis in
this request, round 2 also asks for the cache's built marker, and without it the request is
answered from PostgreSQL. Negatives the L1 holds were checked that way when they were read, and
stay true until an invalidation evicts them, so a warm L1 answers unknown codes with no round
trip at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import codes
from app.cache.coalesce import CoalescedReads
from app.cache.l1 import MISSING, L1Cache
from app.cache.layout import (
    BUILT_KEY,
    alias_key,
    decode,
    institution_alias_key,
    institution_key,
    known_key,
    view_key,
)
from app.cache.shapes import AliasDoc, Entry, InstitutionAliasDoc, InstitutionDoc, ViewDoc
from app.cache.topology import mget
from app.checks.decide import decide
from app.checks.lines import Line
from app.checks.verdicts import MemoKey, Verdict, VerdictMemo, verdict_of
from app.errors import Unavailable
from app.projection.store import read_docs
from app.sync.stamp import STAMP_KEYS, Stamp, held_of

log = logging.getLogger("claimgate.checks")

# keys, built-marker policy, keys wanted only where another is not held (see _fetch_cache)
# → (entries, keys among them read from Redis just now)
Fetch = Callable[
    [list[str], int, dict[str, str] | None],
    Awaitable[tuple[dict[str, Entry | None], set[str]]],
]
NO_MARKER, MARKER_IF_READING, MARKER_ALWAYS = 0, 1, 2


def _alias_target(alias: Entry) -> str | None:
    doc: AliasDoc = alias.doc
    return doc["t"]


def _unavailable(exc: BaseException) -> Unavailable:
    log.error("neither Redis nor PostgreSQL could answer (%s)", type(exc).__name__)
    return Unavailable(
        "the gate cannot reach its status store; retry, or settle by the agency's "
        "fallback procedure — this is not an allow"
    )


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
        memo_size: int = 100_000,
        redis_retry_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.engine = engine
        self.l1 = l1
        self.memo = VerdictMemo(memo_size)
        self.reads = CoalescedReads(self._mget)
        l1.on_invalidate = self.memo.forget
        self.pii_secret = pii_secret
        self.redis_retry_s = redis_retry_s
        self._redis_down_until = 0.0
        # Set by the runtime's mirror watch (app.api.runtime): the mirror lags the truth past
        # the staleness bound (no sync worker running, Redis slow to take writes); Redis came
        # back older than it was (app.sync.stamp); or the watch could not compare them at its
        # last probe. Any of them: answer from PostgreSQL. ``cache_trusted`` is their sum, the
        # one flag the hot path reads.
        self.mirror_truth: Stamp | None = None  # PostgreSQL's stamp at the watch's last probe
        self.mirror_behind = False
        self.mirror_regressed = False
        self.mirror_verified = True
        self.cache_trusted = True
        self.regressions_seen = 0
        self.degraded_answers = 0
        self.lines_checked = 0

    def set_mirror(self, *, behind: bool, regressed: bool, verified: bool) -> None:
        """What the mirror watch found at its last probe."""
        if behind != self.mirror_behind:
            log.warning(
                "mirror %s the staleness bound; checks answer from %s",
                "behind" if behind else "back within",
                "PostgreSQL" if behind else "the cache",
            )
        if regressed != self.mirror_regressed:
            if regressed:
                self.regressions_seen += 1
                log.warning("Redis came back older than it was; checks answer from PostgreSQL")
            else:
                log.warning("Redis repaired; checks answer from the cache again")
            # What the L1 read from the old copy before this was noticed (a failover need not
            # drop the subscription that would flush it), and the verdicts decided from it,
            # must not outlive it; nor anything read while it was being repaired.
            self.l1.clear()
        self.mirror_behind = behind
        self.mirror_regressed = regressed
        self.mirror_verified = verified
        self.cache_trusted = verified and not (behind or regressed)

    async def vet_connection(self, conn: Any) -> None:
        """Runs as each Redis connection opens (the pool's ``redis_connect_func``): one MGET of
        the stamp, compared with PostgreSQL's at the watch's last probe. A restarted or failed-
        over Redis is reached through new connections — the pool reconnects dead ones without
        an error — so an older copy is noticed before the first read from it is used: the check
        that opened the connection sees ``cache_trusted`` drop and answers from PostgreSQL.
        A round trip per connection opened, none per check."""
        await conn.on_connect()
        truth = self.mirror_truth
        if truth is None:
            return
        await conn.send_command("MGET", *STAMP_KEYS)
        if held_of(await conn.read_response()).regressed_from(truth):
            self.set_mirror(
                behind=self.mirror_behind, regressed=True, verified=self.mirror_verified
            )

    def _redis_failed(self, exc: BaseException) -> None:
        """Redis did not answer: PostgreSQL answers, and Redis is not asked again for a while
        (a dead Redis must not cost a timeout per check)."""
        log.warning("redis unavailable (%s); answering from PostgreSQL", type(exc).__name__)
        self._redis_down_until = time.monotonic() + self.redis_retry_s

    async def _mget(self, keys: list[str]) -> list[Any]:
        return await mget(self.redis, keys)

    # -- fetchers ---------------------------------------------------------------------------
    async def _fetch_cache(
        self, keys: list[str], marker: int, unless_held: dict[str, str] | None = None
    ) -> tuple[dict[str, Entry | None], set[str]]:
        """Entries for ``keys`` (L1 first) and the keys read from Redis. The built marker is
        read with them as ``marker`` says, and always from Redis: a FLUSHDB publishes nothing,
        so an L1 copy of it would read a flushed cache as "unknown". ``unless_held`` maps keys
        wanted only when another key is not a document the L1 holds (a practitioner's alias at
        an institution matters only when their view there is absent); such a key read with a
        view that exists is not kept in the L1 — absent aliases of present views were half the
        L1, and documents that were needed fell out of it (docs/performance.md)."""
        l1 = self.l1
        out: dict[str, Entry | None] = {}
        todo: list[str] = []
        if l1.enabled:
            for k in keys:
                e = l1.get(k)
                if e is MISSING:
                    todo.append(k)
                else:
                    out[k] = e
            if unless_held:
                for k, held in unless_held.items():
                    if out.get(held) is None:  # absent, or not in the L1: the alias may count
                        e = l1.get(k)
                        if e is MISSING:
                            todo.append(k)
                        else:
                            out[k] = e
        else:
            todo = list(keys)
            if unless_held:
                todo += unless_held
        if marker == MARKER_ALWAYS or (todo and marker == MARKER_IF_READING):
            todo.append(BUILT_KEY)
        if not todo:
            return out, set()
        epoch = l1.epoch
        raws = await self.reads.get(todo)
        try:
            fetched = [
                (k, decode(r) if r is not None else None) for k, r in zip(todo, raws, strict=True)
            ]
        except ValueError:
            log.warning("unreadable value in Redis; answering from PostgreSQL")
            raise CacheCold() from None
        out.update(fetched)
        keep = [(k, r) for k, r in zip(todo, raws, strict=True) if k != BUILT_KEY]
        if unless_held:
            keep = [
                (k, r) for k, r in keep if r is not None or not self._view_held(k, unless_held, out)
            ]
        l1.put_many(keep, epoch)
        return out, set(todo)

    @staticmethod
    def _view_held(key: str, unless_held: dict[str, str], got: dict[str, Entry | None]) -> bool:
        """Whether ``key`` stands in for a document ``got`` holds (its absence is not kept)."""
        held = unless_held.get(key)
        return held is not None and got.get(held) is not None

    async def _fetch_db(
        self, keys: list[str], marker: int, unless_held: dict[str, str] | None = None
    ) -> tuple[dict[str, Entry | None], set[str]]:
        if unless_held:
            keys = keys + list(unless_held)
        async with self.engine.connect() as conn:
            found = await read_docs(conn, keys)
        return {k: found.get(k) for k in keys}, set()

    # -- the two rounds ---------------------------------------------------------------------
    async def _judge(self, lines: Sequence[Line], tokens: list[str], fetch: Fetch) -> list[Verdict]:
        keys1: list[str] = []
        aliases: dict[str, str] = {}  # alias key → the view key it stands in for
        for ln, tok in zip(lines, tokens, strict=True):
            vk = view_key(ln.institution, tok)
            keys1 += (institution_key(ln.institution), vk)
            aliases[alias_key(ln.institution, tok)] = vk
        got, fresh = await fetch(list(dict.fromkeys(keys1)), NO_MARKER, aliases)

        keys2: set[str] = set()
        negatives: list[str] = []  # the keys whose absence decides an answer
        for ln, tok in zip(lines, tokens, strict=True):
            ik = institution_key(ln.institution)
            vk = view_key(ln.institution, tok)
            if got[ik] is None:
                negatives.append(ik)
            elif got[vk] is None:
                ak = alias_key(ln.institution, tok)
                alias = got[ak]
                if alias is not None and (target := _alias_target(alias)) is not None:
                    keys2.add(view_key(ln.institution, target))
                    if codes.is_national_practitioner(tok):
                        # Shaped like a real code (an alias from before app.admin.aliases
                        # refused those): the alias counts only if no practitioner has it.
                        keys2.add(known_key(tok))
                        negatives.append(known_key(tok))
                else:
                    keys2.add(known_key(tok))
                    negatives += (vk, ak, known_key(tok))
        if keys2 or negatives:
            marker = MARKER_ALWAYS if not fresh.isdisjoint(negatives) else MARKER_IF_READING
            try:
                more, fresh2 = await fetch(sorted(keys2), marker, None)
            except BaseException:
                # Round 1's misses went into the L1 before the marker could vouch for them;
                # unvouched, they must not stay there to be trusted later.
                self.l1.invalidate([k for k in fresh if got.get(k) is None])
                raise
            got.update(more)
            if BUILT_KEY in fresh2 and got[BUILT_KEY] is None:
                # Misses seen while the mirror is not built say nothing about the truth: keep
                # none of them in the L1, or they would outlive the rebuild's "*" invalidation.
                self.l1.invalidate([k for k, e in got.items() if e is None])
                raise CacheCold()

        out = []
        for ln, tok in zip(lines, tokens, strict=True):
            inst = got[institution_key(ln.institution)]
            view = got.get(view_key(ln.institution, tok)) if inst is not None else None
            known = False
            if inst is not None and view is None:
                alias = got[alias_key(ln.institution, tok)]
                known = got.get(known_key(tok)) is not None
                if alias is not None and not known and (target := _alias_target(alias)) is not None:
                    view = got.get(view_key(ln.institution, target))
                    known = True
            inst_doc: InstitutionDoc | None = inst.doc if inst else None
            view_doc: ViewDoc | None = view.doc if view else None
            allowed, reasons = decide(
                inst_doc, ln.department, view_doc, known, ln.day, ln.emergency
            )
            versions = {
                "institution": inst.version if inst else None,
                "practitioner": view.version if view else None,
            }
            out.append(verdict_of(allowed, reasons, versions))
        return out

    async def _from_cache(self, lines: Sequence[Line], tokens: list[str]) -> list[Verdict]:
        """Verdicts from the memo where it holds them, the rest judged from the L1 and Redis."""
        if not self.l1.enabled:
            return await self._judge(lines, tokens, self._fetch_cache)
        epoch = self.l1.epoch
        memo = self.memo
        keys: list[MemoKey] = [
            (ln.institution, ln.department, tok, ln.day, ln.emergency)
            for ln, tok in zip(lines, tokens, strict=True)
        ]
        found: list[Verdict | None] = [memo.get(k) for k in keys]
        todo = [i for i, v in enumerate(found) if v is None]
        if not todo:
            self.memo.hits += len(lines)
            return found  # type: ignore[return-value]
        judged = await self._judge(
            [lines[i] for i in todo], [tokens[i] for i in todo], self._fetch_cache
        )
        self.memo.hits += len(lines) - len(todo)
        keep = self.l1.epoch == epoch  # no invalidation arrived while they were judged
        for i, v in zip(todo, judged, strict=True):
            found[i] = v
            if keep:
                self.memo.put(keys[i], v)
        return found  # type: ignore[return-value]

    async def institutions_of(
        self, local_codes: Sequence[str]
    ) -> tuple[dict[str, str | None], str]:
        """The national institution each local code stands for (None: no such alias), and the
        source ("cache" or "database"). One round trip for codes the L1 does not hold, none
        for codes it does; a code Redis does not hold counts as unknown only while the built
        marker vouches for it, as in :meth:`_judge`. Only lines with a local institution code
        come here: a national code is never looked up (app.checks.usecase)."""
        keys = [institution_alias_key(c) for c in local_codes]

        def targets(got: dict[str, Entry | None]) -> dict[str, str | None]:
            out: dict[str, str | None] = {}
            for code, key in zip(local_codes, keys, strict=True):
                entry = got[key]
                doc: InstitutionAliasDoc | None = entry.doc if entry is not None else None
                out[code] = doc["t"] if doc is not None else None
            return out

        if self.cache_trusted and time.monotonic() >= self._redis_down_until:
            try:
                got, fresh = await self._fetch_cache(keys, MARKER_IF_READING)
                if BUILT_KEY in fresh and got[BUILT_KEY] is None:
                    self.l1.invalidate([k for k in fresh if got.get(k) is None])
                    raise CacheCold()
                if self.cache_trusted:
                    return targets(got), "cache"
            except CacheCold:
                pass
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        try:
            got, _ = await self._fetch_db(keys, NO_MARKER, None)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise _unavailable(exc) from None
        return targets(got), "database"

    async def check_one(self, line: Line) -> tuple[Verdict, str]:
        """:meth:`check` of one line; a remembered verdict is found without the lists a batch
        needs (most single checks are remembered)."""
        tok = codes.practitioner_token(line.practitioner, self.pii_secret)
        if self.cache_trusted and self.l1.enabled and time.monotonic() >= self._redis_down_until:
            memo = self.memo
            v = memo.get((line.institution, line.department, tok, line.day, line.emergency))
            if v is not None:
                self.lines_checked += 1
                memo.hits += 1
                return v, "cache"
        verdicts, source = await self._check((line,), [tok])
        return verdicts[0], source

    async def check(self, lines: Sequence[Line]) -> tuple[list[Verdict], str]:
        """Verdicts in order, and the source they came from ("cache" or "database")."""
        secret = self.pii_secret
        return await self._check(
            lines, [codes.practitioner_token(ln.practitioner, secret) for ln in lines]
        )

    async def _check(self, lines: Sequence[Line], tokens: list[str]) -> tuple[list[Verdict], str]:
        self.lines_checked += len(lines)
        if self.cache_trusted and time.monotonic() >= self._redis_down_until:
            try:
                verdicts = await self._from_cache(lines, tokens)
                if self.cache_trusted:  # still: see vet_connection
                    return verdicts, "cache"
            except CacheCold:
                pass
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        try:
            answers = await self._judge(lines, tokens, self._fetch_db)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise _unavailable(exc) from None
        self.degraded_answers += len(lines)
        return answers, "database"

    async def judge_from_database(self, lines: Sequence[Line], tokens: list[str]) -> list[Verdict]:
        """Verdicts from PostgreSQL alone, for lines whose practitioner is already a token (the
        decision log keeps no ID number in clear): ``claimgate decisions replay`` re-judges the
        logged lines against today's truth with exactly the rules a check uses."""
        return await self._judge(lines, tokens, self._fetch_db)
