"""Inputs of the policy engine: the ledger events, as frozen plain-data records.

Every fact the agency records about a practitioner, a department or an institution is one of
these. The engine is a pure function of a set of them (their order never matters), so a
correction is a new event (an appeal, a restore), never an edit of an old one.

All dates are calendar days in Asia/Shanghai; every ``end`` is exclusive (the first day the
record no longer holds), ``None`` meaning open-ended.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, TypeAlias

AppealOutcome: TypeAlias = Literal["upheld", "rejected"]
PractitionerActionKind: TypeAlias = Literal[
    "suspend", "terminate", "lock_code", "cancel_code", "restore", "shorten"
]
InstitutionActionKind: TypeAlias = Literal["suspend", "terminate", "restore"]
DepartmentActionKind: TypeAlias = Literal["suspend", "restore"]
CarriedStatus: TypeAlias = Literal["", "suspended", "terminated"]


@dataclass(frozen=True, slots=True)
class Registration:
    """A practitioner practising at an institution in a department (执业登记 / 多点执业)."""

    practitioner: str
    institution: str
    department: str
    start: dt.date
    end: dt.date | None  # unbinding date, exclusive


@dataclass(frozen=True, slots=True)
class Agreement:
    """A practitioner's service agreement (服务协议) at an institution for a term."""

    practitioner: str
    institution: str
    start: dt.date
    end: dt.date | None  # exclusive


@dataclass(frozen=True, slots=True)
class Violation:
    """One finding with its points deducted (违规扣分); never edited, only appealed.

    ``item``: the officer's words for what was found. ``item_id`` names the act in the
    catalogue of the profile version ``catalogue`` that priced it ("" when the finding was
    recorded by points alone: before catalogues, or an officer's documented exception).
    ``act``: findings of one practitioner with the same ``act`` are items of one violation
    behaviour (违规行为); ``inspection``: the inspection (检查) that found it. Both "" = a finding
    of its own. How they count is the profile's :class:`~app.policy.profile.Combination`.
    """

    id: str
    practitioner: str
    institution: str
    date: dt.date
    points: int
    item: str = ""
    department: str | None = None
    item_id: str = ""
    catalogue: str = ""
    act: str = ""
    inspection: str = ""


@dataclass(frozen=True, slots=True)
class Appeal:
    """The decision on an objection (异议) to a violation; "upheld" removes its points."""

    violation: str
    outcome: AppealOutcome
    date: dt.date


@dataclass(frozen=True, slots=True)
class Exam:
    """A policy exam (考试/考核) taken by a practitioner."""

    practitioner: str
    date: dt.date
    passed: bool


@dataclass(frozen=True, slots=True)
class Bonus:
    """Points awarded (加分, 威海 §二(三)): a recorded merit, never a deduction undone.

    Bonus points do not lower a period's deducted total; where the profile has a bonus rule,
    they are what allows an officer to shorten a running suspension (``shorten``).
    """

    practitioner: str
    date: dt.date
    points: int
    item: str = ""


@dataclass(frozen=True, slots=True)
class ManualAction:
    """An officer's hand-made status change of a practitioner.

    ``institution`` None means the practitioner everywhere. ``restore`` ends, on ``start``, the
    open sanctions the profile lets an officer lift by hand. ``shorten`` is a decision taken on
    ``start`` that the running suspension's term now ends on ``end`` (威海 §二(三) 酌情缩减);
    the engine honours it only where the profile's bonus rule allows it.
    """

    practitioner: str
    institution: str | None
    action: PractitionerActionKind
    start: dt.date
    end: dt.date | None
    reason: str


@dataclass(frozen=True, slots=True)
class InstitutionAction:
    """A change of an institution's own agreement status (定点协议中止/解除/恢复)."""

    institution: str
    action: InstitutionActionKind
    start: dt.date
    end: dt.date | None
    reason: str


@dataclass(frozen=True, slots=True)
class DepartmentAction:
    """A change of one department's settlement status (科室暂停/恢复结算)."""

    institution: str
    department: str
    action: DepartmentActionKind
    start: dt.date
    end: dt.date | None
    reason: str


@dataclass(frozen=True, slots=True)
class CarriedOver:
    """An opening balance (期初结转): what an agency that starts mid-period brings along —
    the points already deducted in the scoring period holding ``as_of`` (up to and including
    that day) and the status in force on it — as its ``source`` (a roster, a file) states them.

    The engine continues from it as if the period had been recorded here: the points count
    toward the thresholds of that period (the thresholds they already reach are not applied
    again: the agency applied them), a suspension or termination stands as a sanction from
    ``since`` (to ``until``, else as long as the region's rules make it), and what follows —
    escalation, repeat rules, restoring by exam or application — treats it as one of its own.
    ``institution``: the site the balance was kept at (its region's profile judges it).
    Only the latest ``as_of`` of a practitioner counts: a later balance supersedes an earlier.
    """

    practitioner: str
    institution: str | None
    as_of: dt.date
    source: str
    points: int = 0
    status: CarriedStatus = ""
    since: dt.date | None = None  # the status's first day (default: as_of)
    until: dt.date | None = None  # its end (exclusive) or a termination's ban end, if known

    @property
    def rule(self) -> str:
        """What a sanction carried over cites instead of an article."""
        return f"carried over from {self.source} as of {self.as_of.isoformat()}"


Event: TypeAlias = (
    Registration
    | Agreement
    | Violation
    | Appeal
    | Exam
    | Bonus
    | ManualAction
    | InstitutionAction
    | DepartmentAction
    | CarriedOver
)
