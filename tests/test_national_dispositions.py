"""The clerk's disposition (3103, built as public HIS code builds it: tests/national_payloads.py)
recorded against the decision the 3101 answer named, once; and the agency's list of overrides —
institution, practitioner, who, when, why — joined with what that answer found."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.client import Client, NationalRefused
from tests import factories as f
from tests import national_payloads as n
from tests.conftest import Harness
from tests.test_national import DOC_T, OTHER, _world

pytestmark = pytest.mark.asyncio(loop_scope="session")

REASON = "患者病情需要，经科主任同意继续执行"


async def _answered(h: Harness) -> dict[str, str]:
    """A 3101 answered with findings on two orders; their jr_ids by rx_id, findings recorded."""
    orders = [
        n.order("RX-T", drord_dr_codg="ys01"),
        n.order("RX-DEPT", drord_dept_codg="222"),
        n.order("RX-OK"),
    ]
    async with Client(http=h.client, key=h.keys["his"]) as gate:
        ans = await gate.national(n.review("3101", [n.encounter(orders)], fixmedins_code="011134"))
    await h.runtime.national.findings.flush()
    return {x.rx_id or "": x.jr_id for x in ans.findings()}


async def _dispose(h: Harness, warns: list[dict[str, Any]], role: str = "his", **env: Any) -> Any:
    async with Client(http=h.client, key=h.keys[role]) as gate:
        return await gate.national(n.feedback(warns, **env))


async def _overrides(h: Harness, **params: Any) -> list[dict[str, Any]]:
    r = await h.client.get("/v1/admin/overrides", params=params, headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _rows(h: Harness) -> list[dict[str, Any]]:
    async with h.runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM dispositions ORDER BY id"))
        return [dict(r._mapping) for r in rows]


async def test_a_continued_finding_is_listed_as_an_override_with_who_when_why(
    h: Harness,
) -> None:
    await _world(h)
    jr = await _answered(h)
    ans = await _dispose(
        h,
        [
            {"warn_rslt_id": jr["RX-T"], "dspo_way": "1", "dspo_way_rea": REASON},
            {"warn_rslt_id": jr["RX-DEPT"], "dspo_way": "2", "dspo_way_rea": ""},
        ],
    )
    assert [(r["warn_rslt_id"], r["status"]) for r in ans.output["result"]] == [
        (jr["RX-T"], "recorded"),
        (jr["RX-DEPT"], "recorded"),
    ]
    items = await _overrides(h)
    assert len(items) == 1
    item = items[0]
    assert item["decision_id"] == jr["RX-T"]
    assert item["institution_code"] == f.INST  # the envelope's 011134, resolved
    assert (item["disposition"], item["reason"], item["opter"]) == ("continue", REASON, "13888")
    assert item["api_key_id"] is not None
    found = item["findings"]
    assert found["practitioner_code"] == DOC_T  # sent as ys01: the national code is shown
    assert (found["reasons"], found["blocking"], found["claim_ref"]) == (
        ["PRACTITIONER_TERMINATED"],
        True,
        "RX-T",
    )
    assert found["infno"] == "3101"
    # every disposition, the returned order included; filters
    assert {i["disposition"] for i in await _overrides(h, disposition="any")} == {
        "continue",
        "return",
    }
    assert await _overrides(h, blocking="false") == []
    assert len(await _overrides(h, institution_code=f.INST, since="2026-01-01")) == 1
    assert await _overrides(h, institution_code=OTHER) == []
    # the operator's name is personal data: not kept
    assert "收费员甲" not in repr(await _rows(h))


async def test_a_retried_disposition_is_recorded_once_and_a_different_one_refused(
    h: Harness,
) -> None:
    await _world(h)
    jr = await _answered(h)
    warn = {"warn_rslt_id": jr["RX-T"], "dspo_way": "1", "dspo_way_rea": REASON}
    await _dispose(h, [warn])
    again = await _dispose(h, [warn])
    assert again.output["result"][0]["status"] == "unchanged"
    assert len(await _rows(h)) == 1
    with pytest.raises(NationalRefused) as refused:
        await _dispose(h, [{**warn, "dspo_way": "2"}])
    assert refused.value.code == "DISPOSITION_CONFLICT"
    assert refused.value.field == "input.data.warns.0.dspo_way"
    assert [r["dspo_way"] for r in await _rows(h)] == [1]


async def test_one_warn_per_finding_of_an_order_makes_one_disposition(h: Harness) -> None:
    """The public client sends one warn per result entry: an order with two findings is sent
    twice under one jr_id."""
    await _world(h)
    jr = await _answered(h)
    warns = [
        {"warn_rslt_id": jr["RX-DEPT"], "dspo_way": "1", "dspo_way_rea": "科室已恢复结算"},
        {"warn_rslt_id": jr["RX-DEPT"], "dspo_way": "1", "dspo_way_rea": "医师已备案"},
    ]
    ans = await _dispose(h, warns)
    assert len(ans.output["result"]) == 1
    [row] = await _rows(h)
    assert row["reason"] == "科室已恢复结算；医师已备案"
    [item] = await _overrides(h)
    assert item["findings"]["department_code"] == "ZZ9"  # sent as 222: its alias's department
    assert set(item["findings"]["reasons"]) == {
        "DEPARTMENT_SUSPENDED",
        "PRACTITIONER_OTHER_DEPARTMENT",
    }
    with pytest.raises(NationalRefused) as refused:
        await _dispose(h, [warns[0], {**warns[1], "dspo_way": "2"}])
    assert refused.value.code == "DISPOSITION_CONFLICT"
    assert refused.value.field == "input.data.warns.1.dspo_way"


@pytest.mark.parametrize(
    ("warn", "field"),
    [
        ({"dspo_way": "1", "dspo_way_rea": ""}, "input.data.warns.0.dspo_way_rea"),
        ({"dspo_way": "3", "dspo_way_rea": "x"}, "input.data.warns.0.dspo_way"),
        ({"warn_rslt_id": "JR-NOT-OURS"}, "input.data.warns.0.warn_rslt_id"),
    ],
)
async def test_an_invalid_disposition_is_refused_naming_the_field(
    h: Harness, warn: dict[str, Any], field: str
) -> None:
    await _world(h)
    jr = await _answered(h)
    with pytest.raises(NationalRefused) as refused:
        await _dispose(h, [{"warn_rslt_id": jr["RX-T"], **warn}])
    assert (refused.value.code, refused.value.field) == ("VALIDATION_FAILED", field)
    assert await _rows(h) == []


async def test_a_disposition_cannot_be_attached_to_another_institutions_decision(
    h: Harness,
) -> None:
    await _world(h)
    jr = await _answered(h)
    warn = {"warn_rslt_id": jr["RX-T"], "dspo_way": "1", "dspo_way_rea": REASON}
    with pytest.raises(NationalRefused) as refused:  # a his key, through the other's alias
        await _dispose(h, [warn], fixmedins_code="CDSDERMYY")
    assert (refused.value.code, refused.value.field) == ("INSTITUTION_FORBIDDEN", "fixmedins_code")
    # The gateway may record it for the other institution, but it does not take the findings
    # of a decision that institution was never answered.
    await _dispose(h, [warn], role="gateway", fixmedins_code="CDSDERMYY")
    [item] = await _overrides(h)
    assert (item["institution_code"], item["findings"]) == (OTHER, None)
