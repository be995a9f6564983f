"""One claim line as the check path carries it: codes normalised, the service day resolved."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Line:
    institution: str
    department: str
    practitioner: str
    day: str  # ISO date: ISO order is date order, so the decision compares strings
    emergency: bool
    claim_id: str | None
