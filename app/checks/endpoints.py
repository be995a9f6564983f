"""POST /v1/checks and /v1/checks/batch: HTTP around the check use case (app.checks.usecase).

A request the fast path (app.checks.fastpath) did not take arrives here: its key and role are
checked, its body read by the model (every normalisation and every 422), its lines handed to
the use case, which the fast path calls too.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.bodies import StrictJSONRoute
from app.api.deps import admits, authorize, runtime
from app.auth.keys import Principal
from app.checks.lines import Line
from app.checks.schemas import BatchIn, BatchOut, CheckIn, CheckOut
from app.checks.usecase import CHECK_ROLES
from app.fields import today_shanghai

router = APIRouter(prefix="/v1", tags=["checks"], route_class=StrictJSONRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown key"},
    403: {"description": "the key may not check this institution"},
    422: {"description": "malformed request; `errors` names each field"},
    503: {"description": "GATE_UNAVAILABLE: neither the cache nor the database can answer"},
}


def line_of(c: CheckIn, today: date) -> Line:
    return Line(
        c.institution_code,
        c.department_code,
        c.practitioner_code,
        (c.service_date or today).isoformat(),
        c.emergency,
        c.claim_id,
    )


JSON = "application/json"


def _principal(request: Request) -> Principal:
    return authorize(request, CHECK_ROLES)


@router.post("/checks", response_model=CheckOut, responses=_ERRORS)
@admits(*CHECK_ROLES)
async def check(body: CheckIn, request: Request) -> Response:
    """May the fund pay for this claim line? Every finding is returned, blocking or not."""
    principal = _principal(request)
    line = line_of(body, today_shanghai())
    answer = await runtime(request).check_usecase.answer_one(principal, line)
    return Response(answer, media_type=JSON)


@router.post(
    "/checks/batch",
    response_model=BatchOut,
    responses={**_ERRORS, 413: {"description": "too many lines"}},
)
@admits(*CHECK_ROLES)
async def check_batch(body: BatchIn, request: Request) -> Response:
    """Up to ``CLAIMGATE_BATCH_MAX_LINES`` checks in one body, answered in order."""
    principal = _principal(request)
    today = today_shanghai()
    lines = [line_of(c, today) for c in body.checks]
    answer = await runtime(request).check_usecase.answer_batch(principal, lines)
    return Response(answer, media_type=JSON)
