"""Repositories on SQLite and PostgreSQL: idempotent accept, Task state machine, claim, search."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select

from fhir_service.errors import (
    BusinessRuleError,
    ConcurrentUpdateError,
    ConflictError,
    InvalidTransitionError,
    TaskNotFoundError,
)
from fhir_service.mapping.service_request import OrderIntake, parse_service_request
from fhir_service.mapping.task import TaskStatus
from fhir_service.settings import DEFAULT_ORDER_CODES
from fhir_service.storage import (
    AcceptOutcome,
    GroupCommitOrderStore,
    OrderStore,
    OutboxStore,
    TaskStore,
    schema_is_current,
)
from fhir_service.storage.schema import metadata, outbox, tasks
from tests.fhir_service.conftest import service_request

CODES = frozenset((c.system, c.code) for c in DEFAULT_ORDER_CODES)


def intake(number: int = 1, **overrides: Any) -> OrderIntake:
    order = service_request(id=f"sr-{number}", **overrides)
    order["identifier"][0]["value"] = f"ORD-{number}"
    return parse_service_request(order, accepted_codes=CODES, pacs_allowlist=())


class TestMigrations:
    def test_migrations_create_exactly_the_declared_schema(self, engine: Engine) -> None:
        assert schema_is_current(engine)
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        assert diff == []


class TestOrderStoreAccept:
    def test_new_order_stores_order_task_and_outbox_row(self, engine: Engine) -> None:
        result = OrderStore(engine).accept(intake())
        assert result.outcome is AcceptOutcome.CREATED
        assert result.task.status is TaskStatus.ACCEPTED
        assert result.task.version == 1
        assert TaskStore(engine).get(result.task.id) == result.task
        assert OutboxStore(engine).pending() == 1

    def test_same_version_is_the_existing_task(self, engine: Engine) -> None:
        store = OrderStore(engine)
        first = store.accept(intake())
        second = store.accept(intake())
        assert second.outcome is AcceptOutcome.EXISTING
        assert second.task.id == first.task.id
        assert OutboxStore(engine).pending() == 1

    def test_new_version_replaces_until_started(self, engine: Engine) -> None:
        store = OrderStore(engine)
        first = store.accept(intake())
        replaced = store.accept(
            intake(meta={"versionId": "2"}, subject={"reference": "Patient/p9"})
        )
        assert replaced.outcome is AcceptOutcome.REPLACED
        assert replaced.task.id == first.task.id
        assert replaced.task.version == 2
        assert replaced.task.patient_reference == "Patient/p9"
        order = TaskStore(engine).order_for(first.task.id)
        assert order.version_key == "versionId:2"
        assert TaskStore(engine).claim(first.task.id)
        with pytest.raises(ConflictError):
            store.accept(intake(meta={"versionId": "3"}))

    def test_revoke_cancels_and_is_idempotent(self, engine: Engine) -> None:
        store = OrderStore(engine)
        first = store.accept(intake())
        cancelled = store.accept(intake(meta={"versionId": "2"}, status="revoked"))
        assert cancelled.outcome is AcceptOutcome.CANCELLED
        assert cancelled.task.status is TaskStatus.CANCELLED
        again = store.accept(intake(meta={"versionId": "3"}, status="revoked"))
        assert again.outcome is AcceptOutcome.EXISTING
        assert TaskStore(engine).get(first.task.id).status is TaskStatus.CANCELLED

    def test_revoke_without_a_new_version_id_still_cancels(self, engine: Engine) -> None:
        store = OrderStore(engine)
        store.accept(intake())
        cancelled = store.accept(intake(status="revoked"))
        assert cancelled.outcome is AcceptOutcome.CANCELLED

    def test_revoking_a_completed_order_is_a_conflict(self, engine: Engine) -> None:
        store = OrderStore(engine)
        task_id = store.accept(intake()).task.id
        tasks_ = TaskStore(engine)
        tasks_.claim(task_id)
        tasks_.transition(task_id, TaskStatus.COMPLETED)
        with pytest.raises(ConflictError):
            store.accept(intake(meta={"versionId": "2"}, status="revoked"))

    def test_revoking_an_unknown_order_is_refused(self, engine: Engine) -> None:
        with pytest.raises(BusinessRuleError):
            OrderStore(engine).accept(intake(status="revoked"))


class TestGroupCommit:
    def test_concurrent_orders_are_all_stored_once(self, engine: Engine) -> None:
        store = GroupCommitOrderStore(engine)
        results: list[Any] = []
        lock = threading.Lock()

        def post(number: int) -> None:
            outcome = store.accept(intake(number % 10))
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        created = [r for r in results if r.outcome is AcceptOutcome.CREATED]
        assert len(results) == 30
        assert len(created) == 10
        assert {r.task.id for r in results} == {r.task.id for r in created}
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(tasks)).scalar_one() == 10
            assert connection.execute(select(func.count()).select_from(outbox)).scalar_one() == 10

    def test_a_refused_order_does_not_affect_its_batch(self, engine: Engine) -> None:
        store = GroupCommitOrderStore(engine)
        store.accept(intake(1))
        TaskStore(engine).claim(store.accept(intake(1)).task.id)
        with pytest.raises(ConflictError):
            store.accept(intake(1, meta={"versionId": "9"}))
        assert store.accept(intake(2)).outcome is AcceptOutcome.CREATED


class TestTaskStore:
    def test_claim_once_unless_redelivered(self, engine: Engine) -> None:
        task_id = OrderStore(engine).accept(intake()).task.id
        store = TaskStore(engine)
        assert store.claim(task_id) is True
        assert store.claim(task_id) is False
        assert store.claim(task_id, redelivered=True) is True
        store.transition(task_id, TaskStatus.COMPLETED)
        assert store.claim(task_id, redelivered=True) is False

    def test_concurrent_claims_have_one_winner(self, engine: Engine) -> None:
        task_id = OrderStore(engine).accept(intake()).task.id
        store = TaskStore(engine)
        wins: list[bool] = []

        def claim() -> None:
            try:
                wins.append(store.claim(task_id))
            except ConcurrentUpdateError:
                wins.append(False)

        threads = [threading.Thread(target=claim) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(wins) == [False] * 5 + [True]

    def test_transition_updates_json_and_version(self, engine: Engine) -> None:
        task_id = OrderStore(engine).accept(intake()).task.id
        store = TaskStore(engine)
        store.claim(task_id)
        running = store.transition(task_id, "in-progress", business_status="scoring")
        assert running.business_status == "scoring"
        assert running.version == 3
        done = store.transition(
            task_id,
            TaskStatus.COMPLETED,
            business_status="results-posted",
            output=["DiagnosticReport/dr-1", "Observation/o-1"],
            expected_version=3,
        )
        assert done.output_references == ("DiagnosticReport/dr-1", "Observation/o-1")
        assert '"status":"completed"' in done.task_json
        assert '"versionId":"4"' in done.task_json
        assert store.get(task_id) == done

    def test_failure_keeps_the_reason(self, engine: Engine) -> None:
        task_id = OrderStore(engine).accept(intake()).task.id
        store = TaskStore(engine)
        store.claim(task_id)
        failed = store.transition(task_id, TaskStatus.FAILED, status_reason="no CT series found")
        assert failed.status_reason == "no CT series found"
        assert "no CT series found" in store.get(task_id).task_json

    def test_stale_version_is_refused(self, engine: Engine) -> None:
        task_id = OrderStore(engine).accept(intake()).task.id
        store = TaskStore(engine)
        store.transition(task_id, TaskStatus.ACCEPTED, business_status="x")
        with pytest.raises(ConcurrentUpdateError):
            store.transition(task_id, TaskStatus.IN_PROGRESS, expected_version=1)

    @pytest.mark.parametrize(
        "terminal", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]
    )
    def test_terminal_tasks_never_reopen(self, engine: Engine, terminal: TaskStatus) -> None:
        task_id = OrderStore(engine).accept(intake()).task.id
        store = TaskStore(engine)
        store.claim(task_id)
        store.transition(task_id, terminal)
        with pytest.raises(InvalidTransitionError):
            store.transition(task_id, TaskStatus.IN_PROGRESS)

    def test_unknown_task(self, engine: Engine) -> None:
        store = TaskStore(engine)
        with pytest.raises(TaskNotFoundError):
            store.get("nope")
        with pytest.raises(TaskNotFoundError):
            store.order_for("nope")
        with pytest.raises(TaskNotFoundError):
            store.transition("nope", TaskStatus.FAILED)
        with pytest.raises(TaskNotFoundError):
            store.claim("nope")

    def test_search_filters_and_pages(self, engine: Engine) -> None:
        ids = [OrderStore(engine).accept(intake(n)).task.id for n in range(5)]
        store = TaskStore(engine)
        store.claim(ids[0])
        total, page = store.search(status=[TaskStatus.ACCEPTED], count=3)
        assert total == 4
        assert len(page) == 3
        total, rest = store.search(status=[TaskStatus.ACCEPTED], count=3, offset=3)
        assert len(rest) == 1
        assert {t.id for t in page + rest} == set(ids[1:])
        assert store.search(focus=["ServiceRequest/sr-2"])[1][0].id == ids[2]
        assert store.search(focus=["urn:oid:1.2.840.99999.1|ORD-3"])[1][0].id == ids[3]
        assert store.search(patient=["Patient/p1"])[0] == 5
        assert store.search(patient=["Patient/other"]) == (0, [])
