"""One agency write in process, at the institution of a seeded bench database nearest 500
staff (issue 14, target (b)): its time and its statements, without HTTP or a server.

    python loadtests/one_write.py postgresql+asyncpg://postgres@127.0.0.1:5432/claimgate_bench_100000

Writes ``--n`` practitioner actions and as many violations (each under an Idempotency-Key,
about staff of that institution, dated apart) through ``Writes.run`` on an idle database, and
prints each kind's p50/p99 and statements per write. It imports only ``app``, so the same file
run by another checkout's interpreter measures that checkout (before/after on one database).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
import uuid
from typing import Any

from sqlalchemy import event, text

from app.admin import schemas as s
from app.admin.practitioners import practitioner_action
from app.admin.sanctions import record_violation
from app.admin.writes import Write, Writes
from app.db.engine import make_engine
from app.projection.ledger import WriteContext
from app.settings import Settings

# The institution with registered staff nearest 500, and up to 200 of them (by display code)
NEAREST = text(
    """
    WITH heads AS (
        SELECT institution_code AS code, count(DISTINCT practitioner_token) AS n
          FROM registrations GROUP BY institution_code
    ), mid AS (SELECT code FROM heads ORDER BY abs(n - :staff), code LIMIT 1)
    SELECT mid.code, p.display_code, min(g.department_code)
      FROM mid JOIN registrations g ON g.institution_code = mid.code
      JOIN practitioners p ON p.token = g.practitioner_token
     WHERE p.display_code NOT LIKE '%*%'
     GROUP BY mid.code, p.display_code ORDER BY p.display_code LIMIT 200
    """
)


async def main(url: str, n: int, staff: int) -> None:
    settings = Settings(database_url=url)
    engine = make_engine(settings)
    writes = Writes(engine)
    sent = [0]

    def count(*_: Any) -> None:
        sent[0] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    async with engine.connect() as conn:
        rows = (await conn.execute(NEAREST, {"staff": staff})).all()
    inst = rows[0][0]
    print(f"institution {inst}, {len(rows)} staff written about")
    times: dict[str, list[float]] = {"action": [], "violation": []}
    statements: dict[str, list[int]] = {"action": [], "violation": []}
    base = dt.date(2026, 1, 5) + dt.timedelta(days=int(time.time()) % 200)
    for k in range(n):
        _, code, dept = rows[k % len(rows)]
        day = base + dt.timedelta(days=k % 150)
        action = s.PractitionerActionIn.model_validate(
            {
                "action": "suspend",
                "institution_code": inst,
                "start": day.isoformat(),
                "end": (day + dt.timedelta(days=1)).isoformat(),
                "reason": "压测",
            }
        )
        violation = s.ViolationIn.model_validate(
            {
                "practitioner_code": code,
                "institution_code": inst,
                "department_code": dept,
                "date": day.isoformat(),
                "points": 1,
                "item": "压测",
                "exception_reason": "压测",
            }
        )
        for kind, work, args in (
            ("action", practitioner_action, (code, action)),
            ("violation", record_violation, (violation,)),
        ):
            write = Write(WriteContext(None, "one_write"), kind, 201, uuid.uuid4().hex, "fp")
            sent[0] = 0
            t0 = time.perf_counter()
            await writes.run(write, work, *args, settings.pii_secret)  # type: ignore[arg-type,call-arg]
            times[kind].append((time.perf_counter() - t0) * 1000)
            statements[kind].append(sent[0])
    await engine.dispose()
    for kind in times:
        v = sorted(times[kind][2:])  # the first prepare their statements
        print(
            f"{kind}: p50 {statistics.median(v):.1f} ms, p99 {v[int(len(v) * 0.99)]:.1f} ms, "
            f"statements {statistics.median(statements[kind][2:]):.0f} "
            f"(min {min(statements[kind][2:])}, max {max(statements[kind][2:])})"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("database_url")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--staff", type=int, default=500)
    a = p.parse_args()
    asyncio.run(main(a.database_url, a.n, a.staff))
