"""One request in the platform's shape, from its parsed body to its answer envelope.

3101/3102/2204/2301: the orders or fee rows become check lines (app.interfaces.national.orders,
.fees), judged by the check use case — the same authorisation (institution aliases resolved
first), verdicts, decision ids and sanctioned-attempt records as ``POST /v1/checks/batch`` —
and rendered the platform's way; each decision with findings is noted for the overrides
listing. 3103: the clerk's disposition is recorded (app.interfaces.national.dispositions).

Everything that stops a request is a :class:`~app.interfaces.national.envelope.Refused`,
answered ``infcode`` -1 with ``err_msg``; nothing is judged or recorded then. Knows no HTTP.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app import codes
from app.auth.keys import Principal
from app.checks.usecase import CHECK_ROLES, CheckUseCase, Verdicts
from app.errors import Forbidden, PayloadTooLarge, Unavailable
from app.interfaces.national import dispositions, fees, orders
from app.interfaces.national import envelope as e
from app.interfaces.national.findings import FindingRecorder
from app.interfaces.national.items import Item, too_many

_LINE = re.compile(r"body\.checks\.([0-9]+)\.").match
DEGRADED = "answered from PostgreSQL (source: database): the cache could not answer"
FORBIDDEN = (
    "this key may not check claims of this institution, nor reach another through a local "
    "code; nothing was judged"
)


class NationalService:
    def __init__(
        self,
        usecase: CheckUseCase,
        findings: FindingRecorder,
        engine: AsyncEngine,
        *,
        emergency: frozenset[str],
    ) -> None:
        self.usecase = usecase
        self.findings = findings
        self.engine = engine
        self.emergency = emergency

    async def handle(
        self, principal: Principal, body: Any, infno_in_path: str | None, received_at: str
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, answer envelope)."""
        try:
            self.authorise(principal)
            env = e.read(body, infno_in_path)
            if env.infno == "3103":
                return 200, e.answer(await self._dispose(principal, env), received_at)
            limit = self.usecase.batch_max_lines
            task_id = ""
            if env.infno in ("3101", "3102"):
                items, task_id = orders.read(env, self.emergency, limit)
            else:
                items = fees.read(env, self.emergency, limit)
            verdicts = await self._judge(principal, items)
        except e.Refused as exc:
            return exc.status, e.refusal(exc, received_at)
        for item, v, line in zip(items, verdicts.lines, verdicts.judged, strict=True):
            self.findings.note(env.infno, line, v, item.line.claim_id)
        output = (
            orders.render(items, verdicts, task_id)
            if env.infno in ("3101", "3102")
            else fees.render(items, verdicts)
        )
        warn = DEGRADED if verdicts.source == "database" else ""
        return 200, e.answer(output, received_at, warn)

    def authorise(self, principal: Principal) -> None:
        """Refuse a key of another role, before its body is read. (Over HTTP the route has
        refused it already, 403 as on every route; this keeps the service safe to call
        from elsewhere.)"""
        if principal.role not in CHECK_ROLES:
            raise e.Refused(
                "ROLE_FORBIDDEN",
                None,
                f"the national interface needs role his or gateway; the key has role "
                f"{principal.role}",
            )

    async def _judge(self, principal: Principal, items: list[Item]) -> Verdicts:
        try:
            return await self.usecase.verdicts(principal, [it.line for it in items])
        except Forbidden as exc:
            m = _LINE(exc.field or "")
            field = items[int(m[1])].institution_field if m else "fixmedins_code"
            raise e.Refused("INSTITUTION_FORBIDDEN", field, FORBIDDEN) from None
        except PayloadTooLarge:
            raise too_many(self.usecase.batch_max_lines, "input.data") from None
        except Unavailable as exc:
            raise e.Refused("GATE_UNAVAILABLE", None, exc.detail, status=503) from None

    async def _dispose(self, principal: Principal, env: e.Envelope) -> dict[str, Any]:
        if env.fixmedins_code is None:
            raise e.invalid("fixmedins_code", "is required")
        try:
            inst = await self.usecase.institution_for(
                principal, env.fixmedins_code, "fixmedins_code"
            )
        except Forbidden:
            raise e.Refused("INSTITUTION_FORBIDDEN", "fixmedins_code", FORBIDDEN) from None
        except Unavailable as exc:
            raise e.Refused("GATE_UNAVAILABLE", None, exc.detail, status=503) from None
        if not codes.is_national_institution(inst):
            raise e.Refused(
                "INSTITUTION_UNKNOWN", "fixmedins_code", "no institution is known under this code"
            )
        warn_type, warns = dispositions.read(env)
        result = await dispositions.record(
            self.engine,
            inst,
            warn_type,
            warns,
            opter=env.opter,
            api_key_id=principal.key_id,
            msgid=env.msgid,
        )
        return {"result": result}
