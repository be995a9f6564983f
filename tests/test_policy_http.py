"""Issue 15's readings end to end through HTTP: the national tally across two regions, re-entry
after a termination, 舟山's binding 注销 ban, 威海's bonus points shortening a suspension."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

BEIJING, CHENGDU = "H11010500001", "H51010400001"  # national-2024 (110100), sichuan-2025 (510100)
DOC = "D110105000001"


def _band(points: int) -> str:
    """The national framework's band holding ``points`` (its catalogue's item ids)."""
    low = (points - 1) // 3 * 3 + 1
    return f"{low}-{low + 2}"


async def _violation(
    h: Harness,
    key: str,
    inst: str,
    day: str,
    points: int,
    doc: str = DOC,
    item_id: str | None = None,
) -> Any:
    r = await h.client.post(
        "/v1/admin/violations",
        json={
            "practitioner_code": doc,
            "institution_code": inst,
            "date": day,
            "item_id": item_id or _band(points),
            "points": points,
        },
        headers={**h.auth("agency"), "Idempotency-Key": key},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _decision(h: Harness, inst: str, day: str, doc: str = DOC) -> str:
    a = await f.check(
        h, role="gateway", institution_code=inst, practitioner_code=doc, service_date=day
    )
    return str(a["decision"])


async def _two_regions(h: Harness) -> None:
    await f.institution(h, BEIJING, region="110105", name="北京某医院")
    await f.institution(h, CHENGDU, region="510104", name="成都某医院")
    for inst in (BEIJING, CHENGDU):
        await f.department(h, inst)
    await f.practitioner(h, DOC)
    await f.registration(h, DOC, BEIJING, start="2024-01-01")
    await f.registration(h, DOC, CHENGDU, start="2024-06-01")


async def test_points_add_up_across_two_national_framework_regions(h: Harness) -> None:
    """医保发〔2024〕23号 跨区域联动: 5 points in 北京 + 4 in 成都 = 9; 四川's 细则 suspends 2
    months at its site, the framework's profile 3 months at the 北京 site."""
    await _two_regions(h)
    await _violation(h, "b-1", BEIJING, "2026-03-02", 5)
    out = await _violation(h, "c-1", CHENGDU, "2026-04-01", 4)
    assert out["period"]["points"] == 9
    added = {
        (c["profile"], c["from"], c["to"])
        for c in out["changes"]
        if c["change"] == "added" and c["status"] == "suspended"
    }
    assert added == {
        ("sichuan-2025", "2026-04-01", "2026-06-01"),
        ("national-2024", "2026-04-01", "2026-07-01"),
    }
    await h.synced()
    assert await _decision(h, CHENGDU, "2026-03-31") == "allow"
    assert await _decision(h, CHENGDU, "2026-05-31") == "deny"
    assert await _decision(h, CHENGDU, "2026-06-01") == "allow"
    assert await _decision(h, BEIJING, "2026-06-15") == "deny"
    assert await _decision(h, BEIJING, "2026-07-01") == "allow"
    file = await h.client.get(f"/v1/admin/practitioners/{DOC}/file", headers=h.auth("agency"))
    assert {p["profile"]: p["periods"][0]["points"] for p in file.json()["by_profile"]} == {
        "national-2024": 9,
        "sichuan-2025": 9,
    }


async def test_registering_again_after_the_ban_makes_them_payable_there(h: Harness) -> None:
    """终止之日起1年内不得再次登记备案: registered again at 成都 after the year — payable there,
    still terminated at 北京 where they were not registered again."""
    await _two_regions(h)
    await _violation(h, "t-1", CHENGDU, "2026-02-02", 9)
    await _violation(h, "t-2", CHENGDU, "2026-05-04", 3)
    await f.department(h, CHENGDU, "A02", name="外科")
    await f.registration(h, DOC, CHENGDU, dept="A02", start="2027-05-04")
    await h.synced()
    assert await _decision(h, CHENGDU, "2027-05-03") == "deny"
    assert await _decision(h, CHENGDU, "2027-05-04") == "allow"
    assert await _decision(h, BEIJING, "2027-05-04") == "deny"


async def _zhoushan(h: Harness) -> tuple[str, str]:
    inst, doc = "H33090200001", "D330902000001"
    await f.institution(h, inst, region="330900", name="舟山医院")
    await f.department(h, inst)
    await f.practitioner(h, doc)
    await f.registration(h, doc, inst)
    await f.agreement(h, doc, inst, start="2025-01-01", end=None)
    return inst, doc


async def test_a_restore_inside_a_zhoushan_cancellation_ban_is_refused(h: Harness) -> None:
    """舟山 §十四 注销 → five years without an agreement: a ban, so an early restore is a 422 and
    nothing is written; §十六 the 注销 takes effect five working days after the decision."""
    inst, doc = await _zhoushan(h)
    await f.practitioner_action(h, doc, "cancel_code", "2026-03-02", reason="情节严重")
    await h.synced()
    assert await _decision(h, inst, "2026-03-06", doc) == "allow"
    assert await _decision(h, inst, "2026-03-09", doc) == "deny"
    r = await h.client.post(
        f"/v1/admin/practitioners/{doc}/actions",
        json={"action": "restore", "start": "2027-01-04", "reason": "复核"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "RESTORE_BANNED"
    assert r.json()["errors"][0]["field"] == "body.start"
    assert "2031-03-09" in r.json()["detail"]
    async with h.runtime.engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM events WHERE kind='practitioner_action'"))
        ).scalar_one()
    assert n == 1
    await f.practitioner_action(h, doc, "restore", "2031-03-10", reason="期满")
    await h.synced()
    assert await _decision(h, inst, "2031-03-10", doc) == "allow"


async def test_weihai_bonus_points_let_an_officer_shorten_a_suspension(h: Harness) -> None:
    """威海 §二(三): 加分 during a suspension → the officer may shorten it (酌情); the exam still
    restores (§二(二)2). Without a bonus in the suspension the shortening changes nothing."""
    inst, rid = "H37100200001", "371002198001010010"
    await f.institution(h, inst, region="371000", name="威海市立医院")
    await f.department(h, inst)
    await f.practitioner(h, rid)
    await f.registration(h, rid, inst)
    await _violation(h, "w-1", inst, "2026-01-12", 6, doc=rid, item_id="2.1.4.2")  # §二(一)4(2)
    await _exam(h, rid, "2026-02-20")
    r = await h.client.post(
        "/v1/admin/practitioners/" + rid + "/actions",
        json={"action": "shorten", "start": "2026-02-16", "reason": "举报冒名住院"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body"
    refused = await f.practitioner_action(h, rid, "shorten", "2026-02-16", "2026-03-10")
    await h.synced()
    assert refused["action"] == "shorten"
    assert await _decision(h, inst, "2026-03-10", rid) == "deny"  # no bonus yet: still to 04-12
    r = await h.client.post(
        "/v1/admin/bonuses",
        json={"practitioner_code": rid, "date": "2026-02-02", "points": 5, "item": "举报冒名住院"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 201, r.text
    shortened = [c for c in r.json()["changes"] if c["status"] == "suspended"]
    assert {(c["change"], c["to"]) for c in shortened} == {
        ("removed", "2026-04-12"),
        ("added", "2026-03-10"),
    }
    await h.synced()
    assert await _decision(h, inst, "2026-03-09", rid) == "deny"
    assert await _decision(h, inst, "2026-03-10", rid) == "allow"


async def _exam(h: Harness, code: str, day: str) -> None:
    r = await h.client.post(
        "/v1/admin/exams",
        json={"practitioner_code": code, "date": day, "passed": True},
        headers=h.auth("agency"),
    )
    assert r.status_code == 201, r.text
