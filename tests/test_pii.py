"""Personal data never reaches logs, Redis keys or values, error bodies, the outbox or the
ledger in clear: a run with real-shaped ID numbers and names, then a search for them."""

from __future__ import annotations

import logging

import orjson
import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

INST = "H37100200001"  # 威海: the ID number is the service code
RID = "371002198001010010"
RID2 = "37100219900202002X"  # wrong check digit: still personal data
OTHER_ID = "371002197505050036"


async def test_id_numbers_appear_nowhere_in_clear(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    async def call(method: str, url: str, role: str = "agency", **kw: object) -> None:
        r = await h.client.request(method, url, headers=h.auth(role), **kw)  # type: ignore[arg-type]
        bodies.append(r.text)

    await f.institution(h, INST, region="371000", name="威海市立医院")
    await f.department(h, INST)
    await call(
        "PUT", f"/v1/admin/practitioners/{RID}", json={"name": "张三丰", "category": "doctor"}
    )
    await call(
        "PUT",
        "/v1/admin/practitioners/D371002000001",
        json={"name": "李四", "category": "doctor", "id_number": OTHER_ID},
    )
    await call(
        "POST",
        "/v1/admin/registrations",
        json={
            "practitioner_code": RID,
            "institution_code": INST,
            "department_code": "A01",
            "start": "2024-01-01",
        },
    )
    await call(
        "POST",
        "/v1/admin/violations",
        json={
            "practitioner_code": RID,
            "institution_code": INST,
            "date": "2026-03-02",
            "points": 6,
            "item": "x",
        },
    )  # no Idempotency-Key: an error body
    await h.client.post(
        "/v1/admin/violations",
        json={
            "practitioner_code": RID,
            "institution_code": INST,
            "date": "2026-03-02",
            "item_id": "2.1.4.2",  # 威海 §二(一)4(2), 6 points
        },
        headers={**h.auth("agency"), "Idempotency-Key": "pii-1"},
    )
    await call("GET", f"/v1/admin/practitioners/{RID}")
    await call("GET", f"/v1/admin/practitioners/{RID}/file")
    await call("GET", f"/v1/admin/practitioners/{OTHER_ID}")  # 404 for an unknown ID number
    await call(
        "PUT", f"/v1/admin/practitioners/{RID2}", json={"name": "王五", "category": "doctor"}
    )  # 422
    await h.synced()
    line = {"institution_code": INST, "department_code": "A01", "service_date": "2026-03-05"}
    for code in (RID, RID2, OTHER_ID):
        await call("POST", "/v1/checks", role="gateway", json={**line, "practitioner_code": code})
    await call(
        "POST",
        "/v1/checks/batch",
        role="gateway",
        json={"checks": [{**line, "practitioner_code": RID}]},
    )
    await call(
        "POST", "/v1/checks", role="gateway", json={**line, "practitioner_code": RID, "bad": 1}
    )
    await h.runtime.attempts.flush()

    secrets = (RID, RID2, OTHER_ID, RID[:17], "张三丰", "李四")
    found: list[str] = []
    for b in bodies:
        found += [f"response: {s}" for s in secrets[:4] if s in b]
    # The service's own log records (the test's HTTP client logs its URLs; that is not ours).
    served = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "claimgate" in {r.name.split(".")[0] for r in caplog.records}
    found += [f"log: {s}" for s in secrets if s in served]
    redis = h.runtime.redis
    async for key in redis.scan_iter(count=1000):
        value = await redis.get(key)
        raw_key = key if isinstance(key, bytes) else key.encode()
        raw_value = value.encode() if isinstance(value, str) else (value or b"")
        blob = raw_key + raw_value
        found += [f"redis: {s}" for s in secrets if s.encode() in blob]
    async with h.runtime.engine.connect() as conn:
        for table in (
            "events",
            "audit_log",
            "projections",
            "outbox",
            "outcomes",
            "idempotency_keys",
            "sanctioned_attempts",
            "practitioners",
        ):
            rows = (await conn.execute(text(f"SELECT {table}::text FROM {table}"))).scalars().all()
            for s in secrets[:4]:
                found += [f"{table}: {s}" for row in rows if s in row]
    assert found == []
    assert len(bodies) > 10


async def test_no_error_or_reason_echoes_a_value_it_was_sent(h: Harness) -> None:
    """Every refusal and every reason names the field, never the value: the values below are
    ID numbers and codes sent where something else was expected, or not found."""
    await f.world(h)
    await h.synced()
    agency, his = h.auth("agency"), h.auth("his")
    line = {"institution_code": f.INST, "department_code": "A01", "practitioner_code": f.DOC}
    cases: list[tuple[str, str, dict[str, str], dict[str, object] | None, str, str]] = [
        # (method, url, headers, body, the value sent, the field named)
        (
            "POST",
            f"/v1/admin/violations/{RID}/appeal",
            agency,
            {"outcome": "upheld", "date": "2026-03-20"},
            RID,
            "path.violation_id",
        ),
        ("GET", f"/v1/admin/practitioners/{OTHER_ID}", agency, None, OTHER_ID[-4:], "path.code"),
        (
            "GET",
            "/v1/admin/practitioners/D370802999999",
            agency,
            None,
            "D370802999999",
            "path.code",
        ),
        ("GET", "/v1/admin/institutions/H37080299999", agency, None, "H37080299999", "path.code"),
        (
            "GET",
            f"/v1/admin/institutions/{f.INST}/departments/Z98765",
            agency,
            None,
            "Z98765",
            "path.department_code",
        ),
        (
            "GET",
            "/v1/admin/registrations/987654321",
            agency,
            None,
            "987654321",
            "path.registration_id",
        ),
        ("GET", "/v1/admin/agreements/987654321", agency, None, "987654321", "path.agreement_id"),
        (
            "POST",
            "/v1/admin/registrations",
            agency,
            {**line, "practitioner_code": "D370802999999", "start": "2024-01-01"},
            "D370802999999",
            "body.practitioner_code",
        ),
        (
            "POST",
            "/v1/admin/registrations",
            agency,
            {**line, "department_code": "Z98765", "start": "2024-01-01"},
            "Z98765",
            "body.department_code",
        ),
        (
            "PUT",
            "/v1/admin/institutions/H37100200009",
            agency,
            {"name": "x", "region_code": "999999"},
            "999999",
            "body.region_code",
        ),
        (
            "POST",
            "/v1/admin/bulk",
            agency,
            {
                "registrations": [
                    {**line, "institution_code": "H37080299999", "start": "2024-01-01"}
                ]
            },
            "H37080299999",
            "body.registrations.0.institution_code",
        ),
        (
            # an ID number typed where the catalogue item belongs (issue 19)
            "POST",
            "/v1/admin/violations",
            agency,
            {
                "practitioner_code": f.DOC,
                "institution_code": f.INST,
                "date": "2026-03-02",
                "item_id": OTHER_ID,
            },
            OTHER_ID[-6:],
            "body.item_id",
        ),
        (
            "GET",
            "/v1/admin/profiles/x-999999/catalogue",
            agency,
            None,
            "999999",
            "path.profile_id",
        ),
        (
            "POST",
            "/v1/checks",
            his,
            {**line, "institution_code": "H37080299999"},
            "H37080299999",
            "body.institution_code",
        ),
        (
            "POST",
            "/v1/checks/batch",
            his,
            {"checks": [line, {**line, "institution_code": "H37080299999"}]},
            "H37080299999",
            "body.checks.1.institution_code",
        ),
    ]
    for method, url, headers, body, sent, field in cases:
        r = await h.client.request(
            method, url, json=body, headers={**headers, "Idempotency-Key": "echo-1"}
        )
        assert r.status_code >= 400, (url, r.text)
        assert sent not in r.text, (url, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (url, r.text)

    # A key the caller chose is not repeated either, unless it is shaped like a field name.
    for key in (RID, "张三丰"):
        r = await h.client.post("/v1/checks", json={**line, key: 1}, headers=his)
        assert r.status_code == 422
        assert key not in r.text
        assert [e["field"] for e in r.json()["errors"]] == ["body.<key>"]
    r = await h.client.post("/v1/checks", json={**line, "emergncy": True}, headers=his)
    assert [e["field"] for e in r.json()["errors"]] == ["body.emergncy"]

    # A reason's message too: a department code the institution does not know (here an ID
    # number, as a HIS might send one by mistake) is named by the reason code alone.
    answer = await f.check(h, department_code=RID)
    assert f.codes_of(answer)["DEPARTMENT_UNKNOWN"] is True
    assert RID not in orjson.dumps(answer).decode()
