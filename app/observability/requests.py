"""The outermost middleware: each request's id, its log line, and its count in the metrics.

- **Request id.** ``X-Request-ID`` as sent when it is safe to repeat
  (:func:`app.observability.context.request_id`), else a new one; returned in the answer's
  ``X-Request-ID`` and stamped on every log line written while the request is served.
- **Log line.** One per request (``event: "request"``) with the route's template, method,
  status, duration, key id and, for a single check, its decision id — for every request but a
  check answered 2xx (a line per check would cost more than the check; set
  ``CLAIMGATE_LOG_CHECKS`` to have them) and probes (``/healthz``, ``/readyz``, ``/startupz``,
  ``/metrics``) answered 2xx.
- **Metrics.** The answer counted by route and status, a check route's duration in the latency
  buckets, a problem's code (read from the problem+json body, which only errors carry):
  :class:`~app.observability.metrics.HttpTally`, plain ints folded later.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import REQUEST, request_id
from app.observability.metrics import CHECK_ROUTES, HttpTally

log = logging.getLogger("claimgate.requests")

FORWARDED = "claimgate.forwarded"  # app.api.forward.FORWARDED (a layer below)
PRINCIPAL = "claimgate.principal"  # app.api.limits.PRINCIPAL (not imported: a layer above)
_PROBES = frozenset({"/healthz", "/readyz", "/startupz", "/metrics"})
_FIXED = frozenset({"/v1/checks", "/v1/checks/batch", "/v1/national", *_PROBES})


def route_of(scope: Scope) -> str:
    """The route's template (``/v1/admin/practitioners/{code}``), never the path as sent; for
    the routes the fast paths answer before routing, the fixed path; else ``other``."""
    route = scope.get("route")
    if route is not None:
        path: str = getattr(route, "path", "other")
        return path
    path = scope["path"]
    if path in _FIXED:
        return str(path)
    if path.startswith("/v1/national/"):
        return "/v1/national/{infno}"
    return "other"


_UNBOUND: Any = object()


class RequestContext:
    def __init__(self, app: ASGIApp, *, log_checks: bool) -> None:
        self.app = app
        self.log_checks = log_checks
        self._http: HttpTally | None = _UNBOUND

    def _tally(self, scope: Scope) -> HttpTally | None:
        """The runtime's tally (None with ``CLAIMGATE_METRICS=false``), found at the first
        request: the runtime is built in the lifespan, after the middleware."""
        http = self._http
        if http is _UNBOUND:
            rt = getattr(scope["app"].state, "runtime", None)
            if rt is None:
                return None
            http = self._http = rt.http_tally
        return http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent = value
                break
        rid = request_id(sent)
        ctx: dict[str, Any] = {"request_id": rid.decode()}
        token = REQUEST.set(ctx)
        t0 = time.perf_counter()
        status = 0
        code: str | None = None  # a problem's

        async def send_with_id(message: Message) -> None:
            nonlocal status, code
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            elif status >= 400 and code is None and message["type"] == "http.response.body":
                code = _problem_code(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST.reset(token)
            # A request the writer process answered was logged and counted there.
            if not scope.get(FORWARDED):
                self._account(scope, ctx, status, code, time.perf_counter() - t0)

    def _account(
        self, scope: Scope, ctx: dict[str, Any], status: int, code: str | None, seconds: float
    ) -> None:
        status = status or 500
        route = route_of(scope)
        http = self._tally(scope)
        if http is not None:
            http.observe(route, scope["method"], status, seconds)
            if status >= 400:
                http.problem(status, code or "NONE")
        if status >= 400 or (
            route not in _PROBES and (self.log_checks or route not in CHECK_ROUTES)
        ):
            principal = scope.get(PRINCIPAL)
            level = logging.WARNING if status >= 500 else logging.INFO
            log.log(
                level,
                "request",
                extra={
                    **ctx,
                    "route": route,
                    "method": scope["method"],
                    "status": status,
                    "code": code,
                    "duration_ms": round(seconds * 1000, 3),
                    "key_id": principal.key_id if principal is not None else None,
                },
            )


def _problem_code(body: bytes) -> str | None:
    """The ``code`` of a problem+json body (the first chunk holds it: problems are small)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) and code.isupper() and len(code) <= 64 else None
