"""Point deduction end to end through HTTP: violation written → check denied on the right dates
→ appeal upheld → check allowed again; retries, concurrency, warnings, exams, the credit file
and the what-if simulation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")


# 济宁 §四 items by their points (f.INST is a 济宁 hospital): a finding is recorded by its act
JINING_ITEMS = {1: "4.1.8", 3: "4.2.5", 6: "4.3.1", 12: "4.4.3"}


async def violation(
    h: Harness, key: str, points: int, day: str = "2026-03-02", **extra: Any
) -> Any:
    """A 济宁 finding of ``points``: by its item where §四 has one at that price, else as an
    officer's documented exception."""
    item = JINING_ITEMS.get(points)
    priced: dict[str, Any] = (
        {"item_id": item}
        if item
        else {"points": points, "item": "病历书写不规范", "exception_reason": "稽核组集体决定"}
    )
    body = {
        "practitioner_code": f.DOC,
        "institution_code": f.INST,
        "date": day,
        "description": "抽查发现",
        **priced,
        **extra,
    }
    return await h.client.post(
        "/v1/admin/violations", json=body, headers={**h.auth("agency"), "Idempotency-Key": key}
    )


async def test_violation_suspends_on_its_dates_and_an_upheld_appeal_lifts_it(h: Harness) -> None:
    await f.world(h)
    r = await violation(h, "v-1", 6)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["period"]["points"] == 6
    added = [c for c in out["changes"] if c["change"] == "added" and c["status"] == "suspended"]
    assert [(c["from"], c["to"]) for c in added] == [("2026-03-02", "2026-06-02")]
    assert "jining-2024 §五(一)" in added[0]["rule"]
    await h.synced()
    assert (await f.check(h, service_date="2026-03-01"))["decision"] == "allow"
    denied = await f.check(h, service_date="2026-06-01")
    assert f.codes_of(denied) == {"PRACTITIONER_SUSPENDED": True}
    assert (await f.check(h, service_date="2026-06-02"))["decision"] == "allow"

    r = await h.client.post(
        f"/v1/admin/violations/{out['id']}/appeal",
        json={"outcome": "upheld", "date": "2026-04-01"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 200, r.text
    assert [c["change"] for c in r.json()["changes"] if c["status"] == "suspended"] == ["removed"]
    await h.synced()
    assert (await f.check(h, service_date="2026-03-10"))["decision"] == "allow"
    again = await h.client.post(
        f"/v1/admin/violations/{out['id']}/appeal",
        json={"outcome": "rejected", "date": "2026-04-02"},
        headers=h.auth("agency"),
    )
    assert again.status_code == 409


async def test_a_retried_violation_counts_once(h: Harness) -> None:
    await f.world(h)
    first = await violation(h, "v-retry", 3)
    second = await violation(h, "v-retry", 3)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = await violation(h, "v-other", 3)
    assert other.json()["period"]["points"] == 6  # 3 + 3, the retry did not count
    conflict = await violation(h, "v-retry", 4)
    assert conflict.status_code == 409
    missing = await h.client.post(
        "/v1/admin/violations",
        json={
            "practitioner_code": f.DOC,
            "institution_code": f.INST,
            "date": "2026-03-02",
            "points": 1,
            "item": "x",
        },
        headers=h.auth("agency"),
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_two_violations_at_the_same_moment_both_count_once(h: Harness) -> None:
    await f.world(h)
    a, b = await asyncio.gather(violation(h, "c-1", 3), violation(h, "c-2", 3))
    assert a.status_code == b.status_code == 201
    assert sorted([a.json()["period"]["points"], b.json()["period"]["points"]]) == [3, 6]
    await h.synced()
    assert f.codes_of(await f.check(h, service_date="2026-03-03")) == {
        "PRACTITIONER_SUSPENDED": True
    }
    async with h.runtime.engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM events WHERE kind='violation'"))
        ).scalar_one()
    assert n == 2


async def test_five_points_is_a_non_blocking_interview_warning(h: Harness) -> None:
    await f.world(h)
    r = await violation(h, "w-1", 5)
    assert r.status_code == 201, r.text
    await h.synced()
    a = await f.check(h, service_date="2026-05-01")
    assert a["decision"] == "allow"
    assert f.codes_of(a) == {"PRACTITIONER_WARNED": False}


async def test_violation_at_an_institution_the_practitioner_never_worked_at(h: Harness) -> None:
    await f.world(h)
    await f.institution(h, "H37081100002", name="任城区人民医院")
    r = await violation(h, "x-1", 3, institution_code="H37081100002")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.institution_code"


async def test_credit_file_lists_violations_appeals_and_sanctions(h: Harness) -> None:
    await f.world(h)
    v = (await violation(h, "f-1", 6)).json()
    await h.client.post(
        f"/v1/admin/violations/{v['id']}/appeal",
        json={"outcome": "rejected", "date": "2026-03-20"},
        headers=h.auth("agency"),
    )
    r = await h.client.get(f"/v1/admin/practitioners/{f.DOC}/file", headers=h.auth("agency"))
    assert r.status_code == 200
    body = r.json()
    assert body["violations"][0]["appeal"] == {"outcome": "rejected", "date": "2026-03-20"}
    assert body["violations"][0]["counts"] is True
    sanctions = body["by_profile"][0]["sanctions"]
    assert any(s["status"] == "suspended" and "§五(一)" in s["rule"] for s in sanctions)
    # As of a date before the violation, the file shows nothing yet.
    r = await h.client.get(
        f"/v1/admin/practitioners/{f.DOC}/file?as_of=2026-03-01", headers=h.auth("agency")
    )
    assert r.json()["violations"] == []
    assert r.json()["by_profile"][0]["sanctions"] == []


async def test_simulation_writes_nothing_and_names_bad_fields(h: Harness) -> None:
    body: dict[str, Any] = {
        "profile": "jining-2024",
        "as_of": "2026-12-31",
        "events": [
            {
                "type": "registration",
                "practitioner": "P1",
                "institution": "H1",
                "department": "D1",
                "start": "2024-01-01",
            },
            {
                "type": "violation",
                "id": "v1",
                "practitioner": "P1",
                "institution": "H1",
                "date": "2025-03-02",
                "points": 6,
            },
        ],
    }
    r = await h.client.post("/v1/admin/simulations", json=body, headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    ivs = r.json()["practitioners"]["P1"]["by_institution"]["H1"]
    assert [(i["from"], i["to"], i["status"]) for i in ivs] == [
        ("2025-03-02", "2025-06-02", "suspended")
    ]
    body["events"].append(
        {"type": "appeal", "violation": "v1", "outcome": "upheld", "date": "2025-04-01"}
    )
    r = await h.client.post("/v1/admin/simulations", json=body, headers=h.auth("agency"))
    assert r.json()["practitioners"]["P1"]["by_institution"]["H1"] == []
    body["events"].append({"type": "meteor", "date": "2025-01-01"})
    r = await h.client.post("/v1/admin/simulations", json=body, headers=h.auth("agency"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.events.3.type"
    async with h.runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one() == 0


async def test_checks_under_a_sanctioned_code_are_recorded_for_the_agency(h: Harness) -> None:
    await f.world(h)
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    await f.check(h, claim_id="claim-77")
    await f.check(h, service_date="2026-09-30")  # payable: not an attempt
    await h.runtime.attempts.flush()
    r = await h.client.get(
        f"/v1/admin/attempts?institution_code={f.INST}", headers=h.auth("agency")
    )
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 1
    assert items[0]["claim_id"] == "claim-77"
    assert items[0]["reasons"] == ["PRACTITIONER_SUSPENDED"]
    assert items[0]["practitioner_code"] == f.DOC


async def _zhoushan_doctor(h: Harness) -> tuple[str, str]:
    """A 舟山 hospital (working-day notice periods) and one registered doctor with an agreement."""
    inst, doc = "H33090200001", "D330902000001"
    await f.institution(h, inst, region="330900", name="舟山医院")
    await f.department(h, inst)
    await f.practitioner(h, doc)
    await f.registration(h, doc, inst)
    await f.agreement(h, doc, inst)
    return inst, doc


async def test_a_working_day_of_an_unknown_year_refuses_the_write_loudly(h: Harness) -> None:
    """舟山 sanctions take effect after 5 working days; 2027's calendar is not known yet."""
    inst, doc = await _zhoushan_doctor(h)
    body = {
        "practitioner_code": doc,
        "institution_code": inst,
        "date": "2026-12-28",
        "item_id": "7-9",  # §十二 (national-2024 §记分管理) the 7-9 band
        "points": 9,
    }
    headers = {**h.auth("agency"), "Idempotency-Key": "zs-1"}
    r = await h.client.post("/v1/admin/violations", json=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["code"] == "CALENDAR_YEAR_UNKNOWN"
    async with h.runtime.engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM events WHERE kind='violation'"))
        ).scalar_one()
    assert n == 0
    # The agency teaches the calendar 2027's first days; the same write then goes through.
    for day, working in (("2027-01-01", False), ("2027-01-04", True)):
        r = await h.client.put(
            f"/v1/admin/calendar/{day}",
            json={"working": working, "note": "元旦"},
            headers=h.auth("agency"),
        )
        assert r.status_code == 200, r.text
    r = await h.client.post("/v1/admin/violations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    suspended = [c for c in r.json()["changes"] if c["status"] == "suspended"]
    assert suspended
    assert suspended[0]["from"] > "2026-12-28"  # after the notice period


async def test_a_calendar_override_rejudges_sanctions_counted_in_working_days(h: Harness) -> None:
    """舟山 §十六: a sanction takes effect five working days after the decision. Declaring a
    day a holiday after the fact moves the start, and the checks follow."""
    inst, doc = await _zhoushan_doctor(h)
    body = {
        "practitioner_code": doc,
        "institution_code": inst,
        "date": "2026-11-02",
        "item_id": "7-9",
        "points": 9,
    }
    r = await h.client.post(
        "/v1/admin/violations", json=body, headers={**h.auth("agency"), "Idempotency-Key": "zs-2"}
    )
    assert r.status_code == 201, r.text
    [start] = [c["from"] for c in r.json()["changes"] if c["status"] == "suspended"]
    assert start == "2026-11-09"  # Mon 2 Nov + 5 working days
    await h.synced()

    async def decision(day: str) -> str:
        a = await f.check(
            h, role="gateway", institution_code=inst, practitioner_code=doc, service_date=day
        )
        return str(a["decision"])

    assert await decision("2026-11-09") == "deny"
    r = await h.client.put(
        "/v1/admin/calendar/2026-11-04",
        json={"working": False, "note": "台风停工"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 200, r.text
    await h.synced()
    assert await decision("2026-11-09") == "allow"
    assert await decision("2026-11-10") == "deny"
