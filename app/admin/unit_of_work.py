"""The unit of work a write's service function is handed (by app.admin.writes, which commits).

It holds the transaction's connection, who is writing, and the recompute of the projections.
Its one method, :meth:`UnitOfWork.record`, takes a change once and makes all three records of
it — the ledger event, the audit row and the subjects to re-judge — so an event can never be
written without the recompute that projects it. A service function reads::

    await uow.conn.execute(...)             # the entity change, with its own SQL
    await uow.record(                       # the event, its audit row, who is re-judged
        "department_action", payload,
        institution=inst, department=dept, occurred_on=body.start,
        audit=Audit(f"department.{body.action}", f"{inst}/{dept}"),
    )
    return {...}                            # the answer; the committer recomputes and commits

Subjects: an event naming a practitioner re-judges that practitioner (and, through the outcome,
every institution it changes); one naming an institution re-judges the institution (its
departments are in its document); one naming both, both. Writes that answer with what they changed (violations,
appeals, exams, bonuses) call :meth:`UnitOfWork.flush` between reading the outcomes before and
after. A bulk import records its events set-based with :meth:`UnitOfWork.record_many`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.admin import lookups
from app.projection import ledger
from app.projection.ledger import LedgerEntry, WriteContext
from app.projection.recompute import Recompute
from app.projection.store import Written

# Event kinds the institution's own judgement (app.policy.institution) never reads from its
# ledger: a practitioner's manual action reaches it only as part of their outcome.
THROUGH_OUTCOME = frozenset({"practitioner_action"})


@dataclass(frozen=True, slots=True)
class Audit:
    """The audit row of a change: the action (``practitioner.suspend``), its target (a code, an
    id — never an ID number in clear) and the change as the log keeps it (by default the
    event's payload)."""

    action: str
    target: str
    change: dict[str, Any] | None = None


class UnitOfWork:
    def __init__(self, conn: AsyncConnection, context: WriteContext) -> None:
        self.conn = conn
        self.context = context
        self._recompute = Recompute(conn)

    async def record(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        audit: Audit,
        practitioner: str | None = None,
        institution: str | None = None,
        department: str | None = None,
        occurred_on: date | None = None,
        alias: str | None = None,
        institution_alias: str | None = None,
        also_practitioners: Iterable[str] = (),
    ) -> int:
        """Append the event, write its audit row, and mark its subjects for the recompute;
        return the event's id.

        ``alias``: a practitioner alias's local code at ``institution`` whose document must be
        rewritten. ``institution_alias``: an agency-wide local institution code whose document
        must be rewritten. ``also_practitioners``: practitioners re-judged beyond the event's
        own subject (an institution's staff when its region, and so its profile, changes)."""
        if alias is not None and institution is None:
            raise ValueError("an alias is an institution's: pass institution= with alias=")
        entry = LedgerEntry(kind, payload, practitioner, institution, department, occurred_on)
        change = payload if audit.change is None else audit.change
        event_id = await ledger.append(
            self.conn, self.context, entry, (audit.action, audit.target, change)
        )
        self._mark(entry)
        if alias is not None and institution is not None:
            self._recompute.aliases.add((institution, alias))
        if institution_alias is not None:
            self._recompute.institution_aliases.add(institution_alias)
        self._recompute.practitioners.update(also_practitioners)
        return event_id

    async def record_many(
        self,
        entries: Sequence[LedgerEntry],
        *,
        audit: Audit,
        aliases: Iterable[tuple[str, str]] = (),
        institution_aliases: Iterable[str] = (),
    ) -> None:
        """:meth:`record` set-based, for a bulk import: every event, one audit row for them all
        (``audit.change`` says what was imported), every subject marked; ``aliases``
        (institution, local code) and ``institution_aliases`` as ``record``'s ``alias`` and
        ``institution_alias``."""
        await ledger.append_many(self.conn, self.context, entries)
        await self._audit(audit, {})
        for entry in entries:
            self._mark(entry)
        self._recompute.aliases.update(aliases)
        self._recompute.institution_aliases.update(institution_aliases)

    async def record_unledgered(
        self,
        *,
        audit: Audit,
        practitioners: Iterable[str] = (),
        institutions: Iterable[str] = (),
    ) -> None:
        """A change the engine reads directly rather than from the ledger (the working-day
        calendar): its audit row, and everyone it re-judges."""
        await self._audit(audit, {})
        self._recompute.practitioners.update(practitioners)
        self._recompute.institutions.update(institutions)

    async def require_practitioner(self, code: str, secret: str, field: str) -> str:
        """The practitioner's token (a 404 naming ``field`` if unknown), their row locked until
        the commit: two writes about one practitioner are judged one after the other, each
        seeing the other. The recompute knows the lock is held and reads the practitioner with
        the rest of their inputs, a round trip fewer (issue 14)."""
        token = await lookups.require_practitioner(self.conn, code, secret, field, lock=True)
        self._recompute.held.add(token)
        return token

    async def require_practitioner_at(
        self, code: str, secret: str, field: str, institution: str, institution_field: str
    ) -> tuple[str, str, bool]:
        """:meth:`require_practitioner` and the institution's lookup in one statement:
        (token, the institution's profile id, whether they were ever registered there)."""
        found = await lookups.require_practitioner_at(
            self.conn, code, secret, field, institution, institution_field, lock=True
        )
        self._recompute.held.add(found[0])
        return found

    async def lock_practitioner(self, token: str) -> None:
        """:func:`app.admin.lookups.lock_practitioner`, told to the recompute."""
        await lookups.lock_practitioner(self.conn, token)
        self._recompute.held.add(token)

    async def flush(self) -> None:
        """Recompute now what was recorded so far, inside the transaction, so what the write
        reads next (stored outcomes) reflects it. The commit recomputes what comes after."""
        await self._recompute.run()

    def on_progress(self, report: Callable[[int, int], None]) -> None:
        """Be told (re-judged, of how many) as the recompute works through practitioners."""
        self._recompute.progress = report

    @property
    def written(self) -> list[Written]:
        """The projections written so far: (key, version, document)."""
        return self._recompute.written

    async def finish(self) -> list[Written]:
        """The committer's last step before the commit: recompute what is still marked, and
        return every projection this unit wrote (for the mirror)."""
        return await self._recompute.run()

    def _mark(self, entry: LedgerEntry) -> None:
        if entry.practitioner is not None:
            self._recompute.practitioners.add(entry.practitioner)
        if entry.institution is None:
            return
        if entry.practitioner is not None and entry.kind in THROUGH_OUTCOME:
            # The institution's judgement reads this event only through the practitioner's
            # outcome; the recompute re-judges it when the part of the outcome its rules read
            # changed (app.projection.recompute.staff_inputs). Re-judging a hospital reads
            # all its staff: it made one officer's action cost O(staff) (issue 14).
            return
        if entry.practitioner is not None and entry.kind == "violation":
            self._recompute.violation_sites.add(entry.institution)
            return
        self._recompute.institutions.add(entry.institution)

    async def _audit(self, audit: Audit, payload: dict[str, Any]) -> None:
        change = payload if audit.change is None else audit.change
        await ledger.append_audit(self.conn, self.context, audit.action, audit.target, change)
