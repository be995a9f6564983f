"""outcomes: an index that answers prefix searches (``d:<institution>:%``, ``p:<token>:%``)

Re-judging an institution lists its departments' outcomes by subject prefix. Under any collation
but "C" the primary key cannot serve ``LIKE 'prefix%'``, so each re-judgement scanned the whole
table: seeding 1,000,000 practitioners slowed from 11 s to 38 s per bulk body as it grew.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outcomes_subject_prefix",
        "outcomes",
        ["subject"],
        postgresql_ops={"subject": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_outcomes_subject_prefix", table_name="outcomes")
