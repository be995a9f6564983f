"""Slow clients against the real server: ``claimgate serve`` as a subprocess on the test
PostgreSQL and Redis, with one worker process and with two, a small check capacity
(``MAX_INFLIGHT`` = 8 per process) and short read deadlines. Many more connections than that capacity trickle their headers, trickle a
body under a valid key, trickle a body with no key or an unknown one, or say nothing at all;
meanwhile real checks keep answering 200, and every slow connection is cut off after its
deadline — not before it — with the answer its state calls for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio

from app.embedded import free_port
from tests import factories as f
from tests.conftest import Harness, Servers

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parent.parent
HEADER_S, BODY_S = 1.0, 2.5
MAX_INFLIGHT = 8
PER_KIND = 16  # of each slow kind: well past a process's check capacity
SLACK_S = 6.0  # a loaded 2-core machine; the sweep itself passes every 0.25 s here
GIVE_UP_S = 20.0
LINE = {
    "institution_code": f.INST,
    "department_code": f.DEPT,
    "practitioner_code": f.DOC,
    "service_date": "2026-11-22",
}


@dataclass
class Slow:
    kind: str
    opened: float
    answer: bytes = b""
    answered: float | None = None
    closed: float | None = None

    @property
    def status(self) -> int | None:
        return int(self.answer[9:12]) if self.answer.startswith(b"HTTP/1.1 ") else None

    @property
    def problem(self) -> dict[str, object]:
        out: dict[str, object] = orjson.loads(self.answer.split(b"\r\n\r\n", 1)[1])
        return out


async def _slow(
    kind: str, port: int, first: bytes, drip: bytes, *, past_answer: bool = False
) -> Slow:
    """Open a connection, send ``first``, then one byte of ``drip`` every 0.25 s until the
    server answers (or on, ``past_answer``); read until it closes (or GIVE_UP_S)."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    s = Slow(kind, loop.time())
    if first:
        writer.write(first)

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            while drip:
                await asyncio.sleep(0.25)
                writer.write(drip[:1])
                await writer.drain()

    dripping = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(GIVE_UP_S):
            while chunk := await reader.read(65536):
                if s.answered is None:
                    s.answered = loop.time()
                    if not past_answer:
                        dripping.cancel()  # so no byte lands on a closed socket and resets it
                s.answer += chunk
        s.closed = loop.time()
    except ConnectionError:
        s.closed = loop.time()
    except TimeoutError:
        pass  # still open: the assertion names it
    finally:
        dripping.cancel()
        writer.close()
    return s


def _post(key: str | None, length: int = 400) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key is not None else ""
    return (
        f"POST /v1/checks HTTP/1.1\r\nHost: gate\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {length}\r\n\r\n"
    ).encode()


def _serve(servers: Servers, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMGATE_")}
    env.update(
        CLAIMGATE_DATABASE_URL=servers.database_url,
        CLAIMGATE_REDIS_URL=servers.redis_url,
        CLAIMGATE_PII_SECRET="test-secret",
        CLAIMGATE_MAX_INFLIGHT=str(MAX_INFLIGHT),
        CLAIMGATE_HEADER_TIMEOUT_S=str(HEADER_S),
        CLAIMGATE_BODY_TIMEOUT_S=str(BODY_S),
    )
    argv = ["-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, and only it
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest_asyncio.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
async def served(
    h: Harness, servers: Servers, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[int]:
    """The port of a ready ``claimgate serve`` with ``request.param`` workers. One process holds
    every slow connection, so the checks meet them; two show the protocol loads in every worker
    (the kernel decides which worker accepts which connection)."""
    await f.world(h)
    await h.synced()
    port, log = free_port(), tmp_path / "serve.log"
    proc = _serve(servers, port, request.param, log)
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(600):
                assert proc.poll() is None, log.read_text()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("not ready within 60 s:\n" + log.read_text()[-3000:])
        yield port
    finally:
        _stop(proc)


async def test_slow_clients_are_cut_off_while_checks_keep_answering(
    h: Harness, served: int
) -> None:
    port, key = served, h.keys["his"]
    slow = [
        *(
            _slow("headers", port, b"POST /v1/checks HTTP/1.1\r\nHost: gate\r\n", b"x" * 999)
            for _ in range(PER_KIND)
        ),
        *(_slow("body", port, _post(key), b" " * 400) for _ in range(PER_KIND)),
        *(
            _slow("no key", port, _post(None if i % 2 else "cg_his_unknown"), b" " * 400)
            for i in range(PER_KIND)
        ),
        *(_slow("idle", port, b"", b"") for _ in range(PER_KIND)),
        # After an answer, bytes that begin no request: uvicorn's keep-alive timer is cancelled
        # by any byte, so these alone held a connection open.
        *(
            _slow(
                "crlf",
                port,
                b"GET /healthz HTTP/1.1\r\nHost: gate\r\n\r\n",
                b"\r\n" * 99,
                past_answer=True,
            )
            for _ in range(PER_KIND)
        ),
    ]
    slow_tasks = [asyncio.create_task(s) for s in slow]
    await asyncio.sleep(0.3)  # every slow connection open and holding on

    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        loop = asyncio.get_running_loop()
        until = loop.time() + BODY_S + 1.0  # across both deadlines
        while loop.time() < until:
            r = await client.post("/v1/checks", json=LINE, headers=h.auth("his"))
            statuses.append(r.status_code)
            await asyncio.sleep(0.05)
    clients = await asyncio.gather(*slow_tasks)

    assert statuses, "no check was made"
    assert set(statuses) == {200}, statuses
    for c in clients:
        assert c.closed is not None, f"a '{c.kind}' connection still open after {GIVE_UP_S} s"
        lived = c.closed - c.opened
        if c.kind in ("headers", "idle", "crlf"):
            assert HEADER_S * 0.9 <= lived <= HEADER_S + SLACK_S, (c.kind, lived)
        else:
            assert BODY_S * 0.9 <= lived <= BODY_S + SLACK_S, (c.kind, lived)
        if c.kind == "idle":
            assert c.answer == b""  # it never asked anything: closed without a word
        elif c.kind == "crlf":
            assert c.status == 200  # its one request, answered; then closed without a word
            assert c.answer.count(b"HTTP/1.1 ") == 1
        elif c.kind == "no key":
            # Refused at once, before its body: it never took a check's place.
            assert c.status == 401, c.answer[:200]
            assert c.answered is not None
            assert c.answered - c.opened < BODY_S * 0.9
            assert c.problem["code"] == "UNAUTHORIZED"
        else:
            assert c.status == 408, (c.kind, c.answer[:200])
            assert b"content-type: application/problem+json" in c.answer.lower()
            assert c.problem["code"] == "REQUEST_TIMEOUT"
            assert c.kind in str(c.problem["detail"])  # "the request headers|body did not …"
