"""Several API replicas as separate processes — two `claimgate serve --no-sync` and one
`claimgate sync`, on this test's PostgreSQL and Redis, as an operator runs them behind a load
balancer (docs/operations.md, "Several replicas").

A write answered by one replica must reach the other's checks within the staleness bound (the
invalidation travels through Redis, not through the process that took the write), and a replica
that stops and starts again under load must cost the other nothing: it answers every check.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.embedded import free_port
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness
from tests.serving import cli_env, serve, start_cli, wait_ready

pytestmark = pytest.mark.asyncio(loop_scope="session")

LINE = {
    "institution_code": f.INST,
    "department_code": f.DEPT,
    "practitioner_code": f.DOC,
    "service_date": "2026-11-22",
}
FIRST_DAY = date(2026, 9, 1)  # the writes' days, all before the checked day


@dataclass
class Replica:
    port: int
    log: Path
    settings: dict[str, str]
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = serve(self.folder, self.port, self.log, "--no-sync", **self.settings)

    def ready(self) -> None:
        assert self.proc is not None
        wait_ready(self.port, self.proc, self.log)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def stopped_at_exit(*procs: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            if isinstance(p, Replica):
                p.stop()
            elif p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()


@dataclass
class Load:
    """Checks against one replica, back to back until stopped: (time asked, decision) for each
    answer, and the requests that got no answer at all (a stopped replica's refused connections)."""

    client: httpx.AsyncClient
    auth: dict[str, str]
    answers: list[tuple[float, str]] = field(default_factory=list)
    refused: int = 0
    errors: list[int] = field(default_factory=list)  # statuses other than 200

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            asked = loop.time()
            try:
                r = await self.client.post("/v1/checks", json=LINE, headers=self.auth)
            except httpx.TransportError:
                self.refused += 1
                await asyncio.sleep(0.02)
                continue
            if r.status_code == 200:
                self.answers.append((asked, r.json()["decision"]))
            else:
                self.errors.append(r.status_code)
            await asyncio.sleep(0.005)


async def write(c: httpx.AsyncClient, auth: dict[str, str], action: str, day: date) -> None:
    r = await c.post(
        f"/v1/admin/practitioners/{f.DOC}/actions",
        json={"action": action, "start": str(day), "end": None, "reason": "test"},
        headers=auth,
    )
    assert r.status_code == 201, r.text


async def visible_after(
    c: httpx.AsyncClient, auth: dict[str, str], want: str, acked: float, bound: float
) -> float:
    """Checks every few ms until ``want`` is answered; the delay from ``acked``. A check asked
    later than the bound after the 201 must already answer it."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        r = await c.post("/v1/checks", json=LINE, headers=auth)
        assert r.status_code == 200, r.text
        if r.json()["decision"] == want:
            return loop.time() - acked
        assert asked - acked < bound, f"{r.json()} asked {asked - acked:.3f} s after the 201"
        await asyncio.sleep(0.003)


async def test_replicas_as_processes_share_invalidations_and_come_and_go_under_load(
    servers: Servers, tmp_path: Path
) -> None:
    await reset(servers)
    settings = make_settings(servers, run_sync_worker=False)
    bound = settings.max_staleness_s
    external = {
        "database_url": servers.database_url,
        "redis_url": servers.redis_url,
        "pii_secret": "test-secret",
        "shutdown_timeout_s": "2",
    }
    harness = start_harness(settings)  # for the keys and the data; it drains nothing
    h: Harness = await anext(harness)
    try:
        await f.world(h)
        his, agency = h.auth("his"), h.auth("agency")
        a, b = (
            Replica(free_port(), tmp_path / f"serve-{n}.log", external, tmp_path / "unused")
            for n in "ab"
        )
        sync = start_cli(["sync"], cli_env(tmp_path / "unused", **external), tmp_path / "sync.log")
        with stopped_at_exit(a, b, sync):
            a.start()
            b.start()
            await asyncio.gather(asyncio.to_thread(a.ready), asyncio.to_thread(b.ready))
            await h.synced(within=30)  # the sync process drained the world's outbox
            async with (
                httpx.AsyncClient(base_url=a.url, timeout=5) as ca,
                httpx.AsyncClient(base_url=b.url, timeout=5) as cb,
            ):
                for c in (ca, cb):
                    answer = {}
                    for _ in range(100):
                        answer = (await c.post("/v1/checks", json=LINE, headers=his)).json()
                        if answer["source"] == "cache":
                            break
                        await asyncio.sleep(0.05)
                    assert (answer["decision"], answer["source"]) == ("allow", "cache")

                # Written through A, checked on B (and the other way round).
                loop = asyncio.get_running_loop()
                delays = []
                for i in range(8):
                    writer, reader = (ca, cb) if i % 4 < 2 else (cb, ca)
                    action = "suspend" if i % 2 == 0 else "restore"
                    await write(writer, agency, action, FIRST_DAY + timedelta(days=i))
                    acked = loop.time()
                    want = "deny" if action == "suspend" else "allow"
                    delays.append(await visible_after(reader, his, want, acked, bound))

                # A stops and starts again under load; B answers every check meanwhile, and a
                # suspension written through B while A is away reaches A when it is back.
                load_a, load_b = Load(ca, his), Load(cb, his)
                stop = asyncio.Event()
                tasks = [asyncio.create_task(x.run(stop)) for x in (load_a, load_b)]
                try:
                    await asyncio.sleep(0.5)
                    await asyncio.to_thread(a.stop)
                    gone = loop.time()
                    day = FIRST_DAY + timedelta(days=20)
                    await write(cb, agency, "suspend", day)
                    acked = loop.time()
                    a.start()
                    await asyncio.to_thread(a.ready)
                    back = loop.time()
                    await asyncio.sleep(0.5)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks)
                late = [d for t, d in load_b.answers + load_a.answers if t > acked + bound]
                assert late
                assert set(late) == {"deny"}, late[:5]
                assert load_b.refused == 0
                assert load_b.errors == []
                assert any(t > back for t, _ in load_a.answers)  # A answered again
                assert load_a.refused > 0  # and really was away
                restarted = (await ca.post("/v1/checks", json=LINE, headers=his)).json()
                assert restarted["decision"] == "deny", restarted

                await write(ca, agency, "restore", day + timedelta(days=1))
                delays.append(await visible_after(cb, his, "allow", loop.time(), bound))
        print(
            f"\nreplicas write→visible on the other replica: "
            f"median {sorted(delays)[len(delays) // 2] * 1000:.1f} ms, "
            f"max {max(delays) * 1000:.1f} ms over {len(delays)} writes; "
            f"B answered {len(load_b.answers)} checks while A stopped and started "
            f"(A away {back - gone:.1f} s, {load_a.refused} refused by A)"
        )
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(harness)
