"""A small typed client for claimgate: the check contract (docs/contract.md) and the national
platform's shapes (docs/integrating-his.md). It needs httpx and nothing else of claimgate, so an
integrator may copy this one file.

    async with Client("https://gate.example", key) as gate:
        a = await gate.check("H37080200001", "A03", "D370802000001", "2026-11-22")
        if not a.allowed: ...
        ans = await gate.national(envelope("3101", data, fixmedins_code="011134"))
        for f in ans.findings(): ...            # one per finding; none: every order may be paid

A refusal is raised: :class:`ClaimgateError` for a problem+json answer (a key, the transport, a
malformed check), :class:`NationalRefused` for an envelope answered ``infcode`` -1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, NotRequired, TypedDict

import httpx

BEIJING = timezone(timedelta(hours=8))


class ClaimgateError(Exception):
    """An answer in application/problem+json: ``code`` is stable (docs/contract.md)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('detail')}")
        self.status = status
        self.code: str = body.get("code", "")
        self.detail: str = body.get("detail", "")
        errors = body.get("errors") or [{}]
        self.field: str | None = errors[0].get("field")


class NationalRefused(Exception):
    """An envelope answered ``infcode`` -1: ``err_msg`` is ``"<CODE>: <field>: <message>"``."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        self.status = status
        self.err_msg: str = answer.get("err_msg", "")
        self.answer = answer
        parts = self.err_msg.split(": ", 2)
        self.code = parts[0]
        self.field = parts[1] if len(parts) == 3 else None
        super().__init__(f"{status} infcode {answer.get('infcode')}: {self.err_msg}")


class CheckLine(TypedDict):
    institution_code: str
    department_code: str
    practitioner_code: str
    service_date: NotRequired[str]
    emergency: NotRequired[bool]
    claim_id: NotRequired[str]


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    blocking: bool
    message: str
    rule: str | None
    start: str | None  # "from": the interval behind the finding, [start, end)
    end: str | None
    exempted: bool


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    decision: Literal["allow", "deny"]
    reasons: list[Reason]
    source: str
    decision_id: str
    service_date: str
    claim_id: str | None
    raw: dict[str, Any]

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @classmethod
    def of(cls, a: dict[str, Any]) -> CheckAnswer:
        reasons = [
            Reason(
                r["code"],
                r["blocking"],
                r["message"],
                r.get("rule"),
                r.get("from"),
                r.get("to"),
                bool(r.get("exempted")),
            )
            for r in a["reasons"]
        ]
        return cls(
            a["decision"],
            reasons,
            a["source"],
            a["decision_id"],
            a["service_date"],
            a.get("claim_id"),
            a,
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding the platform's way (an entry of 3101 ``output.result`` or of a 2204 row's
    ``vola_dtos``)."""

    jr_id: str
    rule_id: str
    rule_name: str
    vola_cont: str
    sev_deg: str  # "1" blocking (明确违规), "3" not (轻度可疑)
    vola_evid: str
    vola_amt: float
    rx_id: str | None  # 3101/3102: the order

    @property
    def blocking(self) -> bool:
        return self.sev_deg == "1"


@dataclass(frozen=True, slots=True)
class FeeRow:
    feedetl_sn: str
    mdtrt_id: str
    jr_id: str
    sev_deg: str  # "" no finding: the row may be paid
    memo: str
    findings: list[Finding]


@dataclass(frozen=True, slots=True)
class NationalAnswer:
    infcode: int
    warn_msg: str
    output: dict[str, Any]
    raw: dict[str, Any]

    def findings(self) -> list[Finding]:
        """3101/3102: every finding, in order; an order none names may be paid."""
        return [
            _finding(r, r["jr_id"], r["judge_result_detail_dtos"][0].get("rx_id"))
            for r in self.output.get("result", [])
        ]

    def fee_rows(self) -> list[FeeRow]:
        """2204/2301: one per row, in order."""
        return [
            FeeRow(
                r["feedetl_sn"],
                r["mdtrt_id"],
                r["jr_id"],
                r["sev_deg"],
                r["memo"],
                [_finding(v, r["jr_id"], None) for v in r["vola_dtos"]],
            )
            for r in self.output.get("result", [])
        ]


def _finding(r: dict[str, Any], jr_id: str, rx_id: str | None) -> Finding:
    return Finding(
        jr_id,
        r["rule_id"],
        r["rule_name"],
        r["vola_cont"],
        r["sev_deg"],
        r["vola_evid"],
        r["vola_amt"],
        rx_id,
    )


def envelope(
    infno: str,
    data: dict[str, Any],
    *,
    fixmedins_code: str,
    opter: str = "",
    opter_name: str = "",
    msgid: str | None = None,
    **members: Any,
) -> dict[str, Any]:
    """A message as HIS code builds it for the platform: ``msgid`` is the institution code, the
    time (yyyyMMddHHmmss, Beijing) and four digits; ``members`` adds or replaces any other."""
    now = datetime.now(BEIJING)
    return {
        "infno": infno,
        "msgid": msgid or f"{fixmedins_code}{now:%Y%m%d%H%M%S}{random.randrange(10_000):04d}",
        "mdtrtarea_admvs": "",
        "insuplc_admdvs": "",
        "recer_sys_code": "",
        "dev_no": "",
        "dev_safe_info": "",
        "cainfo": "",
        "signtype": "",
        "infver": "V1.0",
        "opter_type": "1",
        "opter": opter,
        "opter_name": opter_name,
        "inf_time": f"{now:%Y-%m-%d %H:%M:%S}",
        "fixmedins_code": fixmedins_code,
        "fixmedins_name": "",
        "sign_no": "",
        "input": {"data": data},
        **members,
    }


class Client:
    """``base_url`` and ``key``, or an ``http`` client of your own (its base URL is used)."""

    def __init__(
        self,
        base_url: str = "",
        key: str = "",
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._own = http is None
        self.http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.headers = {"Authorization": f"Bearer {key}"}

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self.http.aclose()

    async def _post(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)

    async def check(
        self,
        institution_code: str,
        department_code: str,
        practitioner_code: str,
        service_date: str | None = None,
        *,
        emergency: bool = False,
        claim_id: str | None = None,
    ) -> CheckAnswer:
        line: dict[str, Any] = {
            "institution_code": institution_code,
            "department_code": department_code,
            "practitioner_code": practitioner_code,
            "emergency": emergency,
        }
        if service_date is not None:
            line["service_date"] = service_date
        if claim_id is not None:
            line["claim_id"] = claim_id
        r = await self._post("/v1/checks", line)
        return CheckAnswer.of(_json(r))

    async def check_batch(self, lines: list[CheckLine]) -> list[CheckAnswer]:
        r = await self._post("/v1/checks/batch", {"checks": lines})
        return [CheckAnswer.of(a) for a in _json(r)["results"]]

    async def national(self, message: dict[str, Any], *, dispatch: bool = False) -> NationalAnswer:
        """Send a platform message to ``/v1/national/<infno>`` (``dispatch``: to
        ``/v1/national``, routed by its ``infno``). ``infcode`` -1 raises
        :class:`NationalRefused`."""
        path = "/v1/national" if dispatch else f"/v1/national/{message.get('infno')}"
        r = await self._post(path, message)
        if r.headers.get("content-type", "").startswith("application/problem+json"):
            raise ClaimgateError(r.status_code, r.json())
        body: dict[str, Any] = r.json()
        if body.get("infcode") != 0:
            raise NationalRefused(r.status_code, body)
        return NationalAnswer(body["infcode"], body["warn_msg"], body["output"], body)


def _json(r: httpx.Response) -> dict[str, Any]:
    if r.status_code != 200:
        raise ClaimgateError(r.status_code, r.json())
    out: dict[str, Any] = r.json()
    return out
