"""The EHR reader: allow-listed URLs only, timeouts, static and SMART Backend Services tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_service.ehr import BackendServicesToken, HTTPEHRReader, resolve_url
from fhir_service.errors import EHRReadError, SettingsError
from fhir_service.settings import Settings
from tests.fhir_service.test_api import FakeEHR


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
