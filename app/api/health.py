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
from app.cache.layout import BUILT_KEY

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Response:
    """The process is alive. Touches no dependency."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readiness(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    timeout = rt.settings.db_timeout_s
    out: dict[str, Any] = {"version": __version__}

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

    async def rd() -> None:
        out["cache_built"] = bool(await rt.redis.exists(BUILT_KEY))

    for name, probe in (("postgres", pg), ("redis", rd)):
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(probe(), timeout)
            out[name] = {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 2)}
        except Exception as exc:
            out[name] = {"ok": False, "error": type(exc).__name__}
    out.setdefault("cache_built", False)
    out.setdefault("outbox_lag_s", None)
    out["keys_loaded"] = rt.keys.loaded
    lag = out["outbox_lag_s"]
    ready = (
        out["postgres"]["ok"]
        and out["redis"]["ok"]
        and out["cache_built"]
        and rt.keys.loaded
        and lag is not None
        and lag <= rt.settings.readiness_max_outbox_lag_s
    )
    out["status"] = "ready" if ready else "not_ready"
    return bool(ready), out


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 when PostgreSQL and Redis answer, the cache is built and the outbox is drained
    within the lag bound; 503 with the same JSON otherwise."""
    ready, body = await readiness(runtime(request))
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )


@router.get("/v1/ops/status")
async def ops_status(
    request: Request, principal: Annotated[Principal, Depends(require("ops"))]
) -> Response:
    """Readiness plus the process's internals: L1 size and hit rate, degraded answers, the
    sanctioned-attempt recorder (queued, recorded, dropped, refused, last flush), worker."""
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
    body["mirror_behind"] = rt.checks.mirror_behind
    body["sanctioned_attempts"] = rt.attempts.status()
    if rt.worker is not None:
        body["sync_worker"] = {"drained": rt.worker.drained, "last_error": rt.worker.last_error}
    return Response(orjson.dumps(body), media_type="application/json")
