"""Every endpoint fuzzed from the service's own OpenAPI document (schemathesis, bounded
examples) against a real server on a loopback port: no 5xx, and every answer — status code,
content type and body — matches what the document promises."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.main import create_app
from app.auth.keys import create_key
from app.db.engine import make_engine
from app.embedded import free_port
from app.settings import Settings
from tests.conftest import Servers, make_settings, reset

schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="x", redis_url="redis://y")).openapi()
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def _prepare(s: Settings) -> dict[str, str]:
    engine = make_engine(s)
    keys: dict[str, str] = {}
    try:
        async with engine.begin() as conn:
            for role in ("his", "gateway", "agency", "ops"):
                _, keys[role] = await create_key(
                    conn, role, ["H37080200001"] if role == "his" else []
                )
    finally:
        await engine.dispose()
    return keys


@pytest.fixture(scope="module")
def live(servers: Servers) -> Iterator[tuple[str, dict[str, str]]]:
    asyncio.run(reset(servers))
    s = make_settings(servers)
    keys = asyncio.run(_prepare(s))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(s),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            loop="asyncio",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        server.should_exit = True
        thread.join(10)


def _role(path: str) -> str:
    if path.startswith("/v1/admin"):
        return "agency"
    if path.startswith("/v1/ops"):
        return "ops"
    return "gateway"


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_endpoint_against_its_own_document(
    case: Any, live: tuple[str, dict[str, str]]
) -> None:
    base_url, keys = live
    headers = {"Authorization": f"Bearer {keys[_role(case.path)]}"}
    if case.path == "/v1/admin/violations":
        headers["Idempotency-Key"] = f"fuzz-{time.monotonic_ns()}"
    case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
