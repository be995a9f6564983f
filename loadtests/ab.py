"""``python -m loadtests.ab --base REV``: the working tree (B) against an earlier build (A),
interleaved in one run, so a change to the check path is judged on this shared machine by
ratios taken seconds apart rather than by rates from runs an hour apart.

A is ``git archive REV`` unpacked in a temporary folder; its servers run from there (``python
-m`` puts the working directory first on the import path), against the same seeded database
and the same private Redis as B's. Scenarios, each at 1 worker: ``raw`` and ``bare``, ``full``
and ``cache`` of A and of B, and ``cold`` and ``batch100`` on each ``full`` (``--only`` picks);
every round runs all of them in an order rotated by one, after a discarded warm-up. Reported:
each scenario's median, and the median of the per-round ratios B ÷ A, full ÷ raw,
full/cold/cache ÷ bare, and cold's p99 ÷ bare's. Written to
``loadtests/results/<time>-ab.json``.

``--bulk N`` adds the bulk import of issue 17 to every round, on A and on B in turn: a
``POST /v1/admin/bulk`` of N new practitioners timed alone, then 16 connections of checks
(``full16``) without an import and again while another import of N runs. Reported: the
import's seconds alone and under checks B ÷ A, and each build's check p99 during the import
÷ without. ``--no-checks`` runs only that.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import orjson

from loadtests import __main__ as harness
from loadtests import agency, loadgen, servers
from loadtests.dataset import Dataset
from loadtests.seed import Target, prepare, seed

# (server, scenario): the plan of one round, before rotation
PLAN = [
    ("raw", "raw"),
    ("bare", "bare"),
    ("full/A", "full"),
    ("full/B", "full"),
    ("full/A", "cold"),
    ("full/B", "cold"),
    ("cache/A", "cache"),
    ("cache/B", "cache"),
    ("full/A", "batch100"),
    ("full/B", "batch100"),
]
RATIOS = [
    ("full B ÷ A", "full/B full", "full/A full"),
    ("cold B ÷ A", "full/B cold", "full/A cold"),
    ("cache B ÷ A", "cache/B cache", "cache/A cache"),
    ("batch100 B ÷ A", "full/B batch100", "full/A batch100"),
    ("full ÷ raw, A", "full/A full", "raw raw"),
    ("full ÷ raw, B", "full/B full", "raw raw"),
    ("full ÷ bare, A", "full/A full", "bare bare"),
    ("full ÷ bare, B", "full/B full", "bare bare"),
    ("cold ÷ bare, A", "full/A cold", "bare bare"),
    ("cold ÷ bare, B", "full/B cold", "bare bare"),
    ("cache ÷ bare, A", "cache/A cache", "bare bare"),
    ("cache ÷ bare, B", "cache/B cache", "bare bare"),
]
# the p99 ratios the cold target names
P99 = [
    ("cold p99 ÷ bare p99, A", "full/A cold", "bare bare"),
    ("cold p99 ÷ bare p99, B", "full/B cold", "bare bare"),
]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.ab", description=__doc__.split("\n")[0])
    p.add_argument("--base", default="HEAD", help="the git revision A is built from")
    p.add_argument("--scale", type=int, default=10_000, help="practitioners")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument(
        "--only",
        default="",
        help="scenarios to run, comma separated (raw,bare,full,cold,cache,batch100; all)",
    )
    p.add_argument("--out", default="", help="the result file (default results/<time>-ab.json)")
    p.add_argument(
        "--bulk", type=int, default=0, help="also time a bulk import of N practitioners each round"
    )
    p.add_argument("--no-checks", action="store_true", help="skip the check scenarios")
    return p.parse_args(argv)


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev``, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev],
        cwd=servers.ROOT,
        capture_output=True,
        check=True,
    ).stdout
    tree = into / "a"
    tree.mkdir()
    with tempfile.TemporaryFile() as fh:
        fh.write(archive)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(tree, filter="data")
    # Both builds serve one database, which B has migrated: A must know B's revisions too, or
    # its start (which migrates to head) cannot place the database. Sound for additive
    # revisions (new tables, new indexes), which an older build does not read.
    versions = servers.ROOT / "migrations" / "versions"
    for script in versions.glob("*.py"):
        if not (tree / "migrations" / "versions" / script.name).exists():
            shutil.copy(script, tree / "migrations" / "versions" / script.name)
    return tree


def start(kind: str, tree: Path, t: Target, logdir: Path) -> servers.Server:
    port = servers.free_port()
    env = t.env()
    if kind in ("bare", "raw"):
        argv = [servers.PY, "-m", "loadtests.serve", f"loadtests.{kind}:create_app", str(port), "1"]
    else:
        argv = [servers.PY, "-m", "app.cli", "serve", "--host", servers.HOST, "--port", str(port)]
        if kind == "cache":
            env["CLAIMGATE_L1_SIZE"] = "0"
    side = "B" if tree == servers.ROOT else "A"
    return servers.start(f"{kind}-{side}", argv, env, port, logdir, cwd=tree)


def ratios(runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    out = {
        name: statistics.median(
            x["req_s"] / y["req_s"] for x, y in zip(runs[a], runs[b], strict=True)
        )
        for name, a, b in RATIOS
        if a in runs and b in runs
    }
    for name, a, b in P99:
        if a in runs and b in runs:
            out[name] = statistics.median(
                x["p99_ms"] / y["p99_ms"] for x, y in zip(runs[a], runs[b], strict=True)
            )
    return out


BULK_RATIOS = [
    ("import alone B ÷ A", "bulk/B import_alone_s", "bulk/A import_alone_s"),
    ("import under checks B ÷ A", "bulk/B import_s", "bulk/A import_s"),
    ("check p99 during import ÷ without, A", "bulk/A p99_ms", "full16/A p99_ms"),
    ("check p99 during import ÷ without, B", "bulk/B p99_ms", "full16/B p99_ms"),
]


def bulk_round(
    wrk: str | None,
    srv: servers.Server,
    side: str,
    n: int,
    keys: dict[str, str],
    bodies: dict[str, Path],
    data: Dataset,
) -> dict[str, float]:
    """One build's bulk figures for one round: the import alone; checks without it; checks
    while another import runs (the load lasting about as long as the import)."""
    url, key = srv.url, keys["agency"]
    alone = agency.bulk_import(url, key, agency.bulk_body(data, n))
    duration = max(2.0, round(alone["seconds"]))
    without = harness.measure(wrk, srv, "full16", bodies, keys["gateway"], duration, None)
    with agency.BulkDuring(url, key, agency.bulk_body(data, n)) as b:
        during = harness.measure(wrk, srv, "full16", bodies, keys["gateway"], duration, None)
    b.thread.join(timeout=600)
    if alone["status"] != 200 or b.result.get("status") != 200:
        raise RuntimeError(f"bulk import on {side} failed: {alone} {b.result}")
    row = {
        f"bulk/{side} import_alone_s": alone["seconds"],
        f"bulk/{side} import_s": b.result["seconds"],
        f"full16/{side} p99_ms": without["p99_ms"],
        f"bulk/{side} p99_ms": during["p99_ms"],
    }
    print(
        f"  {side}: import alone {alone['seconds']:.2f} s, under checks "
        f"{b.result['seconds']:.2f} s; check p99 {during['p99_ms']:.1f} ms during ÷ "
        f"{without['p99_ms']:.1f} ms without",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    started = dt.datetime.now(dt.UTC)
    logdir = harness.RESULTS / "logs"
    t = Target(a.scale, a.pg, harness.private_redis())
    keys = prepare(t, logdir)
    seed(t, keys, logdir)
    harness.ensure_built(t, logdir)
    wrk = loadgen.ensure_wrk()
    only = {x for x in a.only.split(",") if x}
    plan = [(n, sc) for n, sc in PLAN if not only or sc in only]
    with tempfile.TemporaryDirectory(prefix="cg-ab-") as tmpname:
        tmp = Path(tmpname)
        base = export(a.base, tmp)
        # Without the check scenarios only the two full servers run: every other server's
        # sync worker would share the imports' outbox and the machine's two cores.
        if a.no_checks:
            plan = []
        kinds = {
            "raw": ("raw", servers.ROOT),
            "bare": ("bare", servers.ROOT),
            "full/A": ("full", base),
            "full/B": ("full", servers.ROOT),
            "cache/A": ("cache", base),
            "cache/B": ("cache", servers.ROOT),
        }
        wanted = dict.fromkeys(n for n, _ in plan) | {"full/A": None, "full/B": None}
        srvs = {name: start(*kinds[name], t, logdir) for name in wanted}
        try:
            for name, s in srvs.items():
                servers.wait_ready(s, "/healthz" if name in ("bare", "raw") else "/readyz")
            bodies = harness.write_bodies(Dataset(a.scale), tmp, False)
            auth = keys["gateway"]
            warm = plan or [("full/A", "full16"), ("full/B", "full16")]
            for name, sc in warm:
                harness.sanity(srvs[name], bodies, auth, sc)
            for name, sc in warm:  # warm-up, discarded
                harness.measure(wrk, srvs[name], sc, bodies, auth, max(5.0, a.duration), None)
            runs: dict[str, list[dict[str, Any]]] = {f"{n} {sc}": [] for n, sc in plan}
            bulk: list[dict[str, float]] = []
            data = Dataset(a.scale)
            for rnd in range(a.rounds):
                # rotated by one each round, and reversed every other round: with A before B
                # in one order, B before A in the other (each run leaves PostgreSQL work, its
                # decision-log rows, to the run after it)
                order = plan if rnd % 2 == 0 else plan[::-1]
                turn = (rnd // 2) % max(len(plan), 1)
                for name, sc in order[turn:] + order[:turn]:
                    m = harness.measure(wrk, srvs[name], sc, bodies, auth, a.duration, None)
                    runs[f"{name} {sc}"].append(m)
                    print(f"round {rnd + 1} {name:8} {sc:9} {m['req_s']:8.0f} req/s", flush=True)
                if a.bulk:
                    print(f"round {rnd + 1} bulk import of {a.bulk}", flush=True)
                    row: dict[str, float] = {}
                    for side in ("A", "B") if rnd % 2 == 0 else ("B", "A"):
                        row |= bulk_round(
                            wrk, srvs[f"full/{side}"], side, a.bulk, keys, bodies, data
                        )
                    bulk.append(row)
        finally:
            for s in srvs.values():
                s.stop()
    out = {
        "started_at": started.isoformat(timespec="seconds"),
        "base": a.base,
        "scale": a.scale,
        "rounds": a.rounds,
        "duration_s": a.duration,
        "median_req_s": {k: statistics.median(r["req_s"] for r in v) for k, v in runs.items()},
        "median_p99_ms": {k: statistics.median(r["p99_ms"] for r in v) for k, v in runs.items()},
        "ratios": ratios(runs) if runs else {},
        "runs": runs,
    }
    if bulk:
        out["bulk"] = bulk
        out["bulk_medians"] = {k: statistics.median(r[k] for r in bulk) for k in bulk[0]}
        out["ratios"] |= {
            name: statistics.median(r[x] / r[y] for r in bulk) for name, x, y in BULK_RATIOS
        }
    for name, value in out["ratios"].items():
        print(f"  {name:<38} {value:6.3f}")
    path = Path(a.out) if a.out else harness.RESULTS / f"{started:%Y%m%dT%H%M%SZ}-ab.json"
    path.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
