"""Stopping claimgate stops what it started (issue 18).

Each signal goes to the serving process alone, as systemd, Docker and Kubernetes send it — not
to its whole terminal group, which would reach the servers directly and prove nothing. After it:
the process has exited, nothing it started runs on (PostgreSQL, Redis, the watchdog), PostgreSQL
was shut down cleanly (fast, not crash-recovered at the next start), and the next start on the
same data directory answers /readyz. On an external PostgreSQL and Redis, SIGTERM drains the
checks in flight, writes the buffered sanctioned attempts, and gives up on a stalled client
after CLAIMGATE_SHUTDOWN_TIMEOUT_S; with --workers N, a SIGKILLed supervisor takes its workers
with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from app import lifecycle
from app.db.tables import sanctioned_attempts
from app.embedded import free_port
from tests import factories as f
from tests.conftest import Harness, Servers
from tests.serving import (
    cli_env,
    gone_within,
    serve,
    start_cli,
    started_under,
    wait_for_line,
    wait_ready,
)

# A stop may take the drain (requests, then buffered records: 2 × the 5 s default) plus the
# embedded servers' bounded stop; the tests allow that and a margin for a busy machine.
STOP_WAIT_S = 2 * 5 + lifecycle.STOP_BOUND_S + 15


def _writer_of(proc: subprocess.Popen[bytes]) -> psutil.Process:
    """`serve`'s writer process (app.api.writer_process): its one child running it."""
    (writer,) = [
        p
        for p in psutil.Process(proc.pid).children()
        if "app.api.writer_process" in " ".join(p.cmdline())
    ]
    return writer


def _stop_and_check(proc: subprocess.Popen[bytes], sig: signal.Signals, data: Path) -> None:
    assert {"postgres", "redis-server"} <= {
        line.split()[1].rstrip(":") for line in started_under(data)
    }
    writer = _writer_of(proc) if proc.args[3:4] == ["serve"] else None  # type: ignore[index]
    proc.send_signal(sig)  # the process alone
    try:
        code = proc.wait(STOP_WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
    # After SIGKILL nothing ran in the process: the kernel (Redis) and the watchdog (PostgreSQL)
    # stop the servers, within the same bound.
    assert gone_within(lifecycle.STOP_BOUND_S + 10, data) == [], f"left running after {sig.name}"
    if writer is not None:  # stopped by its parent, or by the kernel's signal when it died
        assert asyncio.run(_alive_after([writer], STOP_WAIT_S)) == [], f"writer after {sig.name}"


def _pg_log(data: Path) -> str:
    return (data / "pg" / "log").read_text()


def test_each_signal_stops_the_servers_serve_started(embedded_dir: Path) -> None:
    data, port = embedded_dir / "data", free_port()
    for n, sig in enumerate((signal.SIGTERM, signal.SIGINT, signal.SIGKILL), start=1):
        log = embedded_dir / f"serve-{sig.name}.log"
        proc = serve(data, port, log, "--demo")  # from the second on: the next start
        wait_ready(port, proc, log)
        _stop_and_check(proc, sig, data)
        assert _pg_log(data).count("received fast shutdown request") == n
    assert "automatic recovery" not in _pg_log(data)
    assert "claimgate watchdog" in log.read_text()  # it says what it did, in the service's log

    # A crash, and the restart right after it (systemd's Restart=): the new start waits for the
    # watchdog's stop, or adopts what still runs, and stops it in turn.
    for step in ("crash", "restart"):
        proc = serve(data, port, log := embedded_dir / f"serve-{step}.log", "--demo")
        wait_ready(port, proc, log)
        if step == "crash":
            proc.kill()
            proc.wait(10)
        else:
            _stop_and_check(proc, signal.SIGTERM, data)
    pg_log = _pg_log(data)
    assert "automatic recovery" not in pg_log
    assert pg_log.rindex("database system is shut down") > pg_log.rindex("ready to accept")


def test_sync_worker_stops_the_servers_it_started(embedded_dir: Path) -> None:
    data = embedded_dir / "data"
    for n, sig in enumerate((signal.SIGTERM, signal.SIGINT), start=1):
        log = embedded_dir / f"sync-{sig.name}.log"
        proc = start_cli(["sync"], cli_env(data), log)
        wait_for_line("sync worker running", proc, log)
        _stop_and_check(proc, sig, data)
        assert "sync worker stopped" in log.read_text()
        assert _pg_log(data).count("received fast shutdown request") == n


def _partial_check(port: int, key: str, body: bytes, sent: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"POST /v1/checks HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body[:sent]
    )
    return s


def _read_response(s: socket.socket) -> bytes:
    s.settimeout(30)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


async def _alive_after(procs: list[psutil.Process], seconds: float) -> list[str]:
    """Which of ``procs`` still run after up to ``seconds`` of waiting for them to end."""
    deadline = time.monotonic() + seconds
    while True:
        alive = []
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        if not alive or time.monotonic() > deadline:
            return alive
        await asyncio.sleep(0.1)


@pytest.mark.asyncio(loop_scope="session")
async def test_sigterm_drains_checks_and_writes_buffered_attempts(
    h: Harness, servers: Servers, tmp_path: Path
) -> None:
    await f.world(h)
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01")
    await h.synced()
    port, log = free_port(), tmp_path / "serve.log"
    external = {
        "database_url": servers.database_url,
        "redis_url": servers.redis_url,
        "pii_secret": "test-secret",
        "shutdown_timeout_s": "2",
    }
    proc = serve(tmp_path / "unused", port, log, "--workers", "2", "--no-sync", **external)
    try:
        await asyncio.to_thread(wait_ready, port, proc, log)
        workers = psutil.Process(proc.pid).children()
        line = {
            "institution_code": f.INST,
            "department_code": f.DEPT,
            "practitioner_code": f.DOC,
            "service_date": "2026-11-22",
        }
        auth = {"Authorization": f"Bearer {h.keys['his']}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            answers = [
                (await c.post("/v1/checks", json=line, headers=auth)).json() for _ in range(20)
            ]
        assert {a["decision"] for a in answers} == {"deny"}
        body = httpx.Request("POST", "/", json=line).content
        with (
            _partial_check(port, h.keys["his"], body, len(body) // 2) as in_flight,
            _partial_check(port, h.keys["his"], body, 10) as stalled,
        ):
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(wait_for_line, "Shutting down", proc, log, 2)  # both workers
            in_flight.sendall(body[len(body) // 2 :])
            answer = await asyncio.to_thread(_read_response, in_flight)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert b'"decision":"deny"' in answer
            # The stalled client holds its worker no longer than CLAIMGATE_SHUTDOWN_TIMEOUT_S.
            assert await asyncio.to_thread(proc.wait, STOP_WAIT_S) == 0
            # Its request never arrived whole: uvicorn cancels it and answers 500, then closes.
            assert _read_response(stalled).startswith(b"HTTP/1.1 500")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert await _alive_after(workers, STOP_WAIT_S) == []
    async with h.runtime.engine.connect() as conn:
        recorded = (
            await conn.execute(select(func.count()).select_from(sanctioned_attempts))
        ).scalar()
    assert recorded == 20 + 1  # every answered sanctioned check, the drained one too

    # A SIGKILLed supervisor: its workers drain and go, rather than serve on as orphans.
    proc = serve(tmp_path / "unused", port, log, "--workers", "2", "--no-sync", **external)
    try:
        await asyncio.to_thread(wait_ready, port, proc, log)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) >= 2
        writer = _writer_of(proc)  # one for both workers, gone with them
        proc.kill()
        await asyncio.to_thread(proc.wait, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert writer in workers
    assert await _alive_after(workers, STOP_WAIT_S) == [], "orphaned workers serve on"
