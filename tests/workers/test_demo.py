"""``cac demo`` runs an order end to end against local servers and exits 0."""

from __future__ import annotations

import json
import subprocess

import pytest

from workers.embedded import CAC_COMMAND

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_json_prints_the_posted_report() -> None:
    done = subprocess.run(
        [*CAC_COMMAND, "demo", "--json", "--timeout", "150"],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["resourceType"] == "DiagnosticReport"
    assert report["code"]["coding"][0]["code"] == "79087-3"
    assert report["conclusion"].startswith("Agatston ")
    assert len(report["presentedForm"]) == 4
