"""What admin writes and reads start from: lookups that name what is missing (404 with a
stable code and the field that referred to it — never the value sent), and the row locks that
order concurrent writes."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.db.tables import departments, institutions, practitioners, registrations
from app.errors import NotFound


async def require_institution(conn: AsyncConnection, code: str, field: str | None = None) -> str:
    found = (
        await conn.execute(select(institutions.c.profile_id).where(institutions.c.code == code))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            "no institution is registered under this code",
            field=field,
            code="INSTITUTION_NOT_FOUND",
        )
    return str(found)


async def require_department(
    conn: AsyncConnection, inst: str, dept: str, field: str | None = None
) -> None:
    found = (
        await conn.execute(
            select(departments.c.code).where(
                departments.c.institution_code == inst, departments.c.code == dept
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            "no department is registered under this code at the institution",
            field=field,
            code="DEPARTMENT_NOT_FOUND",
        )


async def require_practitioner(
    conn: AsyncConnection, code: str, secret: str, field: str | None = None, *, lock: bool = False
) -> str:
    """The practitioner's token; with ``lock``, their row held until the write commits (as
    :func:`lock_practitioner`, in the same statement)."""
    token = codes.practitioner_token(code, secret)
    stmt = select(practitioners.c.token).where(practitioners.c.token == token)
    found = (await conn.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(
            "no practitioner is registered under this code",
            field=field,
            code="PRACTITIONER_NOT_FOUND",
        )
    return token


async def require_practitioner_at(
    conn: AsyncConnection,
    code: str,
    secret: str,
    field: str,
    institution: str,
    institution_field: str,
    *,
    lock: bool = False,
) -> tuple[str, str, bool]:
    """:func:`require_practitioner` and :func:`require_institution` in one statement (a write's
    latency is its round trips, issue 14): (token, the institution's profile id, whether the
    practitioner was ever registered there). The practitioner is named first when both are
    missing; with ``lock``, their row is held until the write commits."""
    token = codes.practitioner_token(code, secret)
    person = select(practitioners.c.token).where(practitioners.c.token == token)
    found, profile_id, registered = (
        await conn.execute(
            select(
                (person.with_for_update() if lock else person).scalar_subquery(),
                select(institutions.c.profile_id)
                .where(institutions.c.code == institution)
                .scalar_subquery(),
                exists().where(
                    registrations.c.practitioner_token == token,
                    registrations.c.institution_code == institution,
                ),
            )
        )
    ).one()
    if found is None:
        raise NotFound(
            "no practitioner is registered under this code",
            field=field,
            code="PRACTITIONER_NOT_FOUND",
        )
    if profile_id is None:
        raise NotFound(
            "no institution is registered under this code",
            field=institution_field,
            code="INSTITUTION_NOT_FOUND",
        )
    return token, str(profile_id), bool(registered)


async def lock_institution(conn: AsyncConnection, code: str, field: str = "path.code") -> None:
    """Hold the institution's row until the write commits: writes that must see each other's
    department codes and aliases (a collision check, then an insert) run one after the other.
    The recompute at the end of such a write takes the same lock, so this adds no new wait."""
    found = (
        await conn.execute(
            select(institutions.c.code).where(institutions.c.code == code).with_for_update()
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            "no institution is registered under this code",
            field=field,
            code="INSTITUTION_NOT_FOUND",
        )


async def lock_practitioner(conn: AsyncConnection, token: str) -> None:
    """Hold the practitioner's row until the write commits, before reading what the write will
    report as changed: two writes about one practitioner are judged one after the other, each
    seeing the other (the recompute takes the same lock)."""
    await conn.execute(
        select(practitioners.c.token).where(practitioners.c.token == token).with_for_update()
    )


async def display_code_of(conn: AsyncConnection, token: str) -> str:
    """The practitioner's code as officers see it (an ID number masked)."""
    return str(
        (
            await conn.execute(
                select(practitioners.c.display_code).where(practitioners.c.token == token)
            )
        ).scalar_one()
    )
