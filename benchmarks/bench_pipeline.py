"""Order-to-report latency and throughput of the pipeline against real peers.

Starts Orthanc (+DICOMweb), the FHIR test server and Redis on loopback (tests/peers/servers.py),
uploads a ~64-slice chest phantom study, and posts orders the way the service does (check,
persist, enqueue ``cac.process_order`` by name). A worker process (``cac worker``) runs them.

Prints:
- latency p50 over N runs, one order at a time, split into accept (the service persists the order
  and publishes the message), queue (publish -> job start), context (EHR reads), dedupe (search for
  an earlier report), fetch (QIDO + WADO-RS), load (decode + volume), score (candidates, detection,
  Agatston/volume/mass), interpret, build (FHIR resources and Bundle), post (the transaction
  round trip to the EHR), task (durable
  Task updates) and other (framework, polling granularity of 20 ms);
- overhead = everything but fetch + load + score, as a share of the total (aim < 20 %);
- baseline measured in the same run: ``cac score`` work alone (load + score in process, no
  broker, no HTTP), so the pipeline's cost can be read as a ratio;
- throughput (orders/min) with 1 and 2 worker processes.

Run: ``.venv/bin/python benchmarks/bench_pipeline.py [--runs 20] [--throughput-orders 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dicom_io.loader import load_series  # noqa: E402
from dicom_io.writer import write_series  # noqa: E402
from fhir_service.mapping.service_request import parse_service_request  # noqa: E402
from fhir_service.queue import create_celery, send_process_order  # noqa: E402
from fhir_service.settings import Settings  # noqa: E402
from fhir_service.storage import OrderStore, TaskStore, make_engine, migrate  # noqa: E402
from phantom.chest import ChestPhantomConfig, chest_phantom  # noqa: E402
from scoring import find_candidates, score_candidates  # noqa: E402
from scoring.coronary import detect_coronary_calcium  # noqa: E402
from tests.peers.servers import FHIRServer, OrthancServer, RedisServer  # noqa: E402
from workers.embedded import CAC_COMMAND  # noqa: E402

#: Steps the job times (workers.job.JobTimings); nested steps are counted once.
JOB_STEPS = (
    "context",
    "dedupe",
    "fetch",
    "load",
    "score",
    "interpret",
    "render",
    "build",
    "post",
    "task",
)


def post(base: str, resource: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{base}/{resource['resourceType']}", json=resource, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def seed_order(fhir: str, pacs: str, study_uid: str) -> dict[str, Any]:
    patient = post(fhir, {"resourceType": "Patient", "gender": "female", "birthDate": "1962-05-01"})
    subject = {"reference": f"Patient/{patient['id']}"}
    endpoint = post(
        fhir,
        {
            "resourceType": "Endpoint",
            "status": "active",
            "connectionType": {
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "code": "dicom-wado-rs",
            },
            "payloadType": [{"text": "DICOM"}],
            "address": pacs,
        },
    )
    study = post(
        fhir,
        {
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": subject,
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}],
            "endpoint": [{"reference": f"Endpoint/{endpoint['id']}"}],
        },
    )
    return post(
        fhir,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "identifier": [{"system": "urn:bench:placer", "value": uuid.uuid4().hex}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "79087-3"}]},
            "supportingInfo": [{"reference": f"ImagingStudy/{study['id']}"}],
        },
    )


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.orthanc = OrthancServer(workdir / "orthanc").start()
        self.fhir = FHIRServer(workdir / "fhir").start()
        self.redis = RedisServer(workdir / "redis").start()
        self.workers: list[subprocess.Popen[bytes]] = []
        self.db_index = 0

    def environment(self) -> tuple[dict[str, str], Settings]:
        """A fresh service database, Redis db and EHR for one phase (the test EHR's conditional
        creates slow down as its in-memory store grows, which would favour earlier phases)."""
        self.db_index += 1
        self.fhir.stop()
        self.fhir = FHIRServer(self.workdir / f"fhir{self.db_index}").start()
        data = self.workdir / f"svc{self.db_index}"
        data.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CAC_")},
            "CAC_DATA_DIR": str(data),
            "CAC_DATABASE_URL": f"sqlite:///{data / 'service.sqlite'}",
            "CAC_BROKER_URL": f"redis://127.0.0.1:{self.redis.port}/{self.db_index}",
            "CAC_AUTH_DISABLED": "1",
            "CAC_EHR_BASE_URL": self.fhir.base_url,
            "CAC_PACS_ALLOWLIST": self.orthanc.dicomweb_url,
            "CAC_PACS_USER": self.orthanc.auth[0],
            "CAC_PACS_PASSWORD": self.orthanc.auth[1],
        }
        settings = Settings.from_env(env)
        migrate(make_engine(settings.database_url))
        return env, settings

    def start_workers(self, env: dict[str, str], n: int) -> list[Path]:
        logs = []
        for i in range(n):
            log_path = self.workdir / f"worker-{self.db_index}-{i}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        *CAC_COMMAND,
                        "worker",
                        "--concurrency=1",
                        f"--hostname=bench{self.db_index}-{i}@%h",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=REPO,
                )
            self.workers.append(process)
            logs.append(log_path)
            deadline = time.monotonic() + 30
            while " ready." not in log_path.read_text(errors="replace"):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"worker did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.05)
        return logs

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
        self.workers.clear()

    def close(self) -> None:
        self.stop_workers()
        for server in (self.orthanc, self.fhir, self.redis):
            server.stop()


def job_records(logs: list[Path], wanted: list[str], timeout_s: float = 10) -> dict[str, Any]:
    """The ``cac-job`` log lines of ``wanted`` orders (the line is written just after the Task is
    completed, so wait a moment for the last one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = {}
        for path in logs:
            for line in path.read_text(errors="replace").splitlines():
                if "cac-job " in line:
                    record = json.loads(line.split("cac-job ", 1)[1])
                    out[record["task_id"]] = record
        if all(t in out for t in wanted) or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def wait_done(store: TaskStore, task_ids: list[str], timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(task_ids)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} orders not finished after {timeout_s} s")
        for task_id in list(pending):
            record = store.get(task_id)
            if record.status.value in ("completed", "failed", "rejected"):
                if record.status.value != "completed":
                    raise SystemExit(
                        f"order {task_id} {record.status.value}: {record.status_reason}"
                    )
                pending.discard(task_id)
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="latency runs (default 20)")
    parser.add_argument(
        "--throughput-orders", type=int, default=12, help="orders per throughput run"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cac-bench-"))
    bench = Bench(workdir)
    try:
        phantom = chest_phantom(ChestPhantomConfig.random(7, increment_mm=1.85))
        study_uid = f"2.25.{uuid.uuid4().int}"
        paths = write_series(phantom.volume, workdir / "study", study_instance_uid=study_uid)
        bench.orthanc.upload_files(paths)
        n_slices, rows, cols = phantom.volume.shape
        print(
            f"study: {n_slices} slices of {rows}x{cols}, "
            f"{sum(p.stat().st_size for p in paths) / 1e6:.1f} MB"
        )

        # baseline: the scoring work alone, in process, from the same files
        baseline = []
        for _ in range(5):
            t0 = time.perf_counter()
            loaded = load_series(workdir / "study")
            candidates = find_candidates(loaded.volume)
            labelling = detect_coronary_calcium(loaded.volume, candidates)
            score_candidates(
                candidates, labelling.labels, roi="auto", extra_warnings=labelling.warnings
            )
            baseline.append(time.perf_counter() - t0)
        base_s = statistics.median(baseline)
        print(f"baseline (load + score in process, files on disk): p50 {base_s * 1000:.0f} ms")

        env, settings = bench.environment()
        logs = bench.start_workers(env, 1)
        orders = OrderStore(make_engine(settings.database_url))
        store = TaskStore(make_engine(settings.database_url))
        api = create_celery(settings)
        checks = {
            "accepted_codes": [(c.system, c.code) for c in settings.order_codes],
            "pacs_allowlist": settings.pacs_allowlist,
        }
        totals, posted_at, sent = {}, {}, {}
        for _ in range(args.runs + 1):  # first run warms the worker (imports, connections)
            sr = seed_order(bench.fhir.base_url, bench.orthanc.dicomweb_url, study_uid)
            t0 = time.time()
            task_id = orders.accept(parse_service_request(sr, **checks)).task.id
            send_process_order(api, task_id)
            sent[task_id] = time.time()
            wait_done(store, [task_id])
            totals[task_id] = time.time() - t0
            posted_at[task_id] = t0
        records = job_records(logs, list(totals))
        rows_ = []
        for task_id in list(totals)[1:]:
            rec = records.get(task_id)
            if rec is None:
                tails = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs)
                raise SystemExit(f"no cac-job log line for order {task_id}; worker log:\n{tails}")
            steps = rec["steps_s"]
            row = {
                "total": totals[task_id],
                "accept": sent[task_id] - posted_at[task_id],
                "queue": rec["started_at"] - sent[task_id],
                **{k: steps.get(k, 0.0) for k in JOB_STEPS},
            }
            row["other"] = row["total"] - sum(row[k] for k in ("accept", "queue", *JOB_STEPS))
            rows_.append(row)
        p50 = {k: statistics.median(r[k] for r in rows_) for k in rows_[0]}
        print(
            f"latency over {len(rows_)} runs, p50 (ms): "
            + ", ".join(f"{k} {v * 1000:.0f}" for k, v in p50.items())
        )
        overheads = [(r["total"] - r["fetch"] - r["load"] - r["score"]) / r["total"] for r in rows_]
        print(
            "overhead (all but fetch+load+score) p50: "
            f"{statistics.median(overheads) * 100:.1f} % of total"
        )
        without_ehr = [
            (r["total"] - r["fetch"] - r["load"] - r["score"] - r["post"]) / r["total"]
            for r in rows_
        ]
        print(
            "overhead without the EHR transaction round trip (post) p50: "
            f"{statistics.median(without_ehr) * 100:.1f} % of total"
        )
        plumbing = [
            (r["total"] - r["fetch"] - r["load"] - r["score"] - r["post"] - r["render"])
            / r["total"]
            for r in rows_
        ]
        print(
            "overhead without the EHR round trip and the report rendering p50: "
            f"{statistics.median(plumbing) * 100:.1f} % of total"
        )
        print(f"pipeline total / baseline: {p50['total'] / base_s:.2f}x")
        bench.stop_workers()

        for n_workers in (1, 2):
            env, settings = bench.environment()
            bench.start_workers(env, n_workers)
            orders = OrderStore(make_engine(settings.database_url))
            store = TaskStore(make_engine(settings.database_url))
            api = create_celery(settings)
            srs = [
                seed_order(bench.fhir.base_url, bench.orthanc.dicomweb_url, study_uid)
                for _ in range(args.throughput_orders)
            ]
            t0 = time.time()
            ids = []
            for sr in srs:
                task_id = orders.accept(parse_service_request(sr, **checks)).task.id
                send_process_order(api, task_id)
                ids.append(task_id)
            wait_done(store, ids)
            elapsed = time.time() - t0
            print(
                f"throughput, {n_workers} worker process(es): "
                f"{len(ids) / elapsed * 60:.1f} orders/min "
                f"({len(ids)} orders in {elapsed:.1f} s)"
            )
            bench.stop_workers()
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    finally:
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
