"""Date arithmetic shared by every rule: month addition and the texts clerks read.

One rule everywhere: a sanction of N months starting on D covers ``[D, add_months(D, N))``;
adding months keeps the day of the month and clamps to the month's last day.
"""

from __future__ import annotations

import calendar
import datetime as dt

ONE_DAY = dt.timedelta(days=1)


def add_months(d: dt.date, n: int) -> dt.date:
    """``d`` plus ``n`` months (n may be negative): 2025-03-31 + 3 = 2025-06-30."""
    index = d.year * 12 + (d.month - 1) + n
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(d.day, last))


def add_years(d: dt.date, n: int) -> dt.date:
    """``d`` plus ``n`` years by the same rule (29 February clamps to 28 February)."""
    return add_months(d, 12 * n)


def last_day(end: dt.date) -> str:
    """The last day covered by an interval ending (exclusively) on ``end``, as clerks read it."""
    return (end - ONE_DAY).isoformat()
