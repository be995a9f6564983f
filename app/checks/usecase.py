"""The check use case: may this key check these lines, what do the documents say about each,
the answers, and what every answered line leaves behind.

Every way in calls this and nothing else — the routes (app.checks.endpoints), the fast path
(app.checks.fastpath), and an adapter for another interface shape (the national platform's
3101/3102/2204 envelopes: parse them into :class:`~app.checks.lines.Line`, call
:meth:`CheckUseCase.verdicts`, render its own envelope). None of them calls another.

One request, in order:

1. a batch within ``CLAIMGATE_BATCH_MAX_LINES`` (413 ``BATCH_TOO_LARGE``);
2. local institution codes resolved through the agency's institution aliases
   (:meth:`~app.checks.service.CheckService.institutions_of`): a line whose institution is not
   shaped like a national code is judged as the institution its alias names, or, with no such
   alias, as the code it is (``INSTITUTION_UNKNOWN``). A national code is never looked up — the
   cost to a national line is one pattern match;
3. authorise: each line's institution, as resolved, one the key may check (403
   ``INSTITUTION_FORBIDDEN``, the whole request refused) — so a ``his`` key reaches its own
   institutions through their aliases, and nothing else through anyone's. The key's role is the
   caller's business (:data:`CHECK_ROLES`): a route refuses another role before it reads a body.
4. the verdicts, from :class:`~app.checks.service.CheckService` (remembered verdicts, the L1,
   Redis, or PostgreSQL: ``source``; ``database`` also when an alias was read from there).
5. each line answered: a decision id, the request's ``checked_at`` and ``source``; a line whose
   reasons hold a sanction is noted to the :class:`AttemptSink` (app.checks.attempts: billing
   under a sanctioned code is itself a violation); the request's lines go to the
   :class:`DecisionSink` (the decision log) and the :class:`LineCounter` (the metrics) when
   there are.

Two forms of the same answers: ``answer_one`` and ``answer_batch`` give the contract's JSON
bytes, spliced from remembered verdicts (the hot path); ``verdicts`` gives :class:`LineVerdict`
objects read back from those bytes (a few microseconds a line), so an adapter sees exactly what
the contract answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, Protocol, TypedDict

import orjson

from app.auth.keys import Principal
from app.cache.shapes import new_entry
from app.checks.lines import Line
from app.checks.reasons import Reason
from app.checks.service import CheckService
from app.checks.verdicts import Verdict, decision_id, render, stamp
from app.errors import Forbidden, PayloadTooLarge
from app.observability.context import note

CHECK_ROLES = ("his", "gateway")
# Lines arrive normalised (upper case, ASCII digits): anything else is a local code. The answer
# is remembered per code (a city has a few thousand institutions), so a national line costs a
# dict lookup, not a pattern match: 15 ns against 110 (docs/performance.md).
_NATIONAL = re.compile(r"[HP][0-9]{11}").fullmatch
_SHAPES: dict[str, bool] = {}


def _national(code: str) -> bool:
    known = _SHAPES.get(code)
    if known is None:
        if len(_SHAPES) >= 65_536:  # bounded: codes nobody knows may be sent at will
            _SHAPES.clear()
        known = _SHAPES[code] = _NATIONAL(code) is not None
    return known


class AttemptSink(Protocol):
    """Receives each answered line with sanction codes among its reasons (Verdict.sanctions).
    Called on the hot path: it must only append to memory (app.checks.attempts buffers)."""

    def note(self, line: Line, codes: tuple[str, ...], decision_id: str) -> None: ...


class DecisionSink(Protocol):
    """Receives every answered request's lines, once, in answer order: the decision log
    (app.decisions.log).

    ``verdicts[i].core`` is line i's decision, reasons and data versions as JSON; with
    ``source``, ``checked_at`` and ``decision_ids[i]`` it is the whole answer but the line's own
    fields. Called on the hot path, before the answer is sent, once per request: append to
    memory and write elsewhere. ``lines[i].practitioner`` is the code as sent — it may be a
    resident ID number, which must be turned into its token
    (:func:`app.codes.practitioner_token`) before it is kept."""

    def answered(
        self,
        key_id: int,
        lines: Sequence[Line],
        verdicts: Sequence[Verdict],
        decision_ids: Sequence[bytes],
        source: str,
        checked_at: str,
    ) -> None: ...


class LineCounter(Protocol):
    """Counts answered lines for the metrics (app.observability.metrics.LineTally)."""

    def count(self, verdicts: Sequence[Verdict], source: str) -> None: ...


class DataVersion(TypedDict):
    """The projection versions a verdict was judged on (None: no such document)."""

    institution: int | None
    practitioner: int | None


class LineVerdict(NamedTuple):
    """One line's answer as the contract states it (docs/contract.md), for an adapter. A tuple,
    built with ``new_entry`` (app.cache.shapes): a tenth of a frozen dataclass's cost, and a
    3101 builds twenty."""

    decision: Literal["allow", "deny"]
    reasons: list[Reason]
    data_version: DataVersion
    decision_id: str
    service_date: str
    claim_id: str | None


@dataclass(frozen=True, slots=True)
class Verdicts:
    """The answers to one request, in line order; ``judged``: the lines as judged (local
    institution codes resolved)."""

    lines: list[LineVerdict]
    source: str  # "cache" or "database" (degraded)
    checked_at: str
    judged: Sequence[Line]


class CheckUseCase:
    def __init__(
        self,
        checks: CheckService,
        attempts: AttemptSink,
        *,
        batch_max_lines: int,
        decisions: DecisionSink | None = None,
        counter: LineCounter | None = None,
    ) -> None:
        self.checks = checks
        self.attempts = attempts
        self.batch_max_lines = batch_max_lines
        self.decisions = decisions
        self.counter = counter
        # A request of one line, the busiest of all, is handed over without the lists a batch
        # needs where the sink offers that (``answered_one``, ``count_one``).
        self._log_one: Callable[[int, Line, Verdict, bytes, str, str], None] | None = None
        if decisions is not None:
            self._log_one = getattr(decisions, "answered_one", None) or (
                lambda k, ln, v, did, src, at: decisions.answered(k, (ln,), (v,), (did,), src, at)
            )
        self._count_one: Callable[[Verdict, str], None] | None = None
        if counter is not None:
            self._count_one = getattr(counter, "count_one", None) or (
                lambda v, src: counter.count((v,), src)
            )

    async def answer_one(self, principal: Principal, line: Line) -> bytes:
        """The answer to one check, as the contract's JSON bytes."""
        degraded = False
        if not (_SHAPES.get(line.institution) or _national(line.institution)):
            (line,), degraded = await self._resolved([line])
        if not principal.may_check(line.institution):
            raise Forbidden(
                "this key may not check claims of this institution; it is bound to "
                f"{', '.join(sorted(principal.institutions))}",
                field="body.institution_code",
                code="INSTITUTION_FORBIDDEN",
            )
        verdict, source = await self.checks.check_one(line)
        if degraded:
            source = "database"
        # _stamped for one line, without its lists: the busiest request of all
        checked_at, head = stamp(source)
        did = decision_id()
        if verdict.sanctions:
            self.attempts.note(line, verdict.sanctions, did.decode())
        if self._log_one is not None:
            self._log_one(principal.key_id, line, verdict, did, source, checked_at)
        if self._count_one is not None:
            self._count_one(verdict, source)
        note("decision_id", did.decode())  # the request's log line names it
        return render(verdict, head, did, line.day, line.claim_id)

    async def answer_batch(self, principal: Principal, lines: Sequence[Line]) -> bytes:
        """The answers to a batch, in order, as the contract's JSON bytes."""
        lines, degraded = await self._authorised(principal, lines)
        answers, source, _ = await self._answers(principal, lines, degraded)
        return b'{"results":[' + b",".join(answers) + b'],"source":"%s"}' % source.encode()

    async def verdicts(self, principal: Principal, lines: Sequence[Line]) -> Verdicts:
        """The same answers as objects, for an adapter that renders its own envelope. The
        lines are judged with their institution codes resolved; an adapter that refers to a
        line's institution keeps its own copy of the lines."""
        lines, degraded = await self._authorised(principal, lines)
        answers, source, checked_at = await self._answers(principal, lines, degraded)
        parsed = orjson.loads(b"[" + b",".join(answers) + b"]")  # one parse, not one a line
        out = [
            new_entry(
                LineVerdict,
                (
                    p["decision"],
                    p["reasons"],
                    p["data_version"],
                    p["decision_id"],
                    p["service_date"],
                    p.get("claim_id"),
                ),
            )
            for p in parsed
        ]
        return Verdicts(out, source, checked_at, lines)

    async def institution_for(self, principal: Principal, code: str, field: str) -> str:
        """The institution a request names, resolved like a line's and authorised like one
        (403 ``INSTITUTION_FORBIDDEN`` naming ``field``); a local code nobody knows comes back
        as it is. For an adapter's request that is about an institution but judges no line."""
        if not _national(code):
            found, _ = await self.checks.institutions_of([code])
            code = found[code] or code
        if not principal.may_check(code):
            raise Forbidden(
                "this key may not act for this institution",
                field=field,
                code="INSTITUTION_FORBIDDEN",
            )
        return code

    async def _authorised(
        self, principal: Principal, lines: Sequence[Line]
    ) -> tuple[Sequence[Line], bool]:
        """The lines within the limit, institutions resolved and authorised; and whether an
        alias was read from PostgreSQL (the answer's source is then ``database``)."""
        self._within_limit(lines)  # before any alias is read for them
        degraded = False
        # The distinct codes: a batch names a few institutions, however many lines it has.
        if not all(_SHAPES.get(c) or _national(c) for c in {ln.institution for ln in lines}):
            lines, degraded = await self._resolved(lines)
        self._may_check_each(principal, lines)
        return lines, degraded

    async def _resolved(self, lines: Sequence[Line]) -> tuple[list[Line], bool]:
        """Each line with a local institution code rewritten to the national code its alias
        names; one without an alias is left as sent (judged ``INSTITUTION_UNKNOWN``)."""
        local = sorted(c for c in {ln.institution for ln in lines} if not _national(c))
        found, source = await self.checks.institutions_of(local)
        out = [
            ln if (code := found.get(ln.institution)) is None else replace(ln, institution=code)
            for ln in lines
        ]
        return out, source == "database"

    def _within_limit(self, lines: Sequence[Line]) -> None:
        limit = self.batch_max_lines
        if len(lines) > limit:
            raise PayloadTooLarge(
                f"a batch holds at most {limit} lines; this one has {len(lines)} — split it",
                field="body.checks",
                code="BATCH_TOO_LARGE",
            )

    def authorise(self, principal: Principal, lines: Sequence[Line]) -> None:
        """Refuse the whole request unless the key may check every line, within the limit.
        ``lines`` carry resolved institution codes."""
        self._within_limit(lines)
        self._may_check_each(principal, lines)

    def _may_check_each(self, principal: Principal, lines: Sequence[Line]) -> None:
        for i, ln in enumerate(lines):
            if not principal.may_check(ln.institution):
                raise Forbidden(
                    f"line {i}: this key may not check claims of this institution; "
                    "the whole batch was refused",
                    field=f"body.checks.{i}.institution_code",
                    code="INSTITUTION_FORBIDDEN",
                )

    async def _answers(
        self, principal: Principal, lines: Sequence[Line], degraded: bool = False
    ) -> tuple[list[bytes], str, str]:
        """Judge, stamp and render; note what each answered line leaves behind."""
        verdicts, source = await self.checks.check(lines)
        return self._stamped(principal, lines, verdicts, "database" if degraded else source)

    def _stamped(
        self,
        principal: Principal,
        lines: Sequence[Line],
        verdicts: Sequence[Verdict],
        source: str,
    ) -> tuple[list[bytes], str, str]:
        """Stamp and render the verdicts; note what each answered line leaves behind."""
        checked_at, head = stamp(source)
        attempts, decisions = self.attempts, self.decisions
        out = []
        dids = []
        for ln, v in zip(lines, verdicts, strict=True):
            did = decision_id()
            dids.append(did)
            out.append(render(v, head, did, ln.day, ln.claim_id))
            if v.sanctions:
                attempts.note(ln, v.sanctions, did.decode())
        if decisions is not None:
            decisions.answered(principal.key_id, lines, verdicts, dids, source, checked_at)
        if self.counter is not None:
            self.counter.count(verdicts, source)
        if len(dids) == 1:
            note("decision_id", dids[0].decode())  # the request's log line names it
        return out, source, checked_at
