"""The admin API: every write reads back, unknown references are named, retries apply once,
every write is audited, and ID numbers are never stored in clear."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

RID = "371002198001010010"


async def test_institution_put_and_get(h: Harness) -> None:
    out = await f.institution(h)
    assert out["profile_id"] == "jining-2024"
    await f.department(h)
    await f.institution_action(h, "suspend", "2026-11-01", "2026-12-01")
    r = await h.client.get(f"/v1/admin/institutions/{f.INST}", headers=h.auth("agency"))
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "济宁市第一人民医院"
    assert body["region_code"] == "370800"
    assert [d["code"] for d in body["departments"]] == ["A01"]
    assert body["status"][0]["status"] == "suspended"
    assert body["status"][0]["from"] == "2026-11-01"
    # Updating keeps one row and changes the name.
    await f.institution(h, name="济宁医学院附属医院")
    r = await h.client.get(f"/v1/admin/institutions/{f.INST}", headers=h.auth("agency"))
    assert r.json()["name"] == "济宁医学院附属医院"


async def test_unknown_region_is_refused_naming_the_field(h: Harness) -> None:
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}",
        json={"name": "x", "region_code": "999999"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "UNKNOWN_REGION"
    assert r.json()["errors"][0]["field"] == "body.region_code"
    r = await h.client.get(f"/v1/admin/institutions/{f.INST}", headers=h.auth("agency"))
    assert r.status_code == 404


async def test_department_put_get_and_suspension(h: Harness) -> None:
    await f.institution(h)
    await f.department(h, name="内科")
    await f.department_action(h, "suspend", "2026-11-01", "2027-02-01")
    r = await h.client.get(
        f"/v1/admin/institutions/{f.INST}/departments/A01", headers=h.auth("agency")
    )
    assert r.status_code == 200
    assert r.json()["name"] == "内科"
    assert r.json()["status"][0]["to"] == "2027-02-01"


async def test_department_of_unknown_institution_is_404(h: Harness) -> None:
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}/departments/A01",
        json={"name": "内科"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 404
    assert r.json()["code"] == "INSTITUTION_NOT_FOUND"
    assert r.json()["errors"][0]["field"] == "path.code"  # named by its field, never echoed
    assert f.INST not in r.text


async def test_practitioner_with_registrations_agreements_and_status(h: Harness) -> None:
    await f.world(h)
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
    r = await h.client.get(f"/v1/admin/practitioners/{f.DOC}", headers=h.auth("agency"))
    assert r.status_code == 200
    body = r.json()
    assert body["category"] == "doctor"
    assert body["registrations"][0]["department_code"] == "A01"
    assert body["agreements"][0]["end"] == "2027-01-01"
    status = body["status_by_institution"][0]
    assert status["institution_code"] == f.INST
    assert status["status"][0]["status"] == "suspended"


async def test_registration_and_agreement_read_back(h: Harness) -> None:
    await f.institution(h)
    await f.department(h)
    await f.practitioner(h)
    reg = await f.registration(h, end="2027-01-01")
    agr = await f.agreement(h)
    r = await h.client.get(f"/v1/admin/registrations/{reg['id']}", headers=h.auth("agency"))
    assert r.json() == reg
    r = await h.client.get(f"/v1/admin/agreements/{agr['id']}", headers=h.auth("agency"))
    assert r.json() == agr
    r = await h.client.get("/v1/admin/registrations/999999", headers=h.auth("agency"))
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            {"practitioner_code": "D370802999999"},
            "body.practitioner_code",
            "PRACTITIONER_NOT_FOUND",
        ),
        ({"institution_code": "H37080299999"}, "body.institution_code", "INSTITUTION_NOT_FOUND"),
        ({"department_code": "Z9"}, "body.department_code", "DEPARTMENT_NOT_FOUND"),
    ],
)
async def test_registration_names_the_missing_reference_and_writes_nothing(
    h: Harness, body: dict[str, str], field: str, code: str
) -> None:
    await f.institution(h)
    await f.department(h)
    await f.practitioner(h)
    full = {
        "practitioner_code": f.DOC,
        "institution_code": f.INST,
        "department_code": "A01",
        "start": "2024-01-01",
        **body,
    }
    r = await h.client.post("/v1/admin/registrations", json=full, headers=h.auth("agency"))
    assert r.status_code == 404
    problem = r.json()
    assert problem["code"] == code
    assert problem["errors"][0]["field"] == field
    async with h.runtime.engine.connect() as conn:
        n = (await conn.execute(text("SELECT count(*) FROM registrations"))).scalar_one()
    assert n == 0


async def test_dates_must_be_ordered(h: Harness) -> None:
    await f.world(h)
    r = await h.client.post(
        f"/v1/admin/practitioners/{f.DOC}/actions",
        json={"action": "suspend", "start": "2026-10-01", "end": "2026-10-01", "reason": "x"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 422
    assert "end must be after start" in r.json()["detail"]


async def test_retried_write_with_idempotency_key_applies_once(h: Harness) -> None:
    await f.world(h)
    body = {"action": "suspend", "start": "2026-10-01", "end": "2027-01-01", "reason": "x"}
    headers = {**h.auth("agency"), "Idempotency-Key": "susp-1"}
    url = f"/v1/admin/practitioners/{f.DOC}/actions"
    first = await h.client.post(url, json=body, headers=headers)
    again = await h.client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    async with h.runtime.engine.connect() as conn:
        n = (
            await conn.execute(
                text("SELECT count(*) FROM events WHERE kind = 'practitioner_action'")
            )
        ).scalar_one()
    assert n == 1
    other = await h.client.post(url, json={**body, "reason": "y"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_every_write_is_audited_with_key_and_request_id(h: Harness) -> None:
    await f.institution(h)
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}/departments/A01",
        json={"name": "内科"},
        headers={**h.auth("agency"), "X-Request-ID": "req-42"},
    )
    assert r.status_code == 200
    async with h.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT action, target, request_id, api_key_id FROM audit_log ORDER BY id")
            )
        ).all()
    assert [row[0] for row in rows] == ["institution.put", "department.put"]
    assert rows[1][1:3] == (f"{f.INST}/A01", "req-42")
    assert rows[1][3] is not None


async def test_id_numbers_are_stored_only_hashed_and_masked(h: Harness) -> None:
    await f.institution(h, "H37100200001", region="371000", name="威海市立医院")
    await f.practitioner(h, "D371002000001", id_number=RID)
    await f.practitioner(h, RID)
    r = await h.client.get(f"/v1/admin/practitioners/{RID}", headers=h.auth("agency"))
    assert r.status_code == 200
    assert r.json()["id_number"] == "3710**********0010"
    assert RID not in r.text
    async with h.runtime.engine.connect() as conn:
        for table in ("practitioners", "events", "audit_log", "projections", "idempotency_keys"):
            dump = (await conn.execute(text(f"SELECT {table}::text FROM {table}"))).scalars().all()
            assert not [row for row in dump if RID in row], table


async def test_admin_routes_refuse_other_roles(h: Harness) -> None:
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}",
        json={"name": "x", "region_code": "370800"},
        headers=h.auth("his"),
    )
    assert r.status_code == 403
