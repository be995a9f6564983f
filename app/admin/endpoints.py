"""Admin routes (role ``agency``): HTTP around the admin services.

A write route takes two steps: :func:`_write` reads what the transaction needs from the
request (the key's id, ``X-Request-ID``, ``Idempotency-Key`` and the request's fingerprint),
then :func:`_commit` runs the service function on a unit of work in the one transaction
(app.admin.writes) and answers. A read route runs its service function on a connection.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Literal, ParamSpec

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from app.admin import (
    aliases,
    bulk,
    calendar,
    catalogues,
    credit,
    institutions,
    local_codes,
    overrides,
    practitioners,
    sanctions,
)
from app.admin import responses as o
from app.admin import schemas as s
from app.admin.writes import Work, Write, fingerprint
from app.api.bodies import StrictJSONRoute
from app.api.deps import require, runtime
from app.auth.keys import Principal
from app.errors import InvalidField
from app.fields import Day, InstitutionCode, LocalCode, NationalPractitionerCode, ViolationId
from app.observability.context import current_request_id
from app.policy import CalendarYearUnknown
from app.projection.ledger import WriteContext, read_calendar

log = logging.getLogger("claimgate.admin")
P = ParamSpec("P")

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=StrictJSONRoute)
Agency = Annotated[Principal, Depends(require("agency"))]
Inst = Annotated[InstitutionCode, Path(description="national institution code")]
Dept = Annotated[LocalCode, Path(description="department code within the institution")]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the record's id")]
Prac = Annotated[
    NationalPractitionerCode, Path(description="national practitioner code or resident ID")
]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown key"},
    403: {"description": "the key's role may not write"},
    404: {"description": "a referenced record does not exist; `detail` names it"},
    409: {"description": "Idempotency-Key reused with another body"},
    422: {"description": "invalid field; `errors` names it"},
    503: {"description": "database unavailable; nothing was written"},
}


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _write(
    request: Request,
    principal: Principal,
    scope: str,
    body: BaseModel | None = None,
    *,
    status: int = 200,
    key_required: bool = False,
) -> Write:
    """The write as the transaction sees it: who (the key), which request (``X-Request-ID``, or
    a new id), and, with an ``Idempotency-Key``, the fingerprint a retry must match: the path
    as sent and the body as the route's model reads it."""
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise InvalidField("must be 1-200 characters", field="header.Idempotency-Key")
    if key is None and key_required:
        raise InvalidField(
            "this write needs an Idempotency-Key header, so a retry is never counted twice",
            field="header.Idempotency-Key",
            code="IDEMPOTENCY_KEY_REQUIRED",
        )
    rid = (
        current_request_id()
    )  # X-Request-ID as sent, when safe to repeat (app.observability.context)
    context = WriteContext(principal.key_id, rid[:64] if rid else uuid.uuid4().hex)
    if key is None:
        return Write(context, scope, status)
    # A bulk import is compared whole, in its model's canonical form: a retry matches whatever
    # its whitespace or key order. About 10 ms for 20,000 records, a seventh of parsing them.
    dumped = None if body is None else body.model_dump(mode="json")
    return Write(
        context, scope, status, key, fingerprint(_secret(request), request.url.path, dumped)
    )


async def _commit(
    request: Request, write: Write, work: Work[P], *args: P.args, **kwargs: P.kwargs
) -> Response:
    """``work(uow, *args, **kwargs)`` committed once (app.admin.writes), and its answer."""
    status, answer = await runtime(request).writes.run(write, work, *args, **kwargs)
    # Which write, by which key, under which request id — never the body, which may hold
    # names and ID numbers (the audit log has the details).
    log.info(
        "admin write %s status=%s key=%s request=%s",
        write.scope,
        status,
        write.context.api_key_id,
        write.context.request_id,
    )
    return _json(status, answer)


async def _read(request: Request, fn: Any, *args: Any) -> Response:
    async with runtime(request).engine.connect() as conn:
        return _json(200, await fn(conn, *args))


def _secret(request: Request) -> str:
    return runtime(request).settings.pii_secret


# -- institutions and departments ---------------------------------------------------------------
@router.put("/institutions/{code}", response_model=o.InstitutionWritten, responses=ERRORS)
async def put_institution(
    code: Inst, body: s.InstitutionIn, request: Request, p: Agency
) -> Response:
    """Create or update an institution; its region code selects the policy profile."""
    write = _write(request, p, "institution.put", body)
    return await _commit(request, write, institutions.put_institution, code, body)


@router.get("/institutions/{code}", response_model=o.Institution, responses=ERRORS)
async def get_institution(code: Inst, request: Request, _: Agency) -> Response:
    """The institution with its status timeline, departments and notices."""
    return await _read(request, institutions.get_institution, code)


@router.put(
    "/institutions/{code}/departments/{department_code}",
    response_model=o.DepartmentWritten,
    responses=ERRORS,
)
async def put_department(
    code: Inst, department_code: Dept, body: s.DepartmentIn, request: Request, p: Agency
) -> Response:
    write = _write(request, p, "department.put", body)
    return await _commit(request, write, institutions.put_department, code, department_code, body)


@router.get(
    "/institutions/{code}/departments/{department_code}",
    response_model=o.Department,
    responses=ERRORS,
)
async def get_department(
    code: Inst, department_code: Dept, request: Request, _: Agency
) -> Response:
    return await _read(request, institutions.get_department, code, department_code)


@router.post(
    "/institutions/{code}/actions",
    status_code=201,
    response_model=o.InstitutionAction,
    responses=ERRORS,
)
async def institution_action(
    code: Inst, body: s.InstitutionActionIn, request: Request, p: Agency
) -> Response:
    """Suspend, terminate or restore the institution's own agreement, with dates and a reason."""
    write = _write(request, p, "institution.action", body, status=201)
    return await _commit(request, write, institutions.institution_action, code, body)


@router.post(
    "/institutions/{code}/departments/{department_code}/actions",
    status_code=201,
    response_model=o.DepartmentAction,
    responses=ERRORS,
)
async def department_action(
    code: Inst, department_code: Dept, body: s.DepartmentActionIn, request: Request, p: Agency
) -> Response:
    """Suspend or restore a department's settlement."""
    write = _write(request, p, "department.action", body, status=201)
    return await _commit(
        request, write, institutions.department_action, code, department_code, body
    )


# -- aliases ------------------------------------------------------------------------------------
@router.put(
    "/institutions/{code}/aliases/{kind}/{local_code}",
    response_model=o.AliasWritten,
    responses=ERRORS,
)
async def put_alias(
    code: Inst,
    kind: Literal["practitioner", "department"],
    local_code: LocalCode,
    body: s.AliasIn,
    request: Request,
    p: Agency,
) -> Response:
    """Map a hospital's local practitioner or department code to the national one. A local code
    that is, or could be, a real code is refused (422 ``ALIAS_COLLIDES``)."""
    write = _write(request, p, "alias.put", body)
    return await _commit(
        request, write, aliases.put_alias, code, kind, local_code, body, _secret(request)
    )


@router.delete(
    "/institutions/{code}/aliases/{kind}/{local_code}",
    response_model=o.AliasWritten,
    responses=ERRORS,
)
async def delete_alias(
    code: Inst,
    kind: Literal["practitioner", "department"],
    local_code: LocalCode,
    request: Request,
    p: Agency,
) -> Response:
    """Remove an alias: its local code stops resolving (and becomes free for a department)."""
    write = _write(request, p, "alias.delete")
    return await _commit(request, write, aliases.delete_alias, code, kind, local_code)


@router.get("/institutions/{code}/aliases", response_model=list[o.Alias], responses=ERRORS)
async def list_aliases(code: Inst, request: Request, _: Agency) -> Response:
    return await _read(request, aliases.list_aliases, code)


# -- local codes: institution aliases, bulk loads ------------------------------------------------
Local = Annotated[LocalCode, Path(description="a hospital's own code")]


@router.put(
    "/institution-aliases/{local_code}", response_model=o.InstitutionAlias, responses=ERRORS
)
async def put_institution_alias(
    local_code: Local, body: s.InstitutionAliasIn, request: Request, p: Agency
) -> Response:
    """Map a hospital's own code for itself to its national code, agency-wide. Refused: a code
    shaped like a national one (422 ``ALIAS_COLLIDES``), one another institution has (409
    ``ALIAS_TAKEN``)."""
    write = _write(request, p, "institution_alias.put", body)
    return await _commit(request, write, local_codes.put_institution_alias, local_code, body)


@router.delete(
    "/institution-aliases/{local_code}", response_model=o.InstitutionAlias, responses=ERRORS
)
async def delete_institution_alias(local_code: Local, request: Request, p: Agency) -> Response:
    write = _write(request, p, "institution_alias.delete")
    return await _commit(request, write, local_codes.delete_institution_alias, local_code)


@router.get("/institution-aliases", response_model=list[o.InstitutionAlias], responses=ERRORS)
async def list_institution_aliases(
    request: Request, _: Agency, institution_code: InstitutionCode | None = None
) -> Response:
    return await _read(request, local_codes.list_institution_aliases, institution_code)


@router.put("/institutions/{code}/local-codes", response_model=o.LocalCodesLoaded, responses=ERRORS)
async def put_local_codes(
    code: Inst, body: s.LocalCodesIn, request: Request, p: Agency
) -> Response:
    """An institution's local codes of all three kinds — its own, its departments', its
    staff's — in one transaction, all or nothing."""
    write = _write(request, p, "local_codes.put", body)
    return await _commit(request, write, local_codes.put_local_codes, code, body, _secret(request))


@router.get("/overrides", response_model=o.Overrides, responses=ERRORS)
async def list_overrides(
    request: Request,
    _: Agency,
    institution_code: InstitutionCode | None = None,
    since: Day | None = None,
    until: Day | None = None,
    disposition: overrides.Disposition = "continue",
    blocking: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Clerks' 3103 dispositions, newest first: by default the overrides (continued despite a
    finding); ``blocking=true`` only those of blocking findings."""
    return await _read(
        request,
        overrides.list_overrides,
        institution_code,
        since,
        until,
        disposition,
        blocking,
        limit,
    )


# -- practitioners, registrations, agreements ---------------------------------------------------
@router.put("/practitioners/{code}", response_model=o.PractitionerWritten, responses=ERRORS)
async def put_practitioner(
    code: Prac, body: s.PractitionerIn, request: Request, p: Agency
) -> Response:
    """Create or update a practitioner. An ID number is kept only as a keyed hash and a mask."""
    write = _write(request, p, "practitioner.put", body)
    return await _commit(
        request, write, practitioners.put_practitioner, code, body, _secret(request)
    )


@router.get("/practitioners/{code}", response_model=o.Practitioner, responses=ERRORS)
async def get_practitioner(code: Prac, request: Request, _: Agency) -> Response:
    """The practitioner with registrations, agreements and status at each institution."""
    return await _read(request, practitioners.get_practitioner, code, _secret(request))


@router.post(
    "/practitioners/{code}/actions",
    status_code=201,
    response_model=o.PractitionerAction,
    responses=ERRORS,
)
async def practitioner_action(
    code: Prac, body: s.PractitionerActionIn, request: Request, p: Agency
) -> Response:
    """Suspend, terminate, lock or cancel the code, or restore, by an officer's hand."""
    write = _write(request, p, "practitioner.action", body, status=201)
    return await _commit(
        request, write, practitioners.practitioner_action, code, body, _secret(request)
    )


@router.post("/registrations", status_code=201, response_model=o.Registration, responses=ERRORS)
async def add_registration(body: s.RegistrationIn, request: Request, p: Agency) -> Response:
    """Register a practitioner at an institution's department (several at once = 多点执业)."""
    write = _write(request, p, "registration.add", body, status=201)
    return await _commit(request, write, practitioners.add_registration, body, _secret(request))


@router.get("/registrations/{registration_id}", response_model=o.Registration, responses=ERRORS)
async def get_registration(registration_id: RowId, request: Request, _: Agency) -> Response:
    return await _read(request, practitioners.get_registration, registration_id)


@router.post(
    "/registrations/{registration_id}/end", response_model=o.Registration, responses=ERRORS
)
async def end_registration(
    registration_id: RowId, body: s.RegistrationEnd, request: Request, p: Agency
) -> Response:
    """Unbind: the registration ends on ``end`` (exclusive)."""
    write = _write(request, p, "registration.end", body)
    return await _commit(request, write, practitioners.end_registration, registration_id, body)


@router.post("/agreements", status_code=201, response_model=o.Agreement, responses=ERRORS)
async def add_agreement(body: s.AgreementIn, request: Request, p: Agency) -> Response:
    """Record a practitioner's service agreement at an institution for a term."""
    write = _write(request, p, "agreement.add", body, status=201)
    return await _commit(request, write, practitioners.add_agreement, body, _secret(request))


@router.get("/agreements/{agreement_id}", response_model=o.Agreement, responses=ERRORS)
async def get_agreement(agreement_id: RowId, request: Request, _: Agency) -> Response:
    return await _read(request, practitioners.get_agreement, agreement_id)


# -- violations, appeals, exams, bonuses, the credit file ---------------------------------------
@router.post("/violations", status_code=201, response_model=o.Violation, responses=ERRORS)
async def record_violation(body: s.ViolationIn, request: Request, p: Agency) -> Response:
    """Record a finding with its points. Needs an Idempotency-Key: a retry never counts twice.
    The answer shows the points in the period and every timeline change it caused."""
    write = _write(request, p, "violation", body, status=201, key_required=True)
    return await _commit(request, write, sanctions.record_violation, body, _secret(request))


@router.post("/violations/{violation_id}/appeal", response_model=o.Appeal, responses=ERRORS)
async def decide_appeal(
    violation_id: Annotated[ViolationId, Path(description="the id recorded with the violation")],
    body: s.AppealIn,
    request: Request,
    p: Agency,
) -> Response:
    """Decide the appeal (异议) of a violation; upheld removes its points and all that followed."""
    write = _write(request, p, "appeal", body)
    return await _commit(request, write, sanctions.decide_appeal, violation_id, body)


@router.post("/exams", status_code=201, response_model=o.Exam, responses=ERRORS)
async def record_exam(body: s.ExamIn, request: Request, p: Agency) -> Response:
    """Record an exam result; where the region restores only by exam, a pass ends the suspension."""
    write = _write(request, p, "exam", body, status=201)
    return await _commit(request, write, sanctions.record_exam, body, _secret(request))


@router.post("/bonuses", status_code=201, response_model=o.Bonus, responses=ERRORS)
async def record_bonus(body: s.BonusIn, request: Request, p: Agency) -> Response:
    """Record bonus points (加分); where the region allows it (威海), they let an officer shorten
    a suspension running when they were earned (a `shorten` practitioner action)."""
    write = _write(request, p, "bonus", body, status=201)
    return await _commit(request, write, sanctions.record_bonus, body, _secret(request))


@router.get("/practitioners/{code}/file", response_model=o.CreditFile, responses=ERRORS)
async def credit_file(
    code: Prac, request: Request, _: Agency, as_of: Day | None = None
) -> Response:
    """The credit file (诚信档案): violations, appeals, exams, sanctions, notices, as of a date."""
    return await _read(request, credit.credit_file, code, _secret(request), as_of)


@router.get("/attempts", response_model=o.Attempts, responses=ERRORS)
async def list_attempts(
    request: Request,
    _: Agency,
    institution_code: InstitutionCode | None = None,
    since: Day | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Claims checked under a suspended, terminated, locked or cancelled code (医保发〔2024〕23号:
    billing under such a code is itself a violation), newest first."""
    return await _read(request, credit.list_attempts, institution_code, since, limit)


# -- what-if, calendar, bulk --------------------------------------------------------------------
@router.post("/simulations", response_model=o.Simulation, responses=ERRORS)
async def simulate(request: Request, _: Agency) -> Response:
    """What-if: the engine on a list of events; writes nothing. See `claimgate simulate`."""
    from app.simulate import SimulationError
    from app.simulate import simulate as run

    body = await request.json()  # read strictly by the route class: 400 when not JSON
    if not isinstance(body, dict):
        raise InvalidField("must be an object", field="body")
    async with runtime(request).engine.connect() as conn:
        calendar_ = await read_calendar(conn)
    try:
        return _json(200, run(body, calendar_))
    except SimulationError as exc:
        raise InvalidField(exc.message, field=f"body.{exc.field}") from None
    except CalendarYearUnknown as exc:
        raise InvalidField(str(exc), field="body.events", code="CALENDAR_YEAR_UNKNOWN") from None


@router.put("/calendar/{day}", response_model=o.CalendarDay, responses=ERRORS)
async def put_calendar_day(
    day: Day, body: s.CalendarDayIn, request: Request, p: Agency
) -> Response:
    """Override one day of the working-day calendar (a holiday, a 调休 make-up day, a new year).
    Everyone judged by a rule counted in working days is re-judged in the same transaction."""
    write = _write(request, p, "calendar", body)
    return await _commit(request, write, calendar.put_calendar_day, day, body)


@router.post("/bulk", response_model=o.BulkImported, responses=ERRORS)
async def bulk_import(body: bulk.BulkIn, request: Request, p: Agency) -> Response:
    """Many records in one transaction and one recompute (an initial load); all or nothing."""
    write = _write(request, p, "bulk", body)
    return await _commit(request, write, bulk.bulk_import, body, _secret(request))


# -- catalogues ---------------------------------------------------------------------------------
ProfileId = Annotated[
    str,
    Path(max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$", description="a policy profile's id"),
]


@router.get("/profiles/{profile_id}/catalogue", response_model=o.Catalogue, responses=ERRORS)
async def profile_catalogue(profile_id: ProfileId, _: Agency, on: Day | None = None) -> Response:
    """The profile's catalogue: each item's id, article, act and points, and how findings
    combine. ``on``: the version in force that day (default: the newest)."""
    return _json(200, catalogues.profile_catalogue(profile_id, on))


@router.get(
    "/institutions/{code}/catalogue", response_model=o.InstitutionCatalogue, responses=ERRORS
)
async def institution_catalogue(
    code: Inst, request: Request, _: Agency, on: Day | None = None
) -> Response:
    """The catalogue of the institution's region: what a violation there is recorded by."""
    return await _read(request, catalogues.institution_catalogue, code, on)
