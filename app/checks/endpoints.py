"""POST /v1/checks and /v1/checks/batch: thin HTTP around CheckService."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import admits, authorize, runtime
from app.api.runtime import Runtime
from app.auth.keys import Principal
from app.checks.schemas import BatchIn, BatchOut, CheckIn, CheckOut
from app.checks.service import Line, now_iso, stamp
from app.errors import Forbidden, PayloadTooLarge
from app.fields import today_shanghai

router = APIRouter(prefix="/v1", tags=["checks"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown key"},
    403: {"description": "the key may not check this institution"},
    422: {"description": "malformed request; `errors` names each field"},
    503: {"description": "GATE_UNAVAILABLE: neither the cache nor the database can answer"},
}


def _line(c: CheckIn, today: date) -> Line:
    return Line(
        c.institution_code,
        c.department_code,
        c.practitioner_code,
        (c.service_date or today).isoformat(),
        c.emergency,
        c.claim_id,
    )


CHECK_ROLES = ("his", "gateway")
JSON = "application/json"


def _principal(request: Request) -> Principal:
    return authorize(request, CHECK_ROLES)


async def answer_one(rt: Runtime, principal: Principal, body: CheckIn) -> bytes:
    """The answer to one check, as JSON bytes (shared by the route and the fast path)."""
    if not principal.may_check(body.institution_code):
        raise Forbidden(
            f"this key is bound to {', '.join(sorted(principal.institutions))} and may not "
            f"check claims of {body.institution_code}",
            field="body.institution_code",
            code="INSTITUTION_FORBIDDEN",
        )
    line = _line(body, today_shanghai())
    answers, source = await rt.checks.check([line])
    answer = stamp(answers[0], line, source, now_iso())
    rt.attempts.note(line, answer)
    return orjson.dumps(answer)


async def answer_batch(rt: Runtime, principal: Principal, body: BatchIn) -> bytes:
    """The answers to a batch, in order, as JSON bytes (shared by the route and the fast path)."""
    limit = rt.settings.batch_max_lines
    if len(body.checks) > limit:
        raise PayloadTooLarge(
            f"a batch holds at most {limit} lines; this one has {len(body.checks)} — split it",
            field="body.checks",
            code="BATCH_TOO_LARGE",
        )
    for i, c in enumerate(body.checks):
        if not principal.may_check(c.institution_code):
            raise Forbidden(
                f"line {i}: this key may not check claims of {c.institution_code}; "
                "the whole batch was refused",
                field=f"body.checks.{i}.institution_code",
                code="INSTITUTION_FORBIDDEN",
            )
    today = today_shanghai()
    lines = [_line(c, today) for c in body.checks]
    answers, source = await rt.checks.check(lines)
    at = now_iso()
    results = [stamp(a, ln, source, at) for a, ln in zip(answers, lines, strict=True)]
    for ln, res in zip(lines, results, strict=True):
        rt.attempts.note(ln, res)
    return orjson.dumps({"results": results, "source": source})


@router.post("/checks", response_model=CheckOut, responses=_ERRORS)
@admits(*CHECK_ROLES)
async def check(body: CheckIn, request: Request) -> Response:
    """May the fund pay for this claim line? Every finding is returned, blocking or not."""
    principal = _principal(request)
    return Response(await answer_one(runtime(request), principal, body), media_type=JSON)


@router.post(
    "/checks/batch",
    response_model=BatchOut,
    responses={**_ERRORS, 413: {"description": "too many lines"}},
)
@admits(*CHECK_ROLES)
async def check_batch(body: BatchIn, request: Request) -> Response:
    """Up to ``CLAIMGATE_BATCH_MAX_LINES`` checks in one body, answered in order."""
    principal = _principal(request)
    return Response(await answer_batch(runtime(request), principal, body), media_type=JSON)
