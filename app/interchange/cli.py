"""``claimgate import FILE --preset NAME [--dry-run]`` and ``claimgate template FILE``: the
same import as ``POST /v1/admin/imports``, run against the configured database (the outbox
carries what it changed into Redis), with a progress bar on stderr and the per-row report."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from app.fields import MIN_DATE, today_shanghai


class Bar:
    """A plain progress bar: one line on a terminal, redrawn at most ten times a second."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.last = 0.0
        self.started = time.monotonic()

    def __call__(self, phase: str, done: int, of: int) -> None:
        now = time.monotonic()
        if done < of and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        filled = width if of == 0 else width * done // of
        end = "\n" if done >= of else ""
        self.out.write(
            f"\r{phase} [{'#' * filled}{'.' * (width - filled)}] {done}/{of} "
            f"{now - self.started:5.1f}s{end}"
        )
        self.out.flush()


def print_report(answer: dict[str, Any], out: TextIO = sys.stdout) -> None:
    report = answer.get("report", answer)
    for p in report["problems"]:
        where = f"第{p['row']}行" if p["row"] is not None else "文件"
        column = f" {p['column']}" if p["column"] else ""
        out.write(f"{report['sheet'] or '-'} {where}{column}：{p['problem']}\n")
    if report["problem_count"] > len(report["problems"]):
        out.write(f"…共 {report['problem_count']} 个问题\n")
    counts = "，".join(f"{k} {v}" for k, v in report["counts"].items())
    out.write(f"{report['rows']} 行；{counts or '无'}\n")


async def _import(args: argparse.Namespace, data: bytes) -> int:
    from app.admin.writes import Writes
    from app.db.engine import make_engine
    from app.errors import ProblemError
    from app.interchange import imports
    from app.projection.ledger import WriteContext
    from app.settings import get_settings

    settings = get_settings()
    bar = Bar()
    req = imports.ImportRequest(
        data,
        args.preset,
        args.as_of or today_shanghai(),
        args.registered_from or MIN_DATE,
        args.region,
        args.sheet,
        args.encoding,
    )
    engine = make_engine(settings)
    try:
        bar("读取", 0, 1)
        parsed = await asyncio.to_thread(imports.read, req)
        bar("读取", 1, 1)
        if args.dry_run:
            answer = await imports.dry_run(engine, req, parsed, settings.pii_secret)
            print_report(answer)
            print("试导入：未写入任何数据" + ("" if answer["ok"] else "；请先修正以上问题"))
            return 0 if answer["ok"] else 1
        context = WriteContext(None, f"cli-import-{req.digest[:16]}")
        _, answer = await imports.run(
            Writes(engine), req, parsed, context, settings.pii_secret, progress=bar
        )
        print_report(answer)
        print(f"已导入（sha256 {req.digest[:12]}）")
        return 0
    except ProblemError as exc:
        if "report" in exc.extra:
            print_report(exc.extra)
        print(f"未导入：{exc.detail}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


def cmd_import(args: argparse.Namespace) -> int:
    from app.cli import ensure_servers, migrate
    from app.settings import get_settings

    migrate(ensure_servers(get_settings()))
    code: int = asyncio.run(_import(args, Path(args.file).read_bytes()))
    return code


def cmd_template(args: argparse.Namespace) -> int:
    from app.interchange.template import template

    Path(args.file).write_bytes(template())
    print(f"template written to {args.file}")
    return 0


def add_commands(sub: Any) -> None:
    from app.interchange.presets import PRESETS

    im = sub.add_parser("import", help="import a spreadsheet (XLSX, CSV, TSV) through a preset")
    im.add_argument("file")
    im.add_argument("--preset", required=True, choices=sorted(PRESETS))
    im.add_argument(
        "--dry-run", action="store_true", help="report every row's problems; write nothing"
    )
    im.add_argument(
        "--as-of", type=date.fromisoformat, help="the day the file describes (default today)"
    )
    im.add_argument(
        "--registered-from",
        type=date.fromisoformat,
        help="registrations start here when the file gives no date",
    )
    im.add_argument(
        "--region", help="region code for new institutions whose code's region has no profile"
    )
    im.add_argument("--sheet", help="the workbook's sheet (default: the first the preset reads)")
    im.add_argument(
        "--encoding", help="a CSV's encoding (default: detected among UTF-8, GBK, GB18030)"
    )
    im.set_defaults(fn=cmd_import)
    t = sub.add_parser("template", help="write the blank import template (XLSX with instructions)")
    t.add_argument("file")
    t.set_defaults(fn=cmd_template)
