"""``evaluate``: the whole engine over one set of events (simulations, tests, rebuilds)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from app.policy.events import (
    Agreement,
    Appeal,
    Bonus,
    CarriedOver,
    DepartmentAction,
    Event,
    Exam,
    InstitutionAction,
    ManualAction,
    Registration,
    Violation,
)
from app.policy.institution import evaluate_institution
from app.policy.outcomes import DepartmentOutcome, Evaluation, InstitutionOutcome
from app.policy.practitioner import evaluate_practitioner
from app.policy.profile import Profile
from app.policy.workdays import WorkingCalendar


def evaluate(
    profile: Profile,
    events: Sequence[Event],
    categories: Mapping[str, str],
    calendar: WorkingCalendar,
    as_of: dt.date | None = None,
) -> Evaluation:
    """Every practitioner, institution and department the events mention, evaluated."""
    practitioner_codes = sorted(
        {
            e.practitioner
            for e in events
            if isinstance(
                e, Registration | Agreement | Violation | Exam | Bonus | ManualAction | CarriedOver
            )
        }
    )
    practitioners = {
        code: evaluate_practitioner(profile, code, events, calendar, as_of)
        for code in practitioner_codes
    }
    institution_codes = sorted(
        {
            e.institution
            for e in events
            if isinstance(
                e, Registration | Agreement | Violation | InstitutionAction | DepartmentAction
            )
        }
    )
    institutions: dict[str, InstitutionOutcome] = {}
    departments: dict[tuple[str, str], DepartmentOutcome] = {}
    for code in institution_codes:
        here = [e for e in events if _concerns(e, code)]
        staff = {e.practitioner for e in here if isinstance(e, Registration | Violation)}
        outcome, depts = evaluate_institution(
            profile,
            code,
            here,
            {p: practitioners[p] for p in sorted(staff)},
            categories,
            calendar,
            as_of,
        )
        institutions[code] = outcome
        departments.update({(code, d): o for d, o in depts.items()})
    return Evaluation(practitioners, departments, institutions)


def _concerns(event: Event, code: str) -> bool:
    """Whether an institution's evaluation needs ``event`` (appeals: harmless if foreign)."""
    if isinstance(event, Appeal):
        return True
    if isinstance(event, Registration | Violation | InstitutionAction | DepartmentAction):
        return event.institution == code
    return False
