"""Building the documents a check reads from entity rows and the engine's outcomes.

The shapes are named in app.cache.shapes, which every reader imports too; they are compact
(short keys, rows as lists) because millions of practitioner views live in Redis.

Rows are built as lists, never tuples: a new document is compared with the stored one (JSONB,
read back as lists) to decide whether it changed, and ``[a] != (a,)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, cast

from app.cache.shapes import (
    FROM,
    RULE,
    STATUS,
    TO,
    AgreementRow,
    AliasDoc,
    DepartmentDoc,
    InstitutionAliasDoc,
    InstitutionDoc,
    IntervalRow,
    KnownDoc,
    RegistrationRow,
    ViewDoc,
)
from app.policy import (
    DepartmentOutcome,
    InstitutionOutcome,
    Interval,
    PractitionerOutcome,
    Profile,
)


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def interval_row(iv: Interval) -> IntervalRow:
    row: list[Any] = [
        _iso(iv.start),
        _iso(iv.end),
        iv.status,
        iv.rule,
        iv.message,
        1 if iv.emergency_exempt else 0,
    ]
    return cast(IntervalRow, row)  # a list, read as the tuple it is typed as


def _sorted(rows: Iterable[IntervalRow]) -> list[IntervalRow]:
    return sorted(rows, key=lambda r: (r[FROM], r[TO] or "9999", r[STATUS], r[RULE]))


def institution_doc(
    *,
    name: str,
    region: str,
    profile: Profile,
    departments: Mapping[str, str],
    outcome: InstitutionOutcome | None,
    department_outcomes: Mapping[str, DepartmentOutcome],
    department_aliases: Mapping[str, str],
) -> InstitutionDoc:
    depts: dict[str, DepartmentDoc] = {}
    for code, dname in sorted(departments.items()):
        d_out = department_outcomes.get(code)
        depts[code] = {
            "n": dname,
            "s": _sorted(interval_row(iv) for iv in d_out.intervals) if d_out else [],
        }
    doc: InstitutionDoc = {
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
) -> ViewDoc:
    """The practitioner as seen by checks at one institution."""
    blocking: list[IntervalRow] = []
    warnings: list[IntervalRow] = []
    for iv in outcome.intervals if outcome else ():
        if iv.institution is not None and iv.institution != institution:
            continue
        (warnings if iv.status == "warning" else blocking).append(interval_row(iv))
    regs: list[list[Any]] = sorted([d, _iso(s), _iso(e)] for d, s, e in registrations)
    agrs: list[list[Any]] = sorted([_iso(s), _iso(e)] for s, e in agreements)
    return {
        "c": display_code,
        "k": category,
        "r": cast(list[RegistrationRow], regs),
        "a": cast(list[AgreementRow], agrs),
        "s": _sorted(blocking),
        "w": _sorted(warnings),
    }


def known_doc(display_code: str) -> KnownDoc:
    return {"c": display_code}


def alias_doc(token: str | None) -> AliasDoc:
    """None: the alias was removed (a check reads it as no alias)."""
    return {"t": token}


def institution_alias_doc(institution: str | None) -> InstitutionAliasDoc:
    """None: the alias was removed (a check reads it as an unknown code)."""
    return {"t": institution}
