"""``claimgate decisions replay``: the logged lines re-judged against today's truth.

After an appeal is upheld, a violation recorded late or a profile changed, the agency needs to
know which answers would now be different: ``deny→allow`` is a claim wrongly refused (the
hospital may re-submit it), ``allow→deny`` is money paid that the rules now refuse (to recover).
Each logged line is judged again as a check would judge it — the same documents (read from
PostgreSQL, the truth, not the mirror) and the same :func:`~app.checks.decide.decide` — for the
service date, department and emergency flag it was asked with, and compared with the decision it
got. Lines are read in chunks in log order and judged a chunk at a time (one read of the
documents per chunk), so memory stays flat whatever the period.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.checks.lines import Line
from app.checks.service import CheckService
from app.db.tables import decision_log as dl
from app.db.tables import practitioners

CHUNK = 2000
HEADER = (
    "change",
    "decision_id",
    "answered_at",
    "institution_code",
    "department_code",
    "practitioner_code",
    "service_date",
    "emergency",
    "claim_id",
    "was",
    "now",
    "reasons_was",
    "reasons_now",
)


@dataclass
class Replay:
    since: date
    lines: int = 0
    seconds: float = 0.0
    changed: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for c in self.changed:
            counts[c["change"]] = counts.get(c["change"], 0) + 1
        return {
            "since": self.since.isoformat(),
            "lines_rejudged": self.lines,
            "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds else None,
            "changed": len(self.changed),
            "deny_to_allow": counts.get("deny→allow", 0),
            "allow_to_deny": counts.get("allow→deny", 0),
        }

    def as_json(self) -> bytes:
        return orjson.dumps(
            {**self.summary(), "decisions": self.changed}, option=orjson.OPT_INDENT_2
        )

    def as_xlsx(self) -> bytes:
        from app.interchange.writers import xlsx

        rows = [
            [
                *(str(c[h]) if c[h] is not None else None for h in HEADER[:-2]),
                " ".join(c["reasons_was"]),
                " ".join(c["reasons_now"]),
            ]
            for c in self.changed
        ]
        summary = [[k, "" if v is None else str(v)] for k, v in self.summary().items()]
        return xlsx([("changed", HEADER, rows), ("summary", ("field", "value"), summary)])


async def replay(
    engine: AsyncEngine,
    checks: CheckService,
    *,
    since: date,
    institution: str | None = None,
    practitioner_token: str | None = None,
    chunk: int = CHUNK,
) -> Replay:
    """Every line logged from ``since`` on (the day it was answered), re-judged; the ones whose
    decision would now differ, in log order."""
    out = Replay(since)
    t0 = time.perf_counter()
    q = (
        select(dl, practitioners.c.display_code)
        .outerjoin(practitioners, practitioners.c.token == dl.c.practitioner_token)
        .where(dl.c.day >= since)
        .order_by(dl.c.day, dl.c.answered_at, dl.c.decision_id)
        .limit(chunk)
    )
    if institution is not None:
        q = q.where(dl.c.institution_code == institution)
    if practitioner_token is not None:
        q = q.where(dl.c.practitioner_token == practitioner_token)
    after: tuple[Any, ...] | None = None
    while True:
        page = q
        if after is not None:
            d, at, did = after
            page = q.where(
                or_(
                    dl.c.day > d,
                    and_(dl.c.day == d, dl.c.answered_at > at),
                    and_(dl.c.day == d, dl.c.answered_at == at, dl.c.decision_id > did),
                )
            )
        async with engine.connect() as conn:
            rows = list(await conn.execute(page))
        if not rows:
            break
        await _judge(checks, rows, out)
        last = rows[-1]
        after = (last.day, last.answered_at, last.decision_id)
        if len(rows) < chunk:
            break
    out.seconds = time.perf_counter() - t0
    return out


async def _judge(checks: CheckService, rows: Sequence[Any], out: Replay) -> None:
    lines = [
        Line(
            r.institution_code,
            r.department_code,
            r.practitioner_token,
            r.service_date.isoformat(),
            r.emergency,
            r.claim_id,
        )
        for r in rows
    ]
    verdicts = await checks.judge_from_database(lines, [r.practitioner_token for r in rows])
    out.lines += len(rows)
    for r, v in zip(rows, verdicts, strict=True):
        now = "allow" if v.allowed else "deny"
        if now == r.decision:
            continue
        out.changed.append(
            {
                "change": f"{r.decision}→{now}",
                "decision_id": r.decision_id,
                "answered_at": r.answered_at.isoformat(),
                "institution_code": r.institution_code,
                "department_code": r.department_code,
                "practitioner_code": r.display_code or r.practitioner_token,
                "service_date": r.service_date.isoformat(),
                "emergency": r.emergency,
                "claim_id": r.claim_id,
                "was": r.decision,
                "now": now,
                "reasons_was": list(r.reasons),
                "reasons_now": list(v.codes),
            }
        )
