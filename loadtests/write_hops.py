"""Where one agency write's time goes over HTTP: through the check port (the forward to the
writer process), straight to the writer's Unix socket, and on a writer-thread server.

    PYTHONPATH=. python -m loadtests.write_hops --scale 100000 --redis redis://127.0.0.1:6379/N

On a seeded bench database (``python -m loadtests`` seeds it), one after the other on idle
servers, ``--n`` writes of each way about the staff of the institution nearest 500 staff (the
issue's single-write target), alternating the ways write by write so drift on a shared
machine touches them alike: practitioner actions and violations, each under an Idempotency-Key,
as ``loadtests.agency`` sends them. Both servers run ``--no-sync`` (no rebuild of the whole
mirror into the Redis given; the writes still put what they change there). In process, the same
write is timed by ``loadtests/one_write.py``; the differences are the HTTP layers and the hop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from loadtests import agency, servers
from loadtests.dataset import Dataset
from loadtests.seed import Target, prepare

RESULTS = Path(__file__).resolve().parent / "results"


def _serve(t: Target, mode: str, logdir: Path, sync: bool = False) -> servers.Server:
    port = servers.free_port()
    argv = [servers.PY, "-m", "app.cli", "serve", "--host", servers.HOST, "--port", str(port)]
    env = t.env() | {"CLAIMGATE_WRITER": mode}
    srv = servers.start(f"hops-{mode}", argv if sync else [*argv, "--no-sync"], env, port, logdir)
    servers.wait_ready(srv, "/readyz" if sync else "/healthz", 300)
    return srv


def _socket_of(srv: servers.Server) -> str:
    for p in psutil.Process(srv.proc.pid).children():
        cmd = p.cmdline()
        if "app.api.writer_process" in cmd:
            return str(cmd[cmd.index("app.api.writer_process") + 1])
    raise RuntimeError("no writer process")


def _stats(ms: list[float]) -> dict[str, float]:
    v = sorted(ms[2:])  # the first prepare their statements
    return {"p50_ms": statistics.median(v), "p99_ms": v[min(len(v) - 1, int(len(v) * 0.99))]}


async def _time(clients: dict[str, httpx.AsyncClient], w: agency.AgencyWrites, n: int) -> Any:
    times: dict[str, list[float]] = {way: [] for way in clients}
    n0 = w.rng.randrange(10**6)
    for k in range(n):
        for way, client in clients.items():
            # An odd stride: each way gets actions and violations in turn, whatever their number
            path, body = w._next(n0 + k * (len(clients) | 1) + list(clients).index(way))
            t0 = time.perf_counter()
            r = await client.post(path, json=body, headers={"Idempotency-Key": os.urandom(8).hex()})
            times[way].append((time.perf_counter() - t0) * 1000)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"{way}: {r.status_code} {r.text[:200]}")
    return {way: _stats(ms) for way, ms in times.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=int, default=100_000)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument(
        "--redis",
        required=True,
        help="redis://host:port/db — a database nothing else uses meanwhile (the servers write "
        "the documents they change there; with --sync, the whole mirror)",
    )
    p.add_argument("--n", type=int, default=40)
    p.add_argument(
        "--sync",
        action="store_true",
        help="also a process-mode server with its sync worker (it first builds the mirror in "
        "the Redis given): what the sync worker beside the writes costs each",
    )
    a = p.parse_args()
    base, db = a.redis.rsplit("/", 1)
    t = Target(a.scale, a.pg, base, redis_db=int(db))
    logdir = RESULTS / "logs"
    keys = prepare(t, logdir)
    data = Dataset(a.scale)
    mid = agency.institution_of_size(data)
    w = agency.AgencyWrites("", keys["agency"], data, institution=mid)
    auth = {"Authorization": f"Bearer {keys['agency']}"}
    process = _serve(t, "process", logdir)
    thread = _serve(t, "thread", logdir)
    synced = _serve(t, "process", logdir, sync=True) if a.sync else None
    try:
        sock = _socket_of(process)

        async def run() -> Any:
            async with (
                httpx.AsyncClient(base_url=process.url, headers=auth, timeout=60) as via_port,
                httpx.AsyncClient(
                    transport=httpx.AsyncHTTPTransport(uds=sock),
                    base_url="http://writer",
                    headers=auth,
                    timeout=60,
                ) as direct,
                httpx.AsyncClient(base_url=thread.url, headers=auth, timeout=60) as on_thread,
                httpx.AsyncClient(
                    base_url=(synced or thread).url, headers=auth, timeout=60
                ) as with_sync,
            ):
                ways = {
                    "process_via_check_port": via_port,
                    "writer_socket_direct": direct,
                    "thread_server": on_thread,
                }
                if synced is not None:
                    ways["process_via_check_port_sync_worker_on"] = with_sync
                return await _time(ways, w, a.n)

        out = asyncio.run(run())
    finally:
        process.stop()
        thread.stop()
        if synced is not None:
            synced.stop()
    print(f"institution {data.institutions[mid]}, {a.n} writes each way (actions and violations)")
    for way, s in out.items():
        print(f"{way}: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
