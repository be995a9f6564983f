"""Personal data never reaches logs, Redis keys or values, error bodies, the outbox or the
ledger in clear: a run with real-shaped ID numbers and names, then a search for them."""

from __future__ import annotations

import logging

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
            "points": 6,
            "item": "x",
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
