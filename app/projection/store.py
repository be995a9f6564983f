"""SQL for projections and the outbox: write a document only when it changed, with a new version
and an outbox row, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import orjson
from sqlalchemy import Text, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cache.shapes import Entry, new_entry
from app.db.any_of import any_of
from app.db.tables import projections

NOTIFY_CHANNEL = "claimgate_outbox"
T = TypeVar("T")
Written = tuple[str, int, Any]  # (key, version, document) of a projection just written


async def write_docs(
    conn: AsyncConnection,
    docs: Sequence[tuple[str, str | None, Any]],
    current: dict[str, Any] | None = None,
) -> list[Written]:
    """Upsert (key, institution, doc) rows whose doc differs from the stored one.

    Returns (key, version, doc) of what was written. Unchanged documents keep their version, so a no-op write
    produces no outbox traffic. Set-based: a handful of statements for any number of rows.
    ``current`` is filled with the documents stored before.
    """
    if not docs:
        return []
    latest = {k: (inst, doc) for k, inst, doc in docs}  # the last document per key wins
    current = {} if current is None else current
    keys = list(latest)
    for part in _chunks(keys, 5000):
        current.update(
            {
                k: d
                for k, d in await conn.execute(
                    select(projections.c.key, projections.c.doc).where(
                        any_of(projections.c.key, part)
                    )
                )
            }
        )
    changed = [(k, inst, doc) for k, (inst, doc) in latest.items() if current.get(k) != doc]
    if not changed:
        return []
    # One statement, one round trip: each changed document's new version, its upsert, its
    # outbox row and the notification (issue 14: a write's latency is its round trips).
    versions: dict[str, int] = dict(
        (
            await conn.execute(
                _UPSERT,
                {
                    "keys": [k for k, _, _ in changed],
                    "insts": [inst for _, inst, _ in changed],
                    "docs": [orjson.dumps(doc).decode() for _, _, doc in changed],
                },
            )
        ).all()
    )
    return [(k, int(versions[k]), doc) for k, _, doc in changed]


# The versions drawn in the order given (WITH ORDINALITY), rows upserted and queued in it.
# ``v`` is read three times and holds a volatile call: PostgreSQL evaluates it once.
_UPSERT = text(
    f"""
    WITH v AS (
        SELECT u.k, u.i, u.d, u.n, nextval('projection_version_seq') AS version
          FROM unnest(CAST(:keys AS text[]), CAST(:insts AS text[]), CAST(:docs AS jsonb[]))
               WITH ORDINALITY AS u(k, i, d, n)
         ORDER BY u.n
    ), p AS (
        INSERT INTO projections (key, institution_code, version, doc)
        SELECT k, i, version, d FROM v ORDER BY n
        ON CONFLICT (key) DO UPDATE
           SET version = excluded.version, doc = excluded.doc,
               institution_code = excluded.institution_code, updated_at = now()
    ), o AS (
        INSERT INTO outbox (key, version) SELECT k, version FROM v ORDER BY n
    )
    SELECT k, version FROM v, pg_notify('{NOTIFY_CHANNEL}', '')
    """
).bindparams(
    bindparam("keys", type_=ARRAY(Text)),
    bindparam("insts", type_=ARRAY(Text)),
    bindparam("docs", type_=ARRAY(Text)),
)


def _chunks(items: Sequence[T], n: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


async def read_docs(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, Entry]:
    """The stored documents among ``keys``, as the mirror would give them back."""
    rows = await conn.execute(
        select(projections.c.key, projections.c.version, projections.c.doc).where(
            any_of(projections.c.key, keys)
        )
    )
    return {k: new_entry(Entry, (v, d)) for k, v, d in rows}
