"""The Celery application and the one task, ``cac.process_order(task_id)``.

Brokers: Redis (``CAC_BROKER_URL=redis://...``) for deployments on several machines; without it
the service's default ``sqla+sqlite:///<data_dir>/broker.sqlite`` (kombu's SQLAlchemy transport on
a SQLite file) needs no server and works across processes on one machine. Its limit: a message a
worker had taken is lost if that worker is SIGKILLed (the transport marks it invisible, with no
visibility timeout); Redis re-delivers it. Use Redis wherever a crash must not lose an order.

Task hygiene (celery ``docs/userguide/tasks.rst``): ids in (never pixel data), idempotent (see
:mod:`workers.job`), ``acks_late`` + ``reject_on_worker_lost`` (a job whose worker dies is run
again), soft and hard time limits, a Redis visibility timeout longer than the hard limit, and
bounded exponential backoff for transient failures. The task name is fixed: messages for it may
be queued while a new version is deployed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import metadata
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from fhir_service.mapping.task import TaskStatus
from fhir_service.settings import Settings
from workers.config import WorkerSettings
from workers.errors import OrderRejectedError, PermanentError, PipelineError, TransientError

log = logging.getLogger(__name__)

#: The task name the FHIR service sends by (``send_task``); never rename it.
PROCESS_ORDER = "cac.process_order"

JobRunner = Callable[[str, bool], Any]


def algorithm_version() -> str:
    """The installed package version (part of every result identifier)."""
    try:
        return metadata.version("cac-fhir")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def create_celery(settings: Settings, worker_settings: WorkerSettings | None = None) -> Celery:
    """Build the Celery app for ``settings.broker_url`` with the pipeline's task registered.

    Parameters
    ----------
    settings
        The service settings (broker, database, EHR, PACS allow-list, report policy).
    worker_settings
        Time limits, retries, PACS credentials; read from the environment when ``None``.
    """
    ws = worker_settings or WorkerSettings.from_env()
    app = Celery("cac", broker=settings.broker_url, set_as_current=False)
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # kombu re-queues unacknowledged messages older than the visibility timeout in a sweep
        # every unacked_restore_interval x unacked_restore_throttle seconds (peers.md)
        transport_options = {
            "visibility_timeout": ws.visibility_timeout_s,
            "unacked_restore_interval": ws.unacked_restore_interval_s,
            "unacked_restore_throttle": 1,
        }
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_soft_time_limit=ws.task_soft_time_limit_s,
        task_time_limit=ws.task_time_limit_s,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    app.conf.cac_settings = settings
    app.conf.cac_worker_settings = ws

    @app.task(name=PROCESS_ORDER, bind=True, max_retries=ws.max_retries)  # type: ignore[untyped-decorator]
    def process_order(self: Task, task_id: str) -> dict[str, Any]:
        """Process one order by its Task id (idempotent; retried on transient failures)."""
        from workers.runtime import finish_failed, run_job

        try:
            outcome = run_job(app, task_id)
        except TransientError as exc:
            if self.request.retries >= ws.max_retries:
                finish_failed(
                    app,
                    task_id,
                    TaskStatus.FAILED,
                    f"{exc.reason} (gave up after {self.request.retries + 1} attempts)",
                )
                return {"task_id": task_id, "status": "failed", "reason": exc.reason}
            countdown = ws.retry_countdown_s(self.request.retries)
            log.warning(
                "order %s: transient failure, retry in %.0f s: %s", task_id, countdown, exc.reason
            )
            raise self.retry(exc=exc, countdown=countdown) from exc
        except OrderRejectedError as exc:
            finish_failed(app, task_id, TaskStatus.REJECTED, exc.reason)
            return {"task_id": task_id, "status": "rejected", "reason": exc.reason}
        except (PermanentError, PipelineError) as exc:
            finish_failed(app, task_id, TaskStatus.FAILED, exc.reason)
            return {"task_id": task_id, "status": "failed", "reason": exc.reason}
        except SoftTimeLimitExceeded:
            reason = f"the job exceeded its time limit of {ws.task_soft_time_limit_s:.0f} s"
            finish_failed(app, task_id, TaskStatus.FAILED, reason)
            return {"task_id": task_id, "status": "failed", "reason": reason}
        except Exception as exc:
            log.exception("order %s: unexpected error", task_id)
            reason = f"internal error ({type(exc).__name__}): {str(exc)[:300]}"
            finish_failed(app, task_id, TaskStatus.FAILED, reason)
            return {"task_id": task_id, "status": "failed", "reason": reason}
        return {
            "task_id": task_id,
            "status": outcome.status.value,
            "diagnostic_report": outcome.diagnostic_report,
            "timings": dict(outcome.timings),
        }

    return app
