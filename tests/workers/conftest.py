"""Fixtures of the pipeline tests: a service database, worker processes, seeded EHR data and CT
studies uploaded to the real Orthanc."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests

from dicom_io.writer import write_series
from fhir_service.mapping.service_request import parse_service_request
from fhir_service.queue import create_celery as create_api_celery
from fhir_service.queue import send_process_order
from fhir_service.settings import Settings
from fhir_service.storage import OrderStore, TaskStore, make_engine, migrate
from phantom.chest import ChestPhantomConfig, chest_phantom
from tests.peers.servers import FHIRServer, OrthancServer, RedisServer, free_port
from workers.embedded import CAC_COMMAND

_redis_db = itertools.count(1)


@dataclass
class Study:
    """A CT study written to disk and uploaded to Orthanc."""

    folder: Path
    study_instance_uid: str
    series_instance_uid: str
    accession_number: str
    n_instances: int


@dataclass
class Pipeline:
    """A service database + broker + EHR + PACS wired together for one test."""

    env: dict[str, str]
    settings: Settings
    fhir: FHIRServer
    orthanc: OrthancServer
    redis: RedisServer
    workdir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    service_url: str | None = None

    # -- service side ---------------------------------------------------------------------------
    @property
    def engine(self) -> Any:
        return make_engine(self.settings.database_url)

    def tasks(self) -> TaskStore:
        return TaskStore(self.engine)

    def start_service(self, *, embedded_worker: bool = False) -> str:
        """Run ``cac serve`` (gunicorn + outbox dispatcher, and the embedded worker if asked);
        orders are then posted to it over HTTP. Returns its base URL."""
        port = free_port()
        log_path = self.workdir / "service.log"
        env = dict(self.env, CAC_EMBEDDED_WORKER="1" if embedded_worker else "0")
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*CAC_COMMAND, "serve", "--port", str(port), "--workers", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(process)
        self.logs.append(log_path)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"cac serve exited {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                if requests.get(f"{url}/healthz", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"cac serve not ready after 30 s:\n{log_path.read_text()[-3000:]}")
        if embedded_worker:
            while " ready." not in log_path.read_text(errors="replace"):
                if time.monotonic() > deadline + 30:
                    raise AssertionError(
                        f"embedded worker not ready:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.1)
        self.service_url = url
        return url

    def post_order(self, service_request: dict[str, Any]) -> str:
        """Post the order to the service when one runs (HTTP, as an EHR would), else accept it
        as the service does (check, persist, enqueue by name); returns the Task id."""
        if self.service_url:
            response = requests.post(
                f"{self.service_url}/fhir/ServiceRequest",
                json=service_request,
                headers={"Content-Type": "application/fhir+json"},
                timeout=30,
            )
            assert response.status_code == 201, response.text
            task = response.json()
            assert task["resourceType"] == "Task"
            return str(task["id"])
        intake = parse_service_request(
            service_request,
            accepted_codes=[(c.system, c.code) for c in self.settings.order_codes],
            pacs_allowlist=self.settings.pacs_allowlist,
        )
        result = OrderStore(self.engine).accept(intake)
        send_process_order(create_api_celery(self.settings), result.task.id)
        return result.task.id

    def wait_task(
        self,
        task_id: str,
        timeout_s: float = 90.0,
        statuses: tuple[str, ...] = ("completed", "failed", "rejected"),
    ) -> Any:
        store = self.tasks()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = store.get(task_id)
            if record.status.value in statuses:
                return record
            time.sleep(0.2)
        raise AssertionError(
            f"Task {task_id} still {store.get(task_id).status.value} "
            f"({store.get(task_id).business_status}) after {timeout_s} s; "
            f"worker log:\n{self.worker_log()}"
        )

    # -- workers --------------------------------------------------------------------------------
    def start_worker(
        self, concurrency: int = 1, name: str | None = None
    ) -> subprocess.Popen[bytes]:
        index = len(self.workers)
        log_path = self.workdir / f"worker{index}.log"
        log = log_path.open("wb")
        command = [
            *CAC_COMMAND,
            "worker",
            f"--concurrency={concurrency}",
            f"--hostname={name or f'w{index}-{uuid.uuid4().hex[:6]}'}@%h",
        ]
        process = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.workers.append(process)
        self.logs.append(log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {process.returncode}:\n{log_path.read_text()}"
                )
            if " ready." in log_path.read_text(errors="replace"):
                return process
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after 30 s:\n{log_path.read_text()[-3000:]}")

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool children (its process group)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)

    def worker_log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.logs)

    # -- EHR ------------------------------------------------------------------------------------
    def ehr_post(self, resource: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            f"{self.fhir.base_url}/{resource['resourceType']}",
            json=resource,
            headers={"Content-Type": "application/fhir+json"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def ehr_search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.fhir.base_url}/{resource_type}", params={"_count": "500", **params}, timeout=10
        )
        assert response.status_code == 200, response.text
        return [e["resource"] for e in response.json().get("entry", [])]

    def ehr_read(self, reference: str) -> dict[str, Any]:
        response = requests.get(f"{self.fhir.base_url}/{reference}", timeout=10)
        assert response.status_code == 200, f"{reference}: {response.status_code} {response.text}"
        return dict(response.json())

    # -- studies and orders ---------------------------------------------------------------------
    def upload_study(
        self,
        seed: int = 0,
        *,
        modality: str = "CT",
        accession: str | None = None,
        matrix_size: int = 256,
        truncate_pixels: bool = False,
    ) -> Study:
        """Render a chest phantom, write it as DICOM and upload it to Orthanc.

        ``truncate_pixels`` cuts the Pixel Data of one instance in half (a broken file)."""
        folder = self.workdir / f"study-{seed}-{uuid.uuid4().hex[:6]}"
        accession = accession or f"ACC{uuid.uuid4().hex[:10]}"
        study_uid = f"2.25.{uuid.uuid4().int}"
        series_uid = f"2.25.{uuid.uuid4().int}"
        phantom = chest_phantom(
            ChestPhantomConfig.random(
                seed, matrix_size=matrix_size, pixel_spacing_mm=min(1.0, 204.8 / matrix_size)
            )
        )
        paths = write_series(
            phantom.volume,
            folder,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            accession_number=accession,
            modality=modality,
            patient_id=f"P{seed}",
        )
        if truncate_pixels:
            broken = pydicom.dcmread(paths[len(paths) // 2])
            broken.PixelData = broken.PixelData[: len(broken.PixelData) // 2]
            broken.save_as(paths[len(paths) // 2])
        self.orthanc.upload_files(paths)
        return Study(folder, study_uid, series_uid, accession, len(paths))

    def seed_order(
        self,
        study: Study,
        *,
        study_uid: str | None = None,
        extra_obs: bool = True,
        pacs_url: str | None = None,
        pregnant: bool = False,
    ) -> dict[str, Any]:
        """Patient, risk factors, Endpoint, ImagingStudy and ServiceRequest in the EHR; returns
        the ServiceRequest as stored."""
        patient = self.ehr_post(
            {
                "resourceType": "Patient",
                "gender": "male",
                "birthDate": "1965-03-01",
                "identifier": [{"system": "urn:test:mrn", "value": uuid.uuid4().hex[:8]}],
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                        "extension": [
                            {
                                "url": "ombCategory",
                                "valueCoding": {
                                    "system": "urn:oid:2.16.840.1.113883.6.238",
                                    "code": "2106-3",
                                    "display": "White",
                                },
                            },
                            {"url": "text", "valueString": "White"},
                        ],
                    }
                ],
            }
        )
        subject = {"reference": f"Patient/{patient['id']}"}
        if extra_obs:
            for code, value, unit in (("2093-3", 210, "mg/dL"), ("2085-9", 45, "mg/dL")):
                self.ehr_post(
                    {
                        "resourceType": "Observation",
                        "status": "final",
                        "subject": subject,
                        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                        "effectiveDateTime": "2026-10-01",
                        "valueQuantity": {
                            "value": value,
                            "unit": unit,
                            "system": "http://unitsofmeasure.org",
                            "code": unit,
                        },
                    }
                )
            self.ehr_post(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": subject,
                    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                    "effectiveDateTime": "2026-10-01",
                    "component": [
                        {
                            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                            "valueQuantity": {
                                "value": 135,
                                "unit": "mm[Hg]",
                                "system": "http://unitsofmeasure.org",
                                "code": "mm[Hg]",
                            },
                        }
                    ],
                }
            )
            self.ehr_post(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": subject,
                    "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
                    "effectiveDateTime": "2026-10-01",
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://snomed.info/sct",
                                "code": "8517006",
                                "display": "Ex-smoker",
                            }
                        ]
                    },
                }
            )
        if pregnant:
            self.ehr_post(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": subject,
                    "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
                    "effectiveDateTime": "2026-11-01",
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://snomed.info/sct",
                                "code": "77386006",
                                "display": "Pregnant",
                            }
                        ]
                    },
                }
            )
        endpoint = self.ehr_post(
            {
                "resourceType": "Endpoint",
                "status": "active",
                "connectionType": {
                    "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                    "code": "dicom-wado-rs",
                },
                "payloadType": [{"text": "DICOM"}],
                "address": pacs_url or self.orthanc.dicomweb_url,
            }
        )
        imaging_study = self.ehr_post(
            {
                "resourceType": "ImagingStudy",
                "status": "available",
                "subject": subject,
                "started": "2026-11-20T09:30:00Z",
                "identifier": [
                    {
                        "system": "urn:dicom:uid",
                        "value": f"urn:oid:{study_uid or study.study_instance_uid}",
                    },
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "ACSN",
                                }
                            ]
                        },
                        "value": study.accession_number,
                    },
                ],
                "endpoint": [{"reference": f"Endpoint/{endpoint['id']}"}],
            }
        )
        return self.ehr_post(
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "subject": subject,
                "identifier": [{"system": "urn:test:placer", "value": uuid.uuid4().hex}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "79087-3"}]},
                "supportingInfo": [{"reference": f"ImagingStudy/{imaging_study['id']}"}],
            }
        )


@pytest.fixture
def pipeline_factory(
    tmp_path: Path, orthanc: OrthancServer, fhir_server: FHIRServer, redis_server: RedisServer
) -> Iterator[Callable[..., Pipeline]]:
    """Build a :class:`Pipeline` (own database and Redis db number); workers stopped at the end."""
    made: list[Pipeline] = []

    def make(**overrides: str) -> Pipeline:
        fhir_server.clear_faults()
        data_dir = tmp_path / f"svc{len(made)}"
        data_dir.mkdir()
        broker = f"redis://127.0.0.1:{redis_server.port}/{next(_redis_db) % 16}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CAC_")},
            "CAC_DATA_DIR": str(data_dir),
            "CAC_DATABASE_URL": f"sqlite:///{data_dir / 'service.sqlite'}",
            "CAC_BROKER_URL": broker,
            "CAC_AUTH_DISABLED": "1",
            "CAC_EHR_BASE_URL": fhir_server.base_url,
            "CAC_PACS_ALLOWLIST": orthanc.dicomweb_url,
            "CAC_PACS_USER": orthanc.auth[0],
            "CAC_PACS_PASSWORD": orthanc.auth[1],
            "CAC_MAX_RETRIES": "3",
            "CAC_RETRY_BACKOFF_S": "0.5",
            "CAC_RETRY_BACKOFF_MAX_S": "2",
            "CAC_TASK_SOFT_TIME_LIMIT_S": "120",
            "CAC_TASK_TIME_LIMIT_S": "150",
            "CAC_VISIBILITY_TIMEOUT_S": "160",
            "CAC_EHR_TIMEOUT_S": "5",
            "CAC_PACS_TIMEOUT_S": "5",
            **overrides,
        }
        settings = Settings.from_env(env)
        migrate(make_engine(settings.database_url))
        pipeline = Pipeline(env, settings, fhir_server, orthanc, redis_server, data_dir)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.stop_workers()
    fhir_server.clear_faults()
