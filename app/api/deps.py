"""Dependencies: the runtime, and the caller's principal checked against the route's roles."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request

from app.api.runtime import Runtime
from app.auth.keys import Principal
from app.errors import Forbidden, Unauthorized


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header or not header.startswith("Bearer "):
        raise Unauthorized(
            "send 'Authorization: Bearer <key>'; keys are issued with `claimgate keys create`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = runtime(request).keys.verify(header[7:].strip())
    if principal is None:
        raise Unauthorized("unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(*roles: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    async def dep(request: Request) -> Principal:
        principal = authenticate(request)
        if principal.role not in roles:
            raise Forbidden(
                f"this route needs role {' or '.join(roles)}; the key has role {principal.role}",
                code="ROLE_FORBIDDEN",
            )
        return principal

    dep.roles = roles  # type: ignore[attr-defined]  # read by the route-table test
    return dep
