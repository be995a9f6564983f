"""The what-if: the policy engine on a list of events, writing nothing.

Input::

    {"profile": "jining-2024", "as_of": "2026-12-31",
     "categories": {"P1": "doctor"},                      # optional; default doctor
     "events": [{"type": "registration", "practitioner": "P1", "institution": "H1",
                 "department": "D1", "start": "2024-01-01"},
                {"type": "violation", "id": "v1", "practitioner": "P1", "institution": "H1",
                 "date": "2025-03-02", "points": 6},
                {"type": "appeal", "violation": "v1", "outcome": "upheld", "date": "2025-04-01"},
                {"type": "exam", "practitioner": "P1", "date": "2025-06-02", "passed": true},
                {"type": "bonus", "practitioner": "P1", "date": "2025-05-02", "points": 2},
                {"type": "agreement", ...}, {"type": "manual", ...},
                {"type": "institution_action", ...}, {"type": "department_action", ...}]}

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
}
_DATES = frozenset({"start", "end", "date"})


class SimulationError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _event(i: int, raw: Any) -> Event:
    where = f"events.{i}"
    if not isinstance(raw, dict):
        raise SimulationError(where, "must be an object")
    kind = raw.get("type")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SimulationError(f"{where}.type", f"must be one of {', '.join(_TYPES)}")
    names = {f.name for f in fields(cls)}
    unknown = set(raw) - names - {"type"}
    if unknown:
        first = sorted(unknown, key=str)[0]
        raise SimulationError(f"{where}.{key_name(first)}", "is not a field of this event type")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            if f.name in ("end", "institution", "department", "item"):
                continue  # optional fields keep their defaults / None
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
    try:
        ev: Event = cls(**kwargs)
    except TypeError as exc:
        raise SimulationError(where, str(exc)) from None
    return ev


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
    events = [_event(i, e) for i, e in enumerate(raw_events)]
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
