"""SQL for projections and the outbox: write a document only when it changed, with a new version
and an outbox row, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import outbox, projection_version_seq, projections

NOTIFY_CHANNEL = "claimgate_outbox"


async def write_docs(
    conn: AsyncConnection, docs: Sequence[tuple[str, str | None, Any]]
) -> list[str]:
    """Upsert (key, institution, doc) rows whose doc differs from the stored one.

    Returns the keys written. Unchanged documents keep their version, so a no-op write
    produces no outbox traffic.
    """
    if not docs:
        return []
    keys = [k for k, _, _ in docs]
    current = {
        k: d
        for k, d in await conn.execute(
            select(projections.c.key, projections.c.doc).where(projections.c.key.in_(keys))
        )
    }
    changed = [(k, inst, doc) for k, inst, doc in docs if current.get(k) != doc]
    written: list[str] = []
    for key, inst, doc in changed:
        version = (await conn.execute(projection_version_seq.next_value().select())).scalar_one()
        stmt = insert(projections).values(key=key, institution_code=inst, version=version, doc=doc)
        stmt = stmt.on_conflict_do_update(
            index_elements=[projections.c.key],
            set_={"version": version, "doc": doc, "updated_at": text("now()")},
        )
        await conn.execute(stmt)
        await conn.execute(insert(outbox).values(key=key, version=version))
        written.append(key)
    if written:
        await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return written


async def read_docs(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, tuple[int, Any]]:
    rows = await conn.execute(
        select(projections.c.key, projections.c.version, projections.c.doc).where(
            projections.c.key.in_(list(keys))
        )
    )
    return {k: (v, d) for k, v, d in rows}
