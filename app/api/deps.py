"""Dependencies: the runtime, and the caller's principal checked against the route's roles.

Every protected route names its roles where ``route_roles`` can find them (a ``require(...)``
dependency, or ``admits(...)`` on an endpoint that authorizes in its body to keep the hot path
free of the dependency machinery), so the validation handler can refuse a bad key before it
would answer 422: FastAPI parses and validates the body before the endpoint runs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request

from app.api.runtime import Runtime
from app.auth.keys import Principal
from app.errors import Forbidden, Unauthorized


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


NO_KEY = "send 'Authorization: Bearer <key>'; keys are issued with `claimgate keys create`"
UNKNOWN_KEY = "unknown or revoked API key"


def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    # The scheme name is case-insensitive (RFC 9110 §11.1); the key itself is not.
    if not header or header[:7].lower() != "bearer ":
        raise Unauthorized(NO_KEY, headers={"WWW-Authenticate": "Bearer"})
    principal = runtime(request).keys.verify(header[7:].strip())
    if principal is None:
        raise Unauthorized(UNKNOWN_KEY, headers={"WWW-Authenticate": "Bearer"})
    return principal


def authorize(request: Request, roles: tuple[str, ...]) -> Principal:
    principal = authenticate(request)
    if principal.role not in roles:
        raise Forbidden(
            f"this route needs role {' or '.join(roles)}; the key has role {principal.role}",
            code="ROLE_FORBIDDEN",
        )
    return principal


def require(*roles: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    async def dep(request: Request) -> Principal:
        return authorize(request, roles)

    dep.roles = roles  # type: ignore[attr-defined]  # read by route_roles
    return dep


F = TypeVar("F", bound=Callable[..., Any])


def admits(*roles: str) -> Callable[[F], F]:
    """Mark an endpoint that calls ``authorize(request, roles)`` itself."""

    def mark(fn: F) -> F:
        setattr(fn, "roles", roles)  # noqa: B010  # a function attribute mypy cannot see
        return fn

    return mark


def route_roles(route: object) -> tuple[str, ...] | None:
    """The roles a route admits, or None for an open route (health, docs)."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        d = stack.pop()
        roles: tuple[str, ...] | None = getattr(d.call, "roles", None)
        if roles:
            return roles
        stack.extend(d.dependencies)
    return None
