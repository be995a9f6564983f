"""The async engine: bounded pool, timeouts on connect and on every statement."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.settings import Settings


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def make_engine(
    settings: Settings, url: str | None = None, *, pool_wait_s: float | None = None
) -> AsyncEngine:
    """``pool_wait_s``: how long to wait for a pooled connection (default: the DB timeout)."""
    url = url or settings.database_url
    if url is None:
        raise RuntimeError(
            "no database URL: set CLAIMGATE_DATABASE_URL or use the embedded default"
        )
    timeout_ms = int(settings.db_timeout_s * 1000)
    server_settings = {
        "application_name": "claimgate",
        # Admin writes may wait briefly on a practitioner's row lock; never forever.
        "lock_timeout": str(timeout_ms * 5),
        "idle_in_transaction_session_timeout": "60000",
    }
    pooled: dict[str, Any] = {}
    if settings.database_pgbouncer and url != settings.database_direct_url:
        # PgBouncer in transaction mode hands each transaction whatever server connection is
        # free: a statement prepared in one is unknown in the next, and a name asyncpg numbered
        # per client collides with another client's on a shared server connection. So nothing
        # is cached across transactions and every prepared statement has a name of its own
        # (SQLAlchemy's recipe: "Prepared Statement Name with PGBouncer"). PgBouncer refuses
        # startup parameters it does not track: the two timeouts are set on the role instead
        # (docs/operations.md, PgBouncer).
        server_settings = {"application_name": "claimgate"}
        pooled = {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _statement_name,
        }
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
        pool_timeout=settings.db_timeout_s if pool_wait_s is None else pool_wait_s,
        pool_pre_ping=True,
        connect_args={
            "timeout": settings.db_timeout_s,
            "command_timeout": max(settings.db_timeout_s * 5, 10.0),
            "server_settings": server_settings,
            **pooled,
        },
    )


def _statement_name() -> str:
    return f"__cg_{uuid.uuid4().hex}__"
