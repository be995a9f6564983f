"""Requests shaped to mean one thing to a proxy and another to us, or to borrow our name: no
redirect built from the caller's Host header, exactly one Content-Type and one Authorization
header, forwarded addresses believed only from configured proxies, a bounded number of bodies
being read, and a body sent in pieces without a length read whole — or cut off at the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config

from app.api.limits import EdgeGuard
from app.api.server import uvicorn_options
from app.settings import Settings
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

LINE = {
    "institution_code": f.INST,
    "department_code": f.DEPT,
    "practitioner_code": f.DOC,
    "service_date": "2026-11-22",
}


def _problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_callers_host(h: Harness) -> None:
    await f.world(h)
    evil = {"host": "evil.example"}
    for path in ("/v1/checks/", "/v1/checks/batch/"):
        r = await h.client.post(path, json=LINE, headers={**h.auth("his"), **evil})
        _problem(r, 404, "NOT_FOUND")
        assert "location" not in r.headers
    r = await h.client.get(
        f"/v1/admin/practitioners/{f.DOC}/", headers={**h.auth("agency"), **evil}
    )
    _problem(r, 404, "NOT_FOUND")
    assert "location" not in r.headers
    # The paths themselves answer.
    assert (await h.client.post("/v1/checks", json=LINE, headers=h.auth("his"))).status_code == 200


async def test_two_content_types_are_refused_415(h: Harness) -> None:
    await f.world(h)
    body = b'{"institution_code": "H37080200001", "department_code": "A01", "practitioner_code": "D370802000001", "service_date": "2026-11-22"}'
    for types in (("text/plain", "application/json"), ("application/json", "application/json")):
        headers = [*h.auth("his").items(), *(("content-type", t) for t in types)]
        _problem(
            await h.client.post("/v1/checks", content=body, headers=headers),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
    # An admin write too.
    headers = [*h.auth("agency").items(), ("content-type", "text/plain")]
    headers.append(("content-type", "application/json"))
    r = await h.client.put(
        f"/v1/admin/practitioners/{f.DOC}",
        content=b'{"name": "x", "id_number": "370802199001011234"}',
        headers=headers,
    )
    _problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    # One is fine.
    one = [*h.auth("his").items(), ("content-type", "application/json")]
    assert (await h.client.post("/v1/checks", content=body, headers=one)).status_code == 200


async def test_two_authorization_headers_are_refused_401(h: Harness) -> None:
    await f.world(h)
    two = [("authorization", f"Bearer {h.keys['his']}"), ("authorization", "Bearer cg_his_x")]
    r = await h.client.post("/v1/checks", json=LINE, headers=two)
    _problem(r, 401, "UNAUTHORIZED")
    assert r.headers["www-authenticate"] == "Bearer"
    agency = ("authorization", f"Bearer {h.keys['agency']}")
    r = await h.client.get(f"/v1/admin/practitioners/{f.DOC}", headers=[agency, agency])
    _problem(r, 401, "UNAUTHORIZED")
    assert (await h.client.get(f"/v1/admin/practitioners/{f.DOC}", headers=[agency])).is_success


async def test_bodies_being_read_are_bounded_apart_from_checks(servers: Servers) -> None:
    await reset(servers)
    async for h in start_harness(make_settings(servers, max_reading=1, max_inflight=1)):
        await f.world(h)
        app = h.client._transport.app  # type: ignore[attr-defined]
        guard = app.middleware_stack
        while not isinstance(guard, EdgeGuard):
            guard = guard.app
        guard.reading = 1  # as if one body were still arriving
        r = await h.client.post("/v1/checks", json=LINE, headers=h.auth("his"))
        _problem(r, 503, "OVERLOADED")
        assert r.headers["retry-after"] == "1"
        # A request without a body has nothing to read: the one check place is free for it.
        assert (
            await h.client.get(f"/v1/admin/practitioners/{f.DOC}", headers=h.auth("agency"))
        ).is_success
        guard.reading = 0
        assert (
            await h.client.post("/v1/checks", json=LINE, headers=h.auth("his"))
        ).status_code == 200
        assert guard.reading == guard.inflight == 0


async def test_a_body_in_pieces_is_read_whole_and_cut_off_past_the_limit(h: Harness) -> None:
    await f.world(h)
    raw = orjson.dumps(LINE)

    async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    headers = {**h.auth("his"), "content-type": "application/json"}
    r = await h.client.post("/v1/checks", content=pieces(raw, 7), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "allow"
    big = b"{" + b" " * (3 << 19) + b"}"  # 1.5 MiB, no Content-Length: the limit is 1 MiB
    r = await h.client.post("/v1/checks", content=pieces(big, 1 << 18), headers=headers)
    _problem(r, 413, "PAYLOAD_TOO_LARGE")


async def _seen_by_the_app(settings: Settings, peer: str) -> tuple[Any, Any]:
    """What the app behind ``claimgate serve``'s uvicorn sees as the client and the scheme of a
    request from ``peer`` that claims to come from 203.0.113.9 over https."""
    seen: dict[str, Any] = {}

    async def probe(scope: Scope, receive: Receive, send: Send) -> None:
        seen["client"], seen["scheme"] = scope["client"], scope["scheme"]

    config = Config(probe, **uvicorn_options(settings))
    config.load()
    scope = {
        "type": "http",
        "scheme": "http",
        "client": (peer, 50000),
        "headers": [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")],
    }

    async def nothing() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def ignore(_: Any) -> None:
        return None

    await config.loaded_app(scope, nothing, ignore)
    return seen["client"], seen["scheme"]


async def test_forwarded_headers_are_believed_only_from_configured_proxies() -> None:
    plain = Settings(database_url="x", redis_url="redis://y")
    # By default nobody is a proxy, not even this host.
    assert await _seen_by_the_app(plain, "127.0.0.1") == (("127.0.0.1", 50000), "http")
    proxied = Settings(database_url="x", redis_url="redis://y", forwarded_allow_ips="10.0.0.7")
    assert await _seen_by_the_app(proxied, "127.0.0.1") == (("127.0.0.1", 50000), "http")
    assert await _seen_by_the_app(proxied, "10.0.0.7") == (("203.0.113.9", 0), "https")
