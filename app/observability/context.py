"""What the request being served is called in log lines: its request id, and what the layers
below the HTTP edge learn about it on the way (the key's id, the decision id of a single check).

One mutable dict per request in a context variable: the middleware (app.observability.requests)
sets it before the app runs and reads it back after, whatever tasks or context copies the app
made in between — a layer below writes into the dict, never sets the variable.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from app.unique_ids import ProcessIds

REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("claimgate_request", default=None)

# A request id we were sent is repeated in our logs and answers, so it is accepted only when it
# is short, made of a safe alphabet, and cannot be a resident ID number or a phone number (no
# run of 11 digits): an HIS that files its own ids may well use a patient's number.
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}").fullmatch
_DIGIT_RUN = re.compile(rb"[0-9]{11}").search


# A new request id: it names a request in logs (app.unique_ids).
new_request_id = ProcessIds()


def request_id(sent: bytes | None) -> bytes:
    """The id of a request: the ``X-Request-ID`` it carried when that is safe to repeat, else a
    new one (32 hex digits)."""
    if sent is not None and _SAFE_ID(sent) is not None and _DIGIT_RUN(sent) is None:
        return sent
    return new_request_id()


def note(key: str, value: Any) -> None:
    """Tell the request's log line something (a no-op outside a request)."""
    ctx = REQUEST.get()
    if ctx is not None:
        ctx[key] = value


def current_request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    ctx = REQUEST.get()
    return None if ctx is None else ctx.get("request_id")
