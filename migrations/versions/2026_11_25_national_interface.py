"""national interface: institution aliases, the findings answered in the platform's shapes, and
the clerks' dispositions of them (3103)

``institution_aliases`` maps a hospital's own code for itself to its national code, agency-wide;
``national_findings`` keeps, per decision that had findings, what the 3101/3102/2204/2301 answer
said; ``dispositions`` keeps a clerk's 3103 disposition of a decision, once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "institution_aliases",
        sa.Column("local_code", sa.String(length=32), nullable=False),
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_institution_aliases_institution_code_institutions"),
        ),
        sa.PrimaryKeyConstraint("local_code", name=op.f("pk_institution_aliases")),
    )
    op.create_index(
        op.f("ix_institution_aliases_institution_code"),
        "institution_aliases",
        ["institution_code"],
    )
    op.create_table(
        "national_findings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("infno", sa.String(length=8), nullable=False),
        sa.Column("institution_code", sa.String(length=40), nullable=False),
        sa.Column("department_code", sa.String(length=40), nullable=False),
        sa.Column("practitioner_token", sa.String(length=40), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        sa.Column("claim_ref", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_national_findings")),
    )
    op.create_index(op.f("ix_national_findings_decision_id"), "national_findings", ["decision_id"])
    op.create_table(
        "dispositions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column("warn_type", sa.String(length=3), nullable=False),
        sa.Column("dspo_way", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opter", sa.String(length=64), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("msgid", sa.String(length=64), nullable=True),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("dspo_way IN (1, 2)", name=op.f("ck_dispositions_dspo_way")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispositions")),
        sa.UniqueConstraint(
            "decision_id", "institution_code", name=op.f("uq_dispositions_decision_id")
        ),
    )
    op.create_index("ix_dispositions_inst_at", "dispositions", ["institution_code", "recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_dispositions_inst_at", table_name="dispositions")
    op.drop_table("dispositions")
    op.drop_index(op.f("ix_national_findings_decision_id"), table_name="national_findings")
    op.drop_table("national_findings")
    op.drop_index(op.f("ix_institution_aliases_institution_code"), table_name="institution_aliases")
    op.drop_table("institution_aliases")
