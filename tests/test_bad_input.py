"""Hostile and malformed input: always a 4xx problem+json naming the field, never a 5xx, and
nothing written."""

from __future__ import annotations

import logging

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


# -- input that reached a 500 or another meaning (issue 10, item 4) ----------------------------


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+08:00",  # was a 500: the conversion to Shanghai time overflowed
        "9999-12-31T23:00:00-05:00",  # was a dropped connection
        "0001-01-01T00:00:00",
        1795305600,  # was read as a Unix timestamp: 2026-11-22
        "1795305600",  # so was this
        1795305600.0,
        "2026-11-22T00:00:00Z" * 2,
        "٢٠٢٦-١١-٢٢",  # Arabic-Indic digits
        "2026-11-22T10:00:00+08:00\n",
    ],
)
async def test_a_service_date_that_is_not_a_date_string_is_422_naming_it(
    h: Harness, value: object
) -> None:
    for body in ({**LINE, "service_date": value}, {"checks": [{**LINE, "service_date": value}]}):
        url = "/v1/checks/batch" if "checks" in body else "/v1/checks"
        r = await h.client.post(url, json=body, headers=h.auth("his"))
        assert r.status_code == 422, r.text
        field = "body.checks.0.service_date" if "checks" in body else "body.service_date"
        assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_admin_dates_are_strings_too(h: Harness) -> None:
    await f.world(h)
    r = await h.client.post(
        f"/v1/admin/practitioners/{f.DOC}/actions",
        json={"action": "suspend", "start": 1795305600, "reason": "x"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.start"
    r = await h.client.put(
        "/v1/admin/calendar/1795305600", json={"working": True}, headers=h.auth("agency")
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "path.day"
    r = await h.client.get(
        "/v1/admin/attempts", params={"since": "1795305600"}, headers=h.auth("agency")
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "query.since"


NAME = "王\u0000伟"  # NUL: PostgreSQL refuses it in text; the insert used to fail with a 500
ADMIN_TEXT = [
    ("PUT", f"/v1/admin/institutions/{f.INST}", {"name": NAME, "region_code": "370800"}, "name"),
    ("PUT", f"/v1/admin/institutions/{f.INST}/departments/A02", {"name": NAME}, "name"),
    ("PUT", f"/v1/admin/practitioners/{f.DOC}", {"name": NAME, "category": "doctor"}, "name"),
    (
        "PUT",
        "/v1/admin/practitioners/D370802000009",
        {"name": "王\u2028伟", "category": "doctor"},
        "name",
    ),
    (
        "POST",
        f"/v1/admin/practitioners/{f.DOC}/actions",
        {"action": "suspend", "start": "2026-11-01", "reason": "违\u0085规"},
        "reason",
    ),
    (
        "POST",
        f"/v1/admin/institutions/{f.INST}/actions",
        {"action": "suspend", "start": "2026-11-01", "reason": "a\x1bb"},
        "reason",
    ),
    (
        "POST",
        f"/v1/admin/institutions/{f.INST}/departments/A01/actions",
        {"action": "suspend", "start": "2026-11-01", "reason": "\x00"},
        "reason",
    ),
    (
        "POST",
        "/v1/admin/violations",
        {
            "practitioner_code": f.DOC,
            "institution_code": f.INST,
            "date": "2026-03-02",
            "points": 6,
            "item": "第十二条\u0000",
        },
        "item",
    ),
    (
        "POST",
        "/v1/admin/violations",
        {
            "practitioner_code": f.DOC,
            "institution_code": f.INST,
            "date": "2026-03-02",
            "points": 6,
            "item": "x",
            "description": "两行\n说明\u0000",
        },
        "description",
    ),
    ("PUT", "/v1/admin/calendar/2026-10-10", {"working": True, "note": "a\x7f"}, "note"),
    (
        "PUT",
        f"/v1/admin/institutions/{f.INST}/aliases/department/K1",
        {"target": "A01\u0000"},
        "target",
    ),
    (
        "POST",
        "/v1/admin/bulk",
        {"departments": [{"institution_code": f.INST, "code": "A03", "name": NAME}]},
        "departments.0.name",
    ),
    (
        "POST",
        "/v1/admin/bulk",
        {"practitioners": [{"code": "D370802000008", "name": NAME, "category": "doctor"}]},
        "practitioners.0.name",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "field"), ADMIN_TEXT)
async def test_control_characters_in_admin_text_are_422_and_nothing_is_written_or_logged(
    h: Harness,
    caplog: pytest.LogCaptureFixture,
    method: str,
    url: str,
    body: dict[str, object],
    field: str,
) -> None:
    await f.world(h)
    caplog.set_level(logging.DEBUG)
    async with h.runtime.engine.connect() as conn:
        before = (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one()
    r = await h.client.request(
        method, url, json=body, headers={**h.auth("agency"), "Idempotency-Key": "k-1"}
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [f"body.{field}"]
    async with h.runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one() == before
    assert "王" not in caplog.text


async def test_text_keeps_what_names_hold(h: Harness) -> None:
    """Chinese, the middle dot of minority names, combining marks, a zero-width joiner, and a
    description that spans lines are all fine."""
    await f.world(h)
    for name in ("阿卜杜拉·艾山", "Zoë Müller", "José", "👩\u200d⚕️ 李"):
        await f.practitioner(h, name=name)
    r = await h.client.post(
        "/v1/admin/violations",
        json={
            "practitioner_code": f.DOC,
            "institution_code": f.INST,
            "date": "2026-03-02",
            "item_id": "4.1.8",  # 济宁 §四(一)8, with the officer's own words beside it
            "item": "第十二条第3项",
            "description": "第一行\r\n第二行\t附注",
        },
        headers={**h.auth("agency"), "Idempotency-Key": "ok-1"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "第一行\r\n第二行\t附注"


SECRET = "张三丰371002198001010010"


async def test_no_log_line_carries_a_request_value_or_an_sql_parameter(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A database error (PostgreSQL quotes the input it cannot read) and an unexpected error
    whose message holds a value: each is a 500 problem and a log line with its type and place,
    never the value (and never reaches the server as an exception, whose log would)."""
    caplog.set_level(logging.DEBUG)
    app = h.client._transport.app  # type: ignore[attr-defined]

    async def database_error() -> None:
        async with h.runtime.engine.connect() as conn:
            await conn.execute(text("SELECT CAST(:v AS integer)"), {"v": SECRET})

    async def unexpected_error() -> None:
        raise ValueError(f"cannot handle {SECRET}")

    app.router.add_api_route("/v1/test-only/database-error", database_error)
    app.router.add_api_route("/v1/test-only/unexpected-error", unexpected_error)
    for url, kind in (
        ("/v1/test-only/database-error", "DataError"),
        ("/v1/test-only/unexpected-error", "ValueError"),
    ):
        r = await h.client.get(url)
        assert r.status_code == 500
        assert r.json()["code"] == "INTERNAL_ERROR"
        assert SECRET not in r.text
        assert kind in caplog.text
    for part in (SECRET, "张三丰", "371002198001010010"):
        assert part not in caplog.text
    assert "test_bad_input.py" in caplog.text  # where it happened is kept


DUPLICATES = [
    # (url, raw body, field): a plain body (the fast path would take it) and the route's.
    (
        "/v1/checks",
        '{"institution_code":"H37080200001","department_code":"A01",'
        '"practitioner_code":"D370802000001","emergency":false,"emergency":true}',
        "body.emergency",
    ),
    (
        "/v1/checks",
        '{"institution_code":"H37080200001","department_code":"A01",'
        '"practitioner_code":"D370802000001","emergency":false,"\\u0065mergency":true}',
        "body.emergency",
    ),
    (
        "/v1/checks",
        '{"institution_code":"H37080200001","department_code":"A01","claim_id":"a:b:c",'
        '"practitioner_code":"D370802000001","practitioner_code":"D370802000002"}',
        "body.practitioner_code",
    ),
    (
        "/v1/checks",
        '{"institution_code":"h37080200001","department_code":"a01",'
        '"practitioner_code":"D370802000001","emergency":false,"emergency":true}',
        "body.emergency",
    ),
    (
        "/v1/checks/batch",
        '{"checks":[{"institution_code":"H37080200001","department_code":"A01",'
        '"practitioner_code":"D370802000001"},{"institution_code":"H37080200001",'
        '"department_code":"A01","practitioner_code":"D370802000001","emergency":false,'
        '"emergency":true}]}',
        "body.checks.1.emergency",
    ),
    (
        "/v1/checks/batch",
        '{"checks":[],"checks":[{"institution_code":"H37080200001","department_code":"A01",'
        '"practitioner_code":"D370802000001"}]}',
        "body.checks",
    ),
]


@pytest.mark.parametrize(("url", "raw", "field"), DUPLICATES)
async def test_a_key_given_twice_is_422_naming_it_on_every_path(
    h: Harness, url: str, raw: str, field: str
) -> None:
    await f.world(h)
    await h.synced()
    headers = {**h.auth("his"), "content-type": "application/json"}
    r = await h.client.post(url, content=raw.encode(), headers=headers)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    # Without a key, the key is refused first, as for every body.
    r = await h.client.post(url, content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 401


async def test_a_key_given_twice_in_an_admin_body_is_422_and_nothing_is_written(
    h: Harness,
) -> None:
    await f.world(h)
    raw = b'{"action":"restore","action":"suspend","start":"2026-11-01","reason":"x"}'
    r = await h.client.post(
        f"/v1/admin/practitioners/{f.DOC}/actions",
        content=raw,
        headers={**h.auth("agency"), "content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.action"
    async with h.runtime.engine.connect() as conn:
        kinds = (await conn.execute(text("SELECT kind FROM events"))).scalars().all()
    assert "practitioner_action" not in kinds


async def test_colons_and_escapes_in_a_claim_id_are_not_mistaken_for_a_duplicate(
    h: Harness,
) -> None:
    await f.world(h)
    await h.synced()
    for claim in ("HIS:2026:11:22", 'a\\"b', "x\\u003ay", "路径\\\\C:"):
        raw = (
            '{"institution_code":"H37080200001","department_code":"A01",'
            f'"practitioner_code":"D370802000001","service_date":"2026-11-22","claim_id":"{claim}"}}'
        )
        r = await h.client.post(
            "/v1/checks",
            content=raw.encode(),
            headers={**h.auth("his"), "content-type": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["decision"] == "allow"


ARABIC_DOC = "D٣٧٠٨٠٢٠٠٠٠٠١"  # D370802000001 in Arabic-Indic digits; NFKC leaves them
ARABIC_ID = "٣٧١٠٠٢١٩٨٠٠١٠١٠٠١٠"


async def test_codes_with_non_ascii_digits_are_422_not_another_record(h: Harness) -> None:
    await f.world(h)
    agency = h.auth("agency")
    for code in (ARABIC_DOC, ARABIC_ID, "D३७०८०२०००००१"):  # Arabic-Indic, Devanagari
        r = await h.client.get(f"/v1/admin/practitioners/{code}", headers=agency)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "path.code"
        r = await h.client.put(
            f"/v1/admin/practitioners/{code}",
            json={"name": "王伟", "category": "doctor"},
            headers=agency,
        )
        assert r.status_code == 422, r.text
        r = await h.client.post(
            "/v1/checks", json={**LINE, "practitioner_code": code}, headers=h.auth("his")
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "body.practitioner_code"
    r = await h.client.put(
        "/v1/admin/institutions/H٣٧٠٨٠٢٠٠٠٠١",
        json={"name": "x", "region_code": "370800"},
        headers=agency,
    )
    assert r.status_code == 422
    async with h.runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM practitioners"))).scalar_one() == 1
        assert (await conn.execute(text("SELECT count(*) FROM institutions"))).scalar_one() == 1
    # Full-width digits are the same code, as before: NFKC makes them ASCII.
    r = await h.client.get("/v1/admin/practitioners/D３７０８０２０００００１", headers=agency)
    assert r.status_code == 200


async def test_a_body_that_is_not_json_is_400_on_every_route_after_the_key(h: Harness) -> None:
    for method, url, role in (
        ("POST", "/v1/checks", "his"),
        ("POST", "/v1/checks/batch", "gateway"),
        ("PUT", f"/v1/admin/institutions/{f.INST}", "agency"),
        ("POST", "/v1/admin/simulations", "agency"),
        ("POST", "/v1/admin/bulk", "agency"),
    ):
        for raw in (b'{"a": 1,', b"\xff", b"", b"{'a': 1}"):
            ctype = {"content-type": "application/json"}
            r = await h.client.request(method, url, content=raw, headers={**h.auth(role), **ctype})
            assert r.status_code == 400, (url, raw, r.text)
            assert r.json()["code"] == "MALFORMED_BODY"
            r = await h.client.request(method, url, content=raw, headers=ctype)
            assert r.status_code == 401, (url, raw, r.text)
            r = await h.client.request(method, url, content=raw, headers={**h.auth("ops"), **ctype})
            assert r.status_code == 403, (url, raw, r.text)
