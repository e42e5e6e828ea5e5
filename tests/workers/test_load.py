"""Load: 50 orders at once through 2 worker processes -> 50 reports, none lost, none twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_fifty_orders_two_workers(pipeline_factory) -> None:
    pipeline = pipeline_factory()
    # seed 7: 59 candidates; the clinician PDF lists every excluded candidate, and a noisy draw
    # (seed 30: 1559 candidates) takes 10-20 s to render per order (reports package)
    study = pipeline.upload_study(seed=7)
    orders = [pipeline.seed_order(study, extra_obs=False) for _ in range(50)]
    pipeline.start_worker()
    pipeline.start_worker()
    started = time.monotonic()
    task_ids = [pipeline.post_order(sr) for sr in orders]
    records = [pipeline.wait_task(task_id, timeout_s=240) for task_id in task_ids]
    elapsed = time.monotonic() - started
    assert Counter(r.status.value for r in records) == {"completed": 50}, [
        r.status_reason for r in records if r.status.value != "completed"
    ]
    report_refs = [r.output_references[0] for r in records]
    assert len(set(report_refs)) == 50
    wanted = {f"ServiceRequest/{sr['id']}" for sr in orders}
    reports = [
        r
        for r in pipeline.ehr_search("DiagnosticReport", _count="1000")
        if r["basedOn"][0]["reference"] in wanted
    ]
    assert len(reports) == 50
    assert Counter(r["basedOn"][0]["reference"] for r in reports) == dict.fromkeys(wanted, 1)
    # both workers took part
    logs = [path.read_text(errors="replace") for path in pipeline.logs]
    assert all('"status": "completed"' in log for log in logs), "a worker processed nothing"
    print(f"50 orders through 2 workers in {elapsed:.1f} s")
