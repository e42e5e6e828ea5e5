"""Repositories over the service database: orders, Tasks, the outbox and audit events.

The API accepts an order with :meth:`OrderStore.accept` (order, Task and outbox row in one
transaction); the dispatcher drains :class:`OutboxStore`; the workers drive the Task with
:class:`TaskStore` (``claim`` -> ``transition`` ...). Every Task update increments
``Task.meta.versionId``; ``transition(expected_version=...)`` refuses to overwrite a change it has
not seen (optimistic concurrency).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from fhir_service.errors import (
    BusinessRuleError,
    ConcurrentUpdateError,
    ConflictError,
    InvalidTransitionError,
    RequestError,
    TaskNotFoundError,
)
from fhir_service.mapping.service_request import OrderIntake, RequestStatus
from fhir_service.mapping.task import (
    NOT_STARTED_STATUSES,
    TERMINAL_STATUSES,
    TaskStatus,
    TaskView,
    parse_output_json,
    task_json,
    transition_allowed,
)
from fhir_service.storage.engine import read_transaction, write_transaction
from fhir_service.storage.schema import audit_events, orders, outbox, tasks


class _Unset:
    pass


UNSET: Final = _Unset()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything stored is UTC
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_id() -> str:
    """A new opaque resource id (FHIR id: [A-Za-z0-9-.]{1,64})."""
    return uuid.uuid4().hex


class AcceptOutcome(StrEnum):
    """What :meth:`OrderStore.accept` did with an order."""

    CREATED = "created"
    EXISTING = "existing"
    REPLACED = "replaced"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A stored Task: its columns and its FHIR JSON."""

    id: str
    order_id: str
    status: TaskStatus
    business_status: str | None
    status_reason: str | None
    patient_reference: str
    focus_reference: str | None
    focus_identifier: str | None
    output_references: tuple[str, ...]
    version: int
    created_at: datetime
    last_modified: datetime
    task_json: str


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order: the placer's ServiceRequest and the context that came with it.

    Attributes
    ----------
    service_request
        The ServiceRequest JSON as received (latest accepted version).
    patient, imaging_study, endpoints
        Inline resources from a transaction Bundle or ``contained`` (None / empty when absent).
    imaging_study_reference
        Not stored separately: read ``service_request['supportingInfo']``.
    """

    id: str
    order_key: str
    version_key: str
    request_status: str
    patient_reference: str
    study_instance_uid: str | None
    accession_number: str | None
    service_request: dict[str, Any]
    patient: dict[str, Any] | None
    imaging_study: dict[str, Any] | None
    endpoints: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """The Task an order maps to and what :meth:`OrderStore.accept` did."""

    outcome: AcceptOutcome
    task: TaskRecord


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A serialized AuditEvent ready to store."""

    id: str
    recorded: datetime
    action: str
    outcome: str
    audit_json: str


def _task_record(row: Row[Any]) -> TaskRecord:
    m = row._mapping
    return TaskRecord(
        id=m["id"],
        order_id=m["order_id"],
        status=TaskStatus(m["status"]),
        business_status=m["business_status"],
        status_reason=m["status_reason"],
        patient_reference=m["patient_reference"],
        focus_reference=m["focus_reference"],
        focus_identifier=m["focus_identifier"],
        output_references=parse_output_json(m["output_json"]),
        version=m["version"],
        created_at=_utc(m["created_at"]),
        last_modified=_utc(m["last_modified"]),
        task_json=m["task_json"],
    )


def _order_record(row: Row[Any]) -> OrderRecord:
    m = row._mapping
    return OrderRecord(
        id=m["id"],
        order_key=m["order_key"],
        version_key=m["version_key"],
        request_status=m["request_status"],
        patient_reference=m["patient_reference"],
        study_instance_uid=m["study_instance_uid"],
        accession_number=m["accession_number"],
        service_request=json.loads(m["service_request_json"]),
        patient=json.loads(m["patient_json"]) if m["patient_json"] else None,
        imaging_study=json.loads(m["imaging_study_json"]) if m["imaging_study_json"] else None,
        endpoints=json.loads(m["endpoints_json"]) if m["endpoints_json"] else [],
        created_at=_utc(m["created_at"]),
        updated_at=_utc(m["updated_at"]),
    )


def _focus_identifier(value: tuple[str, str] | None) -> str | None:
    return f"{value[0]}|{value[1]}" if value else None


def _view(
    *,
    task_id: str,
    status: TaskStatus,
    version: int,
    created_at: datetime,
    last_modified: datetime,
    patient_reference: str,
    focus_reference: str | None,
    focus_identifier: str | None,
    business_status: str | None,
    status_reason: str | None,
    output: Sequence[str],
) -> TaskView:
    ident: tuple[str, str] | None = None
    if focus_identifier:
        system, _, value = focus_identifier.rpartition("|")
        ident = (system, value)
    return TaskView(
        id=task_id,
        status=status,
        version=version,
        authored_on=created_at,
        last_modified=last_modified,
        patient_reference=patient_reference,
        focus_reference=focus_reference,
        focus_identifier=ident,
        business_status=business_status,
        status_reason=status_reason,
        output_references=tuple(output),
    )


_INSERT_ORDER = insert(orders)
_INSERT_TASK = insert(tasks)
_INSERT_OUTBOX = insert(outbox)
_INSERT_AUDIT = insert(audit_events)
_SELECT_BY_ORDER_KEY = (
    select(orders.c.id.label("order_row_id"), orders.c.version_key, tasks)
    .join(tasks, tasks.c.order_id == orders.c.id)
    .where(orders.c.order_key == bindparam("order_key"))
)


def insert_audit(connection: Connection, row: AuditRow) -> None:
    """Store one AuditEvent inside the caller's transaction."""
    connection.execute(
        _INSERT_AUDIT,
        {
            "id": row.id,
            "recorded": row.recorded,
            "action": row.action,
            "outcome": row.outcome,
            "audit_json": row.audit_json,
        },
    )


class OrderStore:
    """Accept orders: order, Task and outbox row in one durable transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def accept(
        self,
        intake: OrderIntake,
        *,
        audit: Callable[[AcceptResult], AuditRow] | None = None,
    ) -> AcceptResult:
        """Store a new order, or apply the idempotency rules to a known one.

        - unknown order, status active: store order + Task (``accepted``) + outbox row (CREATED);
        - same order key and version: return the existing Task (EXISTING), start nothing;
        - a new version of an order whose Task has not started: replace it (REPLACED);
        - status revoked / entered-in-error: cancel the Task (CANCELLED).

        Parameters
        ----------
        intake
            The checked order.
        audit
            Builds the AuditEvent for the result; stored in the same transaction.

        Raises
        ------
        ConflictError
            A new version of an order already started or finished, or a cancellation of a
            finished one (HTTP 409).
        BusinessRuleError
            A revoked order that was never accepted (HTTP 422).
        """
        # the likely outcome (a new order) is prepared before the write lock is taken, so the
        # transaction holds it only for the SQL and the commit
        prepared = _prepare_create(intake, utcnow())
        prepared_audit = audit(AcceptResult(AcceptOutcome.CREATED, prepared)) if audit else None
        for attempt in range(2):
            try:
                with write_transaction(self.engine) as connection:
                    result = self._accept(connection, intake, prepared)
                    if audit is not None and prepared_audit is not None:
                        created = result.outcome is AcceptOutcome.CREATED
                        insert_audit(connection, prepared_audit if created else audit(result))
                    return result
            except IntegrityError:
                # two identical orders raced; the loser re-reads the winner's row
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _accept(
        self, connection: Connection, intake: OrderIntake, prepared: TaskRecord
    ) -> AcceptResult:
        now = utcnow()
        row = connection.execute(_SELECT_BY_ORDER_KEY, {"order_key": intake.order_key}).first()
        cancel = intake.request_status is not RequestStatus.ACTIVE
        if row is None:
            if cancel:
                raise BusinessRuleError(
                    f"ServiceRequest.status is {intake.request_status.value} but this order was"
                    " never accepted here; nothing to cancel",
                    "ServiceRequest.status",
                )
            self._create(connection, intake, prepared)
            return AcceptResult(AcceptOutcome.CREATED, prepared)
        m = row._mapping
        current = _task_record(row)
        # a cancellation counts even if the placer did not bump meta.versionId
        if m["version_key"] == intake.version_key and not cancel:
            return AcceptResult(AcceptOutcome.EXISTING, current)
        if cancel:
            if current.status is TaskStatus.CANCELLED:
                return AcceptResult(AcceptOutcome.EXISTING, current)
            if current.status in TERMINAL_STATUSES:
                raise ConflictError(
                    f"the order's Task is already {current.status.value}; it can no longer be"
                    " cancelled",
                    "ServiceRequest.status",
                )
            self._update_order(connection, m["order_row_id"], intake, now)
            task = _apply_transition(
                connection,
                current,
                TaskStatus.CANCELLED,
                business_status=UNSET,
                status_reason=(
                    f"the placer set ServiceRequest.status to {intake.request_status.value}"
                ),
                output=None,
                now=now,
            )
            return AcceptResult(AcceptOutcome.CANCELLED, task)
        if current.status not in NOT_STARTED_STATUSES:
            raise ConflictError(
                f"a new version of this order arrived but its Task is already"
                f" {current.status.value}; revoke it and place a new order (new identifier)",
                "ServiceRequest.meta.versionId",
            )
        self._update_order(connection, m["order_row_id"], intake, now)
        connection.execute(
            update(tasks)
            .where(tasks.c.id == current.id)
            .values(
                patient_reference=intake.patient_reference,
                focus_reference=intake.focus_reference,
                focus_identifier=_focus_identifier(intake.focus_identifier),
            )
        )
        refreshed = _task_record(
            connection.execute(select(tasks).where(tasks.c.id == current.id)).one()
        )
        task = _apply_transition(
            connection,
            refreshed,
            refreshed.status,
            business_status="order-replaced",
            status_reason=UNSET,
            output=None,
            now=now,
        )
        return AcceptResult(AcceptOutcome.REPLACED, task)

    @staticmethod
    def _update_order(
        connection: Connection, order_id: str, intake: OrderIntake, now: datetime
    ) -> None:
        connection.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(
                version_key=intake.version_key,
                request_status=intake.request_status.value,
                patient_reference=intake.patient_reference,
                study_instance_uid=intake.study_instance_uid,
                accession_number=intake.accession_number,
                service_request_json=intake.service_request_json,
                patient_json=intake.patient_json,
                imaging_study_json=intake.imaging_study_json,
                endpoints_json=intake.endpoints_json,
                updated_at=now,
            )
        )

    @staticmethod
    def _create(connection: Connection, intake: OrderIntake, task: TaskRecord) -> None:
        # static statements with parameters: compiled once, no per-call statement construction
        connection.execute(
            _INSERT_ORDER,
            {
                "id": task.order_id,
                "order_key": intake.order_key,
                "version_key": intake.version_key,
                "request_status": intake.request_status.value,
                "patient_reference": intake.patient_reference,
                "study_instance_uid": intake.study_instance_uid,
                "accession_number": intake.accession_number,
                "service_request_json": intake.service_request_json,
                "patient_json": intake.patient_json,
                "imaging_study_json": intake.imaging_study_json,
                "endpoints_json": intake.endpoints_json,
                "created_at": task.created_at,
                "updated_at": task.created_at,
            },
        )
        connection.execute(
            _INSERT_TASK,
            {
                "id": task.id,
                "order_id": task.order_id,
                "status": task.status.value,
                "business_status": task.business_status,
                "status_reason": None,
                "focus_reference": task.focus_reference,
                "focus_identifier": task.focus_identifier,
                "patient_reference": task.patient_reference,
                "output_json": "[]",
                "version": task.version,
                "task_json": task.task_json,
                "created_at": task.created_at,
                "last_modified": task.last_modified,
            },
        )
        connection.execute(
            _INSERT_OUTBOX,
            {
                "task_id": task.id,
                "created_at": task.created_at,
                "attempts": 0,
                "next_attempt_at": task.created_at,
                "lease_until": None,
                "dispatched_at": None,
                "last_error": None,
            },
        )


def _prepare_create(intake: OrderIntake, now: datetime) -> TaskRecord:
    """The Task a new order gets: status ``accepted`` (the EHR asks ``requested``; the order is
    accepted once committed), business status ``queued``, version 1."""
    task_id = new_id()
    focus_identifier = _focus_identifier(intake.focus_identifier)
    status = TaskStatus.ACCEPTED
    business_status = "queued"
    view = _view(
        task_id=task_id,
        status=status,
        version=1,
        created_at=now,
        last_modified=now,
        patient_reference=intake.patient_reference,
        focus_reference=intake.focus_reference,
        focus_identifier=focus_identifier,
        business_status=business_status,
        status_reason=None,
        output=(),
    )
    return TaskRecord(
        id=task_id,
        order_id=new_id(),
        status=status,
        business_status=business_status,
        status_reason=None,
        patient_reference=intake.patient_reference,
        focus_reference=intake.focus_reference,
        focus_identifier=focus_identifier,
        output_references=(),
        version=1,
        created_at=now,
        last_modified=now,
        task_json=task_json(view),
    )


@dataclass
class _Pending:
    intake: OrderIntake
    prepared: TaskRecord
    audit: Callable[[AcceptResult], AuditRow] | None
    prepared_audit: AuditRow | None
    future: Future[AcceptResult]


class GroupCommitOrderStore(OrderStore):
    """:class:`OrderStore` that commits concurrent orders of this process together.

    A durable commit waits for an fsync (about 5 ms on this project's machines); one per order
    caps a database at a few hundred orders per second whatever the CPU. Here request threads
    hand their order to one writer thread per process, which runs every order waiting at that
    moment in one transaction (each in its own SAVEPOINT, so one refused order does not affect
    the others) and commits once. ``accept`` returns only after that commit: the guarantee is
    unchanged, the fsync is shared. Use it with threaded servers (gunicorn ``gthread``).

    Parameters
    ----------
    max_batch
        Most orders per transaction.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 64, timeout_s: float = 30.0) -> None:
        super().__init__(engine)
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._owner_pid = -1
        self._start_lock = threading.Lock()

    def _ensure_writer(self) -> None:
        # after a fork the writer thread does not exist in the child: start one per process
        if self._owner_pid == os.getpid():
            return
        with self._start_lock:
            if self._owner_pid != os.getpid():
                self._queue = queue.SimpleQueue()
                threading.Thread(
                    target=self._write_loop, name="cac-group-commit", daemon=True
                ).start()
                self._owner_pid = os.getpid()

    def accept(
        self,
        intake: OrderIntake,
        *,
        audit: Callable[[AcceptResult], AuditRow] | None = None,
    ) -> AcceptResult:
        """Same contract as :meth:`OrderStore.accept`; returns after the shared commit."""
        self._ensure_writer()
        prepared = _prepare_create(intake, utcnow())
        prepared_audit = audit(AcceptResult(AcceptOutcome.CREATED, prepared)) if audit else None
        pending = _Pending(intake, prepared, audit, prepared_audit, Future())
        self._queue.put(pending)
        return pending.future.result(timeout=self.timeout_s)

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            outcomes = self._run_batch(batch, savepoints=False)
        except Exception:
            # a statement failed (e.g. a unique-key race with another process; PostgreSQL has
            # then aborted the transaction) or an order hit a bug: run the batch again,
            # isolating each order in a SAVEPOINT
            try:
                outcomes = self._run_batch(batch, savepoints=True)
            except Exception as exc:  # the commit failed: nothing of this batch is stored
                outcomes = [exc] * len(batch)
        for item, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(outcome)

    def _run_batch(
        self, batch: list[_Pending], *, savepoints: bool
    ) -> list[AcceptResult | BaseException]:
        outcomes: list[AcceptResult | BaseException] = []
        with write_transaction(self.engine) as connection:
            for item in batch:
                if savepoints:
                    outcomes.append(self._accept_one(connection, item))
                    continue
                try:
                    outcomes.append(self._accept_audited(connection, item))
                except RequestError as exc:
                    # refusals are decided before this order writes anything
                    outcomes.append(exc)
        return outcomes

    def _accept_audited(self, connection: Connection, item: _Pending) -> AcceptResult:
        result = self._accept(connection, item.intake, item.prepared)
        if item.audit is not None and item.prepared_audit is not None:
            created = result.outcome is AcceptOutcome.CREATED
            insert_audit(connection, item.prepared_audit if created else item.audit(result))
        return result

    def _accept_one(self, connection: Connection, item: _Pending) -> AcceptResult | BaseException:
        for attempt in range(2):
            savepoint = connection.begin_nested()
            try:
                result = self._accept_audited(connection, item)
                savepoint.commit()
                return result
            except IntegrityError as exc:
                # another process stored the same order a moment ago: read it again
                savepoint.rollback()
                if attempt:
                    return exc
            except Exception as exc:  # a refusal (ConflictError, ...) or a bug: this order only
                savepoint.rollback()
                return exc
        raise AssertionError("unreachable")


def _apply_transition(
    connection: Connection,
    current: TaskRecord,
    status: TaskStatus,
    *,
    business_status: str | _Unset | None,
    status_reason: str | _Unset | None,
    output: Sequence[str] | None,
    now: datetime,
) -> TaskRecord:
    if not transition_allowed(current.status, status):
        raise InvalidTransitionError(
            f"Task {current.id}: {current.status.value} -> {status.value} is not allowed"
        )
    new_business = (
        current.business_status if isinstance(business_status, _Unset) else business_status
    )
    new_reason = current.status_reason if isinstance(status_reason, _Unset) else status_reason
    new_output = tuple(current.output_references) if output is None else tuple(output)
    version = current.version + 1
    last_modified = max(now, current.last_modified)
    body = task_json(
        _view(
            task_id=current.id,
            status=status,
            version=version,
            created_at=current.created_at,
            last_modified=last_modified,
            patient_reference=current.patient_reference,
            focus_reference=current.focus_reference,
            focus_identifier=current.focus_identifier,
            business_status=new_business,
            status_reason=new_reason,
            output=new_output,
        )
    )
    result = connection.execute(
        update(tasks)
        .where(and_(tasks.c.id == current.id, tasks.c.version == current.version))
        .values(
            status=status.value,
            business_status=new_business,
            status_reason=new_reason,
            output_json=json.dumps(list(new_output)),
            version=version,
            task_json=body,
            last_modified=last_modified,
        )
    )
    if result.rowcount != 1:
        raise ConcurrentUpdateError(f"Task {current.id} changed since version {current.version}")
    return TaskRecord(
        id=current.id,
        order_id=current.order_id,
        status=status,
        business_status=new_business,
        status_reason=new_reason,
        patient_reference=current.patient_reference,
        focus_reference=current.focus_reference,
        focus_identifier=current.focus_identifier,
        output_references=new_output,
        version=version,
        created_at=current.created_at,
        last_modified=last_modified,
        task_json=body,
    )


#: Statuses from which ``claim`` may start the work.
CLAIMABLE_STATUSES = frozenset(
    {TaskStatus.REQUESTED, TaskStatus.RECEIVED, TaskStatus.ACCEPTED, TaskStatus.READY}
)


class TaskStore:
    """Read and drive Tasks (the workers' API).

    Examples
    --------
    >>> store = TaskStore(engine)                          # doctest: +SKIP
    >>> if store.claim(task_id, redelivered=False):        # doctest: +SKIP
    ...     order = store.order_for(task_id)
    ...     store.transition(task_id, TaskStatus.IN_PROGRESS, business_status="scoring")
    ...     store.transition(task_id, TaskStatus.COMPLETED, output=["DiagnosticReport/1"])
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, task_id: str) -> TaskRecord:
        """The stored Task ``task_id``.

        Raises
        ------
        TaskNotFoundError
            No such Task.
        """
        with read_transaction(self.engine) as connection:
            row = connection.execute(select(tasks).where(tasks.c.id == task_id)).first()
        if row is None:
            raise TaskNotFoundError(f"no Task with id {task_id!r}")
        return _task_record(row)

    def order_for(self, task_id: str) -> OrderRecord:
        """The order (latest accepted version) that Task ``task_id`` fulfils.

        Raises
        ------
        TaskNotFoundError
            No such Task.
        """
        with read_transaction(self.engine) as connection:
            row = connection.execute(
                select(orders)
                .join(tasks, tasks.c.order_id == orders.c.id)
                .where(tasks.c.id == task_id)
            ).first()
        if row is None:
            raise TaskNotFoundError(f"no Task with id {task_id!r}")
        return _order_record(row)

    def transition(
        self,
        task_id: str,
        status: TaskStatus | str,
        *,
        business_status: str | _Unset | None = UNSET,
        status_reason: str | _Unset | None = UNSET,
        output: Sequence[str] | None = None,
        expected_version: int | None = None,
    ) -> TaskRecord:
        """Change the Task's status (or keep it and change ``businessStatus``).

        Parameters
        ----------
        task_id
            The Task.
        status
            New ``Task.status``; the same status updates only the other fields.
        business_status
            New ``Task.businessStatus`` code (e.g. ``fetching-images``, ``scoring``,
            ``posting-results``); left unchanged when not given, cleared with None.
        status_reason
            ``Task.statusReason`` text (why it failed/was rejected), same convention.
        output
            Literal references of the results (``DiagnosticReport/..``, ``Observation/..``);
            replaces the stored list when given.
        expected_version
            ``Task.meta.versionId`` the caller based its decision on; None trusts the latest.

        Returns
        -------
        TaskRecord
            The updated Task (version incremented).

        Raises
        ------
        TaskNotFoundError
            No such Task.
        InvalidTransitionError
            The FHIR Task state machine forbids the change (e.g. from a terminal status).
        ConcurrentUpdateError
            The Task changed since ``expected_version`` (or concurrently with this call).
        """
        new_status = TaskStatus(status)
        with write_transaction(self.engine) as connection:
            row = connection.execute(select(tasks).where(tasks.c.id == task_id)).first()
            if row is None:
                raise TaskNotFoundError(f"no Task with id {task_id!r}")
            current = _task_record(row)
            if expected_version is not None and current.version != expected_version:
                raise ConcurrentUpdateError(
                    f"Task {task_id} is at version {current.version}, not {expected_version}"
                )
            return _apply_transition(
                connection,
                current,
                new_status,
                business_status=business_status,
                status_reason=status_reason,
                output=output,
                now=utcnow(),
            )

    def claim(
        self, task_id: str, *, redelivered: bool = False, business_status: str = "started"
    ) -> bool:
        """Move the Task to ``in-progress`` if nobody has; True for the one caller that did.

        A message delivered twice is processed once: the second ``claim`` returns False. A message
        the broker re-delivered because its worker died (``redelivered=True``) may take over a
        Task that is already ``in-progress``.

        Raises
        ------
        TaskNotFoundError
            No such Task.
        """
        allowed = set(CLAIMABLE_STATUSES)
        if redelivered:
            allowed.add(TaskStatus.IN_PROGRESS)
        with write_transaction(self.engine) as connection:
            row = connection.execute(select(tasks).where(tasks.c.id == task_id)).first()
            if row is None:
                raise TaskNotFoundError(f"no Task with id {task_id!r}")
            current = _task_record(row)
            if current.status not in allowed:
                return False
            _apply_transition(
                connection,
                current,
                TaskStatus.IN_PROGRESS,
                business_status=business_status,
                status_reason=UNSET,
                output=None,
                now=utcnow(),
            )
            return True

    def search(
        self,
        *,
        focus: Sequence[str] = (),
        status: Sequence[TaskStatus] = (),
        patient: Sequence[str] = (),
        count: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[TaskRecord]]:
        """Tasks matching every given criterion (each a list of alternatives), newest first.

        Parameters
        ----------
        focus
            ``ServiceRequest/<id>`` references or ``<system>|<value>`` placer identifiers.
        status
            Task statuses.
        patient
            Stored patient references (``Patient/<id>`` or ``identifier:<system>|<value>``).
        count, offset
            Page size and start.

        Returns
        -------
        tuple
            ``(total matches, page)``.
        """
        conditions: list[Any] = []
        if focus:
            conditions.append(
                or_(tasks.c.focus_reference.in_(focus), tasks.c.focus_identifier.in_(focus))
            )
        if status:
            conditions.append(tasks.c.status.in_([s.value for s in status]))
        if patient:
            conditions.append(tasks.c.patient_reference.in_(patient))
        where = and_(*conditions) if conditions else None
        count_query = select(func.count()).select_from(tasks)
        page_query = select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.id)
        if where is not None:
            count_query = count_query.where(where)
            page_query = page_query.where(where)
        with read_transaction(self.engine) as connection:
            total = connection.execute(count_query).scalar_one()
            rows = connection.execute(page_query.limit(count).offset(offset)).all()
        return int(total), [_task_record(r) for r in rows]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One leased outbox row."""

    id: int
    task_id: str
    attempts: int


class OutboxStore:
    """The hand-off to the workers: rows committed with the order, sent by the dispatcher."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def lease(self, *, limit: int = 50, lease_s: float = 30.0) -> list[OutboxItem]:
        """Lease up to ``limit`` due rows for ``lease_s`` seconds; no other dispatcher gets them."""
        now = utcnow()
        with write_transaction(self.engine) as connection:
            rows = connection.execute(
                select(outbox.c.id, outbox.c.task_id, outbox.c.attempts)
                .where(
                    outbox.c.dispatched_at.is_(None),
                    outbox.c.next_attempt_at <= now,
                    or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
                )
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
            items: list[OutboxItem] = []
            for row in rows:
                leased = connection.execute(
                    update(outbox)
                    .where(
                        outbox.c.id == row.id,
                        outbox.c.dispatched_at.is_(None),
                        or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
                    )
                    .values(lease_until=now + timedelta(seconds=lease_s))
                )
                if leased.rowcount == 1:
                    items.append(OutboxItem(row.id, row.task_id, row.attempts))
        return items

    def mark_dispatched(self, item_id: int) -> None:
        """Record that the row's message is with the broker."""
        now = utcnow()
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(dispatched_at=now, lease_until=None, attempts=outbox.c.attempts + 1)
            )

    def mark_failed(self, item_id: int, error: str, retry_in_s: float) -> None:
        """Record a failed send; the row is due again after ``retry_in_s`` seconds."""
        now = utcnow()
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(
                    attempts=outbox.c.attempts + 1,
                    last_error=error[:2000],
                    next_attempt_at=now + timedelta(seconds=retry_in_s),
                    lease_until=None,
                )
            )

    def pending(self) -> int:
        """How many rows are not yet dispatched."""
        with read_transaction(self.engine) as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.dispatched_at.is_(None))
                ).scalar_one()
            )

    def status(self, task_id: str) -> Mapping[str, Any] | None:
        """The outbox row of ``task_id`` (attempts, dispatched_at, last_error), for diagnostics."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(
                select(outbox).where(outbox.c.task_id == task_id).order_by(outbox.c.id.desc())
            ).first()
        return dict(row._mapping) if row else None


class AuditStore:
    """Append and read AuditEvents."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, row: AuditRow) -> None:
        """Store one AuditEvent in its own transaction."""
        with write_transaction(self.engine) as connection:
            insert_audit(connection, row)

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest AuditEvents as FHIR JSON objects, newest first."""
        with read_transaction(self.engine) as connection:
            rows = connection.execute(
                select(audit_events.c.audit_json)
                .order_by(audit_events.c.recorded.desc(), audit_events.c.id)
                .limit(limit)
            ).all()
        return [json.loads(r.audit_json) for r in rows]
