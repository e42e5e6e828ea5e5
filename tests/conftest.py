"""Session fixtures for the real peers: a PACS (Orthanc + DICOMweb), an EHR (a FHIR R4 server) and
a broker (Redis).

Each starts once per test session on free loopback ports in temporary folders and is stopped by its
PID at the end. A peer that is not installed or does not become ready fails the test that asked
for it with the server's log tail (never a skip); see ``tests/peers/servers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.servers import FHIRServer, OrthancServer, RedisServer


@pytest.fixture(scope="session")
def orthanc() -> Iterator[OrthancServer]:
    """A running Orthanc PACS with the DICOMweb plugin (``.dicomweb_url``, ``.auth``)."""
    server = OrthancServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FHIRServer]:
    """A running FHIR R4 server (``.base_url``) that validates what it stores."""
    server = FHIRServer()
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A running, durable (append-only) Redis (``.url``) for Celery."""
    server = RedisServer(durable=True)
    try:
        yield server.start()
    finally:
        server.cleanup()
