"""Task mapping: the FHIR state machine and the built resource."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fhir_service.mapping.task import (
    TERMINAL_STATUSES,
    TaskStatus,
    TaskView,
    build_task,
    reference_json,
    task_json,
    transition_allowed,
)

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


class TestTransitionAllowed:
    @pytest.mark.parametrize(
        ("current", "new"),
        [
            (TaskStatus.REQUESTED, TaskStatus.ACCEPTED),
            (TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS),
            (TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED),
            (TaskStatus.IN_PROGRESS, TaskStatus.FAILED),
            (TaskStatus.IN_PROGRESS, TaskStatus.IN_PROGRESS),
            (TaskStatus.ACCEPTED, TaskStatus.CANCELLED),
            (TaskStatus.ON_HOLD, TaskStatus.IN_PROGRESS),
            (TaskStatus.COMPLETED, TaskStatus.ENTERED_IN_ERROR),
        ],
    )
    def test_allowed(self, current: TaskStatus, new: TaskStatus) -> None:
        assert transition_allowed(current, new)

    @pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES - {TaskStatus.ENTERED_IN_ERROR}))
    @pytest.mark.parametrize(
        "new", [TaskStatus.IN_PROGRESS, TaskStatus.ACCEPTED, TaskStatus.COMPLETED]
    )
    def test_terminal_is_final(self, terminal: TaskStatus, new: TaskStatus) -> None:
        assert not transition_allowed(terminal, new)

    def test_backwards_is_refused(self) -> None:
        assert not transition_allowed(TaskStatus.IN_PROGRESS, TaskStatus.ACCEPTED)
        assert not transition_allowed(TaskStatus.ACCEPTED, TaskStatus.COMPLETED)


class TestBuildTask:
    def test_workflow_elements(self) -> None:
        view = TaskView(
            id="t1",
            status=TaskStatus.FAILED,
            version=3,
            authored_on=NOW,
            last_modified=NOW,
            patient_reference="identifier:urn:mrn|42",
            focus_reference="ServiceRequest/sr-1",
            focus_identifier=("urn:placer", "ORD-1"),
            business_status="fetching-images",
            status_reason="PACS returned no CT series",
            output_references=("DiagnosticReport/dr-1",),
        )
        task = build_task(view)  # validates with the R4B Task model
        assert task.id == "t1"
        data = json.loads(task_json(view))
        assert data["intent"] == "order"
        assert data["code"]["coding"][0]["code"] == "fulfill"
        assert data["for"] == {"identifier": {"system": "urn:mrn", "value": "42"}}
        assert data["focus"]["reference"] == "ServiceRequest/sr-1"
        assert data["statusReason"]["text"] == "PACS returned no CT series"
        assert data["meta"]["versionId"] == "3"
        assert data["output"][0]["valueReference"]["reference"] == "DiagnosticReport/dr-1"

    def test_reference_json(self) -> None:
        assert reference_json("Patient/1") == {"reference": "Patient/1"}
        assert reference_json("identifier:|7") == {"identifier": {"value": "7"}}
