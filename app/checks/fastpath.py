"""The check routes' fast path: an ASGI middleware that answers a well-formed, authorized
``POST /v1/checks`` or ``/v1/checks/batch`` without FastAPI's routing, dependency and
body-parsing machinery — about a third of a check's CPU when the cache answers.

It takes only the plain case: ``Content-Type: application/json``, ``Authorization: Bearer <key>``
with a known key of role ``his`` or ``gateway``, a body whose every line is already in normal
form (:mod:`app.checks.plain`: what the route's model would accept unchanged) and no key given
twice, every institution allowed for the key and a batch within the line limit. Anything else —
codes to normalise, a missing or unknown key, a key given twice, a 422, a 403, a 413 — is handed
to the routes with the body replayed, so every refusal and every normalisation is produced by
the same code as before. The answer itself
comes from the same functions the routes call (:func:`answer_one`, :func:`answer_batch`); a
business error they raise is rendered exactly as the app's problem+json handler renders it.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.checks.endpoints import CHECK_ROLES, answer_batch, answer_one
from app.checks.plain import plain_batch, plain_line, unique_keys
from app.errors import ProblemError
from app.fields import today_shanghai

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
        auth = ctype = None
        for name, value in scope["headers"]:
            if name == b"authorization" and auth is None:
                auth = value
            elif name == b"content-type" and ctype is None:
                ctype = value
        # Read the whole body (the edge guard in front still counts it against the limit).
        chunks: list[bytes] = []
        first: list[Message] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                first.append(msg)  # a disconnect: let the route see it
                break
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        if not first and await self._answer(scope, receive, path, auth, ctype, body, send):
            return
        # Hand on what was read: the body (cut short by a disconnect, if one came) and the rest.
        replay = [{"type": "http.request", "body": body, "more_body": bool(first)}, *first]
        replay.reverse()

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        path: str,
        auth: bytes | None,
        ctype: bytes | None,
        body: bytes,
        send: Send,
    ) -> bool:
        """Answer the plain case and return True; return False to hand the request on."""
        if ctype is None or ctype.split(b";", 1)[0].strip().lower() != b"application/json":
            return False
        if auth is None or not auth.startswith(b"Bearer "):
            return False
        rt = scope["app"].state.runtime
        principal = rt.keys.verify(auth[7:].decode("latin-1").strip())
        if principal is None or principal.role not in CHECK_ROLES:
            return False
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        today = today_shanghai().isoformat()
        try:
            if path == _ONE:
                line = plain_line(data, today)
                if (
                    line is None
                    or not unique_keys(body, len(data), (line,))
                    or not principal.may_check(line.institution)
                ):
                    return False
                raw = await answer_one(rt, principal, line)
            else:
                lines = plain_batch(data, today, rt.settings.batch_max_lines)
                if (
                    lines is None
                    or not unique_keys(body, 1 + sum(map(len, data["checks"])), lines)
                    or not all(principal.may_check(ln.institution) for ln in lines)
                ):
                    return False
                raw = await answer_batch(rt, principal, lines)
        except ProblemError as exc:  # e.g. 503 GATE_UNAVAILABLE: the app's own handler's answer
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
