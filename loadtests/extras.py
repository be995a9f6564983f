"""The measurements beside throughput: staleness, cache rebuild, Redis memory per view, and the
policy recompute of one practitioner."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from loadtests import loadgen, servers
from loadtests.dataset import SERVICE_DATE, Dataset
from loadtests.seed import Target


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def _suspended(answer: dict[str, Any]) -> bool:
    return any(r["code"] == "PRACTITIONER_SUSPENDED" for r in answer["reasons"])


# -- staleness --------------------------------------------------------------------------------
async def _staleness(
    urls: list[str],
    data: Dataset,
    keys: dict[str, str],
    writes: int,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """Per write: the admin write commits (its response arrives), then every API process is
    polled on its own connection until it answers with the new status."""
    rng = random.Random(time.time_ns())
    candidates = [s for s in data.staff if not s.suspended]
    rng.shuffle(candidates)
    gw = {"Authorization": f"Bearer {keys['gateway']}"}
    ag = {"Authorization": f"Bearer {keys['agency']}"}
    clients = [httpx.AsyncClient(base_url=u, headers=gw, timeout=5.0) for u in urls]
    admin = httpx.AsyncClient(base_url=urls[0], headers=ag, timeout=30.0)
    lags: list[float] = []
    write_ms: list[float] = []
    timeouts = 0
    try:
        for n in range(writes):
            s = candidates[n % len(candidates)]
            inst_i, dept = s.sites[0]
            inst = data.institutions[inst_i]
            body = {
                "institution_code": inst,
                "department_code": dept,
                "practitioner_code": s.code,
                "service_date": SERVICE_DATE,
            }
            # Warm every process's L1 with the current answer, so the write must evict it.
            before = [(await c.post("/v1/checks", json=body)).json() for c in clients]
            was = _suspended(before[0])
            action = "restore" if was else "suspend"
            t_send = time.perf_counter()
            r = await admin.post(
                f"/v1/admin/practitioners/{s.code}/actions",
                json={
                    "action": action,
                    "institution_code": inst,
                    # Toggles dated one day apart: a restore dated the same day as the
                    # suspension it should end would not end it (the engine is order-free).
                    "start": (dt.date(2026, 1, 1) + dt.timedelta(days=n)).isoformat(),
                    "reason": "压测：时效测量",
                },
            )
            t_commit = time.perf_counter()
            if r.status_code not in (200, 201):
                raise RuntimeError(f"admin write failed: {r.status_code} {r.text[:300]}")
            write_ms.append((t_commit - t_send) * 1000)

            async def until_new(
                c: httpx.AsyncClient,
                was: bool = was,
                body: dict[str, Any] = body,
                deadline: float = t_commit + timeout_s,
            ) -> float | None:
                while (now := time.perf_counter()) < deadline:
                    a = (await c.post("/v1/checks", json=body)).json()
                    if _suspended(a) != was:
                        return now
                return None

            seen = await asyncio.gather(*(until_new(c) for c in clients))
            if any(x is None for x in seen):
                timeouts += 1
                continue
            lags.append((max(x for x in seen if x is not None) - t_commit) * 1000)
    finally:
        for c in [*clients, admin]:
            await c.aclose()
    return {
        "writes": writes,
        "processes": len(urls),
        "measured": len(lags),
        "timeouts": timeouts,
        "p50_ms": pct(lags, 50),
        "p99_ms": pct(lags, 99),
        "max_ms": max(lags) if lags else None,
        "write_p50_ms": pct(write_ms, 50),
        "note": "from the admin write's 200 (committed) until each of two API processes, polled on its own connection, answers with the new status; measured under check load",
    }


def staleness(
    t: Target,
    data: Dataset,
    keys: dict[str, str],
    writes: int,
    wrk: str | None,
    bodies: Path,
    logdir: Path,
) -> dict[str, Any]:
    """Two claimgate processes (each a worker with its own L1, subscriber and sync worker) on two
    ports, under check load from the load generator, while admin writes are made."""
    procs = []
    for _ in range(2):
        port = servers.free_port()
        procs.append(
            servers.start(
                "stale",
                [servers.PY, "-m", "app.cli", "serve", "--host", servers.HOST, "--port", str(port)],
                t.env(),
                port,
                logdir,
            )
        )
    try:
        for p in procs:
            servers.wait_ready(p, "/readyz")
        # Check load on both processes for as long as the writes last (bounded: 30 min).
        done = threading.Event()
        load: dict[str, list[dict[str, Any]]] = {p.url: [] for p in procs}
        deadline = time.monotonic() + 1800

        def bg(i: int) -> None:
            while not done.is_set() and time.monotonic() < deadline:
                load[procs[i].url].append(
                    loadgen.run(wrk, procs[i].url + "/v1/checks", bodies, keys["gateway"], 2.0, 16)
                )

        threads = [threading.Thread(target=bg, args=(i,), daemon=True) for i in range(2)]
        for th in threads:
            th.start()
        time.sleep(1.0)
        try:
            out = asyncio.run(_staleness([p.url for p in procs], data, keys, writes))
        finally:
            done.set()
            for th in threads:
                th.join(timeout=150)
        out["background_load_req_s"] = {
            u: round(
                sum(r["requests"] for r in rs) / max(1e-9, sum(r["duration_us"] for r in rs) / 1e6)
            )
            for u, rs in load.items()
        }
        return out
    finally:
        for p in procs:
            p.stop()


# -- cache rebuild ----------------------------------------------------------------------------
def rebuild(
    t: Target, keys: dict[str, str], wrk: str | None, bodies: Path, logdir: Path
) -> dict[str, Any]:
    """FLUSHDB (Redis restarted empty), then ``claimgate cache rebuild`` while a server without
    its own sync worker answers checks under load: they must keep answering (from PostgreSQL
    until the built marker is back)."""
    port = servers.free_port()
    srv = servers.start(
        "rebuild",
        [
            servers.PY,
            "-m",
            "app.cli",
            "serve",
            "--host",
            servers.HOST,
            "--port",
            str(port),
            "--no-sync",
        ],
        t.env(),
        port,
        logdir,
    )
    try:
        servers.wait_ready(srv, "/readyz")
        redis.Redis.from_url(t.redis_url).flushdb()
        result: dict[str, Any] = {}
        started = threading.Event()

        def bg() -> None:
            started.set()
            result["load"] = loadgen.run(
                wrk, srv.url + "/v1/checks", bodies, keys["gateway"], load_s, 8
            )

        load_s = 5.0

        async def count() -> int:
            c = await asyncpg.connect(f"{t.pg_base}/{t.database}")
            try:
                n: int = await c.fetchval("SELECT count(*) FROM projections")
                return n
            finally:
                await c.close()

        # The load must outlast the rebuild: estimated from the projection count.
        projections = asyncio.run(count())
        load_s = max(2.0, projections / 15_000 + 3)
        th = threading.Thread(target=bg, daemon=True)
        th.start()
        started.wait()
        time.sleep(0.5)
        t0 = time.monotonic()
        proc = subprocess.run(
            [servers.PY, "-m", "app.cli", "cache", "rebuild"],
            cwd=servers.ROOT,
            env={**os.environ, **t.env()},
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        seconds = time.monotonic() - t0
        th.join(timeout=load_s + 130)
        load = result.get("load", {})
        dur = load.get("duration_us", 1) / 1e6
        return {
            "scale": t.scale,
            "projections": projections,
            "seconds": round(seconds, 2),
            "exit_code": proc.returncode,
            "output": proc.stdout.strip()[-300:],
            "checks_during": {
                "seconds": round(dur, 1),
                "requests": load.get("requests"),
                "req_s": round(load.get("requests", 0) / dur),
                "errors": load.get("errors"),
                "non2xx": load.get("non2xx"),
                "p99_ms": load.get("p99_us", 0) / 1000,
            },
        }
    finally:
        srv.stop()


# -- Redis memory -----------------------------------------------------------------------------
def memory(t: Target, samples: int = 2000) -> dict[str, Any]:
    r = redis.Redis.from_url(t.redis_url)
    views: list[bytes] = []
    known: list[bytes] = []
    insts: list[bytes] = []
    for k in r.scan_iter(match="cg:*", count=5000):
        if b":p:" in k:
            views.append(k)
        elif k.startswith(b"cg:pk:"):
            known.append(k)
        elif k.endswith(b":i"):
            insts.append(k)
    rng = random.Random(1)

    def avg(keys: list[bytes]) -> float | None:
        pick = rng.sample(keys, min(samples, len(keys)))
        sizes = [int(r.memory_usage(k, samples=0) or 0) for k in pick]
        return statistics.fmean(sizes) if sizes else None

    per_view = avg(views)
    per_known = avg(known)
    payload = (
        statistics.fmean(len(r.get(k) or b"") for k in rng.sample(views, min(500, len(views))))
        if views
        else None
    )
    views_per_p = len(views) / t.scale if t.scale else 0
    total_per_p = (per_view or 0) * views_per_p + (per_known or 0)
    info = r.info("memory")
    return {
        "scale": t.scale,
        "views": len(views),
        "known_markers": len(known),
        "institution_docs": len(insts),
        "bytes_per_view": round(per_view or 0, 1),
        "value_bytes_per_view": round(payload or 0, 1),
        "bytes_per_known_marker": round(per_known or 0, 1),
        "views_per_practitioner": round(views_per_p, 3),
        "bytes_per_practitioner": round(total_per_p, 1),
        "extrapolated_10m_practitioners_gib": round(total_per_p * 10_000_000 / 2**30, 2),
        "used_memory_db_server_mib": round(int(info["used_memory"]) / 2**20, 1),
        "method": "MEMORY USAGE (SAMPLES 0) over a random sample of keys",
    }


# -- policy -----------------------------------------------------------------------------------
def policy(n_events: int = 100, repeat: int = 200) -> dict[str, Any]:
    from app import policy as pol

    profile = pol.profile_for_region("370800")
    cal = pol.WorkingCalendar()
    code = "D100000000001"
    d0 = dt.date(2020, 1, 6)
    evs: list[pol.Event] = []
    insts = [f"H37080000{i:03d}" for i in range(5)]
    for i, inst in enumerate(insts):
        evs.append(pol.Registration(code, inst, "A01", d0 + dt.timedelta(days=i), None))
        evs.append(pol.Agreement(code, inst, d0, dt.date(2028, 1, 1)))
    k = 0
    while len(evs) < n_events:
        day = d0 + dt.timedelta(days=9 * k + 3)
        if k % 10 == 9:
            evs.append(
                pol.ManualAction(
                    code, insts[k % 5], "suspend", day, day + dt.timedelta(days=30), "压测"
                )
            )
        else:
            evs.append(pol.Violation(f"v{k}", code, insts[k % 5], day, 1 + k % 3, "第十二条"))
        k += 1
    pol.evaluate_practitioner(profile, code, evs, cal)  # warm caches (calendar, profile)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pol.evaluate_practitioner(profile, code, evs, cal)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "events": len(evs),
        "repeat": repeat,
        "median_ms": round(statistics.median(times), 3),
        "p99_ms": round(pct(times, 99) or 0, 3),
        "mix": "5 registrations, 5 agreements, 81 violations, 9 manual suspensions (济宁 profile)",
    }
