"""Workflow: job steps, job events, job run/plan/error columns, one result per job and kind.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:55:29.354159
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_fk", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_fk"], ["jobs.id"], name=op.f("fk_job_events_job_fk_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_events_job_fk"), ["job_fk"], unique=False)

    op.create_table(
        "job_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_fk", sa.String(length=36), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("series", sa.JSON(), nullable=False),
        sa.Column("dispatches", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("model", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("artifacts", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=False),
        sa.Column("error_detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_fk"], ["jobs.id"], name=op.f("fk_job_steps_job_fk_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_steps")),
        sa.UniqueConstraint("job_fk", "step", name="uq_job_steps_job_step"),
    )
    with op.batch_alter_table("job_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_steps_job_fk"), ["job_fk"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_steps_status"), ["status"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("trigger", sa.String(length=32), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("times_ready", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("plan", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("error_code", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column(
            "state", existing_type=sa.VARCHAR(length=16), type_=sa.String(length=24), existing_nullable=False
        )
        batch_op.create_index(batch_op.f("ix_jobs_updated_at"), ["updated_at"], unique=False)
        batch_op.create_unique_constraint("uq_jobs_study_ready", ["study_fk", "times_ready"])
        batch_op.drop_column("steps")

    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_name", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("model_version", sa.String(length=32), nullable=False, server_default=""))
        batch_op.create_unique_constraint("uq_results_job_kind", ["job_fk", "kind"])


def downgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_constraint("uq_results_job_kind", type_="unique")
        batch_op.drop_column("model_version")
        batch_op.drop_column("model_name")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("steps", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.drop_constraint("uq_jobs_study_ready", type_="unique")
        batch_op.drop_index(batch_op.f("ix_jobs_updated_at"))
        batch_op.alter_column(
            "state", existing_type=sa.String(length=24), type_=sa.VARCHAR(length=16), existing_nullable=False
        )
        batch_op.drop_column("finished_at")
        batch_op.drop_column("error_code")
        batch_op.drop_column("plan")
        batch_op.drop_column("times_ready")
        batch_op.drop_column("trigger")
        batch_op.drop_column("run")

    with op.batch_alter_table("job_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_steps_status"))
        batch_op.drop_index(batch_op.f("ix_job_steps_job_fk"))

    op.drop_table("job_steps")
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_events_job_fk"))

    op.drop_table("job_events")
