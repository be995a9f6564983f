"""``python -m loadtests.capacity``: the storage figures docs/capacity.md is built on, measured on
a seeded database and its Redis mirror (seed it first: ``python -m loadtests.cluster`` or
``python -m loadtests`` at the scale wanted).

- PostgreSQL: rows and ``pg_total_relation_size`` (table, indexes, TOAST) per table, so bytes
  per ledger event, per projection, per outcome.
- The outbox is empty after a drain; its bytes per row are measured by inserting rows shaped
  like a write's (a view's key, a version) into a table of its shape, rolled back.
- Redis: MEMORY USAGE over a random sample of real keys (loadtests.extras.memory).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import asyncpg
import orjson

from loadtests import extras
from loadtests.seed import Target

TABLES = ("events", "projections", "outcomes", "practitioners", "registrations", "agreements")
OUTBOX_ROWS = 20_000


async def pg_figures(t: Target) -> dict[str, Any]:
    conn = await asyncpg.connect(f"{t.pg_base}/{t.database}")
    try:
        await conn.execute("VACUUM ANALYZE")
        out: dict[str, Any] = {}
        for name in TABLES:
            rows = await conn.fetchval(f"SELECT count(*) FROM {name}")
            size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", name)
            out[name] = {
                "rows": rows,
                "bytes": size,
                "bytes_per_row": round(size / rows, 1) if rows else None,
            }
        async with conn.transaction():
            # A fresh table of the outbox's shape: the real one's free space (rows drained
            # since its last vacuum) would take the rows without growing.
            await conn.execute("CREATE TEMP TABLE outbox_shape (LIKE outbox INCLUDING ALL)")
            key = await conn.fetchval("SELECT key FROM projections WHERE key LIKE '%:p:%' LIMIT 1")
            await conn.execute(
                "INSERT INTO outbox_shape (key, version) "
                "SELECT $1, g FROM generate_series(1, $2) g",
                key,
                OUTBOX_ROWS,
            )
            size = await conn.fetchval("SELECT pg_total_relation_size('outbox_shape')")
            out["outbox"] = {
                "rows": OUTBOX_ROWS,
                "bytes": size,
                "bytes_per_row": round(size / OUTBOX_ROWS, 1),
                "method": "rows of the outbox's shape in a table created and rolled back",
            }
            raise _Rollback()
    except _Rollback:
        return out
    finally:
        await conn.close()


class _Rollback(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.capacity", description=__doc__)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--redis", required=True, help="redis://host:port of the mirror")
    p.add_argument("--redis-db", type=int, default=None)
    p.add_argument("--database", default=None)
    a = p.parse_args(argv)
    t = Target(a.scale, a.pg, a.redis, a.database, a.redis_db)
    out = {"postgresql": asyncio.run(pg_figures(t)), "redis": extras.memory(t)}
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
