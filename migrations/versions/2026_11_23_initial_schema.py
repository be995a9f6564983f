"""initial schema: entities, append-only ledger and audit log, projections, outbox, keys

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:41:25.985793
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


APPEND_ONLY = ("events", "audit_log")


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("projection_version_seq")))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column(
            "institutions",
            postgresql.ARRAY(sa.String(length=12)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("change", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "calendar_overrides",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_overrides")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("practitioner_token", sa.String(length=40), nullable=True),
        sa.Column("institution_code", sa.String(length=12), nullable=True),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(
        op.f("ix_events_institution_code"), "events", ["institution_code"], unique=False
    )
    op.create_index(
        op.f("ix_events_practitioner_token"), "events", ["practitioner_token"], unique=False
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=60), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "institutions",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_institutions")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "outcomes",
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("doc", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_outcomes")),
    )
    op.create_table(
        "practitioners",
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("display_code", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("id_digest", sa.String(length=32), nullable=True),
        sa.Column("id_masked", sa.String(length=20), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_practitioners")),
    )
    op.create_index(
        op.f("ix_practitioners_id_digest"), "practitioners", ["id_digest"], unique=False
    )
    op.create_table(
        "projections",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("institution_code", sa.String(length=12), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("doc", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_projections")),
    )
    op.create_index(
        op.f("ix_projections_institution_code"), "projections", ["institution_code"], unique=False
    )
    op.create_table(
        "agreements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("practitioner_token", sa.String(length=40), nullable=False),
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_agreements_institution_code_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_token"],
            ["practitioners.token"],
            name=op.f("fk_agreements_practitioner_token_practitioners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
    )
    op.create_index(
        op.f("ix_agreements_institution_code"), "agreements", ["institution_code"], unique=False
    )
    op.create_index(
        op.f("ix_agreements_practitioner_token"), "agreements", ["practitioner_token"], unique=False
    )
    op.create_table(
        "aliases",
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("local_code", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=40), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_aliases_institution_code_institutions"),
        ),
        sa.PrimaryKeyConstraint("institution_code", "kind", "local_code", name=op.f("pk_aliases")),
    )
    op.create_table(
        "departments",
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_departments_institution_code_institutions"),
        ),
        sa.PrimaryKeyConstraint("institution_code", "code", name=op.f("pk_departments")),
    )
    op.create_table(
        "registrations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("practitioner_token", sa.String(length=40), nullable=False),
        sa.Column("institution_code", sa.String(length=12), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["institution_code", "department_code"],
            ["departments.institution_code", "departments.code"],
            name=op.f("fk_registrations_institution_code_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_token"],
            ["practitioners.token"],
            name=op.f("fk_registrations_practitioner_token_practitioners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
    )
    op.create_index(
        "ix_registrations_inst_dept",
        "registrations",
        ["institution_code", "department_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_registrations_institution_code"),
        "registrations",
        ["institution_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_registrations_practitioner_token"),
        "registrations",
        ["practitioner_token"],
        unique=False,
    )
    # The ledger and the audit log are append-only, enforced by the database itself.
    op.execute(
        """
        CREATE FUNCTION claimgate_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION claimgate_refuse_change()"
        )


def downgrade() -> None:
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP FUNCTION claimgate_refuse_change()")
    op.drop_index(op.f("ix_registrations_practitioner_token"), table_name="registrations")
    op.drop_index(op.f("ix_registrations_institution_code"), table_name="registrations")
    op.drop_index("ix_registrations_inst_dept", table_name="registrations")
    op.drop_table("registrations")
    op.drop_table("departments")
    op.drop_table("aliases")
    op.drop_index(op.f("ix_agreements_practitioner_token"), table_name="agreements")
    op.drop_index(op.f("ix_agreements_institution_code"), table_name="agreements")
    op.drop_table("agreements")
    op.drop_index(op.f("ix_projections_institution_code"), table_name="projections")
    op.drop_table("projections")
    op.drop_index(op.f("ix_practitioners_id_digest"), table_name="practitioners")
    op.drop_table("practitioners")
    op.drop_table("outcomes")
    op.drop_table("outbox")
    op.drop_table("institutions")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_events_practitioner_token"), table_name="events")
    op.drop_index(op.f("ix_events_institution_code"), table_name="events")
    op.drop_table("events")
    op.drop_table("calendar_overrides")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.execute(sa.schema.DropSequence(sa.Sequence("projection_version_seq")))
