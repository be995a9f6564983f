"""How many practitioners an institution has on a day: the denominators of the staff rules.

济宁 §五(三) (the staff share) divides the sanctioned by everyone registered at the institution
on the day; 兰州 §二十二 (terminated doctors) divides by the doctors registered there. Neither
needs to know *who* the unsanctioned staff are — only how many — so an institution can be
re-judged from the handful of practitioners its rules read plus these counts, instead of its
whole staff (issue 14: a 15,000-staff hospital re-judged on every write).

:class:`StaffCounts` is a step function per category: the number of distinct practitioners
with a registration covering ``[start, end)`` a day. It is built either from registrations
(:meth:`StaffCounts.of`) or from the changes a database aggregates (:meth:`from_changes`);
both give the same counts, which is what makes the short re-judgement equal to the full one.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate

from app.policy.events import Registration


@dataclass(frozen=True, slots=True)
class StaffCounts:
    """Per category, the days the count changes and the count from each of them on."""

    steps: Mapping[str, tuple[tuple[dt.date, ...], tuple[int, ...]]] = field(default_factory=dict)

    def on(self, day: dt.date, category: str | None = None) -> int:
        """Practitioners registered on ``day``: all of them, or those of ``category``."""
        if category is not None:
            return self._on(day, category)
        return sum(self._on(day, c) for c in self.steps)

    def _on(self, day: dt.date, category: str) -> int:
        days, totals = self.steps.get(category, ((), ()))
        i = bisect_right(days, day)
        return totals[i - 1] if i else 0

    @classmethod
    def from_changes(cls, changes: Iterable[tuple[dt.date, str, int]]) -> StaffCounts:
        """From (day, category, change of the count that day), in any order."""
        by_cat: dict[str, dict[dt.date, int]] = {}
        for day, category, delta in changes:
            per_day = by_cat.setdefault(category, {})
            per_day[day] = per_day.get(day, 0) + delta
        steps = {}
        for category, per_day in by_cat.items():
            days = tuple(sorted(per_day))
            steps[category] = (days, tuple(accumulate(per_day[d] for d in days)))
        return cls(steps)

    @classmethod
    def of(
        cls, registrations: Iterable[Registration], categories: Mapping[str, str]
    ) -> StaffCounts:
        """From every registration at one institution; ``categories``: practitioner →
        category (one without is counted under "")."""
        by_practitioner: dict[str, list[Registration]] = {}
        for r in registrations:
            by_practitioner.setdefault(r.practitioner, []).append(r)
        return cls.from_changes(
            (day, categories.get(p, ""), delta)
            for p, regs in by_practitioner.items()
            for day, delta in coverage_changes(regs)
        )


def coverage_changes(registrations: Iterable[Registration]) -> list[tuple[dt.date, int]]:
    """One practitioner's registrations as (day, +1) when they become registered and (day, -1)
    when they stop: overlapping registrations (two departments) count once."""
    per_day: dict[dt.date, int] = {}
    for r in registrations:
        if r.end is not None and r.end <= r.start:
            continue  # never registered on any day
        per_day[r.start] = per_day.get(r.start, 0) + 1
        if r.end is not None:
            per_day[r.end] = per_day.get(r.end, 0) - 1
    out: list[tuple[dt.date, int]] = []
    covered = 0
    for day in sorted(per_day):
        now = covered + per_day[day]
        if covered <= 0 < now:
            out.append((day, 1))
        elif now <= 0 < covered:
            out.append((day, -1))
        covered = now
    return out
