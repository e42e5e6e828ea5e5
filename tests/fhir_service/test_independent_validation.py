"""Everything the service emits is accepted by an independent FHIR R4 implementation.

``fhir.resources`` checks structure and types; the Medplum-based peer server (tests/peers) checks
them again with its own R4 definitions (unknown elements, cardinality, primitive formats), so a
mistake shared by our code and our model library still fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import Engine

from fhir_service.mapping.task import TaskStatus
from fhir_service.storage import AuditStore, TaskStore
from tests.fhir_service.conftest import AppFactory, Keys, post_json, service_request
from tests.fhir_service.test_api import transaction_bundle
from tests.peers.servers import FHIRServer


def emitted(client: FlaskClient, engine: Engine, keys: Keys) -> list[dict[str, Any]]:
    auth = keys.bearer()
    out: list[dict[str, Any]] = []
    created = post_json(client, "/fhir/ServiceRequest", service_request(), auth)
    task = created.get_json(force=True)
    out.append(task)
    bundle = transaction_bundle()
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "ORD-BUNDLE"
    out.append(post_json(client, "/fhir", bundle, auth).get_json(force=True))
    store = TaskStore(engine)
    store.claim(task["id"])
    store.transition(
        task["id"],
        TaskStatus.COMPLETED,
        business_status="results-posted",
        output=["DiagnosticReport/dr-1", "Observation/o-1"],
    )
    out.append(client.get(f"/fhir/Task/{task['id']}", headers=auth).get_json(force=True))
    out.append(client.get("/fhir/Task?_count=1", headers=auth).get_json(force=True))
    revoked = post_json(
        client,
        "/fhir",
        {
            **bundle,
            "entry": [
                {**e, "resource": {**e["resource"], "status": "revoked"}} if i == 0 else e
                for i, e in enumerate(bundle["entry"])
            ],
        },
        auth,
    )
    cancelled = revoked.get_json(force=True)
    assert cancelled["entry"][0]["resource"]["status"] == "cancelled"
    out.append(cancelled)
    out.append(client.get("/fhir/metadata").get_json(force=True))
    for bad in (
        post_json(
            client, "/fhir/ServiceRequest", service_request(authoredOn="x", priority=1), auth
        ),
        client.get("/fhir/Task/none", headers=auth),
        client.get("/fhir/Task"),
        client.delete("/fhir/Task"),
    ):
        out.append(bad.get_json(force=True))
    out.extend(AuditStore(engine).recent())
    return out


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_emitted_resources_validate_on_an_independent_server(
    client: FlaskClient,
    make_app: AppFactory,
    engine: Engine,
    keys: Keys,
    fhir_server: FHIRServer,
) -> None:
    resources = emitted(client, engine, keys)
    unauthenticated_metadata = make_app(auth_disabled=True).test_client().get("/fhir/metadata")
    resources.append(unauthenticated_metadata.get_json(force=True))
    kinds = {r["resourceType"] for r in resources}
    assert kinds == {"Task", "Bundle", "CapabilityStatement", "OperationOutcome", "AuditEvent"}
    for resource in resources:
        response = requests.post(
            f"{fhir_server.base_url}/{resource['resourceType']}",
            data=json.dumps(resource),
            headers={"Content-Type": "application/fhir+json"},
            timeout=10,
        )
        assert response.status_code == 201, (resource, response.text)
