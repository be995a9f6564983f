"""add_months and the working-day calendar."""

from __future__ import annotations

import datetime as dt

import pytest

from app.policy import CalendarYearUnknown, WorkingCalendar, add_months

from .factories import d


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2025-03-31", 3, "2025-06-30"),  # issue 4: clamps to the month's last day
        ("2025-03-02", 3, "2025-06-02"),
        ("2025-11-15", 3, "2026-02-15"),  # across the year end
        ("2024-01-31", 1, "2024-02-29"),  # leap year
        ("2025-01-31", 1, "2025-02-28"),
        ("2025-06-30", -4, "2025-02-28"),
        ("2024-02-29", 12, "2025-02-28"),
    ],
)
def test_add_months(start: str, months: int, expected: str) -> None:
    assert add_months(d(start), months) == d(expected)


def test_official_holiday_and_make_up_day() -> None:
    cal = WorkingCalendar()
    assert not cal.is_working_day(d("2025-10-01"))  # 国庆
    assert cal.is_working_day(d("2025-09-28"))  # Sunday, 调休 make-up working day
    assert not cal.is_working_day(d("2025-03-08"))  # plain Saturday


def test_add_working_days_skips_weekend_and_holidays() -> None:
    cal = WorkingCalendar()
    assert cal.add_working_days(d("2025-03-03"), 5) == d("2025-03-10")
    # Tue 30 Sep 2025, then the 国庆 holiday 1-8 Oct: 9, 10, 11 (Sat make-up), 13
    assert cal.add_working_days(d("2025-09-30"), 4) == d("2025-10-13")
    assert cal.add_working_days(d("2025-03-10"), 0) == d("2025-03-10")
    assert cal.add_working_days(d("2025-03-10"), -5) == d("2025-03-03")


def test_unknown_year_is_refused() -> None:
    with pytest.raises(CalendarYearUnknown, match="2035"):
        WorkingCalendar().is_working_day(d("2035-03-01"))


def test_overrides_make_a_year_known_and_win() -> None:
    cal = WorkingCalendar({d("2035-01-01"): False, d("2025-03-08"): True})
    assert not cal.is_working_day(d("2035-01-01"))
    assert cal.is_working_day(d("2035-01-02"))  # a Tuesday: weekdays work
    assert not cal.is_working_day(d("2035-01-06"))  # a Saturday
    assert cal.is_working_day(d("2025-03-08"))  # override over the package
    assert isinstance(CalendarYearUnknown(2035), ValueError)
    assert dt.date(2035, 1, 2).weekday() == 1
