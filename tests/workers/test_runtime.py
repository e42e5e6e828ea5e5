"""``workers.runtime.build_ehr``: the EHR client from the settings, with the project's one SMART
Backend Services token source (key checks, default scopes, the configured timeout) against real
loopback token endpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fhir.resources.R4B.patient import Patient

from fhir_service.errors import TokenEndpointError
from fhir_service.settings import DEFAULT_EHR_SCOPES, Settings
from tests.fhir_service.test_ehr import LoopbackServer, TokenServer, key_pair, pem
from tests.peers.servers import free_port
from workers.ehr import SMARTBackendAuth, StaticToken
from workers.errors import ConfigurationError, EHRTransientError
from workers.runtime import build_ehr


class SlowTokenServer(LoopbackServer):
    """A token endpoint that answers only after :attr:`delay_s` (or when closed)."""

    delay_s = 5.0

    def __init__(self) -> None:
        self.released = threading.Event()
        super().__init__()
        self.url = f"{self.origin}/token"

    def respond(
        self, path: str, authorization: str | None, body: bytes | None
    ) -> tuple[int, dict[str, Any]]:
        self.released.wait(self.delay_s)
        return 503, {"error": "temporarily_unavailable"}

    def close(self) -> None:
        self.released.set()
        super().close()


def smart_settings(
    tmp_path: Path, token_url: str, private_pem: str | bytes, **extra: Any
) -> Settings:
    key_file = tmp_path / "ehr-key.pem"
    key_file.write_bytes(private_pem.encode() if isinstance(private_pem, str) else private_pem)
    return Settings(
        ehr_base_url=f"http://127.0.0.1:{free_port()}/fhir",
        ehr_token_url=token_url,
        ehr_client_id="cac-pipeline",
        ehr_private_key_file=key_file,
        **extra,
    )


@pytest.fixture
def slow_token_server() -> Iterator[SlowTokenServer]:
    server = SlowTokenServer()
    yield server
    server.close()


class TestBuildEHR:
    @pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
    def test_smart_settings_use_the_key_and_the_default_scopes(
        self, tmp_path: Path, algorithm: str
    ) -> None:
        private, public = key_pair(algorithm)
        server = TokenServer(public, algorithm)
        try:
            client = build_ehr(smart_settings(tmp_path, server.url, private, ehr_key_id="k1"))
            assert isinstance(client.auth, SMARTBackendAuth)
            token = client.auth.token(client.session, client.timeout_s)
        finally:
            server.close()
        assert token == "token-1"
        (claims,) = server.assertions  # verified with the public key by the server
        assert claims["scope"] == " ".join(DEFAULT_EHR_SCOPES)
        assert client.auth.source.algorithm == algorithm
        assert client.auth.source.key_id == "k1"

    def test_configured_scopes_are_requested(self, tmp_path: Path) -> None:
        private, public = key_pair("ES384")
        server = TokenServer(public, "ES384")
        try:
            settings = smart_settings(tmp_path, server.url, private, ehr_scopes="system/Patient.r")
            client = build_ehr(settings)
            client.auth.token(client.session, client.timeout_s)
        finally:
            server.close()
        assert server.assertions[0]["scope"] == "system/Patient.r"

    def test_configured_timeout_bounds_the_token_request(
        self, tmp_path: Path, slow_token_server: SlowTokenServer
    ) -> None:
        private, _ = key_pair("RS384")
        settings = smart_settings(tmp_path, slow_token_server.url, private, ehr_timeout_s=1.0)
        client = build_ehr(settings)
        assert client.timeout_s == (1.0, 1.0)
        started = time.monotonic()
        with pytest.raises(EHRTransientError, match=r"cannot be reached \(ReadTimeout\)"):
            client.read(Patient, "1")  # the token is fetched first, over the client's session
        assert isinstance(client.auth, SMARTBackendAuth)
        # and the token source's own default (a fetch without the client's timeout)
        with pytest.raises(TokenEndpointError, match=r"\(ReadTimeout\)"):
            client.auth.source()
        assert time.monotonic() - started < slow_token_server.delay_s

    @pytest.mark.parametrize(
        ("key", "match"),
        [
            (pem(ec.generate_private_key(ec.SECP256R1())), "RSA or EC P-384"),
            (b"not a key", "not an unencrypted PEM key"),
        ],
    )
    def test_a_key_that_cannot_sign_stops_the_start(
        self, tmp_path: Path, key: bytes, match: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=match):
            build_ehr(smart_settings(tmp_path, "https://ehr.example.org/token", key))

    def test_unreadable_key_file(self, tmp_path: Path) -> None:
        private, _ = key_pair("RS384")
        settings = smart_settings(tmp_path, "https://ehr.example.org/token", private)
        assert settings.ehr_private_key_file is not None
        settings.ehr_private_key_file.unlink()
        with pytest.raises(ConfigurationError, match="cannot read CAC_EHR_PRIVATE_KEY_FILE"):
            build_ehr(settings)

    def test_static_token_without_smart_settings(self) -> None:
        client = build_ehr(Settings(ehr_base_url="https://ehr.example.org/fhir", ehr_token="t"))
        assert isinstance(client.auth, StaticToken)
        assert client.auth.token(client.session, client.timeout_s) == "t"

    def test_missing_base_url(self) -> None:
        with pytest.raises(ConfigurationError, match="CAC_EHR_BASE_URL"):
            build_ehr(Settings())
