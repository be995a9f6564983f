"""How ``claimgate serve`` runs uvicorn: its options, and an HTTP protocol with read deadlines.

uvicorn bounds only the idle time between two requests (``timeout_keep_alive``). A client that
opens a connection and sends nothing, or trickles its headers or its body a byte every few
seconds, keeps the connection — and, once the headers are in, a request task — for ever. Here
every connection carries one deadline for what the server is waiting to receive:

- from the connection's opening, or the first byte of a later request, to the end of the headers:
  ``CLAIMGATE_HEADER_TIMEOUT_S``;
- from the end of the headers to the end of the body: ``CLAIMGATE_BODY_TIMEOUT_S``;
- none while the application works on a complete request, nor while the server itself has
  paused reading (a pipelined request waiting its turn); after the answer uvicorn's keep-alive
  timer bounds the idle connection — and where any byte cancelled that timer without beginning
  a request (stray CRLFs, or the rest of a body after an early answer), the headers deadline.

Past its deadline a connection is answered 408 ``REQUEST_TIMEOUT`` (problem+json,
``Connection: close``) when the client had begun a request and no answer has started, and then
closed; a connection that never sent a byte is closed without a word. The application sees a
request whose body timed out as a client that went away.

A deadline is a float on the protocol, checked by one sweep per process a few times per timeout
(every quarter of the shorter one, at most 1 s), not a timer per request: a uvloop timer armed
and cancelled costs about 2 µs and a request would need two. As written the deadlines cost
0.47 µs per request (the protocol's own work per request, fed the same POST: 4.38 → 4.81 µs),
plus a comparison per open connection per sweep.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.observability.logs import log_config
from app.settings import Settings, get_settings

PROTOCOL = "app.api.server:ReadDeadlineProtocol"  # an import string: each worker process loads it

_HEADERS, _BODY = "headers", "body"
_http = HttpToolsProtocol
_NEVER = math.inf


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options of ``claimgate serve`` (and of the load tests' baselines), but the app,
    host, port and worker count."""
    trusted = settings.forwarded_allow_ips.strip()
    return {
        "loop": "uvloop",
        "http": PROTOCOL,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        # X-Forwarded-For / -Proto rewrite the client address and scheme the app sees; believed
        # only from the proxies named, never by default (uvicorn's own default trusts 127.0.0.1,
        # which any process on the host, or a local reverse proxy passing headers through, is).
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "access_log": False,  # URLs may carry a practitioner's ID number
        "log_level": settings.log_level.lower(),
        # Each worker process configures its logging from this (JSON lines: app.observability.logs).
        "log_config": log_config(settings.log_format, settings.log_level),
        # The drain on SIGTERM: requests in flight get this long (docs/operations.md, Stopping).
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
    }


def _timeout_answer(waited_for: str, seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "type": "https://claimgate.dev/problems/request_timeout",
            "title": "Request timeout",
            "status": 408,
            "code": "REQUEST_TIMEOUT",
            "detail": f"the request {waited_for} did not arrive within {seconds:g} s",
        }
    )
    head = (
        b"content-type: application/problem+json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    )
    return head + body


# One sweep per server (a worker process has one) while it has connections.
_sweeps: weakref.WeakKeyDictionary[ServerState, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


def _ensure_sweep(loop: asyncio.AbstractEventLoop, state: ServerState, every: float) -> None:
    if state in _sweeps:
        return

    def sweep() -> None:
        now = loop.time()
        for conn in list(state.connections):
            if not isinstance(conn, ReadDeadlineProtocol):
                continue
            if conn.deadline <= now:
                conn.expire()
            elif conn.idle_untimed():
                conn.await_headers(now)
        if state.connections:
            _sweeps[state] = loop.call_later(every, sweep)
        else:
            del _sweeps[state]

    _sweeps[state] = loop.call_later(every, sweep)


class ReadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on receiving headers and body."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        s = get_settings()
        self.header_timeout = s.header_timeout_s
        self.body_timeout = s.body_timeout_s
        self.deadline = _NEVER  # loop time by which what we wait for must have arrived
        self.waiting_for = _HEADERS
        self.began = False  # the client has sent bytes of the request we wait for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.header_timeout
        every = min(1.0, max(0.05, min(self.header_timeout, self.body_timeout) / 4))
        _ensure_sweep(self.loop, self.server_state, every)

    def on_message_begin(self) -> None:
        _http.on_message_begin(self)  # not super(): this is every request's path
        if self.deadline == _NEVER:  # else: the first request, due since the connection opened
            self.waiting_for = _HEADERS
            self.deadline = self.loop.time() + self.header_timeout
        self.began = True

    def on_headers_complete(self) -> None:
        _http.on_headers_complete(self)
        self.waiting_for = _BODY
        self.deadline = self.loop.time() + self.body_timeout

    def on_message_complete(self) -> None:
        _http.on_message_complete(self)
        self.deadline = _NEVER

    def idle_untimed(self) -> bool:
        """Between requests with no timer: bytes that begin no request (stray CRLFs) cancelled
        uvicorn's keep-alive timer, or an early answer left the body to finish arriving."""
        return (
            self.deadline == _NEVER
            and self.timeout_keep_alive_task is None
            and (self.cycle is None or self.cycle.response_complete)
            and not self.transport.is_closing()
        )

    def await_headers(self, now: float) -> None:
        self.waiting_for, self.began = _HEADERS, False
        self.deadline = now + self.header_timeout

    def expire(self) -> None:
        """The deadline passed: answer 408 if an answer is due and none has begun; close."""
        if self.transport.is_closing() or self.flow.read_paused:
            return  # closed already, or the server (not the client) holds the request up
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        if self.waiting_for == _HEADERS:
            if busy:
                return  # the previous answer is still being made; judged again once it is sent
            answer, seconds = self.began, self.header_timeout
        else:
            answer, seconds = cycle is not None and not cycle.response_started, self.body_timeout
            if busy:
                assert cycle is not None
                # The application reads this as a client that went away; anything it still
                # sends is dropped rather than written after our answer.
                cycle.disconnected = True
                cycle.message_event.set()
        if answer:
            head = [STATUS_LINE[408]]
            for name, value in self.server_state.default_headers:
                head.extend([name, b": ", value, b"\r\n"])
            self.transport.write(b"".join(head) + _timeout_answer(self.waiting_for, seconds))
        self.deadline = _NEVER
        self.transport.close()
