"""The EHR client against the real FHIR server, and SMART Backend Services against a real token
endpoint (a small OAuth2 server in this test that verifies the client assertion with the public
key, as an EHR does)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir.resources.R4B.patient import Patient

from tests.peers.servers import FHIRServer, free_port
from workers.ehr import FHIRHTTPClient, SMARTBackendAuth, StaticToken
from workers.errors import (
    AuthenticationError,
    ConfigurationError,
    EHRNotFoundError,
    EHRPermanentError,
    EHRTransientError,
)


class TokenServer:
    """An OAuth2 token endpoint for ``client_credentials`` + ``private_key_jwt``."""

    def __init__(self, public_pem: bytes, algorithm: str, expires_in: int = 300) -> None:
        self.public_pem = public_pem
        self.algorithm = algorithm
        self.expires_in = expires_in
        self.assertions: list[dict[str, Any]] = []
        self.refuse = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                status, body = outer.answer(form)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.refuse:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != ["client_credentials"]:
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_assertion_type") != [
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ]:
            return 400, {"error": "invalid_request"}
        try:
            claims = jwt.decode(
                form["client_assertion"][0],
                self.public_pem,
                algorithms=[self.algorithm],
                audience=self.url,
            )
        except jwt.PyJWTError as exc:
            return 401, {"error": "invalid_client", "error_description": str(exc)}
        self.assertions.append({**claims, "scope": form.get("scope", [""])[0]})
        return 200, {
            "access_token": f"token-{len(self.assertions)}",
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": form.get("scope", [""])[0],
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def key_pair(kind: str) -> tuple[str, bytes]:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(params=["RS384", "ES384"])
def smart(request: pytest.FixtureRequest) -> Iterator[tuple[TokenServer, SMARTBackendAuth]]:
    private, public = key_pair(request.param)
    server = TokenServer(public, request.param)
    auth = SMARTBackendAuth(server.url, "cac-client", private, algorithm=request.param)
    yield server, auth
    server.close()


@pytest.mark.integration
class TestSMARTBackendAuth:
    def test_token_is_fetched_once_and_reused(self, smart, fhir_server: FHIRServer) -> None:
        server, auth = smart
        client = FHIRHTTPClient(fhir_server.base_url, auth)
        created = client.create(
            Patient.model_validate({"resourceType": "Patient", "gender": "male"})
        )
        client.read(Patient, str(created.id))
        client.search(Patient, {"_id": str(created.id)})
        assert len(server.assertions) == 1
        claims = server.assertions[0]
        assert claims["iss"] == claims["sub"] == "cac-client"
        assert claims["aud"] == server.url
        assert 0 < claims["exp"] - claims["iat"] <= 300
        assert "system/DiagnosticReport.c" in claims["scope"]

    def test_token_near_expiry_is_renewed_with_a_fresh_jti(self, smart, fhir_server) -> None:
        server, auth = smart
        server.expires_in = 30  # inside the refresh margin: every request needs a new token
        client = FHIRHTTPClient(fhir_server.base_url, auth)
        client.search(Patient, {"gender": "male"})
        client.search(Patient, {"gender": "male"})
        assert len(server.assertions) == 2
        assert server.assertions[0]["jti"] != server.assertions[1]["jti"]

    def test_refused_assertion_is_an_authentication_error(self, smart, fhir_server) -> None:
        server, auth = smart
        server.refuse = True
        client = FHIRHTTPClient(fhir_server.base_url, auth)
        with pytest.raises(AuthenticationError, match="refused the client assertion"):
            client.search(Patient, {"gender": "male"})

    def test_wrong_key_is_refused_by_the_server(self, fhir_server) -> None:
        _, public = key_pair("RS384")
        other_private, _ = key_pair("RS384")
        server = TokenServer(public, "RS384")
        try:
            auth = SMARTBackendAuth(server.url, "cac-client", other_private)
            with pytest.raises(AuthenticationError, match="Signature verification failed"):
                FHIRHTTPClient(fhir_server.base_url, auth).search(Patient, {})
        finally:
            server.close()


class TestSMARTConfiguration:
    def test_unsupported_algorithm(self) -> None:
        with pytest.raises(ConfigurationError, match="RS384"):
            SMARTBackendAuth("https://ehr/token", "c", "key", algorithm="HS256")

    def test_unreadable_key(self) -> None:
        auth = SMARTBackendAuth("https://ehr/token", "c", "not a key")
        with pytest.raises(ConfigurationError, match="cannot sign"):
            auth.client_assertion()


@pytest.mark.integration
class TestErrors:
    def test_not_found_keeps_the_operation_outcome(self, fhir_server) -> None:
        client = FHIRHTTPClient(fhir_server.base_url, StaticToken("t"))
        with pytest.raises(EHRNotFoundError) as info:
            client.read(Patient, "does-not-exist")
        assert info.value.status == 404
        assert info.value.operation_outcome is not None
        assert info.value.operation_outcome["resourceType"] == "OperationOutcome"

    def test_invalid_resource_is_permanent_with_the_server_text(self, fhir_server) -> None:
        client = FHIRHTTPClient(fhir_server.base_url)
        bad_payload = {"resourceType": "Observation", "status": "final"}  # code is required
        with pytest.raises(EHRPermanentError) as info:
            client._request("POST", f"{fhir_server.base_url}/Observation", json_body=bad_payload)
        assert info.value.status == 400
        assert "code" in info.value.reason

    def test_503_is_transient(self, fhir_server) -> None:
        client = FHIRHTTPClient(fhir_server.base_url)
        fhir_server.inject_faults(status=503, count=1)
        try:
            with pytest.raises(EHRTransientError) as info:
                client.search(Patient, {})
        finally:
            fhir_server.clear_faults()
        assert info.value.status == 503

    def test_unreachable_server_is_transient(self) -> None:
        client = FHIRHTTPClient(f"http://127.0.0.1:{free_port()}/fhir", timeout_s=(1.0, 1.0))
        with pytest.raises(EHRTransientError, match="ConnectionError"):
            client.read(Patient, "1")

    def test_references_outside_the_ehr_are_not_followed(self, fhir_server) -> None:
        client = FHIRHTTPClient(fhir_server.base_url)
        with pytest.raises(EHRPermanentError, match="outside the EHR base"):
            client.read_reference("http://169.254.169.254/latest/meta-data/Patient/1")
