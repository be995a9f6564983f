"""The check use case as an adapter calls it (app.checks.usecase): claim lines in, one structured
verdict per line out — the same decision, reasons and data versions the HTTP contract answers —
with every answered line handed to the decision sink and every sanctioned one noted as an
attempt, and a line the key may not check refusing the whole request."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.auth.keys import Principal
from app.checks.lines import Line
from app.checks.usecase import CheckUseCase
from app.checks.verdicts import Verdict
from app.errors import Forbidden
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY = "2026-11-22"
GATEWAY = Principal(key_id=1, role="gateway", institutions=frozenset(), prefix="t")
HIS = Principal(key_id=2, role="his", institutions=frozenset({f.INST}), prefix="t")


class Collected:
    """A decision sink and an attempt sink that keep what they are given."""

    def __init__(self) -> None:
        self.lines: list[tuple[Line, Verdict, str, str, str]] = []
        self.attempts: list[tuple[Line, tuple[str, ...], str]] = []
        self.keys: list[int] = []

    def answered(
        self,
        key_id: int,
        lines: Sequence[Line],
        verdicts: Sequence[Verdict],
        decision_ids: Sequence[bytes],
        source: str,
        checked_at: str,
    ) -> None:
        self.keys.append(key_id)
        for line, verdict, did in zip(lines, verdicts, decision_ids, strict=True):
            self.lines.append((line, verdict, source, checked_at, did.decode()))

    def note(self, line: Line, codes: tuple[str, ...], decision_id: str) -> None:
        self.attempts.append((line, codes, decision_id))


def _lines() -> list[Line]:
    return [
        Line(f.INST, f.DEPT, f.DOC, DAY, False, "claim-1"),  # suspended: deny
        Line(f.INST, f.DEPT, "D370802000002", DAY, False, None),  # payable: allow
        Line(f.INST, f.DEPT, "D370802999999", DAY, False, None),  # unknown: deny
    ]


async def _world(h: Harness) -> None:
    await f.world(h)
    await f.practitioner(h, "D370802000002", name="李娜")
    await f.registration(h, "D370802000002")
    await f.agreement(h, "D370802000002")
    await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
    await h.synced()


async def _usecase(h: Harness) -> tuple[CheckUseCase, Collected]:
    """The world above, and a use case over the running service whose sinks collect."""
    await _world(h)
    rt, sink = h.runtime, Collected()
    usecase = CheckUseCase(
        rt.checks, sink, batch_max_lines=rt.settings.batch_max_lines, decisions=sink
    )
    return usecase, sink


async def test_verdicts_are_what_the_contract_answers_per_line(h: Harness) -> None:
    usecase, _ = await _usecase(h)
    got = await usecase.verdicts(GATEWAY, _lines())

    body = {
        "checks": [
            {
                "institution_code": ln.institution,
                "department_code": ln.department,
                "practitioner_code": ln.practitioner,
                "service_date": ln.day,
                **({"claim_id": ln.claim_id} if ln.claim_id else {}),
            }
            for ln in _lines()
        ]
    }
    r = await h.client.post("/v1/checks/batch", json=body, headers=h.auth("gateway"))
    assert r.status_code == 200, r.text
    http = r.json()["results"]

    assert [v.decision for v in got.lines] == ["deny", "allow", "deny"]
    for v, answer in zip(got.lines, http, strict=True):
        assert v.decision == answer["decision"]
        assert v.reasons == answer["reasons"]
        assert v.data_version == answer["data_version"]
        assert v.service_date == answer["service_date"] == DAY
        assert v.claim_id == answer.get("claim_id")
    assert got.lines[0].reasons[0]["code"] == "PRACTITIONER_SUSPENDED"
    assert got.lines[0].data_version["practitioner"] is not None
    assert got.source in ("cache", "database")
    # Each line its own decision id, each different from the HTTP answers' ids.
    ids = [v.decision_id for v in got.lines]
    assert len(set(ids)) == 3
    assert set(ids).isdisjoint(a["decision_id"] for a in http)


async def test_every_answered_line_reaches_the_decision_sink_and_sanctions_are_noted(
    h: Harness,
) -> None:
    usecase, sink = await _usecase(h)

    got = await usecase.verdicts(GATEWAY, _lines())
    raw = await usecase.answer_one(HIS, _lines()[1])

    assert [ln for ln, *_ in sink.lines] == [*_lines(), _lines()[1]]
    assert [did for *_, did in sink.lines[:3]] == [v.decision_id for v in got.lines]
    assert sink.lines[3][4].encode() in raw
    assert {src for _, _, src, _, _ in sink.lines[:3]} == {got.source}
    assert [v.allowed for _, v, *_ in sink.lines] == [False, True, False, True]
    assert sink.keys == [GATEWAY.key_id, HIS.key_id]  # once per request, with its key
    # The suspended practitioner's line is the one sanctioned attempt.
    assert sink.attempts == [(_lines()[0], ("PRACTITIONER_SUSPENDED",), got.lines[0].decision_id)]


async def test_a_line_the_key_may_not_check_refuses_the_request_and_leaves_nothing(
    h: Harness,
) -> None:
    usecase, sink = await _usecase(h)
    lines = [*_lines(), Line("H37081100002", f.DEPT, f.DOC, DAY, False, None)]

    with pytest.raises(Forbidden) as refused:
        await usecase.verdicts(HIS, lines)
    assert refused.value.code == "INSTITUTION_FORBIDDEN"
    assert refused.value.field == "body.checks.3.institution_code"
    with pytest.raises(Forbidden):
        await usecase.answer_one(HIS, lines[3])
    assert sink.lines == []
    assert sink.attempts == []
