"""An import from end to end, for the API and the CLI alike: read the file (:mod:`.parse`),
check its records against the database (a dry run stops here, having written nothing), then
write them through :meth:`app.admin.writes.Writes.run` — the one transaction, ledger, recompute,
outbox, audit and mirror of every other write.

All or nothing: the real import checks again inside its transaction and writes only when no row
has a problem; one problem and nothing is written. One transaction, not chunks committed one by
one: a 100,000-line roster is a few hundred megabytes of row versions for PostgreSQL, well within
what one transaction holds, and an import cut in the middle would leave a half roster that a
retry could not tell from a whole one (docs/interchange.md).

Safe to retry: unless the caller gives an ``Idempotency-Key``, the key is the SHA-256 of the file
and the import's options, so the same file imported twice is applied once and answered the
first answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin.unit_of_work import Audit, UnitOfWork
from app.admin.writes import Write, Writes, fingerprint
from app.errors import InvalidField
from app.fields import MIN_DATE
from app.interchange import roster_import, violations_import
from app.interchange.parse import Record, parse
from app.interchange.presets import PRESETS, Preset
from app.interchange.records import Finding, Person
from app.interchange.report import Refused, Report
from app.projection.ledger import WriteContext

SCOPE = "import"
PATH = "/v1/admin/imports"
Progress = Callable[[str, int, int], None]  # (phase, done, of)


@dataclass(frozen=True, slots=True)
class ImportRequest:
    data: bytes
    preset: str
    as_of: dt.date
    registered_from: dt.date = MIN_DATE
    region: str | None = None
    sheet: str | None = None
    charset: str | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def options(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "as_of": self.as_of.isoformat(),
            "registered_from": self.registered_from.isoformat(),
            "region": self.region,
            "sheet": self.sheet,
            "charset": self.charset,
            "sha256": self.digest,
        }

    def default_key(self) -> str:
        """The same file with the same options: the same key (a retry applies nothing)."""
        canonical = orjson.dumps(self.options(), option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(canonical).hexdigest()

    @property
    def source(self) -> str:
        """What a carried-over sanction cites: the preset and the file's digest (a file name
        may hold a person's name; the digest names the file exactly)."""
        return f"{self.preset} sha256:{self.digest[:12]}"


class ImportRefused(InvalidField):
    """Nothing was written: the file could not be read, or rows have problems (the report)."""

    def __init__(self, report: Report, *, unreadable: bool = False) -> None:
        n = len(report.problems)
        super().__init__(
            "the file could not be read as this preset; nothing was written"
            if unreadable
            else f"{n} problem(s) in the rows; nothing was written (the report names each)",
            field="body",
            code="IMPORT_UNREADABLE" if unreadable else "IMPORT_ROWS_INVALID",
            extra={"report": report.as_dict()},
        )


def preset_named(name: str) -> Preset:
    preset = PRESETS.get(name)
    if preset is None:
        raise InvalidField(
            f"no import preset has this name; presets: {', '.join(sorted(PRESETS))}",
            field="query.preset",
            code="PRESET_UNKNOWN",
        )
    return preset


def read(req: ImportRequest) -> tuple[Report, list[Record]]:
    """The file read under its preset (CPU only); :class:`ImportRefused` when unreadable."""
    try:
        return parse(req.data, preset_named(req.preset), charset=req.charset, sheet=req.sheet)
    except Refused as exc:
        raise ImportRefused(exc.report, unreadable=True) from None


async def _check(
    conn: Any,
    preset: Preset,
    records: list[Record],
    req: ImportRequest,
    report: Report,
    secret: str,
) -> roster_import.Plan | violations_import.Plan:
    if preset.kind == "roster":
        people = [r for r in records if isinstance(r, Person)]
        opts = roster_import.Options(req.as_of, req.registered_from, req.source, req.region)
        return await roster_import.check(conn, people, opts, report, secret)
    findings = [r for r in records if isinstance(r, Finding)]
    return await violations_import.check(conn, findings, report, secret)


async def dry_run(
    engine: AsyncEngine, req: ImportRequest, parsed: tuple[Report, list[Record]], secret: str
) -> dict[str, Any]:
    """The report the import would give, and the counts it would write; writes nothing."""
    report, records = parsed
    async with engine.connect() as conn:
        await _check(conn, preset_named(req.preset), records, req, report, secret)
        await conn.rollback()
    return {**report.as_dict(), "dry_run": True, "applied": False, "sha256": req.digest}


async def run(
    writes: Writes,
    req: ImportRequest,
    parsed: tuple[Report, list[Record]],
    context: WriteContext,
    secret: str,
    *,
    idempotency_key: str | None = None,
    progress: Progress | None = None,
) -> tuple[int, dict[str, Any]]:
    """The import, all or nothing, once per key; (status, answer). Rows refused while
    reading are still checked against the database with the others, so the report names
    every problem at once."""
    report, records = parsed
    key = idempotency_key or req.default_key()
    write = Write(context, SCOPE, 201, key, fingerprint(secret, PATH, req.options()))
    return await writes.run(write, _apply, req, report, records, secret, progress)


async def _apply(
    uow: UnitOfWork,
    req: ImportRequest,
    report: Report,
    records: list[Record],
    secret: str,
    progress: Progress | None,
) -> dict[str, Any]:
    preset = preset_named(req.preset)
    if progress is not None:
        progress("检查", 0, len(records))
    plan = await _check(uow.conn, preset, records, req, report, secret)
    if not report.ok:
        raise ImportRefused(report)
    if progress is not None:
        progress("写入", len(records), len(records))
        report_ = progress
        uow.on_progress(lambda done, of: report_("重新计算", done, of))
    audit = Audit(f"import.{preset.name}", f"sha256:{req.digest[:16]}", report.counts)
    if isinstance(plan, roster_import.Plan):
        await roster_import.apply(uow, plan, audit)
    else:
        await violations_import.apply(uow, plan, audit)
    await uow.flush()  # now: a failure of the recompute refuses the import before the key
    return {
        **report.as_dict(),
        "dry_run": False,
        "applied": True,
        "sha256": req.digest,
        "projections_written": len(uow.written),
    }
