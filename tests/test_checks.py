"""The check contract through HTTP: every reason code, dates, emergencies, aliases, batches,
and refusals of malformed requests."""

from __future__ import annotations

from typing import Any

import pytest

from app.cache.layout import institution_key
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

OTHER_INST = "H37081100002"


async def _ready(h: Harness) -> None:
    await f.world(h)
    await h.synced()


async def test_institution_unknown_is_a_reason_not_an_error(h: Harness) -> None:
    await _ready(h)
    a = await f.check(h, role="gateway", institution_code="H37089900009")
    assert a["decision"] == "deny"
    assert f.codes_of(a) == {"INSTITUTION_UNKNOWN": True}
    assert a["source"] == "cache"


@pytest.mark.parametrize(
    ("action", "code"),
    [("suspend", "INSTITUTION_SUSPENDED"), ("terminate", "INSTITUTION_TERMINATED")],
)
async def test_institution_sanction_is_judged_on_the_service_date(
    h: Harness, action: str, code: str
) -> None:
    await _ready(h)
    await f.institution_action(h, action, "2026-11-01", "2026-12-01")
    await h.synced()
    during = await f.check(h, service_date="2026-11-30")
    assert during["decision"] == "deny"
    reason = next(r for r in during["reasons"] if r["code"] == code)
    assert (reason["from"], reason["to"], reason["blocking"]) == ("2026-11-01", "2026-12-01", True)
    assert (await f.check(h, service_date="2026-12-01"))["decision"] == "allow"
    assert (await f.check(h, service_date="2026-10-31"))["decision"] == "allow"


async def test_department_unknown_and_suspended(h: Harness) -> None:
    await _ready(h)
    a = await f.check(h, department_code="Z99")
    assert f.codes_of(a)["DEPARTMENT_UNKNOWN"] is True
    await f.department_action(h, "suspend", "2026-11-01", "2027-02-01")
    await h.synced()
    a = await f.check(h)
    assert a["decision"] == "deny"
    assert f.codes_of(a) == {"DEPARTMENT_SUSPENDED": True}
    assert "DEPARTMENT_SUSPENDED" not in f.codes_of(await f.check(h, service_date="2027-02-01"))
    assert (await f.check(h, service_date="2026-10-31"))["decision"] == "allow"


async def test_practitioner_unknown(h: Harness) -> None:
    await _ready(h)
    a = await f.check(h, practitioner_code="D370802999999")
    assert a["decision"] == "deny"
    assert f.codes_of(a) == {"PRACTITIONER_UNKNOWN": True}


async def test_not_registered_here_or_not_on_that_date(h: Harness) -> None:
    await _ready(h)
    # Known practitioner, registered only at another institution.
    await f.institution(h, OTHER_INST, name="任城区人民医院")
    await f.department(h, OTHER_INST)
    await f.practitioner(h, "D370811000002")
    await f.registration(h, "D370811000002", OTHER_INST)
    await h.synced()
    a = await f.check(h, practitioner_code="D370811000002")
    assert f.codes_of(a)["PRACTITIONER_NOT_REGISTERED"] is True
    # Registered here, but the service date is before the registration started.
    a = await f.check(h, service_date="2023-12-31")
    assert f.codes_of(a)["PRACTITIONER_NOT_REGISTERED"] is True


async def test_unbinding_ends_the_registration_on_its_date(h: Harness) -> None:
    await f.institution(h)
    await f.department(h)
    await f.practitioner(h)
    reg = await f.registration(h)
    await f.agreement(h)
    r = await h.client.post(
        f"/v1/admin/registrations/{reg['id']}/end",
        json={"end": "2026-11-15"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["end"] == "2026-11-15"
    await h.synced()
    assert (await f.check(h, service_date="2026-11-14"))["decision"] == "allow"
    a = await f.check(h, service_date="2026-11-15")
    assert "PRACTITIONER_NOT_REGISTERED" in f.codes_of(a)


async def test_other_department_is_shown_but_does_not_block(h: Harness) -> None:
    await _ready(h)
    await f.department(h, code="A02", name="外科")
    await h.synced()
    a = await f.check(h, department_code="A02")
    assert a["decision"] == "allow"
    assert f.codes_of(a) == {"PRACTITIONER_OTHER_DEPARTMENT": False}


async def test_agreement_missing_and_expired(h: Harness) -> None:
    await f.institution(h)
    await f.department(h)
    await f.practitioner(h)
    await f.registration(h)
    await h.synced()
    a = await f.check(h)
    assert f.codes_of(a) == {"AGREEMENT_MISSING": True}  # 济宁 requires an agreement
    await f.agreement(h, start="2024-01-01", end="2026-01-01")
    await h.synced()
    assert (await f.check(h, service_date="2025-12-31"))["decision"] == "allow"
    a = await f.check(h, service_date="2026-01-01")
    assert f.codes_of(a) == {"AGREEMENT_EXPIRED": True}


async def test_agreement_not_required_where_the_region_has_none(h: Harness) -> None:
    await f.institution(h, "H41010200001", region="410100", name="郑州市人民医院")
    await f.department(h, "H41010200001")
    await f.practitioner(h, "D410102000001")
    await f.registration(h, "D410102000001", "H41010200001")
    await h.synced()
    a = await f.check(
        h, role="gateway", institution_code="H41010200001", practitioner_code="D410102000001"
    )
    assert a["decision"] == "allow", a


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("suspend", "PRACTITIONER_SUSPENDED"),
        ("terminate", "PRACTITIONER_TERMINATED"),
        ("lock_code", "CODE_LOCKED"),
        ("cancel_code", "CODE_CANCELLED"),
    ],
)
async def test_practitioner_sanctions_deny_with_their_reason(
    h: Harness, action: str, code: str
) -> None:
    await _ready(h)
    await f.practitioner_action(h, f.DOC, action, "2026-10-01", "2027-01-01")
    await h.synced()
    a = await f.check(h)
    assert a["decision"] == "deny"
    reason = next(r for r in a["reasons"] if r["code"] == code)
    assert reason["blocking"] is True
    assert reason["from"] == "2026-10-01"
    assert reason["rule"]
    assert reason["message"]
    assert (await f.check(h, service_date="2026-09-30"))["decision"] == "allow"


async def test_restore_ends_a_suspension(h: Harness) -> None:
    await _ready(h)
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01")
    await f.practitioner_action(h, f.DOC, "restore", "2026-11-20")
    await h.synced()
    assert (await f.check(h, service_date="2026-11-19"))["decision"] == "deny"
    assert (await f.check(h, service_date="2026-11-20"))["decision"] == "allow"


async def test_sanction_at_one_site_leaves_the_other_site_payable(h: Harness) -> None:
    """多点执业: a code locked at one institution does not block the other."""
    await _ready(h)
    await f.institution(h, OTHER_INST, name="任城区人民医院")
    await f.department(h, OTHER_INST)
    await f.registration(h, f.DOC, OTHER_INST)
    await f.agreement(h, f.DOC, OTHER_INST)
    await f.practitioner_action(h, f.DOC, "lock_code", "2026-11-01", inst=f.INST)
    await h.synced()
    assert (await f.check(h))["decision"] == "deny"
    other = await f.check(h, role="gateway", institution_code=OTHER_INST)
    assert other["decision"] == "allow", other


async def test_emergency_exempts_practitioner_sanctions_where_the_region_says_so(
    h: Harness,
) -> None:
    await _ready(h)  # 济宁: 急诊抢救除外
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    a = await f.check(h, emergency=True)
    assert a["decision"] == "allow"
    codes = f.codes_of(a)
    assert codes == {"PRACTITIONER_SUSPENDED": False, "EMERGENCY_EXEMPTION_APPLIED": False}
    assert next(r for r in a["reasons"] if r["code"] == "PRACTITIONER_SUSPENDED")["exempted"]


async def test_emergency_does_not_exempt_where_the_region_does_not(h: Harness) -> None:
    inst, doc = "H62010200001", "D620102000001"  # 兰州: no emergency exception
    await f.institution(h, inst, region="620100", name="兰州市第一人民医院")
    await f.department(h, inst)
    await f.practitioner(h, doc)
    await f.registration(h, doc, inst)
    await f.agreement(h, doc, inst)
    await f.practitioner_action(h, doc, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    a = await f.check(
        h, role="gateway", institution_code=inst, practitioner_code=doc, emergency=True
    )
    assert a["decision"] == "deny"
    assert "EMERGENCY_EXEMPTION_APPLIED" not in f.codes_of(a)


async def test_every_finding_is_returned_at_once(h: Harness) -> None:
    await _ready(h)
    await f.department_action(h, "suspend", "2026-11-01", "2027-02-01")
    await f.institution_action(h, "suspend", "2026-11-01", "2026-12-01")
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    a = await f.check(h)
    assert set(f.codes_of(a)) == {
        "INSTITUTION_SUSPENDED",
        "DEPARTMENT_SUSPENDED",
        "PRACTITIONER_SUSPENDED",
    }


async def test_local_codes_resolve_through_aliases(h: Harness) -> None:
    await _ready(h)
    for kind, local, target in (("practitioner", "0001", f.DOC), ("department", "nk", "A01")):
        r = await h.client.put(
            f"/v1/admin/institutions/{f.INST}/aliases/{kind}/{local}",
            json={"target": target},
            headers=h.auth("agency"),
        )
        assert r.status_code == 200, r.text
    await h.synced()
    a = await f.check(h, practitioner_code="0001", department_code=" Nk ")
    assert a["decision"] == "allow", a
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    a = await f.check(h, practitioner_code="0001", department_code="NK")
    assert f.codes_of(a) == {"PRACTITIONER_SUSPENDED": True}
    # An unknown local code is a reason, never a crash.
    a = await f.check(h, practitioner_code="9999")
    assert f.codes_of(a) == {"PRACTITIONER_UNKNOWN": True}


async def test_codes_are_normalised_at_the_edge(h: Harness) -> None:
    await _ready(h)
    a = await f.check(
        h,
        institution_code=" h37080200001 ",
        practitioner_code="d370802000001\t",
        department_code="a01",
    )
    assert a["decision"] == "allow", a


async def test_resident_id_as_service_code_never_comes_back_in_clear(h: Harness) -> None:
    inst, rid = "H37100200001", "371002198001010010"  # 威海 uses the ID number as the code
    await f.institution(h, inst, region="371000", name="威海市立医院")
    await f.department(h, inst)
    await f.practitioner(h, rid)
    await f.registration(h, rid, inst)
    await h.synced()
    r = await h.client.post(
        "/v1/checks",
        json={
            "institution_code": inst,
            "department_code": "A01",
            "practitioner_code": rid,
            "service_date": "2026-11-22",
        },
        headers=h.auth("gateway"),
    )
    assert r.status_code == 200
    assert r.json()["decision"] == "allow", r.text
    assert rid not in r.text
    keys = [k.decode() if isinstance(k, bytes) else k for k in await h.runtime.redis.keys("*")]
    assert not [k for k in keys if rid in k]


async def test_service_date_datetime_default_and_version(h: Harness) -> None:
    await _ready(h)
    # 2026-11-21T20:00-08:00 is 2026-11-22 12:00 in Shanghai.
    a = await f.check(h, service_date="2026-11-21T20:00:00-08:00")
    assert a["service_date"] == "2026-11-22"
    r = await h.client.post(
        "/v1/checks",
        json={"institution_code": f.INST, "department_code": "A01", "practitioner_code": f.DOC},
        headers=h.auth("his"),
    )
    assert r.status_code == 200
    body = r.json()
    assert len(body["service_date"]) == 10
    assert body["data_version"]["institution"] > 0
    assert body["data_version"]["practitioner"] > 0
    assert body["decision_id"]
    assert body["checked_at"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"institution_code": "H3708/0200001"}, "body.institution_code"),
        ({"department_code": "内科"}, "body.department_code"),
        ({"practitioner_code": "D37!"}, "body.practitioner_code"),
        ({"service_date": "2026-02-30"}, "body.service_date"),
        ({"service_date": "1899-01-01"}, "body.service_date"),
        ({"emergency": "yes"}, "body.emergency"),
        ({"emergncy": True}, "body.emergncy"),
    ],
)
async def test_malformed_requests_get_422_naming_the_field(
    h: Harness, patch: dict[str, Any], field: str
) -> None:
    body = {
        "institution_code": f.INST,
        "department_code": "A01",
        "practitioner_code": f.DOC,
        **patch,
    }
    r = await h.client.post("/v1/checks", json=body, headers=h.auth("gateway"))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert field in [e["field"] for e in problem["errors"]]


async def test_wrong_id_number_is_not_echoed_in_the_error(h: Harness) -> None:
    body = {
        "institution_code": "bad",
        "department_code": "A01",
        "practitioner_code": "3710021980010100!9",
    }
    r = await h.client.post("/v1/checks", json=body, headers=h.auth("gateway"))
    assert r.status_code == 422
    assert "3710021980010100" not in r.text


async def test_batch_answers_in_order_with_one_source(h: Harness) -> None:
    await _ready(h)
    await f.practitioner(h, "D370802000002")
    await f.registration(h, "D370802000002")
    await f.agreement(h, "D370802000002")
    await f.practitioner_action(h, "D370802000002", "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    lines = [
        {
            "institution_code": f.INST,
            "department_code": "A01",
            "practitioner_code": code,
            "service_date": "2026-11-22",
            "claim_id": f"c{i}",
        }
        for i, code in enumerate([f.DOC, "D370802000002", "D370802999999", f.DOC])
    ]
    r = await h.client.post("/v1/checks/batch", json={"checks": lines}, headers=h.auth("his"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["decision"] for x in out["results"]] == ["allow", "deny", "deny", "allow"]
    assert [x["claim_id"] for x in out["results"]] == ["c0", "c1", "c2", "c3"]
    assert out["source"] == "cache"


async def test_batch_over_the_maximum_is_413(h: Harness) -> None:
    line = {"institution_code": f.INST, "department_code": "A01", "practitioner_code": f.DOC}
    r = await h.client.post(
        "/v1/checks/batch", json={"checks": [line] * 1001}, headers=h.auth("his")
    )
    assert r.status_code == 413
    assert r.json()["code"] == "BATCH_TOO_LARGE"
    assert "1000" in r.json()["detail"]


async def test_oversized_body_is_413_before_parsing(h: Harness) -> None:
    r = await h.client.post(
        "/v1/checks",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={**h.auth("his"), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_repeated_line_is_answered_from_memory_with_its_own_stamp(h: Harness) -> None:
    await _ready(h)
    await f.wait_for_l1(h)
    first = await f.check(h, claim_id="c-1")
    again = await f.check(h, claim_id="c-2", emergency=False)
    assert {k: first[k] for k in ("decision", "reasons", "data_version")} == {
        k: again[k] for k in ("decision", "reasons", "data_version")
    }
    assert (first["claim_id"], again["claim_id"]) == ("c-1", "c-2")
    assert first["decision_id"] != again["decision_id"]
    r = await h.client.get("/v1/ops/status", headers=h.auth("ops"))
    assert r.json()["lines_checked"] >= 2
    l1 = r.json()["l1"]
    assert l1["verdict_hits"] >= 1
    assert l1["verdicts_remembered"] >= 1


async def test_a_verdict_judged_while_an_invalidation_arrives_is_not_remembered(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _ready(h)
    await f.wait_for_l1(h)
    real_mget = h.runtime.redis.mget

    async def invalidated_meanwhile(*args: Any, **kwargs: Any) -> Any:
        h.runtime.l1.invalidate([institution_key(f.INST)])  # a write's message, mid-flight
        return await real_mget(*args, **kwargs)

    monkeypatch.setattr(h.runtime.redis, "mget", invalidated_meanwhile)
    assert (await f.check(h, service_date="2026-11-21"))["decision"] == "allow"
    assert len(h.runtime.checks.memo) == 0
