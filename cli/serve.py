"""``cac serve``: run the FHIR service on this machine (gunicorn + outbox dispatcher).

Migrations are applied once before gunicorn forks its workers; the outbox dispatcher runs as a
child process (``python -m fhir_service.outbox``) so it never shares a forked connection pool.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import subprocess
import sys
from typing import Any

from cli.main import CLIError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the FHIR service (and an embedded worker) on this machine"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn worker processes (default cores + 1)"
    )
    parser.add_argument(
        "--no-dispatcher",
        action="store_true",
        help="do not start the outbox dispatcher (another process runs it)",
    )
    parser.add_argument(
        "--migrate-only", action="store_true", help="apply database migrations and exit"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from fhir_service.app import AUTH_DISABLED_WARNING
    from fhir_service.errors import SettingsError
    from fhir_service.gunicorn_conf import DEFAULT_WORKERS, OPTIONS
    from fhir_service.settings import Settings
    from fhir_service.storage import migrate
    from fhir_service.storage.engine import disposable_engine

    if not 0 < args.port < 65536:
        raise CLIError(f"--port must be 1..65535, got {args.port}")
    workers = args.workers or DEFAULT_WORKERS
    if workers < 1:
        raise CLIError(f"--workers must be >= 1, got {workers}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise CLIError(str(exc)) from None
    try:
        migrate(disposable_engine(settings.database_url))
    except Exception as exc:
        raise CLIError(f"cannot migrate the database ({type(exc).__name__}): {exc}") from None
    if args.migrate_only:
        print("cac serve: database is at the newest migration", file=sys.stderr)
        return 0
    if settings.auth_disabled:
        print(f"cac serve: WARNING: {AUTH_DISABLED_WARNING}", file=sys.stderr)
    # workers: the schema is current, no need for every worker to check again
    app_settings = dataclasses.replace(settings, auto_migrate=False)

    children: list[subprocess.Popen[bytes]] = []
    if not args.no_dispatcher:
        env = dict(os.environ, CAC_AUTO_MIGRATE="0")
        children.append(subprocess.Popen([sys.executable, "-m", "fhir_service.outbox"], env=env))

    from workers.embedded import embedded_worker_wanted, start_embedded_worker

    if embedded_worker_wanted() and settings.ehr_base_url:
        children.append(start_embedded_worker(settings))
    elif embedded_worker_wanted():
        print(
            "cac serve: no embedded worker: CAC_EHR_BASE_URL is not set (orders wait in the queue)",
            file=sys.stderr,
        )

    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                **OPTIONS,
                "bind": f"{args.host}:{args.port}",
                "workers": workers,
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from fhir_service.app import create_app

            return create_app(app_settings)

    try:
        _Server().run()
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0
