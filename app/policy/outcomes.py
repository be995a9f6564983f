"""Outputs of the policy engine: timelines of status intervals and dated notices.

An :class:`Interval` covers ``[start, end)``; ``end`` is the first payable day again and None
means open-ended. ``institution`` None means the interval applies at every institution.
A "warning" interval never blocks a claim: it only carries a reason to show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, TypeAlias

Status: TypeAlias = Literal["warning", "suspended", "terminated", "code_locked", "code_cancelled"]
BLOCKING: frozenset[str] = frozenset({"suspended", "terminated", "code_locked", "code_cancelled"})


@dataclass(frozen=True, slots=True)
class Interval:
    """One status over ``[start, end)`` with the rule that caused it and a clerk's message."""

    start: dt.date
    end: dt.date | None
    status: Status
    rule: str
    institution: str | None
    emergency_exempt: bool
    message: str

    @property
    def blocking(self) -> bool:
        return self.status in BLOCKING

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True, slots=True)
class Notice:
    """A dated fact for people to act on (约谈 due, 重点监控名单, re-application banned ...).

    Kinds produced: warning, interview (约谈), training_required, exam_required,
    reinstatement_required, reinstatement_premature (a 恢复 request before the term's end),
    sanction_notified, reapplication_banned, restore_refused (a restore inside a ban),
    suspension_shortened / shortening_refused (an officer's 加分 decision), code_lock_due,
    key_monitoring (重点监控名单), institution_threshold, agreements_follow_institution,
    department_suspended, carried_over (an opening balance taken over). ``subject`` is the practitioner's code, the institution's code, or
    "<institution>/<department>" for a department.
    """

    date: dt.date
    kind: str
    subject: str
    rule: str
    until: dt.date | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PeriodPoints:
    """Points deducted in one scoring period ``[start, end)``, after appeals; ``carried`` of them
    came with an opening balance (期初结转), the rest from ``violations``."""

    start: dt.date
    end: dt.date  # exclusive: the first day of the next period
    points: int
    violations: tuple[str, ...]
    carried: int = 0


@dataclass(frozen=True, slots=True)
class PractitionerOutcome:
    practitioner: str
    intervals: tuple[Interval, ...]
    notices: tuple[Notice, ...]
    periods: tuple[PeriodPoints, ...]


@dataclass(frozen=True, slots=True)
class DepartmentOutcome:
    institution: str
    department: str
    intervals: tuple[Interval, ...]
    notices: tuple[Notice, ...]


@dataclass(frozen=True, slots=True)
class InstitutionOutcome:
    institution: str
    intervals: tuple[Interval, ...]
    notices: tuple[Notice, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    practitioners: dict[str, PractitionerOutcome]
    departments: dict[tuple[str, str], DepartmentOutcome]
    institutions: dict[str, InstitutionOutcome]
