"""A hospital's local codes: its own code for itself (an institution alias), and its
departments' and staff's codes loaded in bulk.

An institution alias is agency-wide: one local code (``011134``, ``CDSDERMYY``) names one
institution, whichever key sends it. It must never stand where a real code stands, so a local
code shaped like a national institution code is refused (422 ``ALIAS_COLLIDES``): every real
institution code has that shape (the admin API takes no other), so no alias can ever shadow one,
nor a new institution ever be refused for some hospital's alias. A local code another
institution already has is refused too (409 ``ALIAS_TAKEN``, remove it there first): a check
must never depend on which of two hospitals an ambiguous code meant.

At check time a line whose institution is not shaped like a national code is resolved through
these aliases before its key is authorised (app.checks.usecase), so a ``his`` key bound to an
institution reaches it through its aliases, and another institution through none.

The bulk load takes all three kinds for one institution in one transaction, all or nothing,
under the rules each kind has on its own (app.admin.aliases): every refusal names the entry
(``body.practitioners.12.local_code``), never its value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin import schemas as s
from app.admin.aliases import collides, refuse_practitioner_shape
from app.admin.lookups import lock_institution
from app.admin.unit_of_work import Audit, UnitOfWork
from app.db.any_of import any_of
from app.db.tables import aliases, departments, institution_aliases, practitioners
from app.errors import Conflict, InvalidField, NotFound
from app.projection.ledger import LedgerEntry

TAKEN = "ALIAS_TAKEN"


def refuse_institution_shape(local: str, field: str) -> None:
    if codes.is_national_institution(local):
        raise collides(
            "a local institution code may not have the shape of a national institution code: "
            "it could stand in for a real institution",
            field,
        )


def _taken(field: str) -> Conflict:
    return Conflict(
        "another institution already has this local code; an institution alias is "
        "agency-wide — remove it there first",
        field=field,
        code=TAKEN,
    )


async def _claim(conn: AsyncConnection, inst: str, local_codes: Sequence[str]) -> list[str]:
    """Insert the aliases not yet held; return those that another institution holds. Race-free:
    the insert takes a code or finds it taken, and a code taken is then read back."""
    if not local_codes:
        return []
    await conn.execute(
        insert(institution_aliases)
        .values([{"local_code": lc, "institution_code": inst} for lc in local_codes])
        .on_conflict_do_nothing(index_elements=[institution_aliases.c.local_code])
    )
    owners = dict(
        (
            await conn.execute(
                select(
                    institution_aliases.c.local_code, institution_aliases.c.institution_code
                ).where(any_of(institution_aliases.c.local_code, local_codes))
            )
        ).all()
    )
    return [lc for lc in local_codes if owners.get(lc) != inst]


async def put_institution_alias(
    uow: UnitOfWork, local: str, body: s.InstitutionAliasIn
) -> dict[str, Any]:
    inst = body.institution_code
    refuse_institution_shape(local, "path.local_code")
    await lock_institution(uow.conn, inst, "body.institution_code")
    if await _claim(uow.conn, inst, [local]):
        raise _taken("path.local_code")
    return await _recorded(uow, "set", inst, local)


async def _recorded(uow: UnitOfWork, change: str, inst: str, local: str) -> dict[str, Any]:
    """The ledger event and audit row of one alias set or removed; its document rewritten."""
    await uow.record(
        f"institution_alias_{change}",
        {"local_code": local},
        institution=inst,
        institution_alias=local,
        audit=Audit(
            f"institution_alias.{'put' if change == 'set' else 'delete'}", f"{inst}/{local}"
        ),
    )
    return {"local_code": local, "institution_code": inst}


async def delete_institution_alias(uow: UnitOfWork, local: str) -> dict[str, Any]:
    inst = (
        await uow.conn.execute(
            delete(institution_aliases)
            .where(institution_aliases.c.local_code == local)
            .returning(institution_aliases.c.institution_code)
        )
    ).scalar_one_or_none()
    if inst is None:
        raise NotFound("no institution alias with this local code", code="ALIAS_NOT_FOUND")
    return await _recorded(uow, "removed", inst, local)


async def list_institution_aliases(
    conn: AsyncConnection, institution: str | None
) -> list[dict[str, Any]]:
    q = select(institution_aliases.c.local_code, institution_aliases.c.institution_code).order_by(
        institution_aliases.c.local_code
    )
    if institution is not None:
        q = q.where(institution_aliases.c.institution_code == institution)
    return [{"local_code": lc, "institution_code": i} for lc, i in await conn.execute(q)]


def _unique(entries: Sequence[str], section: str) -> None:
    """A local code given twice in one section: the second is refused (which one would win?)."""
    seen: set[str] = set()
    for i, lc in enumerate(entries):
        if lc in seen:
            raise InvalidField(
                "this local code is given twice in the section",
                field=f"body.{section}.{i}.local_code"
                if section != "institution"
                else f"body.institution.{i}",
            )
        seen.add(lc)


async def _department_targets(
    conn: AsyncConnection, inst: str, entries: Sequence[s.LocalCodeIn]
) -> list[tuple[str, str]]:
    """(local code, department code) pairs, each local code checked against the departments
    (a real code is never an alias) and each target found."""
    real = {
        c
        for (c,) in await conn.execute(
            select(departments.c.code).where(departments.c.institution_code == inst)
        )
    }
    out = []
    for i, e in enumerate(entries):
        if e.local_code in real:
            raise collides(
                "this code is a department of the institution; an alias may not stand in "
                "for a real department code",
                f"body.departments.{i}.local_code",
            )
        target = codes.normalize(e.target)
        if target not in real:
            raise NotFound(
                "no department is registered under this code at the institution",
                field=f"body.departments.{i}.target",
                code="DEPARTMENT_NOT_FOUND",
            )
        out.append((e.local_code, target))
    return out


async def _practitioner_targets(
    conn: AsyncConnection, entries: Sequence[s.LocalCodeIn], secret: str
) -> list[tuple[str, str]]:
    """(local code, practitioner token) pairs: no local code shaped like a real code, every
    target a practitioner the agency knows."""
    tokens = [codes.practitioner_token(codes.normalize(e.target), secret) for e in entries]
    known = {
        t
        for (t,) in await conn.execute(
            select(practitioners.c.token).where(any_of(practitioners.c.token, sorted(set(tokens))))
        )
    }
    for i, (e, tok) in enumerate(zip(entries, tokens, strict=True)):
        refuse_practitioner_shape(e.local_code, f"body.practitioners.{i}.local_code")
        if tok not in known:
            raise NotFound(
                "no practitioner is registered under this code",
                field=f"body.practitioners.{i}.target",
                code="PRACTITIONER_NOT_FOUND",
            )
    return [(e.local_code, tok) for e, tok in zip(entries, tokens, strict=True)]


async def put_local_codes(
    uow: UnitOfWork, inst: str, body: s.LocalCodesIn, secret: str
) -> dict[str, Any]:
    """An institution's local codes of all three kinds, added or re-pointed, all or nothing.
    Codes not in the body are left as they are (``DELETE`` one alias to remove it)."""
    conn = uow.conn
    await lock_institution(conn, inst)  # department aliases and departments: one at a time
    for i, lc in enumerate(body.institution):
        refuse_institution_shape(lc, f"body.institution.{i}")
    _unique(body.institution, "institution")
    _unique([e.local_code for e in body.departments], "departments")
    _unique([e.local_code for e in body.practitioners], "practitioners")
    dept_pairs = await _department_targets(conn, inst, body.departments)
    prac_pairs = await _practitioner_targets(conn, body.practitioners, secret)
    taken = await _claim(conn, inst, body.institution)
    if taken:
        raise _taken(f"body.institution.{body.institution.index(taken[0])}")
    rows = [
        {"institution_code": inst, "kind": kind, "local_code": lc, "target": t}
        for kind, pairs in (("department", dept_pairs), ("practitioner", prac_pairs))
        for lc, t in pairs
    ]
    if rows:
        stmt = insert(aliases)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[aliases.c.institution_code, aliases.c.kind, aliases.c.local_code],
                set_={"target": stmt.excluded.target},
            ),
            rows,
        )
    entries = [
        LedgerEntry("institution_alias_set", {"local_code": lc}, None, inst, None, None)
        for lc in body.institution
    ] + [
        LedgerEntry(
            "alias_set", {"kind": r["kind"], "local_code": r["local_code"]}, None, inst, None, None
        )
        for r in rows
    ]
    counts = {
        "institution": len(body.institution),
        "departments": len(dept_pairs),
        "practitioners": len(prac_pairs),
    }
    await uow.record_many(
        entries,
        audit=Audit("local_codes.put", inst, counts),
        aliases=[(inst, lc) for lc, _ in prac_pairs],
        institution_aliases=body.institution,
    )
    return {"institution_code": inst, **counts}
