"""Typed business errors, each with its HTTP status and stable code, rendered as problem+json.

ProblemError            (status, code, detail, field)
├── NotFound            404 — a referenced institution, department, practitioner, ... is missing
├── InvalidField        422 — a value is well-formed JSON but wrong for the domain
├── Conflict            409 — e.g. an Idempotency-Key reused with another body
├── Forbidden / Unauthorized
└── Unavailable         503 — a dependency is down; never a guessed answer
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}").fullmatch


def key_name(key: object) -> str:
    """A key as an error's field path may show it. Field names are identifiers; a key that is
    not one was chosen by the caller and may be anything (a name, an ID number), so it is not
    repeated: ``body.<key>`` stands for it."""
    if isinstance(key, int) or (isinstance(key, str) and _NAME(key)):
        return str(key)
    return "<key>"


class ProblemError(Exception):
    status = 400
    code = "BAD_REQUEST"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": f"https://claimgate.dev/problems/{self.code.lower()}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.field is not None:
            out["errors"] = [{"field": self.field, "message": self.detail}]
        out.update(self.extra)
        return out


class NotFound(ProblemError):
    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class InvalidField(ProblemError):
    status = 422
    code = "INVALID_FIELD"
    title = "Invalid field"


class Conflict(ProblemError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class Unauthorized(ProblemError):
    status = 401
    code = "UNAUTHORIZED"
    title = "Missing or unknown API key"


class Forbidden(ProblemError):
    status = 403
    code = "FORBIDDEN"
    title = "Forbidden"


class PayloadTooLarge(ProblemError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "Payload too large"


class Unavailable(ProblemError):
    status = 503
    code = "GATE_UNAVAILABLE"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 1, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(retry_after)})
