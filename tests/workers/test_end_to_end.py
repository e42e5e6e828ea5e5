"""End to end against real peers: order in the service, a worker process runs it against Orthanc
and the FHIR server, and the results are checked in the EHR by search, as an EHR user would."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
import requests

from workers.embedded import CAC_COMMAND

pytestmark = pytest.mark.integration

SNOMED = "http://snomed.info/sct"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"


def cac_score_json(folder: str) -> dict[str, object]:
    """What ``cac score --json`` says about the same files (the reference values)."""
    done = subprocess.run(
        [*CAC_COMMAND, "score", folder, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


class TestProcessOrder:
    def test_report_in_the_ehr_matches_cac_score(self, pipeline_factory) -> None:
        pipeline = pipeline_factory()
        study = pipeline.upload_study(seed=3)
        service_request = pipeline.seed_order(study)
        pipeline.start_service()
        pipeline.start_worker()
        task_id = pipeline.post_order(service_request)
        task = requests.get(f"{pipeline.service_url}/fhir/Task/{task_id}", timeout=10).json()
        assert task["focus"]["reference"] == f"ServiceRequest/{service_request['id']}"

        record = pipeline.wait_task(task_id)
        assert record.status.value == "completed", (record.status_reason, pipeline.worker_log())
        (report_ref,) = record.output_references
        assert report_ref.startswith("DiagnosticReport/")

        reports = pipeline.ehr_search(
            "DiagnosticReport", **{"based-on": f"ServiceRequest/{service_request['id']}"}
        )
        assert len(reports) == 1
        report = reports[0]
        assert f"DiagnosticReport/{report['id']}" == report_ref
        assert report["code"]["coding"][0]["code"] == "79087-3"
        assert report["category"][0]["coding"][0]["code"] == "LP29684-5"
        assert report["status"] == "preliminary"
        assert report["subject"] == service_request["subject"]
        assert report["meta"]["security"][0]["code"] == "AIAST"
        titles = [f["title"] for f in report["presentedForm"]]
        assert len(set(titles)) == 4
        types = [f["contentType"] for f in report["presentedForm"]]
        assert types == ["text/html", "text/plain", "application/pdf", "text/html"]
        patient_page = base64.b64decode(report["presentedForm"][3]["data"]).decode()
        assert "patient page" in titles[3]
        assert "<svg" in patient_page
        # the service serves the same page (authenticated route; auth is off in this test)
        served = requests.get(f"{pipeline.service_url}/pages/reports/{task_id}/patient", timeout=10)
        assert served.status_code == 200
        assert served.text == patient_page
        assert base64.b64decode(report["presentedForm"][2]["data"]).startswith(b"%PDF")
        summary = base64.b64decode(report["presentedForm"][1]["data"]).decode()
        assert "patient" in titles[1].lower()
        assert len(summary) > 40
        # every reference resolves
        observations = {}
        for ref in report["result"]:
            obs = pipeline.ehr_read(ref["reference"])
            observations[ref["reference"]] = obs
            assert obs["basedOn"] == [{"reference": f"ServiceRequest/{service_request['id']}"}]
            pipeline.ehr_read(obs["device"]["reference"])
            pipeline.ehr_read(obs["derivedFrom"][0]["reference"])
        pipeline.ehr_read(report["imagingStudy"][0]["reference"])

        reference = cac_score_json(str(study.folder))
        by_method = {}
        for obs in observations.values():
            codes = {(c["system"], c["code"]) for c in obs["code"].get("coding", [])}
            if (SNOMED, "450360000") in codes and "bodySite" not in obs:
                method = obs["method"]["coding"][0]["code"]
                by_method[method] = obs["valueQuantity"]
        assert by_method["112055"]["code"] == "{Agatston}"
        assert by_method["112055"]["system"] == UCUM
        assert by_method["112056"]["code"] == "mm3"
        assert by_method["112057"]["code"] == "mg"
        assert reference["agatston"]["total"] > 0
        assert by_method["112055"]["value"] == pytest.approx(
            reference["agatston"]["total"], abs=1e-3
        )
        assert by_method["112056"]["value"] == pytest.approx(
            reference["volume_mm3"]["total"], abs=1e-3
        )
        assert by_method["112057"]["value"] == pytest.approx(
            reference["mass_mg"]["total"], abs=1e-3
        )
        (agatston_obs,) = [
            o
            for o in observations.values()
            if o.get("method", {}).get("coding", [{}])[0].get("code") == "112055"
        ]
        parts = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in agatston_obs["component"]
        }
        artery_codes = {"LM": "3227004", "LAD": "59438005", "LCX": "57396003", "RCA": "13647002"}
        for artery, code in artery_codes.items():
            assert parts[code] == pytest.approx(
                reference["agatston"]["by_artery"][artery], abs=1e-3
            )

        provenances = pipeline.ehr_search("Provenance", target=report_ref)
        assert len(provenances) == 1
        assert provenances[0]["agent"][0]["who"]["reference"].startswith("Device/")


class TestOneMachine:
    def test_cac_serve_alone_runs_orders_with_the_embedded_broker(self, pipeline_factory) -> None:
        pipeline = pipeline_factory(CAC_BROKER_URL="")
        assert pipeline.settings.broker_url.startswith("sqla+sqlite:///")
        study = pipeline.upload_study(seed=4)
        service_request = pipeline.seed_order(study)
        pipeline.start_service(embedded_worker=True)
        task_id = pipeline.post_order(service_request)
        record = pipeline.wait_task(task_id, timeout_s=90)
        assert record.status.value == "completed", (record.status_reason, pipeline.worker_log())
        task = requests.get(f"{pipeline.service_url}/fhir/Task/{task_id}", timeout=10).json()
        assert task["status"] == "completed"
        assert task["output"][0]["valueReference"]["reference"].startswith("DiagnosticReport/")
