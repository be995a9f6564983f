"""A practitioner's category changed (``PUT /v1/admin/practitioners/{code}``, or a bulk import
naming them again) re-judges the institutions where they are registered: their head counts by category (kept in
``staff_heads``, app.projection.staff) are counted again, so a rule counting doctors sees the
change at once, not at the institution's next event of its own."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.db.tables import outcomes
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

INST = "H62010000001"  # 兰州: §二十二 counts the terminated among the institution's doctors
DOCTORS = [f"D62010000{k:04d}" for k in range(10)]


async def _stored(h: Harness, subject: str) -> dict[str, Any]:
    async with h.runtime.engine.connect() as conn:
        doc = (
            await conn.execute(select(outcomes.c.doc).where(outcomes.c.subject == subject))
        ).scalar_one()
    return dict(doc)


async def _check(h: Harness, doc: str) -> dict[str, Any]:
    await h.synced()
    return await f.check(
        h, role="gateway", institution_code=INST, practitioner_code=doc, department_code="A01"
    )


async def _category(h: Harness, how: str, code: str, category: str) -> None:
    if how == "put":
        await f.practitioner(h, code, category=category)
        return
    body = {"practitioners": [{"code": code, "name": "王伟", "category": category}]}
    r = await h.client.post("/v1/admin/bulk", json=body, headers=h.auth("agency"))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("how", ["put", "bulk"])
async def test_a_doctor_become_nurse_is_no_longer_counted_among_the_doctors(
    h: Harness, how: str
) -> None:
    await f.institution(h, INST, region="620100", name="兰州市第一人民医院")
    await f.department(h, INST)
    for doc in DOCTORS:
        await f.practitioner(h, doc)
        await f.registration(h, doc, INST)
        await f.agreement(h, doc, INST, start="2024-01-01", end="2028-01-01")
    # One doctor of ten terminated: at ten doctors it takes two (不足20人的有2人)
    await f.practitioner_action(h, DOCTORS[0], "terminate", "2026-03-01", inst=INST)
    assert f.codes_of(await _check(h, DOCTORS[1])) == {}
    assert (await _stored(h, f"i:{INST}"))["intervals"] == []

    # One of the others is a nurse after all: nine doctors, so one terminated is enough
    # (不足10人的有1人) — the institution is terminated from the doctor's termination on.
    await _category(h, how, DOCTORS[9], "nurse")
    a = await _check(h, DOCTORS[1])
    assert a["decision"] == "deny"
    assert f.codes_of(a) == {"INSTITUTION_TERMINATED": True}
    (iv,) = (await _stored(h, f"i:{INST}"))["intervals"]
    assert (iv["start"], iv["status"]) == ("2026-03-01", "terminated")

    # …and back: a doctor again, ten doctors, the institution no longer terminated
    await _category(h, how, DOCTORS[9], "doctor")
    assert f.codes_of(await _check(h, DOCTORS[1])) == {}
    assert (await _stored(h, f"i:{INST}"))["intervals"] == []
