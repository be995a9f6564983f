"""The outbox drain loop (model: arq's worker — bounded batches, a timeout per unit of work,
graceful stop, safe to run as several copies).

Each round locks up to ``sync_batch_size`` outbox rows with SKIP LOCKED (so copies share the
work), writes the *current* projection of each key with the version guard, publishes one
invalidation, and deletes the rows — all before the transaction commits. A crash between the
Redis write and the commit replays the rows; the guard makes the replay a no-op.

Each batch is also counted, in Redis and in PostgreSQL (app.sync.stamp), under a lock that the
copies take in turn for the few milliseconds from their Redis write to their commit. A Redis that
came back older than it was refuses the batch; the worker then resyncs it (only what drifted
moves) before draining on, and a Redis that lost everything is rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.projection.store import NOTIFY_CHANNEL
from app.sync.mirror import (
    REBUILD_LOCK,
    REBUILD_LOCK_TTL_S,
    Mirror,
    VerifyReport,
    rebuild,
    resync,
    verify,
)
from app.sync.stamp import MirrorRegressed, lock_stamp, read_held, read_stamp, record_batches

log = logging.getLogger("claimgate.sync")
VERIFY_LOCK = "cg:meta:verifying"

_CLAIM = text(
    """
    SELECT o.id, o.key, p.version, p.doc
    FROM outbox o JOIN projections p ON p.key = o.key
    WHERE o.id IN (
        SELECT id FROM outbox ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED
    )
    ORDER BY o.id
    """
)


class SyncWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        unit_timeout_s: float = 30.0,
        verify_interval_s: float = 0.0,
        listen_url: str | None = None,
    ) -> None:
        self.engine = engine
        # LISTEN holds a session: through PgBouncer in transaction mode it would hear nothing,
        # so the listener may connect directly (CLAIMGATE_DATABASE_DIRECT_URL).
        self.listen_url = make_url(listen_url) if listen_url else engine.url
        self.redis = redis
        self.mirror = Mirror(redis)
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.unit_timeout_s = unit_timeout_s
        self._wake = asyncio.Event()
        self.drained = 0
        self.last_error: str | None = None
        self.verify_interval_s = verify_interval_s
        self._next_verify = time.monotonic() + verify_interval_s
        self.last_verify: VerifyReport | None = None
        self.resyncs = 0
        self.last_resync: VerifyReport | None = None
        # Keys repaired over every resync (stale or missing): a failover can need more than one
        # (each master that came back older is noticed on its own), and the last may find
        # nothing left to repair.
        self.resync_repaired = 0
        # For the metrics (app.observability.metrics.fold_worker).
        self.rounds = 0
        self.rebuilds = 0
        self.errors: dict[str, int] = {}
        self.drift_found = 0
        self.drift_repaired = 0

    async def drain_once(self) -> int:
        """Move one batch of outbox rows into Redis; return how many rows were handled."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, {"n": self.batch_size})).all()
            if not rows:
                return 0
            latest: dict[str, tuple[int, Any]] = {}
            for _, key, version, doc in rows:
                latest[key] = (version, doc)
            truth = await lock_stamp(conn)  # held until the commit: copies count in turn
            batches = await self.mirror.write_batch(
                [(k, v, d) for k, (v, d) in latest.items()], truth
            )
            if batches is None:
                raise MirrorRegressed()  # the rows stay for after the resync
            await record_batches(conn, batches)
            await conn.execute(
                text("DELETE FROM outbox WHERE id = ANY(:ids)"), {"ids": [r[0] for r in rows]}
            )
        self.drained += len(rows)
        return len(rows)

    async def drain(self) -> int:
        total = 0
        while n := await asyncio.wait_for(self.drain_once(), self.unit_timeout_s):
            total += n
        return total

    async def _needs(self) -> str | None:
        """What Redis needs: a rebuild (it lost its data), a resync (it came back older than it
        was), or nothing (None)."""
        async with self.engine.connect() as conn:
            truth = await read_stamp(conn)  # PostgreSQL first: see app.sync.stamp
        held = await read_held(self.redis)
        if not held.built:
            return "rebuild"
        return "resync" if held.regressed_from(truth) else None

    async def ensure_built(self) -> None:
        """Rebuild when Redis lost its data (restarted empty, flushed); resync it when it came
        back older than it was (its own snapshot, a lagging replica promoted, a backup); one
        copy at a time."""
        if await self._needs() is None:
            return
        # A short lock, extended by the rebuild after every chunk: a worker that dies
        # mid-rebuild holds the others back for seconds, not minutes.
        if not await self.redis.set(REBUILD_LOCK, "1", nx=True, ex=REBUILD_LOCK_TTL_S):
            return
        try:
            need = await self._needs()  # another copy may have finished meanwhile
            if need == "rebuild":
                await rebuild(self.engine, self.redis)
                self.rebuilds += 1
            elif need == "resync":
                self.last_resync = await resync(self.engine, self.redis)
                self.resyncs += 1
                self.resync_repaired += self.last_resync.repaired
        finally:
            await self.redis.delete(REBUILD_LOCK)

    async def maybe_verify(self) -> None:
        """The periodic reconciliation: compare every projection with Redis and repair drift
        (a Redis restored from an old snapshot, a hand edit, a lost write). One copy at a time."""
        if self.verify_interval_s <= 0 or time.monotonic() < self._next_verify:
            return
        self._next_verify = time.monotonic() + self.verify_interval_s
        if not await self.redis.set(
            VERIFY_LOCK, "1", nx=True, ex=max(int(self.verify_interval_s), 1)
        ):
            return
        report = await verify(self.engine, self.redis, repair=True, deep=False)
        self.last_verify = report
        drift = report.missing + report.stale + report.differing
        self.drift_found += drift
        self.drift_repaired += report.repaired
        if drift:
            log.warning(
                "reconciliation repaired drift: %d missing, %d stale, %d differing of %d",
                report.missing,
                report.stale,
                report.differing,
                report.checked,
            )

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake the loop on NOTIFY; the poll interval covers a lost listener."""
        url = self.listen_url.set(drivername="postgresql")
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=5)
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
                while not stop.is_set() and not conn.is_closed():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("outbox listener reconnecting (%s)", type(exc).__name__)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval_s)

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop))
        try:
            while not stop.is_set():
                self._wake.clear()  # before draining, so a NOTIFY during the drain is kept
                try:
                    await self.ensure_built()
                    await self.drain()
                    await self.maybe_verify()
                    self.last_error = None
                    self.rounds += 1
                except asyncio.CancelledError:
                    raise
                except MirrorRegressed:
                    # Resync on the next round, soon: the refused rows are waiting (briefly
                    # paused in case another copy holds the resync lock).
                    self.last_error = "MirrorRegressed"
                    self.errors["MirrorRegressed"] = self.errors.get("MirrorRegressed", 0) + 1
                    log.warning("Redis refused a batch: it came back older than it was")
                    await asyncio.sleep(min(self.poll_interval_s, 0.05))
                    continue
                except (RedisError, SQLAlchemyError, OSError, TimeoutError) as exc:
                    self.last_error = type(exc).__name__
                    self.errors[self.last_error] = self.errors.get(self.last_error, 0) + 1
                    log.warning("sync round failed (%s); retrying", self.last_error)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
