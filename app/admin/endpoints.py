"""Admin routes (role ``agency``): thin wrappers around app.admin.service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app.admin import aliases, bulk, sanctions, service
from app.admin import schemas as s
from app.admin.writes import run_write
from app.api.bodies import StrictJSONRoute
from app.api.deps import require, runtime
from app.auth.keys import Principal
from app.errors import InvalidField
from app.fields import Day, InstitutionCode, LocalCode, NationalPractitionerCode, ViolationId
from app.policy import CalendarYearUnknown
from app.projection.recompute import Recompute

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


async def _read(request: Request, fn: Any, *args: Any) -> Response:
    async with runtime(request).engine.connect() as conn:
        return _json(200, await fn(conn, *args))


def _secret(request: Request) -> str:
    return runtime(request).settings.pii_secret


@router.put("/institutions/{code}", responses=ERRORS)
async def put_institution(
    code: Inst, body: s.InstitutionIn, request: Request, p: Agency
) -> Response:
    """Create or update an institution; its region code selects the policy profile."""
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.put_institution(c, rc, ctx, code, body),
        scope="institution.put",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.get("/institutions/{code}", responses=ERRORS)
async def get_institution(code: Inst, request: Request, _: Agency) -> Response:
    """The institution with its status timeline, departments and notices."""
    return await _read(request, service.get_institution, code)


@router.put("/institutions/{code}/departments/{department_code}", responses=ERRORS)
async def put_department(
    code: Inst, department_code: Dept, body: s.DepartmentIn, request: Request, p: Agency
) -> Response:
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.put_department(c, rc, ctx, code, department_code, body),
        scope="department.put",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.get("/institutions/{code}/departments/{department_code}", responses=ERRORS)
async def get_department(
    code: Inst, department_code: Dept, request: Request, _: Agency
) -> Response:
    return await _read(request, service.get_department, code, department_code)


@router.post("/institutions/{code}/actions", status_code=201, responses=ERRORS)
async def institution_action(
    code: Inst, body: s.InstitutionActionIn, request: Request, p: Agency
) -> Response:
    """Suspend, terminate or restore the institution's own agreement, with dates and a reason."""
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.institution_action(c, rc, ctx, code, body),
        status=201,
        scope="institution.action",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.post(
    "/institutions/{code}/departments/{department_code}/actions", status_code=201, responses=ERRORS
)
async def department_action(
    code: Inst, department_code: Dept, body: s.DepartmentActionIn, request: Request, p: Agency
) -> Response:
    """Suspend or restore a department's settlement."""
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.department_action(c, rc, ctx, code, department_code, body),
        status=201,
        scope="department.action",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.put("/institutions/{code}/aliases/{kind}/{local_code}", responses=ERRORS)
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
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: aliases.put_alias(c, rc, ctx, code, kind, local_code, body, secret),
        scope="alias.put",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.delete("/institutions/{code}/aliases/{kind}/{local_code}", responses=ERRORS)
async def delete_alias(
    code: Inst,
    kind: Literal["practitioner", "department"],
    local_code: LocalCode,
    request: Request,
    p: Agency,
) -> Response:
    """Remove an alias: its local code stops resolving (and becomes free for a department)."""
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: aliases.delete_alias(c, rc, ctx, code, kind, local_code),
        scope="alias.delete",
    )
    return _json(st, out)


@router.get("/institutions/{code}/aliases", responses=ERRORS)
async def list_aliases(code: Inst, request: Request, _: Agency) -> Response:
    return await _read(request, aliases.list_aliases, code)


@router.put("/practitioners/{code}", responses=ERRORS)
async def put_practitioner(
    code: Prac, body: s.PractitionerIn, request: Request, p: Agency
) -> Response:
    """Create or update a practitioner. An ID number is kept only as a keyed hash and a mask."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.put_practitioner(c, rc, ctx, code, body, secret),
        scope="practitioner.put",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.get("/practitioners/{code}", responses=ERRORS)
async def get_practitioner(code: Prac, request: Request, _: Agency) -> Response:
    """The practitioner with registrations, agreements and status at each institution."""
    return await _read(request, service.get_practitioner, code, _secret(request))


@router.post("/practitioners/{code}/actions", status_code=201, responses=ERRORS)
async def practitioner_action(
    code: Prac, body: s.PractitionerActionIn, request: Request, p: Agency
) -> Response:
    """Suspend, terminate, lock or cancel the code, or restore, by an officer's hand."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.practitioner_action(c, rc, ctx, code, body, secret),
        status=201,
        scope="practitioner.action",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.post("/registrations", status_code=201, responses=ERRORS)
async def add_registration(body: s.RegistrationIn, request: Request, p: Agency) -> Response:
    """Register a practitioner at an institution's department (several at once = 多点执业)."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.add_registration(c, rc, ctx, body, secret),
        status=201,
        scope="registration.add",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.get("/registrations/{registration_id}", responses=ERRORS)
async def get_registration(registration_id: RowId, request: Request, _: Agency) -> Response:
    return await _read(request, service.get_registration, registration_id)


@router.post("/registrations/{registration_id}/end", responses=ERRORS)
async def end_registration(
    registration_id: RowId, body: s.RegistrationEnd, request: Request, p: Agency
) -> Response:
    """Unbind: the registration ends on ``end`` (exclusive)."""
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.end_registration(c, rc, ctx, registration_id, body),
        scope="registration.end",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.post("/agreements", status_code=201, responses=ERRORS)
async def add_agreement(body: s.AgreementIn, request: Request, p: Agency) -> Response:
    """Record a practitioner's service agreement at an institution for a term."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.add_agreement(c, rc, ctx, body, secret),
        status=201,
        scope="agreement.add",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.get("/agreements/{agreement_id}", responses=ERRORS)
async def get_agreement(agreement_id: RowId, request: Request, _: Agency) -> Response:
    return await _read(request, service.get_agreement, agreement_id)


@router.post("/violations", status_code=201, responses=ERRORS)
async def record_violation(body: s.ViolationIn, request: Request, p: Agency) -> Response:
    """Record a finding with its points. Needs an Idempotency-Key: a retry never counts twice.
    The answer shows the points in the period and every timeline change it caused."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: sanctions.record_violation(c, rc, ctx, body, secret),
        status=201,
        scope="violation",
        body=body.model_dump(mode="json"),
        require_idempotency_key=True,
    )
    return _json(st, out)


@router.post("/violations/{violation_id}/appeal", responses=ERRORS)
async def decide_appeal(
    violation_id: Annotated[ViolationId, Path(description="the id recorded with the violation")],
    body: s.AppealIn,
    request: Request,
    p: Agency,
) -> Response:
    """Decide the appeal (异议) of a violation; upheld removes its points and all that followed."""
    vid = violation_id
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: sanctions.decide_appeal(c, rc, ctx, vid, body),
        scope="appeal",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.post("/exams", status_code=201, responses=ERRORS)
async def record_exam(body: s.ExamIn, request: Request, p: Agency) -> Response:
    """Record an exam result; where the region restores only by exam, a pass ends the suspension."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: sanctions.record_exam(c, rc, ctx, body, secret),
        status=201,
        scope="exam",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.post("/bonuses", status_code=201, responses=ERRORS)
async def record_bonus(body: s.BonusIn, request: Request, p: Agency) -> Response:
    """Record bonus points (加分); where the region allows it (威海), they let an officer shorten
    a suspension running when they were earned (a `shorten` practitioner action)."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: sanctions.record_bonus(c, rc, ctx, body, secret),
        status=201,
        scope="bonus",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.get("/practitioners/{code}/file", responses=ERRORS)
async def credit_file(
    code: Prac, request: Request, _: Agency, as_of: Day | None = None
) -> Response:
    """The credit file (诚信档案): violations, appeals, exams, sanctions, notices, as of a date."""
    return await _read(request, sanctions.credit_file, code, _secret(request), as_of)


@router.post("/simulations", responses=ERRORS)
async def simulate(request: Request, _: Agency) -> Response:
    """What-if: the engine on a list of events; writes nothing. See `claimgate simulate`."""
    from app.simulate import SimulationError
    from app.simulate import simulate as run

    body = await request.json()  # read strictly by the route class: 400 when not JSON
    if not isinstance(body, dict):
        raise InvalidField("must be an object", field="body")
    async with runtime(request).engine.connect() as conn:
        calendar = await Recompute(conn).calendar()
    try:
        return _json(200, run(body, calendar))
    except SimulationError as exc:
        raise InvalidField(exc.message, field=f"body.{exc.field}") from None
    except CalendarYearUnknown as exc:
        raise InvalidField(str(exc), field="body.events", code="CALENDAR_YEAR_UNKNOWN") from None


@router.put("/calendar/{day}", responses=ERRORS)
async def put_calendar_day(
    day: Day, body: s.CalendarDayIn, request: Request, p: Agency
) -> Response:
    """Override one day of the working-day calendar (a holiday, a 调休 make-up day, a new year).
    Everyone judged by a rule counted in working days is re-judged in the same transaction."""
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: service.put_calendar_day(c, rc, ctx, day, body),
        scope="calendar",
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)


@router.get("/attempts", responses=ERRORS)
async def list_attempts(
    request: Request,
    _: Agency,
    institution_code: InstitutionCode | None = None,
    since: Day | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Claims checked under a suspended, terminated, locked or cancelled code (医保发〔2024〕23号:
    billing under such a code is itself a violation), newest first."""
    return await _read(request, sanctions.list_attempts, institution_code, since, limit)


@router.post("/bulk", responses=ERRORS)
async def bulk_import(body: bulk.BulkIn, request: Request, p: Agency) -> Response:
    """Many records in one transaction and one recompute (an initial load); all or nothing."""
    secret = _secret(request)
    st, out = await run_write(
        request,
        p,
        lambda c, rc, ctx: bulk.bulk_import(c, rc, ctx, body, secret),
        scope="bulk",
        # The whole import, in its model's canonical form: a retry matches whatever its
        # whitespace or key order, another import under the key is a 409. About 10 ms for
        # 20,000 records, a seventh of parsing them.
        body=body.model_dump(mode="json"),
    )
    return _json(st, out)
