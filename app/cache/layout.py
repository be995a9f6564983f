"""Key layout and value encoding of the Redis mirror.

Every key a check needs carries the institution's hash tag (``{H37...}``), so one check is one
MGET in one slot and the layout works unchanged on Redis Cluster. A value is the projection's
version as 16 hex digits followed by the JSON document: the version guard compares the prefix
without parsing, and a reader gets version and document from one GET.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.cache.shapes import Entry, new_entry

PREFIX = "cg:"
BUILT_KEY = "cg:meta:built"
# The mirror's stamp (app.sync.stamp): outbox batches taken, and whose mirror this is.
BATCHES_KEY = "cg:meta:batches"
GENERATION_KEY = "cg:meta:generation"
REBUILD_TOKEN = "cg:meta:rebuild-token"


def _db(redis: Any) -> int:
    pool = getattr(redis, "connection_pool", None)  # a cluster client has none: database 0
    return int(pool.connection_kwargs.get("db", 0) or 0) if pool is not None else 0


# Pub/sub is server-wide, not per database index: a deployment's channels carry its database
# index, so two deployments (or a test suite) sharing one Redis server never empty each
# other's L1s or reload each other's keys. On a cluster both are sharded channels under one hash
# tag: one shard carries them, and a subscriber holds one connection (app.cache.l1).
def invalidation_channel(redis: Any) -> str:
    return f"cg:{{inv}}:{_db(redis)}"


def keys_channel(redis: Any) -> str:
    return f"cg:{{inv}}:keys:{_db(redis)}"


def institution_key(institution: str) -> str:
    return f"cg:{{{institution}}}:i"


def is_institution_key(key: str) -> bool:
    return key.endswith("}:i") and key.startswith("cg:{")


def view_key(institution: str, practitioner_token: str) -> str:
    return f"cg:{{{institution}}}:p:{practitioner_token}"


def alias_key(institution: str, local_code: str) -> str:
    return f"cg:{{{institution}}}:a:{local_code}"


def institution_alias_key(local_code: str) -> str:
    """An agency-wide local institution code. Its own hash tag: it is read before the
    institution it names is known, in a round trip of its own (app.checks.service)."""
    return f"cg:ia:{{{local_code}}}"


def known_key(practitioner_token: str) -> str:
    return f"cg:pk:{{{practitioner_token}}}"


def encode(version: int, doc: Any) -> bytes:
    return b"%016x" % version + orjson.dumps(doc)


def decode(raw: bytes | str) -> Entry:
    if isinstance(raw, str):
        raw = raw.encode()
    return new_entry(Entry, (int(raw[:16], 16), orjson.loads(raw[16:])))


# KEYS[i] = key, ARGV[i] = its encoded value. Writes each value only when the stored version is
# older, so a replayed or reordered write can never overwrite a newer document. Many keys per
# call: the client's per-command cost, not Redis, bounds a rebuild. On a Redis Cluster the
# callers group keys by slot (app.cache.topology.slot_groups).
CAS_SCRIPT = """
local written = 0
for i, key in ipairs(KEYS) do
  local value = ARGV[i]
  local cur = redis.call('GET', key)
  if not cur or string.sub(cur, 1, 16) < string.sub(value, 1, 16) then
    redis.call('SET', key, value)
    written = written + 1
  end
end
return written
"""
