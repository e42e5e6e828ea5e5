"""The EHR reader (allow-listed URLs only, timeouts, static and SMART Backend Services tokens)
and the SMART Backend Services token source against a real token endpoint (a small OAuth2 server
here that verifies the client assertion with the public key, as an EHR does; the workers' EHR
client tests reuse it)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_service.ehr import (
    TOKEN_REFRESH_MARGIN_S,
    BackendServicesToken,
    HTTPEHRReader,
    TokenEndpointError,
    resolve_url,
)
from fhir_service.errors import EHRReadError, SettingsError
from fhir_service.settings import Settings
from tests.fhir_service.test_api import FakeEHR
from tests.peers.servers import free_port


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 answering each request with :meth:`respond`'s JSON."""

    content_type = "application/json"

    def __init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._reply(*outer.respond(self.path, self.headers.get("Authorization"), None))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._reply(*outer.respond(self.path, self.headers.get("Authorization"), body))

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def respond(
        self, path: str, authorization: str | None, body: bytes | None
    ) -> tuple[int, dict[str, Any]]:
        """``(status, JSON body)`` for a GET (``body`` None) or a POST."""
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TokenServer(LoopbackServer):
    """An OAuth2 token endpoint for ``client_credentials`` + ``private_key_jwt``.

    ``refuse`` answers 401 ``invalid_client``; ``override`` answers a fixed ``(status, body)``.
    """

    def __init__(self, public_pem: bytes, algorithm: str, expires_in: float = 300) -> None:
        self.public_pem = public_pem
        self.algorithm = algorithm
        self.expires_in = expires_in
        self.assertions: list[dict[str, Any]] = []
        self.refuse = False
        self.override: tuple[int, dict[str, Any]] | None = None
        super().__init__()
        self.url = f"{self.origin}/token"

    def respond(
        self, path: str, authorization: str | None, body: bytes | None
    ) -> tuple[int, dict[str, Any]]:
        return self.answer(urllib.parse.parse_qs((body or b"").decode()))

    def answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.override is not None:
            return self.override
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


def key_pair(kind: str) -> tuple[str, bytes]:
    """``(private PEM, public PEM)`` of a new RSA 2048 (``RS384``) or EC P-384 (``ES384``) key."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP384R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem(key).decode(), public


@pytest.fixture
def ehr() -> Iterator[FakeEHR]:
    server = FakeEHR()
    server.resources["/fhir/ServiceRequest/1"] = (200, {"resourceType": "ServiceRequest"})
    yield server
    server.close()


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestResolveURL:
    def test_relative_and_absolute_under_the_base(self) -> None:
        base = "https://ehr.example.org/fhir"
        assert resolve_url(base, "ServiceRequest/1") == f"{base}/ServiceRequest/1"
        assert resolve_url(base, f"{base}/ServiceRequest/1") == f"{base}/ServiceRequest/1"

    @pytest.mark.parametrize(
        "reference",
        [
            "https://ehr.example.org.evil.net/fhir/ServiceRequest/1",
            "https://ehr.example.org/fhirX/ServiceRequest/1",
            "http://169.254.169.254/latest",
            "/etc/passwd",
            "../admin",
        ],
    )
    def test_anything_else_is_refused(self, reference: str) -> None:
        with pytest.raises(EHRReadError) as caught:
            resolve_url("https://ehr.example.org/fhir", reference)
        assert not caught.value.transient


class TestHTTPEHRReader:
    def test_static_token(self, ehr: FakeEHR) -> None:
        reader = HTTPEHRReader(ehr.base_url, token="static-1", timeout_s=2)
        assert reader.read("ServiceRequest/1") == {"resourceType": "ServiceRequest"}
        assert ehr.authorizations == ["Bearer static-1"]

    def test_not_found_is_permanent_and_unreachable_is_transient(self, ehr: FakeEHR) -> None:
        with pytest.raises(EHRReadError) as missing:
            HTTPEHRReader(ehr.base_url, timeout_s=2).read("ServiceRequest/404")
        assert not missing.value.transient
        with pytest.raises(EHRReadError) as down:
            HTTPEHRReader("http://127.0.0.1:1/fhir", timeout_s=2).read("ServiceRequest/1")
        assert down.value.transient

    @pytest.mark.parametrize("kind", ["rsa", "ec"])
    def test_backend_services_token(self, ehr: FakeEHR, kind: str) -> None:
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP384R1())
        )
        token_url = ehr.base_url.replace("/fhir", "/token")
        source = BackendServicesToken(
            token_url, "cac-client", pem(key), key_id="k1", scopes="system/ServiceRequest.r"
        )
        reader = HTTPEHRReader(ehr.base_url, token=source, timeout_s=2)
        reader.read("ServiceRequest/1")
        reader.read("ServiceRequest/1")
        assert ehr.authorizations == ["Bearer tok-1", "Bearer tok-1"]  # cached
        (form,) = ehr.token_forms
        assert form["grant_type"] == ["client_credentials"]
        assert form["scope"] == ["system/ServiceRequest.r"]
        assertion = form["client_assertion"][0]
        assert jwt.get_unverified_header(assertion)["alg"] == (
            "RS384" if kind == "rsa" else "ES384"
        )
        claims = jwt.decode(
            assertion, key.public_key(), algorithms=["RS384", "ES384"], audience=token_url
        )
        assert claims["iss"] == claims["sub"] == "cac-client"
        assert claims["exp"] - claims["iat"] <= 300

    def test_from_settings_uses_backend_services(self, ehr: FakeEHR, tmp_path: Path) -> None:
        key_file = tmp_path / "key.pem"
        key_file.write_bytes(pem(ec.generate_private_key(ec.SECP384R1())))
        settings = Settings.from_env(
            {
                "CAC_AUTH_DISABLED": "1",
                "CAC_EHR_BASE_URL": ehr.base_url,
                "CAC_EHR_TOKEN_URL": ehr.base_url.replace("/fhir", "/token"),
                "CAC_EHR_CLIENT_ID": "cac-client",
                "CAC_EHR_PRIVATE_KEY_FILE": str(key_file),
            }
        )
        reader = HTTPEHRReader.from_settings(settings)
        assert reader is not None
        reader.read("ServiceRequest/1")
        assert ehr.authorizations == ["Bearer tok-1"]

    def test_bad_key_file_fails_fast(self) -> None:
        with pytest.raises(SettingsError):
            BackendServicesToken("https://t", "c", b"not a key", key_id=None, scopes="s")


@pytest.fixture
def token_server() -> Iterator[tuple[TokenServer, str]]:
    private, public = key_pair("ES384")
    server = TokenServer(public, "ES384")
    yield server, private
    server.close()


class TestTokenEndpointError:
    def test_lives_in_errors_and_is_still_importable_from_ehr(self) -> None:
        from fhir_service import ehr, errors

        assert ehr.TokenEndpointError is errors.TokenEndpointError is TokenEndpointError
        error = TokenEndpointError(
            "the EHR token endpoint answered HTTP 503", transient=True, status=503
        )
        assert isinstance(error, EHRReadError)
        assert (error.transient, error.status) == (True, 503)


class TestBackendServicesToken:
    def test_invalidate_fetches_a_new_token_with_a_fresh_jti(
        self, token_server: tuple[TokenServer, str]
    ) -> None:
        server, private = token_server
        source = BackendServicesToken(server.url, "cac-client", private, key_id=None, scopes="s")
        assert source() == source() == "token-1"
        source.invalidate()
        assert source() == "token-2"
        first, second = server.assertions
        assert first["jti"] != second["jti"]

    @pytest.mark.parametrize(
        ("expires_in", "fetches"),
        [(TOKEN_REFRESH_MARGIN_S + 30, 1), (TOKEN_REFRESH_MARGIN_S, 2)],
    )
    def test_cached_until_the_refresh_margin(
        self, token_server: tuple[TokenServer, str], expires_in: float, fetches: int
    ) -> None:
        server, private = token_server
        server.expires_in = expires_in
        source = BackendServicesToken(server.url, "cac-client", private, key_id=None, scopes="s")
        source()
        source()
        assert len(server.assertions) == fetches

    def test_scopes_are_sent_normalised(self, token_server: tuple[TokenServer, str]) -> None:
        server, private = token_server
        scopes = "  system/Patient.r\n system/Task.cru "
        BackendServicesToken(server.url, "c", private, key_id=None, scopes=scopes)()
        assert server.assertions[0]["scope"] == "system/Patient.r system/Task.cru"

    def test_refusal_names_the_endpoint_and_the_oauth_error_not_the_secrets(
        self, token_server: tuple[TokenServer, str]
    ) -> None:
        server, private = token_server
        server.override = (401, {"error": "invalid_client", "error_description": "unknown kid"})
        source = BackendServicesToken(
            server.url + "?tenant=s3cret", "c", private, key_id="k9", scopes="s"
        )
        with pytest.raises(TokenEndpointError) as info:
            source()
        message = str(info.value)
        assert f"the EHR token endpoint {server.url} refused the client assertion" in message
        assert "HTTP 401: invalid_client: unknown kid" in message
        assert "s3cret" not in message
        assert "eyJ" not in message  # no JWT (assertion or token)
        assert not info.value.transient
        assert info.value.status == 401

    def test_an_assertion_echoed_back_is_not_quoted(
        self, token_server: tuple[TokenServer, str]
    ) -> None:
        server, private = token_server
        source = BackendServicesToken(server.url, "c", private, key_id=None, scopes="s")
        echoed: list[str] = []

        def echo(form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
            echoed.append(form["client_assertion"][0])
            return 400, {"error": "invalid_request", "error_description": echoed[0]}

        server.answer = echo  # type: ignore[method-assign]
        with pytest.raises(TokenEndpointError) as info:
            source()
        assert len(echoed) == 1
        assert echoed[0] not in str(info.value)
        assert "[client assertion]" in str(info.value)

    @pytest.mark.parametrize("status", [429, 500, 503])
    def test_busy_endpoint_is_transient(
        self, token_server: tuple[TokenServer, str], status: int
    ) -> None:
        server, private = token_server
        server.override = (status, {"error": "temporarily_unavailable"})
        source = BackendServicesToken(server.url, "c", private, key_id=None, scopes="s")
        with pytest.raises(TokenEndpointError, match=f"answered HTTP {status}$") as info:
            source()
        assert info.value.transient
        assert info.value.status == status

    def test_answer_without_access_token_is_permanent(
        self, token_server: tuple[TokenServer, str]
    ) -> None:
        server, private = token_server
        server.override = (200, {"token_type": "bearer", "expires_in": 300})
        source = BackendServicesToken(server.url, "c", private, key_id=None, scopes="s")
        with pytest.raises(TokenEndpointError, match="without a usable access_token") as info:
            source()
        assert not info.value.transient

    def test_unreachable_endpoint_is_transient(self) -> None:
        private, _ = key_pair("RS384")
        url = f"http://127.0.0.1:{free_port()}/token"
        source = BackendServicesToken(url, "c", private, key_id=None, scopes="s", timeout_s=1)
        with pytest.raises(
            TokenEndpointError, match=r"cannot be reached \(ConnectionError\)"
        ) as info:
            source()
        assert info.value.transient
        assert info.value.status == 0

    def test_ec_key_must_be_p384(self) -> None:
        key = pem(ec.generate_private_key(ec.SECP256R1()))
        with pytest.raises(SettingsError, match="P-384"):
            BackendServicesToken("https://t", "c", key, key_id=None, scopes="s")

    @pytest.mark.parametrize(
        ("token_url", "scopes", "match"),
        [("ftp://t/token", "s", "http"), ("https://t/token", "  ", "CAC_EHR_SCOPES")],
    )
    def test_settings_are_checked_at_construction(
        self, token_url: str, scopes: str, match: str
    ) -> None:
        private, _ = key_pair("RS384")
        with pytest.raises(SettingsError, match=match):
            BackendServicesToken(token_url, "c", private, key_id=None, scopes=scopes)


class RevokingEHR(LoopbackServer):
    """A FHIR server that answers 401 to every bearer token but ``token-2``."""

    content_type = "application/fhir+json"

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        super().__init__()
        self.base_url = f"{self.origin}/fhir"

    def respond(
        self, path: str, authorization: str | None, body: bytes | None
    ) -> tuple[int, dict[str, Any]]:
        self.authorizations.append(authorization)
        if authorization == "Bearer token-2":
            return 200, {"resourceType": "ServiceRequest"}
        return 401, {"resourceType": "OperationOutcome"}


class TestReaderRenewsARevokedToken:
    def test_401_fetches_a_new_token_once(self, token_server: tuple[TokenServer, str]) -> None:
        server, private = token_server
        ehr = RevokingEHR()
        try:
            source = BackendServicesToken(server.url, "c", private, key_id=None, scopes="s")
            reader = HTTPEHRReader(ehr.base_url, token=source, timeout_s=2)
            assert reader.read("ServiceRequest/1") == {"resourceType": "ServiceRequest"}
            assert ehr.authorizations == ["Bearer token-1", "Bearer token-2"]
            source.invalidate()  # token-3 is refused too: one renewal, then the 401 stands
            with pytest.raises(EHRReadError, match="HTTP 401") as info:
                reader.read("ServiceRequest/1")
            assert not info.value.transient
            assert ehr.authorizations[2:] == ["Bearer token-3", "Bearer token-4"]
        finally:
            ehr.close()
