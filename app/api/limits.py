"""The edge guard, a pure ASGI middleware in front of everything:

- a body over ``max_body_bytes`` is refused (413) by its Content-Length before it is read, and
  a chunked body is cut off the moment it passes the limit;
- a body that is not JSON (POST/PUT/PATCH without ``application/json``) is refused (415);
- past ``max_inflight`` requests in this process a request is refused at once (503
  ``OVERLOADED`` with ``Retry-After``) rather than queued: a cashier's HIS retries or falls back,
  where an unbounded queue would turn a burst into a timeout storm for everybody.
Health endpoints are never refused for load, so a dashboard sees an overloaded process as alive.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import PROBLEM

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_HEALTH = frozenset({"/healthz", "/readyz"})


class BodyTooLarge(Exception):
    pass


def _problem(status: int, code: str, title: str, detail: str) -> bytes:
    body: dict[str, Any] = {
        "type": f"https://claimgate.dev/problems/{code.lower()}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    return orjson.dumps(body)


class EdgeGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_inflight: int) -> None:
        self.app = app
        self.max_bytes = max_body_bytes
        self.max_inflight = max_inflight
        self.inflight = 0
        self.refused_overload = 0
        self._too_large = _problem(
            413,
            "PAYLOAD_TOO_LARGE",
            "Payload too large",
            f"the request body exceeds {max_body_bytes} bytes",
        )
        self._not_json = _problem(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Unsupported media type",
            "send the body as JSON with 'Content-Type: application/json'",
        )
        self._overloaded = _problem(
            503,
            "OVERLOADED",
            "Overloaded",
            "too many requests in flight in this process; retry after the Retry-After delay",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in _WITH_BODY:
            ctype = b""
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit() or int(value) > self.max_bytes:
                        await _send(send, 413, self._too_large)
                        return
                elif name == b"content-type":
                    ctype = value
            media = ctype.split(b";", 1)[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                await _send(send, 415, self._not_json)
                return
        if self.inflight >= self.max_inflight and scope["path"] not in _HEALTH:
            self.refused_overload += 1
            await _send(send, 503, self._overloaded, retry_after=True)
            return
        self.inflight += 1
        try:
            await self._limited(scope, receive, send)
        finally:
            self.inflight -= 1

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = 0
        started = False
        limit = self.max_bytes

        async def counting_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send(send, 413, self._too_large)


async def _send(send: Send, status: int, raw: bytes, *, retry_after: bool = False) -> None:
    headers = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(raw)).encode())]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
