"""What the admin routes answer, as models for the OpenAPI document (``response_model=``).

The routes send their answers as JSON they build themselves (an answer is also what an
Idempotency-Key replays, stored as it was sent), so these models describe and are never run on
the way out; tests/test_admin_answers.py holds each route's answer to its model, and the fuzz
test (tests/test_fuzz.py) every answer it provokes. Fields an answer may leave out have
defaults; every other field is always there, ``null`` where the type allows it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.cache.shapes import EXEMPT, FROM, MESSAGE, RULE, STATUS, TO, IntervalRow


class Out(BaseModel):
    """An answer documented whole: a field it carries that its model does not name is a
    defect of the model (``additionalProperties: false`` in the document)."""

    model_config = ConfigDict(extra="forbid")


# -- parts ----------------------------------------------------------------------------------------
class Interval(Out):
    """A status over ``[from, to)``; ``to`` null: open-ended."""

    from_: str = Field(alias="from")
    to: str | None
    status: str
    rule: str
    message: str


class StatusInterval(Interval):
    emergency_exempt: bool


class SanctionInterval(Interval):
    institution: str | None = Field(description="where it applies; null: everywhere")


class Change(SanctionInterval):
    """An interval a write added to or removed from a timeline. The subject: a practitioner
    under a profile, an institution, or a department."""

    change: Literal["added", "removed"]
    practitioner_code: str | None = None
    profile: str | None = None
    institution_code: str | None = None
    department_code: str | None = None


class Notice(Out):
    date: str
    kind: str
    subject: str
    rule: str
    until: str | None
    detail: str


class Period(Out):
    """Points counted in one scoring period; ``violations`` are their ids."""

    from_: str = Field(alias="from")
    to: str
    points: int
    violations: list[str]
    carried: int = Field(0, description="of the points, those an opening balance brought")


def status_rows(rows: list[IntervalRow]) -> list[dict[str, Any]]:
    """A document's interval rows as the admin API shows them (:class:`StatusInterval`)."""
    return [
        {
            "from": r[FROM],
            "to": r[TO],
            "status": r[STATUS],
            "rule": r[RULE],
            "message": r[MESSAGE],
            "emergency_exempt": bool(r[EXEMPT]),
        }
        for r in rows
    ]


# -- institutions and departments ---------------------------------------------------------------
class InstitutionWritten(Out):
    code: str
    name: str
    region_code: str
    profile_id: str


class DepartmentStatus(Out):
    code: str
    name: str | None = None
    status: list[StatusInterval]


class Institution(Out):
    code: str
    name: str
    region_code: str
    profile: str
    version: int | None = Field(description="the institution document's version; null: none yet")
    status: list[StatusInterval]
    departments: list[DepartmentStatus]
    notices: list[Notice]


class DepartmentWritten(Out):
    institution_code: str
    code: str
    name: str


class Department(DepartmentStatus):
    institution_code: str


class InstitutionAction(Out):
    event_id: int
    institution_code: str
    action: str
    start: str
    end: str | None
    reason: str


class DepartmentAction(InstitutionAction):
    department: str


class Alias(Out):
    kind: Literal["practitioner", "department", "institution"]
    local_code: str
    target: str = Field(description="the national code it stands for")


class AliasWritten(Alias):
    institution_code: str


class InstitutionAlias(Out):
    local_code: str = Field(description="the hospital's own code for itself")
    institution_code: str = Field(description="the national code it stands for")


class LocalCodesLoaded(Out):
    institution_code: str
    institution: int = Field(description="institution aliases given")
    departments: int = Field(description="department aliases given")
    practitioners: int = Field(description="practitioner aliases given")


# -- practitioners, registrations, agreements ---------------------------------------------------
class PractitionerWritten(Out):
    code: str
    category: str
    name: str
    id_number: str | None = Field(description="masked: region prefix and last four only")


class Agreement(Out):
    id: int
    practitioner_code: str
    institution_code: str
    start: str
    end: str | None


class Registration(Agreement):
    department_code: str


class StatusAt(Out):
    institution_code: str
    version: int
    status: list[StatusInterval]
    warnings: list[StatusInterval]


class Practitioner(PractitionerWritten):
    registrations: list[Registration]
    agreements: list[Agreement]
    status_by_institution: list[StatusAt]


class PractitionerAction(Out):
    event_id: int
    practitioner_code: str
    action: str
    institution: str | None
    start: str
    end: str | None
    reason: str


class CalendarDay(Out):
    day: str
    working: bool
    note: str
    rejudged_institutions: int


# -- violations, appeals, exams, bonuses --------------------------------------------------------
class ItemBasis(Out):
    """What a violation's points rest on: its catalogue item (docs/policy-readings.md)."""

    item_id: str | None = Field(description="the act's id in the region's catalogue")
    article: str | None = Field(description="the article that prices the act")
    act: str | None = Field(description="the act's text in the catalogue")
    basis: Literal["catalogue", "exception", "free", "legacy"] = Field(
        description="catalogue: the item's points; exception: an officer's documented "
        "exception; free: a text without a table; legacy: recorded by points before catalogues"
    )
    exception_reason: str | None
    act_id: str | None = Field(description="items of one act count once, at the highest")
    inspection_id: str | None


class Violation(ItemBasis):
    id: str
    event_id: int
    practitioner_code: str
    institution_code: str
    date: str
    points: int
    item: str
    description: str
    catalogue: str | None = Field(description="the profile version whose catalogue priced it")
    department_code: str | None
    period: Period | None = Field(description="the scoring period the violation falls in")
    changes: list[Change]


class Appeal(Out):
    violation: str
    outcome: Literal["upheld", "rejected"]
    date: str
    changes: list[Change]


class Exam(Out):
    event_id: int
    practitioner_code: str
    date: str
    passed: bool
    changes: list[Change]


class Bonus(Out):
    event_id: int
    practitioner_code: str
    date: str
    points: int
    item: str
    changes: list[Change]


# -- the credit file and sanctioned attempts ----------------------------------------------------
class AppealDecided(Out):
    outcome: Literal["upheld", "rejected"]
    date: str


class FiledViolation(ItemBasis):
    id: str
    institution_code: str
    date: str
    points: int
    item: str
    description: str
    appeal: AppealDecided | None
    counts: bool = Field(description="false once an appeal was upheld")


class FiledExam(Out):
    date: str
    passed: bool


class Judged(Out):
    """The practitioner as one region's profile judges them, at its institutions."""

    profile: str
    institutions: list[str]
    sanctions: list[SanctionInterval]
    notices: list[Notice]
    periods: list[Period]


class CarriedBalance(Out):
    """An opening balance (期初结转) taken over from an agency's records."""

    institution_code: str | None
    as_of: str
    source: str = Field(description="where it came from: the import's file and preset")
    points: int
    status: Literal["", "suspended", "terminated"]
    since: str | None
    until: str | None


class CreditFile(Out):
    practitioner_code: str
    as_of: str | None
    carried_over: list[CarriedBalance]
    violations: list[FiledViolation]
    exams: list[FiledExam]
    by_profile: list[Judged]


class Attempt(Out):
    at: str
    institution_code: str
    department_code: str
    practitioner_code: str | None
    service_date: str
    reasons: list[str]
    emergency: bool
    decision_id: str
    claim_id: str | None


class Attempts(Out):
    items: list[Attempt]


class OverriddenFindings(Out):
    """What the decision's answer found (3101/3102/2204/2301), as recorded when it was sent."""

    checked_at: str
    infno: str
    department_code: str = Field(description="national; a local code nobody knows as sent")
    practitioner_code: str = Field(
        description="national code or masked ID number; a local code or ID token as checked "
        "when nobody is known under it"
    )
    service_date: str
    emergency: bool
    reasons: list[str]
    blocking: bool
    claim_ref: str | None = Field(description="rx_id or feedetl_sn of the order or fee row")


class Override(Out):
    decision_id: str = Field(description="the answer's jr_id, the 3103 warn_rslt_id")
    institution_code: str
    disposition: Literal["continue", "return"] = Field(
        description="dspo_way 1 (continued despite the findings) or 2 (returned to modify)"
    )
    reason: str | None = Field(description="dspo_way_rea; required when continuing")
    warn_type: str
    opter: str | None = Field(description="the clerk's operator code (opter) as sent")
    api_key_id: int | None
    recorded_at: str
    findings: OverriddenFindings | None = Field(
        description="null when the decision's findings are not recorded (not yet, or not one "
        "of this institution's decisions)"
    )


class Overrides(Out):
    items: list[Override]


# -- what-if and bulk ---------------------------------------------------------------------------
class Simulated(Out):
    by_institution: dict[str, list[Interval]]
    everywhere: list[Interval]
    periods: list[Period]


class Simulation(Out):
    profile: str
    as_of: str | None
    practitioners: dict[str, Simulated]
    departments: dict[str, list[Interval]] = Field(description="by institution/department")
    institutions: dict[str, list[Interval]]
    notices: list[Notice]


class BulkImported(Out):
    imported: dict[str, int] = Field(description="records per section")
    projections_written: int


# -- catalogues -----------------------------------------------------------------------------------
class CatalogueItem(Out):
    id: str
    article: str
    act: str
    points: str = Field(description="as the text gives it: '6' or '1-3'")
    min_points: int
    max_points: int
    one_shot: bool = Field(description="the text ties a one-shot consequence to this act")


class Combination(Out):
    same_act: str
    same_inspection: str
    rule: str
    one_shot: str
    one_shot_rule: str


class CatalogueVersion(Out):
    id: str
    in_force_from: str | None


class Catalogue(Out):
    profile: str
    version: str
    name: str
    source: str
    in_force_from: str | None
    initial_points: int
    combination: Combination
    items: list[CatalogueItem]
    versions: list[CatalogueVersion]


class InstitutionCatalogue(Catalogue):
    institution_code: str


class DecisionVersions(Out):
    institution: int | None
    practitioner: int | None


class Decision(Out):
    """One answered line as the decision log keeps it (app.decisions)."""

    decision_id: str
    answered_at: str
    key_id: int | None
    institution_code: str
    department_code: str
    practitioner_code: str = Field(
        description="national code or masked ID number; the ID number's token when the roster "
        "does not know it"
    )
    service_date: str
    emergency: bool
    decision: str
    reasons: list[str]
    data_version: DecisionVersions
    claim_id: str | None
    source: str


class Decisions(Out):
    items: list[Decision]
    next_cursor: str | None
