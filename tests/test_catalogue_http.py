"""Violations recorded by catalogue item through HTTP (issue 19): the catalogue reads, fixed and
range points, refusals that write nothing, the officer's documented exception, acts, the
credit file, the what-if, and a ledger written before catalogues replaying unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app import codes
from app.db.tables import events
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

LANZHOU, LANZHOU_DOC = "H62010200001", "D620102000001"


async def post(h: Harness, key: str, **fields: Any) -> Any:
    body = {"practitioner_code": f.DOC, "institution_code": f.INST, "date": "2026-03-02", **fields}
    return await h.client.post(
        "/v1/admin/violations", json=body, headers={**h.auth("agency"), "Idempotency-Key": key}
    )


async def violation_count(h: Harness) -> int:
    async with h.runtime.engine.connect() as conn:
        n: int = (
            await conn.execute(text("SELECT count(*) FROM events WHERE kind='violation'"))
        ).scalar_one()
    return n


async def test_the_catalogue_of_a_profile_and_of_an_institutions_region(h: Harness) -> None:
    r = await h.client.get("/v1/admin/profiles/jining-2024/catalogue", headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 23
    revoked = next(i for i in body["items"] if i["id"] == "4.4.4")
    assert revoked == {
        "id": "4.4.4",
        "article": "jining-2024 §四(四)4 每次扣12分",
        "act": "被卫生健康部门吊销执业证书，或者注销注册、收回执业证书的",
        "points": "12",
        "min_points": 12,
        "max_points": 12,
        "one_shot": True,
    }
    assert "按最高分值扣分" in body["combination"]["rule"]

    await f.world(h)
    r = await h.client.get(f"/v1/admin/institutions/{f.INST}/catalogue", headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    assert (r.json()["institution_code"], r.json()["profile"]) == (f.INST, "jining-2024")
    assert r.json()["items"] == body["items"]

    r = await h.client.get(
        "/v1/admin/profiles/sichuan-2025/catalogue?on=2025-03-25", headers=h.auth("agency")
    )
    assert r.json()["version"] == "national-2024"
    missing = await h.client.get("/v1/admin/profiles/nowhere-1/catalogue", headers=h.auth("agency"))
    assert (missing.status_code, missing.json()["code"]) == (404, "PROFILE_NOT_FOUND")
    nobody = await h.client.get(
        "/v1/admin/institutions/H37080299999/catalogue", headers=h.auth("agency")
    )
    assert (nobody.status_code, nobody.json()["code"]) == (404, "INSTITUTION_NOT_FOUND")
    his = await h.client.get("/v1/admin/profiles/jining-2024/catalogue", headers=h.auth("his"))
    assert his.status_code == 403


async def test_a_fixed_item_takes_its_points_and_the_credit_file_shows_the_act(
    h: Harness,
) -> None:
    await f.world(h)
    r = await post(h, "i-1", item_id="4.3.4", description="出借医保代码给进修医生")
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["points"], out["item_id"], out["basis"]) == (6, "4.3.4", "catalogue")
    assert out["article"] == "jining-2024 §四(三)4 每次扣6分"
    assert out["act"] == "借用、套用或出借医保代码的行为"
    assert out["period"]["points"] == 6
    added = [c for c in out["changes"] if c["change"] == "added" and c["status"] == "suspended"]
    assert [(c["from"], c["to"]) for c in added] == [("2026-03-02", "2026-06-02")]
    await h.synced()
    assert f.codes_of(await f.check(h, service_date="2026-04-01")) == {
        "PRACTITIONER_SUSPENDED": True
    }

    file = await h.client.get(f"/v1/admin/practitioners/{f.DOC}/file", headers=h.auth("agency"))
    [v] = file.json()["violations"]
    assert {k: v[k] for k in ("item_id", "article", "act", "basis", "points")} == {
        "item_id": "4.3.4",
        "article": "jining-2024 §四(三)4 每次扣6分",
        "act": "借用、套用或出借医保代码的行为",
        "basis": "catalogue",
        "points": 6,
    }


async def _lanzhou(h: Harness) -> None:
    await f.institution(h, LANZHOU, region="620102", name="兰州某医院")
    await f.department(h, LANZHOU)
    await f.practitioner(h, LANZHOU_DOC)
    await f.registration(h, LANZHOU_DOC, LANZHOU)
    await f.agreement(h, LANZHOU_DOC, LANZHOU, start="2025-01-01")


async def test_a_range_item_takes_points_within_its_range_only(h: Harness) -> None:
    """兰州 第十四条 一次扣计1-3分: 4 is refused naming the item and its range; nothing is
    written; 3 is recorded."""
    await _lanzhou(h)
    where = {"practitioner_code": LANZHOU_DOC, "institution_code": LANZHOU}
    for key, points in (("r-1", 4), ("r-2", None)):
        r = await post(h, key, item_id="14.2", points=points, **where)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "POINTS_OUT_OF_RANGE"
        assert problem["errors"][0]["field"] == "body.points"
        assert "14.2" in problem["detail"]
        assert "1-3" in problem["detail"]
        assert "lanzhou-2014 §十四(二)" in problem["detail"]
    assert await violation_count(h) == 0
    r = await post(h, "r-3", item_id="14.2", points=3, **where)
    assert r.status_code == 201, r.text
    assert (r.json()["points"], r.json()["basis"]) == (3, "catalogue")


async def test_an_unknown_item_or_free_points_without_a_reason_are_refused(h: Harness) -> None:
    await f.world(h)
    unknown = await post(h, "u-1", item_id="2.1.1.1")  # 威海's id, not 济宁's
    assert (unknown.status_code, unknown.json()["code"]) == (422, "ITEM_UNKNOWN")
    assert unknown.json()["errors"][0]["field"] == "body.item_id"
    free = await post(h, "u-2", points=7, item="某违规")
    assert (free.status_code, free.json()["code"]) == (422, "ITEM_REQUIRED")
    other = await post(h, "u-3", item_id="4.3.4", points=7)
    assert (other.status_code, other.json()["code"]) == (422, "POINTS_OUT_OF_RANGE")
    wordless = await post(h, "u-4", points=7, exception_reason="局务会决定")
    assert wordless.status_code == 422
    assert await violation_count(h) == 0


async def test_an_officers_exception_is_marked_in_the_ledger_and_the_credit_file(
    h: Harness,
) -> None:
    await f.world(h)
    r = await post(h, "e-1", points=7, item="跨年度多次推诿", exception_reason="局务会2026-3号决定")
    assert r.status_code == 201, r.text
    assert (r.json()["basis"], r.json()["item_id"], r.json()["points"]) == (
        "exception",
        None,
        7,
    )
    tied = await post(
        h, "e-2", date="2026-04-01", item_id="4.4.5", points=1, exception_reason="情节轻微"
    )
    assert tied.status_code == 201, tied.text
    assert (tied.json()["basis"], tied.json()["article"]) == (
        "exception",
        "jining-2024 §四(四)5 每次扣12分",
    )
    async with h.runtime.engine.connect() as conn:
        stored = [
            p
            for (p,) in await conn.execute(
                events.select().with_only_columns(events.c.payload).order_by(events.c.id)
            )
            if p.get("basis")
        ]
    assert [(p["basis"], p["exception_reason"]) for p in stored] == [
        ("exception", "局务会2026-3号决定"),
        ("exception", "情节轻微"),
    ]
    file = (
        await h.client.get(f"/v1/admin/practitioners/{f.DOC}/file", headers=h.auth("agency"))
    ).json()
    assert [(v["basis"], v["exception_reason"]) for v in file["violations"]] == [
        ("exception", "局务会2026-3号决定"),
        ("exception", "情节轻微"),
    ]
    # §六(三): the §四(四) act is a 严重违规 whatever points the exception gave it
    inst = await h.client.get(f"/v1/admin/institutions/{f.INST}", headers=h.auth("agency"))
    notices = [n for n in inst.json()["notices"] if n["kind"] == "key_monitoring"]
    assert [n["date"] for n in notices] == ["2026-04-01"]
    assert "§四(四)5" in notices[0]["detail"]


async def test_items_of_one_act_count_once_and_an_act_keeps_its_day(h: Harness) -> None:
    """济宁 §四: one act under 6 + 3 counts 6; another act of the same inspection counts too."""
    await f.world(h)
    a = await post(h, "a-1", item_id="4.3.1", act_id="A1", inspection_id="I-2026-07")
    b = await post(h, "a-2", item_id="4.2.2", act_id="A1", inspection_id="I-2026-07")
    assert a.status_code == b.status_code == 201, b.text
    assert b.json()["period"]["points"] == 6
    c = await post(h, "a-3", item_id="4.1.1", act_id="A2", inspection_id="I-2026-07")
    assert c.json()["period"]["points"] == 7
    moved = await post(h, "a-4", date="2026-03-03", item_id="4.1.2", act_id="A1")
    assert (moved.status_code, moved.json()["code"]) == (422, "ACT_MISMATCH")
    assert moved.json()["errors"][0]["field"] == "body.act_id"
    assert await violation_count(h) == 3


async def test_a_violation_written_before_catalogues_replays_as_it_did(h: Harness) -> None:
    """A ledger row as the old write stored it (free points, free words, none of the catalogue
    fields) is judged by its points: the same timeline as the same act recorded by item."""
    await f.world(h)
    other = "D370802000002"
    await f.practitioner(h, other)
    await f.registration(h, other)
    await f.agreement(h, other)
    token = codes.practitioner_token(f.DOC, h.runtime.settings.pii_secret)
    async with h.runtime.engine.begin() as conn:
        await conn.execute(
            events.insert().values(
                kind="violation",
                practitioner_token=token,
                institution_code=f.INST,
                occurred_on=None,
                payload={
                    "id": "VOLD000000001",
                    "date": "2026-03-02",
                    "points": 6,
                    "item": "第十二条第3项",
                    "description": "",
                    "department": None,
                },
            )
        )
    # any later write about the practitioner re-judges them from the whole ledger
    r = await h.client.post(
        "/v1/admin/exams",
        json={"practitioner_code": f.DOC, "date": "2026-02-01", "passed": True},
        headers=h.auth("agency"),
    )
    assert r.status_code == 201, r.text
    by_item = await post(h, "n-1", practitioner_code=other, item_id="4.3.2")
    assert by_item.status_code == 201, by_item.text

    async def sanctions(code: str) -> list[tuple[str, str | None, str]]:
        file = await h.client.get(f"/v1/admin/practitioners/{code}/file", headers=h.auth("agency"))
        [judged] = file.json()["by_profile"]
        return [(s["from"], s["to"], s["status"]) for s in judged["sanctions"]]

    assert await sanctions(f.DOC) == [("2026-03-02", "2026-06-02", "suspended")]
    assert await sanctions(f.DOC) == await sanctions(other)
    file = await h.client.get(f"/v1/admin/practitioners/{f.DOC}/file", headers=h.auth("agency"))
    [old] = file.json()["violations"]
    assert (old["basis"], old["item_id"], old["item"]) == ("legacy", None, "第十二条第3项")
    await h.synced()
    assert f.codes_of(await f.check(h, service_date="2026-04-01")) == {
        "PRACTITIONER_SUSPENDED": True
    }


async def test_the_what_if_takes_item_ids(h: Harness) -> None:
    body: dict[str, Any] = {
        "profile": "lanzhou-2014",
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
                "item_id": "13.5",
            },
            {
                "type": "violation",
                "id": "v2",
                "practitioner": "P1",
                "institution": "H1",
                "date": "2025-03-02",
                "item_id": "14.3",
                "points": 1,
            },
        ],
    }
    r = await h.client.post("/v1/admin/simulations", json=body, headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    p1 = r.json()["practitioners"]["P1"]
    assert p1["periods"][0]["points"] == 6
    assert [(i["from"], i["status"]) for i in p1["everywhere"]] == [("2025-03-02", "suspended")]
    body["events"][2]["points"] = 4
    r = await h.client.post("/v1/admin/simulations", json=body, headers=h.auth("agency"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.events.2.points"
    assert "1-3" in r.json()["detail"]
    body["events"][2] = {**body["events"][2], "item_id": "99.1", "points": 1}
    r = await h.client.post("/v1/admin/simulations", json=body, headers=h.auth("agency"))
    assert r.json()["errors"][0]["field"] == "body.events.2.item_id"
    body["events"][2] = {**body["events"][2], "catalogue": "jining-2024"}
    r = await h.client.post("/v1/admin/simulations", json=body, headers=h.auth("agency"))
    assert r.json()["errors"][0]["field"] == "body.events.2.catalogue"
