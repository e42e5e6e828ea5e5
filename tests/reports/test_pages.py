"""The pages blueprint in the real service app: signed links (valid, expired, altered, of another
kind, for a report not stored), the authenticated routes, the headers, and the configuration."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from fhir_service.app import create_app
from fhir_service.errors import SettingsError
from fhir_service.pages import PAGE_HEADERS, PageSettings
from fhir_service.settings import Settings
from reports.bundle import ReportArtefacts
from reports.links import PageKind, page_path, sign_page_token
from reports.store import ReportRecord, ReportStore

SECRET = "s3cret-for-tests-only-0123456789abcdef"
ISSUER = "https://auth.example-hospital.org"
AUDIENCE = "https://cac.example-hospital.org/fhir"
REPORT_ID = "task-7f3a"


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="rsa-1", use="sig")
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return key, path


def _bearer(key: Any, scope: str) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "portal",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "scope": scope,
    }
    token = jwt.encode(claims, key, algorithm="RS384", headers={"kid": "rsa-1"})
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(
    tmp_path: Path, signing_key: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv("CAC_PAGE_SECRET", SECRET)
    settings = Settings.from_env(
        {
            "CAC_DATA_DIR": str(tmp_path),
            "CAC_DATABASE_URL": f"sqlite:///{tmp_path / 'service.sqlite'}",
            "CAC_JWKS_FILE": str(signing_key[1]),
            "CAC_TOKEN_ISSUER": ISSUER,
            "CAC_TOKEN_AUDIENCE": AUDIENCE,
        }
    )
    ReportStore(tmp_path / "reports").save(
        REPORT_ID,
        ReportArtefacts(
            patient_html="<!DOCTYPE html><title>p</title><p>Your score is 42.</p>",
            clinician_html="<!DOCTYPE html><title>c</title><p>CAC-DRS A1/N1</p>",
            clinician_pdf=b"%PDF-1.4 test",
            key_images=[],
            key_image_captions=[],
        ),
        ReportRecord(
            patient_reference="Patient/p-42",
            diagnostic_report="https://ehr.example-hospital.org/fhir/DiagnosticReport/dr-9",
        ),
    )
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _token(kind: PageKind = PageKind.PATIENT, days: float = 30, report_id: str = REPORT_ID) -> str:
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)
    return sign_page_token(SECRET.encode(), report_id, kind, expires)


class TestSignedLinks:
    def test_valid_link_serves_the_stored_patient_page(self, client: FlaskClient) -> None:
        response = client.get(page_path(PageKind.PATIENT, _token()))
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        assert b"Your score is 42." in response.data
        for name, value in PAGE_HEADERS.items():
            assert response.headers[name] == value

    def test_clinician_html_and_pdf(self, client: FlaskClient) -> None:
        token = _token(PageKind.CLINICIAN)
        html = client.get(page_path(PageKind.CLINICIAN, token))
        assert html.status_code == 200
        assert b"CAC-DRS A1/N1" in html.data
        pdf = client.get(f"/pages/clinician/{token}/pdf")
        assert pdf.status_code == 200
        assert pdf.mimetype == "application/pdf"
        assert pdf.data == b"%PDF-1.4 test"

    def test_expired_link_is_410_and_friendly(self, client: FlaskClient) -> None:
        response = client.get(f"/pages/patient/{_token(days=-1)}")
        assert response.status_code == 410
        assert b"This link has expired" in response.data
        assert b"42" not in response.data
        assert response.headers["Cache-Control"] == "no-store"

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),
            lambda t: "x" + t[1:],
            lambda t: t.split(".")[0],
            lambda t: "not-a-token",
        ],
        ids=["signature", "payload", "no-signature", "garbage"],
    )
    def test_tampered_link_is_404_and_reveals_nothing(
        self, client: FlaskClient, mangle: Any
    ) -> None:
        response = client.get(f"/pages/patient/{mangle(_token())}")
        assert response.status_code == 404
        assert b"This link does not work" in response.data
        assert REPORT_ID.encode() not in response.data
        assert response.mimetype == "text/html"

    def test_patient_link_does_not_open_the_clinician_report(self, client: FlaskClient) -> None:
        assert client.get(f"/pages/clinician/{_token(PageKind.PATIENT)}").status_code == 404
        assert client.get(f"/pages/patient/{_token(PageKind.CLINICIAN)}").status_code == 404

    def test_link_to_a_report_not_stored_looks_like_a_wrong_link(self, client: FlaskClient) -> None:
        wrong = client.get("/pages/patient/not-a-token")
        missing = client.get(f"/pages/patient/{_token(report_id='other-report')}")
        assert missing.status_code == 404
        assert missing.data == wrong.data

    def test_link_signed_with_another_secret(self, client: FlaskClient) -> None:
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
        token = sign_page_token(
            b"another-secret-of-32-bytes-or-more!!", REPORT_ID, PageKind.PATIENT, expires
        )
        assert client.get(f"/pages/patient/{token}").status_code == 404


class TestAuthenticatedRoutes:
    def test_with_diagnostic_report_read(
        self, client: FlaskClient, signing_key: tuple[Any, Path]
    ) -> None:
        headers = _bearer(signing_key[0], "system/DiagnosticReport.r")
        response = client.get(f"/pages/reports/{REPORT_ID}/patient", headers=headers)
        assert response.status_code == 200
        assert b"Your score is 42." in response.data
        pdf = client.get(f"/pages/reports/{REPORT_ID}/clinician.pdf", headers=headers)
        assert pdf.mimetype == "application/pdf"

    def test_without_token_is_401(self, client: FlaskClient) -> None:
        response = client.get(f"/pages/reports/{REPORT_ID}/patient")
        assert response.status_code == 401
        assert response.json["resourceType"] == "OperationOutcome"

    def test_without_the_scope_is_403(
        self, client: FlaskClient, signing_key: tuple[Any, Path]
    ) -> None:
        headers = _bearer(signing_key[0], "system/Task.rs")
        assert client.get(f"/pages/reports/{REPORT_ID}/patient", headers=headers).status_code == 403

    @pytest.mark.parametrize("path", ["nope/patient", f"{REPORT_ID}/other", "..%2Fx/patient"])
    def test_unknown_is_404(
        self, client: FlaskClient, signing_key: tuple[Any, Path], path: str
    ) -> None:
        headers = _bearer(signing_key[0], "system/DiagnosticReport.r")
        response = client.get(f"/pages/reports/{path}", headers=headers)
        assert response.status_code == 404
        assert response.json["resourceType"] == "OperationOutcome"


class TestPageSettings:
    def test_secret_from_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "secret"
        path.write_text(SECRET + "\n")
        settings = PageSettings.from_env({"CAC_PAGE_SECRET_FILE": str(path)}, tmp_path)
        assert settings.secret == SECRET.encode()
        assert settings.reports_dir == tmp_path / "reports"
        assert SECRET not in repr(settings)

    def test_short_secret_fails_fast(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match="CAC_PAGE_SECRET must be at least 32 bytes"):
            PageSettings.from_env({"CAC_PAGE_SECRET": "short"}, tmp_path)

    def test_both_set(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match="only one"):
            PageSettings.from_env(
                {"CAC_PAGE_SECRET": SECRET, "CAC_PAGE_SECRET_FILE": "/x"}, tmp_path
            )

    def test_unreadable_file(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match="cannot be read"):
            PageSettings.from_env({"CAC_PAGE_SECRET_FILE": str(tmp_path / "none")}, tmp_path)

    def test_without_secret_every_link_is_404(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        monkeypatch.delenv("CAC_PAGE_SECRET", raising=False)
        monkeypatch.delenv("CAC_PAGE_SECRET_FILE", raising=False)
        settings = Settings.from_env(
            {
                "CAC_DATA_DIR": str(tmp_path),
                "CAC_DATABASE_URL": f"sqlite:///{tmp_path / 'service.sqlite'}",
                "CAC_AUTH_DISABLED": "1",
            }
        )
        with caplog.at_level("WARNING"):
            client = create_app(settings).test_client()
        assert "patient page links are disabled" in caplog.text
        assert client.get(f"/pages/patient/{_token()}").status_code == 404


def _audit_events(app: Flask) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = app.extensions["cac"].audit_store.recent()
    return events


class TestAuditTrail:
    def test_page_read_is_audited_against_the_patient_and_report(
        self, app: Flask, client: FlaskClient
    ) -> None:
        assert client.get(f"/pages/patient/{_token()}").status_code == 200
        event = _audit_events(app)[0]
        assert event["action"] == "R"
        assert event["outcome"] == "0"
        whats = [e["what"] for e in event["entity"]]
        assert {"reference": "Patient/p-42"} in whats
        assert {"reference": "https://ehr.example-hospital.org/fhir/DiagnosticReport/dr-9"} in whats

    @pytest.mark.parametrize(("days", "status"), [(-1, "410"), (30, "404")])
    def test_refused_link_is_audited_without_the_token(
        self, app: Flask, client: FlaskClient, days: float, status: str
    ) -> None:
        token = _token(days=days)
        if status == "404":
            token = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        client.get(f"/pages/patient/{token}")
        event = _audit_events(app)[0]
        assert event["outcome"] == "4"
        assert event["outcomeDesc"].startswith(f"HTTP {status}: page link")
        assert token not in json.dumps(event)
        assert "entity" not in event or all("Patient" not in json.dumps(e) for e in event["entity"])

    def test_authenticated_refusal_is_audited(self, app: Flask, client: FlaskClient) -> None:
        client.get(f"/pages/reports/{REPORT_ID}/patient")
        event = _audit_events(app)[0]
        assert event["outcome"] == "4"
        assert "401" in event["outcomeDesc"]

    def test_unreadable_record_shows_the_try_later_page(
        self, app: Flask, client: FlaskClient
    ) -> None:
        reports_dir = app.extensions["cac_pages"].reports_dir
        (reports_dir / REPORT_ID / "record.json").write_text("{not json")
        response = client.get(f"/pages/patient/{_token()}")
        assert response.status_code == 503
        assert b"not available right now" in response.data
        assert b"Your score is 42." not in response.data
