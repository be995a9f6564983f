"""SQL for projections and the outbox: write a document only when it changed, with a new version
and an outbox row, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cache.shapes import Entry, new_entry
from app.db.any_of import any_of
from app.db.tables import outbox, projections

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
    versions = [
        v
        for (v,) in await conn.execute(
            text("SELECT nextval('projection_version_seq') FROM generate_series(1, :n)"),
            {"n": len(changed)},
        )
    ]
    rows = [
        {"key": k, "institution_code": inst, "version": v, "doc": doc}
        for (k, inst, doc), v in zip(changed, versions, strict=True)
    ]
    # The executemany form: one compiled statement, batched by the driver (a multi-row VALUES
    # is compiled afresh for each chunk, one bind parameter per cell).
    stmt = insert(projections)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[projections.c.key],
            set_={
                "version": stmt.excluded.version,
                "doc": stmt.excluded.doc,
                "institution_code": stmt.excluded.institution_code,
                "updated_at": text("now()"),
            },
        ),
        rows,
    )
    await conn.execute(insert(outbox), [{"key": r["key"], "version": r["version"]} for r in rows])
    await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return [(r["key"], r["version"], r["doc"]) for r in rows]


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
