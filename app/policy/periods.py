"""Scoring periods: natural years, or agreement terms of a fixed length.

Agreement terms (兰州: 协议期 of two years) are counted from the practitioner's first
agreement and restart on the day they sign again after a termination, when the new agreement
brings a new initial score. Terms at a second site do not restart the count: points of every
site add up, and signing somewhere else must not wipe them.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable

from app.policy.dates import add_months
from app.policy.events import Agreement
from app.policy.profile import Profile

# With agreement periods and no agreement on record, terms are counted from this day, so the
# periods depend on nothing that an appeal or a violation could move.
FALLBACK_ANCHOR = dt.date(2000, 1, 1)

Period = tuple[dt.date, dt.date]


class Periods:
    """Maps a day to the ``[start, end)`` scoring period that holds it."""

    def __init__(self, profile: Profile, agreements: Iterable[Agreement]) -> None:
        self._profile = profile
        starts = [a.start for a in agreements]
        self._anchors = [min(starts) if starts else FALLBACK_ANCHOR]

    def restart(self, day: dt.date) -> None:
        """A new agreement term starts on ``day`` (re-signed after a termination)."""
        if self._profile.period == "agreement" and day > self._anchors[-1]:
            self._anchors.append(day)

    def of(self, day: dt.date) -> Period:
        if self._profile.period == "natural_year":
            return dt.date(day.year, 1, 1), dt.date(day.year + 1, 1, 1)
        i = max(bisect.bisect_right(self._anchors, day) - 1, 0)
        anchor = self._anchors[i]
        months = self._profile.period_months
        # counted from the anchor each time (not chained) so month-end clamping never drifts
        k = ((day.year - anchor.year) * 12 + day.month - anchor.month) // months
        while add_months(anchor, k * months) > day:
            k -= 1
        while add_months(anchor, (k + 1) * months) <= day:
            k += 1
        start, end = add_months(anchor, k * months), add_months(anchor, (k + 1) * months)
        if i + 1 < len(self._anchors):
            end = min(end, self._anchors[i + 1])
        return start, end

    def previous(self, period: Period) -> Period:
        return self.of(period[0] - dt.timedelta(days=1))
