"""Initial schema: orders, tasks, outbox, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("order_key", sa.String(512), nullable=False, unique=True),
        sa.Column("version_key", sa.String(128), nullable=False),
        sa.Column("request_status", sa.String(32), nullable=False),
        sa.Column("patient_reference", sa.String(512), nullable=False),
        sa.Column("study_instance_uid", sa.String(128), nullable=True),
        sa.Column("accession_number", sa.String(128), nullable=True),
        sa.Column("service_request_json", sa.Text, nullable=False),
        sa.Column("patient_json", sa.Text, nullable=True),
        sa.Column("imaging_study_json", sa.Text, nullable=True),
        sa.Column("endpoints_json", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "order_id", sa.String(64), sa.ForeignKey("orders.id"), nullable=False, unique=True
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("business_status", sa.String(64), nullable=True),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("focus_reference", sa.String(512), nullable=True),
        sa.Column("focus_identifier", sa.String(512), nullable=True),
        sa.Column("patient_reference", sa.String(512), nullable=False),
        sa.Column("output_json", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("task_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_index("ix_tasks_focus_reference", "tasks", ["focus_reference"])
    op.create_index("ix_tasks_focus_identifier", "tasks", ["focus_identifier"])
    op.create_index("ix_tasks_patient_reference", "tasks", ["patient_reference"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_outbox_pending", "outbox", ["dispatched_at", "next_attempt_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(1), nullable=False),
        sa.Column("outcome", sa.String(2), nullable=False),
        sa.Column("audit_json", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_events_recorded", "audit_events", ["recorded"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("outbox")
    op.drop_table("tasks")
    op.drop_table("orders")
