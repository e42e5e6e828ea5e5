"""Property/fuzz test: FHIR-shaped junk never gets a 5xx (or a traceback) from the service."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fhir_service.conftest import Keys, service_request

FHIR_KEYS = [
    "resourceType", "id", "meta", "versionId", "identifier", "status", "intent", "code", "subject",
    "supportingInfo", "contained", "entry", "type", "resource", "request", "method", "url",
    "fullUrl", "parameter", "name", "part", "valueReference", "valueCode", "reference", "system",
    "value", "coding", "endpoint", "address", "extension", "_status", "authoredOn",
]  # fmt: skip
RESOURCE_TYPES = [
    "ServiceRequest",
    "Bundle",
    "Patient",
    "Task",
    "Parameters",
    "Foo",
    "",
    "ImagingStudy",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [*RESOURCE_TYPES, "active", "order", "revoked", "urn:dicom:uid", "Patient/1", "#x"]
    )
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FHIR_KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """``base`` with 1-4 random edits: values replaced by junk, keys deleted or added."""
    doc: Any = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths or not isinstance(doc, dict):
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(FHIR_KEYS))] = draw(junk)
    return doc


def _bundle() -> dict[str, Any]:
    order = service_request()
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:o",
                "resource": order,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {
                "fullUrl": "urn:uuid:s",
                "resource": {
                    "resourceType": "ImagingStudy",
                    "status": "available",
                    "subject": {"reference": "Patient/p1"},
                    "endpoint": [{"reference": "urn:uuid:e"}],
                },
                "request": {"method": "POST", "url": "ImagingStudy"},
            },
            {
                "fullUrl": "urn:uuid:e",
                "resource": {
                    "resourceType": "Endpoint",
                    "status": "active",
                    "connectionType": {"code": "dicom-wado-rs"},
                    "payloadType": [{"text": "DICOM"}],
                    "address": "https://pacs.example-hospital.org/dicom-web",
                },
                "request": {"method": "POST", "url": "Endpoint"},
            },
        ],
    }


def _notification() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "resource": {
                    "resourceType": "Parameters",
                    "parameter": [
                        {"name": "type", "valueCode": "event-notification"},
                        {
                            "name": "notification-event",
                            "part": [
                                {
                                    "name": "focus",
                                    "valueReference": {"reference": "ServiceRequest/1"},
                                }
                            ],
                        },
                    ],
                }
            }
        ],
    }


CONTENT_TYPES = [
    "application/fhir+json",
    "application/json; charset=utf-8",
    "application/fhir+json; charset=latin-1",
    "application/xml",
    "text/plain",
    "",
]


@st.composite
def requests_(draw: st.DrawFn) -> tuple[str, str, bytes | None, str]:
    kind = draw(
        st.sampled_from(
            ["order", "order", "bundle", "notification", "raw", "json", "search", "read"]
        )
    )
    content_type = (
        draw(st.sampled_from(CONTENT_TYPES[:2]))
        if draw(st.integers(0, 9))
        else draw(st.sampled_from(CONTENT_TYPES))
    )
    if kind == "order":
        return (
            "POST",
            "/fhir/ServiceRequest",
            json.dumps(draw(mutated(service_request()))).encode(),
            content_type,
        )
    if kind == "bundle":
        return "POST", "/fhir", json.dumps(draw(mutated(_bundle()))).encode(), content_type
    if kind == "notification":
        return "POST", "/fhir", json.dumps(draw(mutated(_notification()))).encode(), content_type
    if kind == "raw":
        path = draw(st.sampled_from(["/fhir/ServiceRequest", "/fhir"]))
        return "POST", path, draw(st.binary(max_size=64)), content_type
    if kind == "json":
        path = draw(st.sampled_from(["/fhir/ServiceRequest", "/fhir"]))
        return "POST", path, json.dumps(draw(junk)).encode(), content_type
    if kind == "search":
        params = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(
                        ["focus", "status", "patient", "_count", "_offset", "focus:identifier", "x"]
                    ),
                    st.text(max_size=12),
                ),
                max_size=4,
            )
        )
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params)
        return "GET", f"/fhir/Task?{query}", None, ""
    return "GET", "/fhir/Task/" + quote(draw(st.text(min_size=1, max_size=20)), safe=""), None, ""


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_fhir_shaped_junk_never_gets_a_server_error(client: FlaskClient, keys: Keys) -> None:
    token = keys.bearer(expires_in=3600)
    statuses: list[int] = []

    @settings(
        max_examples=1300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests_())
    def send(request: tuple[str, str, bytes | None, str]) -> None:
        method, path, body, content_type = request
        headers = dict(token)
        if content_type:
            headers["Content-Type"] = content_type
        response = client.open(path, method=method, data=body, headers=headers)
        statuses.append(response.status_code)
        assert response.status_code < 500, (path, body, response.get_data(as_text=True))
        assert response.headers["Content-Type"].startswith("application/fhir+json")
        if response.status_code >= 400:
            assert response.get_json(force=True)["resourceType"] == "OperationOutcome"

    send()
    refused = sum(400 <= s < 500 for s in statuses)
    assert refused >= 1000, f"only {refused} malformed requests of {len(statuses)}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30_000 + b"]" * 30_000,
        b'{"resourceType": "ServiceRequest", "contained": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
        b"\xff\xfe\x00{",
        b"null",
        b'"ServiceRequest"',
    ],
    ids=["deep-array", "deep-contained", "not-utf8", "null", "string"],
)
def test_pathological_bodies_are_400(client: FlaskClient, keys: Keys, body: bytes) -> None:
    headers = {**keys.bearer(), "Content-Type": "application/fhir+json"}
    response = client.post("/fhir/ServiceRequest", data=body, headers=headers)
    assert len(body) < 65536  # under CAC_MAX_BODY_BYTES: the parser, not the limit, refuses it
    assert response.status_code == 400
    assert response.get_json(force=True)["resourceType"] == "OperationOutcome"
