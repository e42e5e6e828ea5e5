"""Durable storage of orders, Tasks, the outbox and AuditEvents (SQLAlchemy 2).

SQLite by default (WAL, durable commit), PostgreSQL for several machines; Alembic migrations in
``fhir_service/migrations``. The workers use :class:`TaskStore` (see ``docs/fhir_service.md``).
"""

from __future__ import annotations

from fhir_service.storage.engine import make_engine, migrate, schema_is_current
from fhir_service.storage.repository import (
    UNSET,
    AcceptOutcome,
    AcceptResult,
    AuditRow,
    AuditStore,
    GroupCommitOrderStore,
    OrderRecord,
    OrderStore,
    OutboxItem,
    OutboxStore,
    TaskRecord,
    TaskStore,
)

__all__ = [
    "UNSET",
    "AcceptOutcome",
    "AcceptResult",
    "AuditRow",
    "AuditStore",
    "GroupCommitOrderStore",
    "OrderRecord",
    "OrderStore",
    "OutboxItem",
    "OutboxStore",
    "TaskRecord",
    "TaskStore",
    "make_engine",
    "migrate",
    "schema_is_current",
]
