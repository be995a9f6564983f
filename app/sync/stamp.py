"""The mirror's stamp: how many outbox batches Redis has taken, and whose mirror it is — kept in
Redis and in PostgreSQL, so that a Redis that came back older than it was (restarted from its own
snapshot, a lagging replica promoted, a restore from backup) is recognised as such.

Every drain of the outbox (app.sync.worker) holds the lock on PostgreSQL's one ``mirror_state``
row from before its Redis write until its commit. Its Lua script writes the documents and raises
Redis's count (``cg:meta:batches``) by one — but only when Redis already holds every batch
PostgreSQL counts and carries the same generation; the worker then records the new count in the
transaction that deletes the outbox rows. So, while Redis keeps what it acknowledged, its count
is never below PostgreSQL's; a Redis that lost a drained batch has a lower count, and keeps it:
the script refuses every later batch, so new writes cannot lift the count over the gap.

A maximum of versions would not do. Versions are handed out before commit, so batches do not
arrive in version order (a snapshot can hold version 100 and miss a batch of 95), and a single new
write into a regressed Redis would lift its maximum over everything it lost.

The generation is a random id chosen at the first build and recorded in PostgreSQL before any
Redis carries it: a Redis holding another deployment's mirror, or one from before PostgreSQL's
state was reset, does not match whatever its count.

A Redis without the built marker (restarted empty, flushed, mid-rebuild) is not "regressed" but
"not built": misses are not trusted there anyway, and the rebuild stamps it when it finishes. A
drain into it still raises PostgreSQL's count, so an older snapshot restored later is still
recognised.

Readers compare in one order — PostgreSQL first, then Redis — so a batch drained between the two
reads can only make Redis look newer, never older.

On a Redis Cluster every master carries its own copy of the stamp, in the lowest slot it serves
(app.cache.topology.stamp_places): a master that fails over to a replica that lagged, or restarts
from its own snapshot, loses batches together with its copy, whatever the other masters hold.
Each drain stamps every copy (a master with no document in the batch too), in the same script
as that master's documents; readers take the worst copy: the lowest count, and "regressed" when
some masters are built and others are not (one lost its data) or their generations differ.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.cache.layout import BATCHES_KEY, BUILT_KEY, GENERATION_KEY, REBUILD_TOKEN
from app.cache.topology import StampPlace, mget, stamp_places


class MirrorRegressed(Exception):
    """Redis holds fewer outbox batches than PostgreSQL counts, or another generation's mirror."""


@dataclass(frozen=True)
class Stamp:
    """PostgreSQL's account: batches mirrored so far, and the generation they went into."""

    batches: int
    generation: str  # '' until the first build chooses one


@dataclass(frozen=True)
class HeldStamp:
    """What Redis says of itself."""

    built: bool
    batches: int
    generation: str

    def regressed_from(self, truth: Stamp) -> bool:
        """A built mirror that lacks batches PostgreSQL counts, or is another generation's."""
        return self.built and (self.generation != truth.generation or self.batches < truth.batches)


_READ = text("SELECT batches, generation FROM mirror_state WHERE id = 1")
_LOCK = text("SELECT batches, generation FROM mirror_state WHERE id = 1 FOR UPDATE")
_CREATE = text("INSERT INTO mirror_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING")
_RECORD = text("UPDATE mirror_state SET batches = :n, updated_at = now() WHERE id = 1")
_CHOOSE = text(
    "UPDATE mirror_state SET generation = :g, updated_at = now() "
    "WHERE id = 1 AND generation IS NULL"
)


def stamp_of(batches: int | None, generation: str | None) -> Stamp:
    return Stamp(int(batches or 0), generation or "")


async def read_stamp(conn: AsyncConnection) -> Stamp:
    row = (await conn.execute(_READ)).one_or_none()
    return stamp_of(*row) if row is not None else Stamp(0, "")


async def lock_stamp(conn: AsyncConnection) -> Stamp:
    """PostgreSQL's stamp, locked until the caller's transaction ends: drains and the end of a
    rebuild take turns, so no batch slips between reading the count and stamping Redis."""
    row = (await conn.execute(_LOCK)).one_or_none()
    if row is None:  # the migration inserts the row; a truncated table (tests) has none
        await conn.execute(_CREATE)
        row = (await conn.execute(_LOCK)).one()
    return stamp_of(*row)


async def record_batches(conn: AsyncConnection, batches: int) -> None:
    """The new count, in the transaction that holds the lock and deletes the drained rows."""
    await conn.execute(_RECORD, {"n": batches})


async def ensure_generation(engine: AsyncEngine) -> str:
    """The mirror's generation, chosen (and committed) if there is none yet. Committed before
    any Redis is stamped with it, so no reader ever sees Redis ahead of PostgreSQL's choice."""
    async with engine.begin() as conn:
        truth = await lock_stamp(conn)
        if truth.generation:
            return truth.generation
        chosen = uuid.uuid4().hex
        await conn.execute(_CHOOSE, {"g": chosen})
        return chosen


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw.decode("latin-1") if isinstance(raw, bytes) else raw


def _count(raw: bytes | str | None) -> int:
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        return -1  # not ours: lower than any count PostgreSQL can hold


STAMP_KEYS = (BUILT_KEY, BATCHES_KEY, GENERATION_KEY)
SINGLE_PLACE = StampPlace(BUILT_KEY, BATCHES_KEY, GENERATION_KEY, REBUILD_TOKEN)
_MIXED = "\0mixed"  # no generation PostgreSQL can hold


def held_of(values: list[Any]) -> HeldStamp:
    """Redis's stamp from the values of :data:`STAMP_KEYS`, in that order."""
    built, batches, generation = values
    return HeldStamp(built is not None, _count(batches), _text(generation))


def worst_of(copies: list[HeldStamp]) -> HeldStamp:
    """One stamp for several copies (a cluster's masters): the oldest of them."""
    if len(copies) == 1:
        return copies[0]
    if not any(c.built for c in copies):
        return HeldStamp(False, 0, "")
    if not all(c.built for c in copies):
        return HeldStamp(True, -1, _MIXED)  # a master lost its data while the others kept theirs
    generations = {c.generation for c in copies}
    generation = generations.pop() if len(generations) == 1 else _MIXED
    return HeldStamp(True, min(c.batches for c in copies), generation)


async def read_held(redis: Redis) -> HeldStamp:
    """Redis's stamp, in one round trip (per master, in parallel, on a cluster)."""
    places = await stamp_places(redis, SINGLE_PLACE)
    values = await mget(redis, [k for p in places for k in p.keys])
    return worst_of([held_of(values[i : i + 3]) for i in range(0, len(values), 3)])


# The drain's write. KEYS[1] = the built marker, KEYS[2] = the batch count, KEYS[3] = the
# generation (one copy of the stamp); ARGV[1] = PostgreSQL's count, ARGV[2] = its generation,
# ARGV[3..] = document key, encoded value, key, value... (in ARGV, not KEYS: on a cluster they lie
# in other slots of the master that holds the copy). Each document is written only over an older
# version (the guard of app.cache.layout.CAS_SCRIPT). Returns -1 when a built Redis lacks batches
# PostgreSQL counts or is another generation's (nothing written), 0 when Redis is not built
# (written, not counted: the rebuild stamps it), otherwise the new count: PostgreSQL's plus one,
# the same on every copy (a copy ahead of PostgreSQL — its batch rolled back there after Redis
# took it — comes back in step instead of drifting ahead of the others).
STAMPED_CAS_SCRIPT = """
local built = redis.call('EXISTS', KEYS[1]) == 1
local count = tonumber(redis.call('GET', KEYS[2]) or '0') or -1
if built then
  local generation = redis.call('GET', KEYS[3]) or ''
  if count < tonumber(ARGV[1]) or generation ~= ARGV[2] then
    return -1
  end
end
for i = 3, #ARGV, 2 do
  local key, value = ARGV[i], ARGV[i + 1]
  local cur = redis.call('GET', key)
  if not cur or string.sub(cur, 1, 16) < string.sub(value, 1, 16) then
    redis.call('SET', key, value)
  end
end
if not built then
  return 0
end
local n = tonumber(ARGV[1]) + 1
redis.call('SET', KEYS[2], string.format('%d', n))
return n
"""
