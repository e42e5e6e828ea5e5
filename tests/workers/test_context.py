"""The patient's context read from the real FHIR server: every risk factor, the history that makes
the test pointless, pregnancy, prior scores; unknown stays unknown."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import requests
from fhir.resources.R4B.patient import Patient

from interpretation.context import MesaRace, Sex
from tests.peers.servers import FHIRServer
from workers.context import age_years, read_patient_context
from workers.ehr import FHIRHTTPClient

pytestmark = pytest.mark.integration

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
SCAN = datetime.date(2026, 11, 20)


def post(fhir: FHIRServer, resource: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{fhir.base_url}/{resource['resourceType']}", json=resource, timeout=10
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def observation(subject: dict[str, str], code: str, when: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "subject": subject,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when,
        **value,
    }


def concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


class TestReadPatientContext:
    def test_everything_recorded_is_read(self, fhir_server: FHIRServer) -> None:
        patient = post(
            fhir_server,
            {
                "resourceType": "Patient",
                "gender": "female",
                "birthDate": "1960-11-21",
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                        "extension": [
                            {
                                "url": "ombCategory",
                                "valueCoding": {
                                    "system": "urn:oid:2.16.840.1.113883.6.238",
                                    "code": "2028-9",
                                },
                            },
                            {
                                "url": "detailed",
                                "valueCoding": {
                                    "system": "urn:oid:2.16.840.1.113883.6.238",
                                    "code": "2034-7",
                                },
                            },
                            {"url": "text", "valueString": "Chinese"},
                        ],
                    }
                ],
            },
        )
        subject = {"reference": f"Patient/{patient['id']}"}
        mmol = {"value": 5.0, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
        post(
            fhir_server,
            observation(subject, "2093-3", "2025-01-01", valueQuantity={**mmol, "value": 9.9}),
        )
        post(fhir_server, observation(subject, "2093-3", "2026-06-01", valueQuantity=mmol))
        post(
            fhir_server,
            observation(
                subject,
                "2085-9",
                "2026-06-01",
                valueQuantity={"value": 48, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
            ),
        )
        post(
            fhir_server,
            observation(
                subject,
                "8480-6",
                "2026-06-01",
                valueQuantity={"value": 142, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            ),
        )
        post(
            fhir_server,
            observation(
                subject,
                "72166-2",
                "2026-06-01",
                valueCodeableConcept=concept(SNOMED, "449868002", "Current every day smoker"),
            ),
        )
        post(
            fhir_server,
            observation(
                subject,
                "82810-3",
                "2026-11-01",
                valueCodeableConcept=concept(SNOMED, "60001007", "Not pregnant"),
            ),
        )
        post(
            fhir_server,
            {
                "resourceType": "Condition",
                "subject": subject,
                "code": concept(SNOMED, "44054006", "Diabetes mellitus type 2"),
            },
        )
        post(
            fhir_server,
            {
                "resourceType": "Procedure",
                "status": "completed",
                "subject": subject,
                "code": concept(SNOMED, "232717009", "Coronary artery bypass grafting"),
            },
        )
        post(
            fhir_server,
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "subject": subject,
                "medicationCodeableConcept": {"text": "atorvastatin 20 mg"},
            },
        )
        post(
            fhir_server,
            {
                "resourceType": "FamilyMemberHistory",
                "status": "completed",
                "patient": subject,
                "relationship": {"text": "father"},
                "condition": [{"code": concept(SNOMED, "22298006", "Myocardial infarction")}],
            },
        )
        post(
            fhir_server,
            {
                "resourceType": "Observation",
                "status": "preliminary",
                "subject": subject,
                "code": concept(SNOMED, "450360000", "Coronary artery calcium score"),
                "method": concept(
                    "http://dicom.nema.org/resources/ontology/DCM", "112055", "Agatston"
                ),
                "effectiveDateTime": "2021-05-04T10:00:00Z",
                "valueQuantity": {
                    "value": 40.0,
                    "unit": "{Agatston}",
                    "system": UCUM,
                    "code": "{Agatston}",
                },
            },
        )
        ehr = FHIRHTTPClient(fhir_server.base_url)
        service_request = {"reasonCode": [{"text": "Atypical chest pain on exertion"}]}
        context, sources = read_patient_context(
            ehr, ehr.read(Patient, patient["id"]), service_request, SCAN
        )
        assert context.sex is Sex.FEMALE
        assert context.race is MesaRace.CHINESE
        assert context.age_years == pytest.approx(age_years(datetime.date(1960, 11, 21), SCAN))
        assert context.total_cholesterol_mg_dl == pytest.approx(5.0 * 38.67)  # latest, converted
        assert context.hdl_mg_dl == 48
        assert context.systolic_bp_mmhg == 142
        assert context.current_smoker is True
        assert context.pregnant is False
        assert context.diabetes is True
        assert context.prior_cabg is True
        assert context.prior_pci is None
        assert context.prior_mi is None
        assert context.on_lipid_medication is True
        assert context.on_bp_medication is None
        assert context.family_history is True
        assert context.symptoms == ("chest pain",)
        assert [(p.date, p.agatston) for p in context.prior_scores] == [
            (datetime.date(2021, 5, 4), 40.0)
        ]
        assert f"Patient/{patient['id']}" in sources.references

    def test_nothing_recorded_means_unknown(self, fhir_server: FHIRServer) -> None:
        patient = post(fhir_server, {"resourceType": "Patient"})
        ehr = FHIRHTTPClient(fhir_server.base_url)
        context, _ = read_patient_context(ehr, ehr.read(Patient, patient["id"]), {}, SCAN)
        assert context.age_years is None
        assert context.sex is None
        assert context.race is None
        assert context.race_detail is None
        assert context.total_cholesterol_mg_dl is None
        assert context.current_smoker is None
        assert context.diabetes is None
        assert context.known_cad is None
        assert context.pregnant is None
        assert context.symptoms == ()
        assert context.prior_scores == ()
