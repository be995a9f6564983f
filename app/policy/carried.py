"""Opening balances (期初结转): what a :class:`~app.policy.events.CarriedOver` stands for under a
profile, read the way the point rules would have read the same period recorded here.

- The points it carries were deducted by the region's own rules, so the thresholds they reach
  were applied by the agency: none fires again, and the next finding fires only a higher one.
- Points reaching a suspension tier mean the period had its suspension: a higher tier reached
  while it still runs stretches it from its first day (the engine's escalation rule), and it
  counts once toward the repeat rules (威海 §二(二)1 两次被暂停) — as the same period recorded
  here would.
- A suspension carried without an end lasts the tier's months from its first day (restored as
  the region restores: automatically, by exam, on application); without a tier (an officer's
  own suspension) until the region's way of restoring ends it.
- A termination carried without its ban's end is banned as the region's point termination
  would be, counted from its first day.
"""

from __future__ import annotations

import datetime as dt

from app.policy.dates import add_years
from app.policy.events import CarriedOver
from app.policy.profile import Profile, Threshold


def tier(rules: Profile, total: int) -> Threshold | None:
    """The highest suspension tier ``total`` points reach, if any."""
    reached = [th for th in rules.thresholds if th.action == "suspend" and th.min_points <= total]
    return reached[-1] if reached else None


def highest_reached(rules: Profile, total: int) -> int:
    """The points of the highest threshold ``total`` reaches (0: none)."""
    return max((th.min_points for th in rules.thresholds if th.min_points <= total), default=0)


def ban_end(rules: Profile, balance: CarriedOver, total: int) -> dt.date | None:
    """The end of a carried termination's ban: as given, else the region's point termination
    (the tier reached, else its first) counted from the termination's first day."""
    if balance.until is not None:
        return balance.until
    terminations = [th for th in rules.thresholds if th.action == "terminate"]
    reached = [th for th in terminations if th.min_points <= total]
    chosen = reached[-1] if reached else (terminations[0] if terminations else None)
    if chosen is None or chosen.ban_years <= 0:
        return None
    return add_years(balance.since or balance.as_of, chosen.ban_years)


def detail(balance: CarriedOver) -> str:
    """The notice's words: what was carried, for the credit file."""
    status = {"": "有效", "suspended": "暂停", "terminated": "解除"}[balance.status]
    since = f"（自{balance.since.isoformat()}起）" if balance.status and balance.since else ""
    return f"期初结转：本记分周期累计扣分{balance.points}分，服务状态{status}{since}"
