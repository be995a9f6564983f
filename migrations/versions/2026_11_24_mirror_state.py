"""mirror_state: the count of outbox batches mirrored into Redis, and the mirror's generation

Redis keeps the same two facts (``cg:meta:batches``, ``cg:meta:generation``); a Redis whose
count is below this one came back older than it was — restarted from its own snapshot, a
lagging replica promoted, a restore from backup — and is not trusted until it is repaired.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mirror_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("batches", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("generation", sa.String(length=32), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_mirror_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_state")),
    )
    op.execute("INSERT INTO mirror_state (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("mirror_state")
