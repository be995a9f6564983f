"""How fast ``claimgate decisions replay`` re-judges the decision log (issue 13: lines re-judged
per second), against how fast the same lines are judged when first answered from PostgreSQL.

    .venv/bin/python -m loadtests.replay                          # 200,000 logged lines
    .venv/bin/python -m loadtests.replay --lines 20000 --roster 2000   # a quicker look

In-process on a fresh database at PostgreSQL 127.0.0.1:5432 (no Redis: replay reads the truth):

1. a roster of ``--roster`` practitioners (济宁 hospitals, ``loadtests.imports``' generator)
   through the JSON bulk import; 1 % suspended by an officer's action, so some lines are denied;
2. ``--lines`` decision-log rows COPYed in as the service writes them — each a line of one of
   those practitioners at their institution and department, a service date in the last 30
   days, answered ``allow`` (so every suspended practitioner's line is one replay must list);
3. ``replay`` from the first day, timed: lines re-judged per second, and the count of changed
   decisions, checked against what the roster says it must be.

The baseline in the same run is ``CheckService.judge_from_database`` on the same lines in the
same chunks — the check path's own PostgreSQL answer, without reading the log — so the ratio
says what reading and paging the log costs on top of judging.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text

from app.admin import bulk
from app.admin.practitioners import practitioner_action
from app.admin.schemas import PractitionerActionIn
from app.admin.writes import Write, Writes
from app.cache.l1 import L1Cache
from app.checks.lines import Line
from app.checks.service import CheckService
from app.cli import migrate
from app.codes import practitioner_token
from app.db.engine import make_engine
from app.decisions import partitions
from app.decisions.replay import CHUNK, replay
from app.decisions.rows import COLUMNS
from app.interchange import departments
from app.projection.ledger import WriteContext
from loadtests import report
from loadtests.imports import SECRET, _database, _drop, _settings, bodies, lines

TODAY = dt.date(2026, 6, 30)
# every partition's table, indexes and TOAST: what a logged line costs PostgreSQL (capacity.md)
_LOG_BYTES = (
    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
    "WHERE inhparent = 'decision_log'::regclass"
)


def _decision_rows(roster: list[dict[str, Any]], n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    tokens = [practitioner_token(r["code"], SECRET) for r in roster]
    depts = [departments.subject(r["dept"])[0] for r in roster]  # type: ignore[index]
    out = []
    for i in range(n):
        k = rnd.randrange(len(roster))
        day = TODAY - dt.timedelta(days=rnd.randrange(30))
        at = dt.datetime.combine(day, dt.time(8), dt.UTC) + dt.timedelta(seconds=i % 36_000)
        row = {
            "day": day,
            "decision_id": uuid.uuid4().hex,
            "answered_at": at,
            "key_id": None,
            "institution_code": roster[k]["inst"],
            "department_code": depts[k],
            "practitioner_token": tokens[k],
            "service_date": day,
            "emergency": False,
            "decision": "allow",
            "reasons": [],
            "institution_version": 1,
            "practitioner_version": 1,
            "claim_id": f"C{i:09d}",
            "source": "cache",
        }
        out.append(tuple(row[c] for c in COLUMNS))
    return out


async def run(n_roster: int, n_lines: int) -> dict[str, Any]:
    name = await _database()
    try:
        settings = _settings(name)
        await asyncio.to_thread(migrate, settings)
        engine = make_engine(settings)
        writes = Writes(engine)
        roster = lines(n_roster, max(1, n_roster // 500))
        # 济宁 pays a practitioner under a service agreement: each gets one, in bodies of their
        # own (a body holds at most 20,000 records)
        agreed = [
            {
                "agreements": [
                    {k: r[k] for k in ("practitioner_code", "institution_code", "start")}
                    for r in body["registrations"]
                ]
            }
            for body in bodies(roster)
            if body.get("registrations")
        ]
        for n, body in enumerate([*bodies(roster), *agreed]):
            await writes.run(
                Write(WriteContext(None, f"lt-replay-{n}")),
                bulk.bulk_import,
                bulk.BulkIn.model_validate(body),
                SECRET,
            )
        suspended = roster[1::100]
        for r in suspended:
            action = PractitionerActionIn.model_validate(
                {"action": "suspend", "start": "2026-05-01", "reason": "loadtest"}
            )
            await writes.run(
                Write(WriteContext(None, f"lt-suspend-{r['code']}")),
                practitioner_action,
                r["code"],
                action,
                SECRET,
            )
        for back in range(31):  # the partitions of the last 30 days, as the service made them
            await partitions.maintain(engine, 400, today=TODAY - dt.timedelta(days=back))
        rows = _decision_rows(roster, n_lines)
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                "decision_log", records=rows, columns=COLUMNS
            )
            await conn.commit()
            await conn.execute(text("ANALYZE decision_log"))
            log_bytes = int((await conn.execute(text(_LOG_BYTES))).scalar_one())
        banned = {practitioner_token(s["code"], SECRET) for s in suspended}
        want = sum(1 for r in rows if r[COLUMNS.index("practitioner_token")] in banned)

        redis = Redis.from_url("redis://127.0.0.1:1/0")  # never asked: both read PostgreSQL
        checks = CheckService(
            redis=redis, engine=engine, l1=L1Cache(0), pii_secret=SECRET, memo_size=0
        )
        t0 = time.perf_counter()
        for i in range(0, len(rows), CHUNK):
            part = rows[i : i + CHUNK]
            ls = [
                Line(r[4], r[5], r[6], r[7].isoformat(), r[8], r[13])  # as replay builds them
                for r in part
            ]
            await checks.judge_from_database(ls, [r[6] for r in part])
        judge_s = time.perf_counter() - t0
        result = await replay(engine, checks, since=TODAY - dt.timedelta(days=30))
        await redis.aclose()
        await engine.dispose()
        summary = result.summary()
        assert summary["allow_to_deny"] == want, (summary, want)
        return {
            "roster": n_roster,
            "lines": n_lines,
            "replay_s": result.seconds,
            "replay_lines_per_s": n_lines / result.seconds,
            "judge_only_s": judge_s,
            "judge_only_lines_per_s": n_lines / judge_s,
            "ratio": judge_s / result.seconds,
            "allow_to_deny": summary["allow_to_deny"],
            "decision_log_bytes_per_row": log_bytes / n_lines,
        }
    finally:
        await _drop(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--roster", type=int, default=20_000)
    args = ap.parse_args()
    got = asyncio.run(run(args.roster, args.lines))
    print(
        f"replay: {got['lines']} lines in {got['replay_s']:.1f}s = "
        f"{got['replay_lines_per_s']:,.0f} lines/s; judging the same lines alone "
        f"{got['judge_only_lines_per_s']:,.0f} lines/s; replay ÷ judge-only = {got['ratio']:.2f}; "
        f"allow→deny found {got['allow_to_deny']} (every line of a suspended practitioner); "
        f"decision log {got['decision_log_bytes_per_row']:.0f} B a line"
    )
    report.save(f"replay-{args.lines}", got)


if __name__ == "__main__":
    main()
