"""The working-day calendar (工作日): official holidays and 调休 make-up days.

Backed by ``chinese_calendar`` for the years it knows, plus an agency-editable override table
(date -> is working day) for corrections and for years the package does not know yet. A year
that neither knows is refused loudly (:class:`CalendarYearUnknown`) rather than guessed, since a
wrong working day moves the date a sanction takes effect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import chinese_calendar

_SATURDAY = 5


class CalendarYearUnknown(ValueError):
    """Neither chinese_calendar nor the override table knows the working days of a year."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"working days of {year} are unknown: chinese_calendar has no data for it and the "
            f"override table has no entry in {year}; add the year's holidays and make-up days "
            "to the override table"
        )
        self.year = year


class WorkingCalendar:
    """Answers whether a day is a working day and counts working days.

    ``overrides`` win over the package. Any override dated in a year the package does not know
    makes that year known: weekdays work, weekends rest, the overrides applied on top.
    """

    __slots__ = ("_override_years", "_overrides")

    def __init__(self, overrides: Mapping[dt.date, bool] | None = None) -> None:
        self._overrides: dict[dt.date, bool] = dict(overrides or {})
        self._override_years = frozenset(d.year for d in self._overrides)

    def is_working_day(self, d: dt.date) -> bool:
        if d in self._overrides:
            return self._overrides[d]
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            if d.year in self._override_years:
                return d.weekday() < _SATURDAY
            raise CalendarYearUnknown(d.year) from None

    def add_working_days(self, d: dt.date, n: int) -> dt.date:
        """The day on which the ``n``-th working day after ``d`` falls (``n`` = 0 gives ``d``).

        Counting starts the day after ``d``, so a notice served on Monday 2025-03-03 with five
        working days' notice takes effect on Monday 2025-03-10. A negative ``n`` counts back.
        """
        step = dt.timedelta(days=1 if n >= 0 else -1)
        remaining = abs(n)
        day = d
        while remaining:
            day += step
            if self.is_working_day(day):
                remaining -= 1
        return day
