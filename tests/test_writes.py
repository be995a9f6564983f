"""The write path (app.admin.writes, app.admin.unit_of_work): an event recorded through the unit
of work is audited, projected and mirrored with nothing else asked of the service; a write that
fails leaves nothing; and an Idempotency-Key's fingerprint cannot confirm a guessed ID number."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from app.admin.unit_of_work import Audit, UnitOfWork
from app.admin.writes import Write, Writes
from app.cache.layout import decode, view_key
from app.projection.ledger import WriteContext
from app.sync.mirror import Mirror
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

RID = "371002198001010010"
TABLES = ("events", "audit_log", "projections", "outbox", "idempotency_keys")


async def _counts(h: Harness) -> dict[str, int]:
    async with h.runtime.engine.connect() as conn:
        return {
            t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in TABLES
        }


async def _suspend(uow: UnitOfWork, token: str) -> dict[str, Any]:
    """A service function that only records: no recompute, audit or mirror of its own."""
    payload = {
        "action": "suspend",
        "institution": None,
        "start": "2026-10-01",
        "end": "2027-01-01",
        "reason": "test",
    }
    event_id = await uow.record(
        "practitioner_action",
        payload,
        practitioner=token,
        occurred_on=date(2026, 10, 1),
        audit=Audit("practitioner.suspend", token),
    )
    return {"event_id": event_id}


async def _fail_after_recording(uow: UnitOfWork, token: str) -> dict[str, Any]:
    await _suspend(uow, token)
    await uow.flush()  # projections written inside the transaction, then rolled back
    raise RuntimeError("the write fails after recording")


async def test_a_recorded_event_is_audited_projected_and_mirrored(h: Harness) -> None:
    await f.world(h)
    await h.synced()
    writes = Writes(h.runtime.engine, Mirror(h.runtime.redis))

    status, answer = await writes.run(
        Write(WriteContext(None, "req-uow"), status=201), _suspend, f.DOC
    )

    assert status == 201
    async with h.runtime.engine.connect() as conn:
        audit = (
            await conn.execute(
                text("SELECT action, request_id FROM audit_log ORDER BY id DESC LIMIT 1")
            )
        ).one()
        event = (
            await conn.execute(text("SELECT id, request_id FROM events ORDER BY id DESC LIMIT 1"))
        ).one()
    assert tuple(audit) == ("practitioner.suspend", "req-uow")
    assert tuple(event) == (answer["event_id"], "req-uow")
    # Mirrored before run() returned: Redis already holds the suspension.
    raw = await h.runtime.redis.get(view_key(f.INST, f.DOC))
    assert raw is not None
    assert [iv[2] for iv in decode(raw).doc["s"]] == ["suspended"]
    assert f.codes_of(await f.check(h))["PRACTITIONER_SUSPENDED"] is True


async def test_a_write_that_fails_after_recording_leaves_nothing(h: Harness) -> None:
    await f.world(h)
    await h.synced()
    before = await _counts(h)
    writes = Writes(h.runtime.engine, Mirror(h.runtime.redis))

    with pytest.raises(RuntimeError):
        await writes.run(
            Write(
                WriteContext(None, "req-fail"), "test.fail", idempotency_key="k", fingerprint="x"
            ),
            _fail_after_recording,
            f.DOC,
        )

    assert await _counts(h) == before
    assert f.codes_of(await f.check(h)) == {}


async def test_an_idempotency_fingerprint_cannot_confirm_a_guessed_id_number(h: Harness) -> None:
    """The path of a practitioner write may hold a resident ID number; its fingerprint is keyed
    by the PII secret, so whoever reads the table cannot test guesses against it."""
    await f.institution(h, "H37100200001", region="371000", name="威海市立医院")
    path = f"/v1/admin/practitioners/{RID}"
    body = {"name": "王伟", "category": "doctor", "id_number": None}
    headers = {**h.auth("agency"), "Idempotency-Key": "rid-1"}

    first = await h.client.put(path, json=body, headers=headers)
    again = await h.client.put(path, json=body, headers=headers)
    other = await h.client.put(path, json={**body, "name": "李娜"}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert other.status_code == 409
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    async with h.runtime.engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT request_hash FROM idempotency_keys"))
        ).scalar_one()
    guess = hashlib.sha256(
        orjson.dumps({"p": path, "b": body}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    assert stored != guess
    assert RID not in stored
