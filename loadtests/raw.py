"""``raw``: the real ceiling of the stack. A bare ASGI callable under the same uvicorn settings
as every other server: it reads the whole body and answers the same constant document as
``bare`` — no routing, no validation, no framework. What a check costs above it is what
claimgate (and FastAPI) add."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from loadtests.bare import _ONE

_HEADERS = [(b"content-length", b"%d" % len(_ONE)), (b"content-type", b"application/json")]
_OK = b'{"status":"ok"}'


async def _raw(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":  # nothing to start or stop
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
    more = True
    while more:  # the body read whole, as every server here reads it
        message = await receive()
        more = message.get("more_body", False)
    body = _ONE if scope["method"] == "POST" else _OK
    headers = _HEADERS if body is _ONE else [(b"content-length", b"15")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app() -> object:
    return _raw
