"""The ASGI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__, lifecycle
from app.admin.endpoints import router as admin_router
from app.api import openapi, problems
from app.api.forward import WriterForward
from app.api.front import ClaimgateApp
from app.api.health import router as health_router
from app.api.limits import EdgeGuard
from app.api.runtime import Runtime
from app.checks.endpoints import router as checks_router
from app.checks.fastpath import CheckFastPath
from app.decisions.endpoints import router as decisions_router
from app.interchange.endpoints import router as interchange_router
from app.interfaces.national.endpoints import NationalFastPath
from app.interfaces.national.endpoints import router as national_router
from app.observability.requests import RequestContext
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: ClaimgateApp) -> AsyncIterator[None]:
        lifecycle.stop_with_supervisor()  # a `serve --workers N` worker drains when orphaned
        rt = Runtime.build(settings)
        app.state.runtime = rt
        await rt.start()
        # Long-lived start-up objects leave the collector's view; GC pauses were most of p99.
        gc.collect()
        gc.freeze()
        # Fewer, larger young collections: a check allocates a few hundred objects, and with the
        # default 700 the collector ran every few requests and reached generation 2 every
        # ~100; measured under load, GC time halved (loadtests, docs/performance.md).
        gc.set_threshold(10_000, 20, 100)
        app.open_front()  # check requests straight to our middleware (app.api.front)
        try:
            yield
        finally:
            await rt.close()

    app = ClaimgateApp(
        title="claimgate",
        version=__version__,
        summary="Real-time claim gating for medical-insurance settlement",
        lifespan=lifespan,
        # No redirects: Starlette answers "/v1/checks/" with a 307 to a URL built from the
        # request's own Host header, method and body kept — an open redirect for a claim. A
        # path that is not a route is a 404.
        redirect_slashes=False,
    )
    problems.install(app)
    openapi.install(app)

    app.include_router(checks_router)
    app.include_router(admin_router)
    app.include_router(decisions_router)
    app.include_router(interchange_router)
    app.include_router(national_router)
    app.include_router(health_router)
    app.add_middleware(NationalFastPath)
    # Inside the edge guard (limits apply to it too), outside the national one: a single check
    # is the busiest request, so it meets one path comparison fewer.
    app.add_middleware(CheckFastPath)
    app.add_middleware(
        EdgeGuard,
        max_body_bytes=settings.max_body_bytes,
        max_inflight=settings.max_inflight,
        max_reading=settings.max_reading,
        max_upload_bytes=settings.import_max_bytes,
    )
    if settings.writer == "process" and settings.writer_socket and not settings.writer_child:
        # `claimgate serve`'s check workers: the write side goes to the writer process before
        # any layer of ours reads its body or its key (app.api.forward).
        app.add_middleware(WriterForward)
    app.add_middleware(problems.ContainErrors)  # nothing unhandled reaches the server
    # Outermost: every answer, a 500 included, gets its request id, log line and count. The
    # tally belongs to the runtime, built later in the lifespan; the middleware reads it there.
    app.add_middleware(RequestContext, log_checks=settings.log_checks)
    return app
