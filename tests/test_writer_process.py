"""`claimgate serve`'s writer process (app.api.writer_process, app.api.forward).

Real `claimgate serve` processes on loopback, on the test's PostgreSQL and Redis: admin writes
sent to the check port are applied by the one writer process (the audit row carries the request
id given at the check port; the cache answers the change), checks keep answering while the writer
is stopped or killed, the parent starts it again, a write cut off by its death answers 503 and
its retry under the same Idempotency-Key applies once, /readyz stays 200 but says "degraded"
without it, and /metrics carries the writer's and its sync worker's series.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from app.embedded import free_port
from tests import factories as f
from tests.conftest import Harness, Servers, _plain
from tests.serving import serve, wait_ready

LINE = {
    "institution_code": f.INST,
    "department_code": f.DEPT,
    "practitioner_code": f.DOC,
    "service_date": "2026-11-22",
}
ACTION = {"action": "suspend", "start": "2026-10-01", "end": None, "reason": "test"}
ACTIONS = f"/v1/admin/practitioners/{f.DOC}/actions"


def _writers(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(proc.pid).children()
        if "app.api.writer_process" in " ".join(p.cmdline())
    ]


def _serve(servers: Servers, tmp_path: Path, *extra: str, **settings: str) -> tuple[Any, int, Path]:
    port, log = free_port(), tmp_path / f"serve-{time.monotonic_ns()}.log"
    proc = serve(
        tmp_path / "unused",
        port,
        log,
        *extra,
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        pii_secret="test-secret",
        shutdown_timeout_s="2",
        **settings,
    )
    return proc, port, log


async def _until(what: str, probe: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while not (got := await probe()):
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        await asyncio.sleep(0.1)
    return got


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.asyncio(loop_scope="session")
async def test_two_workers_share_one_writer_that_applies_writes_sent_to_the_check_port(
    h: Harness, servers: Servers, tmp_path: Path
) -> None:
    await f.world(h)
    await h.synced()
    proc, port, log = _serve(servers, tmp_path, "--workers", "2", metrics_fold_interval_s="0.2")
    try:
        await asyncio.to_thread(wait_ready, port, proc, log)
        assert len(_writers(proc)) == 1  # one per server, not one per worker
        auth = h.auth("agency")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = await c.post(ACTIONS, json=ACTION, headers={**auth, "X-Request-ID": "hop-1"})
            assert r.status_code == 201, r.text
            assert r.headers["x-request-id"] == "hop-1"
            assert r.headers.get_list("x-request-id") == ["hop-1"]  # one id, not one per hop

            # The change reached PostgreSQL, with the request id given at the check port...
            conn = await asyncpg.connect(_plain(servers.database_url))
            try:
                rids = await conn.fetch(
                    "SELECT request_id FROM audit_log WHERE request_id = 'hop-1'"
                )
            finally:
                await conn.close()
            assert rids

            # ...and the cache: the checks (in both workers) answer the suspension.
            async def denied() -> bool:
                r = await c.post("/v1/checks", json=LINE, headers=h.auth("his"))
                return bool(r.status_code == 200 and r.json()["decision"] == "deny")

            await _until("the check sees the write", denied)

            # Bad input is refused by the writer as it would be in process: field named.
            bad = await c.post(ACTIONS, json={**ACTION, "action": "?"}, headers=auth)
            assert bad.status_code == 422
            assert bad.headers["content-type"].startswith("application/problem+json")
            assert "action" in bad.text
            # Reads of the admin side go there too, the query string with them.
            roster = await c.get(
                "/v1/admin/practitioners",
                params={"institution_code": f.INST, "limit": 1},
                headers=auth,
            )
            assert roster.status_code == 200, roster.text
            assert len(roster.json()["items"]) == 1
            too_many = await c.get("/v1/admin/practitioners?limit=5000", headers=auth)
            assert too_many.status_code == 422
            assert "limit" in too_many.text
            got = await c.get(f"/v1/admin/practitioners/{f.DOC}", headers=auth)
            assert got.status_code == 200
            assert got.json()["code"] == f.DOC

            ready = (await c.get("/readyz")).json()
            assert ready["writer"]["ok"]
            assert ready["status"] == "ready"

            # /metrics, whichever worker answers: the writer's counts and its sync worker's.
            async def scraped() -> str | None:
                text = (await c.get("/metrics")).text
                ok = "claimgate_sync_rounds_total" in text and (
                    'route="/v1/admin/practitioners/{code}/actions",status="201"' in text
                )
                return text if ok else None

            await _until("the writer's series in /metrics", scraped)
    finally:
        _stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    requests = [line for line in log.read_text().splitlines() if '"event":"request"' in line]
    hop = [line for line in requests if '"request_id":"hop-1"' in line]
    assert len(hop) == 1
    assert '"route":"/v1/admin/practitioners/{code}/actions"' in hop[0]


async def _waiting_on_advisory_lock(conn: asyncpg.Connection) -> bool:
    n = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    )
    return bool(n)


@pytest.mark.asyncio(loop_scope="session")
async def test_checks_answer_without_the_writer_which_comes_back_and_a_retry_applies_once(
    h: Harness, servers: Servers, tmp_path: Path
) -> None:
    await f.world(h)
    await h.synced()
    proc, port, log = _serve(
        servers,
        tmp_path,
        "--no-sync",
        writer_timeout_s="3",  # a writer that stops answering is given up on after this
        db_timeout_s="1",
        metrics_fold_interval_s="0.2",
    )
    auth = {**h.auth("agency"), "Idempotency-Key": "retry-me-1"}
    conn = await asyncpg.connect(_plain(servers.database_url))
    try:
        await asyncio.to_thread(wait_ready, port, proc, log)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            # A writer that does not answer (stopped): checks answer, /readyz is 200 "degraded",
            # an admin request is refused 503 with Retry-After once the wait is over.
            (first,) = _writers(proc)
            first.suspend()
            try:
                r = await c.post("/v1/checks", json=LINE, headers=h.auth("his"))
                assert r.status_code == 200
                assert r.json()["decision"] == "allow"
                ready = await c.get("/readyz")
                assert ready.status_code == 200
                body = ready.json()
                assert body["status"] == "degraded"
                assert "writer_unavailable" in body["degraded_reasons"]
                r = await c.get(f"/v1/admin/practitioners/{f.DOC}", headers=auth)
                assert r.status_code == 503
                assert r.json()["code"] == "WRITER_UNAVAILABLE"
                assert r.headers["retry-after"]
            finally:
                first.resume()

            # A write waiting on an advisory lock (the one its Idempotency-Key takes) when the
            # writer dies: 503; PostgreSQL rolls its transaction back.
            await conn.execute(
                "SELECT pg_advisory_lock(hashtext('practitioner.action:retry-me-1'))"
            )
            cut = asyncio.create_task(c.post(ACTIONS, json=ACTION, headers=auth))
            await _until("the write waits on the lock", lambda: _waiting_on_advisory_lock(conn))
            os.kill(first.pid, signal.SIGKILL)
            r = await cut
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "WRITER_UNAVAILABLE"
            assert r.headers["retry-after"]
            # Checks answer meanwhile, whether or not the writer is back yet.
            r = await c.post("/v1/checks", json=LINE, headers=h.auth("his"))
            assert r.status_code == 200

            # The parent starts the writer again.
            async def restarted() -> bool:
                w = _writers(proc)
                ready = (await c.get("/readyz")).json()
                return bool(w and w[0].pid != first.pid and ready["writer"]["ok"])

            await _until("a new writer", restarted)
            await conn.execute("SELECT pg_advisory_unlock_all()")

            # The retry applies once; a second retry is answered the same, not applied again.
            before = await conn.fetchval("SELECT count(*) FROM events")
            again = await c.post(ACTIONS, json=ACTION, headers=auth)
            assert again.status_code == 201, again.text
            twice = await c.post(ACTIONS, json=ACTION, headers=auth)
            assert twice.status_code == 201
            assert twice.json() == again.json()
            assert await conn.fetchval("SELECT count(*) FROM events") == before + 1

            async def denied() -> bool:
                r = await c.post("/v1/checks", json=LINE, headers=h.auth("his"))
                return bool(r.json()["decision"] == "deny")

            await _until("the check sees the retried write", denied)

            # One worker: its /metrics has the (restarted) writer's series too.
            async def counted() -> bool:
                text = (await c.get("/metrics")).text
                return 'route="/v1/admin/practitioners/{code}/actions",status="201"' in text

            await _until("the writer's answers in /metrics", counted)
    finally:
        await conn.close()
        _stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "writer process" in log.read_text()
    assert "starting it again" in log.read_text()


@pytest.mark.asyncio(loop_scope="session")
async def test_writer_mode_thread_serves_writes_in_the_check_process(
    h: Harness, servers: Servers, tmp_path: Path
) -> None:
    await f.world(h)
    await h.synced()
    proc, port, log = _serve(servers, tmp_path, "--no-sync", writer="thread")
    try:
        await asyncio.to_thread(wait_ready, port, proc, log)
        assert _writers(proc) == []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = await c.post(ACTIONS, json=ACTION, headers=h.auth("agency"))
            assert r.status_code == 201, r.text
            assert "writer" not in (await c.get("/readyz")).json()
    finally:
        _stop(proc)
    assert proc.returncode == 0
