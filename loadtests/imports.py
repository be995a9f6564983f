"""How long a large roster takes to import, as a ratio against the JSON bulk import of the same
rows (issue 12: a 100,000-line roster XLSX in under a minute on this machine).

    .venv/bin/python -m loadtests.imports                 # 100,000 lines
    .venv/bin/python -m loadtests.imports --rows 20000    # a quicker look

Both run in-process against fresh databases on PostgreSQL at 127.0.0.1:5432 (no Redis: the
outbox would carry the documents; both paths write the same outbox rows), through
``Writes.run`` — the write path every route takes:

- ``bulk``: ``app.admin.bulk.bulk_import`` with the rows as JSON bodies of at most 20,000
  records (its cap), institutions and departments first, each body its own transaction;
- ``import``: the same rows as a claimgate-roster XLSX (written here with openpyxl), read,
  checked and written by ``app.interchange.imports.run`` in one transaction; its dry run
  (read + check, nothing written) is timed apart, and so is the reading alone.

The roster: ``--institutions`` 济宁 hospitals, departments named by 诊疗科目, one doctor per
line; 5 % of lines carry points and 1 % a suspension (opening balances the bulk path cannot
express, so the import writes a little more). The ratio is import ÷ bulk, within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.admin import bulk
from app.admin.writes import Write, Writes
from app.cli import migrate
from app.db.engine import make_engine
from app.interchange import departments, imports
from app.projection.ledger import WriteContext
from app.settings import Settings
from loadtests import report

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SUBJECTS = ["内科", "外科", "儿科", "妇产科", "眼科", "口腔科", "中医科", "急诊医学科"]
SECRET = "loadtest-secret"


def lines(n: int, institutions: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        subject = SUBJECTS[i % len(SUBJECTS)]
        out.append(
            {
                "inst": f"H370802{i % institutions:05d}",
                "dept": subject,
                "code": f"D370802{i:06d}",
                "name": f"医师{i}",
                "points": 3 if i % 20 == 0 else (6 if i % 100 == 1 else None),
                "status": "暂停" if i % 100 == 1 else None,
            }
        )
    return out


def workbook(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet("人员名册")
    ws.append(
        [
            "机构代码",
            "机构名称",
            "科室名称",
            "人员代码",
            "姓名",
            "人员类别",
            "执业起始日期",
            "累计扣分",
            "服务状态",
            "状态起始日期",
        ]
    )
    for r in rows:
        since = "2026-05-01" if r["status"] else None
        ws.append(
            [
                r["inst"],
                f"济宁医院{r['inst'][-5:]}",
                r["dept"],
                r["code"],
                r["name"],
                "医师",
                "2024-01-01",
                r["points"],
                r["status"],
                since,
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def bodies(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same roster as bulk bodies of at most 20,000 records."""
    insts = sorted({r["inst"] for r in rows})
    depts = sorted({(r["inst"], departments.subject(r["dept"])[0]) for r in rows})  # type: ignore[index]
    out: list[dict[str, Any]] = [
        {
            "institutions": [
                {"code": c, "name": f"济宁医院{c[-5:]}", "region_code": "370802"} for c in insts
            ],
            "departments": [
                {"institution_code": i, "code": d, "name": departments.NAME_OF_CODE[d]}
                for i, d in depts
            ],
        }
    ]
    for k in range(0, len(rows), 10_000):
        part = rows[k : k + 10_000]
        out.append(
            {
                "practitioners": [
                    {"code": r["code"], "name": r["name"], "category": "doctor"} for r in part
                ],
                "registrations": [
                    {
                        "practitioner_code": r["code"],
                        "institution_code": r["inst"],
                        "department_code": departments.subject(r["dept"])[0],  # type: ignore[index]
                        "start": "2024-01-01",
                    }
                    for r in part
                ],
            }
        )
    return out


async def _database() -> str:
    name = f"claimgate_lt_import_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _settings(name: str) -> Settings:
    url = make_url(ADMIN).set(drivername="postgresql+asyncpg", database=name)
    return Settings(
        database_url=url.render_as_string(hide_password=False),
        redis_url="redis://127.0.0.1:1/0",
        pii_secret=SECRET,
        db_timeout_s=600,
    )


async def _bulk(rows: list[dict[str, Any]]) -> float:
    name = await _database()
    try:
        settings = _settings(name)
        await asyncio.to_thread(migrate, settings)
        engine = make_engine(settings)
        writes = Writes(engine)
        models = [bulk.BulkIn.model_validate(b) for b in bodies(rows)]
        start = time.perf_counter()
        for n, body in enumerate(models):
            await writes.run(
                Write(WriteContext(None, f"lt-bulk-{n}")), bulk.bulk_import, body, SECRET
            )
        took = time.perf_counter() - start
        await engine.dispose()
        return took
    finally:
        await _drop(name)


async def _import(data: bytes) -> dict[str, float]:
    name = await _database()
    try:
        settings = _settings(name)
        await asyncio.to_thread(migrate, settings)
        engine = make_engine(settings)
        req = imports.ImportRequest(data, "claimgate-roster", dt.date(2026, 6, 30))
        t0 = time.perf_counter()
        parsed = imports.read(req)
        t_read = time.perf_counter() - t0
        await imports.dry_run(engine, req, parsed, SECRET)
        t_dry = time.perf_counter() - t0
        t1 = time.perf_counter()
        parsed = imports.read(req)
        _, answer = await imports.run(
            Writes(engine), req, parsed, WriteContext(None, "lt-import"), SECRET
        )
        t_import = time.perf_counter() - t1
        assert answer["applied"], answer
        await engine.dispose()
        return {"read_s": t_read, "dry_run_s": t_dry, "import_s": t_import}
    finally:
        await _drop(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--institutions", type=int, default=100)
    args = ap.parse_args()
    rows = lines(args.rows, args.institutions)
    t = time.perf_counter()
    data = workbook(rows)
    print(
        f"wrote a {len(data) / 1e6:.1f} MB workbook of {args.rows} lines in {time.perf_counter() - t:.1f}s"
    )
    took_bulk = asyncio.run(_bulk(rows))
    print(f"bulk (JSON, {len(bodies(rows))} bodies): {took_bulk:.1f}s")
    got = asyncio.run(_import(data))
    print(
        f"import: read {got['read_s']:.1f}s, dry run {got['dry_run_s']:.1f}s, "
        f"import {got['import_s']:.1f}s; import ÷ bulk = {got['import_s'] / took_bulk:.2f}"
    )
    result = {
        "rows": args.rows,
        "xlsx_bytes": len(data),
        "bulk_s": took_bulk,
        **got,
        "ratio": got["import_s"] / took_bulk,
    }
    report.save(f"imports-{args.rows}", result)


if __name__ == "__main__":
    main()
