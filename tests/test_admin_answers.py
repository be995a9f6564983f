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
from app.settings import Settings
from tests import factories as f
from tests.conftest import Harness

WEIHAI = "H37100200001"
RID = "371002198001010010"
ROUTES = {(m, r.path): r for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_the_document_names_a_schema_for_every_admin_answer() -> None:
    doc = create_app(Settings(database_url="x", redis_url="y")).openapi()
    missing = []
    for (method, path), route in ROUTES.items():
        op = doc["paths"][path][method.lower()]
        ok = op["responses"][str(route.status_code or 200)]
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if not schema.get("$ref") and schema.get("type") != "array":
            missing.append(f"{method} {path}")
    assert missing == []


class Calls:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.seen: set[tuple[str, str]] = set()

    async def __call__(
        self, method: str, template: str, url: str, body: Any = None, **headers: str
    ) -> Any:
        r = await self.h.client.request(
            method, url, json=body, headers={**self.h.auth("agency"), **headers}
        )
        route = ROUTES[method, template]
        assert r.status_code == (route.status_code or 200), (method, url, r.text)
        TypeAdapter(route.response_model).validate_python(r.json(), strict=True)
        self.seen.add((method, template))
        return r.json()


@pytest.mark.asyncio(loop_scope="session")
async def test_every_admin_route_answers_what_its_document_says(h: Harness) -> None:
    call = Calls(h)
    inst, dept = (
        "/v1/admin/institutions/{code}",
        "/v1/admin/institutions/{code}/departments/{department_code}",
    )
    alias = "/v1/admin/institutions/{code}/aliases/{kind}/{local_code}"
    prac = "/v1/admin/practitioners/{code}"

    for code, region in ((f.INST, "370800"), (WEIHAI, "371000")):
        await call(
            "PUT", inst, f"/v1/admin/institutions/{code}", {"name": "医院", "region_code": region}
        )
    await call("PUT", dept, f"/v1/admin/institutions/{f.INST}/departments/A01", {"name": "内科"})
    await call("PUT", dept, f"/v1/admin/institutions/{f.INST}/departments/A02", {"name": "外科"})
    await call(
        "PUT", prac, f"/v1/admin/practitioners/{f.DOC}", {"name": "王伟", "category": "doctor"}
    )
    await call("PUT", prac, f"/v1/admin/practitioners/{RID}", {"name": "李娜", "category": "nurse"})
    await call("PUT", dept, f"/v1/admin/institutions/{WEIHAI}/departments/A01", {"name": "内科"})
    regs, agrs = [], []
    for who, where in ((f.DOC, f.INST), (RID, WEIHAI)):
        at = {"practitioner_code": who, "institution_code": where}
        regs.append(
            await call(
                "POST",
                "/v1/admin/registrations",
                "/v1/admin/registrations",
                {**at, "department_code": "A01", "start": "2024-01-01"},
            )
        )
        agrs.append(
            await call(
                "POST",
                "/v1/admin/agreements",
                "/v1/admin/agreements",
                {**at, "start": "2025-01-01", "end": "2027-01-01"},
            )
        )
    reg, agr = regs[0], agrs[1]
    await call(
        "GET", "/v1/admin/registrations/{registration_id}", f"/v1/admin/registrations/{reg['id']}"
    )
    await call("GET", "/v1/admin/agreements/{agreement_id}", f"/v1/admin/agreements/{agr['id']}")

    # Sanctions: by hand, by points, appealed, an exam, a bonus; a suspended department.
    await call(
        "POST",
        "/v1/admin/practitioners/{code}/actions",
        f"/v1/admin/practitioners/{RID}/actions",
        {
            "action": "suspend",
            "institution_code": WEIHAI,
            "start": "2026-10-01",
            "end": "2027-01-01",
            "reason": "抽查",
        },
    )
    violation = await call(
        "POST",
        "/v1/admin/violations",
        "/v1/admin/violations",
        {
            "practitioner_code": f.DOC,
            "institution_code": f.INST,
            "department_code": "A01",
            "date": "2026-03-02",
            "points": 6,
            "item": "第十二条第3项",
            "description": "抽查发现",
        },
        **{"Idempotency-Key": "answers-1"},
    )
    assert violation["changes"]
    assert violation["period"] is not None
    await call(
        "POST",
        "/v1/admin/violations/{violation_id}/appeal",
        f"/v1/admin/violations/{violation['id']}/appeal",
        {"outcome": "rejected", "date": "2026-03-20"},
    )
    await call(
        "POST",
        "/v1/admin/exams",
        "/v1/admin/exams",
        {"practitioner_code": RID, "date": "2026-11-01", "passed": True},
    )
    await call(
        "POST",
        "/v1/admin/bonuses",
        "/v1/admin/bonuses",
        {"practitioner_code": RID, "date": "2026-11-02", "points": 2, "item": "第二(三)5项"},
    )
    await call(
        "POST",
        "/v1/admin/institutions/{code}/actions",
        f"/v1/admin/institutions/{f.INST}/actions",
        {"action": "suspend", "start": "2027-03-01", "end": "2027-04-01", "reason": "年度考核"},
    )
    await call(
        "POST",
        "/v1/admin/institutions/{code}/departments/{department_code}/actions",
        f"/v1/admin/institutions/{f.INST}/departments/A02/actions",
        {"action": "suspend", "start": "2026-11-01", "end": "2027-02-01", "reason": "暂停结算"},
    )
    await call(
        "POST",
        "/v1/admin/registrations/{registration_id}/end",
        f"/v1/admin/registrations/{reg['id']}/end",
        {"end": "2027-06-01"},
    )

    # Aliases, then the reads of everything written.
    await call(
        "PUT",
        alias,
        f"/v1/admin/institutions/{f.INST}/aliases/practitioner/0001",
        {"target": f.DOC},
    )
    await call(
        "PUT", alias, f"/v1/admin/institutions/{f.INST}/aliases/department/NK", {"target": "A01"}
    )
    await call(
        "GET", "/v1/admin/institutions/{code}/aliases", f"/v1/admin/institutions/{f.INST}/aliases"
    )
    await call("DELETE", alias, f"/v1/admin/institutions/{f.INST}/aliases/practitioner/0001")
    got = await call("GET", inst, f"/v1/admin/institutions/{f.INST}")
    assert got["departments"]
    assert got["status"]
    await call("GET", dept, f"/v1/admin/institutions/{f.INST}/departments/A02")
    for who in (f.DOC, RID):
        got = await call("GET", prac, f"/v1/admin/practitioners/{who}")
        assert got["status_by_institution"]
        await call(
            "GET", "/v1/admin/practitioners/{code}/file", f"/v1/admin/practitioners/{who}/file"
        )
    await call(
        "GET",
        "/v1/admin/practitioners/{code}/file",
        f"/v1/admin/practitioners/{f.DOC}/file?as_of=2026-12-31",
    )
    await h.synced()
    await f.check(h, role="gateway", institution_code=WEIHAI, practitioner_code=RID)
    await h.runtime.attempts.flush()
    got = await call("GET", "/v1/admin/attempts", "/v1/admin/attempts")
    assert got["items"]

    await call(
        "POST",
        "/v1/admin/simulations",
        "/v1/admin/simulations",
        {
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
                    "points": 12,
                },
            ],
        },
    )
    await call(
        "PUT",
        "/v1/admin/calendar/{day}",
        "/v1/admin/calendar/2027-01-04",
        {"working": False, "note": "调休"},
    )
    await call(
        "POST",
        "/v1/admin/bulk",
        "/v1/admin/bulk",
        {
            "institutions": [
                {"code": "H37081100002", "name": "任城区人民医院", "region_code": "370800"}
            ],
            "departments": [{"institution_code": "H37081100002", "code": "A01", "name": "内科"}],
        },
    )

    assert set(ROUTES) - call.seen == set()
