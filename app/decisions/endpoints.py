"""GET /v1/admin/decisions/{decision_id} and GET /v1/admin/decisions: the decision log, for the
agency's staff (role ``agency``, as every admin read)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app.admin import responses as o
from app.admin.endpoints import ERRORS, _json
from app.api.bodies import StrictJSONRoute
from app.api.deps import require, runtime
from app.auth.keys import Principal
from app.decisions.search import get_decision, list_decisions
from app.fields import AnyInstitutionCode, AnyPractitionerCode, Day

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=StrictJSONRoute)
Agency = Annotated[Principal, Depends(require("agency"))]
DecisionId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="the decision id a check answered")
]


@router.get("/decisions/{decision_id}", response_model=o.Decision, responses=ERRORS)
async def decision(decision_id: DecisionId, request: Request, _: Agency) -> Response:
    """One answered line: what was asked, by which key, the answer and the data versions it
    was judged on."""
    async with runtime(request).engine.connect() as conn:
        return _json(200, await get_decision(conn, decision_id))


@router.get("/decisions", response_model=o.Decisions, responses=ERRORS)
async def decisions(
    request: Request,
    _: Agency,
    claim_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    practitioner: AnyPractitionerCode | None = None,
    institution: AnyInstitutionCode | None = None,
    day: Day | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=80)] = None,
) -> Response:
    """Answered lines by claim id, practitioner, institution and day (the Asia/Shanghai date
    they were answered), newest first; at least one of them. ``next_cursor`` continues."""
    rt = runtime(request)
    day_: date | None = day
    async with rt.engine.connect() as conn:
        page = await list_decisions(
            conn,
            rt.settings.pii_secret,
            claim_id=claim_id,
            practitioner=practitioner,
            institution=institution,
            day=day_,
            limit=limit,
            cursor=cursor,
        )
    return _json(200, page)
