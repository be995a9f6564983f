"""decision_log: every answered line, partitioned by day (partitions in their own schema)

Revision ID: 0013
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "decision_log_days"


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("institution_code", sa.String(length=40), nullable=False),
        sa.Column("department_code", sa.String(length=40), nullable=False),
        sa.Column("practitioner_token", sa.String(length=80), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(length=5), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("institution_version", sa.BigInteger(), nullable=True),
        sa.Column("practitioner_version", sa.BigInteger(), nullable=True),
        sa.Column("claim_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("day", "decision_id", name="pk_decision_log"),
        sa.CheckConstraint("decision IN ('allow', 'deny')", name="ck_decision_log_decision"),
        postgresql_partition_by="RANGE (day)",
    )
    op.create_index("ix_decision_log_decision_id", "decision_log", ["decision_id"])
    op.create_index("ix_decision_log_claim_id", "decision_log", ["claim_id"])
    op.create_index("ix_decision_log_practitioner", "decision_log", ["practitioner_token", "day"])
    op.create_index("ix_decision_log_institution", "decision_log", ["institution_code", "day"])
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    # The first days' partitions; the running service creates the next ones ahead
    # (app.decisions.partitions) and drops those past the retention setting.
    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    for i in range(-1, 4):
        d = today + timedelta(days=i)
        op.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.decision_log_{d:%Y%m%d} PARTITION OF "
            f"decision_log FOR VALUES FROM ('{d}') TO ('{d + timedelta(days=1)}')"
        )


def downgrade() -> None:
    op.drop_table("decision_log")  # its partitions with it
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
