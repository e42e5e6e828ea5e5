"""Faults against real peers: a worker killed mid-job, an EHR answering 503, a PACS that is down,
orders whose images are missing, broken or not CT, a Redis restart, an EHR without transactions,
and an appropriateness policy that rejects."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.peers.servers import free_port

pytestmark = pytest.mark.integration

FAST_REDELIVERY = {
    "CAC_TASK_SOFT_TIME_LIMIT_S": "20",
    "CAC_TASK_TIME_LIMIT_S": "25",
    "CAC_VISIBILITY_TIMEOUT_S": "30",
}


def reports_for(pipeline, service_request) -> list[dict]:
    return pipeline.ehr_search(
        "DiagnosticReport", **{"based-on": f"ServiceRequest/{service_request['id']}"}
    )


def observations_for(pipeline, service_request) -> list[dict]:
    return pipeline.ehr_search(
        "Observation", **{"based-on": f"ServiceRequest/{service_request['id']}"}
    )


class TestWorkerKilled:
    def test_sigkill_mid_job_is_redelivered_and_posts_one_report(self, pipeline_factory) -> None:
        pipeline = pipeline_factory(
            CAC_TASK_SOFT_TIME_LIMIT_S="10",
            CAC_TASK_TIME_LIMIT_S="12",
            CAC_VISIBILITY_TIMEOUT_S="14",
            CAC_UNACKED_RESTORE_INTERVAL_S="1",
        )
        study = pipeline.upload_study(seed=11)
        service_request = pipeline.seed_order(study)
        worker = pipeline.start_worker()
        task_id = pipeline.post_order(service_request)
        pipeline.wait_task(task_id, timeout_s=30, statuses=("in-progress",))
        pipeline.kill_worker(worker)
        assert pipeline.tasks().get(task_id).status.value == "in-progress"

        pipeline.start_worker()
        record = pipeline.wait_task(task_id, timeout_s=60)
        assert record.status.value == "completed", record.status_reason
        assert len(reports_for(pipeline, service_request)) == 1
        identifiers = [
            o["identifier"][0]["value"] for o in observations_for(pipeline, service_request)
        ]
        assert len(identifiers) == len(set(identifiers))


class TestEHRUnavailable:
    def test_503_on_posting_is_retried_and_posted_once(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=12)
        service_request = pipeline.seed_order(study)
        pipeline.start_worker()
        before = pipeline.fhir.stats()["injected"]
        pipeline.fhir.inject_faults(status=503, count=2, methods=["POST"])
        task_id = pipeline.post_order(service_request)
        record = pipeline.wait_task(task_id, timeout_s=60)
        assert record.status.value == "completed", record.status_reason
        assert pipeline.fhir.stats()["injected"] - before == 2
        assert len(reports_for(pipeline, service_request)) == 1

    def test_503_for_good_fails_the_task_after_bounded_retries(self, pipeline_factory) -> None:
        pipeline = pipeline_factory(CAC_MAX_RETRIES="2")
        study = pipeline.upload_study(seed=13)
        service_request = pipeline.seed_order(study)
        pipeline.start_worker()
        task_id = pipeline.post_order(service_request)
        pipeline.wait_task(task_id, timeout_s=30, statuses=("in-progress",))
        pipeline.fhir.inject_faults(status=503, count=10_000)
        try:
            record = pipeline.wait_task(task_id, timeout_s=60)
        finally:
            pipeline.fhir.clear_faults()
        assert record.status.value == "failed"
        assert "503" in record.status_reason
        assert "gave up after 3 attempts" in record.status_reason


class TestPACSFaults:
    def test_pacs_down_fails_after_bounded_retries_with_the_reason(
        self, pipeline_factory, orthanc
    ) -> None:
        dead = f"http://127.0.0.1:{free_port()}/dicom-web"
        pipeline = pipeline_factory(
            CAC_PACS_ALLOWLIST=f"{orthanc.dicomweb_url} {dead}", CAC_MAX_RETRIES="2"
        )
        study = pipeline.upload_study(seed=14)
        service_request = pipeline.seed_order(study, pacs_url=dead)
        pipeline.start_worker()
        started = time.monotonic()
        task_id = pipeline.post_order(service_request)
        record = pipeline.wait_task(task_id, timeout_s=60)
        assert record.status.value == "failed"
        assert "PACS" in record.status_reason
        assert "gave up after 3 attempts" in record.status_reason
        assert time.monotonic() - started < 30

    def test_pacs_not_allow_listed_is_never_contacted(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=15)
        service_request = pipeline.seed_order(study, pacs_url="http://169.254.169.254/dicom-web")
        pipeline.start_worker()
        record = pipeline.wait_task(pipeline.post_order(service_request), timeout_s=30)
        assert record.status.value == "failed"
        assert "allow-list" in record.status_reason

    def test_study_not_found(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=16)
        service_request = pipeline.seed_order(study, study_uid=f"2.25.{uuid.uuid4().int}")
        pipeline.start_worker()
        record = pipeline.wait_task(pipeline.post_order(service_request), timeout_s=30)
        assert record.status.value == "failed"
        assert "no study with StudyInstanceUID" in record.status_reason

    def test_wrong_modality(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=17, modality="MR")
        service_request = pipeline.seed_order(study)
        pipeline.start_worker()
        record = pipeline.wait_task(pipeline.post_order(service_request), timeout_s=30)
        assert record.status.value == "failed"
        assert "MR" in record.status_reason
        assert "CT" in record.status_reason

    def test_broken_dicom(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=18, truncate_pixels=True)
        service_request = pipeline.seed_order(study)
        pipeline.start_worker()
        record = pipeline.wait_task(pipeline.post_order(service_request), timeout_s=30)
        assert record.status.value == "failed"
        assert study.series_instance_uid in record.status_reason
        assert reports_for(pipeline, service_request) == []


class TestRedisRestart:
    def test_no_order_lost_when_redis_restarts_mid_run(
        self, pipeline_factory, redis_server
    ) -> None:
        pipeline = pipeline_factory(
            CAC_TASK_SOFT_TIME_LIMIT_S="8",
            CAC_TASK_TIME_LIMIT_S="9",
            CAC_VISIBILITY_TIMEOUT_S="10",
            CAC_UNACKED_RESTORE_INTERVAL_S="1",
        )
        study = pipeline.upload_study(seed=19)
        orders = [pipeline.seed_order(study, extra_obs=False) for _ in range(4)]
        task_ids = [pipeline.post_order(sr) for sr in orders]
        pipeline.start_worker()
        pipeline.wait_task(task_ids[0], timeout_s=30, statuses=("in-progress", "completed"))
        redis_server.restart()
        for task_id in task_ids:
            record = pipeline.wait_task(task_id, timeout_s=90)
            assert record.status.value == "completed", record.status_reason
        for sr in orders:
            assert len(reports_for(pipeline, sr)) == 1


class TestEHRWithoutTransactions:
    def test_sequential_fallback_posts_resolvable_results(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=20)
        service_request = pipeline.seed_order(study)
        pipeline.start_worker()
        pipeline.fhir.inject_faults(refuse_transactions=True)
        try:
            record = pipeline.wait_task(pipeline.post_order(service_request), timeout_s=60)
        finally:
            pipeline.fhir.clear_faults()
        assert record.status.value == "completed", record.status_reason
        (report,) = reports_for(pipeline, service_request)
        for ref in report["result"]:
            obs = pipeline.ehr_read(ref["reference"])
            assert obs["device"]["reference"].startswith("Device/")
        provenance = pipeline.ehr_search("Provenance", target=f"DiagnosticReport/{report['id']}")
        assert len(provenance) == 1


class TestAppropriatenessPolicy:
    def test_reject_policy_rejects_a_pregnant_patient(self, pipeline_factory) -> None:
        pipeline = pipeline_factory(CAC_APPROPRIATENESS_POLICY="reject")
        study = pipeline.upload_study(seed=21)
        service_request = pipeline.seed_order(study, extra_obs=False, pregnant=True)
        pipeline.start_worker()
        record = pipeline.wait_task(pipeline.post_order(service_request), timeout_s=30)
        assert record.status.value == "rejected"
        assert "pregnant" in record.status_reason
        assert reports_for(pipeline, service_request) == []

    def test_flag_policy_reports_the_finding(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=22)
        service_request = pipeline.seed_order(study, extra_obs=False, pregnant=True)
        pipeline.start_worker()
        record = pipeline.wait_task(pipeline.post_order(service_request), timeout_s=60)
        assert record.status.value == "completed", record.status_reason
        (report,) = reports_for(pipeline, service_request)
        assert "pregnant" in report["conclusion"]
