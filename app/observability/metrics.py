"""Prometheus metrics (``GET /metrics``), counted without costing the check path.

The hot path never touches a prometheus_client object: a check adds to plain Python ints and
dicts (:class:`LineTally` per answered batch, :class:`HttpTally` per request — a dict increment
each, about a tenth of a microsecond), and the counters the service keeps anyway (the L1's hits,
the memo's, degraded answers, each recorder's counts, the sync worker's rounds) are read as they
are. :class:`Exporter` folds what changed into the prometheus objects every
``CLAIMGATE_METRICS_FOLD_INTERVAL_S`` and just before a scrape; a labelled ``inc()`` costs a
lock and, with several workers, a write to a memory-mapped file — done per line it would cost a
few percent of a check's CPU (docs/performance.md).

With several uvicorn workers (``claimgate serve --workers N``) a scrape reaches one of them, so
the values live in prometheus_client's multiprocess mode: ``claimgate serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at an emptied folder before the workers start, each worker folds
into its own files there, and any worker's ``/metrics`` sums them all. A worker that stops
marks its gauges dead; its counters stay (they must not go backwards). A worker killed outright
leaves its last gauge values until the service restarts; counters lose at most the last fold
interval of that worker.
"""

from __future__ import annotations

import bisect
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.checks.verdicts import Verdict

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds. A check answered from memory takes tens of microseconds of server time; from
# PostgreSQL, milliseconds; a batch of 1000 lines, tens of milliseconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# The routes that answer checks: their latency is a histogram; every route's answers are counted.
CHECK_ROUTES = frozenset({"/v1/checks", "/v1/checks/batch", "/v1/national", "/v1/national/{infno}"})

LINES = Counter(
    "claimgate_lines_checked",
    "Claim lines answered, by decision and source",
    ["decision", "source"],
)
REASONS = Counter(
    "claimgate_reasons",
    "Reasons given in answers (blocking or not), by reason code and source",
    ["code", "source"],
)
DEGRADED = Counter(
    "claimgate_degraded_answers", "Claim lines answered from PostgreSQL (source: database)"
)
CHECK_SECONDS = Histogram(
    "claimgate_check_duration_seconds",
    "Time to answer a check request, by route (server side, body read to answer sent)",
    ["route"],
    buckets=BUCKETS,
)
RESPONSES = Counter(
    "claimgate_http_responses", "HTTP answers, by route template and status", ["route", "status"]
)
PROBLEMS = Counter(
    "claimgate_http_problems", "4xx/5xx answers, by status and problem code", ["status", "code"]
)
OVERLOADED = Counter("claimgate_overloaded", "Requests refused 503 OVERLOADED at the edge")
ADMIN_WRITES = Counter(
    "claimgate_admin_writes",
    "Admin writes (POST/PUT/PATCH/DELETE under /v1/admin), by route template and status",
    ["route", "status"],
)
L1_HITS = Counter("claimgate_l1_hits", "Documents found in the in-process cache")
L1_MISSES = Counter("claimgate_l1_misses", "Documents the in-process cache did not hold")
MEMO_HITS = Counter("claimgate_verdict_memo_hits", "Lines answered from remembered verdicts")
RECORDS = Counter(
    "claimgate_records",
    "Records a check leaves behind, by recorder and outcome (recorded, refused, dropped)",
    ["recorder", "outcome"],
)
QUEUED = Gauge(
    "claimgate_records_queued",
    "Records held in memory, waiting to be written, by recorder",
    ["recorder"],
    multiprocess_mode="livesum",
)
OUTBOX_LAG = Gauge(
    "claimgate_outbox_lag_seconds",
    "Age of the oldest outbox row not yet mirrored to Redis (0: drained)",
    multiprocess_mode="livemax",
)
OUTBOX_ROWS = Gauge(
    "claimgate_outbox_rows", "Outbox rows not yet mirrored to Redis", multiprocess_mode="livemax"
)
MIRROR_BEHIND = Gauge(
    "claimgate_mirror_behind",
    "1 while the mirror lags the truth past CLAIMGATE_MAX_STALENESS_S",
    multiprocess_mode="livemax",
)
MIRROR_REGRESSED = Gauge(
    "claimgate_mirror_regressed",
    "1 while Redis holds an older mirror than PostgreSQL says it was given",
    multiprocess_mode="livemax",
)
FROM_DATABASE = Gauge(
    "claimgate_checks_answer_from_database",
    "1 while this process answers checks from PostgreSQL (degraded)",
    multiprocess_mode="livemax",
)
SYNC_ROUNDS = Counter("claimgate_sync_rounds", "Sync worker rounds")
SYNC_ERRORS = Counter(
    "claimgate_sync_errors", "Sync worker rounds that failed, by error", ["error"]
)
SYNC_ROWS = Counter("claimgate_sync_rows", "Outbox rows mirrored to Redis")
SYNC_REBUILDS = Counter(
    "claimgate_sync_rebuilds", "Redis copies rebuilt or resynced, by kind", ["kind"]
)
DRIFT_FOUND = Counter(
    "claimgate_mirror_drift_found", "Documents the reconciliation found missing, stale or different"
)
DRIFT_REPAIRED = Counter("claimgate_mirror_drift_repaired", "Documents the reconciliation repaired")


class LineTally:
    """Answered lines by source, decision and reason codes: a dict increment per line."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, bool], dict[tuple[str, ...], int]] = {}

    def count(self, verdicts: Sequence[Verdict], source: str) -> None:
        allow = self._counts.get((source, True))
        deny = self._counts.get((source, False))
        if allow is None or deny is None:
            allow = self._counts.setdefault((source, True), {})
            deny = self._counts.setdefault((source, False), {})
        for v in verdicts:
            c = allow if v.allowed else deny
            c[v.codes] = c.get(v.codes, 0) + 1

    def count_one(self, v: Verdict, source: str) -> None:
        counts = self._counts.get((source, v.allowed))
        if counts is None:
            counts = self._counts.setdefault((source, v.allowed), {})
        counts[v.codes] = counts.get(v.codes, 0) + 1

    def take(self) -> list[tuple[str, bool, tuple[str, ...], int]]:
        """What was counted since the last take (and forget it)."""
        out = []
        for (source, allowed), counts in self._counts.items():
            while counts:  # popitem: a count added by a check meanwhile is never lost
                codes, n = counts.popitem()
                out.append((source, allowed, codes, n))
        return out


class HttpTally:
    """Answers by route and status, problems by code, check latency in buckets: plain ints."""

    def __init__(self) -> None:
        self.responses: dict[tuple[str, str, int], int] = {}
        self.problems: dict[tuple[int, str], int] = {}
        self.latency: dict[str, list[float]] = {}  # route → bucket counts…, sum

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        k = (route, method, status)
        self.responses[k] = self.responses.get(k, 0) + 1
        if route in CHECK_ROUTES:
            b = self.latency.get(route)
            if b is None:
                b = self.latency[route] = [0.0] * (len(BUCKETS) + 2)
            b[bisect.bisect_left(BUCKETS, seconds)] += 1
            b[-1] += seconds

    def problem(self, status: int, code: str) -> None:
        k = (status, code)
        self.problems[k] = self.problems.get(k, 0) + 1


class Recorder(Protocol):
    recorded: int
    refused: int
    dropped: int

    @property
    def queued(self) -> int: ...


class Exporter:
    """Folds one process's plain counters into the prometheus objects."""

    def __init__(
        self,
        lines: LineTally,
        http: HttpTally,
        *,
        checks: Any = None,
        recorders: Mapping[str, Recorder] | None = None,
        worker: Any = None,
    ) -> None:
        self.lines = lines
        self.http = http
        self.checks = checks
        self.recorders = dict(recorders or {})
        self.worker = worker
        self._seen: dict[Any, float] = {}

    def _delta(self, key: Any, value: float) -> float:
        prev = self._seen.get(key, 0)
        self._seen[key] = value
        return value - prev

    def _add(self, counter: Any, key: Any, value: float) -> None:
        d = self._delta(key, value)
        if d > 0:
            counter.inc(d)

    def fold(self) -> None:
        for source, allowed, codes, n in self.lines.take():
            LINES.labels("allow" if allowed else "deny", source).inc(n)
            for code in codes:
                REASONS.labels(code, source).inc(n)
        self._fold_http()
        checks = self.checks
        if checks is not None:
            l1 = checks.l1
            self._add(L1_HITS, "l1_hits", l1.hits)
            self._add(L1_MISSES, "l1_misses", l1.misses)
            self._add(MEMO_HITS, "memo_hits", checks.memo.hits)
            self._add(DEGRADED, "degraded", checks.degraded_answers)
            MIRROR_BEHIND.set(int(checks.mirror_behind))
            MIRROR_REGRESSED.set(int(checks.mirror_regressed))
            FROM_DATABASE.set(int(not checks.cache_trusted))
        for name, r in self.recorders.items():
            for outcome in ("recorded", "refused", "dropped"):
                self._add(RECORDS.labels(name, outcome), (name, outcome), getattr(r, outcome))
            QUEUED.labels(name).set(r.queued)
        if self.worker is not None:
            fold_worker(self, self.worker)

    def _fold_http(self) -> None:
        http = self.http
        while http.responses:
            self._response(*http.responses.popitem())
        while http.problems:
            self._problem(*http.problems.popitem())
        for route, b in http.latency.items():
            child = CHECK_SECONDS.labels(route)
            # prometheus_client has no call to add a bucket's count at once; its children keep
            # one value per bucket (non-cumulative) and the sum. tests/test_metrics.py reads
            # the exposition back, so a library change that breaks this fails there.
            for i, upper in enumerate(child._upper_bounds):
                n = b[i] - self._seen.get((route, upper), 0)
                if n:
                    self._seen[(route, upper)] = b[i]
                    child._buckets[i].inc(n)
            s: float = b[-1] - self._seen.get((route, "sum"), 0)
            if s:
                self._seen[(route, "sum")] = b[-1]
                child._sum.inc(s)

    def _response(self, key: tuple[str, str, int], n: int) -> None:
        route, method, status = key
        RESPONSES.labels(route, str(status)).inc(n)
        if method in ("POST", "PUT", "PATCH", "DELETE") and route.startswith("/v1/admin"):
            ADMIN_WRITES.labels(route, str(status)).inc(n)

    def _problem(self, key: tuple[int, str], n: int) -> None:
        status, code = key
        PROBLEMS.labels(str(status), code).inc(n)
        if code == "OVERLOADED":
            OVERLOADED.inc(n)

    def outbox(self, lag_s: float | None, rows: int) -> None:
        OUTBOX_LAG.set(lag_s or 0.0)
        OUTBOX_ROWS.set(rows)


def fold_worker(exporter: Exporter, worker: Any) -> None:
    """The sync worker's counters (it runs inside serve, or alone as ``claimgate sync``)."""
    add = exporter._add
    add(SYNC_ROUNDS, "sync_rounds", worker.rounds)
    add(SYNC_ROWS, "sync_rows", worker.drained)
    add(DRIFT_FOUND, "drift_found", worker.drift_found)
    add(DRIFT_REPAIRED, "drift_repaired", worker.drift_repaired)
    add(SYNC_REBUILDS.labels("rebuild"), "rebuilds", worker.rebuilds)
    add(SYNC_REBUILDS.labels("resync"), "resyncs", worker.resyncs)
    for error, n in list(worker.errors.items()):
        add(SYNC_ERRORS.labels(error), ("sync_error", error), n)


def serve_worker_metrics(worker: Any, host: str, port: int, stop: Any) -> Any:
    """``claimgate sync`` on its own: its counters on ``http://host:port/metrics`` (a thread
    of prometheus_client's), folded every second until ``stop``. Returns the folding task."""
    import asyncio
    import contextlib

    from prometheus_client import start_http_server

    start_http_server(port, addr=host)
    exporter = Exporter(LineTally(), HttpTally(), worker=worker)

    async def fold() -> None:
        while not stop.is_set():
            exporter.fold()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        exporter.fold()

    return asyncio.create_task(fold())


# -- exposition and the multiprocess folder ------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV)


def prepare_multiprocess_dir(path: Path) -> None:
    """Before the workers start: an empty folder for their files, named in the environment they
    inherit. Files left by an earlier run would add its counts to this one's."""
    if path.exists():
        for f in path.glob("*.db"):
            f.unlink()
    else:
        path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def exposition() -> bytes:
    """Every metric of every worker, in Prometheus's text format."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def process_stopped() -> None:
    """A worker that stops cleanly: its live gauges no longer count."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def names(text: bytes) -> Iterable[str]:
    """The metric names in an exposition (for tests and the dashboard check)."""
    for line in text.decode().splitlines():
        if line.startswith("# TYPE "):
            yield line.split()[2]
