"""The decision log's day partitions: created ahead, dropped past the retention setting.

Every API process runs this at start and every hour; one at a time (an advisory lock), so two
processes never race to create the same partition. A row is written under the day it was
answered (Asia/Shanghai), which is today, so partitions for the next days always exist before
they are needed — PostgreSQL refuses a row with no partition, and the recorder would count it as
refused rather than hold up the rest.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import DECISION_PARTITIONS

log = logging.getLogger("claimgate.decisions")

AHEAD_DAYS = 3
_LOCK = 0x636C_6467  # "cldg": the advisory lock of partition maintenance


def shanghai_today() -> date:
    return (datetime.now(UTC) + timedelta(hours=8)).date()


def partition_name(day: date) -> str:
    return f"decision_log_{day:%Y%m%d}"


async def existing(conn: AsyncConnection) -> dict[date, str]:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = 'decision_log'::regclass AND n.nspname = :schema"
        ),
        {"schema": DECISION_PARTITIONS},
    )
    out = {}
    for (name,) in rows:
        try:
            out[datetime.strptime(name[-8:], "%Y%m%d").date()] = name
        except ValueError:
            continue  # not one of ours
    return out


async def maintain(engine: AsyncEngine, retention_days: int, today: date | None = None) -> None:
    """Create the partitions of yesterday to ``AHEAD_DAYS`` ahead; drop those older than
    ``retention_days``."""
    today = today or shanghai_today()
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        have = await existing(conn)
        for i in range(-1, AHEAD_DAYS + 1):
            d = today + timedelta(days=i)
            if d not in have:
                await conn.execute(
                    text(
                        f"CREATE TABLE {DECISION_PARTITIONS}.{partition_name(d)} PARTITION OF "
                        f"decision_log FOR VALUES FROM ('{d}') TO ('{d + timedelta(days=1)}')"
                    )
                )
        oldest = today - timedelta(days=retention_days)
        for d, name in sorted(have.items()):
            if d < oldest:
                await conn.execute(text(f"DROP TABLE {DECISION_PARTITIONS}.{name}"))
                log.info("decision log: dropped the partition of %s (retention)", d)
