"""``python -m loadtests.cluster``: claimgate on a Redis Cluster against claimgate on one Redis
server, the same data and the same load, interleaved round by round; prints the throughput
ratio (cluster / single) that docs/performance.md reports.

The cluster is the tests' own (tests/topologies.py: three masters, three replicas of the
system redis-server, on free loopback ports), started here and stopped at the end. The data
is seeded once into PostgreSQL with the single server as its mirror (loadtests.seed), then
mirrored into the cluster by ``claimgate cache rebuild``. Both API servers run ``--no-sync``:
nothing is written during the runs, and two sync workers on one outbox would each drain
rows the other's Redis then never gets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from loadtests import loadgen, servers
from loadtests.__main__ import (
    RESULTS,
    ensure_built,
    measure,
    median_of,
    private_redis,
    redis_pid,
    sanity,
    write_bodies,
)
from loadtests.dataset import Dataset
from loadtests.seed import Target, prepare, seed
from tests.topologies import redis_cluster

SCENARIOS = ("full", "batch100")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.cluster", description=__doc__.split("\n")[0]
    )
    p.add_argument("--scale", type=int, default=100_000, help="practitioners")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per run")
    p.add_argument("--warmup", type=float, default=6.0, help="seconds of discarded warm-up")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers per API server")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--redis", default="private", help="the single server: redis://host:port")
    p.add_argument("--redis-db", type=int, default=None)
    p.add_argument("--database", default=None, help="database of --scale (claimgate_bench_N)")
    p.add_argument("--python-load", action="store_true", help="use the Python load generator")
    p.add_argument("--no-install-wrk", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny and fast: a smoke run")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default under results/)")
    a = p.parse_args(argv)
    if a.quick:
        a.duration, a.warmup, a.rounds = min(a.duration, 1.0), 0.0, 1
        if a.scale == 100_000:
            a.scale = 200
    return a


def start_full(name: str, env: dict[str, str], workers: int, logdir: Path) -> servers.Server:
    port = servers.free_port()
    argv = [
        servers.PY, "-m", "app.cli", "serve", "--no-sync", "--host", servers.HOST,
        "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    return servers.start(name, argv, env, port, logdir)


def rebuild_into(env: dict[str, str]) -> float:
    t0 = time.monotonic()
    subprocess.run(
        [servers.PY, "-m", "app.cli", "cache", "rebuild"],
        cwd=servers.ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    return time.monotonic() - t0


def _stop(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: the servers and the cluster are stopped


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if a.redis == "private":
        a.redis = private_redis()
    wrk = None if a.python_load else loadgen.ensure_wrk(install=not a.no_install_wrk)
    logdir = RESULTS / "logs"
    t = Target(a.scale, a.pg, a.redis, a.database, a.redis_db)
    keys = prepare(t, logdir)
    seed(t, keys, logdir)
    ensure_built(t, logdir)
    started = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "scale": a.scale,
        "duration_s": a.duration,
        "rounds": a.rounds,
        "workers": a.workers,
        "load_generator": wrk or "loadtests.pyload (httpx)",
        "cores": os.cpu_count(),
    }
    with redis_cluster() as cluster, tempfile.TemporaryDirectory(prefix="cg-cluster-") as tmp:
        on_cluster = {**t.env(), "CLAIMGATE_REDIS_URL": cluster.url}
        out["cluster_rebuild_s"] = round(rebuild_into(on_cluster), 2)
        print(
            f"mirrored {a.scale:,} practitioners into the cluster in {out['cluster_rebuild_s']} s"
        )
        bodies = write_bodies(Dataset(a.scale), Path(tmp), a.quick)
        srvs = {
            "single": start_full("single", t.env(), a.workers, logdir),
            "cluster": start_full("cluster", on_cluster, a.workers, logdir),
        }
        try:
            for s in srvs.values():
                servers.wait_ready(s, "/readyz")
            pids = {"single": redis_pid(t), "cluster": None}
            plan = [(where, sc) for sc in SCENARIOS for where in srvs]
            for where, sc in plan:
                sanity(srvs[where], bodies, keys["gateway"], sc)
            for where, sc in plan if a.warmup > 0 else []:
                measure(wrk, srvs[where], sc, bodies, keys["gateway"], a.warmup, pids[where])
            runs: dict[str, list[dict[str, Any]]] = {f"{w}/{sc}": [] for w, sc in plan}
            for rnd in range(a.rounds):
                for where, sc in plan[rnd % len(plan) :] + plan[: rnd % len(plan)]:
                    m = measure(
                        wrk, srvs[where], sc, bodies, keys["gateway"], a.duration, pids[where]
                    )
                    runs[f"{where}/{sc}"].append(m)
                    print(
                        f"round {rnd + 1}/{a.rounds} {where:>7} {sc:>8} "
                        f"{m['checks_s']:9.0f} checks/s p99 {m['p99_ms']:7.2f} ms",
                        flush=True,
                    )
        finally:
            for s in srvs.values():
                s.stop()
    out["scenarios"] = {k: median_of(v) for k, v in runs.items()}
    out["runs"] = runs
    out["ratios"] = {
        sc: statistics.median(
            c["checks_s"] / s["checks_s"]
            for c, s in zip(runs[f"cluster/{sc}"], runs[f"single/{sc}"], strict=True)
            if s["checks_s"]
        )
        for sc in SCENARIOS
    }
    print(f"\n{a.scale:,} practitioners, {a.workers} worker(s), {a.rounds} rounds (median):")
    for k, v in out["scenarios"].items():
        print(
            f"  {k:<17} {v['checks_s']:9.0f} checks/s  p50 {v['p50_ms']:6.2f} ms  "
            f"p99 {v['p99_ms']:6.2f} ms  server CPU {v['server_cpu_pct']:4.0f} %  errors {v['errors']:.0f}"
        )
    for sc, r in out["ratios"].items():
        print(f"  cluster / single, {sc}: {r:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = a.out or RESULTS / f"{started:%Y%m%dT%H%M%SZ}-cluster-scale{a.scale}.json"
    path.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
