"""The decision log (app.decisions): every answered line is recorded off the hot path, found by
its id with the data versions it was judged on, searched by claim id, practitioner, institution
and day; a row PostgreSQL refuses is isolated and counted, an overflow counted; and after an
upheld appeal (or a late suspension) `claimgate decisions replay` lists exactly the decisions
that would now differ."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import openpyxl
import orjson
import pytest

from app.auth.keys import Principal
from app.checks.lines import Line
from app.checks.verdicts import now_iso, verdict_of
from app.decisions.log import DecisionLog
from app.decisions.partitions import shanghai_today
from tests import factories as f
from tests.conftest import Harness, _plain
from tests.serving import ROOT, cli_env

pytestmark = pytest.mark.asyncio(loop_scope="session")

RID = "371002198001010010"  # a resident ID number used as a practitioner code
D2 = "D370802000002"
D3 = "D370802000003"


async def _check(h: Harness, claim: str, **fields: Any) -> dict[str, Any]:
    return await f.check(h, role="gateway", claim_id=claim, **fields)


async def _logged(h: Harness) -> None:
    assert h.runtime.decisions is not None
    await h.runtime.decisions.flush()


async def test_a_decision_is_found_by_its_id_with_the_data_versions_it_saw(h: Harness) -> None:
    await f.world(h)
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()
    answer = await _check(h, "claim-1")
    unknown = await _check(h, "claim-2", practitioner_code=RID, emergency=True)
    await _logged(h)

    r = await h.client.get(f"/v1/admin/decisions/{answer['decision_id']}", headers=h.auth("agency"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["decision"] == "deny" == answer["decision"]
    assert got["reasons"] == ["PRACTITIONER_SUSPENDED"]
    assert got["data_version"] == answer["data_version"]
    assert got["data_version"]["practitioner"] is not None
    assert (got["claim_id"], got["service_date"], got["source"]) == (
        "claim-1",
        "2026-11-22",
        answer["source"],
    )
    assert got["practitioner_code"] == f.DOC
    assert got["key_id"] is not None

    # An ID number is kept as its token, never in clear, and searched by it.
    r = await h.client.get(
        f"/v1/admin/decisions/{unknown['decision_id']}", headers=h.auth("agency")
    )
    assert r.status_code == 200
    assert r.json()["emergency"] is True
    assert RID not in r.text
    conn = await asyncpg.connect(_plain(h.runtime.settings.database_url or ""))
    try:
        rows = await conn.fetch("SELECT practitioner_token::text AS t FROM decision_log")
    finally:
        await conn.close()
    assert rows
    assert all(RID not in row["t"] for row in rows)
    found = await h.client.get(
        "/v1/admin/decisions", params={"practitioner": RID}, headers=h.auth("agency")
    )
    assert [d["decision_id"] for d in found.json()["items"]] == [unknown["decision_id"]]

    missing = await h.client.get("/v1/admin/decisions/" + "0" * 32, headers=h.auth("agency"))
    assert missing.status_code == 404
    assert missing.json()["code"] == "DECISION_NOT_FOUND"
    assert (
        await h.client.get("/v1/admin/decisions/nothex", headers=h.auth("agency"))
    ).status_code == 422
    forbidden = await h.client.get(
        f"/v1/admin/decisions/{answer['decision_id']}", headers=h.auth("his")
    )
    assert forbidden.status_code == 403


async def test_decisions_are_searched_by_claim_practitioner_institution_and_day_in_pages(
    h: Harness,
) -> None:
    await f.world(h)
    await h.synced()
    ids = [(await _check(h, f"claim-{i}"))["decision_id"] for i in range(5)]
    batch = await h.client.post(
        "/v1/checks/batch",
        json={
            "checks": [
                {"institution_code": f.INST, "department_code": f.DEPT, "practitioner_code": D2}
            ]
        },
        headers=h.auth("gateway"),
    )
    other = batch.json()["results"][0]["decision_id"]
    await _logged(h)
    agency = h.auth("agency")

    async def search(**params: Any) -> dict[str, Any]:
        r = await h.client.get("/v1/admin/decisions", params=params, headers=agency)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    assert [d["decision_id"] for d in (await search(claim_id="claim-3"))["items"]] == [ids[3]]
    by_doc = await search(practitioner=f.DOC)
    assert [d["decision_id"] for d in by_doc["items"]] == ids[::-1]  # newest first
    assert {d["decision_id"] for d in (await search(institution=f.INST))["items"]} == {
        *ids,
        other,
    }
    today = shanghai_today()
    assert len((await search(day=today.isoformat()))["items"]) == 6
    assert (await search(day=(today - timedelta(days=1)).isoformat()))["items"] == []

    # Pages of two, newest first, each continuing where the last ended, nothing twice.
    seen: list[str] = []
    page = await search(practitioner=f.DOC, limit=2)
    while True:
        seen += [d["decision_id"] for d in page["items"]]
        if page["next_cursor"] is None:
            break
        page = await search(practitioner=f.DOC, limit=2, cursor=page["next_cursor"])
    assert seen == ids[::-1]

    broad = await h.client.get("/v1/admin/decisions", headers=agency)
    assert broad.status_code == 422
    assert broad.json()["code"] == "SEARCH_TOO_BROAD"
    bad = await h.client.get("/v1/admin/decisions", params={"day": "2026-13-01"}, headers=agency)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.day"
    cursor = await h.client.get(
        "/v1/admin/decisions", params={"claim_id": "x", "cursor": "nonsense"}, headers=agency
    )
    assert cursor.status_code == 422
    assert cursor.json()["errors"][0]["field"] == "query.cursor"


def _line(claim_id: str) -> Line:
    return Line(f.INST, f.DEPT, f.DOC, "2026-11-22", False, claim_id)


async def test_a_row_is_stored_as_answered_whatever_its_values(h: Harness) -> None:
    """The rows are encoded by hand for COPY (app.decisions.rows): every kind of value a line
    can carry comes back as it was handed over."""
    rt = h.runtime
    log = DecisionLog(rt.engine, "test-secret", capacity=10, interval_s=60)
    deny = verdict_of(
        False,
        [
            {"code": "PRACTITIONER_UNKNOWN", "message": "x", "blocking": True},
            {"code": "INSTITUTION_UNKNOWN", "message": "y", "blocking": True},
        ],
        {"institution": None, "practitioner": None},
    )
    allow = verdict_of(True, [], {"institution": 2**40, "practitioner": 3})
    lines = [
        Line("H370802000001", "内科-A01", RID, "2026-11-22", True, "单据:号-1"),
        Line("H370802000001", "A01", D2, "2026-11-21", False, None),
    ]
    at = now_iso()
    log.answered(None, lines, [deny, allow], [b"%032x" % 71, b"%032x" % 72], "database", at)  # type: ignore[arg-type]
    assert await log.flush() == 2
    conn = await asyncpg.connect(_plain(rt.settings.database_url or ""))
    try:
        rows = await conn.fetch("SELECT * FROM decision_log ORDER BY decision_id")
    finally:
        await conn.close()
    got = [dict(r) for r in rows]
    assert [r["decision_id"] for r in got] == [f"{71:032x}", f"{72:032x}"]
    first, second = got
    assert (first["key_id"], first["source"]) == (None, "database")
    assert first["answered_at"] == datetime.fromisoformat(at)
    assert (first["institution_code"], first["department_code"]) == ("H370802000001", "内科-A01")
    assert first["practitioner_token"].startswith("ID:")
    assert RID not in first["practitioner_token"]
    assert (str(first["service_date"]), first["emergency"]) == ("2026-11-22", True)
    assert (first["decision"], first["reasons"]) == (
        "deny",
        ["PRACTITIONER_UNKNOWN", "INSTITUTION_UNKNOWN"],
    )
    assert (first["institution_version"], first["practitioner_version"]) == (None, None)
    assert first["claim_id"] == "单据:号-1"
    assert (second["decision"], second["reasons"], second["claim_id"]) == ("allow", [], None)
    assert (second["institution_version"], second["practitioner_version"]) == (2**40, 3)
    assert (second["practitioner_token"], second["emergency"]) == (D2, False)


async def test_a_refused_row_is_isolated_and_an_overflow_is_counted(h: Harness) -> None:
    rt = h.runtime
    log = DecisionLog(rt.engine, "test-secret", capacity=4, interval_s=60)
    v = verdict_of(True, [], {"institution": 1, "practitioner": 2})
    ids = [b"%032x" % i for i in range(1, 4)]
    # The middle line's claim id is past the column's 64 characters: PostgreSQL refuses it.
    lines = [_line("ok-1"), _line("x" * 65), _line("ok-2")]
    at = now_iso()
    log.answered(7, lines, [v] * 3, ids, "cache", at)
    assert await log.flush() == 2
    assert (log.recorded, log.refused, log.dropped, log.queued) == (2, 1, 0, 0)
    conn = await asyncpg.connect(_plain(rt.settings.database_url or ""))
    try:
        rows = await conn.fetch("SELECT claim_id, key_id, day FROM decision_log ORDER BY claim_id")
    finally:
        await conn.close()
    assert [(r["claim_id"], r["key_id"]) for r in rows] == [("ok-1", 7), ("ok-2", 7)]
    shanghai = datetime.fromisoformat(at).astimezone(timezone(timedelta(hours=8)))
    assert rows[0]["day"] == shanghai.date()

    # Six lines into a buffer of four: the two oldest are pushed out and counted.
    six = [_line(f"c{i}") for i in range(6)]
    log.answered(
        7,
        six,
        [v] * 6,
        [b"%032x" % (10 + i) for i in range(6)],
        "cache",
        "2026-11-22T01:00:00.000+00:00",
    )
    assert (log.dropped, log.queued) == (2, 4)
    assert log.status()["dropped"] == 2


def _replay(h: Harness, tmp: Path, *extra: str, out: Path | None = None) -> dict[str, Any]:
    """`claimgate decisions replay` as an officer runs it; its JSON (or {} for a workbook)."""
    s = h.runtime.settings
    env = cli_env(
        tmp,
        database_url=s.database_url or "",
        redis_url=s.redis_url or "",
        pii_secret=s.pii_secret,
    )
    out = out or tmp / "replay.json"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "decisions", "replay", "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"lines re-judged" in done.stderr
    if out.suffix == ".xlsx":
        return {}
    data: dict[str, Any] = orjson.loads(out.read_bytes())
    return data


async def test_replay_after_an_upheld_appeal_lists_exactly_the_changed_decisions(
    h: Harness, tmp_path: Path
) -> None:
    from tests.test_points_http import violation

    await f.world(h)
    for code in (D2, D3):
        await f.practitioner(h, code)
        await f.registration(h, code)
        await f.agreement(h, code)
    await f.practitioner_action(h, D2, "suspend", "2026-01-01", "2027-01-01")
    r = await violation(h, "v-1", 6)  # f.DOC suspended 2026-03-02 to 2026-06-02
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    await h.synced()

    suspended = await _check(h, "A", service_date="2026-03-10")  # deny: the violation
    before = await _check(h, "B", service_date="2026-02-01")  # allow, and stays so
    d2 = await _check(h, "C", practitioner_code=D2, service_date="2026-03-10")  # deny, stays
    d3 = await _check(h, "D", practitioner_code=D3, service_date="2026-11-22")  # allow, for now
    assert [a["decision"] for a in (suspended, before, d2, d3)] == [
        "deny",
        "allow",
        "deny",
        "allow",
    ]
    await _logged(h)
    since = shanghai_today().isoformat()
    assert _replay(h, tmp_path, "--since", since)["changed"] == 0

    # The appeal is upheld: the suspension goes, so claim A was wrongly refused. And D3 is
    # suspended late, over the day of claim D: money paid that the rules now refuse.
    appeal = await h.client.post(
        f"/v1/admin/violations/{vid}/appeal",
        json={"outcome": "upheld", "date": "2026-04-01"},
        headers=h.auth("agency"),
    )
    assert appeal.status_code == 200, appeal.text
    await f.practitioner_action(h, D3, "suspend", "2026-11-01", "2027-02-01")

    got = _replay(h, tmp_path, "--since", since)
    changes = {(c["claim_id"], c["decision_id"], c["change"]) for c in got["decisions"]}
    assert changes == {
        ("A", suspended["decision_id"], "deny→allow"),
        ("D", d3["decision_id"], "allow→deny"),
    }
    assert (got["lines_rejudged"], got["deny_to_allow"], got["allow_to_deny"]) == (4, 1, 1)
    a = next(c for c in got["decisions"] if c["claim_id"] == "A")
    assert (a["reasons_was"], a["reasons_now"]) == (["PRACTITIONER_SUSPENDED"], [])

    # Narrowed to one practitioner; and as a workbook for the agency.
    only = _replay(h, tmp_path, "--since", since, "--practitioner", D3)
    assert [c["claim_id"] for c in only["decisions"]] == ["D"]
    xlsx = tmp_path / "replay.xlsx"
    _replay(h, tmp_path, "--since", since, out=xlsx)
    sheet = openpyxl.load_workbook(xlsx)["changed"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][:2] == ["change", "decision_id"]
    assert sorted((r[0], r[1]) for r in rows[1:]) == sorted(
        [("allow→deny", d3["decision_id"]), ("deny→allow", suspended["decision_id"])]
    )
    # Later than the log: nothing to re-judge.
    later = (shanghai_today() + timedelta(days=1)).isoformat()
    assert _replay(h, tmp_path, "--since", later)["lines_rejudged"] == 0


async def test_every_line_answered_is_logged_through_the_running_service(h: Harness) -> None:
    await f.world(h)
    await h.synced()
    body = {
        "checks": [
            {"institution_code": f.INST, "department_code": f.DEPT, "practitioner_code": f.DOC}
        ]
        * 30
    }
    r = await h.client.post("/v1/checks/batch", json=body, headers=h.auth("gateway"))
    ids = [x["decision_id"] for x in r.json()["results"]]
    rt = h.runtime
    assert rt.decisions is not None
    await rt.decisions.flush()
    conn = await asyncpg.connect(_plain(rt.settings.database_url or ""))
    try:
        rows = await conn.fetch("SELECT decision_id, key_id FROM decision_log")
    finally:
        await conn.close()
    gateway: Principal | None = rt.keys.verify(h.keys["gateway"])
    assert gateway is not None
    assert sorted(r["decision_id"] for r in rows) == sorted(ids)
    assert {r["key_id"] for r in rows} == {gateway.key_id}
