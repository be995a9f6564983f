"""The pure policy engine: a region's profile + a ledger of events + a date → timelines.

Imports only the standard library (and ``chinese_calendar`` for working days); no web,
database, cache or JSON libraries. Public API::

    evaluate_practitioner(profile, code, events, calendar, as_of=None) -> PractitionerOutcome
    evaluate_institution(profile, code, events, practitioners, categories, calendar, as_of=None,
                         staff=None)
        -> (InstitutionOutcome, {department: DepartmentOutcome})
    evaluate(profile, events, categories, calendar, as_of=None) -> Evaluation
    add_months(d, n); WorkingCalendar(overrides); load_profiles(); profile_for_region(code)
    sites_counted({site: profile}) -> {profile id: sites whose points count together}

The catalogues (each text's itemised point table) are looked up in :mod:`app.policy.catalogue`:
``price(profile, day, item_id=, points=, exception_reason=)``, ``describe(profile, day)``,
``item_by_category(profile, text, day)``.

Errors::

    ValueError
    ├── UnknownRegion        no profile covers a region code
    ├── CalendarYearUnknown  a working day was needed in a year nobody knows
    ├── ProfileError         a profile file is malformed
    └── CatalogueError       a finding its profile's catalogue does not price (field, code)
"""

from app.policy.dates import add_months
from app.policy.engine import evaluate
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
from app.policy.loader import ProfileError, UnknownRegion, load_profiles, profile_for_region
from app.policy.outcomes import (
    DepartmentOutcome,
    Evaluation,
    InstitutionOutcome,
    Interval,
    Notice,
    PeriodPoints,
    PractitionerOutcome,
    Status,
)
from app.policy.practitioner import evaluate_practitioner
from app.policy.profile import Profile
from app.policy.staff import StaffCounts
from app.policy.tally import sites_counted
from app.policy.workdays import CalendarYearUnknown, WorkingCalendar

__all__ = [
    "Agreement",
    "Appeal",
    "Bonus",
    "CalendarYearUnknown",
    "CarriedOver",
    "DepartmentAction",
    "DepartmentOutcome",
    "Evaluation",
    "Event",
    "Exam",
    "InstitutionAction",
    "InstitutionOutcome",
    "Interval",
    "ManualAction",
    "Notice",
    "PeriodPoints",
    "PractitionerOutcome",
    "Profile",
    "ProfileError",
    "Registration",
    "StaffCounts",
    "Status",
    "UnknownRegion",
    "Violation",
    "WorkingCalendar",
    "add_months",
    "evaluate",
    "evaluate_institution",
    "evaluate_practitioner",
    "load_profiles",
    "profile_for_region",
    "sites_counted",
]
