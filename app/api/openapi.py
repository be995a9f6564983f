"""The OpenAPI document as integrators (and the schemathesis fuzz test) read it: every error
any route can give, documented once as application/problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable, upper-case; see docs/contract.md"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

# Errors every /v1 route may answer, whatever its own logic: the edge guard (413, 415, 503
# OVERLOADED), authentication (401, 403), body parsing (400, 422) and the stores (503).
COMMON = {
    "400": "malformed body",
    "401": "missing, unknown or revoked key",
    "403": "role or institution not allowed",
    "404": "not found",
    "413": "body or batch too large",
    "415": "body not sent as JSON",
    "422": "invalid field; `errors` names it",
    "503": "a store is unavailable or the process is overloaded; see Retry-After",
}
ADMIN = {"409": "Idempotency-Key reused with another body, or already decided"}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, ops in doc["paths"].items():
            for op in ops.values():
                responses = op.setdefault("responses", {})
                if path.startswith("/v1"):
                    extra = {**COMMON, **(ADMIN if path.startswith("/v1/admin") else {})}
                    for status, description in extra.items():
                        responses.setdefault(status, {"description": description})
                for status, resp in responses.items():
                    if status[0] in "45":
                        resp["content"] = problem
                if path.startswith("/v1/national") and "503" in responses:
                    # GATE_UNAVAILABLE in the platform's envelope; OVERLOADED from the edge.
                    responses["503"]["content"] = {
                        **problem,
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/NationalAnswer"}
                        },
                    }
                if path == "/readyz":
                    responses["503"] = {"description": "not ready; the same JSON as 200"}
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
