"""Fixtures for the FHIR service tests: signing keys and tokens, databases, apps, clients.

``backend`` runs a test on SQLite (a fresh file) and on the PostgreSQL on localhost:5432 (a
database created for this session and dropped at its end). PostgreSQL that cannot be reached
fails the test, never skips it.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from fhir_service.app import create_app
from fhir_service.ehr import EHRReader
from fhir_service.settings import Settings
from fhir_service.storage import make_engine, migrate

ISSUER = "https://auth.example-hospital.org"
AUDIENCE = "https://cac.example-hospital.org/fhir"
PG_ADMIN_DSN = "host=localhost port=5432 user=postgres dbname=postgres"
ALL_SCOPES = "system/ServiceRequest.c system/Task.rs"


@dataclass
class Keys:
    """Signing keys: the issuer's (in the JWKS) and a stranger's with the same key id."""

    rsa: Any
    ec: Any
    stranger: Any
    jwks_path: Path

    def token(
        self,
        *,
        scope: str | list[str] | None = ALL_SCOPES,
        algorithm: str = "RS384",
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        expires_in: int = 300,
        not_before: int | None = None,
        key: Any = None,
        kid: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": "ehr-client",
            "aud": audience,
            "exp": now + expires_in,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        if scope is not None:
            claims["scope" if isinstance(scope, str) else "scp"] = scope
        if not_before is not None:
            claims["nbf"] = now + not_before
        claims.update(extra or {})
        if key is None:
            key = self.ec if algorithm.startswith("ES") else self.rsa
        if kid is None:
            kid = "ec-1" if algorithm.startswith("ES") else "rsa-1"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def bearer(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    rsa_jwk.update(kid="rsa-1", use="sig")
    ec_jwk.update(kid="ec-1", use="sig")
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    return Keys(rsa_key, ec_key, stranger, path)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (dropped at the end)."""
    name = f"cac_fhir_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        clusters = list(Path("/etc/postgresql").glob("*"))
        if clusters:
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[0].name, "main", "start"],
                check=False,
                timeout=60,
            )
        try:
            admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            pytest.fail(f"PostgreSQL on localhost:5432 is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@localhost:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty schema, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.sqlite'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine)
    from fhir_service.storage.schema import metadata

    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()
    yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str, keys: Keys, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "CAC_DATA_DIR": str(tmp_path),
            "CAC_DATABASE_URL": database_url,
            "CAC_JWKS_FILE": str(keys.jwks_path),
            "CAC_TOKEN_ISSUER": ISSUER,
            "CAC_TOKEN_AUDIENCE": AUDIENCE,
            "CAC_PACS_ALLOWLIST": "https://pacs.example-hospital.org/dicom-web",
            "CAC_MAX_BODY_BYTES": "65536",
        }
    )


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(settings: Settings, engine: Engine) -> AppFactory:
    def factory(ehr_reader: EHRReader | None = None, **changes: Any) -> Flask:
        return create_app(replace(settings, **changes), engine=engine, ehr_reader=ehr_reader)

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def service_request(**overrides: Any) -> dict[str, Any]:
    """A valid calcium-score order (LOINC 79087-3) for Patient/p1 with a Study Instance UID."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "meta": {"versionId": "1"},
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}
                    ]
                },
                "system": "urn:oid:1.2.840.99999.1",
                "value": "ORD-0001",
            },
            {"system": "urn:dicom:uid", "value": "urn:oid:1.2.840.99999.2.1"},
        ],
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "79087-3"}]},
        "subject": {"reference": "Patient/p1"},
    }
    resource.update(overrides)
    return resource


def post_json(client: FlaskClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.post(
        path,
        data=json.dumps(body),
        headers={**headers, "Content-Type": "application/fhir+json"},
    )
