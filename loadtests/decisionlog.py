"""``python -m loadtests.decisionlog``: what the decision log's flush costs the serving process
per row, as it writes now (binary COPY spliced from cached chunks, app.decisions.rows) against
the way it wrote before (a tuple per row built in Python, encoded value by value by asyncpg's
``copy_records_to_table`` — reproduced here as the baseline), in the same run.

Both write the same buffered entries (the harness's check lines, answered as the memo would:
a few hundred distinct verdicts) into the seeded bench database in slices of 512, inside a
transaction that is rolled back, alternating ``--rounds`` times; and the new way again
COPYed into the day's partition itself rather than the partitioned table (``partition``). Reported per row: the
process's CPU (what the checks sharing the loop lose) and the wall time, medians of the rounds,
and new ÷ old. PostgreSQL's own CPU is not in either (it runs elsewhere, or, on this machine,
on the same two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from app.checks.lines import Line
from app.checks.verdicts import Verdict, now_iso, verdict_of
from app.codes import practitioner_token
from app.db.tables import DECISION_PARTITIONS
from app.decisions.partitions import partition_name, shanghai_today
from app.decisions.rows import COLUMNS, RowEncoder
from loadtests.dataset import Dataset

_SLICE = 512
_SHANGHAI = timedelta(hours=8)
_OLD_COLUMNS = (
    "day",
    "decision_id",
    "answered_at",
    "key_id",
    "institution_code",
    "department_code",
    "practitioner_token",
    "service_date",
    "emergency",
    "decision",
    "reasons",
    "institution_version",
    "practitioner_version",
    "claim_id",
    "source",
)


class OldRows:
    """The flush's rows as built before (app.decisions.log at 7e90ee3): a tuple per row."""

    def __init__(self, secret: str) -> None:
        import orjson

        self.loads = orjson.loads
        self.secret = secret
        self._versions: dict[bytes, tuple[int | None, int | None]] = {}
        self._times: dict[str, tuple[datetime, date]] = {}
        self._tokens: dict[str, str] = {}
        self._days: dict[str, date] = {}

    def row(self, entry: tuple[Any, ...]) -> tuple[Any, ...]:
        key_id, ln, v, did, source, checked_at = entry
        versions = self._versions.get(v.core)
        if versions is None:
            dv = self.loads(b"{" + v.core + b"}")["data_version"]
            versions = self._versions[v.core] = (dv["institution"], dv["practitioner"])
        at = self._times.get(checked_at)
        if at is None:
            t = datetime.fromisoformat(checked_at)
            at = self._times[checked_at] = (t, (t + _SHANGHAI).date())
        token = self._tokens.get(ln.practitioner)
        if token is None:
            token = self._tokens[ln.practitioner] = practitioner_token(ln.practitioner, self.secret)
        day = self._days.get(ln.day)
        if day is None:
            day = self._days[ln.day] = date.fromisoformat(ln.day)
        return (
            at[1],
            did.decode(),
            at[0],
            key_id,
            ln.institution,
            ln.department,
            token,
            day,
            ln.emergency,
            "allow" if v.allowed else "deny",
            list(v.codes),
            versions[0],
            versions[1],
            ln.claim_id,
            source,
        )


def entries(scale: int, n: int) -> list[tuple[Any, ...]]:
    rng = random.Random(3)
    lines = Dataset(scale).check_lines(n)
    verdicts: list[Verdict] = []
    for i in range(400):
        if i % 10 == 0:
            reasons = [{"code": "PRACTITIONER_SUSPENDED", "message": "suspended"}]
            verdicts.append(verdict_of(False, reasons, {"institution": i, "practitioner": i}))  # type: ignore[arg-type]
        else:
            verdicts.append(verdict_of(True, [], {"institution": i, "practitioner": i * 7}))
    out = []
    at = now_iso()
    for k, ln in enumerate(lines):
        line = Line(
            ln["institution_code"],
            ln["department_code"],
            ln["practitioner_code"],
            ln["service_date"],
            False,
            ln.get("claim_id"),
        )
        if k % 40 == 0:
            at = now_iso() if k % 80 else at  # a few distinct request times
        out.append((7, line, rng.choice(verdicts), b"%032x" % (10**9 + k), "cache", at))
    return out


async def _old(conn: asyncpg.Connection, rows: list[tuple[Any, ...]], old: Any) -> None:
    build = old.row
    for i in range(0, len(rows), _SLICE):
        records = [build(r) for r in rows[i : i + _SLICE]]
        await conn.copy_records_to_table("decision_log", records=records, columns=_OLD_COLUMNS)


async def _new(conn: asyncpg.Connection, rows: list[tuple[Any, ...]], new: Any) -> None:
    encode = new.encode
    for i in range(0, len(rows), _SLICE):
        data = memoryview(encode(rows[i : i + _SLICE]))
        await conn.copy_to_table("decision_log", source=data, columns=COLUMNS, format="binary")


async def _part(conn: asyncpg.Connection, rows: list[tuple[Any, ...]], new: Any) -> None:
    """As ``_new``, into the day's partition itself (every row here is of one day)."""
    encode = new.encode
    day = partition_name(shanghai_today())
    for i in range(0, len(rows), _SLICE):
        data = memoryview(encode(rows[i : i + _SLICE]))
        await conn.copy_to_table(
            day, schema_name=DECISION_PARTITIONS, source=data, columns=COLUMNS, format="binary"
        )


async def run(a: argparse.Namespace) -> dict[str, Any]:
    rows = entries(a.scale, a.rows)
    conn = await asyncpg.connect(f"{a.pg}/claimgate_bench_{a.scale}")
    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": [], "partition": []}
    # each kept across rounds, as the log keeps its own: what repeats is worked out once
    writers = {
        "old": (_old, OldRows("loadtests")),
        "new": (_new, RowEncoder("loadtests")),
        "partition": (_part, RowEncoder("loadtests")),
    }
    try:
        for rnd in range(a.rounds + 1):
            for name in ("old", "new", "partition")[:: 1 if rnd % 2 else -1]:
                write, state = writers[name]
                tr = conn.transaction()
                await tr.start()
                c0, w0 = time.process_time(), time.perf_counter()
                await write(conn, rows, state)
                c1, w1 = time.process_time(), time.perf_counter()
                await tr.rollback()
                if rnd == 0:
                    continue  # the first round works out the tokens: discarded
                times[name].append(((c1 - c0) / len(rows) * 1e6, (w1 - w0) / len(rows) * 1e6))
    finally:
        await conn.close()
    out: dict[str, Any] = {}
    for name, ts in times.items():
        out[name] = {
            "cpu_us": statistics.median(t[0] for t in ts),
            "wall_us": statistics.median(t[1] for t in ts),
        }
    for name in ("new", "partition"):
        for i, what in enumerate(("cpu", "wall")):
            out[f"{what} {name} ÷ old"] = statistics.median(
                n[i] / o[i] for n, o in zip(times[name], times["old"], strict=True)
            )
    return out


def encoding_alone(a: argparse.Namespace) -> float:
    """The Python side alone: old tuples (without asyncpg's encoding, which runs inside the
    COPY) against the new bytes, best of 5 each."""
    rows = entries(a.scale, a.rows)
    old, new = OldRows("loadtests"), RowEncoder("loadtests")
    best = {"old": float("inf"), "new": float("inf")}
    for _ in range(6):
        t0 = time.perf_counter()
        for i in range(0, len(rows), _SLICE):
            [old.row(r) for r in rows[i : i + _SLICE]]
        t1 = time.perf_counter()
        for i in range(0, len(rows), _SLICE):
            new.encode(rows[i : i + _SLICE])
        t2 = time.perf_counter()
        best["old"], best["new"] = min(best["old"], t1 - t0), min(best["new"], t2 - t1)
    print(
        f"  per row: old tuple {best['old'] / len(rows) * 1e6:.2f} µs, new bytes "
        f"{best['new'] / len(rows) * 1e6:.2f} µs"
    )
    return best["new"] / best["old"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.decisionlog", description=__doc__)
    p.add_argument("--scale", type=int, default=100_000, help="a seeded bench database")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args(argv)
    out = asyncio.run(run(a))
    print(f"{a.rows} rows in slices of {_SLICE}, {a.rounds} rounds alternated (medians)")
    print(f"  encoding alone, in process: {encoding_alone(a):.3f} new ÷ old")
    for name in ("old", "new", "partition"):
        r = out[name]
        print(f"  {name}: {r['cpu_us']:.2f} µs CPU, {r['wall_us']:.2f} µs wall per row")
    for name in ("new", "partition"):
        cpu, wall = out[f"cpu {name} ÷ old"], out[f"wall {name} ÷ old"]
        print(f"  {name} ÷ old: CPU {cpu:.3f}, wall {wall:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
