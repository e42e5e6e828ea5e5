"""Build the FHIR ``Task`` that tracks one order (FHIR Workflow module, Task resource).

``Task.intent`` is ``order``, ``Task.code`` the task-code ``fulfill``, ``Task.focus`` the
ServiceRequest, ``Task.for`` the patient (reference/fhir-dicom.md section 3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fhir.resources.R4B.task import Task

#: http://hl7.org/fhir/CodeSystem/task-code
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
#: Local code system of the project for ``Task.businessStatus`` (no standard one exists).
BUSINESS_STATUS_SYSTEM = "https://cac-fhir.org/fhir/CodeSystem/task-business-status"


class TaskStatus(StrEnum):
    """FHIR R4 ``Task.status`` (http://hl7.org/fhir/R4/valueset-task-status.html)."""

    DRAFT = "draft"
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    READY = "ready"
    CANCELLED = "cancelled"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    FAILED = "failed"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"


#: States from which a Task never moves again.
TERMINAL_STATUSES = frozenset(
    {
        TaskStatus.REJECTED,
        TaskStatus.CANCELLED,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
        TaskStatus.ENTERED_IN_ERROR,
    }
)

#: States in which an order has not started: a new version may still replace it.
NOT_STARTED_STATUSES = frozenset(
    {
        TaskStatus.DRAFT,
        TaskStatus.REQUESTED,
        TaskStatus.RECEIVED,
        TaskStatus.ACCEPTED,
        TaskStatus.READY,
    }
)

#: Allowed status changes, from the FHIR R4 Task state machine (task.html#statemachine). A
#: non-terminal Task may also keep its status (to change businessStatus); any Task may be marked
#: entered-in-error.
ALLOWED_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.DRAFT: frozenset({TaskStatus.REQUESTED, TaskStatus.CANCELLED}),
    TaskStatus.REQUESTED: frozenset(
        {
            TaskStatus.RECEIVED,
            TaskStatus.ACCEPTED,
            TaskStatus.REJECTED,
            TaskStatus.READY,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.RECEIVED: frozenset(
        {TaskStatus.ACCEPTED, TaskStatus.REJECTED, TaskStatus.READY, TaskStatus.CANCELLED}
    ),
    TaskStatus.ACCEPTED: frozenset(
        {
            TaskStatus.READY,
            TaskStatus.IN_PROGRESS,
            TaskStatus.REJECTED,
            TaskStatus.CANCELLED,
            TaskStatus.FAILED,
        }
    ),
    TaskStatus.READY: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED, TaskStatus.FAILED}),
    TaskStatus.IN_PROGRESS: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ON_HOLD, TaskStatus.CANCELLED}
    ),
    TaskStatus.ON_HOLD: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED, TaskStatus.FAILED}
    ),
}


def transition_allowed(current: TaskStatus, new: TaskStatus) -> bool:
    """Whether ``current`` -> ``new`` is allowed by the FHIR Task state machine.

    Parameters
    ----------
    current, new
        Task statuses.

    Returns
    -------
    bool
        True for an allowed change, for keeping a non-terminal status, and for marking any Task
        ``entered-in-error``.
    """
    if new is TaskStatus.ENTERED_IN_ERROR:
        return current is not TaskStatus.ENTERED_IN_ERROR
    if current in TERMINAL_STATUSES:
        return False
    return new is current or new in ALLOWED_TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True, slots=True)
class TaskView:
    """Everything a Task resource shows, as stored.

    Attributes
    ----------
    focus_reference
        ``ServiceRequest/<id>`` as the placer knows it, if the order carried an id.
    focus_identifier
        ``(system, value)`` of the placer's order identifier, if any.
    patient_reference
        Literal reference (``Patient/123``) or ``identifier:<system>|<value>`` for a patient
        known only by identifier.
    output_references
        Literal references to results (``DiagnosticReport/..``), in order.
    """

    id: str
    status: TaskStatus
    version: int
    authored_on: datetime
    last_modified: datetime
    patient_reference: str
    focus_reference: str | None = None
    focus_identifier: tuple[str, str] | None = None
    business_status: str | None = None
    status_reason: str | None = None
    output_references: Sequence[str] = field(default_factory=tuple)
    requester: str | None = None


def reference_json(reference: str) -> dict[str, Any]:
    """FHIR ``Reference`` JSON for a stored reference string.

    ``identifier:<system>|<value>`` becomes a logical reference (``Reference.identifier``);
    anything else is a literal ``Reference.reference``.
    """
    if reference.startswith("identifier:"):
        system, _, value = reference.removeprefix("identifier:").rpartition("|")
        ident: dict[str, str] = {"value": value}
        if system:
            ident["system"] = system
        return {"identifier": ident}
    return {"reference": reference}


def build_task(view: TaskView) -> Task:
    """Build the FHIR Task for ``view``.

    Returns
    -------
    Task
        ``intent`` order, ``code`` fulfill, ``focus`` the ServiceRequest, ``for`` the patient,
        ``meta.versionId`` the stored version, ``output`` one entry per result reference.
    """
    return Task.model_validate(_task_data(view))


def _task_data(view: TaskView) -> dict[str, Any]:
    focus: dict[str, Any] = {"type": "ServiceRequest"}
    if view.focus_reference:
        focus["reference"] = view.focus_reference
    if view.focus_identifier:
        focus["identifier"] = {
            "system": view.focus_identifier[0],
            "value": view.focus_identifier[1],
        }
    data: dict[str, Any] = {
        "resourceType": "Task",
        "id": view.id,
        "meta": {"versionId": str(view.version), "lastUpdated": view.last_modified.isoformat()},
        "status": view.status.value,
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": TASK_CODE_SYSTEM,
                    "code": "fulfill",
                    "display": "Fulfill the focal request",
                }
            ]
        },
        "description": "Coronary artery calcium scoring of the referenced CT study",
        "focus": focus,
        "for": reference_json(view.patient_reference),
        "authoredOn": view.authored_on.isoformat(),
        "lastModified": view.last_modified.isoformat(),
    }
    if view.requester:
        data["requester"] = {"display": view.requester}
    if view.business_status:
        data["businessStatus"] = {
            "coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": view.business_status}],
            "text": view.business_status,
        }
    if view.status_reason:
        data["statusReason"] = {"text": view.status_reason}
    if view.output_references:
        data["output"] = [
            {
                "type": {"text": ref.split("/", 1)[0]},
                "valueReference": {"reference": ref},
            }
            for ref in view.output_references
        ]
    return data


def task_json(view: TaskView) -> str:
    """FHIR JSON of :func:`build_task` (``application/fhir+json``).

    The document is validated with the R4B ``Task`` model and then written from the validated
    input: ``fhir.resources``' own serializer costs about 1 ms per resource, a third of the
    request budget (benchmarks/bench_service.py).
    """
    data = _task_data(view)
    Task.model_validate(data)
    return json.dumps(data, separators=(",", ":"))


def parse_output_json(raw: str) -> tuple[str, ...]:
    """Decode the stored ``output_json`` column into reference strings."""
    value = json.loads(raw or "[]")
    return tuple(str(v) for v in value)
