"""The FHIR API through the Flask test client, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from fhir_service.ehr import HTTPEHRReader
from fhir_service.mapping.task import TaskStatus
from fhir_service.storage import AuditStore, OutboxStore, TaskStore
from fhir_service.storage.schema import outbox
from tests.fhir_service.conftest import AppFactory, Keys, post_json, service_request

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def auth(keys: Keys) -> dict[str, str]:
    return keys.bearer()


def outcome(response: Any) -> tuple[str, str | None, str]:
    """(issue code, first expression, diagnostics) of an OperationOutcome response."""
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    body = response.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    return issue["code"], (issue.get("expression") or [None])[0], issue["diagnostics"]


def transaction_bundle(
    address: str = "https://pacs.example-hospital.org/dicom-web",
) -> dict[str, Any]:
    order = service_request(id=None, supportingInfo=[{"reference": "urn:uuid:study"}])
    order["subject"] = {"reference": "urn:uuid:patient"}
    order["identifier"] = order["identifier"][:1]
    del order["id"]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:order",
                "resource": order,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {
                "fullUrl": "urn:uuid:patient",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p7",
                    "identifier": [{"system": "urn:oid:1.2.840.99999.3", "value": "MRN-7"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:study",
                "resource": {
                    "resourceType": "ImagingStudy",
                    "status": "available",
                    "subject": {"reference": "urn:uuid:patient"},
                    "identifier": [
                        {"system": "urn:dicom:uid", "value": "urn:oid:1.2.840.99999.4.7"},
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                        "code": "ACSN",
                                    }
                                ]
                            },
                            "value": "ACC-7",
                        },
                    ],
                    "endpoint": [{"reference": "urn:uuid:endpoint"}],
                },
                "request": {"method": "POST", "url": "ImagingStudy"},
            },
            {
                "fullUrl": "urn:uuid:endpoint",
                "resource": {
                    "resourceType": "Endpoint",
                    "status": "active",
                    "connectionType": {
                        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                        "code": "dicom-wado-rs",
                    },
                    "payloadType": [{"text": "DICOM"}],
                    "address": address,
                },
                "request": {"method": "POST", "url": "Endpoint"},
            },
        ],
    }


class TestCreateServiceRequest:
    def test_new_order_is_accepted_with_a_task(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        response = post_json(client, "/fhir/ServiceRequest", service_request(), auth)
        assert response.status_code == 201
        assert response.headers["Content-Type"].startswith(FHIR_JSON)
        task = response.get_json(force=True)
        assert task["resourceType"] == "Task"
        assert task["status"] == "accepted"
        assert task["intent"] == "order"
        assert task["code"]["coding"][0]["code"] == "fulfill"
        assert task["focus"]["reference"] == "ServiceRequest/sr-1"
        assert task["for"]["reference"] == "Patient/p1"
        assert response.headers["Location"].endswith(f"/fhir/Task/{task['id']}/_history/1")
        assert OutboxStore(engine).pending() == 1
        order = TaskStore(engine).order_for(task["id"])
        assert order.study_instance_uid == "1.2.840.99999.2.1"

    def test_same_order_twice_returns_the_same_task_and_starts_one_job(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        first = post_json(client, "/fhir/ServiceRequest", service_request(), auth)
        second = post_json(client, "/fhir/ServiceRequest", service_request(), auth)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.get_json(force=True)["id"] == second.get_json(force=True)["id"]
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(outbox)).scalar_one() == 1

    def test_same_order_without_version_id_is_recognised_by_content(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        order = service_request()
        del order["meta"]
        first = post_json(client, "/fhir/ServiceRequest", order, auth)
        second = post_json(client, "/fhir/ServiceRequest", order, auth)
        assert (first.status_code, second.status_code) == (201, 200)

    def test_new_version_of_unstarted_order_replaces_it(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        first = post_json(client, "/fhir/ServiceRequest", service_request(), auth)
        changed = service_request(meta={"versionId": "2"}, priority="urgent")
        second = post_json(client, "/fhir/ServiceRequest", changed, auth)
        assert second.status_code == 200
        task_id = first.get_json(force=True)["id"]
        assert second.get_json(force=True)["id"] == task_id
        assert second.get_json(force=True)["meta"]["versionId"] == "2"
        assert TaskStore(engine).order_for(task_id).service_request["priority"] == "urgent"
        assert OutboxStore(engine).pending() == 1

    def test_new_version_of_started_order_is_a_conflict(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        first = post_json(client, "/fhir/ServiceRequest", service_request(), auth)
        assert TaskStore(engine).claim(first.get_json(force=True)["id"])
        second = post_json(
            client, "/fhir/ServiceRequest", service_request(meta={"versionId": "2"}), auth
        )
        assert second.status_code == 409
        assert outcome(second)[0] == "conflict"

    def test_revoked_order_cancels_its_task(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        first = post_json(client, "/fhir/ServiceRequest", service_request(), auth)
        revoked = service_request(meta={"versionId": "2"}, status="revoked")
        second = post_json(client, "/fhir/ServiceRequest", revoked, auth)
        assert second.status_code == 200
        task = second.get_json(force=True)
        assert task["id"] == first.get_json(force=True)["id"]
        assert task["status"] == "cancelled"
        assert "revoked" in task["statusReason"]["text"]
        assert TaskStore(engine).get(task["id"]).status is TaskStatus.CANCELLED

    def test_revoked_unknown_order_is_refused(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        response = post_json(
            client, "/fhir/ServiceRequest", service_request(status="revoked"), auth
        )
        assert response.status_code == 422
        assert outcome(response)[:2] == ("business-rule", "ServiceRequest.status")

    @pytest.mark.parametrize(
        ("change", "status", "code", "location"),
        [
            ({"resourceType": "Patient"}, 400, "structure", "resourceType"),
            ({"subject": {"reference": 12}}, 400, "structure", "ServiceRequest.subject.reference"),
            ({"authoredOn": "yesterday"}, 400, "structure", "ServiceRequest.authoredOn"),
            ({"subject": None}, 400, "structure", "ServiceRequest.subject"),
            ({"subject": {"display": "x"}}, 422, "business-rule", "ServiceRequest.subject"),
            (
                {"subject": {"reference": "Group/1"}},
                422,
                "business-rule",
                "ServiceRequest.subject.reference",
            ),
            ({"status": "draft"}, 422, "business-rule", "ServiceRequest.status"),
            ({"intent": "plan"}, 422, "business-rule", "ServiceRequest.intent"),
            (
                {"code": {"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}},
                422,
                "not-supported",
                "ServiceRequest.code.coding",
            ),
            ({"code": {"text": "calcium score"}}, 422, "business-rule", "ServiceRequest.code"),
        ],
    )
    def test_bad_orders_get_a_located_operation_outcome(
        self,
        client: FlaskClient,
        auth: dict[str, str],
        change: dict[str, Any],
        status: int,
        code: str,
        location: str,
    ) -> None:
        order = {k: v for k, v in {**service_request(), **change}.items() if v is not None}
        response = post_json(client, "/fhir/ServiceRequest", order, auth)
        assert response.status_code == status
        assert outcome(response)[:2] == (code, location)

    def test_order_without_a_way_to_find_the_images_is_refused(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        order = service_request()
        order["identifier"] = order["identifier"][:1]
        response = post_json(client, "/fhir/ServiceRequest", order, auth)
        assert response.status_code == 422
        code, location, message = outcome(response)
        assert (code, location) == ("business-rule", "ServiceRequest.supportingInfo")
        assert "Study Instance UID" in message

    def test_order_without_identity_is_refused(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        order = service_request()
        order["identifier"] = order["identifier"][1:]
        del order["id"]
        response = post_json(client, "/fhir/ServiceRequest", order, auth)
        assert response.status_code == 422
        assert outcome(response)[:2] == ("business-rule", "ServiceRequest.identifier")

    def test_contained_endpoint_outside_the_allow_list_is_refused(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        order = service_request(
            contained=[
                {
                    "resourceType": "ImagingStudy",
                    "id": "study",
                    "status": "available",
                    "subject": {"reference": "Patient/p1"},
                    "endpoint": [{"reference": "#pacs"}],
                },
                {
                    "resourceType": "Endpoint",
                    "id": "pacs",
                    "status": "active",
                    "connectionType": {"code": "dicom-wado-rs"},
                    "payloadType": [{"text": "DICOM"}],
                    "address": "http://169.254.169.254/latest/meta-data",
                },
            ],
            supportingInfo=[{"reference": "#study"}],
        )
        response = post_json(client, "/fhir/ServiceRequest", order, auth)
        assert response.status_code == 422
        assert outcome(response)[1] == "ServiceRequest.contained[1].address"

    def test_malformed_json_is_400(self, client: FlaskClient, auth: dict[str, str]) -> None:
        response = client.post(
            "/fhir/ServiceRequest",
            data=b'{"resourceType": "ServiceRequest",',
            headers={**auth, "Content-Type": FHIR_JSON},
        )
        assert response.status_code == 400
        assert outcome(response)[0] == "structure"

    def test_nan_is_not_json(self, client: FlaskClient, auth: dict[str, str]) -> None:
        response = client.post(
            "/fhir/ServiceRequest", data=b'{"a": NaN}', headers={**auth, "Content-Type": FHIR_JSON}
        )
        assert response.status_code == 400

    @pytest.mark.parametrize("content_type", ["application/xml", "text/plain", None])
    def test_wrong_content_type_is_415(
        self, client: FlaskClient, auth: dict[str, str], content_type: str | None
    ) -> None:
        headers = dict(auth)
        if content_type:
            headers["Content-Type"] = content_type
        response = client.post(
            "/fhir/ServiceRequest", data=json.dumps(service_request()), headers=headers
        )
        assert response.status_code == 415
        assert outcome(response)[0] == "not-supported"

    def test_body_over_the_limit_is_413(self, client: FlaskClient, auth: dict[str, str]) -> None:
        order = service_request(note=[{"text": "x" * 70_000}])
        response = post_json(client, "/fhir/ServiceRequest", order, auth)
        assert response.status_code == 413
        assert outcome(response)[0] == "too-costly"

    def test_unknown_route_is_404_and_wrong_method_405(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        missing = client.get("/fhir/Patient/1", headers=auth)
        assert missing.status_code == 404
        assert outcome(missing)[0] == "not-found"
        wrong = client.delete("/fhir/ServiceRequest", headers=auth)
        assert wrong.status_code == 405
        assert outcome(wrong)[0] == "not-supported"
        assert "POST" in wrong.headers["Allow"]


class TestTransactionBundle:
    def test_order_with_inline_context_is_accepted(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        response = post_json(client, "/fhir", transaction_bundle(), auth)
        assert response.status_code == 200
        bundle = response.get_json(force=True)
        assert bundle["type"] == "transaction-response"
        assert len(bundle["entry"]) == 4
        assert bundle["entry"][0]["response"]["status"] == "201 Created"
        task = bundle["entry"][0]["resource"]
        assert task["for"]["reference"] == "Patient/p7"
        order = TaskStore(engine).order_for(task["id"])
        assert order.study_instance_uid == "1.2.840.99999.4.7"
        assert order.accession_number == "ACC-7"
        assert order.patient is not None
        assert order.patient["id"] == "p7"
        assert order.endpoints[0]["address"] == "https://pacs.example-hospital.org/dicom-web"
        again = post_json(client, "/fhir", transaction_bundle(), auth)
        assert again.get_json(force=True)["entry"][0]["response"]["status"] == "200 OK"

    @pytest.mark.parametrize(
        "address",
        [
            "https://pacs.example-hospital.org.evil.com/dicom-web",
            "https://user:pw@pacs.example-hospital.org/dicom-web",
            "https://pacs.example-hospital.org/dicom-webX",
            "http://pacs.example-hospital.org/dicom-web",
            "file:///etc/passwd",
        ],
    )
    def test_endpoint_outside_the_allow_list_is_refused(
        self, client: FlaskClient, auth: dict[str, str], address: str
    ) -> None:
        response = post_json(client, "/fhir", transaction_bundle(address), auth)
        assert response.status_code == 422
        assert outcome(response)[1] == "Bundle.entry[3].resource.address"

    def test_two_orders_in_one_bundle_are_refused(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        bundle = transaction_bundle()
        bundle["entry"].append(bundle["entry"][0])
        response = post_json(client, "/fhir", bundle, auth)
        assert response.status_code == 422
        assert outcome(response)[:2] == ("not-supported", "Bundle.entry[4].resource")

    def test_other_bundle_types_are_refused(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        bundle = transaction_bundle()
        bundle["type"] = "batch"
        response = post_json(client, "/fhir", bundle, auth)
        assert response.status_code == 422
        assert outcome(response)[:2] == ("not-supported", "Bundle.type")

    def test_order_errors_inside_a_bundle_carry_the_entry_location(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        bundle = transaction_bundle()
        bundle["entry"][0]["resource"]["intent"] = "proposal"
        response = post_json(client, "/fhir", bundle, auth)
        assert response.status_code == 422
        assert outcome(response)[1] == "Bundle.entry[0].resource.intent"


class FakeEHR:
    """A real HTTP server on loopback answering ``GET /fhir/<path>`` from a dict."""

    def __init__(self) -> None:
        self.resources: dict[str, tuple[int, Any]] = {}
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        self.token_forms: list[dict[str, list[str]]] = []
        ehr = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the token endpoint
                length = int(self.headers.get("Content-Length", "0"))
                ehr.token_forms.append(parse_qs(self.rfile.read(length).decode()))
                token = {"access_token": f"tok-{len(ehr.token_forms)}", "expires_in": 300}
                self._answer(200, token)

            def do_GET(self) -> None:
                ehr.requests.append(self.path)
                ehr.authorizations.append(self.headers.get("Authorization"))
                status, body = ehr.resources.get(
                    self.path, (404, {"resourceType": "OperationOutcome"})
                )
                self._answer(status, body)

            def _answer(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", FHIR_JSON)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ehr() -> Iterator[FakeEHR]:
    server = FakeEHR()
    yield server
    server.close()


def notification(*focus: str, kind: str = "event-notification") -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": "Subscription/cac-orders"}},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": kind},
    ]
    for index, ref in enumerate(focus):
        parameters.append(
            {
                "name": "notification-event",
                "part": [
                    {"name": "event-number", "valueString": str(index + 1)},
                    {"name": "focus", "valueReference": {"reference": ref}},
                ],
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "fullUrl": "urn:uuid:status",
                "resource": {"resourceType": "Parameters", "parameter": parameters},
                "request": {"method": "GET", "url": "Subscription/cac-orders/$status"},
                "response": {"status": "200"},
            }
        ],
    }


class TestSubscriptionNotification:
    def test_id_only_notification_reads_the_order_from_the_ehr(
        self, make_app: AppFactory, auth: dict[str, str], ehr: FakeEHR, engine: Engine
    ) -> None:
        ehr.resources["/fhir/ServiceRequest/sr-9"] = (200, service_request(id="sr-9"))
        client = make_app(ehr_reader=HTTPEHRReader(ehr.base_url, timeout_s=2)).test_client()
        response = post_json(client, "/fhir", notification("ServiceRequest/sr-9"), auth)
        assert response.status_code == 200
        bundle = response.get_json(force=True)
        assert bundle["type"] == "batch-response"
        task = bundle["entry"][0]["resource"]
        assert task["focus"]["reference"] == "ServiceRequest/sr-9"
        assert ehr.requests == ["/fhir/ServiceRequest/sr-9"]
        assert OutboxStore(engine).pending() == 1
        # the same notification again (a retry) starts nothing new
        post_json(client, "/fhir", notification("ServiceRequest/sr-9"), auth)
        assert OutboxStore(engine).pending() == 1

    def test_reference_to_another_host_is_never_fetched(
        self, make_app: AppFactory, auth: dict[str, str], ehr: FakeEHR
    ) -> None:
        client = make_app(ehr_reader=HTTPEHRReader(ehr.base_url, timeout_s=2)).test_client()
        response = post_json(
            client, "/fhir", notification("http://169.254.169.254/fhir/ServiceRequest/1"), auth
        )
        assert response.status_code == 200
        entry = response.get_json(force=True)["entry"][0]
        assert entry["response"]["status"] == "422"
        assert ehr.requests == []

    def test_ehr_unavailable_is_503_so_the_sender_retries(
        self, make_app: AppFactory, auth: dict[str, str], ehr: FakeEHR
    ) -> None:
        ehr.resources["/fhir/ServiceRequest/sr-9"] = (503, {"resourceType": "OperationOutcome"})
        client = make_app(ehr_reader=HTTPEHRReader(ehr.base_url, timeout_s=2)).test_client()
        response = post_json(client, "/fhir", notification("ServiceRequest/sr-9"), auth)
        assert response.status_code == 503
        assert outcome(response)[0] == "transient"
        assert response.headers["Retry-After"]

    def test_shared_secret_is_checked_when_configured(
        self, make_app: AppFactory, auth: dict[str, str], ehr: FakeEHR
    ) -> None:
        reader = HTTPEHRReader(ehr.base_url, timeout_s=2)
        client = make_app(ehr_reader=reader, notification_secret="s3cret").test_client()
        body = notification(kind="heartbeat")
        assert post_json(client, "/fhir", body, auth).status_code == 401
        wrong = {**auth, "X-CAC-Notification-Secret": "guess"}
        assert post_json(client, "/fhir", body, wrong).status_code == 401
        right = {**auth, "X-CAC-Notification-Secret": "s3cret"}
        assert post_json(client, "/fhir", body, right).status_code == 200

    def test_heartbeat_is_acknowledged(
        self, make_app: AppFactory, auth: dict[str, str], ehr: FakeEHR
    ) -> None:
        client = make_app(ehr_reader=HTTPEHRReader(ehr.base_url, timeout_s=2)).test_client()
        response = post_json(client, "/fhir", notification(kind="heartbeat"), auth)
        assert response.status_code == 200
        assert ehr.requests == []

    def test_notification_without_ehr_configured_is_refused(
        self, client: FlaskClient, auth: dict[str, str]
    ) -> None:
        response = post_json(client, "/fhir", notification("ServiceRequest/sr-9"), auth)
        assert response.status_code == 422


class TestTaskReadAndSearch:
    def _orders(self, client: FlaskClient, auth: dict[str, str]) -> list[str]:
        ids = []
        for n, patient in enumerate(["Patient/p1", "Patient/p1", "Patient/p2"]):
            order = service_request(id=f"sr-{n}", subject={"reference": patient})
            order["identifier"] = [
                {"system": "urn:oid:1.2.840.99999.1", "value": f"ORD-{n}"},
                order["identifier"][1],
            ]
            ids.append(
                post_json(client, "/fhir/ServiceRequest", order, auth).get_json(force=True)["id"]
            )
        return ids

    def test_read_returns_the_task_with_etag(
        self, client: FlaskClient, auth: dict[str, str], keys: Keys
    ) -> None:
        task_id = self._orders(client, auth)[0]
        response = client.get(f"/fhir/Task/{task_id}", headers=auth)
        assert response.status_code == 200
        assert response.get_json(force=True)["id"] == task_id
        assert response.headers["ETag"] == 'W/"1"'
        assert client.get(f"/fhir/Task/{task_id}/_history/1", headers=auth).status_code == 200
        assert client.get(f"/fhir/Task/{task_id}/_history/7", headers=auth).status_code == 404

    def test_read_unknown_task_is_404(self, client: FlaskClient, auth: dict[str, str]) -> None:
        response = client.get("/fhir/Task/does-not-exist", headers=auth)
        assert response.status_code == 404
        assert outcome(response)[0] == "not-found"

    def test_search_by_patient_focus_and_status(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        ids = self._orders(client, auth)
        TaskStore(engine).claim(ids[0])

        def search(query: str) -> set[str]:
            response = client.get(f"/fhir/Task?{query}", headers=auth)
            assert response.status_code == 200, response.get_data(as_text=True)
            bundle = response.get_json(force=True)
            assert bundle["type"] == "searchset"
            entries = bundle.get("entry", [])
            assert bundle["total"] == len(entries)
            return {e["resource"]["id"] for e in entries}

        assert search("patient=Patient/p1") == {ids[0], ids[1]}
        assert search("patient=p2") == {ids[2]}
        assert search("focus=ServiceRequest/sr-1") == {ids[1]}
        assert search("focus:identifier=urn:oid:1.2.840.99999.1|ORD-2") == {ids[2]}
        assert search("status=in-progress") == {ids[0]}
        assert search("status=accepted,in-progress&patient=Patient/p1") == {ids[0], ids[1]}
        assert search("patient=Patient/nobody") == set()

    def test_search_pages_with_next_links(self, client: FlaskClient, auth: dict[str, str]) -> None:
        ids = self._orders(client, auth)
        first = client.get("/fhir/Task?_count=2", headers=auth).get_json(force=True)
        assert first["total"] == 3
        assert len(first["entry"]) == 2
        next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
        second = client.get(next_url.split("/fhir", 1)[1].join(["/fhir", ""]), headers=auth)
        rest = second.get_json(force=True)
        assert len(rest["entry"]) == 1
        seen = {e["resource"]["id"] for e in first["entry"] + rest["entry"]}
        assert seen == set(ids)

    @pytest.mark.parametrize(
        ("query", "location"),
        [
            ("status=finished", "Task?status"),
            ("name=x", "Task?name"),
            ("_count=0", "Task?_count"),
            ("_count=abc", "Task?_count"),
            ("patient=Group/1", "Task?patient"),
            ("focus:identifier=novalue", "Task?focus:identifier"),
        ],
    )
    def test_bad_search_parameters_are_400(
        self, client: FlaskClient, auth: dict[str, str], query: str, location: str
    ) -> None:
        response = client.get(f"/fhir/Task?{query}", headers=auth)
        assert response.status_code == 400
        assert outcome(response)[1] == location


class TestMetadataAndHealth:
    def test_capability_statement_lists_what_is_supported(self, client: FlaskClient) -> None:
        response = client.get("/fhir/metadata")
        assert response.status_code == 200
        statement = response.get_json(force=True)
        assert statement["fhirVersion"] == "4.0.1"
        rest = statement["rest"][0]
        resources = {r["type"]: r for r in rest["resource"]}
        assert set(resources) == {"ServiceRequest", "Task"}
        assert [i["code"] for i in resources["ServiceRequest"]["interaction"]] == ["create"]
        assert {p["name"] for p in resources["Task"]["searchParam"]} >= {
            "focus",
            "status",
            "patient",
        }
        assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
        assert "system/ServiceRequest.c" in rest["security"]["description"]
        assert "79087-3" in rest["documentation"]

    def test_health_and_readiness(self, client: FlaskClient) -> None:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.get_json()["checks"] == {"storage": "ok", "broker": "ok"}

    def test_readiness_reports_an_unreachable_broker(
        self, make_app: AppFactory, tmp_path: Any
    ) -> None:
        client = make_app(broker_url="redis://127.0.0.1:1/0").test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["broker"] == "unreachable"


class TestAuditAndLogs:
    def test_create_read_search_and_refusals_are_audited(
        self, client: FlaskClient, auth: dict[str, str], engine: Engine
    ) -> None:
        task_id = post_json(client, "/fhir/ServiceRequest", service_request(), auth).get_json(
            force=True
        )["id"]
        client.get(f"/fhir/Task/{task_id}", headers=auth)
        client.get("/fhir/Task?patient=Patient/p1", headers=auth)
        client.get(f"/fhir/Task/{task_id}")  # no token: refused
        events = list(reversed(AuditStore(engine).recent()))
        assert [(e["action"], e["outcome"]) for e in events] == [
            ("C", "0"),
            ("R", "0"),
            ("E", "0"),
            ("R", "4"),
        ]
        created = events[0]
        patients = [e for e in created["entity"] if e["role"]["code"] == "1"]
        assert patients[0]["what"]["reference"] == "Patient/p1"
        assert created["agent"][0]["who"]["display"] == "ehr-client"
        assert created["subtype"][0]["code"] == "create"
        assert "query" in next(e for e in events[2]["entity"] if e["role"]["code"] == "24")

    def test_logs_carry_no_patient_identifiers(
        self, client: FlaskClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        bundle = transaction_bundle()
        bundle["entry"][1]["resource"]["name"] = [{"family": "Zyxwvutson", "given": ["Qora"]}]
        post_json(client, "/fhir", bundle, auth)
        post_json(
            client,
            "/fhir/ServiceRequest",
            service_request(subject={"reference": "Patient/MRN-424242"}),
            auth,
        )
        client.get("/fhir/Task?patient:identifier=urn:oid:1.2.840.99999.3|MRN-7", headers=auth)
        text = caplog.text
        assert "order created" in text
        for phi in ("MRN-7", "Zyxwvutson", "Qora", "MRN-424242", "p7"):
            assert phi not in text
