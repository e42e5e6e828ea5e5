"""``cac worker``: run a Celery worker that processes calcium-score orders (``cac.process_order``).

Reads the ``CAC_`` environment (broker, database, EHR, PACS allow-list; see ``deploy/env.md``).
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.main import CLIError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a Celery worker that processes calcium-score orders",
        description="Run a Celery worker for cac.process_order against CAC_BROKER_URL.",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="worker processes (default CAC_WORKER_CONCURRENCY or 1)",
    )
    parser.add_argument("--loglevel", default="INFO", help="log level (default INFO)")
    parser.add_argument("--hostname", default=None, help="worker node name (default cac@<host>)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from fhir_service.errors import SettingsError
    from fhir_service.settings import Settings
    from workers.celery_app import create_celery
    from workers.config import WorkerSettings
    from workers.errors import ConfigurationError

    try:
        settings = Settings.from_env()
        worker_settings = WorkerSettings.from_env()
    except (SettingsError, ConfigurationError) as exc:
        raise CLIError(str(exc)) from exc
    if not settings.ehr_base_url:
        raise CLIError("CAC_EHR_BASE_URL is not set: the worker cannot read or write the EHR")
    concurrency = args.concurrency or worker_settings.worker_concurrency
    if concurrency < 1:
        raise CLIError(f"--concurrency must be >= 1, got {concurrency}")
    app = create_celery(settings, worker_settings)
    argv = [
        "worker",
        f"--loglevel={args.loglevel}",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    app.worker_main(argv)
    return 0
