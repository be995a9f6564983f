"""What every admin write starts from: the audit row, and lookups that name what is missing
(404 with a stable code and the field that referred to it — never the value sent)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.db.tables import audit_log, departments, institutions, practitioners
from app.errors import NotFound
from app.projection.ledger import WriteContext


async def audit(
    conn: AsyncConnection, ctx: WriteContext, action: str, target: str, change: dict[str, Any]
) -> None:
    await conn.execute(
        audit_log.insert().values(
            api_key_id=ctx.api_key_id,
            request_id=ctx.request_id,
            action=action,
            target=target,
            change=change,
        )
    )


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
    conn: AsyncConnection, code: str, secret: str, field: str | None = None
) -> str:
    token = codes.practitioner_token(code, secret)
    found = (
        await conn.execute(select(practitioners.c.token).where(practitioners.c.token == token))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            "no practitioner is registered under this code",
            field=field,
            code="PRACTITIONER_NOT_FOUND",
        )
    return token


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
