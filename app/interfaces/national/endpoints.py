"""POST /v1/national/{infno} and POST /v1/national: HTTP around the national service.

A HIS that builds its URL as a base plus the infno (oepnhisC/OpenHIS-Server ``yibao/info.py``:
``requestURL = yibaoUrl + infno``) points that base at ``/v1/national/``; one that posts every
message to one URL posts to ``/v1/national`` and is dispatched by ``infno``.

No request model: the body is read here (or by :class:`NationalFastPath`, in front of the
routes), strictly (a member given twice, NaN, a body not in
UTF-8 are refused), and every refusal of it — not JSON, a missing or wrong field — is answered
in the platform's envelope, never as FastAPI's 422. The key and the transport are judged
before, by the edge guard (401, 413, 415, 503 ``OVERLOADED``), and its role here (403): in
problem+json, as on every route.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.bodies import duplicate_key
from app.api.deps import admits, authorize, runtime
from app.api.limits import BODY, PRINCIPAL
from app.auth.keys import Principal
from app.checks.usecase import CHECK_ROLES
from app.interfaces.national import envelope as e
from app.interfaces.national.service import NationalService

PREFIX = "/v1/national"
router = APIRouter(prefix=PREFIX, tags=["national"])
_JSON_HEADER = (b"content-type", b"application/json")

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "the platform's envelope: infno, msgid, fixmedins_code, "
                    "opter, …, input.data (docs/integrating-his.md)",
                }
            }
        },
    }
}


class NationalAnswer(BaseModel):
    """The platform's answer envelope (docs/integrating-his.md)."""

    infcode: int = Field(description="0: judged (or recorded); -1: refused, see err_msg")
    inf_refmsgid: str
    refmsg_time: str
    respond_time: str
    enctype: str
    cainfo: str
    signtype: str
    err_msg: str = Field(description='"" or "<CODE>: <field>: <message>"')
    warn_msg: str
    output: dict[str, Any]


def _parsed(raw: bytes) -> Any:
    """The body as JSON, as strictly as every route reads one (app.api.bodies): a member given
    twice, NaN, a body not in UTF-8 are refused.

    Parsed with orjson, a third of the stdlib's cost on a 20-order message; a member given
    twice is seen without a second parse: a body that is exactly its parsed value written back
    lost nothing; otherwise, outside strings JSON has a colon only between a member's name and
    its value, and orjson writes every colon inside a string as it is, so a body whose colons
    number those of its parsed value written back holds as many members as the value — no
    member was dropped. Only a body that might escape a colon (``\\u003a``)
    or whose counts differ is read again, by the stdlib, to find the duplicate."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise e.Refused(
            "MALFORMED_BODY", None, "the body is not JSON (RFC 8259, in UTF-8)"
        ) from None
    # A body written as orjson writes it (compact UTF-8, as Java and .NET serialisers send it)
    # is its own proof: one comparison. A backslash is looked for first: one memchr, where the
    # substring search is a scan.
    again = orjson.dumps(body)
    if raw == again:
        return body
    if (b"\\" in raw and b"\\u003" in raw) or raw.count(b":") != again.count(b":"):
        dup = duplicate_key(raw)
        if dup is not None:
            path = ".".join(str(p) for p in dup)
            raise e.invalid(path, "is given more than once in its object; send each field once")
    return body


async def _handle(
    national: NationalService, principal: Principal, raw: bytes, infno: str | None
) -> tuple[int, bytes]:
    received_at = e.now()
    try:
        national.authorise(principal)  # before the body: a wrong key learns nothing of it
        body = _parsed(raw)
    except e.Refused as exc:
        status, out = exc.status, e.refusal(exc, received_at)
    else:
        status, out = await national.handle(principal, body, infno, received_at)
    return status, orjson.dumps(out)


async def _answer(request: Request, infno: str | None) -> Response:
    # A key of another role is refused as on every route (403 problem+json), before the body.
    principal = authorize(request, CHECK_ROLES)
    status, out = await _handle(runtime(request).national, principal, await request.body(), infno)
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(out, status_code=status, media_type="application/json", headers=headers)


class NationalFastPath:
    """Answers ``POST /v1/national[/infno]`` without FastAPI's routing and dependency machinery
    (matching a path against every route costs more than reading a 20-order message), as
    app.checks.fastpath does for checks. It runs behind the edge guard (app.api.limits), which
    has verified the key and the media type and read the body; a request that did not pass
    it goes to the routes above, which answer the same."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        body: bytes | None = scope.get(BODY)
        principal: Principal | None = scope.get(PRINCIPAL)
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(PREFIX)
            or body is None
            or principal is None
            or principal.role not in CHECK_ROLES  # the routes refuse it
        ):
            await self.app(scope, receive, send)
            return
        rest = path[len(PREFIX) :]
        if rest and (rest[0] != "/" or "/" in rest[1:] or len(rest) == 1):
            await self.app(scope, receive, send)  # not one of ours: the router's 404
            return
        national = scope["app"].state.runtime.national
        status, out = await _handle(national, principal, body, rest[1:] or None)
        headers = [(b"content-length", b"%d" % len(out)), _JSON_HEADER]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})


_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "GATE_UNAVAILABLE or DATABASE_UNAVAILABLE: retry"}
}


@router.post("", response_model=NationalAnswer, openapi_extra=_BODY, responses=_RESPONSES)
@admits(*CHECK_ROLES)
async def national(request: Request) -> Response:
    """A 3101/3102/2204/2301/3103 message, dispatched by its ``infno``."""
    return await _answer(request, None)


@router.post("/{infno}", response_model=NationalAnswer, openapi_extra=_BODY, responses=_RESPONSES)
@admits(*CHECK_ROLES)
async def national_infno(infno: str, request: Request) -> Response:
    """The message named in the URL; the envelope's ``infno`` must be the same."""
    return await _answer(request, infno)
