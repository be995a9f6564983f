"""The check routes' fast path: an ASGI middleware that answers a well-formed, authorized
``POST /v1/checks`` or ``/v1/checks/batch`` without FastAPI's routing, dependency and
body-parsing machinery — about a third of a check's CPU when the cache answers.

It runs behind the edge guard (:mod:`app.api.limits`), which has verified the key and read the
body (both ride in the scope). It takes only the plain case: ``Content-Type: application/json``,
a key of role ``his`` or ``gateway``, a body whose every line is already in normal
form (:mod:`app.checks.plain`: what the route's model would accept unchanged) and no JSON member
given twice, and a batch within the line limit. Anything else — codes to normalise, a key of
another role, a member given twice, a 422 — is handed to the routes with the body replayed, so
every normalisation and every refusal of a body is produced by the same code as before. The
answer itself comes from the check use case the routes call too (app.checks.usecase), which
authorises each line's institution once; a business error it raises (a 403, a 503) is rendered
exactly as the app's problem+json handler renders it.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.limits import BODY, PRINCIPAL
from app.api.problems import problem_response
from app.auth.keys import Principal
from app.checks.plain import plain_batch, plain_line, unique_keys
from app.checks.usecase import CHECK_ROLES
from app.errors import ProblemError
from app.fields import today_shanghai_iso

_ONE = "/v1/checks"
_BATCH = "/v1/checks/batch"
_JSON_HEADER = (b"content-type", b"application/json")


class CheckFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path != _ONE and path != _BATCH:
            await self.app(scope, receive, send)
            return
        body: bytes | None = scope.get(BODY)
        principal: Principal | None = scope.get(PRINCIPAL)
        if body is None or principal is None:  # not through the edge guard: the routes judge it
            await self.app(scope, receive, send)
            return
        ctype = None
        for name, value in scope["headers"]:
            if name == b"content-type":  # the edge guard let exactly one through
                ctype = value
                break
        if await self._answer(scope, receive, path, principal, ctype, body, send):
            return
        await self.app(scope, receive, send)  # the edge guard's receive replays the body

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        path: str,
        principal: Principal,
        ctype: bytes | None,
        body: bytes,
        send: Send,
    ) -> bool:
        """Answer the plain case and return True; return False to hand the request on."""
        if ctype != b"application/json" and (  # as sent by nearly every HIS: no parsing
            ctype is None or ctype.split(b";", 1)[0].strip().lower() != b"application/json"
        ):
            return False
        if principal.role not in CHECK_ROLES:
            return False
        rt = scope["app"].state.runtime
        usecase = rt.check_usecase
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        today = today_shanghai_iso()
        try:
            if path == _ONE:
                line = plain_line(data, today)
                if line is None or not unique_keys(body, len(data), (line,)):
                    return False
                raw = await usecase.answer_one(principal, line)
            else:
                lines = plain_batch(data, today, usecase.batch_max_lines)
                if lines is None or not unique_keys(body, 1 + sum(map(len, data["checks"])), lines):
                    return False
                raw = await usecase.answer_batch(principal, lines)
        except ProblemError as exc:  # a 403, a 503 GATE_UNAVAILABLE: as the app's handler answers
            await problem_response(exc.status, exc.body(), exc.headers)(scope, receive, send)
            return True
        # The same status line and headers, in the same order, as Response(raw, media_type=JSON).
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(raw)), _JSON_HEADER],
            }
        )
        await send({"type": "http.response.body", "body": raw})
        return True
