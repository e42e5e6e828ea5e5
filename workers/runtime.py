"""Per-process wiring of the job: clients built once per worker process, and the Task updates a
failing job ends with."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from celery import Celery

from fhir_service.mapping.task import TaskStatus
from fhir_service.settings import Settings
from fhir_service.storage import TaskStore, make_engine
from workers.config import WorkerSettings
from workers.ehr import FHIRHTTPClient, SMARTBackendAuth, StaticToken, TokenProvider
from workers.errors import ConfigurationError
from workers.job import JobDeps, JobOutcome, OrderJob
from workers.pacs import DICOMwebPACS, PACSClient

log = logging.getLogger(__name__)
_lock = threading.Lock()
_deps: dict[int, JobDeps] = {}


def build_ehr(settings: Settings) -> FHIRHTTPClient:
    """The EHR client from the settings: SMART Backend Services when the token URL, client id
    and key file are set (the key decides RS384 or ES384; ``CAC_EHR_SCOPES``, default
    :data:`fhir_service.settings.DEFAULT_EHR_SCOPES`), else the static ``CAC_EHR_TOKEN``.

    ``CAC_EHR_TIMEOUT_S`` bounds every EHR request and every token request alike: read timeout
    the setting, connect timeout at most 5 s.

    Raises
    ------
    ConfigurationError
        When ``CAC_EHR_BASE_URL`` is missing, or the key file cannot be read or holds no RSA or
        EC P-384 private key (checked by :class:`fhir_service.ehr.BackendServicesToken`).
    """
    if not settings.ehr_base_url:
        raise ConfigurationError("CAC_EHR_BASE_URL is not set: the pipeline cannot read the EHR")
    timeout = float(settings.ehr_timeout_s)
    auth: TokenProvider
    if settings.ehr_client_id and settings.ehr_token_url and settings.ehr_private_key_file:
        try:
            key = Path(settings.ehr_private_key_file).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read CAC_EHR_PRIVATE_KEY_FILE: {exc}") from exc
        auth = SMARTBackendAuth(
            settings.ehr_token_url,
            settings.ehr_client_id,
            key,
            scopes=settings.ehr_scopes,
            key_id=settings.ehr_key_id,
            timeout_s=timeout,
        )
    else:
        auth = StaticToken(settings.ehr_token)
    return FHIRHTTPClient(settings.ehr_base_url, auth, timeout_s=(min(5.0, timeout), timeout))


def build_deps(settings: Settings, ws: WorkerSettings) -> JobDeps:
    """Every client the job needs, built once per process."""
    from workers.celery_app import algorithm_version

    engine = make_engine(settings.database_url)
    ehr = build_ehr(settings)
    auth = (ws.pacs_user, ws.pacs_password) if ws.pacs_user and ws.pacs_password else None
    pacs_clients: dict[str, PACSClient] = {}

    def pacs_factory(base: str) -> PACSClient:
        if base not in pacs_clients:
            pacs_clients[base] = DICOMwebPACS(
                base,
                settings.pacs_allowlist,
                auth=auth,
                bearer_token=ws.pacs_token,
                timeout_s=(min(5.0, ws.pacs_timeout_s), ws.pacs_timeout_s),
                max_bytes=ws.pacs_max_bytes,
            )
        return pacs_clients[base]

    return JobDeps(
        settings=settings,
        ehr=ehr,
        store=TaskStore(engine),
        pacs_factory=pacs_factory,
        algorithm_name=ws.algorithm_name,
        algorithm_version=algorithm_version(),
    )


def deps_for(app: Celery) -> JobDeps:
    """The process's :class:`JobDeps` for ``app`` (built on first use)."""
    with _lock:
        deps = _deps.get(id(app))
        if deps is None:
            deps = build_deps(app.conf.cac_settings, app.conf.cac_worker_settings)
            _deps[id(app)] = deps
        return deps


def run_job(app: Celery, task_id: str) -> JobOutcome:
    """Run one order with this process's clients; logs one ``cac-job`` JSON line with the
    timings (ids and seconds only, no patient data) for operators and the benchmark."""
    started = time.time()
    outcome = OrderJob(task_id, deps_for(app)).run()
    record = {
        "task_id": task_id,
        "status": outcome.status.value,
        "diagnostic_report": outcome.diagnostic_report,
        "started_at": started,
        "finished_at": time.time(),
        "steps_s": {k: round(v, 4) for k, v in outcome.timings.items()},
    }
    log.info("cac-job %s", json.dumps(record))
    return outcome


def finish_failed(app: Celery, task_id: str, status: TaskStatus, reason: str) -> None:
    """End the Task ``failed``/``rejected`` with ``reason`` (ignored if it already ended)."""
    from fhir_service.errors import InvalidTransitionError, TaskNotFoundError

    store = deps_for(app).store
    try:
        store.transition(task_id, status, business_status=None, status_reason=reason)
        return
    except InvalidTransitionError as exc:
        if status is not TaskStatus.REJECTED:
            log.warning("order %s: could not mark %s: %s", task_id, status.value, exc)
            return
    except TaskNotFoundError as exc:
        log.warning("order %s: could not mark %s: %s", task_id, status.value, exc)
        return
    # a Task already in progress cannot become rejected (FHIR Task state machine): it fails
    try:
        store.transition(task_id, TaskStatus.FAILED, business_status=None, status_reason=reason)
    except (InvalidTransitionError, TaskNotFoundError) as exc:
        log.warning("order %s: could not mark failed: %s", task_id, exc)
