"""The EHR client against the real FHIR server, and SMART Backend Services against a real token
endpoint (the small OAuth2 server of ``tests/fhir_service/test_ehr.py``, which verifies the client
assertion with the public key as an EHR does; the token source itself is tested there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fhir.resources.R4B.patient import Patient

from fhir_service.settings import DEFAULT_EHR_SCOPES
from tests.fhir_service.test_ehr import TokenServer, key_pair
from tests.peers.servers import FHIRServer, free_port
from workers.ehr import FHIRHTTPClient, SMARTBackendAuth, StaticToken
from workers.errors import (
    AuthenticationError,
    ConfigurationError,
    EHRNotFoundError,
    EHRPermanentError,
    EHRTransientError,
)


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
        assert claims["scope"] == " ".join(DEFAULT_EHR_SCOPES)  # the one default

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

    def test_unreadable_key_fails_at_construction(self) -> None:
        with pytest.raises(ConfigurationError, match="not an unencrypted PEM key"):
            SMARTBackendAuth("https://ehr/token", "c", "not a key")

    def test_algorithm_must_fit_the_key(self) -> None:
        private, _ = key_pair("ES384")
        with pytest.raises(ConfigurationError, match="signs ES384"):
            SMARTBackendAuth("https://ehr/token", "c", private, algorithm="RS384")
        assert SMARTBackendAuth("https://ehr/token", "c", private).source.algorithm == "ES384"

    def test_token_url_must_be_http(self) -> None:
        private, _ = key_pair("RS384")
        with pytest.raises(ConfigurationError, match="http"):
            SMARTBackendAuth("file:///etc/token", "c", private)


class TestTokenEndpointErrors:
    """The token source's errors become the pipeline's: transient ones are retried."""

    def test_unavailable_endpoint_is_transient_with_its_status(self) -> None:
        private, public = key_pair("ES384")
        server = TokenServer(public, "ES384")
        server.override = (503, {"error": "temporarily_unavailable"})
        try:
            auth = SMARTBackendAuth(server.url, "cac-client", private)
            # the token is fetched before any FHIR request: no FHIR server is needed
            client = FHIRHTTPClient(f"http://127.0.0.1:{free_port()}/fhir", auth)
            with pytest.raises(EHRTransientError, match="answered HTTP 503") as info:
                client.search(Patient, {})
        finally:
            server.close()
        assert info.value.status == 503

    def test_unreachable_endpoint_is_transient(self) -> None:
        private, _ = key_pair("RS384")
        auth = SMARTBackendAuth(f"http://127.0.0.1:{free_port()}/token", "c", private)
        client = FHIRHTTPClient(f"http://127.0.0.1:{free_port()}/fhir", auth, timeout_s=(1, 1))
        with pytest.raises(EHRTransientError, match="cannot be reached") as info:
            client.read(Patient, "1")
        assert info.value.status == 0


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
