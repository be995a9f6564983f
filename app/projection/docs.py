"""Building the documents a check reads from entity rows and the engine's outcomes.

The shapes are documented in app.checks.decide; they are compact (short keys, intervals as
lists) because millions of practitioner views live in Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from app.policy import (
    DepartmentOutcome,
    InstitutionOutcome,
    Interval,
    PractitionerOutcome,
    Profile,
)


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def interval_row(iv: Interval) -> list[Any]:
    return [
        _iso(iv.start),
        _iso(iv.end),
        iv.status,
        iv.rule,
        iv.message,
        1 if iv.emergency_exempt else 0,
    ]


def _sorted(rows: Iterable[list[Any]]) -> list[list[Any]]:
    return sorted(rows, key=lambda r: (r[0], r[1] or "9999", r[2], r[3]))


def institution_doc(
    *,
    name: str,
    region: str,
    profile: Profile,
    departments: Mapping[str, str],
    outcome: InstitutionOutcome | None,
    department_outcomes: Mapping[str, DepartmentOutcome],
    department_aliases: Mapping[str, str],
) -> dict[str, Any]:
    depts: dict[str, Any] = {}
    for code, dname in sorted(departments.items()):
        d_out = department_outcomes.get(code)
        depts[code] = {
            "n": dname,
            "s": _sorted(interval_row(iv) for iv in d_out.intervals) if d_out else [],
        }
    doc: dict[str, Any] = {
        "n": name,
        "rg": region,
        "pf": profile.id,
        "ee": 1 if profile.emergency_exempt else 0,
        "ar": 1 if profile.agreement_required else 0,
        "s": _sorted(
            interval_row(iv)
            for iv in (outcome.intervals if outcome else ())
            if iv.status != "warning"
        ),
        "d": depts,
    }
    if department_aliases:
        doc["da"] = dict(sorted(department_aliases.items()))
    return doc


def view_doc(
    *,
    institution: str,
    display_code: str,
    category: str,
    registrations: Iterable[tuple[str, date, date | None]],
    agreements: Iterable[tuple[date, date | None]],
    outcome: PractitionerOutcome | None,
) -> dict[str, Any]:
    """The practitioner as seen by checks at one institution."""
    blocking: list[list[Any]] = []
    warnings: list[list[Any]] = []
    for iv in outcome.intervals if outcome else ():
        if iv.institution is not None and iv.institution != institution:
            continue
        (warnings if iv.status == "warning" else blocking).append(interval_row(iv))
    return {
        "c": display_code,
        "k": category,
        "r": sorted([d, _iso(s), _iso(e)] for d, s, e in registrations),
        "a": sorted([_iso(s), _iso(e)] for s, e in agreements),
        "s": _sorted(blocking),
        "w": _sorted(warnings),
    }


def known_doc(display_code: str) -> dict[str, Any]:
    return {"c": display_code}


def alias_doc(token: str) -> dict[str, Any]:
    return {"t": token}
