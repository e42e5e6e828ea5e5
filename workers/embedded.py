"""The embedded worker of ``cac serve``: one Celery worker process beside the web service, so a
single command runs the whole product on one machine.

It is a child process (``python -m cli.main worker``) rather than a thread: the scoring work is
CPU-bound and must not share the GIL or a forked connection pool with the web workers. It uses the
same ``CAC_`` environment, hence the same broker: the default ``sqla+sqlite:///<data_dir>/
broker.sqlite`` (no server needed) or Redis when ``CAC_BROKER_URL`` names one.
"""

from __future__ import annotations

import os
import subprocess
import sys

from fhir_service.settings import Settings

#: How to run the ``cac`` command from Python (``python -m cli.main`` would load ``cli.main`` twice,
#: as ``__main__`` and as ``cli.main``, so its ``CLIError`` would not be caught).
CAC_COMMAND: tuple[str, ...] = (
    sys.executable,
    "-c",
    "import sys; from cli.main import main; sys.exit(main())",
)

#: Set to 0 to run ``cac serve`` without the embedded worker (workers run elsewhere).
EMBEDDED_WORKER_VARIABLE = "CAC_EMBEDDED_WORKER"


def embedded_worker_wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether ``cac serve`` should start a worker (``CAC_EMBEDDED_WORKER``, default on)."""
    env = os.environ if environ is None else environ
    return env.get(EMBEDDED_WORKER_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def start_embedded_worker(settings: Settings, concurrency: int = 1) -> subprocess.Popen[bytes]:
    """Start ``cac worker`` as a child process with this process's environment.

    Parameters
    ----------
    settings
        The service settings (only checked here: the child reads the same environment).
    concurrency
        Worker pool processes.
    """
    env = dict(os.environ, CAC_AUTO_MIGRATE="0")
    if "CAC_BROKER_URL" not in env:
        env["CAC_BROKER_URL"] = settings.broker_url
    return subprocess.Popen(
        [*CAC_COMMAND, "worker", f"--concurrency={concurrency}"],
        env=env,
    )
