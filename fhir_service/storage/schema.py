"""Table definitions (SQLAlchemy Core); the Alembic migrations create exactly these.

Times are timezone-aware UTC. JSON documents are stored as text exactly as served, so a read is
one row fetch and no re-serialisation.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: One row per accepted order (the placer's ServiceRequest and the context that came with it).
orders = Table(
    "orders",
    metadata,
    Column("id", String(64), primary_key=True),
    # identity of the placer's order: "identifier:<system>|<value>" or "id:<ServiceRequest.id>"
    Column("order_key", String(512), nullable=False, unique=True),
    # ServiceRequest.meta.versionId, else a digest of the resource: equal means "same order"
    Column("version_key", String(128), nullable=False),
    Column("request_status", String(32), nullable=False),
    Column("patient_reference", String(512), nullable=False),
    Column("study_instance_uid", String(128), nullable=True),
    Column("accession_number", String(128), nullable=True),
    Column("service_request_json", Text, nullable=False),
    Column("patient_json", Text, nullable=True),
    Column("imaging_study_json", Text, nullable=True),
    Column("endpoints_json", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: One FHIR Task per order; status columns mirror the JSON for search and transitions.
tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("order_id", String(64), ForeignKey("orders.id"), nullable=False, unique=True),
    Column("status", String(32), nullable=False),
    Column("business_status", String(64), nullable=True),
    Column("status_reason", Text, nullable=True),
    Column("focus_reference", String(512), nullable=True),
    Column("focus_identifier", String(512), nullable=True),
    Column("patient_reference", String(512), nullable=False),
    Column("output_json", Text, nullable=False, default="[]"),
    # optimistic concurrency: every update increments it; it is also Task.meta.versionId
    Column("version", Integer, nullable=False),
    Column("task_json", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_focus_reference", "focus_reference"),
    Index("ix_tasks_focus_identifier", "focus_identifier"),
    Index("ix_tasks_patient_reference", "patient_reference"),
)

#: Hand-off to the workers: committed with the order, sent to the broker by the dispatcher.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), ForeignKey("tasks.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    # a dispatcher leases a row before sending, so two dispatchers never send it at once
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("dispatched_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_pending", "dispatched_at", "next_attempt_at"),
)

#: FHIR AuditEvents (IHE Basic Audit Log Patterns) for every access to patient data.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("recorded", DateTime(timezone=True), nullable=False),
    Column("action", String(1), nullable=False),
    Column("outcome", String(2), nullable=False),
    Column("audit_json", Text, nullable=False),
    Index("ix_audit_events_recorded", "recorded"),
)
