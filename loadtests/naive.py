"""``naive``: what a team writes first — one SQLAlchemy ORM query per request against
PostgreSQL, then the same pure decision. The ORM mapping lives here, not in the app (the app
uses Core on purpose)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from sqlalchemy import BigInteger, String, Text, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app import codes
from app.cache.layout import alias_key, institution_key, known_key, view_key
from app.checks.decide import decide
from app.checks.schemas import CheckIn
from app.fields import today_shanghai


class Base(DeclarativeBase):
    pass


class Projection(Base):
    """A row of the ``projections`` table: one document (institution, view, alias, marker)."""

    __tablename__ = "projections"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    institution_code: Mapped[str | None] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(BigInteger)
    doc: Mapped[Any] = mapped_column(JSONB)


def create_app() -> FastAPI:
    url = os.environ["CLAIMGATE_DATABASE_URL"]
    secret = os.environ.get("CLAIMGATE_PII_SECRET", "dev-only-not-secret")
    # The same pool bounds claimgate is given (its defaults, 10 + 5), so the two compare alike.
    engine = create_async_engine(
        url,
        pool_size=int(os.environ.get("CLAIMGATE_DB_POOL_SIZE", "10")),
        max_overflow=int(os.environ.get("CLAIMGATE_DB_POOL_OVERFLOW", "5")),
    )
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(title="naive", lifespan=lifespan)

    @app.post("/v1/checks")
    async def check(body: CheckIn) -> Response:
        tok = codes.practitioner_token(body.practitioner_code, secret)
        inst_k = institution_key(body.institution_code)
        view_k = view_key(body.institution_code, tok)
        alias_k = alias_key(body.institution_code, tok)
        known_k = known_key(tok)
        session: AsyncSession
        async with sessions() as session:
            rows = (
                await session.scalars(
                    select(Projection).where(Projection.key.in_([inst_k, view_k, alias_k, known_k]))
                )
            ).all()
            got = {r.key: r for r in rows}
            alias = got.get(alias_k)
            if view_k not in got and known_k not in got and alias is not None and alias.doc["t"]:
                # a local code (never a real practitioner's own): one more query
                view_k = view_key(body.institution_code, alias.doc["t"])
                extra = await session.get(Projection, view_k)
                if extra is not None:
                    got[view_k] = extra
        inst, view = got.get(inst_k), got.get(view_k)
        day = (body.service_date or today_shanghai()).isoformat()
        allowed, reasons = decide(
            inst.doc if inst else None,
            body.department_code,
            view.doc if view else None,
            known_k in got or (alias is not None and bool(alias.doc["t"])),
            day,
            body.emergency,
        )
        answer: dict[str, Any] = {
            "decision": "allow" if allowed else "deny",
            "reasons": reasons,
            "source": "database",
            "checked_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "decision_id": uuid.uuid4().hex,
            "service_date": day,
            "data_version": {
                "institution": inst.version if inst else None,
                "practitioner": view.version if view else None,
            },
        }
        if body.claim_id is not None:
            answer["claim_id"] = body.claim_id
        return Response(orjson.dumps(answer), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app
