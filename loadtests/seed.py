"""Databases, keys and seeding — through the service's own write path (``POST /v1/admin/bulk``
on a claimgate server started for the purpose, with a larger body limit)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import redis

from app.auth.keys import create_key
from loadtests import servers
from loadtests.dataset import Dataset

REDIS_DB = {10_000: 4, 100_000: 5, 1_000_000: 6}
# The data set's codes lie below it; the practitioners the bulk scenario imports
# (loadtests.agency) above it, and are not counted as seeded.
BULK_FLOOR = "D300000000000"


@dataclass(frozen=True)
class Target:
    """Where one scale's data lives."""

    scale: int
    pg_base: str  # postgresql://user@host:port (no database)
    redis_base: str  # redis://host:port
    database_name: str | None = None  # default claimgate_bench_<scale>
    redis_db: int | None = None  # default by scale: 4, 5, 6 (3 for any other)

    @property
    def database(self) -> str:
        return self.database_name or f"claimgate_bench_{self.scale}"

    @property
    def database_url(self) -> str:
        return f"{self.pg_base.replace('postgresql://', 'postgresql+asyncpg://')}/{self.database}"

    @property
    def redis_url(self) -> str:
        db = self.redis_db if self.redis_db is not None else REDIS_DB.get(self.scale, 3)
        return f"{self.redis_base}/{db}"

    def env(self) -> dict[str, str]:
        return {
            "CLAIMGATE_DATABASE_URL": self.database_url,
            "CLAIMGATE_REDIS_URL": self.redis_url,
            "CLAIMGATE_ENVIRONMENT": "development",
        }


async def _ensure_database(t: Target) -> None:
    conn = await asyncpg.connect(f"{t.pg_base}/postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", t.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{t.database}"')
    finally:
        await conn.close()


async def _count(t: Target) -> int:
    conn = await asyncpg.connect(f"{t.pg_base}/{t.database}")
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM practitioners WHERE display_code < $1", BULK_FLOOR
        )
        return n
    finally:
        await conn.close()


async def _outbox(t: Target) -> int:
    conn = await asyncpg.connect(f"{t.pg_base}/{t.database}")
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM outbox")
        return n
    finally:
        await conn.close()


async def _make_keys(t: Target) -> dict[str, str]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(t.database_url)
    try:
        async with engine.begin() as conn:
            keys = {}
            for role in ("gateway", "agency", "ops"):
                _, raw = await create_key(conn, role, [], "loadtests")
                keys[role] = raw
        return keys
    finally:
        await engine.dispose()


def _size(body: dict[str, Any]) -> int:
    return len(body["practitioners"])


def prepare(t: Target, logdir: Path) -> dict[str, str]:
    """Create and migrate the database; return fresh API keys (gateway, agency, ops)."""
    asyncio.run(_ensure_database(t))
    subprocess.run(
        [servers.PY, "-m", "app.cli", "migrate"],
        cwd=servers.ROOT,
        env={**os.environ, **t.env()},
        check=True,
        capture_output=True,
    )
    return asyncio.run(_make_keys(t))


def seed(t: Target, keys: dict[str, str], logdir: Path, log: bool = True) -> float | None:
    """Seed ``t.scale`` practitioners unless the database already holds them; return seconds
    spent (None when skipped). Waits until the sync worker has mirrored everything to Redis."""
    have = asyncio.run(_count(t))
    if have == t.scale:
        return None
    data = Dataset(t.scale)
    # Each body is one transaction, so an interrupted seed stopped at a body's edge: go on from
    # there (the data set is deterministic).
    staff = data.staff_bodies()
    done = next((n for n in range(len(staff) + 1) if sum(map(_size, staff[:n])) == have), None)
    if done is None:
        raise RuntimeError(
            f"{t.database} holds {have} practitioners, not {t.scale}: drop it to reseed"
        )
    if not have:
        redis.Redis.from_url(t.redis_url).flushdb()
    t0 = time.monotonic()
    port = servers.free_port()
    srv = servers.start(
        "seed",
        [servers.PY, "-m", "app.cli", "serve", "--port", str(port), "--host", servers.HOST],
        {**t.env(), "CLAIMGATE_MAX_BODY_BYTES": str(64 << 20)},
        port,
        logdir,
    )
    with servers.running(srv):
        servers.wait_ready(srv, "/healthz")
        bodies = ([] if have else [data.institution_body()]) + staff[done:]
        with httpx.Client(
            base_url=srv.url,
            headers={
                "Authorization": f"Bearer {keys['agency']}",
                "Content-Type": "application/json",
            },
            timeout=600,
        ) as client:
            for n, body in enumerate(bodies, 1):
                r = client.post("/v1/admin/bulk", content=orjson.dumps(body))
                if r.status_code != 200:
                    raise RuntimeError(f"bulk {n} failed: {r.status_code} {r.text[:500]}")
                if log:
                    print(
                        f"  seeded {n}/{len(bodies)} bodies ({time.monotonic() - t0:.0f}s)",
                        flush=True,
                    )
        deadline = time.monotonic() + 1800
        while asyncio.run(_outbox(t)) and time.monotonic() < deadline:
            time.sleep(0.5)
        servers.wait_ready(srv, "/readyz", timeout_s=600)
    return time.monotonic() - t0
