"""When Redis or PostgreSQL goes away: checks fall back to PostgreSQL (``"source": "database"``),
refuse with 503 GATE_UNAVAILABLE when neither answers, and never guess an allow.

Every test runs its own redis-server (killed, restarted, flushed at will); the shared one is
never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.api.main import create_app
from app.api.runtime import Runtime
from app.auth.keys import create_key
from app.cache.l1 import MISSING
from app.cache.layout import alias_key, view_key
from app.codes import practitioner_token
from app.embedded import RedisServer, free_port, start_redis
from app.settings import Settings
from app.sync.mirror import rebuild
from app.sync.worker import SyncWorker
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUSPENDED = "D370802000002"
UNKNOWN = "D370802000099"


@dataclass
class Private:
    """A harness on a redis-server of its own, which the test may kill and restart."""

    h: Harness
    folder: Path
    servers: list[RedisServer] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.servers[0].url.rsplit(":", 1)[1].split("/")[0])

    async def kill(self) -> None:
        await asyncio.to_thread(self.servers[-1].kill)

    async def restart_empty(self) -> None:
        server = await asyncio.to_thread(
            start_redis, self.folder, port=self.port, persist=False, stop_at_exit=False
        )
        self.servers.append(server)


@contextlib.asynccontextmanager
async def private_app(servers: Servers, folder: Path, **overrides: Any) -> AsyncIterator[Private]:
    await reset(servers)
    server = await asyncio.to_thread(start_redis, folder, persist=False, stop_at_exit=False)
    p: Private | None = None
    try:
        harness = start_harness(make_settings(servers, redis_url=server.url, **overrides))
        p = Private(await anext(harness), folder, [server])
        try:
            yield p
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await anext(harness)
    finally:
        for s in p.servers if p is not None else [server]:
            await asyncio.to_thread(s.kill)


@pytest_asyncio.fixture
async def private(servers: Servers, tmp_path: Path) -> AsyncIterator[Private]:
    async with private_app(servers, tmp_path) as p:
        yield p


async def _world(h: Harness) -> None:
    """A payable doctor, a suspended one, and an unknown code."""
    await f.world(h)
    await f.practitioner(h, code=SUSPENDED)
    await f.registration(h, code=SUSPENDED)
    await f.agreement(h, code=SUSPENDED)
    await f.practitioner_action(h, SUSPENDED, "suspend", "2026-11-01", "2027-02-01")


EXPECTED = {f.DOC: "allow", SUSPENDED: "deny", UNKNOWN: "deny"}


async def _check_all(h: Harness) -> list[dict[str, Any]]:
    """One check per practitioner of the world; each must be a 200 with the right decision."""
    out = []
    for code, decision in EXPECTED.items():
        r = await h.client.post(
            "/v1/checks",
            json={
                "institution_code": f.INST,
                "department_code": f.DEPT,
                "practitioner_code": code,
                "service_date": "2026-11-22",
            },
            headers=h.auth("his"),
        )
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        assert answer["decision"] == decision, (code, answer)
        if code == UNKNOWN:
            assert f.codes_of(answer) == {"PRACTITIONER_UNKNOWN": True}
        if code == SUSPENDED:
            assert f.codes_of(answer) == {"PRACTITIONER_SUSPENDED": True}
        out.append(answer)
    return out


async def test_redis_killed_checks_answer_from_postgres_then_return_to_the_cache(
    private: Private,
) -> None:
    h = private.h
    await _world(h)
    await h.synced()
    assert {a["source"] for a in await _check_all(h)} == {"cache"}

    await private.kill()
    loop = asyncio.get_running_loop()
    killed = loop.time()
    first_database: float | None = None
    while loop.time() - killed < 1.5:
        sources = {a["source"] for a in await _check_all(h)}
        if sources == {"database"} and first_database is None:
            first_database = loop.time() - killed
        if first_database is not None:
            assert sources == {"database"}, "answered from a dead cache"
        await asyncio.sleep(0.02)
    assert first_database is not None
    assert first_database < 1.0
    batch = await h.client.post(
        "/v1/checks/batch",
        json={
            "checks": [
                {"institution_code": f.INST, "department_code": f.DEPT, "practitioner_code": c}
                for c in EXPECTED
            ]
        },
        headers=h.auth("gateway"),
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["source"] == "database"
    assert [r["decision"] for r in batch.json()["results"]] == list(EXPECTED.values())

    # A new, empty redis-server on the same port: the worker rebuilds, checks return to it.
    await private.restart_empty()
    deadline = loop.time() + 10.0
    while True:
        sources = {a["source"] for a in await _check_all(h)}
        if sources == {"cache"}:
            break
        assert loop.time() < deadline, f"still answering from {sources} after the restart"
        await asyncio.sleep(0.05)
    assert await h.runtime.redis.exists("cg:meta:built")


async def test_a_flushed_redis_never_reads_a_known_practitioner_as_unknown(
    servers: Servers, tmp_path: Path
) -> None:
    # No worker in the process, so nothing rebuilds behind the test's back.
    async with private_app(servers, tmp_path, run_sync_worker=False) as p:
        h = p.h
        await _world(h)
        await rebuild(h.runtime.engine, h.runtime.redis)
        # Drained by hand too, or the outbox watch sends checks to PostgreSQL once its oldest
        # row is past the staleness bound (a busy machine gets there during the setup).
        await SyncWorker(h.runtime.engine, h.runtime.redis).drain()
        await h.runtime.probe_mirror()  # and the watch knows it now, not at its next probe
        await f.wait_for_l1(h)
        # Warm: the L1 holds the institution, the payable doctor, and the answer "unknown"
        # for a code nobody registered (which needed the cache's built marker).
        for code in (f.DOC, UNKNOWN):
            answer = await f.check(h, practitioner_code=code)
            assert answer["source"] == "cache"
        assert len(h.runtime.l1) > 0

        await h.runtime.redis.flushdb()
        for _ in range(3):
            answers = await _check_all(h)
            suspended = answers[1]
            assert suspended["source"] == "database", suspended
        batch = await h.client.post(
            "/v1/checks/batch",
            json={
                "checks": [
                    {"institution_code": f.INST, "department_code": f.DEPT, "practitioner_code": c}
                    for c in EXPECTED
                ]
            },
            headers=h.auth("his"),
        )
        assert batch.status_code == 200, batch.text
        assert [r["decision"] for r in batch.json()["results"]] == list(EXPECTED.values())


async def test_a_warm_l1_answers_unknown_codes_without_redis_but_a_cold_redis_is_never_believed(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No worker (nothing rebuilds behind the test's back), so no outbox watch either: the
    # undrained outbox would send every check to PostgreSQL.
    async with private_app(servers, tmp_path, run_sync_worker=False, max_staleness_s=0) as p:
        h = p.h
        await _world(h)
        await rebuild(h.runtime.engine, h.runtime.redis)
        await f.wait_for_l1(h)
        # The world's writes and the rebuild publish invalidations; let the last one land so
        # it does not empty the L1 after the warming check.
        epoch = -1
        while h.runtime.l1.epoch != epoch:
            epoch = h.runtime.l1.epoch
            await asyncio.sleep(0.2)
        first = await f.check(h, practitioner_code=UNKNOWN, service_date="2026-11-22")
        assert (first["source"], f.codes_of(first)) == ("cache", {"PRACTITIONER_UNKNOWN": True})
        assert (await f.check(h, service_date="2026-11-22"))["source"] == "cache"

        reads: list[object] = []
        real_mget = h.runtime.redis.mget

        async def counted_mget(*args: Any, **kwargs: Any) -> Any:
            reads.append(args)
            return await real_mget(*args, **kwargs)

        monkeypatch.setattr(h.runtime.redis, "mget", counted_mget)
        # Another day: not a remembered verdict, but every document it needs is in the L1,
        # the "unknown" among them included — no round trip, not even for the built marker.
        again = await f.check(h, practitioner_code=UNKNOWN, service_date="2026-11-21")
        assert (again["source"], f.codes_of(again)) == ("cache", {"PRACTITIONER_UNKNOWN": True})
        assert reads == []

        await h.runtime.redis.flushdb()
        # A code the L1 never saw is read from the flushed Redis as absent; the built marker
        # is gone too, so the answer comes from PostgreSQL, not from the empty cache.
        fresh = await f.check(h, practitioner_code="D370802000098", service_date="2026-11-21")
        assert fresh["source"] == "database"
        assert f.codes_of(fresh) == {"PRACTITIONER_UNKNOWN": True}
        assert reads, "the unseen code was not looked up in Redis"
        # What the L1 read while the copy was complete it still answers from, "unknown" included.
        known = await f.check(h, service_date="2026-11-20")
        assert (known["source"], known["decision"]) == ("cache", "allow")
        still = await f.check(h, practitioner_code=UNKNOWN, service_date="2026-11-20")
        assert (still["source"], f.codes_of(still)) == ("cache", {"PRACTITIONER_UNKNOWN": True})


async def test_misses_read_just_before_redis_failed_are_not_kept(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss is vouched for by the built marker in the second round trip; if Redis fails
    before that, the miss must not stay in the L1 (a later check would trust it)."""
    async with private_app(servers, tmp_path, run_sync_worker=False, max_staleness_s=0) as p:
        h = p.h
        await _world(h)
        await rebuild(h.runtime.engine, h.runtime.redis)
        await f.wait_for_l1(h)
        assert (await f.check(h))["source"] == "cache"  # the institution is in the L1
        await h.runtime.redis.flushdb()

        calls = 0
        real_mget = h.runtime.redis.mget

        async def second_round_fails(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ConnectionError("Redis went away between the two round trips")
            return await real_mget(*args, **kwargs)

        monkeypatch.setattr(h.runtime.redis, "mget", second_round_fails)
        answer = await f.check(h, practitioner_code=UNKNOWN)
        assert calls == 2
        assert answer["source"] == "database"
        token = practitioner_token(UNKNOWN, "test-secret")
        assert h.runtime.l1.get(view_key(f.INST, token)) is MISSING
        assert h.runtime.l1.get(alias_key(f.INST, token)) is MISSING


def _closed_port_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}/" + ("claimgate" if "postgres" in scheme else "0")


@contextlib.asynccontextmanager
async def cut_off_app(
    servers: Servers, *, redis_url: str, keys_from: Harness
) -> AsyncIterator[tuple[AsyncClient, Runtime, dict[str, str]]]:
    """An app whose PostgreSQL is a closed port. Its keys were loaded before the outage (here:
    read from the real database by hand), as in a process that was serving when it began."""
    settings: Settings = make_settings(
        servers,
        database_url=_closed_port_url("postgresql+asyncpg"),
        redis_url=redis_url,
        db_timeout_s=0.5,
    )
    raw: dict[str, str] = {}
    async with keys_from.runtime.engine.begin() as conn:
        for role in ("gateway", "agency"):
            _, raw[role] = await create_key(conn, role, [])
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        async with keys_from.runtime.engine.connect() as conn:
            await rt.keys.reload(conn)
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, rt, {r: f"Bearer {k}" for r, k in raw.items()}


def _assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


async def test_neither_redis_nor_postgres_answers_503_gate_unavailable(
    h: Harness, servers: Servers
) -> None:
    await f.world(h)
    await h.synced()
    async with cut_off_app(servers, redis_url=_closed_port_url("redis"), keys_from=h) as (
        client,
        _,
        auth,
    ):
        body = {
            "institution_code": f.INST,
            "department_code": f.DEPT,
            "practitioner_code": f.DOC,
            "service_date": "2026-11-22",
        }
        for _ in range(3):
            r = await client.post(
                "/v1/checks", json=body, headers={"Authorization": auth["gateway"]}
            )
            problem = _assert_problem(r, 503, "GATE_UNAVAILABLE")
            assert int(r.headers["retry-after"]) >= 1
            assert "decision" not in problem
        r = await client.post(
            "/v1/checks/batch",
            json={"checks": [body, body]},
            headers={"Authorization": auth["gateway"]},
        )
        _assert_problem(r, 503, "GATE_UNAVAILABLE")
        assert "retry-after" in r.headers


async def test_postgres_unreachable_admin_writes_get_503_and_checks_use_the_cache(
    private: Private, servers: Servers
) -> None:
    h = private.h
    await _world(h)
    await h.synced()
    async with cut_off_app(servers, redis_url=h.runtime.settings.redis_url or "", keys_from=h) as (
        client,
        rt,
        auth,
    ):
        r = await client.put(
            f"/v1/admin/institutions/{f.INST}",
            json={"name": "改名", "region_code": "370800"},
            headers={"Authorization": auth["agency"]},
        )
        _assert_problem(r, 503, "DATABASE_UNAVAILABLE")
        assert "retry-after" in r.headers
        r = await client.post(
            f"/v1/admin/practitioners/{f.DOC}/actions",
            json={"action": "suspend", "start": "2026-11-01", "reason": "test"},
            headers={"Authorization": auth["agency"]},
        )
        _assert_problem(r, 503, "DATABASE_UNAVAILABLE")
        r = await client.get(
            f"/v1/admin/institutions/{f.INST}", headers={"Authorization": auth["agency"]}
        )
        _assert_problem(r, 503, "DATABASE_UNAVAILABLE")

        # The hot path does not need PostgreSQL while Redis holds the mirror.
        for code, decision in EXPECTED.items():
            r = await client.post(
                "/v1/checks",
                json={
                    "institution_code": f.INST,
                    "department_code": f.DEPT,
                    "practitioner_code": code,
                    "service_date": "2026-11-22",
                },
                headers={"Authorization": auth["gateway"]},
            )
            assert r.status_code == 200, r.text
            assert (r.json()["decision"], r.json()["source"]) == (decision, "cache")
        assert rt.checks.degraded_answers == 0

    # Nothing was written by the refused writes.
    async with h.runtime.engine.connect() as conn:
        name = (
            await conn.execute(text("SELECT name FROM institutions WHERE code = :c"), {"c": f.INST})
        ).scalar_one()
    assert name != "改名"


async def test_with_redis_stopped_readyz_stays_200_and_says_degraded(private: Private) -> None:
    """Ready means "can answer checks correctly": every replica leaving the load balancer at
    once when Redis stops would turn degraded answers into connection errors."""
    h = private.h
    await _world(h)
    await h.synced()
    r = await h.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["degraded"]) == ("ready", False)
    started = await h.client.get("/startupz")
    assert started.status_code == 200, started.text
    assert started.json()["migration"] == started.json()["migration_head"]

    await private.kill()
    r = await h.client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["degraded"]) == ("degraded", True)
    assert "redis_unreachable" in body["degraded_reasons"]
    assert {a["source"] for a in await _check_all(h)} == {"database"}
    assert (await h.client.get("/startupz")).status_code == 200  # started stays started

    # Neither can answer: now, and only now, 503.
    working = h.runtime.engine
    h.runtime.engine = create_async_engine(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none", connect_args={"timeout": 0.5}
    )
    try:
        r = await h.client.get("/readyz")
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "not_ready"
    finally:
        await h.runtime.engine.dispose()
        h.runtime.engine = working
