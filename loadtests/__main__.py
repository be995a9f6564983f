"""``python -m loadtests``: seed, start the servers, run the scenarios interleaved round by
round after a discarded warm-up, print one table and the ratios docs/performance.md sets
targets for, write JSON under ``loadtests/results/``.

Scenarios (each at 1 and 2 uvicorn workers, same uvicorn settings as ``claimgate serve``):

- ``bare``      a FastAPI endpoint validating the same ``CheckIn`` body, fixed answer
- ``naive``     one SQLAlchemy ORM query per request against PostgreSQL, then the same decision
- ``cache``     claimgate with ``CLAIMGATE_L1_SIZE=0`` (a Redis round trip per check)
- ``full``      claimgate as shipped
- ``nometrics`` / ``nodecisionlog``  claimgate with ``CLAIMGATE_METRICS=false`` /
  ``CLAIMGATE_DECISION_LOG=false``: what the metrics and the decision log cost ``full``
- ``batch100`` / ``batch1000``  ``POST /v1/checks/batch`` on ``full``
- ``batch20`` / ``national3101``  the same 20 lines as a batch and as a 3101 of one patient,
  one encounter and 20 orders (``POST /v1/national/3101``) on ``full`` (loadtests.national)

Then: ``full`` at each scale of ``--compare`` (1 worker, interleaved), staleness, cache rebuild,
Redis memory per view and the policy recompute of one practitioner.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import redis

from loadtests import agency, extras, loadgen, national, report, servers
from loadtests.dataset import Dataset
from loadtests.seed import BULK_FLOOR, Target, prepare, seed

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("raw", "bare", "naive", "cache", "full", "nometrics", "nodecisionlog")
SCENARIOS = (
    "raw",
    "bare",
    "naive",
    "cache",
    "full",
    "cold",
    "nometrics",
    "nodecisionlog",
    "batch100",
    "batch1000",
    "batch20",
    "national3101",
)
# Run at one worker only, after the others in each round: they write, and what they write
# (invalidations, new rows) must not fall in the middle of the read-only scenarios.
AGENCY = ("full16", "bulk", "writes")
LINES = {"batch100": 100, "batch1000": 1000, "batch20": 20, "national3101": 20}
ON_FULL = {*LINES, "cold", *AGENCY}
CONNECTIONS = {
    "single": 64,
    "cold": 64,
    "batch100": 8,
    "batch1000": 4,
    "batch20": 16,
    "national3101": 16,
    "full16": 16,
    "bulk": 16,
    "writes": 64,
}
PATHS = {"national3101": "/v1/national/3101"}
COLD_LINES = 400_000


def path_of(scenario: str) -> str:
    return PATHS.get(scenario) or ("/v1/checks/batch" if scenario in LINES else "/v1/checks")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.split("\n")[0])
    p.add_argument(
        "--scale", type=int, default=100_000, help="practitioners (10000|100000|1000000)"
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    p.add_argument("--warmup", type=float, default=None, help="seconds of discarded warm-up")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", default="1,2", help="uvicorn worker counts, comma separated")
    p.add_argument(
        "--compare",
        default=None,
        help="scales for the full@scale ratio (default: 10000, --scale and 1000000 if seeded)",
    )
    p.add_argument("--rebuild-scale", type=int, default=None, help="default: largest seeded")
    p.add_argument("--staleness-writes", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="tiny and fast: a smoke run")
    p.add_argument("--no-extras", action="store_true", help="skip staleness, rebuild, memory")
    p.add_argument("--no-agency", action="store_true", help="skip the scenarios with agency writes")
    p.add_argument(
        "--only",
        default=None,
        help="scenarios to run, comma separated (default: all); the agency ones need full",
    )
    p.add_argument("--python-load", action="store_true", help="use the Python load generator")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument(
        "--redis",
        default="private",
        help="redis://host:port, or 'private' (default): a redis-server of the harness's own, "
        "so no other client's invalidations (pub/sub is server-wide) empty the L1s mid-run",
    )
    p.add_argument("--database", default=None, help="database of --scale (claimgate_bench_N)")
    p.add_argument("--redis-db", type=int, default=None, help="Redis DB of --scale (4/5/6, else 3)")
    p.add_argument(
        "--no-install-wrk", action="store_true", help="fall back to Python if wrk is missing"
    )
    p.add_argument("--out", type=Path, default=None, help="JSON path (default under results/)")
    a = p.parse_args(argv)
    if a.quick:
        a.duration = min(a.duration, 1.0)
        a.rounds = 1
        if a.scale == 100_000:
            a.scale = 200
        a.staleness_writes = min(a.staleness_writes, 10)
        a.warmup = 0.0
    if a.warmup is None:
        a.warmup = max(10.0, a.duration)  # long enough for every L1 to see the body file
    return a


# -- bodies -------------------------------------------------------------------------------------
def write_bodies(data: Dataset, directory: Path, quick: bool) -> dict[str, Path]:
    n = 2000 if quick else 20_000
    lines = data.check_lines(n)
    out = {"single": directory / "single.jsonl", "cold": directory / "cold.jsonl"}
    out["single"].write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    cold = agency.cold_lines(data, 4000 if quick else COLD_LINES)
    out["cold"].write_bytes(b"\n".join(orjson.dumps(x) for x in cold) + b"\n")
    messages, batches = national.bodies(data, 50 if quick else 400)
    for name, items in (("national3101", messages), ("batch20", batches)):
        out[name] = directory / f"{name}.jsonl"
        out[name].write_bytes(b"\n".join(orjson.dumps(x) for x in items) + b"\n")
    for name, size in LINES.items():
        if name in out:
            continue
        count = max(4, min(400, n // size * 4))
        batch_lines = data.check_lines(size * count, seed=11 + size)
        path = directory / f"{name}.jsonl"
        path.write_bytes(
            b"\n".join(
                orjson.dumps({"checks": batch_lines[i * size : (i + 1) * size]})
                for i in range(count)
            )
            + b"\n"
        )
        out[name] = path
    return out


# -- servers ------------------------------------------------------------------------------------
def start_server(kind: str, workers: int, t: Target, logdir: Path) -> servers.Server:
    port = servers.free_port()
    env = t.env()
    if kind in ("raw", "bare", "naive"):
        argv = [
            servers.PY,
            "-m",
            "loadtests.serve",
            f"loadtests.{kind}:create_app",
            str(port),
            str(workers),
        ]
    else:
        argv = [
            servers.PY,
            "-m",
            "app.cli",
            "serve",
            "--host",
            servers.HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        if kind == "cache":
            env["CLAIMGATE_L1_SIZE"] = "0"
        # What the metrics and the decision log cost: the same service without each.
        if kind == "nometrics":
            env["CLAIMGATE_METRICS"] = "false"
        if kind == "nodecisionlog":
            env["CLAIMGATE_DECISION_LOG"] = "false"
    return servers.start(f"{kind}{workers}", argv, env, port, logdir)


def redis_pid(t: Target) -> int | None:
    try:
        return int(redis.Redis.from_url(t.redis_url).info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None


def measure(
    wrk: str | None,
    srv: servers.Server,
    scenario: str,
    bodies: dict[str, Path],
    auth: str,
    duration: float,
    store_pid: int | None,
) -> dict[str, Any]:
    batch = scenario in LINES
    path = path_of(scenario)
    body_key = scenario if batch or scenario == "cold" else "single"
    conns = CONNECTIONS.get(scenario, CONNECTIONS[body_key])
    c0 = servers.cpu_by_pid(srv.tree())
    s0 = servers.cpu_by_pid(servers.store_procs(store_pid))
    t0 = time.monotonic()
    r = loadgen.run(wrk, srv.url + path, bodies[body_key], auth, duration, conns)
    wall = time.monotonic() - t0
    if srv.proc.poll() is not None:  # whatever answered, it was not this server
        raise RuntimeError(f"{srv.name} exited ({srv.proc.returncode}):\n{servers.tail(srv.log)}")
    c1 = servers.cpu_by_pid(srv.tree())
    s1 = servers.cpu_by_pid(servers.store_procs(store_pid))
    secs = r["duration_us"] / 1e6
    rps = r["requests"] / secs if secs else 0.0
    return {
        "req_s": rps,
        "checks_s": rps * LINES.get(scenario, 1),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "p999_ms": r["p999_us"] / 1000,
        "server_cpu_pct": 100 * servers.cpu_delta(c0, c1) / wall,
        "store_cpu_pct": 100 * servers.cpu_delta(s0, s1) / wall,
        "errors": r["errors"] + r["non2xx"],
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in runs[0]:
        vals = [r[k] for r in runs if isinstance(r.get(k), int | float)]
        out[k] = statistics.median(vals) if vals else None
    return out | {"rounds": len(runs)}


def sanity(srv: servers.Server, bodies: dict[str, Path], auth: str, scenario: str) -> None:
    batch = scenario in LINES
    body = bodies[scenario if batch else "single"].read_bytes().split(b"\n", 1)[0]
    r = httpx.post(
        srv.url + path_of(scenario),
        content=body,
        headers={"Authorization": f"Bearer {auth}", "Content-Type": "application/json"},
        timeout=30,
    )
    if r.status_code != 200 or r.json().get("infcode", 0) != 0:
        raise RuntimeError(f"{srv.name} {scenario}: {r.status_code} {r.text[:300]}")


AGENCY_FIELDS = (
    "write_p50_ms",
    "write_p99_ms",
    "writes_sent",
    "write_failures",
    "import_s",
    "import_alone_s",
)


def measure_agency(
    a: argparse.Namespace,
    wrk: str | None,
    srv: servers.Server,
    scenario: str,
    bodies: dict[str, Path],
    keys: dict[str, str],
    data: Dataset,
    pid: int | None,
) -> dict[str, Any]:
    """``measure``, with the agency at work for ``writes`` and ``bulk`` (loadtests.agency)."""
    auth = keys["gateway"]
    if scenario == "writes":
        with agency.AgencyWrites(srv.url, keys["agency"], data) as w:
            m = measure(wrk, srv, scenario, bodies, auth, a.duration, pid)
        return m | w.summary()
    if scenario == "bulk":
        n = 100 if a.quick else agency.BULK_PRACTITIONERS
        alone = agency.bulk_import(srv.url, keys["agency"], agency.bulk_body(data, n))
        # The load lasts about as long as the import, which starts half a second into it.
        duration = max(2.0, round(alone["seconds"]))
        with agency.BulkDuring(srv.url, keys["agency"], agency.bulk_body(data, n)) as b:
            m = measure(wrk, srv, scenario, bodies, auth, duration, pid)
        if alone["status"] != 200 or b.result.get("status") != 200:
            raise RuntimeError(f"bulk import failed: {alone} {b.result}")
        return m | {"import_s": b.result["seconds"], "import_alone_s": alone["seconds"]}
    return measure(wrk, srv, scenario, bodies, auth, a.duration, pid)


def run_matrix(
    a: argparse.Namespace,
    wrk: str | None,
    t: Target,
    keys: dict[str, str],
    bodies: dict[str, Path],
    logdir: Path,
    data: Dataset,
) -> tuple[dict[str, Any], dict[str, Any]]:
    workers = [int(w) for w in a.workers.split(",")]
    only = set(a.only.split(",")) if a.only else set(SCENARIOS) | set(AGENCY)
    srvs: dict[tuple[str, int], servers.Server] = {}
    alone: dict[str, Any] = {}
    try:
        plan = [(sc, w) for w in workers for sc in SCENARIOS if sc in only]
        agency_plan = [(sc, 1) for sc in AGENCY if sc in only and 1 in workers and not a.no_agency]
        for sc, w in plan + agency_plan:
            kind = "full" if sc in ON_FULL else sc
            if (kind, w) not in srvs:
                srvs[kind, w] = start_server(kind, w, t, logdir)
        for (kind, _), s in srvs.items():
            servers.wait_ready(s, "/readyz" if kind in ("cache", "full") else "/healthz")
        pid = redis_pid(t)

        def server_of(sc: str, w: int) -> servers.Server:
            return srvs["full" if sc in ON_FULL else sc, w]

        for sc, w in plan:
            sanity(server_of(sc, w), bodies, keys["gateway"], sc)
        if a.warmup > 0:
            print(f"warm-up {a.warmup:.0f}s per scenario (discarded)", flush=True)
            for sc, w in plan + [p for p in agency_plan if p[0] == "full16"]:
                measure(wrk, server_of(sc, w), sc, bodies, keys["gateway"], a.warmup, pid)
        if agency_plan:
            # One write's own cost, on an idle server (issue 14: p50 ≤ 10 ms at 100,000).
            url = srvs["full", 1].url
            alone["write_alone"] = agency.writes_alone(url, keys["agency"], data)
            # …and at an institution of about 500 staff, as the issue states the target
            mid = agency.institution_of_size(data)
            alone["write_alone_500"] = agency.writes_alone(
                url, keys["agency"], data, institution=mid
            ) | {"institution": data.institutions[mid]}
            for name, w in alone.items():
                print(f"{name}: p50 {fmt(w['p50_ms'])} ms, p99 {fmt(w['p99_ms'])} ms", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {f"{sc}/{w}": [] for sc, w in plan + agency_plan}
        for rnd in range(a.rounds):
            # Rotate the order each round so no scenario always follows the same neighbour.
            order = plan[rnd % len(plan) :] + plan[: rnd % len(plan)]
            for sc, w in order + agency_plan:
                srv = server_of(sc, w)
                m = measure_agency(a, wrk, srv, sc, bodies, keys, data, pid)
                runs[f"{sc}/{w}"].append(m)
                print(
                    f"round {rnd + 1}/{a.rounds} {sc:>9}/{w}w {m['req_s']:9.0f} req/s "
                    f"p99 {m['p99_ms']:7.2f} ms"
                    + "".join(f" {k} {fmt(v)}" for k, v in m.items() if k in AGENCY_FIELDS),
                    flush=True,
                )
        out = {k: median_of(v) | {"runs": v} for k, v in runs.items()}
        for w in workers:
            if f"full/{w}" in out:
                out[f"full/{w}"]["memory"] = memory_hits(srvs["full", w], keys["ops"])
        return out, alone
    finally:
        for s in srvs.values():
            s.stop()


def memory_hits(srv: servers.Server, ops_key: str) -> dict[str, Any]:
    """How the process answered, from /v1/ops/status (one worker's view when there are two):
    the share of lines answered from a remembered verdict, and the L1's hit rate."""
    r = httpx.get(
        srv.url + "/v1/ops/status", headers={"Authorization": f"Bearer {ops_key}"}, timeout=10
    )
    body = r.json() if r.status_code in (200, 503) else {}
    l1, lines = body.get("l1", {}), body.get("lines_checked", 0)
    looked = l1.get("hits", 0) + l1.get("misses", 0)
    return {
        "lines_checked": lines,
        "from_remembered_verdicts": l1.get("verdict_hits", 0) / lines if lines else None,
        "l1_hit_rate": l1.get("hits", 0) / looked if looked else None,
        "verdicts_remembered": l1.get("verdicts_remembered"),
    }


def run_compare(
    a: argparse.Namespace,
    wrk: str | None,
    targets: list[Target],
    logdir: Path,
    tmp: Path,
) -> dict[str, Any]:
    """``full`` at one worker against each scale, interleaved round by round."""
    setups = []
    scales = [t.scale for t in targets]
    try:
        for t in targets:
            sc = t.scale
            keys = prepare(t, logdir)
            d = tmp / f"scale{sc}"
            d.mkdir(exist_ok=True)
            bodies = write_bodies(Dataset(sc), d, a.quick)
            setups.append((sc, t, keys, bodies, start_server("full", 1, t, logdir)))
        for _, _, _, _, s in setups:
            servers.wait_ready(s, "/readyz", timeout_s=900)
        for _, t, keys, bodies, s in setups:
            if a.warmup > 0:
                measure(wrk, s, "full", bodies, keys["gateway"], a.warmup, redis_pid(t))
        runs: dict[int, list[dict[str, Any]]] = {sc: [] for sc in scales}
        for rnd in range(a.rounds):
            for sc, t, keys, bodies, s in setups[rnd % len(setups) :] + setups[: rnd % len(setups)]:
                m = measure(wrk, s, "full", bodies, keys["gateway"], a.duration, redis_pid(t))
                runs[sc].append(m)
                print(f"round {rnd + 1}/{a.rounds} full@{sc}: {m['req_s']:.0f} req/s", flush=True)
        return {str(sc): median_of(v) | {"runs": v} for sc, v in runs.items()}
    finally:
        for *_, s in setups:
            s.stop()


# -- environment --------------------------------------------------------------------------------
def machine(t: Target, wrk: str | None) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for pkg in (
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "pydantic",
        "sqlalchemy",
        "asyncpg",
        "redis",
        "orjson",
        "psutil",
        "httpx",
    ):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None

    async def pg_version() -> str:
        c = await asyncpg.connect(f"{t.pg_base}/postgres")
        try:
            v: str = await c.fetchval("SHOW server_version")
            return v
        finally:
            await c.close()

    import asyncio

    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=servers.ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "app"],
            cwd=servers.ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    )
    wrk_v = ""
    if wrk:
        wrk_v = subprocess.run(
            [wrk, "-v"], capture_output=True, text=True, check=False
        ).stdout.split("\n")[0]
    return {
        "hostname": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(servers.psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": asyncio.run(pg_version()),
        "redis": redis.Redis.from_url(t.redis_url).info("server").get("redis_version"),
        "load_generator": wrk_v or "loadtests.pyload (httpx)",
        "git": git + ("+dirty app/" if dirty else ""),
        "packages": versions,
    }


# -- report -------------------------------------------------------------------------------------
def ratios(
    runs: dict[str, list[dict[str, Any]]], scale_runs: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Each ratio is taken within a round (its two runs were seconds apart) and the median of
    the rounds' ratios is reported: this machine's background load drifts between rounds."""

    def ratio(
        src: dict[str, list[dict[str, Any]]], a: str, b: str, f: str = "req_s"
    ) -> float | None:
        xs, ys = src.get(a), src.get(b)
        if not xs or not ys:
            return None
        vals = [x[f] / y[f] for x, y in zip(xs, ys, strict=False) if y[f]]
        return statistics.median(vals) if vals else None

    def extra_cpu_ms(a: str, b: str) -> float | None:
        """Server CPU per request of ``a`` less that of ``b``, in ms (median over rounds)."""
        xs, ys = runs.get(a), runs.get(b)
        if not xs or not ys:
            return None
        vals = [
            10 * (x["server_cpu_pct"] / x["req_s"] - y["server_cpu_pct"] / y["req_s"])
            for x, y in zip(xs, ys, strict=False)
            if x["req_s"] and y["req_s"]
        ]
        return statistics.median(vals) if vals else None

    b1000 = runs.get("batch1000/1")
    rows: list[tuple[str, float | None, str, float | None]] = [
        # issue 14: the stack's real ceiling, the cold lines, the agency at work
        ("full req/s ÷ raw req/s", ratio(runs, "full/1", "raw/1"), ">=", 0.5),
        ("cold req/s ÷ bare req/s", ratio(runs, "cold/1", "bare/1"), ">=", 1.0),
        ("cold p99 ÷ bare p99", ratio(runs, "cold/1", "bare/1", "p99_ms"), "<=", 1.2),
        (
            "checks p99 with 20 writes/s ÷ without",
            ratio(runs, "writes/1", "full/1", "p99_ms"),
            "<=",
            1.5,
        ),
        (
            "writes acknowledged ÷ sent (all rounds)",
            _acknowledged(runs.get("writes/1")),
            ">=",
            1.0,
        ),
        # issue 17: a bulk import of 2,000 practitioners while checks run (16 connections)
        (
            "checks p99 during a bulk import ÷ without",
            ratio(runs, "bulk/1", "full16/1", "p99_ms"),
            "<=",
            1.5,
        ),
        (
            "bulk import under checks ÷ alone (time)",
            _import_ratio(runs.get("bulk/1")),
            "",
            None,
        ),
        ("full req/s ÷ bare req/s", ratio(runs, "full/1", "bare/1"), ">=", 0.90),
        ("full p99 ÷ bare p99", ratio(runs, "full/1", "bare/1", "p99_ms"), "<=", 1.5),
        ("cache req/s ÷ bare req/s", ratio(runs, "cache/1", "bare/1"), ">=", 0.55),
        ("full req/s ÷ naive req/s", ratio(runs, "full/1", "naive/1"), ">=", 5.0),
        (
            "batch1000 checks/s per worker (1 worker)",
            statistics.median(r["checks_s"] for r in b1000) if b1000 else None,
            ">=",
            100_000,
        ),
        # "A 3101 of 20 orders costs no more than a batch of 20 lines plus a small constant":
        # the constant, in server CPU per request (reading and answering a 17 KB message).
        (
            "national3101 − batch20 server CPU per request, ms",
            extra_cpu_ms("national3101/1", "batch20/1"),
            "<=",
            0.25,
        ),
        (
            "national3101 req/s ÷ batch20 req/s (same 20 lines)",
            ratio(runs, "national3101/1", "batch20/1"),
            "",
            None,
        ),
        ("full req/s ÷ without metrics", ratio(runs, "full/1", "nometrics/1"), ">=", 0.97),
        (
            "full req/s ÷ without the decision log",
            ratio(runs, "full/1", "nodecisionlog/1"),
            ">=",
            0.90,
        ),
        ("full 2 workers ÷ 1 worker", ratio(runs, "full/2", "full/1"), ">=", 1.7),
        ("bare 2 workers ÷ 1 worker (ceiling)", ratio(runs, "bare/2", "bare/1"), "", None),
        ("full req/s ÷ bare req/s, 2 workers", ratio(runs, "full/2", "bare/2"), "", None),
    ]
    for key in runs:
        sc, w = key.split("/")
        if w == "1" and sc not in ("raw", "bulk", "full16"):
            rows.append((f"{sc} req/s ÷ raw req/s", ratio(runs, key, "raw/1"), "", None))
    if len(scale_runs) > 1:
        scales = sorted(int(s) for s in scale_runs)
        lo, hi = str(scales[0]), str(scales[-1])
        rows.append(
            (f"full req/s at {int(hi):,} ÷ at {int(lo):,}", ratio(scale_runs, hi, lo), ">=", 0.9)
        )
    out = []
    for name, value, op, target in rows:
        met = None
        if value is not None and target is not None:
            met = value >= target if op == ">=" else value <= target
        out.append(
            {
                "figure": name,
                "value": value,
                "target": f"{op} {target:g}" if target else "",
                "met": met,
            }
        )
    return out


def _acknowledged(rs: list[dict[str, Any]] | None) -> float | None:
    if not rs:
        return None
    sent = sum(r["writes_sent"] for r in rs)
    return sum(r["writes_sent"] - r["write_failures"] for r in rs) / sent if sent else None


def _import_ratio(rs: list[dict[str, Any]] | None) -> float | None:
    vals = [r["import_s"] / r["import_alone_s"] for r in rs or [] if r.get("import_alone_s")]
    return statistics.median(vals) if vals else None


def table(res: dict[str, Any]) -> str:
    head = f"| {'scenario':<13} | {'req/s':>8} | {'checks/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'p99.9 ms':>8} | {'server CPU':>10} | {'store CPU':>9} |"
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for k, v in res.items():
        sc, w = k.split("/")
        lines.append(
            f"| {sc + ' ×' + w + 'w':<13} | {v['req_s']:8.0f} | {v['checks_s']:9.0f} | {v['p50_ms']:7.2f} | "
            f"{v['p99_ms']:7.2f} | {v['p999_ms']:8.2f} | {v['server_cpu_pct']:9.0f}% | {v['store_cpu_pct']:8.0f}% |"
        )
    return "\n".join(lines)


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.2f}"


def seeded(t: Target) -> bool:
    import asyncio

    async def n() -> int:
        try:
            c = await asyncpg.connect(f"{t.pg_base}/{t.database}")
        except (OSError, asyncpg.PostgresError):
            return -1
        try:
            v: int = await c.fetchval(
                "SELECT count(*) FROM practitioners WHERE display_code < $1", BULK_FLOOR
            )
            return v
        except asyncpg.PostgresError:
            return -1
        finally:
            await c.close()

    return asyncio.run(n()) == t.scale


def private_redis() -> str:
    from app.embedded import start_redis

    server = start_redis(RESULTS / ".redis", persist=True, stop_at_exit=True)
    return server.url.rsplit("/", 1)[0]


def ensure_built(t: Target, logdir: Path) -> float | None:
    """Mirror the database into this Redis if it does not hold it (e.g. a fresh private one)."""
    if redis.Redis.from_url(t.redis_url).exists("cg:meta:built"):
        return None
    t0 = time.monotonic()
    subprocess.run(
        [servers.PY, "-m", "app.cli", "cache", "rebuild"],
        cwd=servers.ROOT,
        env={**os.environ, **t.env()},
        check=True,
        capture_output=True,
    )
    return time.monotonic() - t0


def _stop(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: every server started is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if a.redis == "private":
        a.redis = private_redis()
        print(f"private Redis at {a.redis}", flush=True)
    started = dt.datetime.now(dt.UTC)
    wrk = None if a.python_load else loadgen.ensure_wrk(install=not a.no_install_wrk)
    print(f"load generator: {wrk or 'loadtests.pyload (wrk unavailable)'}", flush=True)
    logdir = RESULTS / "logs"
    t = Target(a.scale, a.pg, a.redis, a.database, a.redis_db)
    keys = prepare(t, logdir)
    took = seed(t, keys, logdir)
    mirrored = ensure_built(t, logdir)
    if mirrored is not None:
        print(f"mirrored {t.database} into Redis in {mirrored:.0f}s", flush=True)
    print(
        f"scale {a.scale:,}: " + ("already seeded" if took is None else f"seeded in {took:.0f}s"),
        flush=True,
    )
    data = Dataset(a.scale)

    def target_of(scale: int) -> Target:
        return t if scale == a.scale else Target(scale, a.pg, a.redis)

    out: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": "python -m loadtests " + " ".join(sys.argv[1:] if argv is None else argv),
        "scale": a.scale,
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "rounds": a.rounds,
        "connections": CONNECTIONS,
        "seed_seconds": took,
    }
    with tempfile.TemporaryDirectory(prefix="cg-load-") as tmpname:
        tmp = Path(tmpname)
        bodies = write_bodies(data, tmp, a.quick)
        res, alone = run_matrix(a, wrk, t, keys, bodies, logdir, data)
        out.update(alone)
        out["scenarios"] = {k: {f: v for f, v in r.items() if f != "runs"} for k, r in res.items()}
        out["runs"] = {k: r["runs"] for k, r in res.items()}
        if a.compare is not None:
            scales = [int(s) for s in a.compare.split(",") if s]
        elif a.quick:
            scales = [a.scale]
        else:
            scales = sorted(
                {10_000, a.scale}
                | ({1_000_000} if seeded(Target(1_000_000, a.pg, a.redis)) else set())
            )
        for sc in scales:
            st = target_of(sc)
            if not seeded(st):
                print(f"seeding scale {sc:,} for the comparison", flush=True)
                seed(st, prepare(st, logdir), logdir)
            ensure_built(st, logdir)
        cmp = run_compare(a, wrk, [target_of(sc) for sc in scales], logdir, tmp) if scales else {}
        out["scales"] = {k: {f: v for f, v in r.items() if f != "runs"} for k, r in cmp.items()}
        out["scale_runs"] = {k: r["runs"] for k, r in cmp.items()}
        if not a.no_extras:
            print("staleness …", flush=True)
            out["staleness"] = extras.staleness(
                t, data, keys, a.staleness_writes, wrk, bodies["single"], logdir
            )
            rs = a.rebuild_scale or max([*scales, a.scale])
            rt = target_of(rs)
            rb = bodies["single"] if rs == a.scale else tmp / f"scale{rs}" / "single.jsonl"
            print(f"cache rebuild at {rs:,} …", flush=True)
            out["rebuild"] = extras.rebuild(rt, prepare(rt, logdir), wrk, rb, logdir)
            out["memory"] = extras.memory(t)
        out["policy"] = extras.policy()
    out["ratios"] = ratios(out["runs"], out["scale_runs"])
    out["machine"] = machine(t, wrk)
    out["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    print()
    print(
        f"scale {a.scale:,} practitioners · {a.duration:g}s × {a.rounds} rounds (median) · {out['machine']['cores']} cores shared with the load generator"
    )
    print(table(out["scenarios"]))
    print()
    for r in out["ratios"]:
        mark = {True: "met", False: "NOT met", None: ""}[r["met"]]
        print(f"  {r['figure']:<42} {fmt(r['value']):>10}  {r['target']:<10} {mark}")
    mem = out["scenarios"].get("full/1", {}).get("memory")
    if mem and mem["from_remembered_verdicts"] is not None:
        print(
            f"  full, 1 worker: {mem['from_remembered_verdicts']:.1%} of {mem['lines_checked']:,} lines answered from remembered verdicts; L1 hit rate {mem['l1_hit_rate'] or 0:.1%}"
        )
    for key in ("writes/1", "bulk/1"):
        v = out["scenarios"].get(key)
        if v:
            print(
                f"  {key}: "
                + ", ".join(f"{k} {fmt(v.get(k))}" for k in AGENCY_FIELDS if v.get(k) is not None)
            )
    for name, where in (("write_alone", "random staff"), ("write_alone_500", "500 staff")):
        if name in out:
            w = out[name]
            print(
                f"  one write alone (idle server, {where}): p50 {fmt(w['p50_ms'])} ms, p99 {fmt(w['p99_ms'])} ms (p50 ≤ 10)"
            )
    if "staleness" in out:
        s = out["staleness"]
        print(
            f"  staleness over {s['measured']}/{s['writes']} writes, 2 processes: p50 {fmt(s['p50_ms'])} ms, p99 {fmt(s['p99_ms'])} ms (≤ 20 / ≤ 100)"
        )
    if "rebuild" in out:
        r = out["rebuild"]
        c = r["checks_during"]
        print(
            f"  cache rebuild of {r['projections']:,} projections at {r['scale']:,}: {r['seconds']} s; checks during it: {c['requests']} answered, {c['errors']} errors, {c['non2xx']} non-200"
        )
    if "memory" in out:
        m = out["memory"]
        print(
            f"  Redis per practitioner view: {m['bytes_per_view']} B (value {m['value_bytes_per_view']} B); per practitioner {m['bytes_per_practitioner']} B → 10M: {m['extrapolated_10m_practitioners_gib']} GiB"
        )
    p = out["policy"]
    print(
        f"  policy recompute, one practitioner with {p['events']} events: {p['median_ms']} ms median (≤ 1)"
    )

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = (
        a.out
        or RESULTS / f"{started:%Y%m%dT%H%M%SZ}-scale{a.scale}{'-quick' if a.quick else ''}.json"
    )
    path.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    path.with_suffix(".md").write_text(report.markdown(orjson.loads(path.read_bytes())))
    print(f"\nwrote {path} and {path.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
