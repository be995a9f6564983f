"""The national platform's shapes through HTTP, against real PostgreSQL and Redis: requests built
as public HIS code builds them (tests/national_payloads.py names each source), answered per order
or fee row — national codes, local codes of all three kinds, emergency by 医疗类别, a suspended
department, a terminated practitioner, a refused envelope, a his key reaching for another
institution through an alias — and the clerk's 3103 disposition listed for the agency."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from app.client import Client, NationalRefused
from tests import factories as f
from tests import national_payloads as n
from tests.conftest import Harness, Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

OTHER = "H37081100002"
DOC_S = "D370802000002"  # suspended 2026-10-01 to 2027-01-01 (济宁 exempts emergencies)
DOC_T = "D370802000003"  # terminated 2026-10-01
COUNTED = ("national_findings", "dispositions", "sanctioned_attempts")


async def _world(h: Harness) -> None:
    await f.world(h)
    await f.department(h, code="ZZ9", name="康复科")
    await f.department_action(h, "suspend", "2026-11-01", "2027-02-01", dept="ZZ9")
    for doc in (DOC_S, DOC_T):
        await f.practitioner(h, doc, name="医师")
        await f.registration(h, doc)
        await f.agreement(h, doc)
    await f.practitioner_action(h, DOC_S, "suspend", "2026-10-01", "2027-01-01")
    await f.practitioner_action(h, DOC_T, "terminate", "2026-10-01")
    await f.institution(h, OTHER, name="济宁市第二人民医院")
    await f.department(h, OTHER)
    r = await h.client.put(
        f"/v1/admin/institutions/{f.INST}/local-codes",
        json={
            "institution": ["011134"],
            "departments": [
                {"local_code": "1000", "target": "A01"},
                {"local_code": "222", "target": "ZZ9"},
            ],
            "practitioners": [
                {"local_code": "00129", "target": f.DOC},
                {"local_code": "009999", "target": f.DOC},
                {"local_code": "D190", "target": DOC_S},
                {"local_code": "ys01", "target": DOC_T},
            ],
        },
        headers=h.auth("agency"),
    )
    assert r.status_code == 200, r.text
    r = await h.client.put(
        "/v1/admin/institution-aliases/CDSDERMYY",
        json={"institution_code": OTHER},
        headers=h.auth("agency"),
    )
    assert r.status_code == 200, r.text
    await h.synced()


def _client(h: Harness, role: str = "his") -> Client:
    return Client(http=h.client, key=h.keys[role])


def _by_rx(findings: list[Any]) -> dict[str | None, set[tuple[str, str]]]:
    out: dict[str | None, set[tuple[str, str]]] = {}
    for x in findings:
        out.setdefault(x.rx_id, set()).add((x.rule_id, x.sev_deg))
    return out


async def _counts(h: Harness) -> dict[str, int]:
    return await f.counts(h, COUNTED)


@pytest.mark.parametrize("infno", ["3101", "3102"])
async def test_orders_with_national_and_local_codes_get_a_finding_each_where_due(
    h: Harness, infno: str
) -> None:
    await _world(h)
    orders = [
        n.order("RX-NATIONAL"),  # national codes throughout: payable
        n.order("RX-LOCAL", drord_dr_codg="00129", drord_dept_codg="1000"),  # local: payable
        n.order("RX-SUSPENDED-DR", drord_dr_codg="D190", sumamt="35.20"),
        n.order("RX-TERMINATED-DR", drord_dr_codg="ys01"),
        n.order("RX-SUSPENDED-DEPT", drord_dept_codg="222"),
        # no own doctor or department: the encounter's, as local codes
        n.order("RX-ENCOUNTER", drord_dr_codg="", drord_dept_codg=None),
    ]
    enc = n.encounter(orders, dr_codg="009999", adm_dept_codg="1000")
    msg = n.review(infno, [enc], fixmedins_code="011134")
    async with _client(h) as gate:
        ans = await gate.national(msg)
    assert ans.infcode == 0
    assert ans.warn_msg == ""
    found = _by_rx(ans.findings())
    # An order no entry names may be paid; the others, each finding with its severity.
    assert found == {
        "RX-SUSPENDED-DR": {("PRACTITIONER_SUSPENDED", "1")},
        "RX-TERMINATED-DR": {("PRACTITIONER_TERMINATED", "1")},
        "RX-SUSPENDED-DEPT": {
            ("DEPARTMENT_SUSPENDED", "1"),
            ("PRACTITIONER_OTHER_DEPARTMENT", "3"),
        },
    }
    suspended = next(x for x in ans.findings() if x.rx_id == "RX-SUSPENDED-DR")
    assert suspended.vola_amt == 35.2  # the order's amount: what the fund would not pay
    assert suspended.rule_name == "manual: test"  # the rule the contract answer cites
    assert suspended.vola_evid == "[2026-10-01, 2027-01-01)"
    raw = ans.output["result"][0]
    assert raw["patn_id"] == n.PATIENT["patn_id"]
    assert raw["mdtrt_id"] == n.ENCOUNTER["mdtrt_id"]
    assert raw["task_id"] == "T20261122000001"
    assert raw["judge_result_detail_dtos"][0]["jrd_id"] == f"{raw['jr_id']}-1"


async def test_the_same_orders_under_national_codes_get_the_same_findings(h: Harness) -> None:
    """Local codes are resolved, not approximated: each order answers as its national twin."""
    await _world(h)
    local = [n.order("A", drord_dr_codg="D190", drord_dept_codg="222")]
    national = [n.order("A", drord_dr_codg=DOC_S, drord_dept_codg="ZZ9")]
    async with _client(h) as gate:
        a = await gate.national(n.review("3101", [n.encounter(local)], fixmedins_code="011134"))
        b = await gate.national(n.review("3101", [n.encounter(national)]))

    def seen(ans: Any) -> list[tuple[Any, ...]]:
        return [
            (x.rx_id, x.rule_id, x.rule_name, x.vola_cont, x.sev_deg, x.vola_evid, x.vola_amt)
            for x in ans.findings()
        ]

    assert seen(a) == seen(b)
    assert {x[1] for x in seen(a)} == {
        "PRACTITIONER_SUSPENDED",
        "DEPARTMENT_SUSPENDED",
        "PRACTITIONER_OTHER_DEPARTMENT",
    }


@pytest.mark.parametrize(
    ("med_type", "emergency"),
    [("13", True), ("24", True), ("11", False), ("21", False), ("14", False)],
)
async def test_emergency_comes_from_the_encounters_med_type(
    h: Harness, med_type: str, emergency: bool
) -> None:
    await _world(h)
    stay = n.inpatient_stay([n.order("RX-1", drord_dr_codg="D190")], med_type)
    async with _client(h) as gate:
        ans = await gate.national(n.review("3102", [stay]))
    got = {(x.rule_id, x.sev_deg) for x in ans.findings()}
    if emergency:  # 济宁 §五(二): 急诊抢救除外 — the finding stays, lifted, and says so
        assert got == {("PRACTITIONER_SUSPENDED", "3"), ("EMERGENCY_EXEMPTION_APPLIED", "3")}
        lifted = next(x for x in ans.findings() if x.rule_id == "PRACTITIONER_SUSPENDED")
        assert "exempted: emergency" in lifted.vola_evid
        assert lifted.vola_amt == 0.0
    else:
        assert got == {("PRACTITIONER_SUSPENDED", "1")}


async def test_fee_rows_are_answered_one_per_feedetl_sn(h: Harness) -> None:
    await _world(h)
    rows = [
        n.fee_row("SN-1"),  # 1000 → A01, 009999 → DOC: payable
        n.fee_row("SN-2", bilg_dr_codg="ys01", det_item_fee_sumamt=88.5),
        n.fee_row("SN-3", bilg_dept_codg="222"),
        n.fee_row("SN-4", bilg_dr_codg=f.DOC, bilg_dept_codg="A01", fee_ocur_time="2026-11-22"),
    ]
    async with _client(h) as gate:
        ans = await gate.national(n.fee_upload("2204", rows, fixmedins_code="011134"))
    answered = {r.feedetl_sn: r for r in ans.fee_rows()}
    assert list(answered) == ["SN-1", "SN-2", "SN-3", "SN-4"]
    assert (answered["SN-1"].sev_deg, answered["SN-1"].findings) == ("", [])
    assert (answered["SN-4"].sev_deg, answered["SN-4"].findings) == ("", [])
    assert answered["SN-2"].sev_deg == "1"
    assert [(x.rule_id, x.vola_amt) for x in answered["SN-2"].findings] == [
        ("PRACTITIONER_TERMINATED", 88.5)
    ]
    assert "PRACTITIONER_TERMINATED" not in answered["SN-2"].memo  # the message, not the code
    assert answered["SN-2"].memo == answered["SN-2"].findings[0].vola_cont
    assert {x.rule_id for x in answered["SN-3"].findings} == {
        "DEPARTMENT_SUSPENDED",
        "PRACTITIONER_OTHER_DEPARTMENT",
    }
    # the regional voladetail list repeats every finding, keyed by row
    assert sorted((v["feedetl_sn"], v["vola_type"]) for v in ans.output["voladetail"]) == [
        ("SN-2", "PRACTITIONER_TERMINATED"),
        ("SN-3", "DEPARTMENT_SUSPENDED"),
        ("SN-3", "PRACTITIONER_OTHER_DEPARTMENT"),
    ]
    assert all(v["med_list_codg"] == "86901201000526" for v in ans.output["voladetail"])


async def test_inpatient_fee_rows_read_their_own_med_type(h: Harness) -> None:
    await _world(h)
    rows = [
        n.inpatient_fee_row("SN-1", bilg_dr_codg="D190"),  # 21 普通住院
        n.inpatient_fee_row("SN-2", bilg_dr_codg="D190", med_type="24"),  # 急诊转住院
    ]
    body = n.fee_upload("2301", rows)
    body["input"] = {"data": body["input"]}  # under input.data, like the other shapes
    async with _client(h) as gate:
        ans = await gate.national(body)
    sev = {r.feedetl_sn: r.sev_deg for r in ans.fee_rows()}
    assert sev == {"SN-1": "1", "SN-2": "3"}


async def test_one_url_dispatches_by_infno(h: Harness) -> None:
    await _world(h)
    msg = n.review("3101", [n.encounter([n.order("RX-1", drord_dr_codg="ys01")])])
    async with _client(h) as gate:
        ans = await gate.national(msg, dispatch=True)
    assert [x.rule_id for x in ans.findings()] == ["PRACTITIONER_TERMINATED"]


async def test_a_his_key_cannot_reach_another_institution_through_an_alias(h: Harness) -> None:
    await _world(h)
    before = await _counts(h)
    for msg in (
        n.review("3101", [n.encounter([n.order("RX-1")])], fixmedins_code="CDSDERMYY"),
        n.review("3101", [n.encounter([n.order("RX-1")])], fixmedins_code=OTHER),
        n.fee_upload("2204", [n.fee_row("SN-1")], fixmedins_code="cdsdermyy"),
        n.review("3101", [n.encounter([n.order("RX-1")])], fixmedins_code="NOBODY01"),
    ):
        async with _client(h) as gate:
            with pytest.raises(NationalRefused) as refused:
                await gate.national(msg)
        assert refused.value.status == 200
        assert refused.value.code == "INSTITUTION_FORBIDDEN"
        assert refused.value.field == "fixmedins_code"
        assert "CDSDERMYY" not in refused.value.err_msg
    assert await _counts(h) == before
    # The gateway may check any institution; through the alias it reaches the other one.
    async with _client(h, "gateway") as gate:
        ans = await gate.national(
            n.review(
                "3101",
                [n.encounter([n.order("RX-1", drord_dr_codg=f.DOC, drord_dept_codg="A01")])],
                fixmedins_code="CDSDERMYY",
            )
        )
    assert {x.rule_id for x in ans.findings()} == {"PRACTITIONER_NOT_REGISTERED"}


async def test_an_unknown_local_institution_answers_like_an_unknown_national_one(
    h: Harness,
) -> None:
    await _world(h)
    async with _client(h, "gateway") as gate:
        local = await gate.national(
            n.review("3101", [n.encounter([n.order("RX-1")])], fixmedins_code="NOBODY01")
        )
        national = await gate.national(
            n.review("3101", [n.encounter([n.order("RX-1")])], fixmedins_code="H37089999999")
        )
    assert [x.rule_id for x in local.findings()] == ["INSTITUTION_UNKNOWN"]
    assert [x.rule_id for x in national.findings()] == ["INSTITUTION_UNKNOWN"]


def _missing(path: str) -> Any:
    def drop(msg: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = msg
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]

    return drop


@pytest.mark.parametrize(
    ("spoil", "code", "field"),
    [
        (
            _missing("input.data.patient_dtos.0.fsi_encounter_dtos.0.med_type"),
            "VALIDATION_FAILED",
            "input.data.patient_dtos.0.fsi_encounter_dtos.0.med_type",
        ),
        (
            _missing("input.data.patient_dtos.0.fsi_encounter_dtos.0.fsi_order_dtos.0.rx_id"),
            "VALIDATION_FAILED",
            "input.data.patient_dtos.0.fsi_encounter_dtos.0.fsi_order_dtos.0.rx_id",
        ),
        (
            lambda m: m["input"]["data"]["patient_dtos"][0]["fsi_encounter_dtos"][0][
                "fsi_order_dtos"
            ][0].update(drord_begn_date=1795305600),
            "VALIDATION_FAILED",
            "input.data.patient_dtos.0.fsi_encounter_dtos.0.fsi_order_dtos.0.drord_begn_date",
        ),
        (
            lambda m: m["input"]["data"]["patient_dtos"][0]["fsi_encounter_dtos"][0][
                "fsi_order_dtos"
            ][0].update(drord_dr_codg="王医生"),
            "VALIDATION_FAILED",
            "input.data.patient_dtos.0.fsi_encounter_dtos.0.fsi_order_dtos.0.drord_dr_codg",
        ),
        (_missing("input.data.patient_dtos"), "VALIDATION_FAILED", "input.data.patient_dtos"),
        (lambda m: m.update(infno="9999"), "INFNO_UNSUPPORTED", "infno"),
        (lambda m: m.update(input="{}"), "VALIDATION_FAILED", "input"),
    ],
)
async def test_a_malformed_envelope_is_refused_the_platforms_way(
    h: Harness, spoil: Any, code: str, field: str
) -> None:
    await _world(h)
    msg = n.review("3101", [n.encounter([n.order("RX-1", drord_dr_codg="ys01")])])
    spoil(msg)
    before = await _counts(h)
    r = await h.client.post("/v1/national", json=msg, headers=h.auth("his"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["infcode"] == -1
    assert body["output"] == {}
    assert body["err_msg"].startswith(f"{code}: {field}: ")
    assert "王医生" not in body["err_msg"]
    assert "1795305600" not in body["err_msg"]
    assert await _counts(h) == before


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "MALFORMED_BODY"),
        (b'{"infno": "3101", "infno": "3103"}', "VALIDATION_FAILED"),
        (b"[1, 2]", "MALFORMED_BODY"),
    ],
)
async def test_a_body_that_is_no_envelope_is_refused_in_the_envelope(
    h: Harness, raw: bytes, code: str
) -> None:
    r = await h.client.post(
        "/v1/national/3101",
        content=raw,
        headers={**h.auth("gateway"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["infcode"], body["err_msg"].split(":")[0]) == (-1, code)


async def test_a_member_given_twice_anywhere_is_refused_and_escapes_are_read_as_json(
    h: Harness,
) -> None:
    await _world(h)
    msg = n.review("3101", [n.encounter([n.order("RX-1", drord_dr_codg=f.DOC)])])
    raw = orjson.dumps(msg)
    twice = raw.replace(b'"drord_dr_codg":', b'"drord_dr_codg":"ys01","drord_dr_codg":', 1)
    headers = {**h.auth("his"), "Content-Type": "application/json"}
    r = await h.client.post("/v1/national/3101", content=twice, headers=headers)
    assert r.json()["err_msg"] == (
        "VALIDATION_FAILED: input.data.patient_dtos.0.fsi_encounter_dtos.0.fsi_order_dtos.0."
        "drord_dr_codg: is given more than once in its object; send each field once"
    )
    # an escaped colon and escaped letters are JSON like any other: judged as written
    escaped = raw.replace(b'"2026-11-22 09:46:47"', b'"2026-11-22 09\\u003a46\\u003A47"')
    escaped = escaped.replace(b'"rx_id":"RX-1"', b'"rx_id":"\\u0052X-1"')
    r = await h.client.post("/v1/national/3101", content=escaped, headers=headers)
    assert (r.json()["infcode"], r.json()["output"]) == (0, {"result": []})


async def test_infno_in_the_url_and_in_the_envelope_must_agree(h: Harness) -> None:
    msg = n.review("3101", [n.encounter([n.order("RX-1")])])
    r = await h.client.post("/v1/national/2204", json=msg, headers=h.auth("his"))
    assert r.json()["err_msg"].startswith("INFNO_UNSUPPORTED: infno: ")


async def test_a_key_of_another_role_learns_nothing_of_its_body(h: Harness) -> None:
    """Keys are refused as on every route, in problem+json, before the body is looked at."""
    for path in ("/v1/national/3101", "/v1/national"):
        r = await h.client.post(
            path,
            content=b"{not json",
            headers={**h.auth("agency"), "Content-Type": "application/json"},
        )
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "ROLE_FORBIDDEN"
    r = await h.client.post("/v1/national/3101", json={}, headers={"Content-Type": "x"})
    assert r.status_code in (401, 415)
    assert r.headers["content-type"] == "application/problem+json"


async def test_too_many_orders_are_refused_whole(servers: Servers) -> None:
    await reset(servers)
    async for h in start_harness(make_settings(servers, batch_max_lines=3)):
        await _world(h)
        orders = [n.order(f"RX-{i}") for i in range(4)]
        async with _client(h) as gate:
            with pytest.raises(NationalRefused) as refused:
                await gate.national(n.review("3101", [n.encounter(orders)]))
        assert refused.value.code == "BATCH_TOO_LARGE"


async def test_answers_from_postgresql_say_so_and_still_resolve_local_codes(
    servers: Servers,
) -> None:
    await reset(servers)
    async for h in start_harness(make_settings(servers, max_staleness_s=0)):
        await _world(h)
        h.runtime.checks.set_mirror(behind=True, regressed=False, verified=True)
        msg = n.review(
            "3101",
            [n.encounter([n.order("RX-1", drord_dr_codg="ys01", drord_dept_codg="1000")])],
            fixmedins_code="011134",
        )
        async with _client(h) as gate:
            ans = await gate.national(msg)
        assert ans.warn_msg.startswith("answered from PostgreSQL")
        assert [x.rule_id for x in ans.findings()] == ["PRACTITIONER_TERMINATED"]


async def test_checks_under_a_sanctioned_code_are_recorded_as_from_any_check(h: Harness) -> None:
    await _world(h)
    msg = n.review("3101", [n.encounter([n.order("RX-7", drord_dr_codg="ys01")])])
    async with _client(h) as gate:
        ans = await gate.national(msg, dispatch=True)
    await h.runtime.attempts.flush()
    r = await h.client.get("/v1/admin/attempts", headers=h.auth("agency"))
    items = r.json()["items"]
    assert [(i["claim_id"], i["reasons"]) for i in items] == [("RX-7", ["PRACTITIONER_TERMINATED"])]
    assert items[0]["decision_id"] == ans.findings()[0].jr_id


async def test_personal_data_is_kept_nowhere_in_clear(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A patient's name and a doctor sent by resident ID number (威海 uses them as service
    codes; here nobody knows this one): the answer names the finding, the record keeps a keyed
    hash, no log line or error carries either."""
    caplog.set_level(logging.DEBUG)
    await _world(h)
    rid = "371002198001010010"
    msg = n.review("3101", [n.encounter([n.order("RX-1", drord_dr_codg=rid)])])
    async with _client(h) as gate:
        ans = await gate.national(msg)
        bad = n.review("3101", [n.encounter([n.order("RX-1", drord_begn_date=rid)])])
        with pytest.raises(NationalRefused) as refused:
            await gate.national(bad)
    assert [x.rule_id for x in ans.findings()] == ["PRACTITIONER_UNKNOWN"]
    assert rid not in refused.value.err_msg
    await h.runtime.national.findings.flush()
    async with h.runtime.engine.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(text("SELECT * FROM national_findings"))]
    assert len(rows) == 1
    assert any(str(v).startswith("ID:") for v in rows[0])
    assert rid not in repr(rows)
    assert rid not in caplog.text
    assert n.PATIENT["patn_name"] not in caplog.text
