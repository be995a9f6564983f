"""Every route of the app, walked from its route table: no key, an unknown key, a key of a
wrong role and a revoked key are refused (401/403 problem+json) before anything about the
request body or path is looked at; the right role gets through. And a ``his`` key may only
check its own institutions, in a batch too.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import iter_route_contexts

from app.api.deps import route_roles
from app.api.main import create_app
from app.auth.keys import ROLES, create_key, revoke_key
from app.cache.layout import keys_channel
from app.settings import Settings
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

OPEN = re.compile(r"^/(healthz|readyz|startupz|metrics|openapi\.json|docs.*|redoc.*)$")
OTHER_INST = "H37081100002"

SAMPLES = {
    "department_code": "A01",
    "kind": "practitioner",
    "local_code": "L1",
    "day": "2026-10-01",
    "infno": "3101",
}


def allowed_roles(path: str) -> set[str]:
    """The policy, written down independently of the code."""
    if path.startswith(("/v1/checks", "/v1/national")):
        return {"his", "gateway"}
    if path.startswith("/v1/admin/"):
        return {"agency"}
    if path.startswith("/v1/ops/"):
        return {"ops"}
    raise AssertionError(f"{path}: a route outside the known families; add it to the policy")


def _sample(path: str, name: str) -> str:
    if name == "code":
        return f.DOC if "/practitioners/{code}" in path else f.INST
    if name.endswith("_id"):
        return "1"
    if name in SAMPLES:
        return SAMPLES[name]
    raise AssertionError(f"{path}: no sample value for path parameter {{{name}}}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    roles: set[str]

    @property
    def path(self) -> str:
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: _sample(self.template, m[1]), self.template)

    @property
    def garbled_path(self) -> str:
        """Every path parameter replaced by a value no validator accepts."""
        return re.sub(r"\{(\w+)(?::\w+)?\}", "%20!!", self.template)

    @property
    def has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")


def protected_endpoints(settings: Settings) -> list[Endpoint]:
    app = create_app(settings)
    out = []
    for rc in iter_route_contexts(app.routes):
        path = rc.path
        assert path is not None
        if OPEN.match(path):
            assert route_roles(rc.original_route) is None, f"{path} is meant to be open"
            continue
        expected = allowed_roles(path)
        declared = route_roles(rc.original_route)
        assert declared is not None, f"{path} declares no role"
        assert set(declared) == expected, f"{path}: declares {declared}, policy says {expected}"
        for method in sorted(rc.methods or ()):
            if method != "HEAD":
                out.append(Endpoint(method, path, expected))
    return out


# A plausible body for any write; its fields need not fit the route, since auth comes first.
VALID_LOOKING: dict[str, Any] = {
    "institution_code": f.INST,
    "department_code": f.DEPT,
    "practitioner_code": f.DOC,
    "service_date": "2026-11-22",
    "checks": [{"institution_code": f.INST, "department_code": f.DEPT, "practitioner_code": f.DOC}],
    "name": "x",
    "region_code": "370800",
    "category": "doctor",
    "start": "2026-01-01",
    "action": "suspend",
    "reason": "x",
}


def bodies(ep: Endpoint) -> Iterator[dict[str, Any]]:
    """The request's body variants: plausible, empty, and not JSON at all."""
    if not ep.has_body:
        yield {}
        return
    yield {"json": VALID_LOOKING}
    yield {"json": {}}
    yield {"content": b'{"institution_code": ', "headers": {"content-type": "application/json"}}


async def send(
    client: httpx.AsyncClient, ep: Endpoint, auth: str | None, path: str | None = None, **kw: Any
) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if auth is not None:
        headers["Authorization"] = auth
    return await client.request(ep.method, path or ep.path, headers=headers, **kw)


def assert_refused(r: httpx.Response, status: int, what: str) -> dict[str, Any]:
    assert r.status_code == status, f"{what}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/problem+json"), what
    body: dict[str, Any] = r.json()
    assert body["status"] == status, what
    if status == 401:
        assert body["code"] == "UNAUTHORIZED", what
        assert r.headers.get("www-authenticate") == "Bearer", what
    else:
        assert body["code"] == "ROLE_FORBIDDEN", what
    return body


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Harness]:
    harness = start_harness(settings)
    try:
        yield await anext(harness)
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(harness)


@pytest_asyncio.fixture
async def slow_refresh(servers: Servers) -> AsyncIterator[Harness]:
    """Keys are reloaded by the timer only once a minute: a revocation must travel by Redis."""
    await reset(servers)
    async with running(make_settings(servers, key_refresh_interval_s=60.0)) as h:
        yield h


async def test_the_route_table_declares_the_policy(servers: Servers) -> None:
    endpoints = protected_endpoints(make_settings(servers))
    templates = {ep.template for ep in endpoints}
    assert {"/v1/checks", "/v1/checks/batch", "/v1/ops/status"} <= templates
    assert sum(t.startswith("/v1/admin/") for t in templates) >= 10


async def test_every_route_refuses_a_missing_unknown_or_wrong_role_key(h: Harness) -> None:
    endpoints = protected_endpoints(h.runtime.settings)
    unknown = "Bearer cg_agency_" + "x" * 43
    for ep in endpoints:
        for kw in bodies(ep):
            what = f"{ep.method} {ep.path} {kw}"
            for auth in (None, "Bearer", "Bearer ", f"Basic {h.keys['agency']}", unknown):
                assert_refused(await send(h.client, ep, auth, **kw), 401, f"{what} auth={auth}")
            for role in set(ROLES) - ep.roles:
                r = await send(h.client, ep, h.auth(role)["Authorization"], **kw)
                body = assert_refused(r, 403, f"{what} role={role}")
                assert role in body["detail"]
            for role in ep.roles:
                r = await send(h.client, ep, h.auth(role)["Authorization"], **kw)
                assert r.status_code not in (401, 403), f"{what} role={role}: {r.text}"
        # A path no validator accepts is still refused for want of a key first.
        plausible: dict[str, Any] = {"json": VALID_LOOKING} if ep.has_body else {}
        r = await send(h.client, ep, None, path=ep.garbled_path, **plausible)
        if r.status_code != 404:  # a garbled segment may no longer match the route at all
            assert_refused(r, 401, f"{ep.method} {ep.garbled_path}")


async def test_a_revoked_key_is_refused_everywhere_within_a_second(slow_refresh: Harness) -> None:
    h = slow_refresh
    rt = h.runtime
    endpoints = protected_endpoints(rt.settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while not rt.l1.enabled:  # the subscription that carries key changes is up
        assert loop.time() < deadline
        await asyncio.sleep(0.01)

    doomed: dict[str, tuple[int, str]] = {}
    async with rt.engine.begin() as conn:
        for role in ROLES:
            insts = [f.INST] if role == "his" else []
            doomed[role] = await create_key(conn, role, insts, label="to be revoked")
    await rt.reload_keys()
    probe = {ep.template: ep for ep in endpoints}
    status = probe["/v1/ops/status"]
    assert (await send(h.client, status, f"Bearer {doomed['ops'][1]}")).status_code == 200

    async with rt.engine.begin() as conn:
        for key_id, _ in doomed.values():
            assert await revoke_key(conn, str(key_id)) == 1
    await rt.redis.publish(keys_channel(rt.redis), "changed")
    revoked = loop.time()
    while (await send(h.client, status, f"Bearer {doomed['ops'][1]}")).status_code != 401:
        assert loop.time() - revoked < 1.0, "a revoked key still works a second later"
        await asyncio.sleep(0.02)

    for ep in endpoints:
        for role in ep.roles:
            for kw in bodies(ep):
                r = await send(h.client, ep, f"Bearer {doomed[role][1]}", **kw)
                assert_refused(r, 401, f"{ep.method} {ep.path} revoked {role} {kw}")
    # The keys that were not revoked still work.
    assert (await send(h.client, status, h.auth("ops")["Authorization"])).status_code == 200


def _line(inst: str) -> dict[str, str]:
    return {
        "institution_code": inst,
        "department_code": f.DEPT,
        "practitioner_code": f.DOC,
        "service_date": "2026-11-22",
    }


async def test_a_his_key_checks_only_its_own_institutions(h: Harness) -> None:
    await f.world(h)
    await f.institution(h, code=OTHER_INST, region="370811", name="另一家医院")
    await h.synced()

    own = await h.client.post("/v1/checks", json=_line(f.INST), headers=h.auth("his"))
    assert own.status_code == 200, own.text
    r = await h.client.post("/v1/checks", json=_line(OTHER_INST), headers=h.auth("his"))
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "INSTITUTION_FORBIDDEN"
    assert body["errors"][0]["field"] == "body.institution_code"
    assert "decision" not in body
    # Lower case and padding are the same code once normalised at the edge.
    sneaky = {**_line(OTHER_INST), "institution_code": f" {OTHER_INST.lower()} "}
    r = await h.client.post("/v1/checks", json=sneaky, headers=h.auth("his"))
    assert (r.status_code, r.json()["code"]) == (403, "INSTITUTION_FORBIDDEN")

    batch = {"checks": [_line(f.INST), _line(f.INST), _line(OTHER_INST), _line(f.INST)]}
    r = await h.client.post("/v1/checks/batch", json=batch, headers=h.auth("his"))
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == "INSTITUTION_FORBIDDEN"
    assert body["errors"][0]["field"] == "body.checks.2.institution_code"
    assert "results" not in body

    # The gateway checks any institution; a his key bound to both may check both.
    r = await h.client.post("/v1/checks/batch", json=batch, headers=h.auth("gateway"))
    assert r.status_code == 200, r.text
    assert [a["decision"] for a in r.json()["results"]] == ["allow", "allow", "deny", "allow"]
    async with h.runtime.engine.begin() as conn:
        _, both = await create_key(conn, "his", [f.INST, OTHER_INST])
    await h.runtime.reload_keys()
    r = await h.client.post(
        "/v1/checks/batch", json=batch, headers={"Authorization": f"Bearer {both}"}
    )
    assert r.status_code == 200, r.text
