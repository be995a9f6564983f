"""Everything a process holds for its lifetime: pools, caches, background tasks.

Built in the app's lifespan and reached by endpoints through ``request.app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin.writer_thread import WritesOnThread
from app.admin.writes import Writes
from app.api.forward import WriterLink
from app.auth.keys import KeyStore
from app.cache.l1 import L1Cache, run_subscriber
from app.cache.topology import make_client, parse_redis_url
from app.checks.attempts import AttemptRecorder
from app.checks.service import CheckService
from app.checks.usecase import CheckUseCase
from app.db.engine import make_engine
from app.decisions.log import DecisionLog
from app.interfaces.national.findings import FindingRecorder
from app.interfaces.national.medtypes import emergency_codes
from app.interfaces.national.service import NationalService
from app.observability.metrics import Exporter, HttpTally, LineTally, process_stopped
from app.settings import Settings
from app.sync.mirror import Mirror
from app.sync.stamp import read_held, stamp_of
from app.sync.worker import SyncWorker

log = logging.getLogger("claimgate.runtime")

_PROBE = text(
    "SELECT (SELECT EXTRACT(EPOCH FROM clock_timestamp() - created_at) FROM outbox "
    "ORDER BY id LIMIT 1), "
    "(SELECT batches FROM mirror_state WHERE id = 1), "
    "(SELECT generation FROM mirror_state WHERE id = 1)"
)


_OUTBOX = text(
    "SELECT EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), count(*) FROM outbox"
)


def make_redis(
    settings: Settings,
    url: str | None = None,
    *,
    on_connect: Callable[[Any], Awaitable[None]] | None = None,
) -> Redis:
    """A pooled client for one server, a Sentinel-watched master or a Redis Cluster
    (app.cache.topology); ``on_connect`` (which must run the connection's own ``on_connect``)
    runs as each connection opens, where the client offers the hook."""
    url = url or settings.redis_url
    if url is None:
        raise RuntimeError("no Redis URL: set CLAIMGATE_REDIS_URL or use the embedded default")
    return make_client(
        parse_redis_url(url),
        pool_size=settings.redis_pool_size,
        timeout_s=settings.redis_timeout_s,
        on_connect=on_connect,
    )


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    l1: L1Cache
    keys: KeyStore
    checks: CheckService
    worker: SyncWorker | None
    attempts: AttemptRecorder
    check_usecase: CheckUseCase
    writes: Writes
    national: NationalService
    decisions: DecisionLog | None = None
    http_tally: HttpTally | None = None
    exporter: Exporter | None = None
    writer_link: WriterLink | None = None  # a check worker of `serve`: the writer process
    started: bool = False  # /startupz: sticky once the first start-up checks passed
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = (
            make_engine(settings, pool_wait_s=settings.writer_wait_s)
            if settings.writer_child  # the writer process: writes queue for its pool
            else make_engine(settings)
        )

        async def vet(conn: Any) -> None:  # `checks` is bound below, before any connection opens
            await checks.vet_connection(conn)

        redis = make_redis(settings, on_connect=vet)
        l1 = L1Cache(settings.l1_size)
        link = None
        mode = settings.writer
        if settings.writer_child:
            mode = "inline"  # the writer process: writes on its own loop
        elif mode == "process" and settings.writer_socket:
            link = WriterLink(
                settings.writer_socket,
                connect_s=settings.db_timeout_s,
                answer_s=settings.writer_timeout_s,
            )
        elif mode == "process":
            mode = "thread"  # no writer process started for this app (see the setting)
        writes = (
            WritesOnThread(
                make_engine(settings, pool_wait_s=settings.writer_wait_s), make_redis(settings)
            )
            if mode == "thread"
            else Writes(engine, Mirror(redis))  # forwarding: never called
        )
        # With a writer thread, the sync worker runs there, on its pools (see run_beside); with
        # a writer process, there (`claimgate serve` turns it off in its check workers).
        beside = writes if isinstance(writes, WritesOnThread) else None
        worker = (
            SyncWorker(
                beside.engine if beside is not None else engine,
                beside.redis if beside is not None else redis,
                batch_size=settings.sync_batch_size,
                poll_interval_s=settings.sync_poll_interval_s,
                verify_interval_s=settings.verify_interval_s,
                listen_url=settings.direct_database_url,
            )
            if settings.run_sync_worker and link is None
            else None
        )
        checks = CheckService(
            redis=redis,
            engine=engine,
            l1=l1,
            pii_secret=settings.pii_secret,
            memo_size=settings.l1_size,
        )
        attempts = AttemptRecorder(
            engine,
            settings.pii_secret,
            capacity=settings.attempts_buffer_size,
            interval_s=settings.attempts_flush_interval_s,
        )
        decisions = (
            DecisionLog(
                engine,
                settings.pii_secret,
                capacity=settings.decision_log_buffer_size,
                interval_s=settings.decision_log_flush_interval_s,
                retention_days=settings.decision_log_retention_days,
            )
            if settings.decision_log
            else None
        )
        lines = LineTally() if settings.metrics else None
        usecase = CheckUseCase(
            checks,
            attempts,
            batch_max_lines=settings.batch_max_lines,
            decisions=decisions,
            counter=lines,
        )
        findings = FindingRecorder(
            engine,
            settings.pii_secret,
            capacity=settings.attempts_buffer_size,
            interval_s=settings.attempts_flush_interval_s,
        )
        national = NationalService(
            usecase,
            findings,
            engine,
            emergency=emergency_codes(settings.national_emergency_med_types),
        )
        http = exporter = None
        if lines is not None:
            http = HttpTally()
            recorders = {"sanctioned_attempts": attempts, "national_findings": findings}
            if decisions is not None:
                recorders["decisions"] = decisions
            exporter = Exporter(lines, http, checks=checks, recorders=recorders, worker=worker)
        return cls(
            settings,
            engine,
            redis,
            l1,
            KeyStore(),
            checks,
            worker,
            attempts,
            usecase,
            writes,
            national,
            decisions,
            http,
            exporter,
            writer_link=link,
        )

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.append(asyncio.create_task(coro, name=name))

    async def reload_keys(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await self.keys.reload(conn)
        except Exception as exc:  # keep serving with the keys we have
            log.warning("API key reload failed (%s)", type(exc).__name__)

    async def _refresh_keys(self) -> None:
        while not self.stop.is_set():
            await self.reload_keys()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.settings.key_refresh_interval_s)

    async def probe_mirror(self) -> None:
        """One look at the mirror, bounding the staleness of cached answers. From PostgreSQL:
        the age of the oldest undrained outbox row and the mirror's stamp; then from Redis: its
        own stamp (app.sync.stamp). Checks answer from PostgreSQL while that row is older than
        ``max_staleness_s``, while Redis holds an older mirror than PostgreSQL says it was
        given, and while the two cannot be compared because Redis does not answer — so a Redis
        that comes back (from a snapshot, a promoted replica) is compared before it is trusted.
        """
        checks = self.checks
        behind = False
        try:
            async with self.engine.connect() as conn:
                lag, batches, generation = (await conn.execute(_PROBE)).one()
            behind = lag is not None and float(lag) > self.settings.max_staleness_s
            checks.mirror_truth = stamp_of(batches, generation)
        except Exception:
            # PostgreSQL unreachable: nothing new can commit, so the mirror is as fresh as
            # anything we could read — and the database path would fail anyway. The last stamp
            # read still bounds what Redis must hold (counts only grow).
            pass
        try:
            held = await read_held(self.redis)
        except Exception as exc:
            if checks.mirror_verified:
                log.warning("mirror watch cannot read Redis (%s)", type(exc).__name__)
            checks.set_mirror(behind=behind, regressed=checks.mirror_regressed, verified=False)
        else:
            truth = checks.mirror_truth
            regressed = truth is not None and held.regressed_from(truth)
            checks.set_mirror(behind=behind, regressed=regressed, verified=True)

    async def _watch_mirror(self) -> None:
        s = self.settings
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), s.staleness_probe_interval_s)
            await self.probe_mirror()

    async def start(self) -> None:
        await self.reload_keys()
        if self.settings.max_staleness_s > 0:
            # The first look before the first request: a process started beside a Redis that
            # came back older than it was never answers from it.
            await self.probe_mirror()
        self.spawn(
            run_subscriber(self.redis, self.l1, self.reload_keys, self.stop), "l1-subscriber"
        )
        self.spawn(self._refresh_keys(), "key-refresh")
        self.spawn(self.attempts.run(self.stop), "attempt-recorder")
        self.spawn(self.national.findings.run(self.stop), "national-finding-recorder")
        if self.settings.max_staleness_s > 0 and not self.settings.writer_child:
            # Ten looks a second bound what checks answer from; the writer process answers
            # none (its first look above covers a check sent to its socket by hand).
            self.spawn(self._watch_mirror(), "mirror-watch")
        if self.worker is not None:
            if isinstance(self.writes, WritesOnThread):
                self.writes.run_beside(self.worker.run)
            else:
                self.spawn(self.worker.run(self.stop), "sync-worker")
        if self.decisions is not None:
            self.spawn(self.decisions.run(self.stop), "decision-log")
            self.spawn(self.decisions.maintain_partitions(self.stop), "decision-log-partitions")
        if self.exporter is not None:
            self.spawn(self._fold_metrics(), "metrics-fold")

    async def fold_metrics(self) -> None:
        """This process's counters into the exported metrics, with the outbox's lag and size."""
        exporter = self.exporter
        if exporter is None:
            return
        exporter.fold()
        try:
            async with self.engine.connect() as conn:
                lag, rows = (await conn.execute(_OUTBOX)).one()
            exporter.outbox(None if lag is None else float(lag), int(rows))
        except Exception:  # PostgreSQL away: the gauges keep their last values
            pass

    async def _fold_metrics(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.settings.metrics_fold_interval_s)
            await self.fold_metrics()

    async def close(self) -> None:
        """Stop the background tasks, write what is buffered, close the pools. The write is
        bounded by ``shutdown_timeout_s`` (uvicorn bounds the request drain before it by the
        same setting), so a stop never hangs on an unreachable database."""
        self.stop.set()
        # Sanctioned-attempt records are evidence: write what is held before the pools close,
        # retrying within a bound (app.checks.attempts).
        # All recorders at once, so the stop stays within one bound whatever their number.
        recorders = [self.attempts, self.national.findings]
        if self.decisions is not None:
            recorders.append(self.decisions)
        await asyncio.gather(*(r.drain(self.settings.shutdown_timeout_s) for r in recorders))
        if self.exporter is not None:
            self.exporter.fold()  # the last counts, before this worker's files are left
            process_stopped()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.writes.close()
        if self.writer_link is not None:
            await self.writer_link.close()
        await self.redis.aclose()
        await self.engine.dispose()
