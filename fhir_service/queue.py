"""The Celery app the API uses to hand orders to the workers, by task name only.

The web layer never imports :mod:`workers`; it sends ``cac.process_order`` with the Task id and
the message id ``order-<task id>`` (so a re-sent message is recognisable). Publishing fails fast
(no kombu retry loop): the outbox dispatcher owns retries and backoff.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from fhir_service.settings import Settings

#: Celery task name of the order pipeline (workers register a task with exactly this name).
PROCESS_ORDER_TASK = "cac.process_order"
#: Seconds to wait for the broker when publishing or probing.
BROKER_TIMEOUT_S = 3.0


def message_id(task_id: str) -> str:
    """Celery task id of the message for FHIR Task ``task_id``."""
    return f"order-{task_id}"


def create_celery(settings: Settings) -> Celery:
    """A Celery app that publishes to ``settings.broker_url`` (any kombu URL)."""
    app = Celery("cac-fhir-api", broker=settings.broker_url, set_as_current=False)
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        transport_options = {
            "socket_connect_timeout": BROKER_TIMEOUT_S,
            "socket_timeout": BROKER_TIMEOUT_S,
        }
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=BROKER_TIMEOUT_S,
        broker_connection_retry_on_startup=False,
        broker_transport_options=transport_options,
        task_publish_retry=False,
    )
    return app


def send_process_order(app: Celery, task_id: str) -> None:
    """Publish ``cac.process_order(task_id)``; raises the broker's error if it is unreachable."""
    app.send_task(PROCESS_ORDER_TASK, args=[task_id], task_id=message_id(task_id), retry=False)


def broker_reachable(app: Celery) -> bool:
    """Whether a connection to the broker can be opened now (``/readyz``)."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
        return True
    except Exception:  # any transport error means "not reachable"
        return False
