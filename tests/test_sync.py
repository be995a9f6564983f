"""The outbox → Redis mirror: the version guard, several workers at once, replays after a crash,
staleness after an admin write, rebuild, verification with repair, and L1 invalidation.

Most tests run the app without its background worker (``quiet``) and drive a ``SyncWorker`` by
hand, so that what reaches Redis, and when, is decided by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sqlalchemy import text

from app.cache.l1 import MISSING
from app.cache.layout import (
    BUILT_KEY,
    decode,
    encode,
    institution_key,
    invalidation_channel,
    known_key,
    view_key,
)
from app.codes import practitioner_token
from app.projection.store import NOTIFY_CHANNEL
from app.settings import Settings
from app.sync.mirror import Mirror, rebuild, verify
from app.sync.worker import SyncWorker
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOC2 = "D370802000002"


@pytest_asyncio.fixture
async def quiet(servers: Servers) -> AsyncIterator[Harness]:
    """The app without its own sync worker: the test drains the outbox itself."""
    await reset(servers)
    async for harness in start_harness(make_settings(servers, run_sync_worker=False)):
        yield harness


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Harness]:
    """A harness that is shut down properly even when the test fails inside it."""
    harness = start_harness(settings)
    try:
        yield await anext(harness)
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(harness)


def worker(h: Harness, **kw: Any) -> SyncWorker:
    return SyncWorker(h.runtime.engine, h.runtime.redis, **kw)


def view(code: str = f.DOC) -> str:
    return view_key(f.INST, practitioner_token(code, "test-secret"))


async def projection(h: Harness, key: str) -> tuple[int, Any]:
    async with h.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT version, doc FROM projections WHERE key = :k"), {"k": key}
            )
        ).one()
    return int(row[0]), row[1]


async def all_projections(h: Harness) -> dict[str, tuple[int, Any]]:
    async with h.runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT key, version, doc FROM projections"))
        return {k: (int(v), d) for k, v, d in rows}


async def outbox_rows(h: Harness) -> int:
    async with h.runtime.engine.connect() as conn:
        n: int = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    return n


async def in_redis(h: Harness, key: str) -> tuple[int, Any] | None:
    raw = await h.runtime.redis.get(key)
    return None if raw is None else decode(raw)


async def assert_mirror_matches(h: Harness) -> dict[str, tuple[int, Any]]:
    """Every projection is in Redis at exactly its current version and document."""
    truth = await all_projections(h)
    assert truth
    raws = await h.runtime.redis.mget(list(truth))
    held = {k: decode(r) for k, r in zip(truth, raws, strict=True) if r is not None}
    assert held == truth
    return truth


async def test_an_old_version_never_overwrites_a_newer_one(quiet: Harness) -> None:
    h = quiet
    w = worker(h)
    await f.world(h)
    await w.ensure_built()
    await w.drain()
    old_version, old_doc = await projection(h, view())
    assert (await f.check(h))["decision"] == "allow"

    await f.practitioner_action(h, f.DOC, "suspend", "2026-11-01", "2027-02-01")
    await w.drain()
    new_version, new_doc = await projection(h, view())
    assert new_version > old_version
    assert await in_redis(h, view()) == (new_version, new_doc)

    # An old outbox row replayed after the new one was drained.
    async with h.runtime.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO outbox (key, version) VALUES (:k, :v)"),
            {"k": view(), "v": old_version},
        )
    assert await w.drain() == 1
    assert await outbox_rows(h) == 0
    assert await in_redis(h, view()) == (new_version, new_doc)

    # The old document itself offered to the guard, as a late writer would.
    assert await Mirror(h.runtime.redis).write([(view(), old_version, old_doc)]) == 0
    assert await in_redis(h, view()) == (new_version, new_doc)

    answer = await f.check(h)
    assert answer["decision"] == "deny"
    assert f.codes_of(answer) == {"PRACTITIONER_SUSPENDED": True}
    assert answer["source"] == "cache"
    assert answer["data_version"]["practitioner"] == new_version


async def test_the_guard_compares_versions_as_numbers(quiet: Harness) -> None:
    """Versions cross digit boundaries (9 → 0x10 → 0x100) without being ordered as text."""
    mirror = Mirror(quiet.runtime.redis)
    key = "cg:{H37080200009}:i"
    assert await mirror.write([(key, 9, {"v": 9})]) == 1
    assert await mirror.write([(key, 0x10, {"v": 16})]) == 1
    assert await mirror.write([(key, 0x0F, {"v": 15})]) == 0
    assert await mirror.write([(key, 0x100, {"v": 256})]) == 1
    assert await mirror.write([(key, 0xFF, {"v": 255})]) == 0
    assert await mirror.write([(key, 0x100, {"v": "same version, other doc"})]) == 0
    assert await in_redis(quiet, key) == (0x100, {"v": 256})


async def _many_writes(h: Harness, practitioners: int = 24, rounds: int = 6) -> None:
    """Several versions of many keys: registrations, agreements, then a suspension a month."""
    await f.institution(h)
    await f.department(h)
    codes = [f"D3708020001{i:02d}" for i in range(practitioners)]
    for code in codes:
        await f.practitioner(h, code=code)
        await f.registration(h, code=code)
        await f.agreement(h, code=code)
    for month in range(1, rounds + 1):
        for code in codes:
            await f.practitioner_action(
                h, code, "suspend", f"2026-{month:02d}-01", f"2026-{month:02d}-15"
            )


async def test_two_workers_draining_at_once_leave_every_key_at_its_latest_version(
    quiet: Harness,
) -> None:
    h = quiet
    await rebuild(h.runtime.engine, h.runtime.redis)  # empty, but marked built
    await _many_writes(h)
    queued = await outbox_rows(h)
    assert queued >= 200

    # Watch every invalidation and read what Redis holds at that moment: a key must never be
    # seen going back to an older version.
    seen: dict[str, list[int]] = defaultdict(list)
    watcher = Redis.from_url(h.runtime.settings.redis_url or "")
    pubsub = watcher.pubsub()
    await pubsub.subscribe(invalidation_channel(watcher))
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if msg is None:
                continue
            keys = msg["data"].decode().split("\n")
            for key, raw in zip(keys, await watcher.mget(keys), strict=True):
                if raw is not None:
                    seen[key].append(decode(raw)[0])

    watching = asyncio.create_task(watch())
    try:
        a, b = worker(h, batch_size=7), worker(h, batch_size=5)
        drained = await asyncio.gather(a.drain(), b.drain())
        await asyncio.sleep(0.2)  # let the watcher read the last messages
    finally:
        stop.set()
        await watching
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await watcher.aclose()

    assert await outbox_rows(h) == 0
    assert sum(drained) == queued, "an outbox row was handled twice, or not at all"
    assert a.drained > 0
    assert b.drained > 0
    await assert_mirror_matches(h)
    assert seen
    for key, versions in seen.items():
        assert versions == sorted(versions), f"{key} went back: {versions}"


class Crash(Exception):
    pass


async def _round_then_crash(h: Harness) -> None:
    """A worker's round up to the Redis write, then the process dies: the transaction that
    would have deleted the outbox rows never commits."""
    async with h.runtime.engine.begin() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT p.key, p.version, p.doc FROM outbox o "
                    "JOIN projections p ON p.key = o.key "
                    "WHERE o.id IN (SELECT id FROM outbox ORDER BY id FOR UPDATE SKIP LOCKED)"
                )
            )
        ).all()
        assert rows
        await Mirror(h.runtime.redis).write([(k, v, d) for k, v, d in rows])
        raise Crash()


async def test_a_crash_between_the_redis_write_and_the_outbox_delete_is_harmless(
    quiet: Harness,
) -> None:
    h = quiet
    await rebuild(h.runtime.engine, h.runtime.redis)
    await f.world(h)
    await f.practitioner(h, code=DOC2)
    await f.registration(h, code=DOC2)
    queued = await outbox_rows(h)
    assert queued > 0

    with pytest.raises(Crash):
        await _round_then_crash(h)
    assert await outbox_rows(h) == queued
    truth = await assert_mirror_matches(h)
    before = await h.runtime.redis.mget(list(truth))

    assert await worker(h).drain() == queued
    assert await outbox_rows(h) == 0
    assert await h.runtime.redis.mget(list(truth)) == before
    # The outbox waited longer than the staleness bound on a busy machine: let the watch see
    # it drained now, not at its next probe.
    await h.runtime.probe_mirror()
    answer = await f.check(h)
    assert (answer["decision"], answer["source"]) == ("allow", "cache")


async def _wait_for_listener(h: Harness, within: float = 5.0) -> None:
    """Until the worker's LISTEN connection is up (a NOTIFY sent before would be lost)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with h.runtime.engine.connect() as conn:
            n = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query ILIKE :q"
                    ),
                    {"q": f"LISTEN%{NOTIFY_CHANNEL}%"},
                )
            ).scalar_one()
        if n:
            return
        assert asyncio.get_running_loop().time() < deadline, "the sync worker never LISTENed"
        await asyncio.sleep(0.02)


async def test_a_suspension_written_through_the_admin_api_is_denied_within_a_second(
    servers: Servers,
) -> None:
    # The poll interval is far above the bound: only the NOTIFY wake-up can meet it.
    await reset(servers)
    settings = make_settings(servers, sync_poll_interval_s=30.0)
    async with running(settings) as h:
        await _wait_for_listener(h)
        await f.wait_for_l1(h)
        await f.world(h)
        await h.synced()
        for _ in range(3):  # warm: the L1 now holds the allow
            assert (await f.check(h))["decision"] == "allow"

        await f.practitioner_action(h, f.DOC, "suspend", "2026-11-01", "2027-02-01")
        loop = asyncio.get_running_loop()
        committed = loop.time()
        while True:
            answer = await f.check(h)
            if answer["decision"] == "deny":
                break
            assert loop.time() - committed < 1.0, "still allowed a second after the write"
            await asyncio.sleep(0.02)
        assert loop.time() - committed < 1.0
        assert f.codes_of(answer) == {"PRACTITIONER_SUSPENDED": True}
        for _ in range(20):  # and never the stale allow again
            again = await f.check(h)
            assert again["decision"] == "deny", again
            assert again["source"] == "cache"
            await asyncio.sleep(0.005)


async def test_rebuild_after_flushdb_brings_checks_back_to_the_cache(servers: Servers) -> None:
    await reset(servers)
    settings = make_settings(servers, run_sync_worker=False, l1_size=0)
    async with running(settings) as h:
        await f.world(h)
        redis, engine = h.runtime.redis, h.runtime.engine
        await redis.flushdb()  # drop what the writes mirrored directly
        answer = await f.check(h)  # nothing in Redis, not built: never read as "unknown"
        assert (answer["decision"], answer["source"]) == ("allow", "database")
        report = await rebuild(engine, redis)
        assert report.projections == len(await all_projections(h))
        answer = await f.check(h)
        assert (answer["decision"], answer["source"]) == ("allow", "cache")

        await redis.flushdb()
        answer = await f.check(h)
        assert (answer["decision"], answer["source"]) == ("allow", "database")
        report = await rebuild(engine, redis)
        assert report.written == report.projections > 0
        await assert_mirror_matches(h)
        answer = await f.check(h)
        assert (answer["decision"], answer["source"]) == ("allow", "cache")


async def test_the_running_worker_rebuilds_by_itself_when_the_built_marker_is_missing(
    servers: Servers,
) -> None:
    await reset(servers)
    async with running(make_settings(servers, l1_size=0)) as h:
        await f.world(h)
        await h.synced()
        await h.runtime.redis.flushdb()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while not await h.runtime.redis.exists(BUILT_KEY):
            assert loop.time() < deadline, "the worker did not rebuild the flushed cache"
            answer = await f.check(h)
            assert answer["decision"] == "allow", answer
            await asyncio.sleep(0.02)
        await assert_mirror_matches(h)
        answer = await f.check(h)
        assert (answer["decision"], answer["source"]) == ("allow", "cache")


async def test_ensure_built_rebuilds_only_when_the_marker_is_missing(quiet: Harness) -> None:
    h = quiet
    w = worker(h)
    await f.world(h)
    await w.ensure_built()
    await assert_mirror_matches(h)
    await h.runtime.redis.delete(institution_key(f.INST))
    await w.ensure_built()  # marked built: nothing to do, the key stays missing
    assert await in_redis(h, institution_key(f.INST)) is None
    await h.runtime.redis.delete(BUILT_KEY)
    await w.ensure_built()
    await assert_mirror_matches(h)
    assert await h.runtime.redis.exists(BUILT_KEY)


async def test_verify_reports_and_repairs_every_kind_of_drift(quiet: Harness) -> None:
    h = quiet
    redis, engine = h.runtime.redis, h.runtime.engine
    w = worker(h)
    await f.world(h)
    await f.practitioner(h, code=DOC2)
    await f.registration(h, code=DOC2)
    await f.agreement(h, code=DOC2)
    await w.ensure_built()
    await w.drain()
    stale_version, stale_doc = await projection(h, view(DOC2))
    await f.practitioner_action(h, DOC2, "suspend", "2026-11-01", "2027-02-01")
    await w.drain()
    clean = await verify(engine, redis, repair=False)
    assert (clean.missing, clean.stale, clean.differing, clean.repaired) == (0, 0, 0, 0)
    assert clean.checked == len(await all_projections(h))

    # An unreadable value is no reason to fail a check: the database answers instead.
    await redis.set(view(), b"garbage, not a document")
    answer = await f.check(h)
    assert (answer["decision"], answer["source"]) == ("allow", "database")

    token1 = practitioner_token(f.DOC, "test-secret")
    await redis.delete(institution_key(f.INST))
    await redis.set(view(DOC2), encode(stale_version, stale_doc))
    await redis.set(known_key(token1), encode(0x7FFF_FFFF_FFFF, {"forged": True}))

    report = await verify(engine, redis, repair=False)
    assert (report.missing, report.stale, report.differing, report.repaired) == (1, 1, 2, 0)
    assert await redis.get(view()) == b"garbage, not a document"
    # The periodic reconciliation reads versions only, and sees the same drift.
    shallow = await verify(engine, redis, repair=False, deep=False)
    assert (shallow.checked, shallow.missing, shallow.stale, shallow.differing) == (
        report.checked,
        1,
        1,
        2,
    )

    report = await verify(engine, redis, repair=True, deep=False)
    assert (report.missing, report.stale, report.differing, report.repaired) == (1, 1, 2, 4)
    again = await verify(engine, redis, repair=True)
    assert (again.missing, again.stale, again.differing, again.repaired) == (0, 0, 0, 0)
    await assert_mirror_matches(h)

    answer = await f.check(h)
    assert (answer["decision"], answer["source"]) == ("allow", "cache")
    answer = await f.check(h, practitioner_code=DOC2)
    assert (answer["decision"], answer["source"]) == ("deny", "cache")
    assert f.codes_of(answer) == {"PRACTITIONER_SUSPENDED": True}


async def test_verify_never_undoes_a_newer_issued_version(quiet: Harness) -> None:
    """Redis ahead of what verify read (a write in flight) is left alone, and not counted as
    repaired."""
    h = quiet
    redis, engine = h.runtime.redis, h.runtime.engine
    w = worker(h)
    await f.world(h)
    await w.ensure_built()
    version, doc = await projection(h, view())
    await f.practitioner(h, code=DOC2)  # issues newer versions to other keys
    await w.drain()
    async with engine.connect() as conn:
        issued = (
            await conn.execute(text("SELECT last_value FROM projection_version_seq"))
        ).scalar_one()
    assert issued > version
    in_flight = encode(issued, {**doc, "in_flight": True})
    await redis.set(view(), in_flight)
    report = await verify(engine, redis, repair=True)
    assert (report.missing, report.stale, report.differing, report.repaired) == (0, 0, 1, 0)
    assert await redis.get(view()) == in_flight


async def test_an_admin_write_is_seen_by_the_next_check_despite_the_l1(h: Harness) -> None:
    await f.wait_for_l1(h)
    await f.world(h)
    await h.synced()
    first = await f.check(h)
    assert (first["decision"], first["source"]) == ("allow", "cache")
    assert h.runtime.l1.get(institution_key(f.INST)) is not MISSING
    memo = h.runtime.checks.memo
    hits = memo.hits
    assert (await f.check(h))["decision"] == "allow"
    assert memo.hits > hits, "the second check was decided afresh, not remembered"

    await f.institution_action(h, "suspend", "2026-11-01", "2027-01-01")
    await h.synced()
    answer = await f.check(h)
    assert answer["decision"] == "deny"
    assert f.codes_of(answer) == {"INSTITUTION_SUSPENDED": True}
    assert answer["data_version"]["institution"] > first["data_version"]["institution"]

    await f.institution_action(h, "restore", "2026-11-15")
    await h.synced()
    assert (await f.check(h))["decision"] == "allow"


async def test_a_write_that_lands_while_verify_runs_is_not_undone_by_the_repair(
    quiet: Harness,
) -> None:
    """verify reads the projections from one snapshot; a suspension committed and mirrored
    after that snapshot, while verify is still scanning, must survive the repair."""
    h = quiet
    redis, engine = h.runtime.redis, h.runtime.engine
    w = worker(h)
    # Filler rows first, so the doctor's documents come last in the scan.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO projections (key, institution_code, version, doc) "
                "SELECT 'cg:{H370899' || lpad(g::text, 5, '0') || '}' || :suffix, NULL, "
                "nextval('projection_version_seq'), '{}'::jsonb FROM generate_series(1, 1500) g"
            ),
            {"suffix": ":i"},
        )
    await f.world(h)
    await w.ensure_built()
    await w.drain()

    scanning = asyncio.create_task(verify(engine, redis, repair=True, chunk=1))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while True:  # until verify's scan of the projections has begun
        async with engine.connect() as conn:
            started = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND query ILIKE 'SELECT projections.key%' AND state <> 'idle' "
                        "AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
        if started:
            break
        assert loop.time() < deadline
        assert not scanning.done()
        await asyncio.sleep(0.001)
    await f.practitioner_action(h, f.DOC, "suspend", "2026-11-01", "2027-02-01")
    await w.drain()
    new = await projection(h, view())
    assert await in_redis(h, view()) == new
    assert not scanning.done(), "verify finished too early for the test to mean anything"
    await scanning

    assert await in_redis(h, view()) == new
    answer = await f.check(h)
    assert answer["decision"] == "deny", answer


async def test_the_periodic_reconciliation_repairs_drift_by_itself(servers: Servers) -> None:
    await reset(servers)
    async for h in start_harness(make_settings(servers, verify_interval_s=0.2)):
        await f.world(h)
        await h.synced()
        key = institution_key(f.INST)
        good = await h.runtime.redis.get(key)
        await h.runtime.redis.set(key, b"garbage")
        # Compared decoded: the repair writes PostgreSQL's JSONB key order, the same document.
        for _ in range(100):
            await asyncio.sleep(0.05)
            now = await h.runtime.redis.get(key)
            if now is not None and now != b"garbage" and decode(now) == decode(good or b""):
                break
        assert now is not None
        assert good is not None
        assert decode(now) == decode(good)
        assert h.runtime.worker is not None
        assert h.runtime.worker.last_verify is not None


async def test_a_redis_flushed_during_a_rebuild_is_not_marked_built(quiet: Harness) -> None:
    """Redis restarted empty mid-rebuild must not end up 'built' over documents it lost: a
    missing document would then read as INSTITUTION_UNKNOWN instead of falling back."""
    h = quiet
    await f.world(h)
    redis, engine = h.runtime.redis, h.runtime.engine
    await SyncWorker(engine, redis).drain()  # nothing left in the outbox: only the rebuild matters
    await redis.flushdb()
    real_write = Mirror.write
    flushed = False

    async def flush_after_first_chunk(self: Mirror, rows: Any, *, publish: bool = True) -> int:
        nonlocal flushed
        n = await real_write(self, rows, publish=publish)
        if not flushed:
            flushed = True
            await redis.flushdb()  # the restart, between two chunks
        return n

    Mirror.write = flush_after_first_chunk  # type: ignore[method-assign]
    try:
        report = await rebuild(engine, redis, chunk=1)
    finally:
        Mirror.write = real_write  # type: ignore[method-assign]
    assert flushed
    assert not report.complete
    assert not await redis.exists(BUILT_KEY)
    answer = await f.check(h)
    assert (answer["decision"], answer["source"]) == ("allow", "database")
    report = await rebuild(engine, redis)
    assert report.complete
    answer = await f.check_from_cache(h)
    assert (answer["decision"], answer["source"]) == ("allow", "cache")
