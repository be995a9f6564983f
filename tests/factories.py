"""Small explicit factories: each creates one thing through the admin API and returns it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text

from tests.conftest import Harness

INST = "H37080200001"  # 济宁 (region 370800)
DEPT = "A01"
DOC = "D370802000001"


async def _ok(h: Harness, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await h.client.request(method, url, json=body, headers=h.auth("agency"))
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


async def institution(
    h: Harness, code: str = INST, region: str = "370800", name: str = "济宁市第一人民医院"
) -> dict[str, Any]:
    return await _ok(
        h, "PUT", f"/v1/admin/institutions/{code}", {"name": name, "region_code": region}
    )


async def department(
    h: Harness, inst: str = INST, code: str = DEPT, name: str = "内科"
) -> dict[str, Any]:
    return await _ok(h, "PUT", f"/v1/admin/institutions/{inst}/departments/{code}", {"name": name})


async def practitioner(
    h: Harness, code: str = DOC, category: str = "doctor", name: str = "王伟", **extra: Any
) -> dict[str, Any]:
    return await _ok(
        h, "PUT", f"/v1/admin/practitioners/{code}", {"name": name, "category": category, **extra}
    )


async def registration(
    h: Harness,
    code: str = DOC,
    inst: str = INST,
    dept: str = DEPT,
    start: str = "2024-01-01",
    end: str | None = None,
) -> dict[str, Any]:
    return await _ok(
        h,
        "POST",
        "/v1/admin/registrations",
        {
            "practitioner_code": code,
            "institution_code": inst,
            "department_code": dept,
            "start": start,
            "end": end,
        },
    )


async def agreement(
    h: Harness,
    code: str = DOC,
    inst: str = INST,
    start: str = "2025-01-01",
    end: str | None = "2027-01-01",
) -> dict[str, Any]:
    return await _ok(
        h,
        "POST",
        "/v1/admin/agreements",
        {
            "practitioner_code": code,
            "institution_code": inst,
            "start": start,
            "end": end,
        },
    )


async def practitioner_action(
    h: Harness,
    code: str,
    action: str,
    start: str,
    end: str | None = None,
    inst: str | None = None,
    reason: str = "test",
) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, "start": start, "end": end, "reason": reason}
    if inst is not None:
        body["institution_code"] = inst
    return await _ok(h, "POST", f"/v1/admin/practitioners/{code}/actions", body)


async def institution_action(
    h: Harness, action: str, start: str, end: str | None = None, inst: str = INST
) -> dict[str, Any]:
    return await _ok(
        h,
        "POST",
        f"/v1/admin/institutions/{inst}/actions",
        {"action": action, "start": start, "end": end, "reason": "test"},
    )


async def department_action(
    h: Harness, action: str, start: str, end: str | None = None, inst: str = INST, dept: str = DEPT
) -> dict[str, Any]:
    return await _ok(
        h,
        "POST",
        f"/v1/admin/institutions/{inst}/departments/{dept}/actions",
        {"action": action, "start": start, "end": end, "reason": "test"},
    )


async def world(h: Harness) -> None:
    """One institution, one department, one registered doctor with an agreement."""
    await institution(h)
    await department(h)
    await practitioner(h)
    await registration(h)
    await agreement(h)


async def check(h: Harness, role: str = "his", **fields: Any) -> dict[str, Any]:
    body = {
        "institution_code": INST,
        "department_code": DEPT,
        "practitioner_code": DOC,
        "service_date": "2026-11-22",
        **fields,
    }
    r = await h.client.post("/v1/checks", json=body, headers=h.auth(role))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def codes_of(answer: dict[str, Any]) -> dict[str, bool]:
    return {r["code"]: r["blocking"] for r in answer["reasons"]}


async def wait_for_l1(h: Harness, within: float = 5.0) -> None:
    """Until the process has subscribed to invalidations (before that it has no L1)."""
    deadline = asyncio.get_running_loop().time() + within
    while not h.runtime.l1.enabled:
        assert asyncio.get_running_loop().time() < deadline, "the L1 never subscribed"
        await asyncio.sleep(0.01)


async def check_from_cache(h: Harness, tries: int = 40, **fields: Any) -> dict[str, Any]:
    """Check until the answer comes from the cache (or ``tries`` run out); the last answer."""
    for _ in range(tries):
        answer = await check(h, **fields)
        if answer["source"] == "cache":
            break
        await asyncio.sleep(0.05)
    return answer


async def counts(h: Harness, tables: Iterable[str]) -> dict[str, int]:
    """Rows in each table: what a refused write must leave unchanged."""
    async with h.runtime.engine.connect() as conn:
        return {
            t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in tables
        }
