"""``python -m loadtests.report RESULT.json``: docs/performance.md's table, as markdown, from a
result file the harness wrote."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, result: dict[str, Any]) -> Path:
    """A benchmark's result as ``results/<UTC stamp>-<name>.json`` (what docs cite)."""
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}-{name}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return path


def _n(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        f"Scale {r['scale']:,} practitioners; {r['duration_s']:g} s per run after a "
        f"{r['warmup_s']:g} s discarded warm-up, {r['rounds']} interleaved rounds, medians; "
        f"{m['cores']} cores ({m['cpu']}) shared by the load generator ({m['load_generator']}), "
        f"the servers, PostgreSQL {m['postgresql']} and Redis {m['redis']}; git {m['git']}.",
        "",
        "| scenario | workers | req/s | checks/s | p50 ms | p99 ms | p99.9 ms | server CPU | store CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, v in r["scenarios"].items():
        sc, w = key.split("/")
        out.append(
            f"| {sc} | {w} | {_n(v['req_s'])} | {_n(v['checks_s'])} | {v['p50_ms']:.1f} | "
            f"{v['p99_ms']:.1f} | {v['p999_ms']:.1f} | {v['server_cpu_pct']:.0f} % | "
            f"{v['store_cpu_pct']:.0f} % |"
        )
    mem = r["scenarios"].get("full/1", {}).get("memory")
    if mem and mem.get("from_remembered_verdicts") is not None:
        out += [
            "",
            f"`full` (1 worker) answered {mem['from_remembered_verdicts']:.1%} of its "
            f"{mem['lines_checked']:,} lines from remembered verdicts; the L1 answered "
            f"{mem['l1_hit_rate'] or 0:.1%} of the document lookups for the rest.",
        ]
    out += ["", "| figure | measured | target | |", "|---|---|---|---|"]
    for row in r["ratios"]:
        mark = {True: "met", False: "**not met**", None: ""}[row["met"]]
        out.append(f"| {row['figure']} | {_n(row['value'])} | {row['target']} | {mark} |")
    if "staleness" in r:
        s = r["staleness"]
        ok = (s["p50_ms"] or 1e9) <= 20 and (s["p99_ms"] or 1e9) <= 100
        out.append(
            f"| staleness, {s['measured']}/{s['writes']} writes under check load, 2 processes "
            f"| p50 {_n(s['p50_ms'], 1)} ms, p99 {_n(s['p99_ms'], 1)} ms | ≤ 20 / ≤ 100 ms "
            f"| {'met' if ok else '**not met**'} |"
        )
    if "rebuild" in r:
        b = r["rebuild"]
        c = b["checks_during"]
        out.append(
            f"| cache rebuild, {b['projections']:,} projections ({b['scale']:,} practitioners) "
            f"| {b['seconds']:.1f} s; checks during it: {c['requests']:,} answered, "
            f"{c['errors']} errors, {c['non2xx']} non-200 | ≤ 60 s at 1,000,000 | see below |"
        )
    if "memory" in r:
        mm = r["memory"]
        out.append(
            f"| Redis memory per practitioner view | {mm['bytes_per_view']:.0f} B "
            f"({mm['bytes_per_practitioner']:.0f} B per practitioner with its marker; "
            f"{mm['extrapolated_10m_practitioners_gib']} GiB at 10,000,000) | ≤ 300 B "
            f"| {'met' if mm['bytes_per_view'] <= 300 else '**not met**'} |"
        )
    p = r["policy"]
    out.append(
        f"| policy recompute, one practitioner, {p['events']} events | {p['median_ms']} ms "
        f"median | ≤ 1 ms | {'met' if p['median_ms'] <= 1 else '**not met**'} |"
    )
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> None:
    r = orjson.loads(Path(argv[0]).read_bytes())
    sys.stdout.write(markdown(r))


if __name__ == "__main__":
    main(sys.argv[1:])
