"""The API's access log never carries the token of a signed page link."""

from __future__ import annotations

import pytest

from fhir_service.gunicorn_conf import OPTIONS, redact_path


class TestRedactPath:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("/pages/patient/abc.def-123", "/pages/patient/<token>"),
            ("/pages/clinician/abc.def/pdf", "/pages/clinician/<token>/pdf"),
            ("/fhir/Task/42", "/fhir/Task/42"),
            ("/pages/reports/7/patient", "/pages/reports/7/patient"),
        ],
    )
    def test_tokens_are_removed(self, path: str, expected: str) -> None:
        assert redact_path(path) == expected

    def test_gunicorn_uses_the_redacting_logger(self) -> None:
        assert OPTIONS["logger_class"] == "fhir_service.gunicorn_conf.RedactingLogger"
