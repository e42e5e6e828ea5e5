"""Alembic environment: runs migrations on the connection handed over by ``storage.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from fhir_service.storage.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
