"""Database engines and migrations.

SQLite (the embedded, one-machine default) runs in WAL mode with ``synchronous=FULL`` so a commit
is on disk before the service answers (https://www.sqlite.org/pragma.html#pragma_synchronous), and
write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout
instead of failing on a lock upgrade. PostgreSQL keeps its durable default
(``synchronous_commit=on``).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

#: Execution option marking a connection whose transaction will write.
WRITE_OPTION = "cac_write"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``database_url`` with the durability settings above.

    For a file SQLite URL the parent folder is created.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    return create_engine(url, **kwargs)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite otherwise defers it)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class _FileLock:
    """Writer lock of one SQLite database for this process: a thread lock plus ``flock``.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so under concurrent writers the
    waiting, not the work, dominates latency. ``flock`` hands the lock over as soon as it is
    released (the kernel wakes the waiter). One instance per (file, process): a descriptor
    inherited through ``fork`` would share its lock with the parent.
    """

    def __init__(self, path: str) -> None:
        self._thread_lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


_write_locks: dict[tuple[str, int], _FileLock] = {}
_write_locks_guard = threading.Lock()


def _sqlite_write_lock(engine: Engine) -> _FileLock | None:
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    key = (os.path.abspath(database), os.getpid())
    with _write_locks_guard:
        lock = _write_locks.get(key)
        if lock is None:
            lock = _write_locks[key] = _FileLock(key[0] + "-writelock")
        return lock


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on normal exit, rolled back on error.

    On SQLite, writers of every process queue on a file lock first (see :class:`_FileLock`).
    """
    lock = _sqlite_write_lock(engine)
    with lock if lock is not None else nullcontext(), engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a read-only transaction (one consistent snapshot)."""
    with engine.connect() as connection, connection.begin():
        yield connection


def alembic_config(database_url: str) -> Config:
    """Alembic configuration of the shipped migrations (``fhir_service/migrations``)."""
    package = resources.files("fhir_service") / "migrations"
    config = Config(str(package / "alembic.ini"))
    config.set_main_option("script_location", str(package))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Apply every pending migration (``alembic upgrade head``) on ``engine``'s database."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current == head


def disposable_engine(database_url: str) -> Engine:
    """An engine without a pool, for one-off commands (migrations from the CLI)."""
    return make_engine(database_url, poolclass=NullPool)
