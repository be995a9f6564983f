"""Health for ops dashboards: /healthz (alive), /readyz (dependencies), /v1/ops/status (details)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import text

from app import __version__
from app.api.deps import require, runtime
from app.api.runtime import Runtime
from app.auth.keys import Principal
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
    ready = (
        out["postgres"]["ok"]
        and out["redis"]["ok"]
        and out["cache_built"]
        and not regressed
        and rt.keys.loaded
        and lag is not None
        and lag <= rt.settings.readiness_max_outbox_lag_s
    )
    out["status"] = "ready" if ready else "not_ready"
    return bool(ready), out


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 when PostgreSQL and Redis answer, the cache is built and holds every batch PostgreSQL
    counts (not an older copy), and the outbox is drained within the lag bound; 503 with the
    same JSON otherwise."""
    ready, body = await readiness(runtime(request))
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )


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
    if rt.worker is not None:
        body["sync_worker"] = {
            "drained": rt.worker.drained,
            "last_error": rt.worker.last_error,
            "resyncs": rt.worker.resyncs,
        }
    return Response(orjson.dumps(body), media_type="application/json")
