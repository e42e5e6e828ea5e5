"""The default EHR scopes (``fhir_service.settings.DEFAULT_EHR_SCOPES``) against what the code
really does: an order runs through a real worker process whose EHR is a proxy that enforces SMART
v2 ``system/`` scopes in front of the real test FHIR server (which enforces none), with a token
from a real SMART Backend Services token endpoint; the notification reader goes through the same
proxy. Every request is classified into (resource type, interaction) and refused with 403 when the
token's scopes do not grant it, so a missing default scope fails the order; the accesses seen must
also account for every default scope, so an unneeded one fails the test too."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_service.auth import Interaction, scope_grants
from fhir_service.ehr import HTTPEHRReader
from fhir_service.settings import DEFAULT_EHR_SCOPES
from tests.fhir_service.test_ehr import TokenServer, key_pair
from tests.peers.servers import FHIRServer

pytestmark = pytest.mark.integration

Access = tuple[str, Interaction]


def classify(method: str, path: str, query: str, body: bytes) -> set[Access]:
    """The (resource type, SMART interaction) pairs a FHIR REST request needs.

    ``path`` is relative to the FHIR base. A transaction or batch Bundle (``POST`` to the base)
    needs what each of its entries needs; a conditional create (``ifNoneExist``) needs a search
    as well as the create, the strict reading (the server searches on the client's behalf).
    HL7 FHIR R4 RESTful API (http://hl7.org/fhir/R4/http.html); SMART App Launch 2.0 scopes.
    """
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        if method != "POST":
            raise AssertionError(f"unexpected {method} on the FHIR base")
        bundle = json.loads(body)
        needs: set[Access] = set()
        for entry in bundle.get("entry", []):
            request = entry["request"]
            url = urllib.parse.urlsplit(request["url"])
            needs |= classify(request["method"], url.path, url.query, b"")
            if request.get("ifNoneExist"):
                needs.add((url.path.strip("/").split("/")[0], Interaction.SEARCH))
        return needs
    resource_type = parts[0]
    if method == "GET":
        return {(resource_type, Interaction.READ if len(parts) > 1 else Interaction.SEARCH)}
    if method == "POST" and len(parts) == 1:
        return {(resource_type, Interaction.CREATE)}
    if method == "POST" and parts[-1] == "_search":
        return {(resource_type, Interaction.SEARCH)}
    if method == "PUT":
        return {(resource_type, Interaction.UPDATE)}
    if method == "DELETE":
        return {(resource_type, Interaction.DELETE)}
    raise AssertionError(f"unexpected {method} {path}?{query}")


class ScopeEnforcingEHR:
    """A FHIR proxy on 127.0.0.1 that lets through only what the bearer token's scopes grant.

    Tokens are the ``token-N`` that :class:`TokenServer` issues; the scopes are those it was asked
    for. Refusals are 403 with an OperationOutcome (as an EHR answers ``insufficient_scope``) and
    are recorded in :attr:`denied`; granted accesses in :attr:`granted`.
    """

    def __init__(self, upstream: FHIRServer, tokens: TokenServer) -> None:
        self.upstream = upstream.base_url
        self.tokens = tokens
        self.granted: set[Access] = set()
        self.denied: list[tuple[str, str, Access]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.handle(self)

            def do_POST(self) -> None:
                outer.handle(self)

            def do_PUT(self) -> None:
                outer.handle(self)

            def do_DELETE(self) -> None:
                outer.handle(self)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        prefix = urllib.parse.urlsplit(self.upstream).path
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}{prefix}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def scopes_of(self, authorization: str | None) -> list[str] | None:
        token = (authorization or "").removeprefix("Bearer ")
        number = token.removeprefix("token-")
        if not token.startswith("token-") or not number.isdigit():
            return None
        index = int(number) - 1
        if not 0 <= index < len(self.tokens.assertions):
            return None
        return str(self.tokens.assertions[index]["scope"]).split()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0") or 0))
        url = urllib.parse.urlsplit(request.path)
        prefix = urllib.parse.urlsplit(self.base_url).path
        relative = url.path[len(prefix) :] if url.path.startswith(prefix) else url.path
        scopes = self.scopes_of(request.headers.get("Authorization"))
        if scopes is None:
            self._reply(request, 401, b'{"resourceType":"OperationOutcome","issue":[]}', {})
            return
        needs = classify(request.command, relative, url.query, body)
        missing = {a for a in needs if not scope_grants(scopes, a[0], a[1])}
        with self._lock:
            self.denied.extend((request.command, request.path, a) for a in missing)
            if not missing:
                self.granted |= needs
        if missing:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "error",
                        "code": "forbidden",
                        "diagnostics": f"insufficient_scope: system/{t}.{i.value}",
                    }
                    for t, i in sorted(missing)
                ],
            }
            self._reply(request, 403, json.dumps(outcome).encode(), {})
            return
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("accept", "content-type")
        }
        answer = requests.request(
            request.command,
            self.upstream + relative + (f"?{url.query}" if url.query else ""),
            data=body or None,
            headers=headers,
            timeout=30,
        )
        # the upstream's absolute URLs (fullUrl, Location) become the proxy's, as the EHR's own
        payload = answer.content.replace(self.upstream.encode(), self.base_url.encode())
        extra = {}
        if "Location" in answer.headers:
            extra["Location"] = answer.headers["Location"].replace(self.upstream, self.base_url)
        self._reply(request, answer.status_code, payload, extra)

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str]
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", "application/fhir+json")
        request.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def grants_needed(accesses: set[Access]) -> set[tuple[str, str]]:
    """(type, letter) pairs the accesses need, with ``r`` beside every ``s`` (the default's
    documented convention, as SMART v1 ``read``)."""
    out = {(t, i.value) for t, i in accesses}
    out |= {(t, "r") for t, i in accesses if i is Interaction.SEARCH}
    return out


def default_grants() -> set[tuple[str, str]]:
    """(type, letter) pairs :data:`DEFAULT_EHR_SCOPES` spells out."""
    out: set[tuple[str, str]] = set()
    for scope in DEFAULT_EHR_SCOPES:
        resource_type, _, letters = scope.removeprefix("system/").partition(".")
        out |= {(resource_type, letter) for letter in letters}
    return out


@pytest.fixture
def smart_ehr(
    fhir_server: FHIRServer, tmp_path: Path
) -> Iterator[tuple[ScopeEnforcingEHR, dict[str, str]]]:
    """The scope-enforcing proxy and the ``CAC_EHR_*`` variables that make the service and the
    workers use it with SMART Backend Services and no ``CAC_EHR_SCOPES`` (the default)."""
    private, public = key_pair("ES384")
    tokens = TokenServer(public, "ES384")
    key_file = tmp_path / "ehr-key.pem"
    key_file.write_text(private)
    proxy = ScopeEnforcingEHR(fhir_server, tokens)
    env = {
        "CAC_EHR_BASE_URL": proxy.base_url,
        "CAC_EHR_TOKEN_URL": tokens.url,
        "CAC_EHR_CLIENT_ID": "cac-pipeline",
        "CAC_EHR_PRIVATE_KEY_FILE": str(key_file),
    }
    try:
        yield proxy, env
    finally:
        proxy.close()
        tokens.close()


class TestClassify:
    @pytest.mark.parametrize(
        ("method", "path", "expected"),
        [
            ("GET", "/Patient/7", {("Patient", Interaction.READ)}),
            ("GET", "/Patient/7/_history/2", {("Patient", Interaction.READ)}),
            ("GET", "/Observation", {("Observation", Interaction.SEARCH)}),
            ("POST", "/Device", {("Device", Interaction.CREATE)}),
            ("PUT", "/Task/1", {("Task", Interaction.UPDATE)}),
        ],
    )
    def test_rest_interactions(self, method: str, path: str, expected: set[Access]) -> None:
        assert classify(method, path, "", b"") == expected

    def test_transaction_needs_what_its_entries_need(self) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"request": {"method": "POST", "url": "Device", "ifNoneExist": "identifier=a|b"}},
                {"request": {"method": "POST", "url": "Provenance"}},
            ],
        }
        assert classify("POST", "/", "", json.dumps(bundle).encode()) == {
            ("Device", Interaction.CREATE),
            ("Device", Interaction.SEARCH),
            ("Provenance", Interaction.CREATE),
        }


class TestDefaultScopes:
    def test_the_pipeline_runs_with_the_default_scopes_and_needs_each_of_them(
        self, pipeline_factory: Any, smart_ehr: tuple[ScopeEnforcingEHR, dict[str, str]]
    ) -> None:
        proxy, env = smart_ehr
        pipeline = pipeline_factory(**env)
        assert pipeline.settings.ehr_scopes == " ".join(DEFAULT_EHR_SCOPES)

        # an id-only notification: the service reads the order from the EHR
        first = pipeline.seed_order(pipeline.upload_study(seed=31))
        reader = HTTPEHRReader.from_settings(pipeline.settings)
        assert reader is not None
        assert reader.read(f"ServiceRequest/{first['id']}")["id"] == first["id"]

        pipeline.start_worker()
        # one order with a transaction Bundle, one with an EHR that refuses transactions
        # (each result searched by identifier, then created)
        record = pipeline.wait_task(pipeline.post_order(first), timeout_s=120)
        assert record.status.value == "completed", (record.status_reason, proxy.denied)
        second = pipeline.seed_order(pipeline.upload_study(seed=32))
        pipeline.fhir.inject_faults(refuse_transactions=True)
        try:
            record = pipeline.wait_task(pipeline.post_order(second), timeout_s=120)
        finally:
            pipeline.fhir.clear_faults()
        assert record.status.value == "completed", (record.status_reason, proxy.denied)

        assert proxy.denied == []
        assert all(scope_grants(DEFAULT_EHR_SCOPES, t, i) for t, i in proxy.granted)
        # and nothing more than the code uses: every default letter was needed
        assert grants_needed(proxy.granted) == default_grants(), sorted(proxy.granted)
        # the Task lives in the service, never in the EHR
        assert not any(t == "Task" for t, _ in proxy.granted)

    def test_a_scope_missing_from_the_token_fails_the_order_readably(
        self, pipeline_factory: Any, smart_ehr: tuple[ScopeEnforcingEHR, dict[str, str]]
    ) -> None:
        """The proxy does enforce: without Provenance.c the results cannot be posted."""
        proxy, env = smart_ehr
        scopes = " ".join(s for s in DEFAULT_EHR_SCOPES if not s.startswith("system/Provenance"))
        pipeline = pipeline_factory(**env, CAC_EHR_SCOPES=scopes)
        order = pipeline.seed_order(pipeline.upload_study(seed=33))
        pipeline.start_worker()
        record = pipeline.wait_task(pipeline.post_order(order), timeout_s=120)
        assert record.status.value == "failed"
        assert "403" in record.status_reason
        assert {a for _, _, a in proxy.denied} == {("Provenance", Interaction.CREATE)}
