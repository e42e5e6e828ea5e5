"""The EHR client: read and write FHIR R4 resources (``fhir.resources.R4B`` models in and out).

:class:`EHRClient` is the port the job uses; :class:`FHIRHTTPClient` implements it over HTTP with
``requests``, a per-request ``(connect, read)`` timeout, and authentication by either a static
bearer token (:class:`StaticToken`, for test servers) or SMART Backend Services
(:class:`SMARTBackendAuth`: ``client_credentials`` grant with a ``private_key_jwt`` client
assertion signed RS384 or ES384, the token cached until shortly before it expires; the one
implementation is :class:`fhir_service.ehr.BackendServicesToken`, wrapped here).

HTTP failures become our own errors (:mod:`workers.errors`) that keep the server's
``OperationOutcome``: 429/502/503/504 and timeouts are transient, the rest permanent.

References
----------
HL7 SMART App Launch 2.x, Backend Services (client_credentials, ``private_key_jwt``; assertion
``iss`` = ``sub`` = client id, ``aud`` = token URL, ``exp`` at most 5 minutes, unique ``jti``).
FHIR R4 RESTful API (http://hl7.org/fhir/R4/http.html): read, search, create, update, transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import requests
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource

from fhir_service.ehr import BACKEND_SERVICES_ALGORITHMS, BackendServicesToken
from fhir_service.errors import SettingsError, TokenEndpointError
from fhir_service.settings import DEFAULT_EHR_SCOPES
from workers.errors import (
    AuthenticationError,
    ConfigurationError,
    EHRNotFoundError,
    EHRPermanentError,
    EHRTransientError,
)

R = TypeVar("R", bound=Resource)

FHIR_JSON = "application/fhir+json"
#: HTTP statuses worth retrying: rate limited, bad gateway, unavailable, gateway timeout.
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})


class EHRClient(Protocol):
    """What the pipeline needs from an EHR's FHIR R4 API."""

    base_url: str

    def read(self, model: type[R], resource_id: str) -> R:
        """``GET [base]/{type}/{id}`` parsed as ``model``."""
        ...

    def read_reference(self, reference: str) -> Resource:
        """Resolve a relative (``Patient/1``) or same-server absolute reference."""
        ...

    def search(self, model: type[R], params: Mapping[str, str | Sequence[str]]) -> list[R]:
        """``GET [base]/{type}?params``: the matching resources (first page, ``_count`` large)."""
        ...

    def create(self, resource: R) -> R:
        """``POST [base]/{type}``; returns the stored resource."""
        ...

    def update(self, resource: R) -> R:
        """``PUT [base]/{type}/{id}``; returns the stored resource."""
        ...

    def transaction(self, bundle: Bundle) -> Bundle:
        """``POST [base]`` with a transaction Bundle; returns the transaction-response Bundle."""
        ...


class TokenProvider(Protocol):
    """Gives the bearer token for the next request (``None``: no Authorization header)."""

    def token(self, session: requests.Session, timeout_s: tuple[float, float]) -> str | None: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StaticToken:
    """A fixed bearer token (test servers, or a token minted elsewhere); ``None`` for no auth."""

    value: str | None = None

    def token(self, session: requests.Session, timeout_s: tuple[float, float]) -> str | None:
        return self.value

    def invalidate(self) -> None:
        """A static token cannot be refreshed."""


class SMARTBackendAuth:
    """SMART Backend Services for the pipeline: :class:`fhir_service.ehr.BackendServicesToken`
    (the project's one implementation) with its errors translated to the pipeline's.

    Parameters
    ----------
    token_url
        The EHR's OAuth2 token endpoint (from ``.well-known/smart-configuration``).
    client_id
        The registered client id (the assertion's ``iss`` and ``sub``).
    private_key_pem
        The PEM private key registered (as a JWK Set) with the EHR: RSA or EC P-384.
    algorithm
        ``RS384`` or ``ES384`` to insist on (it must match the key); None takes the key's.
    scopes
        ``system/`` scopes, space-separated (``CAC_EHR_SCOPES``); the default is
        :data:`fhir_service.settings.DEFAULT_EHR_SCOPES`, what the pipeline uses.
    key_id
        The ``kid`` of the key in the registered JWK Set, if any.
    timeout_s
        ``CAC_EHR_TIMEOUT_S``: read timeout of a token request made without the client's own
        (connect: at most 5 s). :meth:`token` uses the ``(connect, read)`` timeout it is given.

    Raises
    ------
    ConfigurationError
        When the algorithm is not one of :attr:`ALGORITHMS` or not the key's, the token URL is
        not http(s), the scopes are empty, or the key is unreadable.
    """

    ALGORITHMS = BACKEND_SERVICES_ALGORITHMS

    #: The token source; its ``token_url``, ``client_id``, ``algorithm``, ``scopes`` and ``key_id``
    #: are the settings in force.
    source: BackendServicesToken

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_pem: str | bytes,
        *,
        algorithm: str | None = None,
        scopes: str = " ".join(DEFAULT_EHR_SCOPES),
        key_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if algorithm is not None and algorithm not in self.ALGORITHMS:
            raise ConfigurationError(
                f"SMART client assertion algorithm must be one of {self.ALGORITHMS}, "
                f"got {algorithm!r}"
            )
        try:
            self.source = BackendServicesToken(
                token_url,
                client_id,
                private_key_pem,
                key_id=key_id,
                scopes=scopes,
                timeout_s=timeout_s,
            )
        except SettingsError as exc:
            raise ConfigurationError(str(exc)) from None
        if algorithm is not None and algorithm != self.source.algorithm:
            raise ConfigurationError(
                f"SMART client assertion algorithm {algorithm} does not fit the key "
                f"in CAC_EHR_PRIVATE_KEY_FILE, which signs {self.source.algorithm}"
            )

    def client_assertion(self, now: float | None = None) -> str:
        """A signed JWT asserting our identity to the token endpoint (valid 5 minutes)."""
        return self.source.client_assertion(now)

    def token(self, session: requests.Session, timeout_s: tuple[float, float]) -> str | None:
        """A valid access token, fetched over ``session`` when none is cached or it is about
        to expire.

        Raises
        ------
        EHRTransientError
            The token endpoint is unreachable or answered 408, 425, 429, 500 or 502-504.
        AuthenticationError
            It refused the client assertion or answered without an access token.
        """
        try:
            return self.source.get(session=session, timeout=timeout_s)
        except TokenEndpointError as exc:
            if exc.transient:
                raise EHRTransientError(str(exc), status=exc.status) from exc
            raise AuthenticationError(str(exc)) from exc

    def invalidate(self) -> None:
        self.source.invalidate()


def _outcome_text(outcome: Mapping[str, Any] | None) -> str:
    if not outcome:
        return ""
    parts = []
    for issue in outcome.get("issue", []) or []:
        text = (
            (issue.get("details") or {}).get("text")
            or issue.get("diagnostics")
            or issue.get("code")
        )
        where = ",".join(issue.get("expression", []) or [])
        parts.append(f"{text} ({where})" if where else str(text))
    return "; ".join(parts)


def parse_resource(payload: Mapping[str, Any]) -> Resource:
    """Parse FHIR JSON into the R4B model its ``resourceType`` names.

    Raises
    ------
    EHRPermanentError
        When the JSON is not a valid R4 resource of a known type.
    """
    resource_type = payload.get("resourceType")
    try:
        model = get_fhir_model_class(str(resource_type))
        parsed = model.model_validate(dict(payload))
    except (KeyError, ValueError) as exc:
        raise EHRPermanentError(
            f"EHR sent a resource that is not valid FHIR R4 {resource_type}: {exc}", status=200
        ) from exc
    if not isinstance(parsed, Resource):
        raise EHRPermanentError(f"EHR sent {resource_type}, which is not a resource", status=200)
    return parsed


class FHIRHTTPClient:
    """:class:`EHRClient` over HTTP with ``requests``.

    Parameters
    ----------
    base_url
        The FHIR base, e.g. ``https://ehr.example.org/fhir/R4``.
    auth
        A :class:`StaticToken` or :class:`SMARTBackendAuth`.
    timeout_s
        ``(connect, read)`` seconds for every request.
    session
        A ``requests.Session`` to reuse (one per process).
    """

    def __init__(
        self,
        base_url: str,
        auth: TokenProvider | None = None,
        *,
        timeout_s: tuple[float, float] = (5.0, 30.0),
        session: requests.Session | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"EHR base URL must be http(s), got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.auth: TokenProvider = auth or StaticToken()
        self.timeout_s = timeout_s
        self.session = session or requests.Session()

    # -- plumbing -------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": FHIR_JSON}
        if json_body is not None:
            headers["Content-Type"] = FHIR_JSON
        for attempt in (1, 2):
            token = self.auth.token(self.session, self.timeout_s)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=self.timeout_s,
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise EHRTransientError(
                    f"EHR {method} {self._short(url)} failed: {type(exc).__name__}", status=0
                ) from exc
            if response.status_code == 401 and attempt == 1:
                # an expired or revoked token: fetch a new one once
                self.auth.invalidate()
                continue
            break
        return self._decode(method, url, response)

    def _short(self, url: str) -> str:
        return url[len(self.base_url) :] if url.startswith(self.base_url) else url

    def _decode(self, method: str, url: str, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code < 300:
            return body
        outcome = body if body.get("resourceType") == "OperationOutcome" else None
        detail = _outcome_text(outcome) or response.reason or ""
        reason = (
            f"EHR {method} {self._short(url)} answered {response.status_code}: {detail}".rstrip(
                ": "
            )
        )
        status = response.status_code
        if status in TRANSIENT_STATUSES:
            raise EHRTransientError(reason, status=status, operation_outcome=outcome)
        if status in (401, 403):
            raise AuthenticationError(reason)
        if status in (404, 410):
            raise EHRNotFoundError(reason, status=status, operation_outcome=outcome)
        raise EHRPermanentError(reason, status=status, operation_outcome=outcome)

    def _url(self, *parts: str) -> str:
        return "/".join([self.base_url, *parts])

    # -- the port -------------------------------------------------------------------------------
    def read(self, model: type[R], resource_id: str) -> R:
        resource_type = model.get_resource_type()
        body = self._request("GET", self._url(resource_type, resource_id))
        return self._as(model, body)

    def read_reference(self, reference: str) -> Resource:
        """Resolve ``Type/id`` (relative) or ``{base}/Type/id`` (absolute, same server only)."""
        ref = reference
        if ref.startswith(("http://", "https://")):
            if not ref.startswith(self.base_url + "/"):
                raise EHRPermanentError(
                    f"reference {reference!r} points outside the EHR base {self.base_url}; "
                    "refusing to follow it",
                    status=0,
                )
            ref = ref[len(self.base_url) + 1 :]
        parts = ref.split("/")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise EHRPermanentError(f"cannot resolve reference {reference!r}", status=0)
        body = self._request("GET", self._url(parts[0], parts[1]))
        return parse_resource(body)

    def search(self, model: type[R], params: Mapping[str, str | Sequence[str]]) -> list[R]:
        query: dict[str, str | Sequence[str]] = {"_count": "200", **params}
        body = self._request("GET", self._url(model.get_resource_type()), params=query)
        out: list[R] = []
        for entry in body.get("entry", []) or []:
            resource = entry.get("resource") or {}
            if resource.get("resourceType") == model.get_resource_type():
                out.append(self._as(model, resource))
        return out

    def create(self, resource: R) -> R:
        body = self._request(
            "POST",
            self._url(resource.get_resource_type()),
            json_body=resource.model_dump(mode="json", exclude_none=True),
        )
        return self._as(type(resource), body)

    def update(self, resource: R) -> R:
        if not resource.id:
            raise EHRPermanentError(
                f"cannot update a {resource.get_resource_type()} without id", status=0
            )
        body = self._request(
            "PUT",
            self._url(resource.get_resource_type(), str(resource.id)),
            json_body=resource.model_dump(mode="json", exclude_none=True),
        )
        return self._as(type(resource), body)

    def transaction(self, bundle: Bundle) -> Bundle:
        body = self._request(
            "POST", self.base_url, json_body=bundle.model_dump(mode="json", exclude_none=True)
        )
        return self._as(Bundle, body)

    @staticmethod
    def _as(model: type[R], body: Mapping[str, Any]) -> R:
        try:
            return model.model_validate(dict(body))
        except ValueError as exc:
            raise EHRPermanentError(
                f"EHR answered with something that is not a valid {model.get_resource_type()}: "
                f"{str(exc).splitlines()[0]}",
                status=200,
            ) from exc
