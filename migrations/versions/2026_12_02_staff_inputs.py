"""staff_inputs: the practitioners whose outcome an institution's rules read; staff_heads: how
many it has registered per day (issue 14)

Re-judging an institution read its whole staff's outcomes; it now reads the rows of this table
and counts the rest of the staff in SQL (app.projection.staff). Filled here from the stored
outcomes and violations, by the same test the recompute applies
(app.projection.staff.read_by_rules): registered at the institution, and sanctioned there or
everywhere (warning, suspension, termination), or with a violation there.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_inputs",
        sa.Column("institution_code", sa.String(12), primary_key=True),
        sa.Column("practitioner_token", sa.String(40), primary_key=True),
    )
    op.create_index("ix_staff_inputs_practitioner_token", "staff_inputs", ["practitioner_token"])
    # Filled as institutions are re-judged: a missing row is counted then.
    op.create_table(
        "staff_heads",
        sa.Column("institution_code", sa.String(12), primary_key=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    )
    op.execute(
        """
        INSERT INTO staff_inputs (institution_code, practitioner_token)
        SELECT DISTINCT g.institution_code, g.practitioner_token
          FROM registrations g
          JOIN institutions i ON i.code = g.institution_code
          JOIN outcomes o ON o.subject = 'p:' || g.practitioner_token || ':' || i.profile_id
         WHERE EXISTS (
                 SELECT 1 FROM jsonb_array_elements(o.doc -> 'intervals') iv
                  WHERE iv ->> 'status' IN ('warning', 'suspended', 'terminated')
                    AND (iv ->> 'institution' IS NULL
                         OR iv ->> 'institution' = g.institution_code))
            OR EXISTS (
                 SELECT 1 FROM events e
                  WHERE e.kind = 'violation'
                    AND e.practitioner_token = g.practitioner_token
                    AND e.institution_code = g.institution_code)
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_table("staff_heads")
    op.drop_table("staff_inputs")
