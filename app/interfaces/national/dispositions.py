"""3103 事前事中服务反馈服务: a clerk's disposition of an answer's findings.

``input.data`` (oepnhisC/OpenHIS-Server ``api/yibaofuzhu/shiqianfenxiAPI.py``, ``WarnDtos`` /
``FanKuiXinXi``; oepnhisC/OpenHis-Web ``src/views/yibao/ShiQianFenXi.vue`` builds ``warns`` from
the 3101 ``result`` it showed): ``warn_type`` (反馈类型: 1 事前, 2 事中), ``warns[]`` →
``warn_rslt_id`` (违规标识, "取自jr_id": our decision id), ``dspo_way`` (处理方式: 1 继续执行医嘱,
2 返回修改医嘱), ``dspo_way_rea`` (处理原因, required when continuing).

A decision takes one disposition, recorded once against it and the envelope's institution
(``dispositions``): a retry of the same disposition is answered ``unchanged``; a different one
for a decision already disposed, or two different ones in one request, refuses the whole
request (``DISPOSITION_CONFLICT``, nothing recorded). A HIS that sends one warn per finding of
an order (as the public client above does) sends the order's decision several times: the same
way, and reasons that are kept together. Recorded before the answer is sent: a disposition
acknowledged is never lost. The operator's name (``opter_name``) is not kept — a name is
personal data; the operator's code (``opter``) is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.any_of import any_of
from app.db.tables import dispositions
from app.interfaces.national import envelope as e

_DECISION_ID = re.compile(r"[0-9a-f]{32}").fullmatch
CONFLICT = "DISPOSITION_CONFLICT"


@dataclass(slots=True)
class Warn:
    decision_id: str
    way: int  # 1 continue, 2 return and modify
    reason: str | None
    field: str  # the first warn naming this decision: what a conflict names


def read(env: e.Envelope) -> tuple[str, list[Warn]]:
    """``warn_type`` and the warns, one per decision, in the order first named."""
    at = env.data_at
    warn_type = e.text(env.data, "warn_type", at, max_len=3)
    if warn_type not in ("1", "2"):
        raise e.invalid(at + "warn_type", "must be 1 (事前) or 2 (事中)")
    by_decision: dict[str, Warn] = {}
    for i, w in enumerate(e.objects(env.data, "warns", at, limit=1000)):
        wa = f"{at}warns.{i}."
        did = e.text(w, "warn_rslt_id", wa).lower()
        if not _DECISION_ID(did):
            raise e.invalid(wa + "warn_rslt_id", "is not a jr_id claimgate answered")
        way = e.text(w, "dspo_way", wa, max_len=1)
        if way not in ("1", "2"):
            raise e.invalid(wa + "dspo_way", "must be 1 (继续执行) or 2 (返回修改)")
        reason = e.text(w, "dspo_way_rea", wa, required=way == "1", max_len=500)
        seen = by_decision.get(did)
        if seen is None:
            by_decision[did] = Warn(did, int(way), reason, wa + "dspo_way")
        elif seen.way != int(way):
            raise e.Refused(
                CONFLICT,
                wa + "dspo_way",
                "this decision (jr_id) is disposed otherwise earlier in the request; one "
                "decision takes one disposition",
            )
        elif reason and reason not in (seen.reason or "").split("；"):
            seen.reason = f"{seen.reason}；{reason}" if seen.reason else reason
    return warn_type, list(by_decision.values())


async def record(
    engine: AsyncEngine,
    institution: str,
    warn_type: str,
    warns: list[Warn],
    *,
    opter: str | None,
    api_key_id: int,
    msgid: str,
) -> list[dict[str, Any]]:
    """Record the warns in one transaction; each answered ``recorded`` or ``unchanged``."""
    rows = [
        {
            "decision_id": w.decision_id,
            "institution_code": institution,
            "warn_type": warn_type,
            "dspo_way": w.way,
            "reason": w.reason,
            "opter": opter,
            "api_key_id": api_key_id,
            "msgid": msgid,
        }
        for w in warns
    ]
    d = dispositions
    try:
        async with engine.begin() as conn:
            new = {
                did
                for (did,) in await conn.execute(
                    insert(d)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=[d.c.decision_id, d.c.institution_code])
                    .returning(d.c.decision_id)
                )
            }
            before = [w for w in warns if w.decision_id not in new]
            stored = {
                did: (way, reason)
                for did, way, reason in await conn.execute(
                    select(d.c.decision_id, d.c.dspo_way, d.c.reason).where(
                        d.c.institution_code == institution,
                        any_of(d.c.decision_id, [w.decision_id for w in before]),
                    )
                )
            }
            for w in before:
                if stored.get(w.decision_id) != (w.way, w.reason):
                    raise e.Refused(
                        CONFLICT,
                        w.field,
                        "this decision (jr_id) was disposed otherwise before; one decision "
                        "takes one disposition",
                    )
    except SQLAlchemyError as exc:
        raise e.Refused(
            "DATABASE_UNAVAILABLE",
            None,
            f"the agency database could not record it ({type(exc).__name__}); nothing was "
            "recorded — retry",
            status=503,
        ) from None
    return [
        {
            "warn_rslt_id": w.decision_id,
            "dspo_way": str(w.way),
            "status": "recorded" if w.decision_id in new else "unchanged",
        }
        for w in warns
    ]
