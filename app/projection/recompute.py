"""Recomputing projections inside the write's own transaction.

A write appends its event, then calls :func:`practitioner` and/or :func:`institution`; each
locks its subject's row (so two writes about one practitioner are judged one after the other,
each seeing the other's event), runs the pure engine over the subject's whole ledger, and
writes the documents that changed together with their outbox rows.

Lock order is practitioners before institutions, each sorted, so writes never deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cache.layout import alias_key, institution_key, known_key, view_key
from app.db.tables import (
    aliases,
    calendar_overrides,
    departments,
    institutions,
    outcomes,
    practitioners,
)
from app.policy import (
    Agreement,
    Event,
    ManualAction,
    PractitionerOutcome,
    Profile,
    Registration,
    Violation,
    WorkingCalendar,
    evaluate_institution,
    evaluate_practitioner,
    load_profiles,
)
from app.projection import codec, docs, ledger
from app.projection.store import write_docs


@dataclass
class Recompute:
    """Collects what one write touched and recomputes it once, at the end of the write."""

    conn: AsyncConnection
    practitioners: set[str] = field(default_factory=set)
    institutions: set[str] = field(default_factory=set)
    aliases: set[tuple[str, str]] = field(default_factory=set)
    written: list[str] = field(default_factory=list)
    changed_outcomes: dict[str, PractitionerOutcome] = field(default_factory=dict)

    async def run(self) -> list[str]:
        """Recompute everything collected so far; a second call only does what came after."""
        todo_p, self.practitioners = sorted(self.practitioners), set()
        for token in todo_p:
            self.institutions |= await self._practitioner(token)
        todo_i, self.institutions = sorted(self.institutions), set()
        for code in todo_i:
            await self._institution(code)
        todo_a, self.aliases = sorted(self.aliases), set()
        for inst, local in todo_a:
            await self._alias(inst, local)
        return self.written

    async def lock_practitioner(self, token: str) -> None:
        await self.conn.execute(
            select(practitioners.c.token).where(practitioners.c.token == token).with_for_update()
        )

    async def calendar(self) -> WorkingCalendar:
        rows = await self.conn.execute(
            select(calendar_overrides.c.day, calendar_overrides.c.working)
        )
        return WorkingCalendar({day: working for day, working in rows})

    # -- practitioner -------------------------------------------------------------------
    async def _practitioner(self, token: str) -> set[str]:
        """Re-judge one practitioner; return the institutions whose own judgement may change."""
        conn = self.conn
        prow = (
            await conn.execute(
                select(practitioners.c.display_code, practitioners.c.category)
                .where(practitioners.c.token == token)
                .with_for_update()
            )
        ).one_or_none()
        if prow is None:
            return set()
        display, category = prow
        events = await ledger.practitioner_events(conn, token)
        sites = sorted(_sites(events))
        inst_rows = {
            code: (profile_id,)
            for code, profile_id in await conn.execute(
                select(institutions.c.code, institutions.c.profile_id).where(
                    institutions.c.code.in_(sites)
                )
            )
        }
        profiles = load_profiles()
        calendar = await self.calendar()
        by_profile: dict[str, list[str]] = defaultdict(list)
        for code in sites:
            if code in inst_rows:
                by_profile[inst_rows[code][0]].append(code)

        touched: set[str] = set()
        outs: dict[str, PractitionerOutcome] = {}
        for profile_id, codes_ in by_profile.items():
            mine = set(codes_)
            # Points from every site add up — within one region's rules; a site in another
            # region is judged by that region's profile.
            subset = [e for e in events if site_of(e) is None or site_of(e) in mine]
            out = evaluate_practitioner(profiles[profile_id], token, subset, calendar)
            outs[profile_id] = out
            if await self._store_outcome(f"p:{token}:{profile_id}", codec.to_json(out)):
                touched |= mine
                self.changed_outcomes[f"{token}:{profile_id}"] = out

        writes: list[tuple[str, str | None, Any]] = [
            (known_key(token), None, docs.known_doc(display))
        ]
        for code in sites:
            if code not in inst_rows:
                continue
            regs = [
                (e.department, e.start, e.end)
                for e in events
                if isinstance(e, Registration) and e.institution == code
            ]
            agrs = [
                (e.start, e.end)
                for e in events
                if isinstance(e, Agreement) and e.institution == code
            ]
            writes.append(
                (
                    view_key(code, token),
                    code,
                    docs.view_doc(
                        institution=code,
                        display_code=display,
                        category=category,
                        registrations=regs,
                        agreements=agrs,
                        outcome=outs.get(inst_rows[code][0]),
                    ),
                )
            )
        self.written += await write_docs(conn, writes)
        return touched

    async def _store_outcome(self, subject: str, doc: dict[str, Any]) -> bool:
        current = (
            await self.conn.execute(select(outcomes.c.doc).where(outcomes.c.subject == subject))
        ).scalar_one_or_none()
        if current == doc:
            return False
        stmt = insert(outcomes).values(subject=subject, doc=doc)
        await self.conn.execute(
            stmt.on_conflict_do_update(index_elements=[outcomes.c.subject], set_={"doc": doc})
        )
        return True

    # -- institution --------------------------------------------------------------------
    async def _institution(self, code: str) -> None:
        conn = self.conn
        irow = (
            await conn.execute(
                select(institutions.c.name, institutions.c.region_code, institutions.c.profile_id)
                .where(institutions.c.code == code)
                .with_for_update()
            )
        ).one_or_none()
        if irow is None:
            return
        name, region, profile_id = irow
        profile: Profile = load_profiles()[profile_id]
        depts: dict[str, str] = {
            c: n
            for c, n in await conn.execute(
                select(departments.c.code, departments.c.name).where(
                    departments.c.institution_code == code
                )
            )
        }
        dept_aliases: dict[str, str] = {
            lc: t
            for lc, t in await conn.execute(
                select(aliases.c.local_code, aliases.c.target).where(
                    aliases.c.institution_code == code, aliases.c.kind == "department"
                )
            )
        }
        events = await ledger.institution_events(conn, code)
        staff = sorted({e.practitioner for e in events if isinstance(e, Registration)})
        subjects = [f"p:{t}:{profile_id}" for t in staff]
        stored: dict[str, Any] = {
            subj: doc
            for subj, doc in await conn.execute(
                select(outcomes.c.subject, outcomes.c.doc).where(outcomes.c.subject.in_(subjects))
            )
        }
        outs = {
            t: codec.practitioner_outcome(stored[f"p:{t}:{profile_id}"])
            for t in staff
            if f"p:{t}:{profile_id}" in stored
        }
        categories: dict[str, str] = {
            t: cat
            for t, cat in await conn.execute(
                select(practitioners.c.token, practitioners.c.category).where(
                    practitioners.c.token.in_(staff)
                )
            )
        }
        inst_out, dept_outs = evaluate_institution(
            profile, code, events, outs, categories, await self.calendar()
        )
        doc = docs.institution_doc(
            name=name,
            region=region,
            profile=profile,
            departments=depts,
            outcome=inst_out,
            department_outcomes=dept_outs,
            department_aliases=dept_aliases,
        )
        await self._store_outcome(f"i:{code}", codec.to_json(inst_out))
        for dept, d_out in dept_outs.items():
            await self._store_outcome(f"d:{code}:{dept}", codec.to_json(d_out))
        self.written += await write_docs(conn, [(institution_key(code), code, doc)])

    async def _alias(self, inst: str, local: str) -> None:
        target = (
            await self.conn.execute(
                select(aliases.c.target).where(
                    aliases.c.institution_code == inst,
                    aliases.c.kind == "practitioner",
                    aliases.c.local_code == local,
                )
            )
        ).scalar_one_or_none()
        doc = docs.alias_doc(target) if target is not None else {"t": None}
        self.written += await write_docs(self.conn, [(alias_key(inst, local), inst, doc)])


def site_of(e: Event) -> str | None:
    """The institution an event is about, or None for one that follows the practitioner."""
    if isinstance(e, Registration | Agreement | Violation):
        return e.institution
    if isinstance(e, ManualAction):
        return e.institution
    return None


def _sites(events: list[Event]) -> set[str]:
    return {s for e in events if (s := site_of(e)) is not None}
