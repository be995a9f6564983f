"""A Redis that comes back older than it was — restarted from its own snapshot, a replica promoted
while it lagged, a restore from backup — still carries the built marker and its old documents.
It must not answer checks: within the staleness bound the API notices (the mirror's stamp, see
app.sync.stamp), answers from PostgreSQL, says so in /readyz and /v1/ops/status, and the sync
worker resyncs it without an operator; then the cache answers again, with what was acknowledged.

The snapshot tests run a persisting redis-server of their own (SAVE, kill -9, the old dump.rdb
put back, started again on the same port); the in-place ones roll the test's own Redis database
back with DUMP/RESTORE, as a promoted replica would look: no restart, no dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from app.cache.layout import BATCHES_KEY, GENERATION_KEY, decode, view_key
from app.codes import practitioner_token
from app.embedded import RedisServer, start_redis
from app.sync.stamp import MirrorRegressed
from app.sync.worker import SyncWorker
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOC2 = "D370802000002"


@dataclass
class Persisting:
    """A harness on a persisting redis-server of its own, which the test snapshots, kills and
    starts again from an older snapshot."""

    h: Harness
    folder: Path
    servers: list[RedisServer] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.servers[0].url.rsplit(":", 1)[1].split("/")[0])

    async def snapshot(self) -> Path:
        """SAVE, and keep a copy of the dump (the server would overwrite its own later)."""
        await self.h.runtime.redis.save()
        kept = self.folder / "snapshot.rdb"
        shutil.copyfile(self.folder / "redis" / "dump.rdb", kept)
        return kept

    async def restart_from(self, snapshot: Path) -> None:
        """kill -9, put the old dump back, start again on the same port: Redis loads it."""
        await asyncio.to_thread(self.servers[-1].kill)
        shutil.copyfile(snapshot, self.folder / "redis" / "dump.rdb")
        server = await asyncio.to_thread(
            start_redis, self.folder, port=self.port, persist=True, stop_at_exit=False
        )
        self.servers.append(server)


@contextlib.asynccontextmanager
async def persisting_app(
    servers: Servers, folder: Path, **overrides: Any
) -> AsyncIterator[Persisting]:
    await reset(servers)
    server = await asyncio.to_thread(start_redis, folder, persist=True, stop_at_exit=False)
    started: list[RedisServer] = [server]
    try:
        harness = start_harness(make_settings(servers, redis_url=server.url, **overrides))
        p = Persisting(await anext(harness), folder, started)
        try:
            yield p
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await anext(harness)
    finally:
        for s in started:
            await asyncio.to_thread(s.kill)


def view(code: str = f.DOC) -> str:
    return view_key(f.INST, practitioner_token(code, "test-secret"))


async def two_doctors(h: Harness) -> None:
    """The world's payable doctor and a second one, both payable."""
    await f.world(h)
    await f.practitioner(h, code=DOC2)
    await f.registration(h, code=DOC2)
    await f.agreement(h, code=DOC2)


async def suspend(h: Harness, code: str = f.DOC) -> None:
    """An acknowledged suspension through the admin API."""
    r = await h.client.post(
        f"/v1/admin/practitioners/{code}/actions",
        json={"action": "suspend", "start": "2026-11-01", "end": "2027-02-01", "reason": "test"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 201, r.text


async def readyz(h: Harness) -> tuple[int, dict[str, Any]]:
    r = await h.client.get("/readyz")
    body: dict[str, Any] = r.json()
    return r.status_code, body


async def ops(h: Harness) -> dict[str, Any]:
    r = await h.client.get("/v1/ops/status", headers=h.auth("ops"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def version_of(h: Harness, key: str) -> int:
    async with h.runtime.engine.connect() as conn:
        v: int = (
            await conn.execute(text("SELECT version FROM projections WHERE key = :k"), {"k": key})
        ).scalar_one()
    return v


async def outbox_rows(h: Harness) -> int:
    async with h.runtime.engine.connect() as conn:
        n: int = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    return n


async def test_a_redis_restarted_from_an_older_snapshot_never_answers_allow_for_a_suspension(
    servers: Servers, tmp_path: Path
) -> None:
    # No worker in the process: the regression lasts until the test repairs it, so what checks,
    # /readyz and /v1/ops/status say meanwhile can be watched.
    async with persisting_app(servers, tmp_path, run_sync_worker=False) as p:
        h = p.h
        worker = SyncWorker(h.runtime.engine, h.runtime.redis)
        await f.world(h)
        await worker.ensure_built()
        await worker.drain()
        before = await f.check_from_cache(h)
        assert (before["decision"], before["source"]) == ("allow", "cache")
        snapshot = await p.snapshot()

        await suspend(h)
        await worker.drain()
        after = await f.check_from_cache(h)
        assert (after["decision"], after["source"]) == ("deny", "cache")
        # The promise is for writes acknowledged longer ago than the staleness bound.
        bound = h.runtime.settings.max_staleness_s
        await asyncio.sleep(bound)

        await p.restart_from(snapshot)
        loop = asyncio.get_running_loop()
        back = loop.time()
        # The scenario is real: the restarted Redis holds the doctor's old, payable document
        # and still says it is built. Read by a client of the test's own: the service's pool
        # still holds connections to the killed server, and which of them the first call
        # meets (a dead one, or a new one that vets the stamp) is the service's business.
        probe = Redis.from_url(p.servers[-1].url)
        try:
            old = await probe.get(view())
            assert old is not None
            assert decode(old)[0] < await version_of(h, view())
            assert await probe.exists("cg:meta:built")
        finally:
            await probe.aclose()

        # From the first check on (the connection to the restarted Redis compares its stamp
        # as it opens), past the one-second circuit a failed Redis call would open.
        while loop.time() - back < 1.5:
            answer = await f.check(h)
            assert (answer["decision"], answer["source"]) == ("deny", "database"), answer
            assert f.codes_of(answer) == {"PRACTITIONER_SUSPENDED": True}
            await asyncio.sleep(0.02)

        # Still ready — checks answer from PostgreSQL — but degraded, saying why.
        status, ready = await readyz(h)
        assert status == 200
        assert ready["degraded"] is True
        assert "mirror_regressed" in ready["degraded_reasons"]
        assert ready["mirror_regressed"] is True
        assert ready["cache_built"] is True
        assert ready["mirror_batches"]["redis"] < ready["mirror_batches"]["postgres"]
        seen = await ops(h)
        assert seen["mirror_regressed"] is True
        assert seen["mirror_watch"]["regressed"] is True
        assert seen["mirror_watch"]["checks_answer_from"] == "database"
        assert seen["mirror_watch"]["regressions_seen"] == 1

        # The worker's next round resyncs it: no operator, no full rebuild.
        await worker.ensure_built()
        assert worker.resyncs == 1
        assert worker.last_resync is not None
        assert worker.last_resync.stale >= 1
        answer = await f.check_from_cache(h)
        assert (answer["decision"], answer["source"]) == ("deny", "cache")
        status, ready = await readyz(h)
        assert (status, ready["mirror_regressed"], ready["degraded"]) == (200, False, False)
        assert (await ops(h))["mirror_watch"]["checks_answer_from"] == "cache"


async def test_the_running_worker_repairs_a_redis_restarted_from_an_older_snapshot(
    servers: Servers, tmp_path: Path
) -> None:
    async with persisting_app(servers, tmp_path) as p:
        h = p.h
        await two_doctors(h)
        await h.synced()
        assert (await f.check_from_cache(h))["decision"] == "allow"
        snapshot = await p.snapshot()
        await suspend(h)
        await suspend(h, DOC2)
        await h.synced()  # drained: PostgreSQL counts the batches the snapshot lacks
        # The promise is for writes acknowledged longer ago than the staleness bound.
        await asyncio.sleep(h.runtime.settings.max_staleness_s)

        await p.restart_from(snapshot)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        sources = []
        while True:
            for code in (f.DOC, DOC2):
                answer = await f.check(h, practitioner_code=code)
                assert answer["decision"] == "deny", (code, answer)
                sources.append(answer["source"])
            if sources[-2:] == ["cache", "cache"]:
                break
            assert loop.time() < deadline, f"never back to the cache: {sources[-6:]}"
            await asyncio.sleep(0.02)
        assert h.runtime.worker is not None
        assert h.runtime.worker.resyncs >= 1
        for code in (f.DOC, DOC2):
            held = await h.runtime.redis.get(view(code))
            assert held is not None
            assert decode(held)[0] == await version_of(h, view(code))
        # Readiness probes Redis on its own connections, which may still be meeting the restart.
        ready = await ready_within(h, 5.0)
        assert ready["mirror_regressed"] is False, ready


async def ready_within(h: Harness, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        status, body = await readyz(h)
        if status == 200 and not body["degraded"]:
            return body
        assert loop.time() < deadline, body
        await asyncio.sleep(0.05)


async def dump_all(redis: Redis) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    async for key in redis.scan_iter():
        raw = await redis.dump(key)
        if raw is not None:
            out[key] = raw
    return out


async def roll_back(redis: Redis, dumped: dict[bytes, bytes]) -> None:
    """Put the database back to what ``dumped`` held, in one transaction: what a replica that
    lagged holds when it is promoted. No connection drops, nothing is published."""
    now = [key async for key in redis.scan_iter()]
    async with redis.pipeline(transaction=True) as pipe:
        for key in now:
            if key not in dumped:
                pipe.delete(key)
        for key, raw in dumped.items():
            pipe.restore(key, 0, raw, replace=True)
        await pipe.execute()


@contextlib.asynccontextmanager
async def quiet_app(servers: Servers) -> AsyncIterator[Harness]:
    await reset(servers)
    harness = start_harness(make_settings(servers, run_sync_worker=False))
    try:
        yield await anext(harness)
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(harness)


async def until(condition: Any, within: float, what: str) -> float:
    """Poll ``condition()`` until true; the seconds it took."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not condition():
        assert loop.time() - t0 < within, what
        await asyncio.sleep(0.01)
    return loop.time() - t0


async def test_a_promoted_replica_that_lagged_is_noticed_and_new_writes_cannot_hide_it(
    servers: Servers,
) -> None:
    async with quiet_app(servers) as h:
        redis = h.runtime.redis
        worker = SyncWorker(h.runtime.engine, redis)
        await two_doctors(h)
        await worker.ensure_built()
        await worker.drain()
        await f.wait_for_l1(h)
        lagged = await dump_all(redis)

        await suspend(h, DOC2)
        await worker.drain()
        # The L1 holds the first doctor; the second was never checked in this process.
        assert (await f.check_from_cache(h))["source"] == "cache"
        assert len(h.runtime.l1) > 0

        await roll_back(redis, lagged)
        await asyncio.sleep(h.runtime.settings.max_staleness_s)
        answer = await f.check(h, practitioner_code=DOC2)
        assert (answer["decision"], answer["source"]) == ("deny", "database")
        checks = h.runtime.checks
        assert checks.mirror_regressed
        # What the L1 read may have come from the old copy: gone, and the verdicts with it.
        assert len(h.runtime.l1) == 0
        assert (await readyz(h))[1]["mirror_regressed"] is True

        # A write acknowledged now lands in the old copy too (the admin write mirrors directly),
        # but its batch is refused: the regressed copy cannot be made to look whole.
        await suspend(h)
        queued = await outbox_rows(h)
        with pytest.raises(MirrorRegressed):
            await worker.drain()
        assert await outbox_rows(h) == queued > 0
        await asyncio.sleep(2 * h.runtime.settings.staleness_probe_interval_s)
        assert checks.mirror_regressed
        assert (await readyz(h))[1]["mirror_regressed"] is True

        await worker.ensure_built()
        await worker.drain()
        assert await outbox_rows(h) == 0
        for code in (f.DOC, DOC2):
            answer = await f.check_from_cache(h, practitioner_code=code)
            assert (answer["decision"], answer["source"]) == ("deny", "cache"), code
        assert not checks.mirror_regressed
        assert checks.regressions_seen == 1


async def test_a_batch_drained_while_redis_was_not_built_still_dates_an_older_snapshot(
    servers: Servers,
) -> None:
    """Redis flushed, a batch drained into it before the rebuild, then an older snapshot
    restored: the batch was not counted in Redis, but PostgreSQL counted it."""
    async with quiet_app(servers) as h:
        redis = h.runtime.redis
        worker = SyncWorker(h.runtime.engine, redis)
        await two_doctors(h)
        await worker.ensure_built()
        await worker.drain()
        lagged = await dump_all(redis)

        await redis.flushdb()
        await suspend(h, DOC2)
        await worker.drain()  # into a Redis that is not built: written, not counted there
        await roll_back(redis, lagged)
        await asyncio.sleep(h.runtime.settings.max_staleness_s)
        answer = await f.check(h, practitioner_code=DOC2)
        assert (answer["decision"], answer["source"]) == ("deny", "database")
        await worker.ensure_built()
        assert worker.resyncs == 1
        answer = await f.check_from_cache(h, practitioner_code=DOC2)
        assert (answer["decision"], answer["source"]) == ("deny", "cache")


async def test_a_mirror_of_another_generation_is_not_believed_whatever_its_count(
    servers: Servers,
) -> None:
    async with quiet_app(servers) as h:
        redis = h.runtime.redis
        worker = SyncWorker(h.runtime.engine, redis)
        await two_doctors(h)
        await worker.ensure_built()
        await worker.drain()
        generation = await redis.get(GENERATION_KEY)
        assert generation

        # Another deployment's mirror, far "ahead": its count says nothing about ours.
        await redis.set(GENERATION_KEY, "another-deployment")
        await redis.set(BATCHES_KEY, 10**9)
        await until(lambda: h.runtime.checks.mirror_regressed, 5.0, "a foreign mirror believed")
        assert (await readyz(h))[1]["degraded_reasons"] == ["mirror_regressed"]
        await suspend(h)
        with pytest.raises(MirrorRegressed):
            await worker.drain()

        await worker.ensure_built()
        assert await redis.get(GENERATION_KEY) == generation
        await worker.drain()
        answer = await f.check_from_cache(h)
        assert (answer["decision"], answer["source"]) == ("deny", "cache")
