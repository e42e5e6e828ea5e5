"""Settings.from_env: defaults, parsing, and fail-fast messages naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_service.auth import Interaction, scope_grants
from fhir_service.errors import SettingsError
from fhir_service.settings import (
    DEFAULT_EHR_SCOPES,
    DEFAULT_ORDER_CODES,
    AppropriatenessPolicy,
    OrderCode,
    ReportCategory,
    ReportStatus,
    Settings,
)


@pytest.fixture
def auth_env(tmp_path: Path) -> dict[str, str]:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    return {
        "CAC_JWKS_FILE": str(jwks),
        "CAC_TOKEN_ISSUER": "https://issuer",
        "CAC_TOKEN_AUDIENCE": "https://cac/fhir",
    }


class TestFromEnv:
    def test_defaults_under_the_data_dir(self, auth_env: dict[str, str]) -> None:
        settings = Settings.from_env({**auth_env, "CAC_DATA_DIR": "/srv/cac"})
        assert settings.database_url == "sqlite:////srv/cac/service.sqlite"
        assert settings.broker_url == "sqla+sqlite:////srv/cac/broker.sqlite"
        assert settings.order_codes == DEFAULT_ORDER_CODES
        assert settings.report_status is ReportStatus.PRELIMINARY
        assert settings.report_category is ReportCategory.RADIOLOGY
        assert settings.appropriateness_policy is AppropriatenessPolicy.FLAG
        assert not settings.auth_disabled

    def test_values_are_parsed(self, auth_env: dict[str, str]) -> None:
        settings = Settings.from_env(
            {
                **auth_env,
                "CAC_DATABASE_URL": "postgresql+psycopg://cac@db/cac",
                "CAC_BROKER_URL": "redis://broker:6379/0",
                "CAC_ORDER_CODES": "urn:local|CAC1, urn:local|CAC2",
                "CAC_PACS_ALLOWLIST": "https://pacs-a/dicom-web https://pacs-b/wado/",
                "CAC_EHR_BASE_URL": "https://ehr.example.org/fhir/",
                "CAC_MAX_BODY_BYTES": "2048",
                "CAC_REPORT_STATUS": "final",
                "CAC_REPORT_CATEGORY": "Cardiology",
                "CAC_APPROPRIATENESS_POLICY": "reject",
            }
        )
        assert settings.order_codes[-2:] == (
            OrderCode("urn:local", "CAC1"),
            OrderCode("urn:local", "CAC2"),
        )
        assert settings.pacs_allowlist == ("https://pacs-a/dicom-web", "https://pacs-b/wado")
        assert settings.ehr_base_url == "https://ehr.example.org/fhir"
        assert settings.max_body_bytes == 2048
        assert settings.report_status is ReportStatus.FINAL
        assert settings.report_category is ReportCategory.CARDIOLOGY
        assert settings.appropriateness_policy is AppropriatenessPolicy.REJECT

    def test_secrets_are_not_in_repr(self, auth_env: dict[str, str]) -> None:
        settings = Settings.from_env({**auth_env, "CAC_EHR_TOKEN": "s3cr3t-token"})
        assert settings.ehr_token == "s3cr3t-token"
        assert "s3cr3t-token" not in repr(settings)

    def test_auth_disabled_needs_nothing_else(self) -> None:
        assert Settings.from_env({"CAC_AUTH_DISABLED": "1"}).auth_disabled

    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({"CAC_TOKEN_ISSUER": ""}, "CAC_TOKEN_ISSUER"),
            ({"CAC_TOKEN_AUDIENCE": ""}, "CAC_TOKEN_AUDIENCE"),
            ({"CAC_JWKS_FILE": ""}, "CAC_JWKS_FILE or CAC_JWKS_URL"),
            ({"CAC_JWKS_FILE": "/nonexistent/jwks.json"}, "CAC_JWKS_FILE"),
            ({"CAC_AUTH_DISABLED": "maybe"}, "CAC_AUTH_DISABLED"),
            ({"CAC_MAX_BODY_BYTES": "lots"}, "CAC_MAX_BODY_BYTES"),
            ({"CAC_MAX_BODY_BYTES": "0"}, "CAC_MAX_BODY_BYTES"),
            ({"CAC_REPORT_STATUS": "amended"}, "CAC_REPORT_STATUS"),
            ({"CAC_REPORT_CATEGORY": "lab"}, "CAC_REPORT_CATEGORY"),
            ({"CAC_APPROPRIATENESS_POLICY": "ignore"}, "CAC_APPROPRIATENESS_POLICY"),
            ({"CAC_ORDER_CODES": "79087-3"}, "CAC_ORDER_CODES"),
            ({"CAC_PACS_ALLOWLIST": "pacs.local/dicom-web"}, "CAC_PACS_ALLOWLIST"),
            ({"CAC_EHR_BASE_URL": "ftp://ehr"}, "CAC_EHR_BASE_URL"),
            ({"CAC_JWKS_URL": "not a url"}, "CAC_JWKS_URL"),
            ({"CAC_DATABASE_URL": "service.sqlite"}, "CAC_DATABASE_URL"),
            ({"CAC_BROKER_URL": "localhost:6379"}, "CAC_BROKER_URL"),
            ({"CAC_EHR_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "CAC_EHR_PRIVATE_KEY_FILE"),
        ],
    )
    def test_bad_values_fail_fast_naming_the_variable(
        self, auth_env: dict[str, str], change: dict[str, str], named: str
    ) -> None:
        with pytest.raises(SettingsError, match=named):
            Settings.from_env({**auth_env, **change})

    @pytest.mark.parametrize(
        ("drop", "add", "named"),
        [
            ("CAC_EHR_CLIENT_ID", {}, "CAC_EHR_CLIENT_ID is not set"),
            ("CAC_EHR_TOKEN_URL", {}, "CAC_EHR_TOKEN_URL is not set"),
            ("CAC_EHR_PRIVATE_KEY_FILE", {}, "CAC_EHR_PRIVATE_KEY_FILE is not set"),
            (None, {"CAC_EHR_TOKEN": "static"}, "not both"),
        ],
    )
    def test_one_ehr_authentication_configured_completely(
        self,
        auth_env: dict[str, str],
        tmp_path: Path,
        drop: str | None,
        add: dict[str, str],
        named: str,
    ) -> None:
        key_file = tmp_path / "key.pem"
        key_file.write_text("-----BEGIN PRIVATE KEY-----\n")
        smart = {
            "CAC_EHR_BASE_URL": "https://ehr.example.org/fhir",
            "CAC_EHR_TOKEN_URL": "https://ehr.example.org/token",
            "CAC_EHR_CLIENT_ID": "cac",
            "CAC_EHR_PRIVATE_KEY_FILE": str(key_file),
        }
        assert Settings.from_env({**auth_env, **smart}).ehr_client_id == "cac"
        env = {**auth_env, **{k: v for k, v in smart.items() if k != drop}, **add}
        with pytest.raises(SettingsError, match=named):
            Settings.from_env(env)


#: Every EHR access of the service and the pipeline, with where it happens (the integration test
#: tests/workers/test_ehr_scopes.py checks the same against a scope-enforcing EHR).
EHR_ACCESSES = [
    ("ServiceRequest", Interaction.READ, "fhir_service.api: id-only notification"),
    ("Patient", Interaction.READ, "workers.job OrderJob.run"),
    ("ImagingStudy", Interaction.READ, "workers.job OrderJob._imaging_study"),
    ("Endpoint", Interaction.READ, "workers.job OrderJob._pacs_base"),
    ("Observation", Interaction.SEARCH, "workers.context observations, read_prior_scores"),
    ("Condition", Interaction.SEARCH, "workers.context read_patient_context"),
    ("Procedure", Interaction.SEARCH, "workers.context read_patient_context"),
    ("MedicationRequest", Interaction.SEARCH, "workers.context read_patient_context"),
    ("FamilyMemberHistory", Interaction.SEARCH, "workers.context read_patient_context"),
    ("DiagnosticReport", Interaction.SEARCH, "workers.job OrderJob.run (already posted?)"),
    ("Device", Interaction.SEARCH, "workers.job OrderJob._post_sequentially"),
    ("Observation", Interaction.CREATE, "workers.job OrderJob._post_results"),
    ("DiagnosticReport", Interaction.CREATE, "workers.job OrderJob._post_results"),
    ("Device", Interaction.CREATE, "workers.job OrderJob._post_results"),
    ("Provenance", Interaction.CREATE, "workers.job OrderJob._post_results"),
]


class TestEHRScopes:
    def test_default_and_override(self) -> None:
        assert Settings.from_env({"CAC_AUTH_DISABLED": "1"}).ehr_scopes == " ".join(
            DEFAULT_EHR_SCOPES
        )
        settings = Settings.from_env(
            {"CAC_AUTH_DISABLED": "1", "CAC_EHR_SCOPES": "system/Patient.r"}
        )
        assert settings.ehr_scopes == "system/Patient.r"

    @pytest.mark.parametrize(("resource_type", "interaction", "where"), EHR_ACCESSES)
    def test_default_grants_each_access(
        self, resource_type: str, interaction: Interaction, where: str
    ) -> None:
        assert scope_grants(DEFAULT_EHR_SCOPES, resource_type, interaction), where

    def test_default_names_no_other_resource_type(self) -> None:
        types = {scope.removeprefix("system/").partition(".")[0] for scope in DEFAULT_EHR_SCOPES}
        assert types == {t for t, _, _ in EHR_ACCESSES}
        assert "Task" not in types  # the Task lives in this service, not in the EHR

    @pytest.mark.parametrize("scope", DEFAULT_EHR_SCOPES)
    def test_default_scopes_are_smart_v2_and_grant_every_letter(self, scope: str) -> None:
        resource_type, _, letters = scope.removeprefix("system/").partition(".")
        assert scope.startswith("system/")
        assert letters
        assert "".join(sorted(letters, key="cruds".index)) == letters  # SMART v2 order
        for letter in letters:
            assert scope_grants([scope], resource_type, Interaction(letter))
