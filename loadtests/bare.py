"""``bare``: the ceiling of this stack. The same route and request body as a claimgate check,
validated by the same ``CheckIn`` model, answered with a fixed document — no auth, no lookup."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from app.checks.schemas import BatchIn, CheckIn

_ONE = orjson.dumps(
    {
        "decision": "allow",
        "reasons": [],
        "source": "cache",
        "checked_at": "2026-11-23T00:00:00.000+00:00",
        "decision_id": "0" * 32,
        "service_date": "2026-11-23",
        "data_version": {"institution": 1, "practitioner": 1},
    }
)


def create_app() -> FastAPI:
    app = FastAPI(title="bare")

    @app.post("/v1/checks")
    async def check(body: CheckIn) -> Response:
        return Response(_ONE, media_type="application/json")

    @app.post("/v1/checks/batch")
    async def check_batch(body: BatchIn) -> Response:
        out = b'{"results":[' + b",".join([_ONE] * len(body.checks)) + b'],"source":"cache"}'
        return Response(out, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app
