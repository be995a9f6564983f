"""Every table of the source of truth, as SQLAlchemy Core metadata with a naming convention.

Entities (institutions, departments, practitioners, registrations, agreements, aliases) hold the
current state an officer wrote; the ``events`` ledger holds every change, append-only; the
``projections`` are the documents the check reads (mirrored into Redis through the ``outbox``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One sequence for every projection version, so versions order writes across all keys.
projection_version_seq = Sequence("projection_version_seq", metadata=metadata)


def _created() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


institutions = Table(
    "institutions",
    metadata,
    Column("code", String(12), primary_key=True),
    Column("name", Text, nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("profile_id", String(40), nullable=False),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

departments = Table(
    "departments",
    metadata,
    Column("institution_code", String(12), nullable=False),
    Column("code", String(32), nullable=False),
    Column("name", Text, nullable=False),
    _created(),
    PrimaryKeyConstraint("institution_code", "code"),
    ForeignKeyConstraint(["institution_code"], ["institutions.code"]),
)

practitioners = Table(
    "practitioners",
    metadata,
    # The code for national codes, "ID:" + HMAC for resident ID numbers (never stored in clear).
    Column("token", String(40), primary_key=True),
    Column("display_code", String(32), nullable=False),
    Column("category", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("id_digest", String(32), nullable=True, index=True),
    Column("id_masked", String(20), nullable=True),
    # a roster's other columns (性别, 职称, 证书编码 …; app.interchange), never a phone number
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

registrations = Table(
    "registrations",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("practitioner_token", String(40), nullable=False, index=True),
    Column("institution_code", String(12), nullable=False, index=True),
    Column("department_code", String(32), nullable=False),
    Column("start", Date, nullable=False),
    Column("end", Date, nullable=True),
    _created(),
    ForeignKeyConstraint(["practitioner_token"], ["practitioners.token"]),
    ForeignKeyConstraint(
        ["institution_code", "department_code"],
        ["departments.institution_code", "departments.code"],
    ),
)

agreements = Table(
    "agreements",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("practitioner_token", String(40), nullable=False, index=True),
    Column("institution_code", String(12), nullable=False, index=True),
    Column("start", Date, nullable=False),
    Column("end", Date, nullable=True),
    _created(),
    ForeignKeyConstraint(["practitioner_token"], ["practitioners.token"]),
    ForeignKeyConstraint(["institution_code"], ["institutions.code"]),
)

aliases = Table(
    "aliases",
    metadata,
    Column("institution_code", String(12), nullable=False),
    Column("kind", String(16), nullable=False),  # practitioner | department
    Column("local_code", String(32), nullable=False),
    Column("target", String(40), nullable=False),
    _created(),
    PrimaryKeyConstraint("institution_code", "kind", "local_code"),
    ForeignKeyConstraint(["institution_code"], ["institutions.code"]),
)

# A hospital's own code for itself (``011134``, ``CDSDERMYY``), agency-wide: one local code names
# one institution. Never shaped like a national code (app.admin.local_codes refuses those), so it
# can never stand where a real code stands.
institution_aliases = Table(
    "institution_aliases",
    metadata,
    Column("local_code", String(32), primary_key=True),
    Column("institution_code", String(12), nullable=False, index=True),
    _created(),
    ForeignKeyConstraint(["institution_code"], ["institutions.code"]),
)

# The append-only ledger: a trigger (see the migration) refuses UPDATE and DELETE.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("practitioner_token", String(40), nullable=True, index=True),
    Column("institution_code", String(12), nullable=True, index=True),
    Column("department_code", String(32), nullable=True),
    Column("occurred_on", Date, nullable=True),
    Column("payload", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("api_key_id", Integer, nullable=True),
    Column("request_id", String(64), nullable=True),
)

# Derived state, recomputed from the ledger on every write and keyed by the Redis key it mirrors.
projections = Table(
    "projections",
    metadata,
    Column("key", Text, primary_key=True),
    Column("institution_code", String(12), nullable=True, index=True),
    Column("version", BigInteger, nullable=False),
    Column("doc", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Engine results kept between writes, so an institution can be re-judged without re-running
# every one of its practitioners.
outcomes = Table(
    "outcomes",
    metadata,
    Column("subject", String(60), primary_key=True),
    Column("doc", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # LIKE 'd:<institution>:%' under any collation (migration 0003).
    Index(
        "ix_outcomes_subject_prefix", "subject", postgresql_ops={"subject": "varchar_pattern_ops"}
    ),
)

# The practitioners whose outcome an institution's rules read (app.policy.institution_rules):
# registered there, and sanctioned (warning, suspension, termination) there or everywhere, or
# with a violation there. Re-judging an institution reads these and counts the rest in SQL
# (app.projection.staff), instead of reading its whole staff. Kept by the practitioner's
# recompute; migration 0014 fills it from the outcomes.
staff_inputs = Table(
    "staff_inputs",
    metadata,
    Column("institution_code", String(12), primary_key=True),
    Column("practitioner_token", String(40), primary_key=True, index=True),
)

# How many practitioners an institution has registered per day and category, as the changes
# of that count (app.projection.staff.staff_counts): counted again in SQL when the institution
# is re-judged for its own events (registrations among them), read from here when a
# practitioner's outcome alone re-judges it — counting a 15,000-staff hospital takes ~100 ms.
staff_heads = Table(
    "staff_heads",
    metadata,
    Column("institution_code", String(12), primary_key=True),
    Column("changes", JSONB, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("key", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    _created(),
)

# One row: how many outbox batches have been mirrored, and which mirror they went into
# (app.sync.stamp). Redis keeps the same two facts; a Redis whose count is lower came back
# older than it was.
mirror_state = Table(
    "mirror_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("batches", BigInteger, nullable=False, server_default="0"),
    Column("generation", String(32), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id = 1", name="single_row"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(24), nullable=False),
    Column("role", String(16), nullable=False),
    Column("institutions", ARRAY(String(12)), nullable=False, server_default="{}"),
    Column("label", Text, nullable=False, server_default=""),
    _created(),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(60), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSONB, nullable=False),
    _created(),
    PrimaryKeyConstraint("scope", "key"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("api_key_id", Integer, nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("action", String(80), nullable=False),
    Column("target", Text, nullable=False),
    Column("change", JSONB, nullable=False),
)

calendar_overrides = Table(
    "calendar_overrides",
    metadata,
    Column("day", Date, primary_key=True),
    Column("working", Boolean, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    _created(),
)

Index(
    "ix_registrations_inst_dept", registrations.c.institution_code, registrations.c.department_code
)

# Claims checked under a suspended, terminated, locked or cancelled code (national 2024
# framework: billing under such a code is itself a violation). Written in batches, off the hot
# path, by app.checks.attempts.
sanctioned_attempts = Table(
    "sanctioned_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("institution_code", String(12), nullable=False),
    Column("department_code", String(40), nullable=False),
    Column("practitioner_token", String(40), nullable=False),
    Column("service_date", Date, nullable=False),
    Column("reasons", ARRAY(String(40)), nullable=False),
    Column("emergency", Boolean, nullable=False),
    Column("decision_id", String(32), nullable=False),
    Column("claim_id", String(64), nullable=True),
    Index("ix_sanctioned_attempts_inst_at", "institution_code", "at"),
)

# What the national platform's shapes were answered with, per decision that had findings
# (app.interfaces.national): what a clerk's disposition (3103) overrides. Written in batches, off
# the hot path, like sanctioned attempts. The institution as judged: a local code nobody knows
# is kept as sent, hence the width.
national_findings = Table(
    "national_findings",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("decision_id", String(32), nullable=False, index=True),
    Column("infno", String(8), nullable=False),
    Column("institution_code", String(40), nullable=False),
    Column("department_code", String(40), nullable=False),
    Column("practitioner_token", String(40), nullable=False),
    Column("service_date", Date, nullable=False),
    Column("emergency", Boolean, nullable=False),
    Column("reasons", ARRAY(String(40)), nullable=False),
    Column("blocking", Boolean, nullable=False),
    Column("claim_ref", String(64), nullable=True),
)

# A clerk's disposition of a decision's findings (3103 事前事中服务反馈): dspo_way 1 continued
# despite them (an override, with its reason), 2 went back to change the order. One per decision
# and institution: a retry is not recorded twice.
dispositions = Table(
    "dispositions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("decision_id", String(32), nullable=False),
    Column("institution_code", String(12), nullable=False),
    Column("warn_type", String(3), nullable=False),
    Column("dspo_way", SmallInteger, nullable=False),
    Column("reason", Text, nullable=True),
    Column("opter", String(64), nullable=True),
    Column("api_key_id", Integer, nullable=True),
    Column("msgid", String(64), nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("decision_id", "institution_code"),
    CheckConstraint("dspo_way IN (1, 2)", name="dspo_way"),
    Index("ix_dispositions_inst_at", "institution_code", "recorded_at"),
)

# Every answered line (app.decisions): what was asked, by which key, what was answered and on
# which data versions. Partitioned by day (the Asia/Shanghai date it was answered), written by
# COPY in batches off the hot path; partitions live in their own schema (DECISION_PARTITIONS),
# are created ahead and dropped past CLAIMGATE_DECISION_LOG_RETENTION_DAYS. The practitioner is
# kept as its token (an ID number's HMAC), never in clear.
DECISION_PARTITIONS = "decision_log_days"
decision_log = Table(
    "decision_log",
    metadata,
    Column("day", Date, nullable=False),
    Column("decision_id", String(32), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=False),
    Column("key_id", Integer, nullable=True),
    Column("institution_code", String(40), nullable=False),
    Column("department_code", String(40), nullable=False),
    Column("practitioner_token", String(80), nullable=False),
    Column("service_date", Date, nullable=False),
    Column("emergency", Boolean, nullable=False),
    Column("decision", String(5), nullable=False),
    Column("reasons", ARRAY(String(40)), nullable=False),
    Column("institution_version", BigInteger, nullable=True),
    Column("practitioner_version", BigInteger, nullable=True),
    Column("claim_id", String(64), nullable=True),
    Column("source", String(8), nullable=False),
    PrimaryKeyConstraint("day", "decision_id", name="pk_decision_log"),
    CheckConstraint("decision IN ('allow', 'deny')", name="decision"),
    Index("ix_decision_log_decision_id", "decision_id"),
    Index("ix_decision_log_claim_id", "claim_id"),
    Index("ix_decision_log_practitioner", "practitioner_token", "day"),
    Index("ix_decision_log_institution", "institution_code", "day"),
    postgresql_partition_by="RANGE (day)",
)
