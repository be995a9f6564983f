"""One place that turns every error into application/problem+json, and logs the unexpected.

Validation messages name the field path and the problem; they never echo the submitted value,
which may be a resident ID number or a name.

No log line carries a request value or an SQL parameter: an unexpected error is logged by its
type, its SQLSTATE and where it happened (:func:`describe`), never by its message — PostgreSQL
quotes the input it could not read (``invalid input syntax for type integer: "…"``), asyncpg
the argument it could not encode, SQLAlchemy the statement's parameters unless the engine hides
them (it does: app.db.engine). :class:`ContainErrors` keeps an exception that no handler took
from reaching the server, whose own log line would print the message and the traceback.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from pathlib import PurePath
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import authorize, route_roles
from app.errors import ProblemError, Unavailable, key_name
from app.policy import CalendarYearUnknown

log = logging.getLogger("claimgate.api")

PROBLEM = "application/problem+json"


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(key_name(p) for p in loc)


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    # pydantic prefixes custom messages with "Value error, "; the field path says enough.
    return msg.removeprefix("Value error, ")


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    items = [{"field": _field(tuple(e.get("loc", ()))), "message": _message(e)} for e in errors]
    first = items[0] if items else {"field": "body", "message": "invalid request"}
    return {
        "type": "https://claimgate.dev/problems/validation_failed",
        "title": "Request validation failed",
        "status": 422,
        "code": "VALIDATION_FAILED",
        "detail": f"{first['field']}: {first['message']}",
        "errors": items,
    }


def malformed_body(detail: str) -> dict[str, Any]:
    return {
        "type": "https://claimgate.dev/problems/malformed_body",
        "title": "Malformed body",
        "status": 400,
        "code": "MALFORMED_BODY",
        "detail": detail,
        "errors": [{"field": "body", "message": detail}],
    }


def describe(exc: BaseException) -> str:
    """An exception as a log line may show it: the types along its chain (with a SQLSTATE where
    the database gave one) and the innermost frames — never a message."""
    names: list[str] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen and len(names) < 6:
        seen.add(id(e))
        state = getattr(e, "sqlstate", None)
        names.append(type(e).__name__ + (f"[SQLSTATE {state}]" if isinstance(state, str) else ""))
        e = e.__cause__ or e.__context__
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    where = " < ".join(f"{PurePath(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"{' from '.join(names)} at {where or '?'}"


class ContainErrors:
    """The outermost middleware: an exception nothing else handled becomes a 500 problem and
    one log line by :func:`describe`. (Starlette's own last resort answers 500 too, then
    re-raises to the server, which logs the message and the traceback.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if scope["type"] != "http":
                raise
            log.error("unhandled error: %s", describe(exc))
            # Fails, harmlessly, when the response had already started.
            with contextlib.suppress(Exception):
                await problem_response(500, _internal())(scope, receive, send)


def _key_refusal(request: Request) -> Response | None:
    """The refusal of a missing, unknown or wrong-role key on a protected route, if any: a
    caller without a valid key learns nothing about the body, only that it must authenticate."""
    roles = route_roles(request.scope.get("route"))
    if roles is None:
        return None
    try:
        authorize(request, roles)
    except ProblemError as denied:
        return problem_response(denied.status, denied.body(), denied.headers)
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> Response:
        return problem_response(exc.status, exc.body(), exc.headers)

    @app.exception_handler(CalendarYearUnknown)
    async def _calendar(_: Request, exc: CalendarYearUnknown) -> Response:
        # The write needs a working day of a year nobody knows yet: refuse it loudly rather
        # than guess a date a sanction takes effect. Nothing was written.
        body = {
            "type": "https://claimgate.dev/problems/calendar_year_unknown",
            "title": "Working-day calendar unknown",
            "status": 422,
            "code": "CALENDAR_YEAR_UNKNOWN",
            "detail": str(exc) + " (PUT /v1/admin/calendar/{day})",
        }
        return problem_response(422, body)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI validates the body before the route's dependencies run: a caller without a
        # valid key learns nothing about the body, only that it must authenticate.
        refused = _key_refusal(request)
        if refused is not None:
            return refused
        errors = list(exc.errors())
        for e in errors:
            if e.get("type") == "json_invalid":  # not JSON at all: nothing to validate
                msg = str(e.get("msg", ""))
                detail = msg if msg.startswith("the body") else "the body is not JSON"
                return problem_response(400, malformed_body(detail))
        return problem_response(422, validation_body(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # an unparseable body: the key is judged first here too
            refused = _key_refusal(request)
            if refused is not None:
                return refused
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "code": {400: "MALFORMED_BODY", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
                exc.status_code, "HTTP_ERROR"
            ),
            "detail": str(exc.detail),
        }
        return problem_response(exc.status_code, body, dict(exc.headers or {}))

    async def _db_down(_: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", type(exc).__name__)
        err = Unavailable(
            "the agency database is unavailable; nothing was written — retry later",
            code="DATABASE_UNAVAILABLE",
        )
        return problem_response(err.status, err.body(), err.headers)

    # OSError covers a refused TCP port and a missing unix socket alike.
    for exc_type in (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError):
        app.add_exception_handler(exc_type, _db_down)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> Response:
        if exc.connection_invalidated or _transient(exc):
            return await _db_down(request, exc)
        log.error("database error: %s", describe(exc))
        return problem_response(500, _internal())


# SQLSTATEs that mean "the database cannot serve this now, try again": connection exceptions
# (08), operator intervention such as a shutdown or "cannot connect now" (57), insufficient
# resources (53), lock timeout (55P03), serialization failure and deadlock (40001, 40P01).
_TRANSIENT_CLASSES = ("08", "57", "53")
_TRANSIENT_STATES = frozenset({"55P03", "40001", "40P01"})


def _transient(exc: DBAPIError) -> bool:
    orig: Any = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return isinstance(state, str) and (
        state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
    )


def _internal() -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": "Internal error",
        "status": 500,
        "code": "INTERNAL_ERROR",
        "detail": "an unexpected error; it has been logged",
    }
