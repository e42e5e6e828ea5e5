"""The FHIR REST blueprint (``/fhir``) and the health blueprint (``/healthz``, ``/readyz``).

Every handler authenticates first, then checks the content, then touches storage; every refusal
is a :class:`~fhir_service.errors.RequestError` turned into an ``OperationOutcome`` by the error
handlers registered in :func:`fhir_service.app.create_app`. Requests that touch patient data are
audited (IHE BALP), refusals included.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from celery import Celery
from fhir.resources.R4B.bundle import Bundle
from flask import Blueprint, Flask, Response, current_app, g, request
from sqlalchemy import Engine, text

from fhir_service.auth import ANONYMOUS, Interaction, Principal, TokenValidator
from fhir_service.ehr import EHRReader
from fhir_service.errors import (
    AuthenticationError,
    EHRReadError,
    InvalidResourceError,
    InvalidValueError,
    NotSupportedError,
    RequestError,
    ResourceNotFoundError,
    TaskNotFoundError,
    UnavailableError,
    UnsupportedMediaTypeError,
)
from fhir_service.mapping import FHIR_JSON
from fhir_service.mapping.audit_event import (
    AuditAction,
    AuditOutcome,
    AuditRecord,
    audit_event_json,
)
from fhir_service.mapping.capability_statement import build_capability_statement
from fhir_service.mapping.notification import NotificationType, parse_notification
from fhir_service.mapping.operation_outcome import build_operation_outcome
from fhir_service.mapping.service_request import OrderIntake, parse_service_request
from fhir_service.mapping.task import TaskStatus
from fhir_service.mapping.transaction import parse_transaction_bundle
from fhir_service.queue import broker_reachable
from fhir_service.settings import Settings
from fhir_service.storage import (
    AcceptOutcome,
    AcceptResult,
    AuditRow,
    AuditStore,
    GroupCommitOrderStore,
    OrderStore,
    TaskRecord,
    TaskStore,
)
from fhir_service.storage.repository import new_id, utcnow

logger = logging.getLogger(__name__)

#: Media types accepted in Content-Type for FHIR bodies (FHIR R4 http.html#mime-type).
ACCEPTED_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json"})
#: Search page size bounds.
DEFAULT_COUNT, MAX_COUNT = 50, 100
OBSERVER = "cac-fhir"

fhir = Blueprint("fhir", __name__, url_prefix="/fhir")
health = Blueprint("health", __name__)


@dataclass
class Service:
    """Everything the handlers need, built once per process by ``create_app``."""

    settings: Settings
    engine: Engine
    celery: Celery
    validator: TokenValidator | None
    ehr_reader: EHRReader | None
    started: datetime
    software_version: str
    order_store: OrderStore = field(init=False)
    task_store: TaskStore = field(init=False)
    audit_store: AuditStore = field(init=False)

    def __post_init__(self) -> None:
        self.order_store = GroupCommitOrderStore(self.engine)
        self.task_store = TaskStore(self.engine)
        self.audit_store = AuditStore(self.engine)

    @property
    def accepted_codes(self) -> frozenset[tuple[str, str]]:
        return frozenset((c.system, c.code) for c in self.settings.order_codes)


def service() -> Service:
    """The :class:`Service` of the running app."""
    svc: Service = current_app.extensions["cac"]
    return svc


def base_url() -> str:
    """Public FHIR base URL: ``CAC_PUBLIC_BASE_URL`` or the request's own root + ``fhir``."""
    configured = service().settings.public_base_url
    if configured:
        return configured.rstrip("/") + (
            "" if configured.rstrip("/").endswith("/fhir") else "/fhir"
        )
    return request.url_root.rstrip("/") + "/fhir"


def fhir_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A response with ``Content-Type: application/fhir+json``."""
    response = Response(body, status=status, mimetype=FHIR_JSON)
    response.headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def outcome_response(error: RequestError, headers: dict[str, str] | None = None) -> Response:
    """The ``OperationOutcome`` response for ``error``."""
    outcome = build_operation_outcome(error.issues, error.code)
    return fhir_response(outcome.model_dump_json(exclude_none=True), error.status, headers)


# ---------------------------------------------------------------- authentication and audit


def authenticate(resource_type: str, interaction: Interaction) -> Principal:
    """The caller, if its token is valid and grants ``interaction`` on ``resource_type``.

    Raises
    ------
    AuthenticationError, ForbiddenError, UnavailableError
    """
    svc = service()
    if svc.validator is None:
        principal = ANONYMOUS
    else:
        principal = svc.validator.authenticate(request.headers.get("Authorization"))
    g.principal = principal
    principal.require(resource_type, interaction)
    return principal


def audit(
    action: AuditAction,
    outcome: AuditOutcome,
    *,
    resources: Sequence[str] = (),
    patients: Sequence[str] = (),
    query: str | None = None,
    description: str | None = None,
) -> AuditRow:
    """Build the BALP AuditEvent row of the current request."""
    principal: Principal | None = g.get("principal")
    return audit_row(
        principal.subject if principal else None,
        request.remote_addr,
        action,
        outcome,
        resources=resources,
        patients=patients,
        query=query,
        description=description,
    )


def audit_row(
    client: str | None,
    client_address: str | None,
    action: AuditAction,
    outcome: AuditOutcome,
    *,
    resources: Sequence[str] = (),
    patients: Sequence[str] = (),
    query: str | None = None,
    description: str | None = None,
) -> AuditRow:
    """Build a BALP AuditEvent row without touching the request context (any thread)."""
    now = utcnow()
    record = AuditRecord(
        action=action,
        outcome=outcome,
        recorded=now,
        observer=OBSERVER,
        client=client,
        client_address=client_address,
        resources=tuple(resources),
        patients=tuple(dict.fromkeys(patients)),
        query=query,
        outcome_description=description,
    )
    event_id = new_id()
    body = audit_event_json(record, event_id)
    return AuditRow(event_id, now, action.value, outcome.value, body)


def audit_refusal(action: AuditAction, error: RequestError, query: str | None = None) -> None:
    """Record a refused request (outcome 4, minor failure; 8 for a server-side 503)."""
    outcome = AuditOutcome.SERIOUS_FAILURE if error.status >= 500 else AuditOutcome.MINOR_FAILURE
    try:
        service().audit_store.record(
            audit(action, outcome, query=query, description=f"HTTP {error.status}: {error.code}")
        )
    except Exception as exc:  # storage down: the refusal itself must still be answered
        logger.warning("audit: could not record a refusal (%s)", type(exc).__name__)


# ---------------------------------------------------------------- request bodies


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body() -> Any:
    """Decoded JSON of the request body after content-type and size checks.

    Raises
    ------
    UnsupportedMediaTypeError
        Content-Type is not application/fhir+json (or application/json) (415).
    PayloadTooLargeError
        Larger than ``CAC_MAX_BODY_BYTES`` (413, raised by Werkzeug and translated).
    InvalidResourceError
        Empty body or malformed JSON (400).
    """
    mimetype = (request.mimetype or "").lower()
    if mimetype not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaTypeError(
            "send the resource as FHIR JSON with Content-Type: application/fhir+json"
            f" (got {mimetype or 'no Content-Type'})"
        )
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError(f"FHIR JSON must be UTF-8, got charset={charset}")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidResourceError("the request body is empty; send a FHIR JSON resource")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidResourceError("the request body is not UTF-8 text") from None
    except RecursionError:
        raise InvalidResourceError("the JSON body is nested too deeply") from None
    except ValueError as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise InvalidResourceError(f"malformed JSON{where}: {message}") from None


def _task_headers(task: TaskRecord, base: str) -> dict[str, str]:
    location = f"{base}/Task/{task.id}/_history/{task.version}"
    return {
        "Location": location,
        "Content-Location": location,
        "ETag": f'W/"{task.version}"',
        "Last-Modified": task.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Link": f'<{base}/Task/{task.id}>; rel="monitor"',
    }


def _accept(intake: OrderIntake) -> AcceptResult:
    principal: Principal | None = g.get("principal")
    client = principal.subject if principal else None
    address = request.remote_addr

    # called by the group-commit writer thread: captures what it needs from the request now
    def order_audit(result: AcceptResult) -> AuditRow:
        action = (
            AuditAction.CREATE if result.outcome is AcceptOutcome.CREATED else AuditAction.UPDATE
        )
        if result.outcome is AcceptOutcome.EXISTING:
            action = AuditAction.READ
        refs = [f"Task/{result.task.id}"]
        if intake.focus_reference:
            refs.append(intake.focus_reference)
        return audit_row(
            client,
            address,
            action,
            AuditOutcome.SUCCESS,
            resources=refs,
            patients=[intake.patient_reference],
            description=f"order {result.outcome.value}",
        )

    result = service().order_store.accept(intake, audit=order_audit)
    logger.info(
        "order %s: Task %s (%s)", result.outcome.value, result.task.id, result.task.status.value
    )
    return result


_STATUS_LINE = {
    AcceptOutcome.CREATED: "201 Created",
    AcceptOutcome.EXISTING: "200 OK",
    AcceptOutcome.REPLACED: "200 OK",
    AcceptOutcome.CANCELLED: "200 OK",
}


# ---------------------------------------------------------------- FHIR endpoints


@fhir.post("/ServiceRequest")
def create_service_request() -> Response:
    """Accept an order: 201 + the Task (new), 200 + the Task (same, replaced or cancelled)."""
    try:
        authenticate("ServiceRequest", Interaction.CREATE)
        data = read_json_body()
        svc = service()
        intake = parse_service_request(
            data, accepted_codes=svc.accepted_codes, pacs_allowlist=svc.settings.pacs_allowlist
        )
        result = _accept(intake)
    except RequestError as exc:
        audit_refusal(AuditAction.CREATE, exc)
        raise
    status = 201 if result.outcome is AcceptOutcome.CREATED else 200
    return fhir_response(result.task.task_json, status, _task_headers(result.task, base_url()))


@fhir.post("")
@fhir.post("/")
def post_bundle() -> Response:
    """A transaction Bundle carrying an order, or an id-only subscription notification."""
    try:
        authenticate("ServiceRequest", Interaction.CREATE)
        data = read_json_body()
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            raise InvalidResourceError(
                "POST to the base URL takes a Bundle (transaction, or a history Bundle that is a"
                " subscription notification); got resourceType"
                f" {data.get('resourceType') if isinstance(data, dict) else None!r}",
                "resourceType",
            )
        if data.get("type") == "history":
            return _notification(data)
        if data.get("type") != "transaction":
            raise NotSupportedError(
                f"Bundle.type {data.get('type')!r} is not supported here: send a transaction"
                " Bundle (an order) or a history Bundle (a subscription notification)",
                "Bundle.type",
            )
        svc = service()
        intake = parse_transaction_bundle(
            data, accepted_codes=svc.accepted_codes, pacs_allowlist=svc.settings.pacs_allowlist
        )
        result = _accept(intake.order)
    except RequestError as exc:
        audit_refusal(AuditAction.CREATE, exc)
        raise
    base = base_url()
    entries: list[dict[str, Any]] = []
    for index in range(intake.entry_count):
        if index == intake.order_entry_index:
            entries.append(
                {
                    "resource": json.loads(result.task.task_json),
                    "response": {
                        "status": _STATUS_LINE[result.outcome],
                        "location": f"Task/{result.task.id}/_history/{result.task.version}",
                        "etag": f'W/"{result.task.version}"',
                        "lastModified": result.task.last_modified.isoformat(),
                    },
                }
            )
        else:
            # context entries are kept with the order, not exposed as resources of their own
            entries.append({"response": {"status": "200 OK"}})
    bundle = Bundle.model_validate(
        {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    )
    return fhir_response(
        bundle.model_dump_json(exclude_none=True), 200, _task_headers(result.task, base)
    )


#: Header carrying the subscription's shared secret (Subscription.channel.header on the EHR side).
NOTIFICATION_SECRET_HEADER = "X-CAC-Notification-Secret"


def _notification(data: dict[str, Any]) -> Response:
    secret = service().settings.notification_secret
    if secret is not None:
        given = request.headers.get(NOTIFICATION_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise AuthenticationError(
                f"a subscription notification needs the {NOTIFICATION_SECRET_HEADER} header with"
                " the shared secret configured for this subscription"
            )
    notification = parse_notification(data)
    if notification.type is not NotificationType.EVENT_NOTIFICATION:
        outcome = build_operation_outcome(
            [(f"{notification.type.value} notification received", None)],
            "informational",
            severity="information",
        )
        return fhir_response(outcome.model_dump_json(exclude_none=True), 200)
    svc = service()
    if svc.ehr_reader is None:
        raise NotSupportedError(
            "subscription notifications need CAC_EHR_BASE_URL (the service reads the"
            " ServiceRequest from the EHR); it is not configured"
        )
    entries: list[dict[str, Any]] = []
    transient: list[str] = []
    for reference in notification.service_request_references:
        try:
            resource = svc.ehr_reader.read(reference)
            intake = parse_service_request(
                resource,
                accepted_codes=svc.accepted_codes,
                pacs_allowlist=svc.settings.pacs_allowlist,
            )
            result = _accept(intake)
        except EHRReadError as exc:
            if exc.transient:
                transient.append(str(exc))
            entries.append(
                _error_entry(
                    UnavailableError(str(exc)) if exc.transient else NotSupportedError(str(exc))
                )
            )
            continue
        except RequestError as exc:
            audit_refusal(AuditAction.CREATE, exc)
            entries.append(_error_entry(exc))
            continue
        entries.append(
            {
                "resource": json.loads(result.task.task_json),
                "response": {
                    "status": _STATUS_LINE[result.outcome],
                    "location": f"Task/{result.task.id}/_history/{result.task.version}",
                },
            }
        )
    if transient:
        raise UnavailableError(
            "the EHR could not be read for every ServiceRequest of the notification; retry the"
            " notification later (orders already accepted are not duplicated)"
        )
    bundle = Bundle.model_validate(
        {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    )
    return fhir_response(bundle.model_dump_json(exclude_none=True), 200)


def _error_entry(error: RequestError) -> dict[str, Any]:
    outcome = build_operation_outcome(error.issues, error.code)
    return {
        "response": {
            "status": str(error.status),
            "outcome": json.loads(outcome.model_dump_json(exclude_none=True)),
        }
    }


@fhir.get("/Task/<task_id>")
def read_task(task_id: str) -> Response:
    """``GET /fhir/Task/<id>``: the Task, with ETag and Last-Modified."""
    try:
        authenticate("Task", Interaction.READ)
        try:
            task = service().task_store.get(task_id)
        except TaskNotFoundError:
            raise ResourceNotFoundError(f"no Task with id {task_id!r}", "Task.id") from None
        service().audit_store.record(
            audit(
                AuditAction.READ,
                AuditOutcome.SUCCESS,
                resources=[f"Task/{task.id}"],
                patients=[task.patient_reference],
            )
        )
    except RequestError as exc:
        audit_refusal(AuditAction.READ, exc)
        raise
    headers = {
        "ETag": f'W/"{task.version}"',
        "Last-Modified": task.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    return fhir_response(task.task_json, 200, headers)


@fhir.get("/Task/<task_id>/_history/<version>")
def read_task_version(task_id: str, version: str) -> Response:
    """The current version only (history is not kept): 404 for any other version."""
    response = read_task(task_id)
    if response.headers.get("ETag") != f'W/"{version}"':
        raise ResourceNotFoundError(
            f"Task {task_id} version {version!r} is not the current one; history is not kept",
            "Task.meta.versionId",
        )
    return response


def _split(values: Iterable[str]) -> list[str]:
    return [v.strip() for raw in values for v in raw.split(",") if v.strip()]


def _reference_values(values: Iterable[str], resource_type: str, parameter: str) -> list[str]:
    refs = []
    for value in _split(values):
        parts = value.rstrip("/").split("/")
        if len(parts) == 1 and parts[0]:
            refs.append(f"{resource_type}/{parts[0]}")
        elif len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
            refs.append(f"{resource_type}/{parts[-1]}")
        else:
            raise InvalidValueError(
                f"{parameter} must be {resource_type}/<id> or <id>, got {value!r}",
                f"Task?{parameter}",
            )
    return refs


def _identifier_values(values: Iterable[str], parameter: str) -> list[str]:
    out = []
    for value in _split(values):
        if "|" not in value:
            raise InvalidValueError(f"{parameter} must be <system>|<value>", f"Task?{parameter}")
        out.append(value)
    return out


def _int_parameter(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.getlist(name)
    if not raw:
        return default
    try:
        value = int(raw[-1])
    except ValueError:
        raise InvalidValueError(f"{name} must be an integer", f"Task?{name}") from None
    if not low <= value <= high:
        raise InvalidValueError(f"{name} must be between {low} and {high}", f"Task?{name}")
    return value


SEARCH_PARAMETERS = frozenset(
    {
        "focus",
        "focus:identifier",
        "status",
        "patient",
        "patient:identifier",
        "_count",
        "_offset",
        "_format",
    }
)


@fhir.get("/Task")
def search_tasks() -> Response:
    """``GET /fhir/Task?focus=&status=&patient=``: a searchset Bundle, newest first."""
    query = request.query_string.decode("utf-8", "replace")
    try:
        authenticate("Task", Interaction.SEARCH)
        unknown = sorted(set(request.args) - SEARCH_PARAMETERS)
        if unknown:
            raise InvalidValueError(
                f"unsupported search parameter {unknown[0]!r}; supported: "
                + ", ".join(sorted(SEARCH_PARAMETERS - {"_format"})),
                f"Task?{unknown[0]}",
            )
        fmt = request.args.get("_format")
        if fmt is not None and fmt not in ("json", FHIR_JSON, "application/json"):
            raise NotSupportedError("only JSON is supported (_format=json)", "Task?_format")
        focus = _reference_values(request.args.getlist("focus"), "ServiceRequest", "focus")
        focus += _identifier_values(request.args.getlist("focus:identifier"), "focus:identifier")
        patient = _reference_values(request.args.getlist("patient"), "Patient", "patient")
        patient += [
            f"identifier:{v}"
            for v in _identifier_values(
                request.args.getlist("patient:identifier"), "patient:identifier"
            )
        ]
        statuses = []
        for value in _split(request.args.getlist("status")):
            try:
                statuses.append(TaskStatus(value))
            except ValueError:
                raise InvalidValueError(f"unknown Task status {value!r}", "Task?status") from None
        count = _int_parameter("_count", DEFAULT_COUNT, 1, MAX_COUNT)
        offset = _int_parameter("_offset", 0, 0, 10_000_000)
        total, page = service().task_store.search(
            focus=focus, status=statuses, patient=patient, count=count, offset=offset
        )
        service().audit_store.record(
            audit(
                AuditAction.EXECUTE,
                AuditOutcome.SUCCESS,
                resources=[f"Task/{t.id}" for t in page],
                patients=[t.patient_reference for t in page],
                query=query,
            )
        )
    except RequestError as exc:
        audit_refusal(AuditAction.EXECUTE, exc, query=query)
        raise
    base = base_url()
    params = [(k, v) for k, v in request.args.items(multi=True) if k != "_offset"]
    links = [
        {"relation": "self", "url": f"{base}/Task?{urlencode([*params, ('_offset', offset)])}"}
    ]
    if offset + count < total:
        links.append(
            {
                "relation": "next",
                "url": f"{base}/Task?{urlencode([*params, ('_offset', offset + count)])}",
            }
        )
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/Task/{t.id}",
                    "resource": json.loads(t.task_json),
                    "search": {"mode": "match"},
                }
                for t in page
            ],
        }
    )
    return fhir_response(bundle.model_dump_json(exclude_none=True), 200)


@fhir.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement (no authentication, as FHIR requires)."""
    svc = service()
    statement = build_capability_statement(
        base_url=base_url(),
        software_version=svc.software_version,
        order_codes=[str(c) for c in svc.settings.order_codes],
        auth_enabled=svc.validator is not None,
        token_issuer=svc.settings.token_issuer,
        released=svc.started,
    )
    return fhir_response(statement.model_dump_json(exclude_none=True), 200)


# ---------------------------------------------------------------- health


@health.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return Response(json.dumps({"status": "ok"}), 200, mimetype="application/json")


@health.get("/readyz")
def readyz() -> Response:
    """Readiness: storage and broker reachable (503 otherwise, naming which)."""
    svc = service()
    checks: dict[str, str] = {}
    try:
        with svc.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["storage"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["storage"] = f"unreachable ({type(exc).__name__})"
    checks["broker"] = "ok" if broker_reachable(svc.celery) else "unreachable"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return Response(json.dumps(body), 200 if ready else 503, mimetype="application/json")


def register_blueprints(app: Flask) -> None:
    """Register this module's blueprints on ``app``."""
    app.register_blueprint(fhir)
    app.register_blueprint(health)
