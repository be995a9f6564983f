"""Recomputing projections inside the write's own transaction.

A write's unit of work (app.admin.unit_of_work) collects the subjects its events are about in
a :class:`Recompute` and runs it before the commit. Each subject's row is locked (so two writes
about one practitioner are judged one after the other, each seeing the other's event), the pure
engine runs over the subject's whole ledger, and the documents that changed are written
together with their outbox rows.

Lock order is practitioners before institutions, each sorted, so writes never deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cache.layout import (
    alias_key,
    institution_alias_key,
    institution_key,
    known_key,
    view_key,
)
from app.db.any_of import any_of
from app.db.tables import (
    aliases,
    departments,
    institution_aliases,
    institutions,
    outcomes,
    practitioners,
)
from app.policy import (
    Agreement,
    CarriedOver,
    Event,
    ManualAction,
    PractitionerOutcome,
    Profile,
    Registration,
    StaffCounts,
    Violation,
    evaluate_institution,
    evaluate_practitioner,
    load_profiles,
    sites_counted,
)
from app.projection import codec, docs, ledger, staff
from app.projection.ledger import read_calendar
from app.projection.pacing import Pacer
from app.projection.store import Written, write_docs


@dataclass
class Recompute:
    """Collects what one write touched and recomputes it once, at the end of the write."""

    conn: AsyncConnection
    practitioners: set[str] = field(default_factory=set)
    institutions: set[str] = field(default_factory=set)
    aliases: set[tuple[str, str]] = field(default_factory=set)
    institution_aliases: set[str] = field(default_factory=set)
    # Institutions where a violation was recorded: re-judged when their rules read violations
    violation_sites: set[str] = field(default_factory=set)
    # Institutions whose staff changed category: their head counts by category are counted again
    recount: set[str] = field(default_factory=set)
    # Practitioners whose rows this write already holds locked (UnitOfWork.require_practitioner)
    held: set[str] = field(default_factory=set)
    # Institutions' profile ids read so far
    profile_of: dict[str, str] = field(default_factory=dict)
    written: list[Written] = field(default_factory=list)
    # (practitioners re-judged, of how many): a long import's progress bar
    progress: Callable[[int, int], None] | None = None
    # A long recompute (a bulk import) pauses between slices so checks keep their pace
    pacer: Pacer = field(default_factory=Pacer)

    async def run(self) -> list[Written]:
        """Recompute everything collected so far; a second call only does what came after."""
        # Institutions marked for their own events (registrations among them) count their
        # staff again; those re-judged for a practitioner's outcome alone reuse the count.
        direct = set(self.institutions)
        todo_p, self.practitioners = sorted(self.practitioners), set()
        self.institutions |= await self._practitioners(todo_p)
        todo_v, self.violation_sites = sorted(self.violation_sites), set()
        self.institutions |= await self._reading_violations(todo_v)
        direct |= self.recount
        self.institutions |= self.recount
        self.recount = set()
        todo_i, self.institutions = sorted(self.institutions), set()
        for code in todo_i:
            await self._institution(code, recount=code in direct)
            await self.pacer.breathe()
        todo_a, self.aliases = sorted(self.aliases), set()
        await self._aliases(todo_a)
        todo_ia, self.institution_aliases = sorted(self.institution_aliases), set()
        await self._institution_aliases(todo_ia)
        return self.written

    # -- practitioner -------------------------------------------------------------------
    async def _practitioners(self, tokens: list[str]) -> set[str]:
        """Re-judge practitioners (set-based, in chunks); return the institutions whose own
        judgement may change because a practitioner's outcome changed."""
        touched: set[str] = set()
        for i in range(0, len(tokens), 500):
            touched |= await self._practitioner_chunk(tokens[i : i + 500])
            if self.progress is not None:
                self.progress(min(i + 500, len(tokens)), len(tokens))
        return touched

    async def _practitioner_chunk(self, tokens: list[str]) -> set[str]:
        conn = self.conn
        # Rows the write already holds (UnitOfWork.require_practitioner) are read with the
        # rest of the inputs; any other is locked first, in token order, then read.
        held = set(tokens) <= self.held
        people: dict[str, tuple[str, str]] = {}
        if not held:
            people = {
                t: (display, category)
                for t, display, category in await conn.execute(
                    select(
                        practitioners.c.token,
                        practitioners.c.display_code,
                        practitioners.c.category,
                    )
                    .where(any_of(practitioners.c.token, tokens))
                    .order_by(practitioners.c.token)
                    .with_for_update()
                )
            }
        inputs = await ledger.practitioners_inputs(
            conn, sorted(tokens) if held else list(people), people=held, stored=True
        )
        if held:
            people = inputs.people
        ledgers, profile_of, calendar = inputs.events, inputs.profiles, inputs.calendar
        self.profile_of.update(profile_of)
        profiles = load_profiles()

        results: dict[str, tuple[set[str], PractitionerOutcome]] = {}
        writes: list[tuple[str, str | None, Any]] = []
        for token, (display, category) in people.items():
            await self.pacer.breathe()
            events = ledgers[token]
            sites = sorted(s for s in _sites(events) if s in profile_of)
            by_profile: dict[str, set[str]] = defaultdict(set)
            for code in sites:
                by_profile[profile_of[code]].add(code)
            counted = sites_counted({code: profiles[profile_of[code]] for code in sites})
            outs: dict[str, PractitionerOutcome] = {}
            for profile_id, mine in by_profile.items():
                # Each site is judged by its region's profile, on the points of every site
                # that profile's tally counts (its own region's, or all national-tally ones).
                seen = counted[profile_id]
                subset = [e for e in events if site_of(e) is None or site_of(e) in seen]
                outs[profile_id] = evaluate_practitioner(
                    profiles[profile_id], token, subset, calendar
                )
                results[f"p:{token}:{profile_id}"] = (mine, outs[profile_id])
            writes.append((known_key(token), None, docs.known_doc(display)))
            for code in sites:
                writes.append(
                    (
                        view_key(code, token),
                        code,
                        docs.view_doc(
                            institution=code,
                            display_code=display,
                            category=category,
                            registrations=[
                                (e.department, e.start, e.end)
                                for e in events
                                if isinstance(e, Registration) and e.institution == code
                            ],
                            agreements=[
                                (e.start, e.end)
                                for e in events
                                if isinstance(e, Agreement) and e.institution == code
                            ],
                            outcome=outs.get(profile_of[code]),
                        ),
                    )
                )
        new = {subject: codec.to_json(out) for subject, (_, out) in results.items()}
        read = set(
            (
                (code, token)
                for token in people
                for code in _sites(ledgers[token])
                if code in profile_of
                and any(
                    isinstance(e, Registration) and e.institution == code for e in ledgers[token]
                )
                and staff.read_by_rules(
                    code,
                    new.get(f"p:{token}:{profile_of[code]}"),
                    any(isinstance(e, Violation) and e.institution == code for e in ledgers[token]),
                )
            ),
        )
        if read != inputs.staff:  # else the table already says so: no statement
            await staff.keep(conn, people, read)
        before: dict[str, Any] = dict(inputs.outcomes)
        changed = await self._store_outcomes(new, before, read=False)
        touched: set[str] = set()
        for subject in changed:
            profile = profiles[subject.rsplit(":", 1)[1]]
            for code in results[subject][0]:
                if staff_inputs(profile, code, before.get(subject)) != staff_inputs(
                    profile, code, new[subject]
                ):
                    touched.add(code)
        views_before: dict[str, Any] = {}
        self.written += await write_docs(conn, writes, views_before)
        for key, site, doc in writes:
            # A practitioner whose category changed (PUT /v1/admin/practitioners/{code}, an
            # import) changes the head counts by category of every institution where they
            # are registered — and whom its category rules read — though no outcome changed.
            if site is not None and key in views_before and views_before[key].get("k") != doc["k"]:
                self.recount.add(site)
        return touched

    async def _store_outcomes(
        self, new: dict[str, Any], current: dict[str, Any] | None = None, *, read: bool = True
    ) -> list[str]:
        """Upsert the outcomes that changed; return their subjects. ``current`` is filled with
        the outcomes stored before (``read`` false: it already holds them, read with the
        practitioners' inputs)."""
        if not new:
            return []
        current = {} if current is None else current
        if read:
            for subj, doc in await self.conn.execute(
                select(outcomes.c.subject, outcomes.c.doc).where(any_of(outcomes.c.subject, new))
            ):
                current[subj] = doc
        changed = [subj for subj, doc in new.items() if current.get(subj) != doc]
        if changed:
            stmt = insert(outcomes)
            await self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[outcomes.c.subject],
                    set_={"doc": stmt.excluded.doc, "updated_at": text("now()")},
                ),
                [{"subject": subj, "doc": new[subj]} for subj in changed],
            )
        return changed

    async def _reading_violations(self, codes: list[str]) -> set[str]:
        """The institutions among ``codes`` whose rules read their violations themselves."""
        if not codes:
            return set()
        profiles = load_profiles()
        missing = [c for c in codes if c not in self.profile_of]
        if missing:
            self.profile_of.update(
                await self.conn.execute(
                    select(institutions.c.code, institutions.c.profile_id).where(
                        any_of(institutions.c.code, missing)
                    )
                )
            )
        return {
            code
            for code in codes
            if (pid := self.profile_of.get(code)) is not None
            and (profiles[pid].key_monitoring is not None or profiles[pid].department is not None)
        }

    # -- institution --------------------------------------------------------------------
    async def _institution(self, code: str, *, recount: bool = True) -> None:
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
        # The staff the rules read, and a count of the rest (app.projection.staff)
        events = await ledger.institution_events(conn, code, with_registrations=False)
        read = await staff.read_staff(conn, code)
        events += await ledger.registrations_at(conn, code, read)
        subjects = [f"p:{t}:{profile_id}" for t in read]
        stored: dict[str, Any] = {
            subj: doc
            for subj, doc in await conn.execute(
                select(outcomes.c.subject, outcomes.c.doc).where(
                    any_of(outcomes.c.subject, subjects)
                )
            )
        }
        outs = {
            t: codec.practitioner_outcome(stored[f"p:{t}:{profile_id}"])
            for t in read
            if f"p:{t}:{profile_id}" in stored
        }
        categories: dict[str, str] = {
            t: cat
            for t, cat in await conn.execute(
                select(practitioners.c.token, practitioners.c.category).where(
                    any_of(practitioners.c.token, read)
                )
            )
        }
        counted = profile.staff_share is not None or profile.terminated_doctors is not None
        heads = await staff.staff_counts(conn, code, recount=recount) if counted else StaffCounts()
        inst_out, dept_outs = evaluate_institution(
            profile, code, events, outs, categories, await read_calendar(conn), staff=heads
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
        new_outcomes = {
            f"i:{code}": codec.to_json(inst_out),
            **{f"d:{code}:{dept}": codec.to_json(d) for dept, d in dept_outs.items()},
        }
        # A department whose consequences all went away (an upheld appeal) keeps an empty
        # outcome, so what changed stays visible to the next comparison.
        for (subject,) in await conn.execute(
            select(outcomes.c.subject).where(outcomes.c.subject.like(f"d:{code}:%"))
        ):
            new_outcomes.setdefault(subject, {"intervals": [], "notices": []})
        await self._store_outcomes(new_outcomes)
        self.written += await write_docs(conn, [(institution_key(code), code, doc)])

    async def _aliases(self, pairs: list[tuple[str, str]]) -> None:
        """Practitioner aliases' documents, set-based: a bulk load of a hospital's staff codes
        is a few statements, not a few per code."""
        if not pairs:
            return
        targets = {
            (i, lc): t
            for i, lc, t in await self.conn.execute(
                select(aliases.c.institution_code, aliases.c.local_code, aliases.c.target).where(
                    aliases.c.kind == "practitioner",
                    any_of(aliases.c.institution_code, sorted({i for i, _ in pairs})),
                    any_of(aliases.c.local_code, sorted({lc for _, lc in pairs})),
                )
            )
        }
        self.written += await write_docs(
            self.conn,
            [
                (alias_key(inst, local), inst, docs.alias_doc(targets.get((inst, local))))
                for inst, local in pairs
            ],
        )

    async def _institution_aliases(self, local_codes: list[str]) -> None:
        """Institution aliases' documents; one whose row is gone is written as ``{"t": null}``."""
        if not local_codes:
            return
        targets = {
            lc: inst
            for lc, inst in await self.conn.execute(
                select(
                    institution_aliases.c.local_code, institution_aliases.c.institution_code
                ).where(any_of(institution_aliases.c.local_code, local_codes))
            )
        }
        self.written += await write_docs(
            self.conn,
            [
                (
                    institution_alias_key(lc),
                    targets.get(lc),
                    docs.institution_alias_doc(targets.get(lc)),
                )
                for lc in local_codes
            ],
        )


def site_of(e: Event) -> str | None:
    """The institution an event is about, or None for one that follows the practitioner."""
    if isinstance(e, Registration | Agreement | Violation):
        return e.institution
    if isinstance(e, ManualAction | CarriedOver):
        return e.institution
    return None


def _sites(events: list[Event]) -> set[str]:
    return {s for e in events if (s := site_of(e)) is not None}


def staff_inputs(profile: Profile, code: str, outcome: dict[str, Any] | None) -> Any:
    """What the institution rules of ``profile`` (app.policy.institution_rules) read of one
    practitioner's stored outcome at ``code``: the starts of the sanctions they count, and —
    for the rules that look at violations — the ids of the violations that stand. An outcome
    whose change leaves this equal leaves the institution's judgement as it was."""
    if outcome is None:
        return None
    statuses: set[str] = set()
    if profile.department is not None:
        statuses |= {"warning", "suspended"}
    if profile.staff_share is not None:
        statuses |= {"suspended", "terminated"}
    if profile.terminated_doctors is not None:
        statuses.add("terminated")
    starts = sorted(
        (iv["start"], iv["status"])
        for iv in outcome["intervals"]
        if iv["status"] in statuses and iv.get("institution") in (None, code)
    )
    if profile.key_monitoring is None and profile.department is None:
        return starts
    return starts, sorted(v for p in outcome["periods"] for v in p["violations"])
