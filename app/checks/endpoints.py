"""POST /v1/checks and /v1/checks/batch: thin HTTP around CheckService."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.bodies import StrictJSONRoute
from app.api.deps import admits, authorize, runtime
from app.api.runtime import Runtime
from app.auth.keys import Principal
from app.checks.lines import Line
from app.checks.schemas import BatchIn, BatchOut, CheckIn, CheckOut
from app.checks.verdicts import Verdict, decision_id, now_iso, render, stamp_head
from app.errors import Forbidden, PayloadTooLarge
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


CHECK_ROLES = ("his", "gateway")
JSON = "application/json"


def _principal(request: Request) -> Principal:
    return authorize(request, CHECK_ROLES)


def _answers(
    rt: Runtime, lines: Sequence[Line], verdicts: list[Verdict], source: str
) -> list[bytes]:
    head = stamp_head(source, now_iso())
    out = []
    for ln, v in zip(lines, verdicts, strict=True):
        did = decision_id()
        out.append(render(v, head, did, ln.day, ln.claim_id))
        if v.sanctions:
            rt.attempts.note(ln, v.sanctions, did.decode())
    return out


async def answer_one(rt: Runtime, principal: Principal, line: Line) -> bytes:
    """The answer to one check, as JSON bytes (shared by the route and the fast path)."""
    if not principal.may_check(line.institution):
        raise Forbidden(
            "this key may not check claims of this institution; it is bound to "
            f"{', '.join(sorted(principal.institutions))}",
            field="body.institution_code",
            code="INSTITUTION_FORBIDDEN",
        )
    verdicts, source = await rt.checks.check([line])
    return _answers(rt, [line], verdicts, source)[0]


async def answer_batch(rt: Runtime, principal: Principal, lines: Sequence[Line]) -> bytes:
    """The answers to a batch, in order, as JSON bytes (shared by the route and the fast path)."""
    limit = rt.settings.batch_max_lines
    if len(lines) > limit:
        raise PayloadTooLarge(
            f"a batch holds at most {limit} lines; this one has {len(lines)} — split it",
            field="body.checks",
            code="BATCH_TOO_LARGE",
        )
    for i, ln in enumerate(lines):
        if not principal.may_check(ln.institution):
            raise Forbidden(
                f"line {i}: this key may not check claims of this institution; "
                "the whole batch was refused",
                field=f"body.checks.{i}.institution_code",
                code="INSTITUTION_FORBIDDEN",
            )
    verdicts, source = await rt.checks.check(lines)
    answers = _answers(rt, lines, verdicts, source)
    return b'{"results":[' + b",".join(answers) + b'],"source":"%s"}' % source.encode()


@router.post("/checks", response_model=CheckOut, responses=_ERRORS)
@admits(*CHECK_ROLES)
async def check(body: CheckIn, request: Request) -> Response:
    """May the fund pay for this claim line? Every finding is returned, blocking or not."""
    principal = _principal(request)
    line = line_of(body, today_shanghai())
    return Response(await answer_one(runtime(request), principal, line), media_type=JSON)


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
    return Response(await answer_batch(runtime(request), principal, lines), media_type=JSON)
