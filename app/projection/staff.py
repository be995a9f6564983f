"""An institution's staff as its rules read it, without reading every practitioner.

The institution rules (app.policy.institution_rules — 威海 §二(二)1 departments, 济宁 §五(三)
staff share and §六(三) key monitoring, 兰州 §二十二 terminated doctors) read the outcomes of
the practitioners sanctioned at the institution or everywhere, and of those with a violation
there; of everyone else they read only how many are registered on a day. So the recompute keeps
the first set in table ``staff_inputs`` (written when a practitioner is re-judged, like every
projection) and counts the rest in SQL: re-judging a 15,000-staff hospital after one officer's
action reads a few rows and one aggregate, not 15,000 outcomes (issue 14).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Text, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import staff_heads, staff_inputs
from app.policy import StaffCounts

# Every status any institution rule counts; a superset for a profile is harmless (its rules
# skip what they do not count), a subset would not be.
STATUSES_READ = frozenset({"warning", "suspended", "terminated"})


def read_by_rules(code: str, outcome: Mapping[str, Any] | None, violation_here: bool) -> bool:
    """Whether the rules of institution ``code`` read this staff member's stored outcome."""
    if outcome is None:
        return False
    return violation_here or any(
        iv["status"] in STATUSES_READ and iv.get("institution") in (None, code)
        for iv in outcome["intervals"]
    )


async def keep(
    conn: AsyncConnection, tokens: Iterable[str], read: Iterable[tuple[str, str]]
) -> None:
    """Replace the rows of ``tokens`` (practitioners just re-judged, their rows locked) by
    ``read``: (institution, practitioner) pairs."""
    tokens = list(tokens)
    if not tokens:
        return
    pairs = sorted(set(read))
    await conn.execute(
        _KEEP,
        {
            "tokens": tokens,
            "insts": [i for i, _ in pairs],
            "people": [t for _, t in pairs],
        },
    )


# One statement (a round trip fewer for every write, issue 14): the rows of ``tokens`` not in
# the new set go, the new ones not yet there come. No row is both deleted and inserted, so the
# two parts, which see one snapshot, never meet.
_KEEP = text(
    """
    WITH new AS (
        SELECT * FROM unnest(CAST(:insts AS text[]), CAST(:people AS text[])) AS n(i, t)
    ), gone AS (
        DELETE FROM staff_inputs s
         WHERE s.practitioner_token = ANY(:tokens)
           AND NOT EXISTS (SELECT 1 FROM new
                            WHERE new.i = s.institution_code AND new.t = s.practitioner_token)
    )
    INSERT INTO staff_inputs (institution_code, practitioner_token)
    SELECT i, t FROM new ORDER BY i, t
    ON CONFLICT DO NOTHING
    """
).bindparams(
    bindparam("tokens", type_=ARRAY(Text)),
    bindparam("insts", type_=ARRAY(Text)),
    bindparam("people", type_=ARRAY(Text)),
)


async def read_staff(conn: AsyncConnection, code: str) -> list[str]:
    """The practitioners whose outcome the rules of ``code`` read."""
    return sorted(
        t
        for (t,) in await conn.execute(
            staff_inputs.select()
            .with_only_columns(staff_inputs.c.practitioner_token)
            .where(staff_inputs.c.institution_code == code)
        )
    )


# Distinct practitioners registered per day, as the days the count changes: each
# practitioner's registrations here summed into their own coverage (two departments at once
# count once), and a change emitted where that coverage starts or stops. One sort of the
# institution's registrations, however many days the rules ask about.
_CHANGES = text(
    """
    WITH r AS (
        SELECT g.practitioner_token AS p, g.start AS d, 1 AS k
          FROM registrations g
         WHERE g.institution_code = :code AND (g."end" IS NULL OR g."end" > g.start)
        UNION ALL
        SELECT g.practitioner_token, g."end", -1
          FROM registrations g
         WHERE g.institution_code = :code AND g."end" > g.start
    ), per_day AS (
        SELECT p, d, sum(k) AS k FROM r GROUP BY p, d
    ), covered AS (
        SELECT p, d, k, sum(k) OVER (PARTITION BY p ORDER BY d) AS c FROM per_day
    )
    SELECT c.d, pr.category,
           sum(CASE WHEN c.c > 0 AND c.c - c.k <= 0 THEN 1
                    WHEN c.c <= 0 AND c.c - c.k > 0 THEN -1 ELSE 0 END) AS delta
      FROM covered c JOIN practitioners pr ON pr.token = c.p
     GROUP BY c.d, pr.category
    """
)


async def staff_counts(conn: AsyncConnection, code: str, *, recount: bool = True) -> StaffCounts:
    """How many practitioners are registered at ``code`` on each day, per category: counted
    and kept, or (``recount`` false) as last kept when there is such a count."""
    if not recount:
        kept = (
            await conn.execute(
                select(staff_heads.c.changes).where(staff_heads.c.institution_code == code)
            )
        ).scalar_one_or_none()
        if kept is not None:
            return StaffCounts.from_changes((dt.date.fromisoformat(d), c, n) for d, c, n in kept)
    changes: list[tuple[dt.date, str, int]] = [
        (d, cat, int(delta))
        for d, cat, delta in await conn.execute(_CHANGES, {"code": code})
        if delta
    ]
    stmt = insert(staff_heads).values(
        institution_code=code, changes=[[d.isoformat(), c, n] for d, c, n in changes]
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[staff_heads.c.institution_code], set_={"changes": stmt.excluded.changes}
        )
    )
    return StaffCounts.from_changes(changes)
