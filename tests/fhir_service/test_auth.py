"""Authentication and authorisation: SMART scopes, token checks, and every endpoint refusing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from fhir_service.auth import Interaction, scope_grants
from tests.fhir_service.conftest import AUDIENCE, ISSUER, AppFactory, Keys, service_request


class TestScopeGrants:
    @pytest.mark.parametrize(
        ("scope", "resource", "interaction", "granted"),
        [
            ("system/ServiceRequest.c", "ServiceRequest", Interaction.CREATE, True),
            ("system/ServiceRequest.cruds", "ServiceRequest", Interaction.CREATE, True),
            ("system/ServiceRequest.write", "ServiceRequest", Interaction.CREATE, True),
            ("system/ServiceRequest.*", "ServiceRequest", Interaction.CREATE, True),
            ("system/*.write", "ServiceRequest", Interaction.CREATE, True),
            ("system/*.c", "ServiceRequest", Interaction.CREATE, True),
            ("system/ServiceRequest.read", "ServiceRequest", Interaction.CREATE, False),
            ("system/ServiceRequest.rs", "ServiceRequest", Interaction.CREATE, False),
            ("system/Task.c", "ServiceRequest", Interaction.CREATE, False),
            ("user/ServiceRequest.c", "ServiceRequest", Interaction.CREATE, False),
            ("patient/ServiceRequest.write", "ServiceRequest", Interaction.CREATE, False),
            ("system/ServiceRequest.c?category=x", "ServiceRequest", Interaction.CREATE, False),
            ("system/Task.r", "Task", Interaction.READ, True),
            ("system/Task.read", "Task", Interaction.READ, True),
            ("system/Task.read", "Task", Interaction.SEARCH, True),
            ("system/Task.rs", "Task", Interaction.SEARCH, True),
            ("system/Task.r", "Task", Interaction.SEARCH, False),
            ("system/Task.s", "Task", Interaction.READ, False),
            ("system/Task.write", "Task", Interaction.READ, False),
            ("system/Task.sr", "Task", Interaction.READ, False),
            ("system/Task.", "Task", Interaction.READ, False),
        ],
    )
    def test_v1_and_v2_scope_syntax(
        self, scope: str, resource: str, interaction: Interaction, granted: bool
    ) -> None:
        assert scope_grants([scope], resource, interaction) is granted


#: (method, path template, needs a body, scope that grants it)
ENDPOINTS = [
    ("POST", "/fhir/ServiceRequest", True, "system/ServiceRequest.c"),
    ("POST", "/fhir", True, "system/ServiceRequest.c"),
    ("GET", "/fhir/Task/{task_id}", False, "system/Task.r"),
    ("GET", "/fhir/Task/{task_id}/_history/1", False, "system/Task.r"),
    ("GET", "/fhir/Task?patient=Patient/p1", False, "system/Task.s"),
]


def call(
    client: FlaskClient, endpoint: tuple[str, str, bool, str], task_id: str, headers: dict[str, str]
) -> Any:
    method, template, body, _ = endpoint
    path = template.format(task_id=task_id)
    if not body:
        return client.open(path, method=method, headers=headers)
    payload: dict[str, Any] = service_request()
    if path == "/fhir":
        payload = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": payload, "request": {"method": "POST", "url": "ServiceRequest"}}
            ],
        }
    return client.open(
        path,
        method=method,
        json=payload,
        headers={**headers, "Content-Type": "application/fhir+json"},
    )


@pytest.fixture
def task_id(client: FlaskClient, keys: Keys) -> str:
    response = client.post(
        "/fhir/ServiceRequest",
        json=service_request(
            id="existing",
            identifier=[
                {"system": "urn:x", "value": "existing"},
                service_request()["identifier"][1],
            ],
        ),
        headers={**keys.bearer(), "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 201
    return str(response.get_json(force=True)["id"])


def refused(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == ("login" if status == 401 else "forbidden")
    return str(response.headers.get("WWW-Authenticate", ""))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS])
class TestEveryEndpoint:
    def test_no_token_is_401_with_challenge(
        self, client: FlaskClient, task_id: str, endpoint: Any
    ) -> None:
        challenge = refused(call(client, endpoint, task_id, {}), 401)
        assert challenge == 'Bearer realm="cac-fhir"'

    def test_not_a_bearer_token_is_401(
        self, client: FlaskClient, task_id: str, endpoint: Any
    ) -> None:
        refused(call(client, endpoint, task_id, {"Authorization": "Basic dXNlcjpwdw=="}), 401)

    def test_garbage_token_is_401(self, client: FlaskClient, task_id: str, endpoint: Any) -> None:
        challenge = refused(
            call(client, endpoint, task_id, {"Authorization": "Bearer not.a.jwt"}), 401
        )
        assert 'error="invalid_token"' in challenge

    def test_expired_token_is_401(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any
    ) -> None:
        headers = keys.bearer(scope=endpoint[3], expires_in=-3600)
        assert "expired" in refused(call(client, endpoint, task_id, headers), 401)

    def test_not_yet_valid_token_is_401(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any
    ) -> None:
        headers = keys.bearer(scope=endpoint[3], not_before=3600)
        refused(call(client, endpoint, task_id, headers), 401)

    def test_wrong_audience_is_401(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any
    ) -> None:
        headers = keys.bearer(scope=endpoint[3], audience="https://other.example.org/fhir")
        assert "audience" in refused(call(client, endpoint, task_id, headers), 401)

    def test_wrong_issuer_is_401(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any
    ) -> None:
        headers = keys.bearer(scope=endpoint[3], issuer="https://evil.example.org")
        assert "issuer" in refused(call(client, endpoint, task_id, headers), 401)

    def test_wrong_signature_is_401(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any
    ) -> None:
        headers = keys.bearer(scope=endpoint[3], key=keys.stranger)
        assert "signature" in refused(call(client, endpoint, task_id, headers), 401)

    def test_unknown_key_id_is_401(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any
    ) -> None:
        headers = keys.bearer(scope=endpoint[3], kid="someone-else")
        refused(call(client, endpoint, task_id, headers), 401)

    def test_missing_scope_is_403(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any
    ) -> None:
        headers = keys.bearer(scope="system/Patient.rs system/Observation.c")
        challenge = refused(call(client, endpoint, task_id, headers), 403)
        assert 'error="insufficient_scope"' in challenge
        assert endpoint[3] in challenge

    @pytest.mark.parametrize("algorithm", ["RS256", "RS384", "ES384"])
    def test_right_scope_is_allowed(
        self, client: FlaskClient, keys: Keys, task_id: str, endpoint: Any, algorithm: str
    ) -> None:
        headers = keys.bearer(scope=endpoint[3], algorithm=algorithm)
        assert call(client, endpoint, task_id, headers).status_code in (200, 201)


class TestTokenDetails:
    def test_hmac_token_keyed_with_the_public_key_is_refused(
        self, client: FlaskClient, keys: Keys
    ) -> None:
        # algorithm confusion: HS256 "signed" with the public key's PEM must never verify
        from cryptography.hazmat.primitives import serialization

        pem = keys.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": 2**31, "scope": "system/*.*"}
        header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}

        def b64(data: bytes) -> bytes:
            return base64.urlsafe_b64encode(data).rstrip(b"=")

        signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
        signature = b64(hmac.new(pem, signing_input, hashlib.sha256).digest())
        token = (signing_input + b"." + signature).decode()
        response = client.get("/fhir/Task", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401

    def test_unsigned_token_is_refused(self, client: FlaskClient) -> None:
        unsigned = jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "exp": 2**31, "scope": "system/*.*"},
            None,  # type: ignore[arg-type]
            algorithm="none",
            headers={"kid": "rsa-1"},
        )
        response = client.get("/fhir/Task", headers={"Authorization": f"Bearer {unsigned}"})
        assert response.status_code == 401

    def test_token_without_exp_is_refused(self, client: FlaskClient, keys: Keys) -> None:
        token = jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "scope": "system/Task.rs"},
            keys.rsa,
            algorithm="RS384",
            headers={"kid": "rsa-1"},
        )
        response = client.get("/fhir/Task", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401

    def test_scp_claim_list_is_read(self, client: FlaskClient, keys: Keys) -> None:
        headers = keys.bearer(scope=["system/Task.rs"])
        assert client.get("/fhir/Task", headers=headers).status_code == 200

    def test_public_endpoints_need_no_token(self, client: FlaskClient) -> None:
        for path in ("/fhir/metadata", "/healthz", "/readyz"):
            assert client.get(path).status_code == 200, path

    def test_auth_disabled_serves_without_token_and_says_so(
        self, make_app: AppFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = make_app(auth_disabled=True).test_client()
        assert "AUTHENTICATION IS DISABLED" in caplog.text
        response = client.post(
            "/fhir/ServiceRequest",
            json=service_request(),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert response.status_code == 201
        metadata = client.get("/fhir/metadata").get_json(force=True)
        assert "DISABLED" in metadata["rest"][0]["security"]["description"]
