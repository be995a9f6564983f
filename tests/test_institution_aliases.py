"""Institution aliases: a hospital's own code for itself, agency-wide, resolved in the plain check
contract too — never standing where a national code stands, never taken twice, binding a his key
to its own institution's codes and to nothing else; and an institution's local codes of all three
kinds loaded in bulk, all or nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

OTHER = "H37081100002"
COUNTED = ("institution_aliases", "aliases", "events", "audit_log", "projections")


async def _counts(h: Harness) -> dict[str, int]:
    return await f.counts(h, COUNTED)


async def _put(h: Harness, local: str, inst: str) -> Any:
    return await h.client.put(
        f"/v1/admin/institution-aliases/{local}",
        json={"institution_code": inst},
        headers=h.auth("agency"),
    )


async def _world(h: Harness) -> None:
    await f.world(h)
    await f.institution(h, OTHER, name="济宁市第二人民医院")
    await f.department(h, OTHER)
    assert (await _put(h, "011134", f.INST)).status_code == 200
    assert (await _put(h, "CDSDERMYY", OTHER)).status_code == 200
    await h.synced()


async def test_a_check_under_an_institution_alias_answers_as_the_national_code(
    h: Harness,
) -> None:
    await _world(h)
    national = await f.check(h)
    local = await f.check(h, institution_code="011134")
    keep = ("decision", "reasons", "data_version", "service_date")
    assert {k: local[k] for k in keep} == {k: national[k] for k in keep}
    assert local["decision"] == "allow"
    # lower case and full-width digits are normalised first, as every code is
    again = await f.check(h, institution_code="０１１１３４")
    assert again["decision"] == "allow"
    batch = await h.client.post(
        "/v1/checks/batch",
        json={
            "checks": [
                {"institution_code": c, "department_code": f.DEPT, "practitioner_code": f.DOC}
                for c in (f.INST, "011134", "cdsdermyy")
            ]
        },
        headers=h.auth("gateway"),
    )
    results = batch.json()["results"]
    assert [r["decision"] for r in results] == ["allow", "allow", "deny"]
    assert f.codes_of(results[2]) == {"PRACTITIONER_NOT_REGISTERED": True}  # OTHER's


async def test_a_his_key_reaches_its_institution_through_its_aliases_and_nothing_else(
    h: Harness,
) -> None:
    await _world(h)
    for code in ("CDSDERMYY", "NOBODY01", OTHER):
        r = await h.client.post(
            "/v1/checks",
            json={
                "institution_code": code,
                "department_code": f.DEPT,
                "practitioner_code": f.DOC,
            },
            headers=h.auth("his"),
        )
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "INSTITUTION_FORBIDDEN"
        assert "CDSDERMYY" not in r.text
    r = await h.client.post(
        "/v1/checks/batch",
        json={
            "checks": [
                {"institution_code": c, "department_code": f.DEPT, "practitioner_code": f.DOC}
                for c in ("011134", "CDSDERMYY")
            ]
        },
        headers=h.auth("his"),
    )
    assert r.status_code == 403
    assert r.json()["errors"][0]["field"] == "body.checks.1.institution_code"


async def test_an_unknown_local_institution_code_answers_institution_unknown(h: Harness) -> None:
    await _world(h)
    for code in ("NOBODY01", "H37089999999"):
        a = await f.check(h, role="gateway", institution_code=code)
        assert (a["decision"], f.codes_of(a)) == ("deny", {"INSTITUTION_UNKNOWN": True})


async def _written(h: Harness, method: str, url: str, body: Any = None) -> Any:
    """An admin write, and its invalidation landed in this process's L1 (pub/sub is
    asynchronous: until then the L1 may hold what the write replaced)."""
    epoch = h.runtime.l1.epoch
    r = await h.client.request(method, url, json=body, headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    deadline = asyncio.get_running_loop().time() + 5
    while h.runtime.l1.enabled and h.runtime.l1.epoch == epoch:
        assert asyncio.get_running_loop().time() < deadline, "no invalidation arrived"
        await asyncio.sleep(0.01)
    return r.json()


@pytest.mark.parametrize("path", ["cache", "database"])
async def test_an_alias_removed_or_moved_stops_resolving(servers: Servers, path: str) -> None:
    await reset(servers)
    async for h in start_harness(make_settings(servers, max_staleness_s=0)):
        await _world(h)
        await f.wait_for_l1(h)
        h.runtime.checks.set_mirror(behind=path == "database", regressed=False, verified=True)
        assert (await f.check(h, role="gateway", institution_code="011134"))["source"] == path
        out = await _written(h, "DELETE", "/v1/admin/institution-aliases/011134")
        assert out == {"local_code": "011134", "institution_code": f.INST}
        a = await f.check(h, role="gateway", institution_code="011134")
        assert f.codes_of(a) == {"INSTITUTION_UNKNOWN": True}
        # free again: another institution may take it, and checks follow
        await _written(
            h, "PUT", "/v1/admin/institution-aliases/011134", {"institution_code": OTHER}
        )
        a = await f.check(h, role="gateway", institution_code="011134")
        assert f.codes_of(a) == {"PRACTITIONER_NOT_REGISTERED": True}


async def test_an_alias_shaped_like_a_national_code_or_taken_is_refused(h: Harness) -> None:
    await _world(h)
    before = await _counts(h)
    r = await _put(h, "H37089999999", f.INST)
    assert r.status_code == 422, r.text
    assert (r.json()["code"], r.json()["errors"][0]["field"]) == (
        "ALIAS_COLLIDES",
        "path.local_code",
    )
    r = await _put(h, "cdsdermyy", f.INST)  # OTHER's, however it is spelt
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["errors"][0]["field"]) == ("ALIAS_TAKEN", "path.local_code")
    r = await _put(h, "NEW01", "H37089999999")
    assert (r.status_code, r.json()["code"]) == (404, "INSTITUTION_NOT_FOUND")
    assert await _counts(h) == before
    # the same mapping again is no change
    assert (await _put(h, "011134", f.INST)).status_code == 200
    r = await h.client.get(f"/v1/admin/institutions/{f.INST}/aliases", headers=h.auth("agency"))
    assert {"kind": "institution", "local_code": "011134", "target": f.INST} in r.json()
    r = await h.client.get("/v1/admin/institution-aliases", headers=h.auth("agency"))
    assert r.json() == [
        {"local_code": "011134", "institution_code": f.INST},
        {"local_code": "CDSDERMYY", "institution_code": OTHER},
    ]


async def test_local_codes_of_all_three_kinds_load_in_bulk(h: Harness) -> None:
    await _world(h)
    await f.department(h, code="ZZ9", name="康复科")
    body = {
        "institution": ["H0001", "jnsdyrmyy"],
        "departments": [{"local_code": "0301", "target": "a01"}],
        "practitioners": [
            {"local_code": "00129", "target": f.DOC},
            {"local_code": "ys01", "target": f.DOC},
        ],
    }
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}/local-codes", json=body, headers=h.auth("agency")
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "institution_code": f.INST,
        "institution": 2,
        "departments": 1,
        "practitioners": 2,
    }
    await h.synced()
    a = await f.check(
        h, institution_code="JNSDYRMYY", department_code="0301", practitioner_code="YS01"
    )
    assert (a["decision"], a["reasons"]) == ("allow", [])
    # re-pointed by a second load
    body = {"departments": [{"local_code": "0301", "target": "ZZ9"}]}
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}/local-codes", json=body, headers=h.auth("agency")
    )
    assert r.status_code == 200, r.text
    a = await f.check(
        h, institution_code="H0001", department_code="0301", practitioner_code="00129"
    )
    assert f.codes_of(a) == {"PRACTITIONER_OTHER_DEPARTMENT": False}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (
            {"practitioners": [{"local_code": "D370802000009", "target": f.DOC}]},
            422,
            "ALIAS_COLLIDES",
            "body.practitioners.0.local_code",
        ),
        (
            {
                "departments": [
                    {"local_code": "0301", "target": "A01"},
                    {"local_code": "A01", "target": "A01"},
                ]
            },
            422,
            "ALIAS_COLLIDES",
            "body.departments.1.local_code",
        ),
        (
            {"departments": [{"local_code": "0301", "target": "NOPE"}]},
            404,
            "DEPARTMENT_NOT_FOUND",
            "body.departments.0.target",
        ),
        (
            {"practitioners": [{"local_code": "00129", "target": "D370802000099"}]},
            404,
            "PRACTITIONER_NOT_FOUND",
            "body.practitioners.0.target",
        ),
        ({"institution": ["NEW01", "CDSDERMYY"]}, 409, "ALIAS_TAKEN", "body.institution.1"),
        ({"institution": ["P37080200001"]}, 422, "ALIAS_COLLIDES", "body.institution.0"),
        (
            {"practitioners": [{"local_code": "X1", "target": f.DOC}] * 2},
            422,
            "INVALID_FIELD",
            "body.practitioners.1.local_code",
        ),
        ({}, 422, "VALIDATION_FAILED", "body"),
    ],
)
async def test_a_bulk_load_with_one_bad_entry_writes_nothing_and_names_it(
    h: Harness, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    await _world(h)
    ok = {"institution": ["FINE01"], "departments": [], "practitioners": []}
    before = await _counts(h)
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}/local-codes",
        json={**ok, **body} if body else body,
        headers=h.auth("agency"),
    )
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["code"] == code
    assert problem["errors"][0]["field"] == field
    assert "D370802000009" not in r.text
    assert await _counts(h) == before
