"""``cac serve``: user errors are one line, ``--migrate-only`` prepares the database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.main import main
from fhir_service.storage import make_engine, schema_is_current


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CAC_"):
            monkeypatch.delenv(name)


def test_missing_auth_settings_fail_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAC_DATA_DIR", str(tmp_path))
    assert main(["serve", "--migrate-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cac: error: authentication is on but CAC_JWKS_FILE")
    assert err.count("\n") == 1


def test_bad_port_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAC_AUTH_DISABLED", "1")
    monkeypatch.setenv("CAC_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert main(["serve", "--migrate-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cac: error: cannot migrate the database")
    assert err.count("\n") == 1


def test_migrate_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAC_AUTH_DISABLED", "1")
    monkeypatch.setenv("CAC_DATA_DIR", str(tmp_path))
    assert main(["serve", "--migrate-only"]) == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'service.sqlite'}")
    try:
        assert schema_is_current(engine)
    finally:
        engine.dispose()
    assert "WARNING" not in capsys.readouterr().err
