"""Worker settings and the ``cac worker`` command's start-up errors (one line, non-zero exit)."""

from __future__ import annotations

import os
import subprocess

import pytest

from workers.config import WorkerSettings
from workers.embedded import CAC_COMMAND
from workers.errors import ConfigurationError


class TestWorkerSettings:
    def test_defaults_are_consistent(self) -> None:
        settings = WorkerSettings.from_env({})
        assert settings.visibility_timeout_s > settings.task_time_limit_s
        assert settings.task_soft_time_limit_s < settings.task_time_limit_s

    def test_visibility_timeout_must_exceed_the_hard_limit(self) -> None:
        with pytest.raises(ConfigurationError, match="CAC_VISIBILITY_TIMEOUT_S"):
            WorkerSettings.from_env(
                {"CAC_TASK_TIME_LIMIT_S": "600", "CAC_VISIBILITY_TIMEOUT_S": "60"}
            )

    def test_malformed_number_names_the_variable(self) -> None:
        with pytest.raises(ConfigurationError, match="CAC_MAX_RETRIES must be a number"):
            WorkerSettings.from_env({"CAC_MAX_RETRIES": "many"})

    @pytest.mark.parametrize(("retries", "countdown"), [(0, 2.0), (1, 4.0), (3, 16.0), (12, 300.0)])
    def test_backoff_is_exponential_and_bounded(self, retries: int, countdown: float) -> None:
        assert WorkerSettings().retry_countdown_s(retries) == countdown


class TestWorkerCommand:
    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CAC_")}
        return subprocess.run(
            [*CAC_COMMAND, "worker"],
            env={**clean, "CAC_AUTH_DISABLED": "1", **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_missing_ehr_base_url(self) -> None:
        done = self.run()
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "cac: error: CAC_EHR_BASE_URL is not set: the worker cannot read or write the EHR"
        ]

    def test_inconsistent_limits(self) -> None:
        done = self.run(CAC_EHR_BASE_URL="http://127.0.0.1:9/fhir", CAC_VISIBILITY_TIMEOUT_S="5")
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1
        assert "CAC_VISIBILITY_TIMEOUT_S" in done.stderr
