"""The short Chinese sentences a clerk reads next to an interval or a notice."""

from __future__ import annotations

import datetime as dt

from app.policy.dates import last_day


def until(label: str, end: dt.date | None, open_reason: str = "") -> str:
    """``label`` with its last day, e.g. "医保支付资格中止至2026-12-31"."""
    if end is not None:
        return f"{label}至{last_day(end)}"
    return f"{label}（{open_reason}）" if open_reason else label


def banned(label: str, ban_until: dt.date | None) -> str:
    if ban_until is None:
        return label
    return f"{label}，至{last_day(ban_until)}不得重新申请"


def manual(label: str, end: dt.date | None, reason: str) -> str:
    text = until(label, end)
    return f"{text}（{reason}）" if reason else text
