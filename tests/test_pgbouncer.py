"""claimgate through a real PgBouncer in transaction mode (Debian ``pgbouncer``): writes, checks
answered from PostgreSQL and from the cache, concurrent transactions sharing PgBouncer's server
connections (where asyncpg's numbered prepared statements would collide), and the sync worker's
LISTEN on the direct URL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import Servers, make_settings, reset, start_harness
from tests.topologies import Bouncer, pgbouncer

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def bouncer(servers: Servers) -> Iterator[Bouncer]:
    if "host=" in servers.database_url or "@/" in servers.database_url:
        pytest.skip("PgBouncer needs the test PostgreSQL on TCP (CLAIMGATE_TEST_DATABASE_URL)")
    with pgbouncer(servers.database_url) as b:
        yield b


async def test_writes_and_checks_work_through_pgbouncer_in_transaction_mode(
    servers: Servers, bouncer: Bouncer
) -> None:
    await reset(servers)
    settings = make_settings(
        servers,
        database_url=bouncer.url_for(servers.database_url),
        database_direct_url=servers.database_url,
        database_pgbouncer=True,
        db_pool_size=20,
    )
    harness = start_harness(settings)
    h = await anext(harness)
    try:
        async with h.runtime.engine.connect() as conn:  # really through PgBouncer
            port = (await conn.execute(text("SELECT inet_server_port()"))).scalar_one()
        assert port != bouncer.port
        await f.world(h)
        await h.synced()
        # Many transactions at once, more than PgBouncer's 20 server connections: statements
        # prepared by one client on a server connection another client then gets.
        answers = await asyncio.gather(*(f.check(h) for _ in range(200)))
        assert {a["decision"] for a in answers} == {"allow"}
        r = await h.client.post(
            f"/v1/admin/practitioners/{f.DOC}/actions",
            json={"action": "suspend", "start": "2026-11-01", "end": None, "reason": "t"},
            headers=h.auth("agency"),
        )
        assert r.status_code == 201, r.text
        await h.synced()  # the worker drained it: its NOTIFY/LISTEN and its locks work
        h.runtime.checks.set_mirror(behind=True, regressed=False, verified=True)
        from_db = await f.check(h)  # answered from PostgreSQL, through PgBouncer
        assert (from_db["decision"], from_db["source"]) == ("deny", "database")
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(harness)
