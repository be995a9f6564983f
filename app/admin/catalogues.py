"""Catalogues at the admin edge: a violation priced by its item before it is written, the
fields the ledger and the credit file keep of it, and the catalogue reads.

The decisions are :mod:`app.policy.catalogue`'s (pure); this module turns them into 422s that
name the field, checks that the items of one act agree, and shapes the stored payload. A
violation written before catalogues has none of these fields: it is shown with
``basis: "legacy"`` and judged by its points, as it always was.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.admin import schemas as s
from app.admin.lookups import require_institution
from app.db.tables import events
from app.errors import InvalidField, NotFound
from app.policy import load_profiles
from app.policy.catalogue import CatalogueError, Priced, describe, price

# the fields a violation payload holds beyond date, points, item, description, department
FIELDS = (
    "item_id",
    "catalogue",
    "article",
    "act",
    "basis",
    "exception_reason",
    "act_id",
    "inspection_id",
)


def priced(profile_id: str, body: s.ViolationIn) -> dict[str, Any]:
    """The points and catalogue fields of ``body`` under the institution's profile (the
    version in force on its date), or a 422 naming the field at fault."""
    try:
        out = price(
            load_profiles()[profile_id],
            body.date,
            item_id=body.item_id,
            points=body.points,
            exception_reason=body.exception_reason,
        )
    except CatalogueError as exc:
        raise InvalidField(exc.message, field=f"body.{exc.field}", code=exc.code) from None
    return stored_fields(out, body.act_id, body.inspection_id)


def stored_fields(out: Priced, act_id: str | None, inspection_id: str | None) -> dict[str, Any]:
    """What a violation's payload keeps of its pricing (``points`` and :data:`FIELDS`)."""
    return {
        "points": out.points,
        "item_id": out.item.id if out.item else None,
        "catalogue": out.catalogue or None,
        "article": out.item.rule if out.item else None,
        "act": out.item.act if out.item else None,
        "basis": out.basis,
        "exception_reason": out.reason or None,
        "act_id": act_id,
        "inspection_id": inspection_id,
    }


async def check_act(conn: AsyncConnection, token: str, body: s.ViolationIn) -> None:
    """The items of one act (``act_id``, per practitioner) share its date, institution and
    inspection: 济宁 §四 counts one act once, so an id reused for another finding is refused.
    Called with the practitioner locked, so two items of one act are judged one after the
    other."""
    if body.act_id is None:
        return
    rows = await conn.execute(
        select(events.c.institution_code, events.c.payload).where(
            events.c.kind == "violation",
            events.c.practitioner_token == token,
            events.c.payload["act_id"].astext == body.act_id,
        )
    )
    for institution, p in rows:
        if (institution, p["date"], p.get("inspection_id")) != (
            body.institution_code,
            body.date.isoformat(),
            body.inspection_id,
        ):
            raise InvalidField(
                "the items of one act share its date, institution and inspection; this act_id "
                "was recorded for the practitioner with another",
                field="body.act_id",
                code="ACT_MISMATCH",
            )


def credit_fields(p: dict[str, Any]) -> dict[str, Any]:
    """What the credit file shows of a stored violation's item: its id, article and act text,
    and what its points rest on (``legacy``: recorded by points before catalogues)."""
    return {
        "item_id": p.get("item_id"),
        "article": p.get("article"),
        "act": p.get("act"),
        "basis": p.get("basis", "legacy"),
        "exception_reason": p.get("exception_reason"),
        "act_id": p.get("act_id"),
        "inspection_id": p.get("inspection_id"),
    }


def profile_catalogue(profile_id: str, on: date | None) -> dict[str, Any]:
    profile = load_profiles().get(profile_id)
    if profile is None:
        raise NotFound(
            "no policy profile has this id", field="path.profile_id", code="PROFILE_NOT_FOUND"
        )
    return describe(profile, on)


async def institution_catalogue(
    conn: AsyncConnection, code: str, on: date | None
) -> dict[str, Any]:
    """The catalogue of the region an institution belongs to (its profile)."""
    profile_id = await require_institution(conn, code, "path.code")
    return {"institution_code": code, **profile_catalogue(profile_id, on)}
