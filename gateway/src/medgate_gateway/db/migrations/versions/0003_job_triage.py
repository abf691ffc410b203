"""Jobs keep the reasoning step's triage score and label, indexed for the worklist's order.

Existing jobs keep NULL (not scored): their results stay in ``job_steps.result``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:45:54.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("triage_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("triage_label", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_triage_score"), ["triage_score"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_triage_score"))
        batch_op.drop_column("triage_label")
        batch_op.drop_column("triage_score")
