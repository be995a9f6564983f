"""Engine outcomes to and from JSON, so they can be kept between writes (table ``outcomes``)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date
from typing import Any

from app.policy import Interval, Notice, PeriodPoints, PractitionerOutcome

_DATE_FIELDS = frozenset({"start", "end", "date", "until"})


def to_json(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_json(x) for x in obj]
    if isinstance(obj, date):
        return obj.isoformat()
    return obj


def _record(cls: type[Any], data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        if f.name in _DATE_FIELDS and isinstance(v, str):
            v = date.fromisoformat(v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def practitioner_outcome(data: dict[str, Any]) -> PractitionerOutcome:
    return PractitionerOutcome(
        practitioner=data["practitioner"],
        intervals=tuple(_record(Interval, x) for x in data["intervals"]),
        notices=tuple(_record(Notice, x) for x in data["notices"]),
        periods=tuple(_record(PeriodPoints, x) for x in data["periods"]),
    )
