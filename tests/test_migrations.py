"""Migrations on a database of their own: up to head, down to base, up again; the schema they
build matches the models exactly; the ledger and the audit log refuse UPDATE, DELETE and TRUNCATE.

Alembic's env.py runs its own event loop, so its commands run in a worker thread.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.tables import metadata
from tests.conftest import Servers

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parent.parent
APPEND_ONLY = ("events", "audit_log")


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest_asyncio.fixture
async def fresh_db(servers: Servers) -> AsyncIterator[str]:
    """An empty database on the test server; its SQLAlchemy URL."""
    name = f"claimgate_mig_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(_plain(servers.database_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield (
            make_url(servers.database_url).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        conn = await asyncpg.connect(_plain(servers.database_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def _config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


async def _alembic(url: str, verb: str, target: str) -> None:
    fn = command.upgrade if verb == "upgrade" else command.downgrade
    await asyncio.to_thread(fn, _config(url), target)


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(_plain(url))
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        return {r[0] for r in rows}
    finally:
        await conn.close()


async def _current(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def rev(sync: Connection) -> str | None:
                return MigrationContext.configure(sync).get_current_revision()

            return await conn.run_sync(rev)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_on_an_empty_database(fresh_db: str) -> None:
    head = ScriptDirectory.from_config(_config(fresh_db)).get_current_head()
    assert await _tables(fresh_db) == set()

    await _alembic(fresh_db, "upgrade", "head")
    assert await _tables(fresh_db) == set(metadata.tables)
    assert await _current(fresh_db) == head

    await _alembic(fresh_db, "downgrade", "base")
    assert await _tables(fresh_db) == set()
    assert await _current(fresh_db) is None
    conn = await asyncpg.connect(_plain(fresh_db))
    try:
        leftovers = await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND relkind IN ('S', 'i') "
            "UNION ALL SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public'"
        )
    finally:
        await conn.close()
    assert [r[0] for r in leftovers if not r[0].startswith("alembic_version")] == []

    await _alembic(fresh_db, "upgrade", "head")
    assert await _tables(fresh_db) == set(metadata.tables)
    assert await _current(fresh_db) == head


async def test_the_migrated_schema_matches_the_models(fresh_db: str) -> None:
    """`upgrade head` builds exactly what app.db.tables declares: autogenerate finds nothing
    to add, drop or alter (tables, columns, types, indexes, constraints)."""
    await _alembic(fresh_db, "upgrade", "head")
    engine = create_async_engine(fresh_db)
    try:
        async with engine.connect() as conn:

            def diff(sync: Connection) -> list[Any]:
                ctx = MigrationContext.configure(sync, opts={"compare_type": True})
                return list(compare_metadata(ctx, metadata))

            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("table", APPEND_ONLY)
async def test_the_ledger_and_audit_log_are_append_only(fresh_db: str, table: str) -> None:
    await _alembic(fresh_db, "upgrade", "head")
    conn = await asyncpg.connect(_plain(fresh_db))
    try:
        if table == "events":
            insert = "INSERT INTO events (kind, payload) VALUES ('test', '{}') RETURNING id"
        else:
            insert = (
                "INSERT INTO audit_log (action, target, change) "
                "VALUES ('test', 'x', '{}') RETURNING id"
            )
        row_id = await conn.fetchval(insert)
        assert row_id is not None
        assert await conn.fetchval(insert) != row_id

        refused = (
            f"UPDATE {table} SET recorded_at = now()"
            if table == "events"
            else f"UPDATE {table} SET target = 'y'",
            f"DELETE FROM {table} WHERE id = {row_id}",
            f"DELETE FROM {table}",
            f"TRUNCATE {table}",
        )
        for statement in refused:
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2
    finally:
        await conn.close()
