"""Bulk import: one transaction, one recompute, the same answers as single writes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _load(n: int) -> dict[str, Any]:
    docs = [f"D3708020{i:05d}" for i in range(n)]
    return {
        "institutions": [{"code": f.INST, "name": "济宁市第一人民医院", "region_code": "370800"}],
        "departments": [{"institution_code": f.INST, "code": "A01", "name": "内科"}],
        "practitioners": [{"code": c, "name": "王伟", "category": "doctor"} for c in docs],
        "registrations": [
            {
                "practitioner_code": c,
                "institution_code": f.INST,
                "department_code": "A01",
                "start": "2024-01-01",
            }
            for c in docs
        ],
        "agreements": [
            {
                "practitioner_code": c,
                "institution_code": f.INST,
                "start": "2025-01-01",
                "end": "2027-01-01",
            }
            for c in docs
        ],
        "practitioner_actions": [
            {
                "practitioner_code": docs[1],
                "action": "suspend",
                "start": "2026-10-01",
                "end": "2027-01-01",
                "reason": "x",
            }
        ],
    }


async def test_bulk_import_answers_like_single_writes(h: Harness) -> None:
    r = await h.client.post("/v1/admin/bulk", json=_load(50), headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    assert r.json()["imported"]["practitioners"] == 50
    await h.synced()
    assert (await f.check(h, practitioner_code="D370802000000"))["decision"] == "allow"
    denied = await f.check(h, practitioner_code="D370802000001")
    assert f.codes_of(denied) == {"PRACTITIONER_SUSPENDED": True}


async def test_bulk_import_is_all_or_nothing_and_names_the_bad_record(h: Harness) -> None:
    body = _load(5)
    body["registrations"][3]["department_code"] = "Z9"
    r = await h.client.post("/v1/admin/bulk", json=body, headers=h.auth("agency"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.registrations.3.department_code"
    async with h.runtime.engine.connect() as conn:
        for table in ("institutions", "practitioners", "events", "projections", "outbox"):
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, (
                table
            )


async def _count(h: Harness, sql: str) -> int:
    async with h.runtime.engine.connect() as conn:
        n: int = (await conn.execute(text(sql))).scalar_one()
    return n


async def test_a_used_idempotency_key_with_another_bulk_body_is_409_and_applies_nothing(
    h: Harness,
) -> None:
    headers = {**h.auth("agency"), "Idempotency-Key": "load-1"}
    first = await h.client.post("/v1/admin/bulk", json=_load(5), headers=headers)
    assert first.status_code == 200, first.text
    events = await _count(h, "SELECT count(*) FROM events")
    other = _load(8)
    other["practitioner_actions"] = []
    r = await h.client.post("/v1/admin/bulk", json=other, headers=headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await _count(h, "SELECT count(*) FROM practitioners") == 5
    assert await _count(h, "SELECT count(*) FROM events") == events
    await h.synced()
    denied = await f.check(h, practitioner_code="D370802000001")
    assert f.codes_of(denied) == {"PRACTITIONER_SUSPENDED": True}


async def test_a_retried_bulk_import_answers_the_first_answer_and_applies_once(
    h: Harness,
) -> None:
    headers = {**h.auth("agency"), "Idempotency-Key": "load-2"}
    first = await h.client.post("/v1/admin/bulk", json=_load(5), headers=headers)
    assert first.status_code == 200, first.text
    events = await _count(h, "SELECT count(*) FROM events")
    # The same records re-sent by another client: keys reordered, indented, codes in lower case.
    same = {k: v for k, v in reversed(_load(5).items())}
    same["practitioners"][0]["code"] = same["practitioners"][0]["code"].lower()
    raw = orjson.dumps(same, option=orjson.OPT_INDENT_2)
    again = await h.client.post(
        "/v1/admin/bulk",
        content=raw,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await _count(h, "SELECT count(*) FROM events") == events
    assert await _count(h, "SELECT count(*) FROM registrations") == 5
