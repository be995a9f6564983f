"""The stored staff inputs (table ``staff_inputs``, app.projection.staff) through random
histories written by the admin API: after every few writes, each institution's stored outcome
equals a re-judge of its whole staff, the table holds exactly the practitioners the rules read,
and the SQL head count equals a scan of the registrations (issue 14)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from app.db.tables import institutions, outcomes, practitioners, staff_inputs
from app.policy import (
    Registration,
    StaffCounts,
    Violation,
    evaluate_institution,
    load_profiles,
)
from app.projection import codec, ledger
from app.projection.ledger import read_calendar
from app.projection.staff import read_by_rules, staff_counts
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

SITES = {"H37080200001": "370800", "H62010000001": "620100"}  # 济宁, 兰州
DEPTS = ("A01", "A02")
STAFF = [f"D37080200{k:04d}" for k in range(9)]


async def _post(h: Harness, path: str, body: dict[str, Any]) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = await h.client.post(path, json=body, headers={**h.auth("agency"), **key})
    assert r.status_code in (200, 201), r.text


async def _random_write(h: Harness, rng: random.Random) -> None:
    who = rng.choice(STAFF)
    site = rng.choice(list(SITES))
    day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(600))
    kind = rng.random()
    if kind < 0.4:
        await _post(
            h,
            "/v1/admin/violations",
            {
                "practitioner_code": who,
                "institution_code": site,
                "department_code": rng.choice(DEPTS),
                "date": day.isoformat(),
                "points": rng.choice([1, 3, 6, 12]),
                "item": "病历书写不规范",
                "exception_reason": "稽核组集体决定",
            },
        )
    elif kind < 0.75:
        await f.practitioner_action(
            h,
            who,
            rng.choice(["suspend", "terminate"]),
            day.isoformat(),
            rng.choice([None, (day + dt.timedelta(days=60)).isoformat()]),
            inst=rng.choice([None, site]),
        )
    elif kind < 0.9:
        await f.registration(h, who, site, rng.choice(DEPTS), day.isoformat())
    else:  # the rules count doctors: a category changed changes the head counts
        await f.practitioner(h, who, category=rng.choice(["doctor", "nurse"]))


async def _assert_equal_to_whole_staff(h: Harness) -> None:
    profiles = load_profiles()
    async with h.runtime.engine.connect() as conn:
        stored_read = {tuple(r) for r in await conn.execute(select(staff_inputs))}
        categories = dict(
            (await conn.execute(select(practitioners.c.token, practitioners.c.category))).all()
        )
        calendar = await read_calendar(conn)
        expected_read = set()
        for code, pid in await conn.execute(select(institutions.c.code, institutions.c.profile_id)):
            profile = profiles[pid]
            events = await ledger.institution_events(conn, code)
            regs = [e for e in events if isinstance(e, Registration)]
            staff = sorted({r.practitioner for r in regs})
            stored = dict((await conn.execute(select(outcomes.c.subject, outcomes.c.doc))).all())
            outs = {t: stored[f"p:{t}:{pid}"] for t in staff if f"p:{t}:{pid}" in stored}
            for t, doc in outs.items():
                here = any(isinstance(e, Violation) and e.practitioner == t for e in events)
                if read_by_rules(code, doc, here):
                    expected_read.add((code, t))
            whole, depts = evaluate_institution(
                profile,
                code,
                events,
                {t: codec.practitioner_outcome(doc) for t, doc in outs.items()},
                {t: categories[t] for t in staff},
                calendar,
            )
            assert stored[f"i:{code}"] == codec.to_json(whole), code
            for dept, outcome in depts.items():
                assert stored[f"d:{code}:{dept}"] == codec.to_json(outcome), (code, dept)
            scanned = StaffCounts.of(regs, categories)
            # as kept by the last re-judge, and as counted afresh
            for counted in (
                await staff_counts(conn, code, recount=False),
                await staff_counts(conn, code),
            ):
                for n in range(0, 2200, 5):
                    day = dt.date(2019, 1, 1) + dt.timedelta(days=n)
                    assert counted.on(day) == scanned.on(day), (code, day)
                    assert counted.on(day, "doctor") == scanned.on(day, "doctor"), (code, day)
        assert stored_read == expected_read
        # the migration's backfill finds the same rows from the stored outcomes
        backfill = await conn.execute(text(_backfill_select()))
        assert {tuple(r) for r in backfill} == expected_read


def _backfill_select() -> str:
    from pathlib import Path

    source = (
        Path(__file__).resolve().parent.parent / "migrations/versions/2026_12_02_staff_inputs.py"
    ).read_text()
    sql = source.split("INSERT INTO staff_inputs (institution_code, practitioner_token)")[1]
    return sql.split("ON CONFLICT DO NOTHING")[0]


@pytest.mark.parametrize("seed", [1, 2])
async def test_institutions_judged_from_staff_inputs_equal_the_whole_staff(
    h: Harness, seed: int
) -> None:
    rng = random.Random(seed)
    for code, region in SITES.items():
        await f.institution(h, code, region=region, name=f"医院{code[-2:]}")
        for dept in DEPTS:
            await f.department(h, code, dept)
    for k, code in enumerate(STAFF):
        await f.practitioner(h, code, category="nurse" if k % 4 == 3 else "doctor")
        for site in SITES:  # a violation is recorded only where one is registered
            start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700))
            end = rng.choice([None, start + dt.timedelta(days=rng.randrange(1, 400))])
            await f.registration(
                h,
                code,
                site,
                rng.choice(DEPTS),
                start.isoformat(),
                end if end is None else end.isoformat(),
            )
    await _assert_equal_to_whole_staff(h)
    for _ in range(4):
        for _ in range(7):
            await _random_write(h, rng)
        await _assert_equal_to_whole_staff(h)
