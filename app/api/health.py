"""Health for ops dashboards and probes: /healthz (alive), /startupz (started), /readyz (can
answer checks), /metrics (Prometheus), /v1/ops/status (details)."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import text

from app import __version__
from app.api.deps import require, runtime
from app.api.runtime import Runtime
from app.auth.keys import Principal
from app.observability.metrics import CONTENT_TYPE, exposition
from app.sync.stamp import HeldStamp, Stamp, read_held, read_stamp

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Response:
    """The process is alive. Touches no dependency."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readiness(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    timeout = rt.settings.db_timeout_s
    out: dict[str, Any] = {"version": __version__}
    stamps: dict[str, Any] = {}

    async def pg() -> None:
        async with rt.engine.connect() as conn:
            lag = (
                await conn.execute(
                    text(
                        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM outbox"
                    )
                )
            ).scalar_one()
            out["outbox_lag_s"] = round(float(lag), 3)
            out["outbox_rows"] = (
                await conn.execute(text("SELECT count(*) FROM outbox"))
            ).scalar_one()
            stamps["postgres"] = await read_stamp(conn)

    async def rd() -> None:
        held = await read_held(rt.redis)  # after PostgreSQL's stamp: see app.sync.stamp
        out["cache_built"] = held.built
        stamps["redis"] = held

    for name, probe in (("postgres", pg), ("redis", rd)):
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(probe(), timeout)
            out[name] = {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 2)}
        except Exception as exc:
            out[name] = {"ok": False, "error": type(exc).__name__}
    if rt.writer_link is not None:
        # The writer process (admin writes, imports, the sync worker): checks do not need it,
        # so it is away "degraded", never "not ready" — taking every replica out of the load
        # balancer for it would stop the checks too.
        out["writer"] = await rt.writer_link.probe()
    out.setdefault("cache_built", False)
    out.setdefault("outbox_lag_s", None)
    truth: Stamp | None = stamps.get("postgres")
    held: HeldStamp | None = stamps.get("redis")
    # Redis holds an older mirror than PostgreSQL says it was given (restarted from its own
    # snapshot, a lagging replica promoted): checks answer from PostgreSQL until it is resynced.
    regressed = truth is not None and held is not None and held.regressed_from(truth)
    out["mirror_regressed"] = regressed
    out["mirror_batches"] = {
        "postgres": truth.batches if truth is not None else None,
        "redis": held.batches if held is not None else None,
    }
    out["keys_loaded"] = rt.keys.loaded
    lag = out["outbox_lag_s"]
    # A check is answered correctly from the cache (Redis answers, holds a complete copy that
    # is not older than the truth) or from PostgreSQL; the service is ready while either can,
    # so that a Redis outage leaves every replica serving degraded answers instead of taking
    # them all out of the load balancer at once.
    from_cache = out["redis"]["ok"] and out["cache_built"] and not regressed
    ready = rt.keys.loaded and (from_cache or out["postgres"]["ok"])
    degraded = [
        name
        for name, bad in (
            ("postgres_unreachable", not out["postgres"]["ok"]),
            ("redis_unreachable", not out["redis"]["ok"]),
            ("cache_not_built", out["redis"]["ok"] and not out["cache_built"]),
            ("mirror_regressed", regressed),
            ("writer_unavailable", "writer" in out and not out["writer"]["ok"]),
            (
                "outbox_lag",
                lag is not None and lag > rt.settings.readiness_max_outbox_lag_s,
            ),
        )
        if bad
    ]
    out["degraded"] = bool(ready and degraded)
    out["degraded_reasons"] = degraded
    out["status"] = ("degraded" if degraded else "ready") if ready else "not_ready"
    return bool(ready), out


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 while checks can be answered correctly: from the cache, or — ``"degraded": true``,
    ``degraded_reasons`` saying why — from PostgreSQL while Redis is away, empty, older than the
    truth or the outbox lags; 503 only when neither can answer (or no API key is loaded yet)."""
    ready, body = await readiness(runtime(request))
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )


@functools.cache
def migration_head() -> str | None:
    """The newest migration this build ships (None when its migrations are not installed)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    root = Path(__file__).resolve().parent.parent.parent
    if not (root / "migrations").is_dir():
        return None
    cfg = Config()
    cfg.set_main_option("script_location", str(root / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


async def startup(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    """Start-up, apart from readiness: API keys loaded, the database migrated to this build's
    head, and the first cache build seen (or Redis unreachable, where waiting would not help:
    checks answer from PostgreSQL). Once passed, it stays passed for the process's life."""
    out: dict[str, Any] = {"keys_loaded": rt.keys.loaded}
    head = migration_head()
    out["migration_head"] = head
    timeout = rt.settings.db_timeout_s
    try:
        async with asyncio.timeout(timeout):
            async with rt.engine.connect() as conn:
                out["migration"] = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar()
    except Exception as exc:
        out["migration"] = None
        out["postgres_error"] = type(exc).__name__
    try:
        async with asyncio.timeout(timeout):
            out["cache_built"] = (await read_held(rt.redis)).built
        redis_down = False
    except Exception as exc:
        out["cache_built"] = False
        out["redis_error"] = type(exc).__name__
        redis_down = True
    started = rt.started or (
        rt.keys.loaded
        and out["migration"] is not None
        and (head is None or out["migration"] == head)
        and (out["cache_built"] or redis_down)
    )
    rt.started = started
    out["status"] = "started" if started else "starting"
    return started, out


@router.get("/startupz")
async def startupz(request: Request) -> Response:
    """200 once the process has started (keys, migrations at head, first cache build); 503
    before. For a start-up probe: readiness and liveness are judged only after it passes."""
    started, body = await startup(runtime(request))
    return Response(
        orjson.dumps(body), status_code=200 if started else 503, media_type="application/json"
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}, "description": "the Prometheus text format"},
        404: {"content": {"text/plain": {}}, "description": "CLAIMGATE_METRICS=false"},
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of every worker of this service (docs/observability.md)."""
    rt = runtime(request)
    if rt.exporter is None:
        return PlainTextResponse("metrics are off (CLAIMGATE_METRICS=false)\n", status_code=404)
    await rt.fold_metrics()
    return Response(exposition(), media_type=CONTENT_TYPE)


@router.get("/v1/ops/status")
async def ops_status(
    request: Request, principal: Annotated[Principal, Depends(require("ops"))]
) -> Response:
    """Readiness plus the process's internals: L1 size and hit rate, degraded answers, the
    sanctioned-attempt recorder (queued, recorded, dropped, refused, last flush), the national
    interface's finding recorder (the same counts), worker."""
    rt = runtime(request)
    _, body = await readiness(rt)
    body["l1"] = {
        "enabled": rt.l1.enabled,
        "entries": len(rt.l1),
        "size": rt.l1.size,
        "hits": rt.l1.hits,
        "misses": rt.l1.misses,
        "verdicts_remembered": len(rt.checks.memo),
        "verdict_hits": rt.checks.memo.hits,
    }
    body["lines_checked"] = rt.checks.lines_checked
    body["degraded_answers"] = rt.checks.degraded_answers
    checks = rt.checks
    body["mirror_behind"] = checks.mirror_behind
    # As this process's watch last saw it (the fields above are probed afresh).
    body["mirror_watch"] = {
        "regressed": checks.mirror_regressed,
        "verified": checks.mirror_verified,
        "regressions_seen": checks.regressions_seen,
        "checks_answer_from": "cache" if checks.cache_trusted else "database",
    }
    body["sanctioned_attempts"] = rt.attempts.status()
    body["national_findings"] = rt.national.findings.status()
    if rt.decisions is not None:
        body["decision_log"] = rt.decisions.status()
    if rt.worker is not None:
        body["sync_worker"] = {
            "drained": rt.worker.drained,
            "last_error": rt.worker.last_error,
            "resyncs": rt.worker.resyncs,
        }
    return Response(orjson.dumps(body), media_type="application/json")
