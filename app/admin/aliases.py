"""Local-code aliases: a hospital's own department or staff code mapped to the national one.

An alias must never stand where a real code stands, or a check sent under the real code would
be judged as the alias's target — a suspended department ``ZZ9`` aliased to a payable ``A02``
turned a deny into an allow. So, at write time (422 ``ALIAS_COLLIDES``, nothing written):

- a department alias is refused when its local code is a department of the institution, and a
  new department is refused when its code is already a department alias there (remove the alias
  first: ``DELETE …/aliases/department/{local_code}``). Updating a department that already
  exists is never refused, so data from before this rule stays editable.
- a practitioner alias is refused when its local code is shaped like a national practitioner
  code or a resident ID number. Every real practitioner code has one of those shapes (the
  admin API accepts no other), so the two sets can never meet — no lookup needed, and a new
  practitioner never has to be refused for some hospital's alias. It also keeps ID numbers
  out of alias keys, which are stored as given.

At check time the real code is looked up first in any case (app.checks.decide for departments,
app.checks.service for practitioners), which settles pairs stored before these rules.

Department aliases and departments are checked under the institution's row lock (see
:func:`app.admin.lookups.lock_institution`), so two concurrent writes cannot both pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin import schemas as s
from app.admin.lookups import (
    lock_institution,
    require_department,
    require_institution,
    require_practitioner,
)
from app.admin.unit_of_work import Audit, UnitOfWork
from app.db.any_of import any_of
from app.db.tables import aliases, departments, institution_aliases, practitioners
from app.errors import InvalidField, NotFound

Kind = Literal["practitioner", "department"]
COLLIDES = "ALIAS_COLLIDES"


async def department_aliases_among(
    conn: AsyncConnection, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The (institution, code) pairs among ``pairs`` that are department aliases."""
    wanted = set(pairs)
    if not wanted:
        return set()
    rows = await conn.execute(
        select(aliases.c.institution_code, aliases.c.local_code).where(
            aliases.c.kind == "department",
            any_of(aliases.c.institution_code, sorted({i for i, _ in wanted})),
            any_of(aliases.c.local_code, sorted({c for _, c in wanted})),
        )
    )
    return {(i, c) for i, c in rows} & wanted


def collides(message: str, field: str) -> InvalidField:
    """A local code that is, or could be, a real code (422 ``ALIAS_COLLIDES``)."""
    return InvalidField(message, field=field, code=COLLIDES)


def refuse_practitioner_shape(local: str, field: str) -> None:
    """A local practitioner code shaped like a real one could stand in for it: refused."""
    if codes.is_national_practitioner(local) or codes.looks_like_resident_id(local):
        raise collides(
            "a local practitioner code may not have the shape of a national practitioner "
            "code or a resident ID number: it could stand in for a real practitioner",
            field,
        )


def shadowed_department(field: str) -> InvalidField:
    return InvalidField(
        "a department alias at this institution already uses this code; a department under "
        "it would be judged as the alias's target. Remove the alias first",
        field=field,
        code=COLLIDES,
    )


async def refuse_shadowed_departments(
    conn: AsyncConnection, inst: str, fields: dict[str, str]
) -> None:
    """Refuse a new department (code → the field it came from) whose code is an alias at
    ``inst``. A department that already exists is left alone: its row is the real code."""
    existing = {
        c
        for (c,) in await conn.execute(
            select(departments.c.code).where(
                departments.c.institution_code == inst, any_of(departments.c.code, fields)
            )
        )
    }
    hits = sorted(
        await department_aliases_among(conn, [(inst, c) for c in fields if c not in existing])
    )
    if hits:
        raise shadowed_department(fields[hits[0][1]])


async def put_alias(
    uow: UnitOfWork, inst: str, kind: Kind, local: str, body: s.AliasIn, secret: str
) -> dict[str, Any]:
    conn = uow.conn
    target_code = codes.normalize(body.target)
    if kind == "department":
        await lock_institution(conn, inst)
        real = (
            await conn.execute(
                select(departments.c.code).where(
                    departments.c.institution_code == inst, departments.c.code == local
                )
            )
        ).scalar_one_or_none()
        if real is not None:
            raise InvalidField(
                "this code is a department of the institution; an alias may not stand in "
                "for a real department code",
                field="path.local_code",
                code=COLLIDES,
            )
        await require_department(conn, inst, target_code, "body.target")
        target = target_code
    else:
        await require_institution(conn, inst, "path.code")
        refuse_practitioner_shape(local, "path.local_code")
        target = await require_practitioner(conn, target_code, secret, "body.target")
    stmt = insert(aliases).values(institution_code=inst, kind=kind, local_code=local, target=target)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[aliases.c.institution_code, aliases.c.kind, aliases.c.local_code],
            set_={"target": target},
        )
    )
    shown = codes.display_code(target_code)
    await uow.record(
        "alias_set",
        {"kind": kind, "local_code": local, "target": shown},
        institution=inst,
        # A practitioner alias has a document of its own; department aliases are in the
        # institution's.
        alias=local if kind == "practitioner" else None,
        audit=Audit("alias.put", f"{inst}/{kind}/{local}", {"target": shown}),
    )
    return {"institution_code": inst, "kind": kind, "local_code": local, "target": shown}


async def delete_alias(uow: UnitOfWork, inst: str, kind: Kind, local: str) -> dict[str, Any]:
    conn = uow.conn
    await require_institution(conn, inst, "path.code")
    target = (
        await conn.execute(
            delete(aliases)
            .where(
                aliases.c.institution_code == inst,
                aliases.c.kind == kind,
                aliases.c.local_code == local,
            )
            .returning(aliases.c.target)
        )
    ).scalar_one_or_none()
    if target is None:
        raise NotFound(
            f"no {kind} alias with this local code at the institution",
            code="ALIAS_NOT_FOUND",
        )
    if kind == "practitioner":
        display = (
            await conn.execute(
                select(practitioners.c.display_code).where(practitioners.c.token == target)
            )
        ).scalar_one_or_none()
        shown = display or target
    else:
        shown = target
    await uow.record(
        "alias_removed",
        {"kind": kind, "local_code": local},
        institution=inst,
        # A practitioner alias's document is rewritten as {"t": null}: read as no alias.
        alias=local if kind == "practitioner" else None,
        audit=Audit("alias.delete", f"{inst}/{kind}/{local}", {"target": shown}),
    )
    return {"institution_code": inst, "kind": kind, "local_code": local, "target": shown}


async def list_aliases(conn: AsyncConnection, inst: str) -> list[dict[str, Any]]:
    """Every local code of the institution: its own (agency-wide, app.admin.local_codes), its
    departments' and its staff's."""
    await require_institution(conn, inst, "path.code")
    own = await conn.execute(
        select(institution_aliases.c.local_code)
        .where(institution_aliases.c.institution_code == inst)
        .order_by(institution_aliases.c.local_code)
    )
    rows = await conn.execute(
        select(aliases.c.kind, aliases.c.local_code, aliases.c.target, practitioners.c.display_code)
        .outerjoin(practitioners, practitioners.c.token == aliases.c.target)
        .where(aliases.c.institution_code == inst)
        .order_by(aliases.c.kind, aliases.c.local_code)
    )
    return [{"kind": "institution", "local_code": lc, "target": inst} for (lc,) in own] + [
        {"kind": k, "local_code": lc, "target": disp or t} for k, lc, t, disp in rows
    ]
