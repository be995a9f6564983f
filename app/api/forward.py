"""The check workers' side of the writer process: the write side's requests forwarded over its
Unix socket as raw HTTP.

With ``CLAIMGATE_WRITER=process`` (``claimgate serve``'s default) admin writes, the imports and
the heavy admin reads run in one writer process (app.api.writer_process), which serves the
same app on a private Unix socket; a check worker handles none of them. Everything under
``/v1/admin`` is forwarded — the writes, the interchange imports and exports, the roster and
decision-log reads (a page of them costs milliseconds of Python a check would wait behind):
the one prefix, so a new admin route is never left answering in the check worker by mistake.
Checks (``/v1/checks*``, ``/v1/national/*``), the probes, ``/metrics`` and ``/v1/ops/status``
stay local: they answer for this process.

The forward moves bytes: the request's head and body are streamed to the writer as they arrive
and its answer streamed back — status, headers, body. The key, the body's validation, the
write and its recompute all happen in the writer, which logs and counts the request; this
process sends the request id it chose (``X-Request-ID``), so both log lines and the answer
carry the same one, and it neither logs nor counts an answer the writer gave.

When the writer cannot be reached (not running, restarting) or stops answering mid-request,
the answer is a 503 ``WRITER_UNAVAILABLE`` with ``Retry-After``. Nothing is half-applied: a
write is one transaction in the writer, rolled back by PostgreSQL when its connection drops; a
write that committed just before the writer died is answered again, not applied again, when
retried with its ``Idempotency-Key`` (app.admin.writes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.observability.context import REQUEST

# httpx logs each request at INFO: a line per forward, saying less than the writer's own.
logging.getLogger("httpx").setLevel(logging.WARNING)

PREFIX = "/v1/admin"
FORWARDED = "claimgate.forwarded"  # set in the scope once the writer's answer starts
RETRY_AFTER_S = 1

# Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, not the request's; the request id
# is sent as this process chose it; the server's date and name are this server's to add.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_SENT = _HOP | {b"x-request-id"}
_NOT_RETURNED = _HOP | {b"x-request-id", b"date", b"server"}


def is_forwarded(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class _ClientGone(Exception):
    pass


def _unavailable(detail: str) -> bytes:
    return orjson.dumps(
        {
            "type": "https://claimgate.dev/problems/writer_unavailable",
            "title": "Writer unavailable",
            "status": 503,
            "code": "WRITER_UNAVAILABLE",
            "detail": detail,
        }
    )


_NOT_RUNNING = _unavailable(
    "the writer process is not answering (starting or restarting); nothing was written — "
    "retry after the Retry-After delay, with the same Idempotency-Key for a write"
)
_STOPPED = _unavailable(
    "the writer process stopped before it answered; a write not committed was rolled back — "
    "retry after the Retry-After delay with the same Idempotency-Key: one that did commit is "
    "answered again, not applied twice"
)


class WriterLink:
    """One pooled HTTP client to the writer's socket, per check-worker process."""

    def __init__(self, socket: str, *, connect_s: float, answer_s: float) -> None:
        self.socket = socket
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=socket, retries=0),
            base_url="http://claimgate-writer",
            timeout=httpx.Timeout(answer_s, connect=connect_s, pool=connect_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=32),
        )
        self.connect_s = connect_s
        self.refused = 0  # requests answered WRITER_UNAVAILABLE by this process

    async def probe(self) -> dict[str, Any]:
        """The writer's /healthz, for /readyz: ``{"ok": …, "ms"|"error": …}``."""
        t0 = time.perf_counter()
        try:
            r = await self.client.get("/healthz", timeout=self.connect_s)
            ok = r.status_code == 200
        except httpx.HTTPError as exc:
            return {"ok": False, "error": type(exc).__name__}
        out: dict[str, Any] = {"ok": ok, "ms": round((time.perf_counter() - t0) * 1000, 2)}
        if not ok:
            out["error"] = f"HTTP {r.status_code}"
        return out

    async def close(self) -> None:
        await self.client.aclose()

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = REQUEST.get()
        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_SENT]
        if ctx is not None:
            headers.append((b"x-request-id", ctx["request_id"].encode()))
        has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        request = self.client.build_request(
            scope["method"], url, headers=headers, content=_body(receive) if has_body else None
        )
        try:
            answer = await self.client.send(request, stream=True)
        except _ClientGone:
            return  # nobody to answer; the writer saw its request end short and drops it
        except httpx.HTTPError as exc:
            self.refused += 1
            unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            await _refuse(send, _NOT_RUNNING if unsent else _STOPPED)
            return
        try:
            scope[FORWARDED] = True
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": [
                        (k, v) for k, v in answer.headers.raw if k.lower() not in _NOT_RETURNED
                    ],
                }
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await answer.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _ClientGone
        chunk = msg.get("body", b"")
        if chunk:
            yield chunk
        if not msg.get("more_body", False):
            return


async def _refuse(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", b"%d" % len(body)),
                (b"retry-after", b"%d" % RETRY_AFTER_S),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class WriterForward:
    """Middleware: a request for the write side goes to the writer process, the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_forwarded(scope["path"]):
            rt = getattr(scope["app"].state, "runtime", None)
            link = getattr(rt, "writer_link", None)
            if link is not None:
                await link.forward(scope, receive, send)
                return
        await self.app(scope, receive, send)
