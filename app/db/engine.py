"""The async engine: bounded pool, timeouts on connect and on every statement."""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.settings import Settings


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def make_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    url = url or settings.database_url
    if url is None:
        raise RuntimeError(
            "no database URL: set CLAIMGATE_DATABASE_URL or use the embedded default"
        )
    timeout_ms = int(settings.db_timeout_s * 1000)
    return create_async_engine(
        url,
        # A statement's parameters never appear in an exception's message (so never in a log):
        # they hold names, ID digests, claim references.
        hide_parameters=True,
        # orjson for every JSONB document: projections and outcomes are read and written in
        # bulk by the recompute and the rebuild, where the stdlib codec was most of the CPU.
        json_serializer=_dumps,
        json_deserializer=orjson.loads,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_timeout=settings.db_timeout_s,
        pool_pre_ping=True,
        connect_args={
            "timeout": settings.db_timeout_s,
            "command_timeout": max(settings.db_timeout_s * 5, 10.0),
            "server_settings": {
                "application_name": "claimgate",
                # Admin writes may wait briefly on a practitioner's row lock; never forever.
                "lock_timeout": str(timeout_ms * 5),
                "idle_in_transaction_session_timeout": "60000",
            },
        },
    )
