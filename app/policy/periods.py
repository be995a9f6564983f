"""Scoring periods: natural years, or consecutive agreement terms of a fixed length."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from app.policy.dates import add_months
from app.policy.events import Agreement
from app.policy.profile import Profile

# With agreement periods and no agreement on record, terms are counted from this day, so the
# periods depend on nothing that an appeal or a violation could move.
FALLBACK_ANCHOR = dt.date(2000, 1, 1)


class Periods:
    """Maps a day to the ``[start, end)`` scoring period that holds it."""

    def __init__(self, profile: Profile, agreements: Iterable[Agreement]) -> None:
        self._profile = profile
        starts = [a.start for a in agreements]
        self._anchor = min(starts) if starts else FALLBACK_ANCHOR

    def of(self, day: dt.date) -> tuple[dt.date, dt.date]:
        if self._profile.period == "natural_year":
            return dt.date(day.year, 1, 1), dt.date(day.year + 1, 1, 1)
        months = self._profile.period_months
        # counted from the anchor each time (not chained) so month-end clamping never drifts
        k = ((day.year - self._anchor.year) * 12 + day.month - self._anchor.month) // months
        while add_months(self._anchor, k * months) > day:
            k -= 1
        while add_months(self._anchor, (k + 1) * months) <= day:
            k += 1
        return add_months(self._anchor, k * months), add_months(self._anchor, (k + 1) * months)

    def previous(self, period: tuple[dt.date, dt.date]) -> tuple[dt.date, dt.date]:
        return self.of(period[0] - dt.timedelta(days=1))
