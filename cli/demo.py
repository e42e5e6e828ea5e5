"""``cac demo``: one calcium-score order end to end on this machine.

Starts a local PACS (Orthanc + DICOMweb) and a local FHIR server (the Node test peer in
``tests/peers``), uploads a synthetic chest CT (the phantom), seeds the EHR with a patient, risk
factors, an ImagingStudy, its DICOMweb Endpoint and a ServiceRequest, starts ``cac serve`` (web
service + outbox dispatcher + embedded worker, SQLite broker: no Redis needed), posts the order,
waits for the Task, and prints the DiagnosticReport's conclusion and where to see it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from cli.main import CLIError

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "tests" / "peers"
HOW_TO_INSTALL = (
    "cac demo needs a local PACS and FHIR server: apt-get install -y orthanc orthanc-dicomweb "
    f"&& (cd {PEERS} && npm ci)"
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a demo order end to end against local PACS and FHIR servers",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--json", action="store_true", help="print the posted DiagnosticReport")
    parser.add_argument("--seed", type=int, default=7, help="phantom seed (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the servers running until Ctrl-C")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait (180)")
    parser.set_defaults(handler=run)


def _peers() -> ModuleType:
    path = PEERS / "servers.py"
    if not path.is_file() or not (PEERS / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise CLIError(HOW_TO_INSTALL)
    if shutil.which("Orthanc") is None or shutil.which("node") is None:
        raise CLIError(HOW_TO_INSTALL)
    spec = importlib.util.spec_from_file_location("cac_demo_peers", path)
    if spec is None or spec.loader is None:
        raise CLIError(HOW_TO_INSTALL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _post(requests: Any, base: str, resource: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{base}/{resource['resourceType']}",
        json=resource,
        headers={"Content-Type": "application/fhir+json"},
        timeout=10,
    )
    if response.status_code != 201:
        raise CLIError(
            f"the demo FHIR server refused a {resource['resourceType']}: {response.text[:300]}"
        )
    return dict(response.json())


def _seed(requests: Any, fhir: str, pacs: str, study_uid: str, accession: str) -> dict[str, Any]:
    loinc = "http://loinc.org"
    ucum = "http://unitsofmeasure.org"
    patient = _post(requests, fhir, {
        "resourceType": "Patient",
        "name": [{"family": "Demo", "given": ["Dana"]}],
        "gender": "female",
        "birthDate": "1963-04-12",
        "extension": [{
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [
                {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238",
                                                       "code": "2106-3", "display": "White"}},
                {"url": "text", "valueString": "White"},
            ],
        }],
    })  # fmt: skip
    subject = {"reference": f"Patient/{patient['id']}"}
    for code, value, unit in (("2093-3", 215, "mg/dL"), ("2085-9", 52, "mg/dL")):
        _post(requests, fhir, {
            "resourceType": "Observation", "status": "final", "subject": subject,
            "code": {"coding": [{"system": loinc, "code": code}]},
            "effectiveDateTime": "2026-10-02",
            "valueQuantity": {"value": value, "unit": unit, "system": ucum, "code": unit},
        })  # fmt: skip
    _post(requests, fhir, {
        "resourceType": "Observation", "status": "final", "subject": subject,
        "code": {"coding": [{"system": loinc, "code": "85354-9"}]},
        "effectiveDateTime": "2026-10-02",
        "component": [{"code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                       "valueQuantity": {"value": 128, "unit": "mm[Hg]", "system": ucum,
                                         "code": "mm[Hg]"}}],
    })  # fmt: skip
    endpoint = _post(requests, fhir, {
        "resourceType": "Endpoint", "status": "active",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "dicom-wado-rs"},
        "payloadType": [{"text": "DICOM"}], "address": pacs,
    })  # fmt: skip
    study = _post(requests, fhir, {
        "resourceType": "ImagingStudy", "status": "available", "subject": subject,
        "started": "2026-11-20T09:30:00Z",
        "identifier": [
            {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                  "code": "ACSN"}]}, "value": accession},
        ],
        "endpoint": [{"reference": f"Endpoint/{endpoint['id']}"}],
    })  # fmt: skip
    return _post(requests, fhir, {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": subject,
        "identifier": [{"system": "urn:cac-demo:placer", "value": uuid.uuid4().hex}],
        "code": {"coding": [{"system": loinc, "code": "79087-3"}]},
        "supportingInfo": [{"reference": f"ImagingStudy/{study['id']}"}],
    })  # fmt: skip


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run(args: argparse.Namespace) -> int:
    import requests

    from dicom_io.writer import write_series
    from phantom.chest import ChestPhantomConfig, chest_phantom
    from workers.embedded import CAC_COMMAND

    peers = _peers()
    workdir = Path(tempfile.mkdtemp(prefix="cac-demo-"))
    servers: list[Any] = []
    service: subprocess.Popen[bytes] | None = None
    service_log = workdir / "service.log"
    try:

        def say(message: str) -> None:
            if not args.json:
                print(message, file=sys.stderr)

        try:
            orthanc = peers.OrthancServer(workdir / "pacs").start()
            servers.append(orthanc)
            fhir = peers.FHIRServer(workdir / "ehr").start()
            servers.append(fhir)
        except peers.PeerStartError as exc:
            raise CLIError(f"{exc}".splitlines()[0] + f" ({HOW_TO_INSTALL})") from None
        say(f"PACS (Orthanc) at {orthanc.dicomweb_url}; EHR (FHIR R4) at {fhir.base_url}")

        phantom = chest_phantom(ChestPhantomConfig.random(args.seed))
        study_uid = f"2.25.{uuid.uuid4().int}"
        accession = f"DEMO{args.seed:04d}"
        paths = write_series(
            phantom.volume, workdir / "study", study_instance_uid=study_uid,
            accession_number=accession, patient_id="DEMO", patient_name="Demo^Dana",
        )  # fmt: skip
        orthanc.upload_files(paths)
        say(f"uploaded a phantom CT study: {len(paths)} slices, study {study_uid}")
        service_request = _seed(requests, fhir.base_url, orthanc.dicomweb_url, study_uid, accession)

        port = peers.free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CAC_")},
            "CAC_DATA_DIR": str(workdir / "service"),
            "CAC_AUTH_DISABLED": "1",
            "CAC_EHR_BASE_URL": fhir.base_url,
            "CAC_PACS_ALLOWLIST": orthanc.dicomweb_url,
            "CAC_PACS_USER": orthanc.auth[0],
            "CAC_PACS_PASSWORD": orthanc.auth[1],
        }
        with service_log.open("wb") as log:
            service = subprocess.Popen(
                [*CAC_COMMAND, "serve", "--port", str(port), "--workers", "1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + args.timeout
        while True:
            if service.poll() is not None:
                raise CLIError(f"cac serve exited ({service.returncode}): {_tail(service_log, 5)}")
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise CLIError(f"cac serve did not start: {_tail(service_log, 5)}")
            time.sleep(0.2)
        say(f"service (cac serve, embedded worker) at {url}/fhir")

        response = requests.post(
            f"{url}/fhir/ServiceRequest", json=service_request,
            headers={"Content-Type": "application/fhir+json"}, timeout=30,
        )  # fmt: skip
        if response.status_code != 201:
            raise CLIError(f"the service refused the order: {response.text[:300]}")
        task_id = response.json()["id"]
        say(f"order posted: Task {task_id}")
        last = ""
        while True:
            task = requests.get(f"{url}/fhir/Task/{task_id}", timeout=10).json()
            step = f"{task['status']} {task.get('businessStatus', {}).get('text', '')}".strip()
            if step != last:
                say(f"  Task: {step}")
                last = step
            if task["status"] in ("completed", "failed", "rejected", "cancelled"):
                break
            if time.monotonic() > deadline:
                raise CLIError(f"the order did not finish in {args.timeout:.0f} s (Task {step})")
            time.sleep(0.3)
        if task["status"] != "completed":
            reason = task.get("statusReason", {}).get("text", "no reason given")
            raise CLIError(f"the order ended {task['status']}: {reason}")
        report_ref = task["output"][0]["valueReference"]["reference"]
        report = requests.get(f"{fhir.base_url}/{report_ref}", timeout=10).json()
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(report["conclusion"])
            print(f"DiagnosticReport: {fhir.base_url}/{report_ref}")
            print(f"Task: {url}/fhir/Task/{task_id}")
            if not args.keep:
                print("(the demo servers stop now; run `cac demo --keep` to browse these links)")
        if args.keep:
            say("servers keep running; press Ctrl-C to stop them")
            while True:
                time.sleep(3600)
        return 0
    finally:
        if service is not None and service.poll() is None:
            os.killpg(service.pid, signal.SIGTERM)
            try:
                service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
