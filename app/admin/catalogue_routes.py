"""Catalogue reads (role ``agency``): the itemised point table of a profile, and of the region
an institution belongs to, so an agency's screens offer the list an officer records from."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from app.admin import catalogues
from app.api.bodies import StrictJSONRoute
from app.api.deps import require, runtime
from app.auth.keys import Principal
from app.fields import Day, InstitutionCode

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=StrictJSONRoute)
Agency = Annotated[Principal, Depends(require("agency"))]
ProfileId = Annotated[
    str,
    Path(max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$", description="a policy profile's id"),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown key"},
    403: {"description": "the key's role may not read"},
    404: {"description": "no such profile or institution; `errors` names the field"},
    422: {"description": "invalid field; `errors` names it"},
    503: {"description": "database unavailable"},
}


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/profiles/{profile_id}/catalogue", responses=ERRORS)
async def profile_catalogue(profile_id: ProfileId, _: Agency, on: Day | None = None) -> Response:
    """The profile's catalogue: each item's id, article, act and points, and how findings
    combine. ``on``: the version in force that day (default: the newest)."""
    return _json(catalogues.profile_catalogue(profile_id, on))


@router.get("/institutions/{code}/catalogue", responses=ERRORS)
async def institution_catalogue(
    code: Annotated[InstitutionCode, Path(description="national institution code")],
    request: Request,
    _: Agency,
    on: Day | None = None,
) -> Response:
    """The catalogue of the institution's region: what a violation there is recorded by."""
    async with runtime(request).engine.connect() as conn:
        return _json(await catalogues.institution_catalogue(conn, code, on))
