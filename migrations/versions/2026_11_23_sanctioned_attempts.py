"""sanctioned attempts: claims checked under a suspended / terminated / locked code

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sanctioned_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column("department_code", sa.String(length=40), nullable=False),
        sa.Column("practitioner_token", sa.String(length=40), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("claim_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sanctioned_attempts")),
    )
    op.create_index(
        "ix_sanctioned_attempts_inst_at", "sanctioned_attempts", ["institution_code", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_sanctioned_attempts_inst_at", table_name="sanctioned_attempts")
    op.drop_table("sanctioned_attempts")
