"""The what-if: the policy engine on a list of events, writing nothing.

Input::

    {"profile": "jining-2024", "as_of": "2026-12-31",
     "categories": {"P1": "doctor"},                      # optional; default doctor
     "events": [{"type": "registration", "practitioner": "P1", "institution": "H1",
                 "department": "D1", "start": "2024-01-01"},
                {"type": "violation", "id": "v1", "practitioner": "P1", "institution": "H1",
                 "date": "2025-03-02", "points": 6},
                {"type": "violation", "id": "v2", "practitioner": "P1", "institution": "H1",
                 "date": "2025-04-01", "item_id": "4.2.2", "act": "A1", "inspection": "I1"},
                {"type": "appeal", "violation": "v1", "outcome": "upheld", "date": "2025-04-01"},
                {"type": "exam", "practitioner": "P1", "date": "2025-06-02", "passed": true},
                {"type": "bonus", "practitioner": "P1", "date": "2025-05-02", "points": 2},
                {"type": "carried_over", "practitioner": "P1", "institution": "H1",
                 "as_of": "2025-06-30", "source": "roster.xlsx", "points": 4,
                 "status": "suspended", "since": "2025-05-01"},
                {"type": "agreement", ...}, {"type": "manual", ...},
                {"type": "institution_action", ...}, {"type": "department_action", ...}]}

A violation may name its act in the profile's catalogue (``item_id``, issue 19): it is priced
as the admin write prices it (a fixed item's points; ``points`` within a range item's range;
other points with ``exception_reason``), by the profile version in force on its date. One
without an item takes its ``points`` as given: a what-if of points entered by hand.
``act``/``inspection`` group findings as the profile's combination rule says (济宁 §四).

Output: timelines per practitioner per institution, per department, per institution, and the
notices; each interval ``{"from", "to", "status", "rule", "message"}``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from app.errors import key_name
from app.policy import (
    Agreement,
    Appeal,
    Bonus,
    CarriedOver,
    DepartmentAction,
    Event,
    Exam,
    InstitutionAction,
    Interval,
    ManualAction,
    Notice,
    Registration,
    Violation,
    WorkingCalendar,
    evaluate,
    load_profiles,
)
from app.policy.catalogue import CatalogueError, price
from app.policy.profile import Profile

_TYPES: dict[str, type[Any]] = {
    "registration": Registration,
    "agreement": Agreement,
    "violation": Violation,
    "appeal": Appeal,
    "exam": Exam,
    "bonus": Bonus,
    "manual": ManualAction,
    "institution_action": InstitutionAction,
    "department_action": DepartmentAction,
    "carried_over": CarriedOver,
}
_DATES = frozenset({"start", "end", "date", "as_of", "since", "until"})
_CARRIED_STATUSES = ("", "suspended", "terminated")


class SimulationError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# violation fields set from the catalogue, and read only to price it
_PRICED = frozenset({"catalogue"})
_PRICING = frozenset({"exception_reason"})
_OPTIONAL = frozenset(
    {"end", "institution", "department", "item", "item_id", "act", "inspection"}
    | {"points", "status", "since", "until"}  # an opening balance's, which default to none
)


def _event(i: int, raw: Any, profile: Profile) -> Event:
    where = f"events.{i}"
    if not isinstance(raw, dict):
        raise SimulationError(where, "must be an object")
    kind = raw.get("type")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SimulationError(f"{where}.type", f"must be one of {', '.join(_TYPES)}")
    names = {f.name for f in fields(cls)}
    if cls is Violation:
        names = names - _PRICED | _PRICING
    unknown = set(raw) - names - {"type"}
    if unknown:
        first = sorted(unknown, key=str)[0]
        raise SimulationError(f"{where}.{key_name(first)}", "is not a field of this event type")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in _PRICED and cls is Violation:
            continue
        if f.name not in raw:
            if f.name in _OPTIONAL:
                continue  # optional fields keep their defaults / None
            if f.name == "points" and "item_id" in raw:
                continue  # the catalogue gives it
            raise SimulationError(f"{where}.{f.name}", "is required")
        v = raw[f.name]
        if f.name in _DATES and v is not None:
            try:
                v = date.fromisoformat(v)
            except (TypeError, ValueError):
                raise SimulationError(f"{where}.{f.name}", "must be an ISO date") from None
        kwargs[f.name] = v
    if cls in (ManualAction, InstitutionAction, DepartmentAction, Registration, Agreement):
        kwargs.setdefault("end", None)
    if cls is ManualAction:
        kwargs.setdefault("institution", None)
    if cls in (ManualAction, InstitutionAction, DepartmentAction):
        kwargs.setdefault("reason", "simulation")
    if cls is Violation:
        kwargs.update(_priced(where, raw, kwargs, profile))
    if cls is CarriedOver:
        _check_balance(where, kwargs)
    try:
        ev: Event = cls(**kwargs)
    except TypeError as exc:
        raise SimulationError(where, str(exc)) from None
    return ev


def _check_balance(where: str, kwargs: dict[str, Any]) -> None:
    """An opening balance as the import reads one: whole points, a known status."""
    points = kwargs.get("points", 0)
    if not isinstance(points, int) or isinstance(points, bool) or points < 0:
        raise SimulationError(f"{where}.points", "must be a whole number, 0 or more")
    if kwargs.get("status", "") not in _CARRIED_STATUSES:
        raise SimulationError(f"{where}.status", "must be one of suspended, terminated")
    for name in ("source", "practitioner"):
        if not isinstance(kwargs.get(name), str):
            raise SimulationError(f"{where}.{name}", "must be a string")


def _priced(
    where: str, raw: dict[str, Any], kwargs: dict[str, Any], profile: Profile
) -> dict[str, Any]:
    """A violation naming an item (or an exception) priced by the catalogue of its date."""
    for name in ("item_id", "act", "inspection", "exception_reason"):
        if name in raw and not isinstance(raw[name], str):
            raise SimulationError(f"{where}.{name}", "must be a string")
    kwargs.pop("exception_reason", None)
    if "item_id" not in raw and "exception_reason" not in raw:
        return {}
    points = raw.get("points")
    if points is not None and (not isinstance(points, int) or isinstance(points, bool)):
        raise SimulationError(f"{where}.points", "must be a whole number")
    day = kwargs.get("date")
    if not isinstance(day, date):
        raise SimulationError(f"{where}.date", "must be an ISO date")
    try:
        out = price(
            profile,
            day,
            item_id=raw.get("item_id"),
            points=points,
            exception_reason=raw.get("exception_reason"),
        )
    except CatalogueError as exc:
        raise SimulationError(f"{where}.{exc.field}", exc.message) from None
    return {"points": out.points, "catalogue": out.catalogue}


def _iv(iv: Interval) -> dict[str, Any]:
    return {
        "from": iv.start.isoformat(),
        "to": iv.end.isoformat() if iv.end else None,
        "status": iv.status,
        "rule": iv.rule,
        "message": iv.message,
    }


def _notice(n: Notice) -> dict[str, Any]:
    return {
        "date": n.date.isoformat(),
        "kind": n.kind,
        "subject": n.subject,
        "rule": n.rule,
        "until": n.until.isoformat() if n.until else None,
        "detail": n.detail,
    }


def simulate(body: Mapping[str, Any], calendar: WorkingCalendar | None = None) -> dict[str, Any]:
    profiles = load_profiles()
    pid = body.get("profile")
    if pid not in profiles:
        raise SimulationError("profile", f"must be one of {', '.join(sorted(profiles))}")
    as_of_raw = body.get("as_of")
    try:
        as_of = date.fromisoformat(as_of_raw) if as_of_raw is not None else None
    except (TypeError, ValueError):
        raise SimulationError("as_of", "must be an ISO date") from None
    raw_events = body.get("events")
    if not isinstance(raw_events, list):
        raise SimulationError("events", "must be a list")
    events = [_event(i, e, profiles[pid]) for i, e in enumerate(raw_events)]
    categories = dict(body.get("categories") or {})
    for e in events:
        p = getattr(e, "practitioner", None)
        if p is not None:
            categories.setdefault(p, "doctor")
    result = evaluate(profiles[pid], events, categories, calendar or WorkingCalendar(), as_of)

    sites: dict[str, set[str]] = {}
    for e in events:
        p, i = getattr(e, "practitioner", None), getattr(e, "institution", None)
        if p is not None and i is not None:
            sites.setdefault(p, set()).add(i)
    practitioners: dict[str, Any] = {}
    notices = []
    for code, out in sorted(result.practitioners.items()):
        per_inst = {
            inst: [_iv(iv) for iv in out.intervals if iv.institution in (None, inst)]
            for inst in sorted(sites.get(code, set()))
        }
        everywhere = [_iv(iv) for iv in out.intervals if iv.institution is None]
        practitioners[code] = {
            "by_institution": per_inst,
            "everywhere": everywhere,
            "periods": [
                {
                    "from": pp.start.isoformat(),
                    "to": pp.end.isoformat(),
                    "points": pp.points,
                    "violations": list(pp.violations),
                }
                for pp in out.periods
            ],
        }
        notices += [_notice(n) for n in out.notices]
    departments = {
        f"{inst}/{dept}": [_iv(iv) for iv in out.intervals]
        for (inst, dept), out in sorted(result.departments.items())
    }
    for d_out in result.departments.values():
        notices += [_notice(n) for n in d_out.notices]
    institutions = {
        code: [_iv(iv) for iv in out.intervals] for code, out in sorted(result.institutions.items())
    }
    for i_out in result.institutions.values():
        notices += [_notice(n) for n in i_out.notices]
    notices.sort(key=lambda n: (n["date"], n["subject"], n["kind"]))
    return {
        "profile": pid,
        "as_of": as_of.isoformat() if as_of else None,
        "practitioners": practitioners,
        "departments": departments,
        "institutions": institutions,
        "notices": notices,
    }


def simulate_file(path: Path, out: Callable[[bytes], Any] = sys.stdout.buffer.write) -> int:
    try:
        body = orjson.loads(path.read_bytes())
        out(orjson.dumps(simulate(body), option=orjson.OPT_INDENT_2) + b"\n")
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
