"""Hostile and malformed input: always a 4xx problem+json naming the field, never a 5xx, and
nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

LINE = {"institution_code": f.INST, "department_code": "A01", "practitioner_code": f.DOC}


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [
        (b'{"institution_code": "H37080200001"', "application/json", 400),  # truncated JSON
        (b"\xff\xfe{}", "application/json", 400),  # invalid UTF-8 (the stdlib read it as UTF-16)
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),  # deep nesting
        (b'{"emergency": NaN}', "application/json", 400),  # not JSON, though the stdlib reads it
        (b"institution_code=H37080200001", "application/x-www-form-urlencoded", 415),
        (b"<check/>", "text/xml", 415),
        (b"", "application/json", 400),
    ],
)
async def test_malformed_bodies_get_a_4xx_problem(
    h: Harness, content: bytes, ctype: str, status: int
) -> None:
    r = await h.client.post(
        "/v1/checks", content=content, headers={**h.auth("his"), "content-type": ctype}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status
    if status == 400:
        assert r.json()["code"] == "MALFORMED_BODY"


async def test_missing_content_type_is_415(h: Harness) -> None:
    r = await h.client.post("/v1/checks", content=b"{}", headers=h.auth("his"))
    assert r.status_code == 415


async def test_wrong_shapes_name_each_field(h: Harness) -> None:
    r = await h.client.post(
        "/v1/checks",
        json={
            "institution_code": 5,
            "department_code": ["A01"],
            "practitioner_code": None,
            "service_date": "99999-01-01",
        },
        headers=h.auth("his"),
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {
        "body.institution_code",
        "body.department_code",
        "body.practitioner_code",
        "body.service_date",
    } <= fields


async def test_a_bad_admin_body_writes_nothing(h: Harness) -> None:
    r = await h.client.post(
        "/v1/admin/bulk",
        content=b'{"institutions": [{"code": "H37080200001", "name": "x", "region_code": "370800"}], "oops": [',
        headers={**h.auth("agency"), "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "MALFORMED_BODY"
    async with h.runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM institutions"))).scalar_one() == 0


async def test_a_batch_of_wrong_type_is_422(h: Harness) -> None:
    r = await h.client.post("/v1/checks/batch", json={"checks": LINE}, headers=h.auth("his"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.checks"


async def test_past_the_inflight_bound_a_fast_503_with_retry_after(servers: Servers) -> None:
    await reset(servers)
    async for h in start_harness(make_settings(servers, max_inflight=1)):
        await f.world(h)
        await h.synced()
        # Hold one request in flight (the Redis pool waits on a blocked connection), then ask again.
        from app.api.limits import EdgeGuard

        app = h.client._transport.app  # type: ignore[attr-defined]
        guard = app.middleware_stack
        while not isinstance(guard, EdgeGuard):
            guard = guard.app
        guard.inflight = 1  # as if one request were being served
        r = await h.client.post(
            "/v1/checks", json={**LINE, "service_date": "2026-11-22"}, headers=h.auth("his")
        )
        assert r.status_code == 503
        assert r.json()["code"] == "OVERLOADED"
        assert r.headers["retry-after"] == "1"
        assert (await h.client.get("/healthz")).status_code == 200  # dashboards still see it alive
        guard.inflight = 0
        r = await h.client.post(
            "/v1/checks", json={**LINE, "service_date": "2026-11-22"}, headers=h.auth("his")
        )
        assert r.status_code == 200


async def test_an_unparseable_body_without_a_key_is_401_not_400(h: Harness) -> None:
    r = await h.client.post(
        "/v1/checks",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 401
