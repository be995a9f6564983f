"""The read path made cheaper for issue 14, each change held to what it must not change.

Lines the process has not seen: concurrent checks share one Redis read, a practitioner's alias
is read only where their view is absent, an institution's document is decoded once. Check
requests taken past FastAPI's outer layers (app.api.front) are answered exactly as before —
refusals, failures and the request's own headers included. The answers' stamp and today's date
are worked out once per millisecond and per day. A decision-log flush lets checks run while it
builds its rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.cache.coalesce import CoalescedReads
from app.cache.l1 import MISSING
from app.cache.layout import alias_key, view_key
from app.cache.topology import mget
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAYS = [f"2026-11-{d:02d}" for d in range(10, 20)]


async def _ready(h: Harness) -> None:
    await f.world(h)
    await h.synced()
    await f.wait_for_l1(h)


def _counted(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every MGET the checks send from now on, with its keys."""
    sent: list[list[str]] = []
    real = h.runtime.redis.mget

    async def counted(keys: Any, *args: Any) -> Any:
        sent.append(list(keys))
        return await real(keys, *args)

    monkeypatch.setattr(h.runtime.redis, "mget", counted)
    return sent


async def test_reads_asked_in_one_turn_go_as_one_mget_and_each_gets_its_own(h: Harness) -> None:
    redis = h.runtime.redis
    await redis.mset({"cg:test:a": b"1", "cg:test:b": b"2", "cg:test:c": b"3"})
    sent: list[list[str]] = []

    async def read(keys: list[str]) -> list[Any]:
        sent.append(keys)
        return await mget(redis, keys)

    reads = CoalescedReads(read)
    asks = [["cg:test:a", "cg:test:b"], ["cg:test:c", "cg:test:a"], ["cg:test:none"], []]
    got = await asyncio.gather(*(reads.get(k) for k in asks))
    assert got == [[b"1", b"2"], [b"3", b"1"], [None], []]
    assert len(sent) == 1  # one MGET, each key once
    assert sorted(sent[0]) == ["cg:test:a", "cg:test:b", "cg:test:c", "cg:test:none"]
    # The next turn's reads are a new MGET (nothing waits on a read already sent).
    assert await reads.get(["cg:test:b"]) == [b"2"]
    assert len(sent) == 2


async def test_a_failed_shared_read_fails_every_caller_and_a_cancelled_one_harms_none() -> None:
    release = asyncio.Event()

    async def read(keys: list[str]) -> list[Any]:
        await release.wait()
        raise ConnectionError("Redis went away")

    reads = CoalescedReads(read)
    callers = [asyncio.ensure_future(reads.get([f"k{i}"])) for i in range(4)]
    await asyncio.sleep(0)  # all four asked; the read is sent
    await asyncio.sleep(0)
    callers[0].cancel()
    release.set()
    done = await asyncio.gather(*callers, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    assert all(isinstance(e, ConnectionError) for e in done[1:])


async def test_concurrent_checks_of_unseen_lines_share_reads_and_answer_right(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _ready(h)
    h.runtime.l1.clear()  # nothing seen: every line needs Redis
    sent = _counted(h, monkeypatch)
    answers = await asyncio.gather(*(f.check(h, service_date=d) for d in DAYS))
    assert [(a["decision"], a["source"], a["service_date"]) for a in answers] == [
        ("allow", "cache", d) for d in DAYS
    ]
    assert 1 <= len(sent) < len(DAYS), f"{len(DAYS)} checks sent {len(sent)} reads"


async def test_checks_sharing_a_failed_read_are_answered_from_postgresql(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _ready(h)
    h.runtime.l1.clear()

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(h.runtime.redis, "mget", down)
    answers = await asyncio.gather(*(f.check(h, service_date=d) for d in DAYS[:4]))
    assert [(a["decision"], a["source"]) for a in answers] == [("allow", "database")] * 4


async def test_an_alias_is_not_read_or_kept_where_the_view_is_held(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _ready(h)
    rt = h.runtime
    rt.l1.clear()
    sent = _counted(h, monkeypatch)
    assert (await f.check(h, service_date=DAYS[0]))["decision"] == "allow"
    vk, ak = view_key(f.INST, f.DOC), alias_key(f.INST, f.DOC)
    assert [k for k in sent[0] if k in (vk, ak)] == [vk, ak]  # the view not held: both read
    # The view exists, so the alias's absence is not kept: half the L1 it used to take.
    assert rt.l1.get(vk) not in (None, MISSING)
    assert rt.l1.get(ak) is MISSING
    # Another day: the view is held, so the alias is not asked for — no round trip at all.
    sent.clear()
    assert (await f.check(h, service_date=DAYS[1]))["decision"] == "allow"
    assert sent == []
    # An unknown practitioner's absent view and alias are kept: both decide the answer.
    unknown = "D370802009999"
    a = await f.check(h, practitioner_code=unknown, service_date=DAYS[2])
    assert f.codes_of(a) == {"PRACTITIONER_UNKNOWN": True}
    assert rt.l1.get(alias_key(f.INST, unknown)) is None
    assert rt.l1.get(view_key(f.INST, unknown)) is None


async def test_check_requests_past_fastapi_are_answered_as_before(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _ready(h)
    app: Any = h.client._transport.app  # type: ignore[attr-defined]
    assert app.front is not None, "the front is open once the app has started"

    async def both_ways(**kw: Any) -> list[tuple[int, str, set[str], Any]]:
        out = []
        headers = h.auth("his") | kw.pop("headers", {})
        for front in (app.front, None):
            saved, app.front = app.front, front
            try:
                r = await h.client.post("/v1/checks", headers=headers, **kw)
            finally:
                app.front = saved
            body = r.json()
            if isinstance(body, dict):
                for volatile in ("decision_id", "checked_at"):
                    body.pop(volatile, None)
            out.append((r.status_code, r.headers["content-type"], set(r.headers), body))
        return out

    line = {"institution_code": f.INST, "department_code": f.DEPT, "practitioner_code": f.DOC}
    for kw in (
        {"json": line | {"service_date": DAYS[3]}},  # answered
        {"json": line | {"institution_code": "H37089900009"}},  # 403: not this key's
        {"json": line | {"service_date": "2026-02-30"}},  # 422 from the route's model
        {"content": b"{", "headers": {"content-type": "application/json"}},  # 400/422
    ):
        front, fastapi = await both_ways(**dict(kw))
        assert front == fastapi, kw
        assert "x-request-id" in front[2]

    async def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("a bug")

    monkeypatch.setattr(h.runtime.check_usecase, "answer_one", broken)
    r = await h.client.post("/v1/checks", json=line, headers=h.auth("his"))
    assert (r.status_code, r.json()["code"]) == (500, "INTERNAL_ERROR")
    assert "x-request-id" in r.headers


async def test_checked_at_is_the_millisecond_of_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.checks import verdicts

    clock = verdicts._Clock()
    at = {"ns": 1_764_622_455_407_999_999}  # ms / 1000 as a float would round to .407999…
    monkeypatch.setattr("app.checks.verdicts.time.time_ns", lambda: at["ns"])
    assert clock.now_iso() == "2025-12-01T20:54:15.407+00:00"
    _, head = clock.stamp("cache")
    assert head == verdicts.stamp_head("cache", "2025-12-01T20:54:15.407+00:00")
    at["ns"] += 1  # the next millisecond
    assert clock.stamp("database") == (
        "2025-12-01T20:54:15.408+00:00",
        verdicts.stamp_head("database", "2025-12-01T20:54:15.408+00:00"),
    )
    assert clock.stamp("cache")[1] == verdicts.stamp_head("cache", "2025-12-01T20:54:15.408+00:00")


async def test_today_turns_at_midnight_in_shanghai(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import fields

    today = fields._Today()
    at = {"t": 1_764_604_799.9}  # 2025-12-01 15:59:59.9 UTC: 23:59:59.9 in Shanghai
    monkeypatch.setattr("app.fields.time.time", lambda: at["t"])
    assert today() == "2025-12-01"
    at["t"] += 0.1  # midnight in Shanghai
    assert today() == "2025-12-02"
    at["t"] -= 3600  # a clock stepped back an hour
    assert today() == "2025-12-01"


async def test_an_institution_document_is_decoded_once_until_its_value_changes() -> None:
    from app.cache.l1 import L1Cache
    from app.cache.layout import encode, institution_key

    l1 = L1Cache(100)
    l1.healthy = True
    ik, vk = institution_key(f.INST), view_key(f.INST, f.DOC)
    l1.put_many([(ik, encode(1, {"d": {}})), (vk, encode(1, {"r": []}))], l1.epoch)
    first = l1.get(ik)
    assert first is not None
    assert first.version == 1
    assert l1.get(ik) is first  # shared: read only
    assert l1.get(vk) is not l1.get(vk)  # a view is decoded afresh for each caller
    l1.put_many([(ik, encode(2, {"d": {"A01": {}}}))], l1.epoch)  # a newer document
    second = l1.get(ik)
    assert second is not None
    assert (second.version, second.doc) == (2, {"d": {"A01": {}}})
    l1.invalidate([ik])
    assert l1.get(ik) is MISSING


async def test_a_decision_log_flush_lets_checks_run_while_it_builds_rows(h: Harness) -> None:
    from app.checks.lines import Line
    from app.checks.verdicts import now_iso, verdict_of
    from app.decisions.log import _ROWS_PER_TURN, DecisionLog

    rt = h.runtime
    log = DecisionLog(rt.engine, "test-secret", capacity=4000, interval_s=60)
    v = verdict_of(True, [], {"institution": 1, "practitioner": 2})
    n = 4 * _ROWS_PER_TURN
    lines = [Line(f.INST, f.DEPT, f.DOC, "2026-11-22", False, f"turns-{i}") for i in range(n)]
    log.answered(7, lines, [v] * n, [b"%032x" % (5000 + i) for i in range(n)], "cache", now_iso())

    turns = 0
    stop = asyncio.Event()

    async def checks_meanwhile() -> None:  # stands for the checks sharing the loop
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    seen: list[int] = []
    encoder = log._encoder
    encode = encoder.encode

    def each_slice(entries: Any) -> bytes:
        seen.append(turns)  # how far the other task had got when this slice was encoded
        return encode(entries)

    encoder.encode = each_slice  # type: ignore[method-assign]
    other = asyncio.ensure_future(checks_meanwhile())
    try:
        assert await log.flush() == n
    finally:
        stop.set()
        await other
    assert len(seen) == n // _ROWS_PER_TURN
    # Built in one go, every slice would see the same count: the loop ran between them.
    assert len(set(seen)) == len(seen)


async def test_the_front_stays_closed_when_fastapi_has_work_to_do(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Any = h.client._transport.app  # type: ignore[attr-defined]
    saved = app.front
    try:
        # OpenTelemetry configured: FastAPI traces the request, so every request takes its way.
        monkeypatch.setattr(app._native_telemetry, "enabled", lambda: True)
        app.open_front()
        assert app.front is None
        monkeypatch.undo()
        app.open_front()
        assert type(app.front).__name__ == type(saved).__name__ == "RequestContext"
    finally:
        app.front = saved


async def test_a_full_memo_makes_room_one_institution_at_a_time() -> None:
    from app.checks.verdicts import VerdictMemo, verdict_of

    memo = VerdictMemo(100)
    v = verdict_of(True, [], {"institution": 1, "practitioner": 1})
    keys = [(f"H370800000{i // 10:02d}", "A01", f"t{i}", "2026-11-22", False) for i in range(100)]
    for k in keys:
        memo.put(k, v)
    newcomer = ("H37080000099", "A01", "t", "2026-11-22", False)
    memo.put(newcomer, v)
    # The longest remembered institution's ten verdicts made room; the other ninety stay (the
    # memo used to be emptied whole, and every line went back to the L1 at once).
    assert len(memo) == 91
    assert memo.get(newcomer) is v
    assert [memo.get(k) for k in keys[:10]] == [None] * 10
    assert all(memo.get(k) is v for k in keys[10:])
