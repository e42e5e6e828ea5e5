"""The outbox dispatcher: sends committed orders to the broker, retrying while it is down.

The API commits order, Task and outbox row in one transaction before it answers; this loop then
publishes ``cac.process_order`` for every due row and marks it dispatched. If the process dies
between commit and publish, the row is still pending and the next dispatcher (after a restart)
sends it. Rows are leased before sending, so several dispatchers (one per API process, or a
separate process) never send the same row at the same time. A message may still be sent twice
(crash after publish, before ``mark_dispatched``); the workers' ``TaskStore.claim`` makes that
harmless.

Run it as a thread (:func:`start_dispatcher_thread`) or as a process::

    python -m fhir_service.outbox
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fhir_service.errors import SettingsError
from fhir_service.queue import create_celery, send_process_order
from fhir_service.settings import Settings
from fhir_service.storage import OutboxStore, make_engine, migrate

logger = logging.getLogger(__name__)

#: Backoff after a failed send: BASE * 2**attempts seconds, capped, with +-20 % jitter.
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0


def backoff_s(attempts: int) -> float:
    """Delay before the next try after ``attempts`` failed sends."""
    delay: float = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** min(attempts, 20))
    return delay * random.uniform(0.8, 1.2)


class Dispatcher:
    """Drain the outbox into the broker.

    Parameters
    ----------
    engine
        The service database.
    send
        Publishes one Task id (default: ``cac.process_order`` through ``celery_app``).
    interval_s
        Pause between polls when the outbox is empty.
    """

    def __init__(
        self,
        engine: Engine,
        celery_app: Celery | None = None,
        *,
        send: Callable[[str], None] | None = None,
        interval_s: float = 1.0,
        batch: int = 50,
    ) -> None:
        if send is None:
            if celery_app is None:
                raise ValueError("give celery_app or send")
            app = celery_app

            def send(task_id: str) -> None:
                send_process_order(app, task_id)

        self._send = send
        self._store = OutboxStore(engine)
        self.interval_s = interval_s
        self.batch = batch

    def run_once(self) -> int:
        """Send every due row once; return how many were dispatched."""
        sent = 0
        for item in self._store.lease(limit=self.batch):
            try:
                self._send(item.task_id)
            except Exception as exc:  # any broker/transport failure: retry later
                delay = backoff_s(item.attempts)
                logger.warning(
                    "outbox: sending Task %s failed (%s); retry in %.1f s",
                    item.task_id,
                    type(exc).__name__,
                    delay,
                )
                self._store.mark_failed(item.id, f"{type(exc).__name__}: {exc}", delay)
                continue
            self._store.mark_dispatched(item.id)
            sent += 1
            logger.info("outbox: dispatched Task %s", item.task_id)
        return sent

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; storage errors are logged and retried."""
        while not stop.is_set():
            try:
                sent = self.run_once()
            except SQLAlchemyError as exc:
                logger.warning("outbox: storage unavailable (%s)", type(exc).__name__)
                sent = 0
            if sent < self.batch:
                stop.wait(self.interval_s)


def start_dispatcher_thread(
    settings: Settings, engine: Engine | None = None
) -> tuple[threading.Thread, threading.Event]:
    """Run a :class:`Dispatcher` in a daemon thread; set the returned event to stop it."""
    dispatcher = Dispatcher(
        engine or make_engine(settings.database_url),
        create_celery(settings),
        interval_s=settings.dispatch_interval_s,
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=dispatcher.run, args=(stop,), name="cac-outbox-dispatcher", daemon=True
    )
    thread.start()
    return thread, stop


def main() -> int:
    """Entry point of ``python -m fhir_service.outbox``: dispatch until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"cac dispatcher: error: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        migrate(engine)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    Dispatcher(engine, create_celery(settings), interval_s=settings.dispatch_interval_s).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
