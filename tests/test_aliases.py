"""Local-code aliases never hide a real code: an alias that would shadow a department or a
practitioner is refused, a department that would be shadowed by an alias is refused, and where
such a pair already exists (data written before these rules) the real code wins at check time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.admin.unit_of_work import Audit, UnitOfWork
from app.admin.writes import Write, Writes
from app.db.tables import aliases
from app.projection.ledger import WriteContext
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

OTHER_INST = "H37081100002"
DOC2 = "D370802000002"
RID = "371002198001010010"
COUNTED = ("departments", "aliases", "events", "audit_log", "projections", "outbox")


async def _counts(h: Harness) -> dict[str, int]:
    async with h.runtime.engine.connect() as conn:
        return {
            t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in COUNTED
        }


async def _put_alias(h: Harness, kind: str, local: str, target: str) -> Any:
    return await h.client.put(
        f"/v1/admin/institutions/{f.INST}/aliases/{kind}/{local}",
        json={"target": target},
        headers=h.auth("agency"),
    )


async def _legacy_alias(h: Harness, kind: str, local: str, target: str) -> None:
    """An alias row as a release before these rules could have written it, projected by the
    same recompute and mirrored by the same sync path as any write."""

    async def work(uow: UnitOfWork) -> dict[str, Any]:
        await uow.conn.execute(
            aliases.insert().values(
                institution_code=f.INST, kind=kind, local_code=local, target=target
            )
        )
        await uow.record(
            "alias_set",
            {"kind": kind, "local_code": local, "target": target},
            institution=f.INST,
            alias=local if kind == "practitioner" else None,
            audit=Audit("alias.put", f"{f.INST}/{kind}/{local}"),
        )
        return {}

    await Writes(h.runtime.engine).run(Write(WriteContext(None, "legacy")), work)
    await h.synced()


async def _suspended_zz9(h: Harness) -> None:
    """济宁: A02 payable, ZZ9's settlement suspended through the service date."""
    await f.world(h)
    await f.department(h, code="A02", name="外科")
    await f.department(h, code="ZZ9", name="康复科")
    await f.department_action(h, "suspend", "2026-11-01", "2027-02-01", dept="ZZ9")
    await h.synced()


async def test_an_alias_over_a_suspended_department_is_refused_and_its_deny_stands(
    h: Harness,
) -> None:
    await _suspended_zz9(h)
    before = await _counts(h)
    r = await _put_alias(h, "department", "zz9", "A02")
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "ALIAS_COLLIDES"
    assert problem["errors"][0]["field"] == "path.local_code"
    assert await _counts(h) == before
    a = await f.check(h, department_code="ZZ9")
    assert a["decision"] == "deny"
    assert f.codes_of(a) == {"DEPARTMENT_SUSPENDED": True, "PRACTITIONER_OTHER_DEPARTMENT": False}


@pytest.mark.parametrize("path", ["cache", "database"])
async def test_a_real_department_wins_over_an_alias_already_stored(
    servers: Servers, path: str
) -> None:
    await reset(servers)
    # The staleness watch off, so that the flag below alone chooses where checks read.
    async for h in start_harness(make_settings(servers, max_staleness_s=0)):
        await _real_department_wins(h, path)


async def _real_department_wins(h: Harness, path: str) -> None:
    await _suspended_zz9(h)
    await _legacy_alias(h, "department", "ZZ9", "A02")
    checks = h.runtime.checks
    checks.set_mirror(behind=path == "database", regressed=False, verified=True)
    a = await f.check(h, department_code="ZZ9")
    assert a["source"] == path
    assert a["decision"] == "deny", a
    assert f.codes_of(a)["DEPARTMENT_SUSPENDED"] is True
    # The aliases that do not collide still resolve.
    await _put_alias(h, "department", "KF", "ZZ9")
    await h.synced()
    assert f.codes_of(await f.check(h, department_code="KF"))["DEPARTMENT_SUSPENDED"] is True
    assert (await f.check(h, department_code="A02"))["decision"] == "allow"


async def test_a_new_department_shadowed_by_an_alias_is_refused(h: Harness) -> None:
    await f.world(h)
    await f.department(h, code="A02", name="外科")
    assert (await _put_alias(h, "department", "NK", "A02")).status_code == 200
    await h.synced()
    before = await _counts(h)
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}/departments/nk",
        json={"name": "内科二病区"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "ALIAS_COLLIDES"
    assert r.json()["errors"][0]["field"] == "path.department_code"
    assert await _counts(h) == before
    # Same refusal from a bulk import, naming the record; the whole import is refused.
    r = await h.client.post(
        "/v1/admin/bulk",
        json={
            "departments": [
                {"institution_code": f.INST, "code": "A03", "name": "儿科"},
                {"institution_code": f.INST, "code": "NK", "name": "内科二病区"},
            ]
        },
        headers=h.auth("agency"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "ALIAS_COLLIDES"
    assert r.json()["errors"][0]["field"] == "body.departments.1.code"
    assert await _counts(h) == before
    # The same code is free at another institution, and after the alias is removed.
    await f.institution(h, OTHER_INST, name="济宁市第二人民医院")
    await f.department(h, OTHER_INST, code="NK")
    r = await h.client.delete(
        f"/v1/admin/institutions/{f.INST}/aliases/department/NK", headers=h.auth("agency")
    )
    assert r.status_code == 200, r.text
    await f.department(h, code="NK", name="内科二病区")
    await f.department_action(h, "suspend", "2026-11-01", "2027-02-01", dept="NK")
    await h.synced()
    assert f.codes_of(await f.check(h, department_code="NK"))["DEPARTMENT_SUSPENDED"] is True


async def test_an_existing_department_keeps_taking_updates_beside_an_old_alias(
    h: Harness,
) -> None:
    await _suspended_zz9(h)
    await _legacy_alias(h, "department", "ZZ9", "A02")
    out = await f.department(h, code="ZZ9", name="康复医学科")
    assert out["name"] == "康复医学科"


@pytest.mark.parametrize("local", [DOC2, "hy370802000009", RID])
async def test_a_practitioner_alias_shaped_like_a_national_code_is_refused(
    h: Harness, local: str
) -> None:
    await f.world(h)
    await h.synced()
    before = await _counts(h)
    r = await _put_alias(h, "practitioner", local, f.DOC)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "ALIAS_COLLIDES"
    assert r.json()["errors"][0]["field"] == "path.local_code"
    assert RID not in r.text
    assert await _counts(h) == before


async def test_a_real_practitioner_wins_over_an_alias_already_stored(h: Harness) -> None:
    # DOC2 is a real doctor registered only at another institution; an old alias at INST maps
    # the same code to DOC, who may bill there. A claim under DOC2 at INST is DOC2's.
    await f.world(h)
    await f.institution(h, OTHER_INST, name="济宁市第二人民医院")
    await f.department(h, OTHER_INST)
    await f.practitioner(h, DOC2, name="李娜")
    await f.registration(h, DOC2, OTHER_INST)
    await _legacy_alias(h, "practitioner", DOC2, f.DOC)
    a = await f.check(h, practitioner_code=DOC2)
    assert a["decision"] == "deny", a
    assert f.codes_of(a)["PRACTITIONER_NOT_REGISTERED"] is True
    # Registered at INST too: DOC2's own status answers, not DOC's.
    await f.registration(h, DOC2)
    await f.practitioner_action(h, DOC2, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    a = await f.check(h, practitioner_code=DOC2)
    assert f.codes_of(a)["PRACTITIONER_SUSPENDED"] is True
    # A plain local code still resolves to its target.
    assert (await _put_alias(h, "practitioner", "0001", f.DOC)).status_code == 200
    await h.synced()
    assert (await f.check(h, practitioner_code="0001"))["decision"] == "allow"


async def test_a_removed_practitioner_alias_no_longer_resolves(h: Harness) -> None:
    await f.world(h)
    assert (await _put_alias(h, "practitioner", "0001", f.DOC)).status_code == 200
    await h.synced()
    assert (await f.check(h, practitioner_code="0001"))["decision"] == "allow"
    url = f"/v1/admin/institutions/{f.INST}/aliases/practitioner/0001"
    r = await h.client.delete(url, headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    await h.synced()
    a = await f.check(h, practitioner_code="0001")
    assert f.codes_of(a) == {"PRACTITIONER_UNKNOWN": True}
    r = await h.client.get(f"/v1/admin/institutions/{f.INST}/aliases", headers=h.auth("agency"))
    assert r.json() == []
    r = await h.client.delete(url, headers=h.auth("agency"))
    assert r.status_code == 404
    assert r.json()["code"] == "ALIAS_NOT_FOUND"
