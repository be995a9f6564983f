"""Interchange routes (role ``agency``): spreadsheet imports, the template, the roster and
credit-file exports, and the roster list. HTTP only; the work is in the modules beside this.

An import's body is the file itself (``Content-Type`` of the spreadsheet: XLSX, XLS, CSV, TSV;
a ``charset`` parameter names a text file's encoding, else it is detected); the edge guard
admits these media types on this one path, up to ``CLAIMGATE_IMPORT_MAX_BYTES``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from app.admin.responses import Out
from app.api.deps import require, runtime
from app.auth.keys import Principal
from app.errors import InvalidField, ProblemError
from app.fields import (
    MIN_DATE,
    Day,
    InstitutionCode,
    NationalPractitionerCode,
    RegionCode,
    today_shanghai,
)
from app.interchange import exports, imports, roster, writers
from app.interchange.template import template
from app.observability.context import current_request_id
from app.projection.ledger import WriteContext

log = logging.getLogger("claimgate.interchange")
router = APIRouter(prefix="/v1/admin", tags=["interchange"])
Agency = Annotated[Principal, Depends(require("agency"))]

SPREADSHEETS = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel",
        "text/csv",
        "text/tab-separated-values",
        "text/plain",
        "application/octet-stream",
    }
)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown key"},
    403: {"description": "the key's role is not agency"},
    409: {"description": "Idempotency-Key reused with another file or other options"},
    413: {"description": "the file exceeds CLAIMGATE_IMPORT_MAX_BYTES"},
    415: {"description": "not a spreadsheet's media type"},
    422: {"description": "the file or its rows refused; `report` names every problem"},
}


class NotASpreadsheet(ProblemError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported media type"


class Problem(Out):
    sheet: str
    row: int | None = Field(description="the spreadsheet's row number; null: the whole file")
    column: str | None = Field(description="the header as the file spells it, with its letter")
    problem: str = Field(description="what is wrong, in Chinese; never the cell's value")


class ImportReport(Out):
    preset: str
    sheet: str
    encoding: str | None
    rows: int
    ok: bool
    problem_count: int
    problems: list[Problem] = Field(description="at most 1,000 listed; problem_count is whole")
    counts: dict[str, int] = Field(description="what the import writes (or would write)")
    dry_run: bool
    applied: bool
    sha256: str
    projections_written: int | None = None


class RosterLine(Out):
    registration_id: int
    institution_code: str
    institution_name: str
    department_code: str
    department_name: str
    practitioner_code: str = Field(description="an ID number only masked")
    name: str
    category: str
    id_number: str | None = Field(description="masked: claimgate keeps no ID number in clear")
    attributes: dict[str, str]
    status: str = Field(description="active, or the blocking status on `on` at the institution")
    points: int = Field(description="points of the scoring period holding `on`")
    registered_from: str
    registered_until: str | None


class RosterPage(Out):
    on: str
    items: list[RosterLine]
    next_cursor: int | None = Field(description="pass as `cursor` for the next page")


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _media(request: Request) -> tuple[str, str | None]:
    raw = request.headers.get("content-type", "")
    media, _, params = raw.partition(";")
    charset = None
    for p in params.split(";"):
        k, _, v = p.strip().partition("=")
        if k.lower() == "charset" and v:
            charset = v.strip().strip('"')
    return media.strip().lower(), charset


@router.post("/imports", status_code=201, response_model=ImportReport, responses=ERRORS)
async def import_file(
    request: Request,
    p: Agency,
    preset: Annotated[
        str,
        Query(
            max_length=40, description="weihai-roster, national-staff, claimgate-roster, violations"
        ),
    ],
    dry_run: bool = False,
    as_of: Day | None = None,
    registered_from: Day | None = None,
    region: RegionCode | None = None,
    sheet: Annotated[str | None, Query(max_length=31)] = None,
) -> Response:
    """Import a spreadsheet through a preset; with `dry_run=true` answer the per-row report
    (200) and write nothing. The real import (201) is all or nothing, in one transaction, and
    applied once per file (the file's SHA-256 is the default Idempotency-Key)."""
    media, charset = _media(request)
    if media not in SPREADSHEETS:
        raise NotASpreadsheet(
            "send the file as the body with the spreadsheet's Content-Type (XLSX, XLS, CSV, TSV)"
        )
    rt = runtime(request)
    req = imports.ImportRequest(
        await request.body(),
        imports.preset_named(preset).name,
        as_of or today_shanghai(),
        registered_from or MIN_DATE,
        region,
        sheet,
        charset,
    )
    parsed = await asyncio.to_thread(imports.read, req)
    secret = rt.settings.pii_secret
    if dry_run:
        return _json(200, await imports.dry_run(rt.engine, req, parsed, secret))
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise InvalidField("must be 1-200 characters", field="header.Idempotency-Key")
    rid = (
        current_request_id()
    )  # X-Request-ID as sent, when safe to repeat (app.observability.context)
    context = WriteContext(p.key_id, rid[:64] if rid else uuid.uuid4().hex)
    status, answer = await imports.run(rt.writes, req, parsed, context, secret, idempotency_key=key)
    # which file (its digest), by which key: never a cell
    log.info("import %s sha256=%s status=%s key=%s", preset, req.digest[:16], status, p.key_id)
    return _json(status, answer)


@router.get(
    "/imports/template",
    response_class=Response,
    responses={200: {"content": {writers.MEDIA["xlsx"]: {}}}, **ERRORS},
)
async def import_template(_: Agency) -> Response:
    """The blank claimgate-roster template with a sheet of instructions (XLSX)."""
    return Response(
        await asyncio.to_thread(template),
        media_type=writers.MEDIA["xlsx"],
        headers={"Content-Disposition": 'attachment; filename="claimgate-template.xlsx"'},
    )


Fmt = Annotated[Literal["xlsx", "csv"], Query(description="xlsx or csv")]
Charset = Annotated[Literal["utf-8", "gbk"], Query(description="a CSV's encoding")]


def _file(body: bytes, media: str, name: str) -> Response:
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/exports/roster",
    response_class=Response,
    responses={200: {"content": {writers.MEDIA["xlsx"]: {}, "text/csv": {}}}, **ERRORS},
)
async def export_roster(
    request: Request,
    _: Agency,
    institution_code: InstitutionCode | None = None,
    region_code: RegionCode | None = None,
    on: Day | None = None,
    format: Fmt = "xlsx",
    charset: Charset = "utf-8",
) -> Response:
    """The roster in the 附件1 layout: one line per registration in force on `on` (default
    today), with its status there and the period's points. ID numbers masked, always."""
    if institution_code is None and region_code is None:
        raise InvalidField("give institution_code or region_code", field="query.institution_code")
    f = roster.Filters(on=on or today_shanghai(), institution=institution_code, region=region_code)
    async with runtime(request).engine.connect() as conn:
        rows = await exports.roster_rows(conn, f)
    body, media = await asyncio.to_thread(
        writers.table, format, "医保医师基础信息库", exports.ANNEX1, rows, charset
    )
    return _file(body, media, f"roster-{f.on.isoformat()}.{format}")


@router.get(
    "/exports/credit-file",
    response_class=Response,
    responses={200: {"content": {writers.MEDIA["xlsx"]: {}, "text/csv": {}}}, **ERRORS},
)
async def export_credit_file(
    request: Request,
    _: Agency,
    practitioner_code: NationalPractitionerCode | None = None,
    institution_code: InstitutionCode | None = None,
    on: Day | None = None,
    format: Fmt = "xlsx",
    charset: Charset = "utf-8",
) -> Response:
    """The credit file in the 附件2 layout, per practitioner or per institution: each
    violation and each opening balance (违规类别 期初结转, citing where it came from)."""
    if practitioner_code is None and institution_code is None:
        raise InvalidField(
            "give practitioner_code or institution_code", field="query.practitioner_code"
        )
    rt = runtime(request)
    day = on or today_shanghai()
    async with rt.engine.connect() as conn:
        rows = await exports.credit_rows(
            conn,
            day,
            institution=institution_code,
            practitioner=practitioner_code,
            secret=rt.settings.pii_secret,
        )
    body, media = await asyncio.to_thread(
        writers.table, format, "医保医师诚信档案库", exports.ANNEX2, rows, charset
    )
    return _file(body, media, f"credit-file-{day.isoformat()}.{format}")


@router.get("/practitioners", response_model=RosterPage, responses=ERRORS)
async def list_roster(
    request: Request,
    _: Agency,
    institution_code: InstitutionCode | None = None,
    region_code: RegionCode | None = None,
    status: roster.StatusFilter | None = None,
    has_points: bool | None = None,
    sanctioned: bool | None = Query(
        None, description="a blocking status on `on` (sanctioned today)"
    ),
    on: Day | None = None,
    cursor: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The roster, a page at a time: one line per registration in force on `on` (default
    today), filtered by institution, region, status, points in the period, sanctioned."""
    f = roster.Filters(
        on or today_shanghai(), institution_code, region_code, status, has_points, sanctioned
    )
    async with runtime(request).engine.connect() as conn:
        lines = await roster.lines(conn, f, after=cursor, limit=limit)
    for line in lines:
        del line["token"]
    nxt = lines[-1]["registration_id"] if len(lines) == limit else None
    return _json(200, {"on": f.on.isoformat(), "items": lines, "next_cursor": nxt})
