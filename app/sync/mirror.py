"""Writing projections into Redis: the version-guarded write, the invalidation publish, the full
rebuild, the resync of a Redis that came back older than it was, and the verification that
compares every projection with what Redis holds."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cache.layout import (
    BUILT_KEY,
    CAS_SCRIPT,
    decode,
    encode,
    invalidation_channel,
)
from app.cache.topology import (
    StampPlace,
    bounded,
    eval_on,
    is_cluster,
    mget,
    node_of,
    publish,
    slot_groups,
    stamp_places,
)
from app.db.tables import projections
from app.projection.store import read_docs
from app.sync.stamp import (
    SINGLE_PLACE,
    STAMPED_CAS_SCRIPT,
    Stamp,
    ensure_generation,
    lock_stamp,
)

log = logging.getLogger("claimgate.sync")

CAS_BATCH = 500  # keys per script call
REBUILD_LOCK = "cg:meta:rebuilding"
REBUILD_LOCK_TTL_S = 15

# KEYS[1] = the rebuild's token key, KEYS[2] = the built marker, KEYS[3] / KEYS[4] = the stamp
# (app.sync.stamp). The marker and stamp are set only if the token this rebuild wrote at its
# start is still there: a Redis flushed or restarted during the rebuild lost the token too, and
# must not be marked built (nor vouched for) over documents it no longer holds.
FINISH_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], ARGV[4])
redis.call('DEL', KEYS[1])
return 1
"""

# Repair overwrites a value that is older, equal-versioned but different, unreadable, or claims
# a version above ARGV[2] (the highest ever issued); it never undoes a newer honest write.
REPAIR_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = string.sub(cur, 1, 16)
  if string.match(v, '^%x+$') and #v == 16 and v > string.sub(ARGV[1], 1, 16) and v <= ARGV[2] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


# The 16-hex version prefix of each key ('' for a key Redis does not hold): enough for the
# periodic reconciliation, without moving or parsing a single document.
VERSIONS_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('GETRANGE', key, 0, 15)
end
return out
"""


class Mirror:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._cas = redis.register_script(CAS_SCRIPT)

    async def write(self, rows: Sequence[tuple[str, int, Any]], *, publish: bool = True) -> int:
        """Version-guarded SET of each (key, version, doc); returns how many were newer."""
        if not rows:
            return 0
        calls = [
            ([rows[i][0] for i in part], [encode(rows[i][1], rows[i][2]) for i in part])
            for group in slot_groups(self.redis, [k for k, _, _ in rows])
            for part in _chunks(group, CAS_BATCH)
        ]
        if is_cluster(self.redis):
            # One call per slot; the cluster client sends each to its master.
            results = await bounded(
                [lambda k=k, a=a: self._cas(keys=k, args=a) for k, a in calls]  # type: ignore[misc]
            )
        else:
            # The context manager resets the pipeline even when Redis fails mid-way.
            async with self.redis.pipeline(transaction=False) as pipe:
                for k, a in calls:
                    await self._cas(keys=k, args=a, client=pipe)
                results = await pipe.execute()
        if publish:
            await self.publish([k for k, _, _ in rows])
        return sum(int(r) for r in results)

    async def publish(self, keys: Sequence[str]) -> None:
        await publish(self.redis, invalidation_channel(self.redis), "\n".join(keys))

    async def write_batch(self, rows: Sequence[tuple[str, int, Any]], truth: Stamp) -> int | None:
        """The drain's write: version-guarded like :meth:`write`, and counted as one batch.

        ``truth`` is PostgreSQL's stamp, read under its lock. Returns the count to record there,
        or None when Redis lacks batches PostgreSQL counts (or is another generation's): then
        nothing was written, and the rows must stay in the outbox until Redis is repaired. On a
        cluster every master's copy of the stamp is checked and raised, with the documents that
        master holds (app.sync.stamp).
        """
        places = await stamp_places(self.redis, SINGLE_PLACE)
        mine: dict[str, list[tuple[str, int, Any]]] = {p.built: [] for p in places}
        if len(places) == 1:
            mine[places[0].built] = list(rows)
        else:
            owner = {p.node.name: p.built for p in places}
            for row in rows:
                mine[owner[node_of(self.redis, row[0]).name]].append(row)
        results = []
        for place in places:
            part = mine[place.built]
            for chunk in _chunks(part, CAS_BATCH) if part else [[]]:
                args: list[Any] = [truth.batches, truth.generation]
                for k, v, d in chunk:
                    args += (k, encode(v, d))
                results.append(
                    int(await eval_on(self.redis, place, STAMPED_CAS_SCRIPT, place.keys, args))
                )
                if results[-1] < 0:
                    return None
        await self.publish([k for k, _, _ in rows])
        # Not built: written but uncounted in Redis; PostgreSQL still counts the batch, so a
        # snapshot from before it, restored later, is recognised as older.
        return max([truth.batches + 1, *results])


def _chunks(items: Sequence[Any], n: int) -> list[Sequence[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


async def _start(redis: Redis, token: str) -> list[StampPlace]:
    """A rebuild's (or resync's) token on every copy of the stamp: a copy that loses its data
    meanwhile loses the token with it, and is not vouched for at the end."""
    places = await stamp_places(redis, SINGLE_PLACE)
    for place in places:
        await redis.set(place.token, token, ex=3600)
    return places


async def _finish(
    engine: AsyncEngine, redis: Redis, places: list[StampPlace], token: str, marker: bytes
) -> bool:
    """Mark Redis built and stamp it with PostgreSQL's count, if the token survived (on every
    copy). Under the stamp's lock: no drain runs between reading the count and stamping."""
    await ensure_generation(engine)
    done = True
    async with engine.begin() as conn:
        truth = await lock_stamp(conn)
        for place in places:
            keys = (place.token, *place.keys)
            args = (token, marker, truth.batches, truth.generation)
            done = bool(await eval_on(redis, place, FINISH_SCRIPT, keys, args)) and done
        if done and places[0].built != BUILT_KEY:
            # A cluster: the marker the checks read with their documents (app.checks.service).
            await redis.set(BUILT_KEY, marker)
    return done


@dataclass
class RebuildReport:
    projections: int
    written: int
    seconds: float
    complete: bool = True


async def rebuild(engine: AsyncEngine, redis: Redis, *, chunk: int = 2000) -> RebuildReport:
    """Copy every projection into Redis (version-guarded), then mark the cache built.

    Checks keep answering during a rebuild: versions only move forward, and until the built
    marker is set a miss falls back to PostgreSQL instead of reading as "unknown".
    """
    t0 = time.monotonic()
    mirror = Mirror(redis)
    total = written = 0
    token = uuid.uuid4().hex
    places = await _start(redis, token)
    async with engine.connect() as conn:
        result = await conn.stream(
            select(projections.c.key, projections.c.version, projections.c.doc).execution_options(
                yield_per=chunk
            )
        )
        async for part in result.partitions(chunk):
            rows = [(k, v, d) for k, v, d in part]
            written += await mirror.write(rows, publish=False)
            total += len(rows)
            await redis.expire(REBUILD_LOCK, REBUILD_LOCK_TTL_S)  # Redis 6.2 has no XX
    # Encoded like every other value, so a check can fetch it in the same MGET as documents.
    marker = encode(0, {"built_at": time.time(), "projections": total})
    complete = await _finish(engine, redis, places, token, marker)
    await mirror.publish(["*"])
    report = RebuildReport(total, written, time.monotonic() - t0, complete)
    if complete:
        log.info("cache rebuilt: %d projections, %d written, %.1fs", total, written, report.seconds)
    else:
        log.warning("Redis lost its data during the rebuild; not marked built, will rebuild again")
    return report


@dataclass
class VerifyReport:
    checked: int
    missing: int
    stale: int
    differing: int
    repaired: int
    complete: bool = True


async def resync(engine: AsyncEngine, redis: Redis, *, chunk: int = 2000) -> VerifyReport:
    """Repair a Redis that came back older than it was, then vouch for it again.

    Every projection's version is compared with Redis and what drifted is put back through the
    version guard — a regressed Redis holds older values, which the guard lets the repairs
    overwrite, while a write mirrored meanwhile is never undone. Drains are refused until the
    end, so their rows wait in the outbox; the stamp is then set to PostgreSQL's count (under
    its lock) and the waiting rows follow. Faster than :func:`rebuild`: only what drifted moves.
    """
    token = uuid.uuid4().hex
    places = await _start(redis, token)
    report = await _verify_versions(engine, redis, repair=True, chunk=chunk, keep_lock=True)
    marker = encode(0, {"built_at": time.time(), "projections": report.checked, "resync": True})
    report.complete = await _finish(engine, redis, places, token, marker)
    await Mirror(redis).publish(["*"])
    drift = report.missing + report.stale + report.differing
    if report.complete:
        log.warning(
            "Redis came back older than it was; resynced: %d missing, %d stale, %d differing "
            "of %d, %d repaired",
            report.missing,
            report.stale,
            report.differing,
            report.checked,
            report.repaired,
        )
    else:
        log.warning("Redis lost its data during the resync (%d drifted); will try again", drift)
    return report


async def verify(
    engine: AsyncEngine, redis: Redis, *, repair: bool, chunk: int = 2000, deep: bool = True
) -> VerifyReport:
    """Compare every projection with Redis; with ``repair``, overwrite what drifted.

    ``deep`` compares documents as well as versions (``claimgate cache verify``). The periodic
    reconciliation compares versions only: every drift it exists for — a key lost, a Redis
    restored from an old snapshot, a write that never arrived, a value that is not ours — shows
    in the version prefix, at a tenth of the cost, which it pays inside a serving process.
    """
    if not deep:
        return await _verify_versions(engine, redis, repair=repair, chunk=chunk)
    checked = missing = stale = differing = repaired = 0
    repair_script = redis.register_script(REPAIR_SCRIPT)
    async with engine.connect() as conn:
        result = await conn.stream(
            select(projections.c.key, projections.c.version, projections.c.doc).execution_options(
                yield_per=chunk
            )
        )
        async for part in result.partitions(chunk):
            rows = list(part)
            raws = await mget(redis, [r[0] for r in rows])
            fix: list[tuple[str, bytes]] = []
            for (key, version, doc), raw in zip(rows, raws, strict=True):
                checked += 1
                if raw is None:
                    missing += 1
                else:
                    try:
                        have_version, have_doc = decode(raw)
                    except ValueError:
                        have_version, have_doc = -1, None
                    if 0 <= have_version < version:
                        stale += 1
                    elif have_version == version and have_doc == doc:
                        continue
                    else:
                        differing += 1
                if repair:
                    fix.append((key, encode(version, doc)))
            if fix:
                repaired += await _repair(engine, redis, repair_script, fix)
    return VerifyReport(checked, missing, stale, differing, repaired)


async def _verify_versions(
    engine: AsyncEngine, redis: Redis, *, repair: bool, chunk: int, keep_lock: bool = False
) -> VerifyReport:
    checked = missing = stale = differing = repaired = 0
    versions_of = redis.register_script(VERSIONS_SCRIPT)
    repair_script = redis.register_script(REPAIR_SCRIPT)
    async with engine.connect() as conn:
        result = await conn.stream(
            select(projections.c.key, projections.c.version).execution_options(yield_per=chunk)
        )
        async for part in result.partitions(chunk):
            rows = list(part)
            have: list[Any] = [b""] * len(rows)
            for group in slot_groups(redis, [k for k, _ in rows]):
                got = await versions_of(keys=[rows[i][0] for i in group])
                for i, prefix in zip(group, got, strict=True):
                    have[i] = prefix
            drifted: list[str] = []
            for (key, version), prefix in zip(rows, have, strict=True):
                checked += 1
                if prefix == b"%016x" % version:
                    continue
                if not prefix:
                    missing += 1
                elif 0 <= _version_of(prefix) < version:
                    stale += 1
                else:
                    differing += 1
                drifted.append(key)
            if drifted and repair:
                async with engine.connect() as read:
                    current = await read_docs(read, drifted)
                fix = [(k, encode(v, d)) for k, (v, d) in current.items()]
                repaired += await _repair(engine, redis, repair_script, fix)
            if keep_lock:
                await redis.expire(REBUILD_LOCK, REBUILD_LOCK_TTL_S)
    return VerifyReport(checked, missing, stale, differing, repaired)


def _version_of(prefix: bytes) -> int:
    try:
        return int(prefix, 16) if len(prefix) == 16 else -1
    except ValueError:
        return -1


async def _repair(
    engine: AsyncEngine, redis: Redis, script: Any, fix: list[tuple[str, bytes]]
) -> int:
    """Overwrite drifted values; return how many were written.

    The scan's snapshot may be older than what the worker mirrored since, so the ceiling (no
    honest value carries a version the sequence has not handed out) is read now, and the keys
    written are then put back to their current projection through the version guard: a write
    that committed meanwhile wins.
    """
    async with engine.connect() as conn:
        ceiling = (
            b"%016x"
            % (
                await conn.execute(text("SELECT last_value FROM projection_version_seq"))
            ).scalar_one()
        )
    if is_cluster(redis):
        results = await bounded(
            [lambda k=k, v=v: script(keys=[k], args=[v, ceiling]) for k, v in fix]  # type: ignore[misc]
        )
    else:
        async with redis.pipeline(transaction=False) as pipe:
            for key, value in fix:
                await script(keys=[key], args=[value, ceiling], client=pipe)
            results = await pipe.execute()
    written = [k for (k, _), r in zip(fix, results, strict=True) if r == 1]
    if written:
        async with engine.connect() as conn:
            current = await read_docs(conn, written)
        await Mirror(redis).write([(k, v, d) for k, (v, d) in current.items()], publish=False)
    await Mirror(redis).publish([k for k, _ in fix])
    return len(written)
