"""parse_service_request: one test per rule, with the location each refusal names."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_service.errors import BusinessRuleError, InvalidResourceError, NotSupportedError
from fhir_service.mapping.service_request import (
    InlineResource,
    RequestStatus,
    canonical_digest,
    endpoint_allowed,
    parse_service_request,
)
from fhir_service.settings import DEFAULT_ORDER_CODES
from tests.fhir_service.conftest import service_request

CODES = frozenset((c.system, c.code) for c in DEFAULT_ORDER_CODES)
ALLOW = ("https://pacs.example.org/dicom-web",)


def parse(order: Any, **kwargs: Any) -> Any:
    return parse_service_request(order, accepted_codes=CODES, pacs_allowlist=ALLOW, **kwargs)


class TestAccepted:
    def test_keys_and_study(self) -> None:
        result = parse(service_request())
        assert result.order_key == "identifier:urn:oid:1.2.840.99999.1|ORD-0001"
        assert result.version_key == "versionId:1"
        assert result.request_status is RequestStatus.ACTIVE
        assert result.patient_reference == "Patient/p1"
        assert result.focus_reference == "ServiceRequest/sr-1"
        assert result.study_instance_uid == "1.2.840.99999.2.1"

    @pytest.mark.parametrize(
        "coding",
        [
            {"system": "http://loinc.org", "code": "79087-3"},
            {"system": "http://www.ama-assn.org/go/cpt", "code": "75571"},
            {"system": "http://snomed.info/sct", "code": "426005005"},
        ],
    )
    def test_every_default_order_code(self, coding: dict[str, str]) -> None:
        parse(service_request(code={"coding": [{"system": "urn:local", "code": "x"}, coding]}))

    def test_local_code_when_configured(self) -> None:
        order = service_request(code={"coding": [{"system": "urn:local", "code": "CAC"}]})
        with pytest.raises(NotSupportedError):
            parse(order)
        parse_service_request(order, accepted_codes={("urn:local", "CAC")}, pacs_allowlist=())

    def test_id_is_the_key_without_identifier(self) -> None:
        order = service_request(identifier=[service_request()["identifier"][1]])
        assert parse(order).order_key == "id:sr-1"

    def test_digest_is_the_version_without_version_id(self) -> None:
        order = service_request()
        del order["meta"]
        first = parse(order).version_key
        assert first == f"sha256:{canonical_digest(order)}"
        assert (
            parse(service_request(priority="urgent", meta=None) | {"meta": {}}).version_key != first
        )

    def test_accession_number_is_enough(self) -> None:
        accession = {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
                ]
            },
            "value": "ACC-1",
        }
        order = service_request(identifier=[service_request()["identifier"][0], accession])
        result = parse(order)
        assert result.accession_number == "ACC-1"
        assert result.study_instance_uid is None

    def test_external_imaging_study_reference_is_enough(self) -> None:
        order = service_request(
            identifier=service_request()["identifier"][:1],
            supportingInfo=[{"reference": "ImagingStudy/is-1"}],
        )
        assert parse(order).imaging_study_reference == "ImagingStudy/is-1"

    def test_patient_by_identifier(self) -> None:
        order = service_request(subject={"identifier": {"system": "urn:mrn", "value": "42"}})
        assert parse(order).patient_reference == "identifier:urn:mrn|42"

    def test_inline_patient_from_context(self) -> None:
        context = {
            "urn:uuid:p": InlineResource(
                {"resourceType": "Patient", "id": "p5"}, "Bundle.entry[1].resource"
            )
        }
        order = service_request(subject={"reference": "urn:uuid:p"})
        result = parse(order, context=context)
        assert result.patient_reference == "Patient/p5"
        assert result.patient_json is not None


class TestRefused:
    def test_not_an_object(self) -> None:
        with pytest.raises(InvalidResourceError):
            parse([1, 2])

    def test_unknown_contained_type_is_a_400_not_a_crash(self) -> None:
        with pytest.raises(InvalidResourceError) as caught:
            parse(service_request(contained=[{"resourceType": "Foo"}]))
        assert caught.value.location == "ServiceRequest"

    def test_every_schema_error_is_reported(self) -> None:
        with pytest.raises(InvalidResourceError) as caught:
            parse(service_request(authoredOn="soon", priority=5))
        locations = {location for _, location in caught.value.issues}
        assert locations == {"ServiceRequest.authoredOn", "ServiceRequest.priority"}

    @pytest.mark.parametrize("status", ["draft", "on-hold", "completed", "unknown"])
    def test_status(self, status: str) -> None:
        with pytest.raises(BusinessRuleError) as caught:
            parse(service_request(status=status))
        assert caught.value.location == "ServiceRequest.status"

    def test_subject_type(self) -> None:
        with pytest.raises(BusinessRuleError) as caught:
            parse(service_request(subject={"reference": "Patient/1", "type": "Group"}))
        assert caught.value.location == "ServiceRequest.subject.type"

    def test_subject_pointing_at_an_inline_non_patient(self) -> None:
        context = {
            "urn:uuid:g": InlineResource({"resourceType": "Group"}, "Bundle.entry[1].resource")
        }
        with pytest.raises(BusinessRuleError):
            parse(service_request(subject={"reference": "urn:uuid:g"}), context=context)

    def test_location_prefix_inside_a_bundle(self) -> None:
        with pytest.raises(BusinessRuleError) as caught:
            parse(service_request(intent="plan"), location="Bundle.entry[0].resource")
        assert caught.value.location == "Bundle.entry[0].resource.intent"


class TestEndpointAllowList:
    @pytest.mark.parametrize(
        ("address", "allowed"),
        [
            ("https://pacs.example.org/dicom-web", True),
            ("https://pacs.example.org/dicom-web/", True),
            ("https://pacs.example.org:443/dicom-web/studies", True),
            ("https://PACS.example.org/dicom-web", True),
            ("https://pacs.example.org/dicom-webber", False),
            ("https://pacs.example.org/", False),
            ("http://pacs.example.org/dicom-web", False),
            ("https://pacs.example.org:8443/dicom-web", False),
            ("https://pacs.example.org.evil.net/dicom-web", False),
            ("https://evil.net/?u=https://pacs.example.org/dicom-web", False),
            ("https://a@pacs.example.org/dicom-web", False),
            ("https://pacs.example.org/dicom-web?x=1", False),
            ("https://pacs.example.org/dicom-web#f", False),
            ("https://pacs.example.org:99999/dicom-web", False),
            ("gopher://pacs.example.org/dicom-web", False),
            ("", False),
        ],
    )
    def test_endpoint_allowed(self, address: str, allowed: bool) -> None:
        assert endpoint_allowed(address, ALLOW) is allowed

    def test_empty_allow_list_allows_nothing(self) -> None:
        assert not endpoint_allowed("https://pacs.example.org/dicom-web", ())
