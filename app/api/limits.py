"""The edge guard, a pure ASGI middleware in front of everything. A request that carries a body
(POST, PUT, PATCH) passes four gates before the application sees it, each refusing at once:

1. its headers: a Content-Length over ``max_body_bytes`` → 413; no, or more than one,
   ``Content-Type``, or one that is not JSON → 415 (except a spreadsheet sent to
   ``POST /v1/admin/imports``, which may be as large as ``max_upload_bytes``) (of two, this guard once read the last and
   the fast path the first: one request, two meanings);
2. its key, from the in-memory key store: none, more than one ``Authorization`` header, or an
   unknown or revoked key → 401 before a byte of the body is read — every route that takes a
   body needs a key, and a caller without one must not hold a connection's worth of capacity;
3. reading the body, counted apart (``max_reading``; past it 503 ``OVERLOADED``) and bounded in
   size (a chunked body is cut off with 413 the moment it passes the limit) — and in time by the
   server's protocol (:mod:`app.api.server`, ``body_timeout_s``), whose 408 reaches us as a
   client that went away;
4. the check capacity: past ``max_inflight`` requests in this process a request is refused at
   once (503 ``OVERLOADED`` with ``Retry-After``) rather than queued: a cashier's HIS retries
   or falls back, where an unbounded queue would turn a burst into a timeout storm for
   everybody. Only a request whose key is known and whose body is in counts here, so slow or
   unauthenticated clients cannot turn every check into a 503.

A request without a body meets only the last gate (and the one-``Authorization`` rule). Health
endpoints are never refused for load, so a dashboard sees an overloaded process as alive.
The principal found at gate 2 and the body read at gate 3 ride in the scope (``PRINCIPAL``,
``BODY``) for the check fast path; the application's ``receive`` replays the body once.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import NO_KEY, UNKNOWN_KEY
from app.api.problems import PROBLEM

PRINCIPAL = "claimgate.principal"  # scope keys: the caller, and the body read at the edge
BODY = "claimgate.body"

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
UPLOAD_PATH = "/v1/admin/imports"  # the one route whose body is a file, not JSON
UPLOAD_TYPES = frozenset(
    {
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"application/vnd.ms-excel",
        b"text/csv",
        b"text/tab-separated-values",
        b"text/plain",
        b"application/octet-stream",
    }
)
_HEALTH = frozenset({"/healthz", "/readyz"})
_CHALLENGE = (b"www-authenticate", b"Bearer")


def _problem(status: int, code: str, title: str, detail: str) -> bytes:
    body: dict[str, Any] = {
        "type": f"https://claimgate.dev/problems/{code.lower()}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    return orjson.dumps(body)


def _unauthorized(detail: str) -> bytes:
    return _problem(401, "UNAUTHORIZED", "Missing or unknown API key", detail)


def _unsupported(detail: str) -> bytes:
    return _problem(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type", detail)


_NO_KEY = _unauthorized(NO_KEY)
_UNKNOWN_KEY = _unauthorized(UNKNOWN_KEY)
_TWO_KEYS = _unauthorized("send exactly one Authorization header")
_NOT_JSON = _unsupported("send the body as JSON with 'Content-Type: application/json'")
_TWO_TYPES = _unsupported("send exactly one Content-Type header: 'application/json'")
_OVERLOADED = _problem(
    503,
    "OVERLOADED",
    "Overloaded",
    "too many requests in flight in this process; retry after the Retry-After delay",
)


class EdgeGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_inflight: int,
        max_reading: int,
        max_upload_bytes: int = 64 << 20,
    ) -> None:
        self.app = app
        self.max_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self._upload_too_large = _problem(
            413,
            "PAYLOAD_TOO_LARGE",
            "Payload too large",
            f"the file exceeds {max_upload_bytes} bytes (CLAIMGATE_IMPORT_MAX_BYTES)",
        )
        self.max_inflight = max_inflight
        self.max_reading = max_reading
        self.inflight = 0
        self.reading = 0
        self.refused_overload = 0
        self._too_large = _problem(
            413,
            "PAYLOAD_TOO_LARGE",
            "Payload too large",
            f"the request body exceeds {max_body_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _HEALTH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _WITH_BODY:
            if sum(1 for name, _ in scope["headers"] if name == b"authorization") > 1:
                await _send(send, 401, _TWO_KEYS, _CHALLENGE)
                return
            await self._admitted(scope, receive, send)
            return
        ctype = auth = length = None
        types = keys = 0
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                ctype, types = value, types + 1
            elif name == b"authorization":
                auth, keys = value, keys + 1
        if types != 1 or ctype is None:
            await _send(send, 415, _TWO_TYPES if types else _NOT_JSON)
            return
        # as nearly every HIS sends it: no splitting, stripping and lowering
        media = ctype if ctype == b"application/json" else ctype.split(b";", 1)[0].strip().lower()
        # a spreadsheet import (app.interchange) sends the file itself, and files are larger
        upload = scope["path"] == UPLOAD_PATH and media in UPLOAD_TYPES
        limit = self.max_upload_bytes if upload else self.max_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send(send, 413, self._too_large if not upload else self._upload_too_large)
            return
        if not upload and media != b"application/json" and not media.endswith(b"+json"):
            await _send(send, 415, _NOT_JSON)
            return
        if keys > 1:
            await _send(send, 401, _TWO_KEYS, _CHALLENGE)
            return
        # The scheme name is case-insensitive (RFC 9110 §11.1); the key itself is not.
        if auth is None or auth[:7].lower() != b"bearer ":
            await _send(send, 401, _NO_KEY, _CHALLENGE)
            return
        principal = scope["app"].state.runtime.keys.verify(auth[7:].decode("latin-1").strip())
        if principal is None:
            await _send(send, 401, _UNKNOWN_KEY, _CHALLENGE)
            return
        scope[PRINCIPAL] = principal

        if self.reading >= self.max_reading:
            self.refused_overload += 1
            await _send(send, 503, _OVERLOADED, (b"retry-after", b"1"))
            return
        self.reading += 1
        try:
            msg = await receive()
            if msg["type"] == "http.request" and not msg.get("more_body", False):
                body: bytes | None = msg.get("body", b"")  # the usual case: one message
            else:
                body = await self._read_rest(msg, receive, limit)
        finally:
            self.reading -= 1
        if body is None:
            return  # gone, or timed out by the protocol, which has answered 408
        if len(body) > limit:
            await _send(send, 413, self._too_large if not upload else self._upload_too_large)
            return
        if self.inflight >= self.max_inflight:
            self.refused_overload += 1
            await _send(send, 503, _OVERLOADED, (b"retry-after", b"1"))
            return
        scope[BODY] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # e.g. the disconnect a route may wait for
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        self.inflight += 1
        try:
            await self.app(scope, replay, send)
        finally:
            self.inflight -= 1

    async def _read_rest(self, msg: Message, receive: Receive, limit: int) -> bytes | None:
        """The body from its first message on; None when the client went away. Stops reading
        once past the size limit (the caller answers 413)."""
        chunks: list[bytes] = []
        seen = 0
        while msg["type"] == "http.request":
            chunk: bytes = msg.get("body", b"")
            chunks.append(chunk)
            seen += len(chunk)
            if seen > limit or not msg.get("more_body", False):
                return b"".join(chunks)
            msg = await receive()
        return None

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.inflight >= self.max_inflight:
            self.refused_overload += 1
            await _send(send, 503, _OVERLOADED, (b"retry-after", b"1"))
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


async def _send(send: Send, status: int, raw: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [(b"content-type", PROBLEM.encode()), (b"content-length", b"%d" % len(raw)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
