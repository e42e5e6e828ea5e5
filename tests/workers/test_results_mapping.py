"""The results mapping (fhir_service/mapping: observation, diagnostic_report, device, provenance,
results_bundle): pure checks, and the transaction Bundle posted twice to the real FHIR server."""

from __future__ import annotations

import datetime
import uuid

import pytest
import requests
from fhir.resources.R4B.bundle import Bundle

from fhir_service.mapping.device import build_device
from fhir_service.mapping.diagnostic_report import (
    PresentedForm,
    ReportCategoryCode,
    build_diagnostic_report,
)
from fhir_service.mapping.observation import (
    InterpretationFigures,
    ResultContext,
    build_interpretation_observations,
    build_score_observations,
    result_identifier,
)
from fhir_service.mapping.provenance import build_provenance
from fhir_service.mapping.results_bundle import (
    BundleEntryPlan,
    build_transaction,
    identifier_query,
    new_full_url,
    parse_location,
    parse_status,
    parse_transaction_response,
    resolve_references,
)
from scoring.parameters import Artery
from scoring.result import ScoreResult

WHEN = datetime.datetime(2026, 11, 20, 9, 30, tzinfo=datetime.UTC)


def score(**overrides: object) -> ScoreResult:
    values: dict[str, object] = {
        "agatston": 212.5,
        "volume_mm3": 180.0,
        "mass_mg": 40.2,
        "agatston_by_artery": {
            Artery.LM: 0.0,
            Artery.LAD: 150.0,
            Artery.LCX: 12.5,
            Artery.RCA: 50.0,
        },
        "roi": "auto",
        "mass_calibrated": False,
        "mass_factor_mg_per_mm3_hu": 0.00084,
        "mass_factor_source": "uncalibrated default",
    }
    values.update(overrides)
    return ScoreResult(**values)  # type: ignore[arg-type]


def context(
    subject: str = "Patient/p1", service_request: str = "ServiceRequest/s1"
) -> ResultContext:
    return ResultContext(
        service_request=service_request,
        subject=subject,
        imaging_study=None,
        study_instance_uid="1.2.3",
        series_instance_uid="1.2.3.4",
        effective=WHEN,
        issued=WHEN,
        identifier=result_identifier(
            service_request.split("/")[1], f"1.2.3.{uuid.uuid4().int}", "0.1.0"
        ),
        device="urn:uuid:" + str(uuid.uuid4()),
    )


class TestParseStatus:
    @pytest.mark.parametrize(
        ("text", "code"), [("201", 201), ("201 Created", 201), ("200 OK", 200)]
    )
    def test_forms(self, text: str, code: int) -> None:
        assert parse_status(text) == code

    def test_garbage(self) -> None:
        with pytest.raises(ValueError, match="not an HTTP status"):
            parse_status("Created")


class TestParseLocation:
    @pytest.mark.parametrize(
        "location",
        [
            "Observation/123",
            "Observation/123/_history/1",
            "https://ehr.example.org/fhir/R4/Observation/123",
            "https://ehr.example.org/fhir/R4/Observation/123/_history/abc",
        ],
    )
    def test_relative_and_absolute(self, location: str) -> None:
        assert parse_location(location) == ("Observation", "123")

    def test_no_type(self) -> None:
        with pytest.raises(ValueError, match="Type/id"):
            parse_location("123")


class TestObservations:
    def test_codes_units_and_artery_components(self) -> None:
        observations = build_score_observations(score(), context())
        agatston = observations["agatston"]
        assert {(c.system, c.code) for c in agatston.code.coding} >= {
            ("http://snomed.info/sct", "450360000")
        }
        assert agatston.method.coding[0].code == "112055"
        assert agatston.valueQuantity.code == "{Agatston}"
        parts = {c.code.coding[0].code: c.valueQuantity.value for c in agatston.component}
        assert parts == {"3227004": 0.0, "59438005": 150.0, "57396003": 12.5, "13647002": 50.0}
        assert sum(parts.values()) == pytest.approx(agatston.valueQuantity.value)
        assert observations["volume"].valueQuantity.code == "mm3"
        assert observations["mass"].valueQuantity.code == "mg"
        assert observations["mass"].note[0].text.startswith("UNCALIBRATED")
        assert agatston.meta.security[0].code == "AIAST"

    def test_whole_volume_has_no_artery_parts(self) -> None:
        observations = build_score_observations(score(roi="whole"), context())
        assert observations["agatston"].component is None

    def test_calibrated_mass_is_not_flagged(self) -> None:
        mass = build_score_observations(score(mass_calibrated=True), context())["mass"]
        assert not mass.note[0].text.startswith("UNCALIBRATED")

    def test_interpretation_components_only_for_known_figures(self) -> None:
        assert build_interpretation_observations(InterpretationFigures(), context()) == {}
        figures = InterpretationFigures(
            cac_drs_category=2, cac_drs_label="CAC-DRS A2/N3", cac_drs_vessels=3, mesa_percentile=81
        )
        (obs,) = build_interpretation_observations(figures, context()).values()
        codes = [c.code.coding[0].code for c in obs.component]
        assert codes == ["cac-drs", "cac-drs-vessels", "mesa-percentile"]


def report_plan(ctx: ResultContext) -> list[BundleEntryPlan]:
    observations = build_score_observations(score(), ctx)
    urls = {k: new_full_url() for k in observations}
    report = build_diagnostic_report(
        ctx,
        results=list(urls.values()),
        category=ReportCategoryCode.CARDIOLOGY,
        conclusion="Agatston 213.",
        risk_category_code="moderately_increased",
        risk_category_display="moderately increased",
        calcium_found=True,
        presented_forms=[
            PresentedForm("text/html", b"<p>report</p>", "Clinician report"),
            PresentedForm("text/plain", b"Your result", "Patient summary"),
        ],
    )
    report_url = new_full_url()
    device = build_device("cac-fhir", "0.1.0")
    plan = [BundleEntryPlan("device", ctx.device, device, identifier_query(device))]
    plan += [BundleEntryPlan(k, urls[k], o, identifier_query(o)) for k, o in observations.items()]
    plan.append(BundleEntryPlan("report", report_url, report, identifier_query(report)))
    provenance = build_provenance(
        [report_url, *urls.values()], ctx.device, WHEN, organization="Organization/o1"
    )
    plan.append(BundleEntryPlan("provenance", new_full_url(), provenance, None))
    return plan


class TestTransactionBundle:
    def test_every_reference_between_entries_is_a_full_url_of_the_bundle(self) -> None:
        bundle = build_transaction(report_plan(context())).model_dump(
            mode="json", exclude_none=True
        )
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        assert all(u.startswith("urn:uuid:") for u in full_urls)
        internal = []

        def walk(node: object) -> None:
            if isinstance(node, dict):
                ref = node.get("reference")
                if isinstance(ref, str) and ref.startswith("urn:uuid:"):
                    internal.append(ref)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(bundle)
        assert internal
        assert set(internal) <= full_urls
        conditional = [e["request"].get("ifNoneExist") for e in bundle["entry"]]
        assert all(c and c.startswith("identifier=") for c in conditional[:-1])

    def test_report_attachments_have_their_own_titles(self) -> None:
        report = report_plan(context())[-2].resource
        titles = [a.title for a in report.presentedForm]
        assert titles == ["Clinician report", "Patient summary"]
        assert report.presentedForm[1].data == b"Your result"  # decoded by the model
        assert report.category[0].coding[0].code == "LP29708-2"

    def test_resolve_references(self) -> None:
        payload = {"a": {"reference": "urn:uuid:1"}, "b": [{"reference": "urn:uuid:2"}]}
        out = resolve_references(payload, {"urn:uuid:1": "Device/9"})
        assert out == {"a": {"reference": "Device/9"}, "b": [{"reference": "urn:uuid:2"}]}


@pytest.mark.integration
class TestPostedTwice:
    def test_second_post_creates_nothing_new(self, fhir_server) -> None:
        patient = requests.post(
            f"{fhir_server.base_url}/Patient", json={"resourceType": "Patient"}, timeout=10
        ).json()
        ctx = context(subject=f"Patient/{patient['id']}")
        first_plan = report_plan(ctx)
        second_plan = report_plan(ctx)  # a re-run: same identifiers, new urn:uuids
        answers = []
        for plan in (first_plan, second_plan):
            bundle = build_transaction(plan).model_dump(mode="json", exclude_none=True)
            plan_without_provenance = plan[:-1]
            bundle["entry"] = bundle["entry"][:-1]
            response = requests.post(fhir_server.base_url, json=bundle, timeout=30)
            assert response.status_code == 200, response.text
            answers.append(
                parse_transaction_response(
                    plan_without_provenance, Bundle.model_validate(response.json())
                )
            )
        # the Device (one per algorithm version) may exist from earlier posts; the rest is new
        assert all(c.created for k, c in answers[0].items() if k != "device")
        assert not any(c.created for c in answers[1].values())
        assert {k: c.reference for k, c in answers[0].items()} == {
            k: c.reference for k, c in answers[1].items()
        }
        stored = requests.get(
            f"{fhir_server.base_url}/DiagnosticReport",
            params={"subject": f"Patient/{patient['id']}"},
            timeout=10,
        ).json()
        assert stored["total"] == 1
        observation = requests.get(
            f"{fhir_server.base_url}/{answers[0]['agatston'].reference}", timeout=10
        ).json()
        assert observation["device"]["reference"] == answers[0]["device"].reference
