"""The OpenAPI document says what every admin route answers (app.admin.responses), and what each
route answers holds to it: every admin route is called here as an agency system would, and each
success answer is validated, strictly and field by field, against its route's documented model
(no field left undocumented, none of another type)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from app.admin.endpoints import router
from app.api.main import create_app
from app.client import Client
from app.settings import Settings
from tests import factories as f
from tests import national_payloads as n
from tests.conftest import Harness

WEIHAI = "H37100200001"
RID = "371002198001010010"
ROUTES = {(m, r.path): r for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_the_document_names_a_schema_for_every_admin_answer() -> None:
    doc = create_app(Settings(database_url="x", redis_url="redis://y")).openapi()
    missing = []
    for (method, path), route in ROUTES.items():
        op = doc["paths"][path][method.lower()]
        ok = op["responses"][str(route.status_code or 200)]
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if not schema.get("$ref") and schema.get("type") != "array":
            missing.append(f"{method} {path}")
    assert missing == []


class Calls:
    """Calls the admin API as the agency, validating each answer against its route's model."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.seen: set[tuple[str, str]] = set()

    async def __call__(self, method: str, url: str, body: Any = None, **headers: str) -> Any:
        r = await self.h.client.request(
            method, url, json=body, headers={**self.h.auth("agency"), **headers}
        )
        path = url.split("?", 1)[0]
        (key, route) = next(
            (k, rt) for k, rt in ROUTES.items() if k[0] == method and rt.path_regex.match(path)
        )
        assert r.status_code == (route.status_code or 200), (method, url, r.text)
        TypeAdapter(route.response_model).validate_python(r.json(), strict=True)
        self.seen.add(key)
        return r.json()


@pytest.mark.asyncio(loop_scope="session")
async def test_every_admin_route_answers_what_its_document_says(h: Harness) -> None:
    call, admin = Calls(h), "/v1/admin"
    inst, weihai = f"{admin}/institutions/{f.INST}", f"{admin}/institutions/{WEIHAI}"

    await call("PUT", inst, {"name": "济宁市第一人民医院", "region_code": "370800"})
    await call("PUT", weihai, {"name": "威海市立医院", "region_code": "371000"})
    for url, name in ((inst, "内科"), (inst, "外科"), (weihai, "内科")):
        code = "A02" if name == "外科" else "A01"
        await call("PUT", f"{url}/departments/{code}", {"name": name})
    await call("PUT", f"{admin}/practitioners/{f.DOC}", {"name": "王伟", "category": "doctor"})
    await call("PUT", f"{admin}/practitioners/{RID}", {"name": "李娜", "category": "nurse"})
    ids: dict[str, list[int]] = {"registrations": [], "agreements": []}
    for who, where in ((f.DOC, f.INST), (RID, WEIHAI)):
        at = {"practitioner_code": who, "institution_code": where}
        for kind, extra in (
            ("registrations", {"department_code": "A01", "start": "2024-01-01"}),
            ("agreements", {"start": "2025-01-01", "end": "2027-01-01"}),
        ):
            ids[kind].append((await call("POST", f"{admin}/{kind}", {**at, **extra}))["id"])
    await call("GET", f"{admin}/registrations/{ids['registrations'][0]}")
    await call("GET", f"{admin}/agreements/{ids['agreements'][1]}")

    # Sanctions: by hand, by points, appealed, an exam, a bonus; an institution and a
    # department suspended; a registration ended.
    dates = {"start": "2026-10-01", "end": "2027-01-01"}
    await call(
        "POST",
        f"{admin}/practitioners/{RID}/actions",
        {"action": "suspend", "institution_code": WEIHAI, **dates, "reason": "抽查"},
    )
    violation = await call(
        "POST",
        f"{admin}/violations",
        {
            "practitioner_code": f.DOC,
            "institution_code": f.INST,
            "department_code": "A01",
            "date": "2026-03-02",
            "item_id": "4.3.1",  # 济宁 §四(三)1, 6 points
            "description": "抽查发现",
        },
        **{"Idempotency-Key": "answers-1"},
    )
    assert violation["changes"]
    assert violation["period"] is not None
    appeal = {"outcome": "rejected", "date": "2026-03-20"}
    await call("POST", f"{admin}/violations/{violation['id']}/appeal", appeal)
    await call(
        "POST", f"{admin}/exams", {"practitioner_code": RID, "date": "2026-11-01", "passed": True}
    )
    bonus = {"practitioner_code": RID, "date": "2026-11-02", "points": 2, "item": "第二(三)5项"}
    await call("POST", f"{admin}/bonuses", bonus)
    await call("POST", f"{inst}/actions", {"action": "suspend", **dates, "reason": "年度考核"})
    await call(
        "POST",
        f"{inst}/departments/A02/actions",
        {"action": "suspend", **dates, "reason": "暂停结算"},
    )
    await call(
        "POST", f"{admin}/registrations/{ids['registrations'][0]}/end", {"end": "2027-06-01"}
    )

    # Aliases, then the reads of everything written.
    await call("PUT", f"{inst}/aliases/practitioner/0001", {"target": f.DOC})
    await call("PUT", f"{inst}/aliases/department/NK", {"target": "A01"})
    await call("GET", f"{inst}/aliases")
    await call("DELETE", f"{inst}/aliases/practitioner/0001")
    # Local codes: an institution alias, a bulk load; a finding answered in the national
    # platform's shape, continued by the clerk (3103), listed as an override.
    await call("PUT", f"{admin}/institution-aliases/011134", {"institution_code": f.INST})
    await call("GET", f"{admin}/institution-aliases?institution_code={f.INST}")
    codes = {"institution": ["JN01"], "practitioners": [{"local_code": "00129", "target": f.DOC}]}
    await call("PUT", f"{inst}/local-codes", codes)
    await call("DELETE", f"{admin}/institution-aliases/011134")
    async with Client(http=h.client, key=h.keys["gateway"]) as gate:
        unknown = [n.order("RX-1", drord_dr_codg="D370802000099")]
        ans = await gate.national(n.review("3101", [n.encounter(unknown)]))
        jr = ans.findings()[0].jr_id
        why = {"warn_rslt_id": jr, "dspo_way": "1", "dspo_way_rea": "急诊"}
        await gate.national(n.feedback([why]))
    await h.runtime.national.findings.flush()
    assert (await call("GET", f"{admin}/overrides?blocking=true"))["items"][0]["findings"]
    got = await call("GET", inst)
    assert got["departments"]
    assert got["status"]
    await call("GET", f"{inst}/departments/A02")
    for who in (f.DOC, RID):
        got = await call("GET", f"{admin}/practitioners/{who}")
        assert got["status_by_institution"]
        await call("GET", f"{admin}/practitioners/{who}/file")
    await call("GET", f"{admin}/practitioners/{f.DOC}/file?as_of=2026-12-31")
    await call("GET", f"{admin}/profiles/jining-2024/catalogue")
    await call("GET", f"{inst}/catalogue?on=2026-03-02")
    await h.synced()
    await f.check(h, role="gateway", institution_code=WEIHAI, practitioner_code=RID)
    await h.runtime.attempts.flush()
    assert (await call("GET", f"{admin}/attempts"))["items"]

    # What-if, the calendar, a bulk import.
    events = [
        dict(
            type="registration",
            practitioner="P7",
            institution="H7",
            department="D7",
            start="2024-05-01",
        ),
        dict(
            type="violation",
            id="v7",
            practitioner="P7",
            institution="H7",
            date="2025-05-06",
            points=12,
        ),
    ]
    await call(
        "POST",
        f"{admin}/simulations",
        {"profile": "jining-2024", "as_of": "2026-12-31", "events": events},
    )
    await call("PUT", f"{admin}/calendar/2027-01-04", {"working": False, "note": "调休"})
    other = {"institution_code": "H37081100002"}
    bulk = {
        "institutions": [
            {"code": "H37081100002", "name": "任城区人民医院", "region_code": "370800"}
        ],
        "departments": [{**other, "code": "A01", "name": "内科"}],
    }
    await call("POST", f"{admin}/bulk", bulk)

    assert set(ROUTES) - call.seen == set()
