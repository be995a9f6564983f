"""The record of claims checked under a sanctioned code (evidence of a violation in itself):
a row the database refuses never blocks the rows behind it, a database that is away loses
nothing it can still be given, a shutdown writes what is held, and /v1/ops/status shows it all."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.checks.attempts import AttemptRecorder
from app.checks.lines import Line
from tests import factories as f
from tests.conftest import Harness, Servers, _plain, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

SANCTIONED = ("PRACTITIONER_SUSPENDED",)


def _line(claim_id: str | None) -> Line:
    return Line(f.INST, f.DEPT, f.DOC, "2026-11-22", False, claim_id)


async def _claim_ids(h: Harness) -> list[str | None]:
    async with h.runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT claim_id FROM sanctioned_attempts ORDER BY id"))
        return [r[0] for r in rows]


async def _suspended_world(h: Harness) -> None:
    await f.world(h)
    await f.practitioner_action(h, f.DOC, "suspend", "2026-11-01", "2027-01-01")
    await h.synced()


async def test_a_row_the_database_refuses_never_blocks_the_rows_behind_it(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rec = h.runtime.attempts
    # NUL is refused by PostgreSQL itself (22021); an unpaired surrogate by asyncpg's encoder,
    # whose message quotes the value (22000). The edge refuses both now; this is the last line.
    bad = ["Q7Z\x00nul", "Q8Z\ud800surrogate"]
    ids = [f"c-{i}" for i in range(40)]
    for i, cid in enumerate(ids):
        rec.note(_line(cid), SANCTIONED, f"d{i}")
        if i == 10:
            rec.note(_line(bad[0]), SANCTIONED, "bad0")
        if i == 30:
            rec.note(_line(bad[1]), SANCTIONED, "bad1")

    assert await rec.flush() == 40
    assert (rec.recorded, rec.refused, rec.queued) == (40, 2, 0)
    assert await _claim_ids(h) == ids  # every good row, in order

    # Later records are written as usual: nothing is stuck at the head of the buffer.
    for i in range(20):
        rec.note(_line(f"later-{i}"), SANCTIONED, f"l{i}")
    assert await rec.flush() == 20
    assert rec.recorded == 60
    # Counted and logged by SQLSTATE, never by content.
    logged = caplog.text
    assert "SQLSTATE 22021" in logged
    assert "SQLSTATE 22000" in logged
    for secret in ("Q7Z", "Q8Z", "surrogate", "\\ud800", "\ud800", "\x00"):
        assert secret not in logged


async def test_a_claim_id_with_a_control_character_is_refused_and_later_attempts_are_recorded(
    h: Harness,
) -> None:
    """The issue's reproduction: a check with ``claim_id`` "a\\u0000b" on a sanctioned code was
    answered 200, and nothing was recorded after it."""
    await _suspended_world(h)
    line = {
        "institution_code": f.INST,
        "department_code": f.DEPT,
        "practitioner_code": f.DOC,
        "service_date": "2026-11-22",
    }
    for body in (
        {**line, "claim_id": "a\u0000b"},  # plain: the fast path's own check
        {**line, "claim_id": "a\u0000b", "department_code": "a01"},  # the route's model
        {"checks": [line, {**line, "claim_id": "a\u2028b"}]},
    ):
        url = "/v1/checks/batch" if "checks" in body else "/v1/checks"
        r = await h.client.post(url, json=body, headers=h.auth("his"))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"].endswith("claim_id")
    # An unpaired surrogate: orjson refuses it, the route's parser reads it, the model refuses.
    raw = b'{"institution_code": "H37080200001", "department_code": "A01", '
    raw += b'"practitioner_code": "D370802000001", "claim_id": "a\\ud800b"}'
    r = await h.client.post(
        "/v1/checks", content=raw, headers={**h.auth("his"), "content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.claim_id"

    for i in range(20):
        answer = await f.check(h, claim_id=f"after-{i}")
        assert answer["decision"] == "deny"
    await h.runtime.attempts.flush()
    assert await _claim_ids(h) == [f"after-{i}" for i in range(20)]


async def test_a_database_that_is_away_keeps_every_record_in_order(servers: Servers) -> None:
    """A lock timeout (like a server that is away) is not a refusal of the rows: nothing is
    isolated or counted as refused; everything waits, in order, for the next round."""
    await reset(servers)
    # The app's lock timeout is 5 x CLAIMGATE_DB_TIMEOUT_S; 100 ms fails the flush quickly.
    engine = create_async_engine(
        servers.database_url, connect_args={"server_settings": {"lock_timeout": "100"}}
    )
    rec = AttemptRecorder(engine, "test-secret")
    holder = await asyncpg.connect(_plain(servers.database_url))
    try:
        for i in range(5):
            rec.note(_line(f"held-{i}"), SANCTIONED, f"h{i}")
        await holder.execute("BEGIN; LOCK TABLE sanctioned_attempts IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(DBAPIError):
            await rec.flush()
        rec.note(_line("held-5"), SANCTIONED, "h5")
        assert (rec.queued, rec.recorded, rec.refused, rec.dropped) == (6, 0, 0, 0)
        await holder.execute("COMMIT")
        assert await rec.flush() == 6
        rows = await holder.fetch("SELECT claim_id FROM sanctioned_attempts ORDER BY id")
        assert [r[0] for r in rows] == [f"held-{i}" for i in range(6)]
    finally:
        await holder.close()
        await engine.dispose()


async def test_shutdown_writes_what_is_held_even_when_the_first_try_fails(
    servers: Servers,
) -> None:
    """The table is locked when the process shuts down: the first try times out (lock timeout
    1.5 s at DB_TIMEOUT_S=0.3); the shutdown keeps trying until the lock goes, within its bound."""
    await reset(servers)
    settings = make_settings(servers, attempts_flush_interval_s=60, db_timeout_s=0.3)
    holder = await asyncpg.connect(_plain(servers.database_url))

    async def release_later() -> None:
        await asyncio.sleep(2.0)  # past the first try's lock timeout (1.5 s)
        await holder.execute("COMMIT")

    try:
        async for h in start_harness(settings):
            for i in range(30):
                h.runtime.attempts.note(_line(f"last-{i}"), SANCTIONED, f"s{i}")
            await holder.execute("BEGIN; LOCK TABLE sanctioned_attempts IN ACCESS EXCLUSIVE MODE")
            releaser = asyncio.create_task(release_later())
            rec = h.runtime.attempts
        # The lifespan has ended: Runtime.close ran.
        await releaser
        assert (rec.queued, rec.recorded, rec.dropped) == (0, 30, 0)
        rows = await holder.fetch("SELECT claim_id FROM sanctioned_attempts ORDER BY id")
        assert [r[0] for r in rows] == [f"last-{i}" for i in range(30)]
    finally:
        await holder.close()


async def test_ops_status_shows_what_is_queued_recorded_dropped_refused_and_when(
    servers: Servers,
) -> None:
    # The periodic flush held off (60 s), so what is queued stays queued until the test's own
    # flush: at 0.2 s it could run between the check and the first status call.
    await reset(servers)
    async for h in start_harness(make_settings(servers, attempts_flush_interval_s=60)):
        await _ops_status_through_a_flush(h)


async def _ops_status_through_a_flush(h: Harness) -> None:
    await _suspended_world(h)
    rec = h.runtime.attempts
    await f.check(h, claim_id="x-1")
    rec.note(_line("bad\x00"), SANCTIONED, "bad")
    queued = (await h.client.get("/v1/ops/status", headers=h.auth("ops"))).json()
    await rec.flush()
    done = (await h.client.get("/v1/ops/status", headers=h.auth("ops"))).json()
    before, after = queued["sanctioned_attempts"], done["sanctioned_attempts"]
    assert before["queued"] >= 1
    assert (after["queued"], after["recorded"], after["refused"], after["dropped"]) == (0, 1, 1, 0)
    assert after["flush_interval_s"] == h.runtime.settings.attempts_flush_interval_s
    assert 0 <= after["last_flush_age_s"] < 60
    assert after["last_flush_at"].startswith("20")
