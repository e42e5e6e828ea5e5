"""A small EHR reader: fetch the ServiceRequest a subscription notification points at.

Only URLs under ``CAC_EHR_BASE_URL`` are ever fetched (a notification naming another host is
refused: no server-side request forgery). Every request has connect/read timeouts. It sends the
static ``CAC_EHR_TOKEN`` or a SMART Backend Services token; the full EHR client (results) belongs
to the workers, which the web layer must not import. :class:`BackendServicesToken` is the one
SMART Backend Services token source of the project: the workers' EHR client reuses it.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_service.errors import EHRReadError, SettingsError
from fhir_service.errors import TokenEndpointError as TokenEndpointError  # re-exported
from fhir_service.mapping import FHIR_JSON
from fhir_service.settings import Settings

#: HTTP statuses after which a retry may succeed.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class EHRReader(Protocol):
    """Reads one resource from the EHR by reference."""

    def read(self, reference: str) -> dict[str, Any]:
        """The resource JSON; raises :class:`EHRReadError` on any failure."""
        ...


def resolve_url(base_url: str, reference: str) -> str:
    """Absolute URL of ``reference`` under ``base_url``.

    Raises
    ------
    EHRReadError
        An absolute reference outside ``base_url`` (not transient).
    """
    base = base_url.rstrip("/")
    if "://" in reference:
        if not reference.startswith(base + "/"):
            raise EHRReadError(
                "the notification references a resource outside CAC_EHR_BASE_URL; refused",
                transient=False,
            )
        return reference
    if reference.startswith("/") or ".." in reference.split("/"):
        raise EHRReadError("the reference is not a relative FHIR reference", transient=False)
    return f"{base}/{reference}"


#: The client-assertion algorithms SMART Backend Services requires servers to support, by key type.
BACKEND_SERVICES_ALGORITHMS = ("RS384", "ES384")
#: Refresh a cached access token this many seconds before the server says it expires.
TOKEN_REFRESH_MARGIN_S = 60.0
#: Lifetime of a client assertion; SMART allows at most five minutes.
ASSERTION_LIFETIME_S = 300
#: How much of an OAuth2 ``error_description`` an error message quotes.
_DESCRIPTION_CHARS = 200


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to quote in an error message."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class BackendServicesToken:
    """Access tokens from SMART Backend Services (``client_credentials`` + ``private_key_jwt``).

    The one implementation of the token fetch: the notification reader (:class:`HTTPEHRReader`)
    calls it, and the workers' EHR client wraps it (``workers.ehr.SMARTBackendAuth``) to translate
    its errors. The client assertion is signed RS384 (RSA key) or ES384 (EC P-384 key), with
    ``iss`` = ``sub`` = the client id, ``aud`` = the token URL, a 5-minute expiry and a unique
    ``jti``. Tokens are cached until :data:`TOKEN_REFRESH_MARGIN_S` before they expire (on the
    monotonic clock, so a wall-clock step cannot keep a stale token), dropped by
    :meth:`invalidate` (after an HTTP 401), and the token request never follows a redirect (the
    assertion goes to the registered endpoint only).

    Parameters
    ----------
    token_url, client_id, private_key_pem, key_id, scopes
        ``CAC_EHR_TOKEN_URL``, ``CAC_EHR_CLIENT_ID``, the contents of ``CAC_EHR_PRIVATE_KEY_FILE``,
        ``CAC_EHR_KEY_ID``, ``CAC_EHR_SCOPES`` (space-separated ``system/`` scopes; default
        :data:`fhir_service.settings.DEFAULT_EHR_SCOPES`).
    timeout_s
        Read timeout of the token request (connect: at most 5 s); a caller may pass its own.

    Raises
    ------
    SettingsError
        When the token URL is not http(s), the scopes are empty, or the key is not an unencrypted
        PEM RSA or EC P-384 private key.

    References
    ----------
    HL7 SMART App Launch 2.x, Backend Services
    (https://hl7.org/fhir/smart-app-launch/backend-services.html): token request and client
    assertion claims. RFC 7523 (JWT client assertions); RFC 6749 section 5.2 (error response).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_pem: bytes | str,
        *,
        key_id: str | None,
        scopes: str,
        timeout_s: float = 10.0,
    ) -> None:
        if not token_url.startswith(("https://", "http://")):
            raise SettingsError(
                f"CAC_EHR_TOKEN_URL must be an http(s) URL, got {_public_url(token_url)!r}"
            )
        if not scopes.split():
            raise SettingsError("CAC_EHR_SCOPES is empty: name the system/ scopes to request")
        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise SettingsError("CAC_EHR_PRIVATE_KEY_FILE is not an unencrypted PEM key") from None
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = "RS384"
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
            self.algorithm = "ES384"
        else:
            raise SettingsError(
                "CAC_EHR_PRIVATE_KEY_FILE must hold an RSA or EC P-384 private key "
                "(SMART Backend Services signs RS384 or ES384)"
            )
        self._key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = key
        self.token_url = token_url
        self.client_id = client_id
        self.key_id = key_id
        self.scopes = " ".join(scopes.split())
        self._timeout = (min(timeout_s, 5.0), timeout_s)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __call__(self) -> str:
        """A valid access token (fetched when none is cached or it is about to expire)."""
        return self.get()

    def get(
        self,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> str:
        """A valid access token, fetched when none is cached or it is about to expire.

        Parameters
        ----------
        session
            The caller's connection pool for the token request (default: a one-off one).
        timeout
            ``(connect, read)`` seconds for the token request (default: from ``timeout_s``).

        Raises
        ------
        TokenEndpointError
            When the token endpoint gives no usable token.
        """
        with self._lock:
            now = time.monotonic()
            if self._token is None or now >= self._expires_at - TOKEN_REFRESH_MARGIN_S:
                self._token, lifetime_s = self._fetch(session, timeout or self._timeout)
                self._expires_at = now + lifetime_s
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the EHR answered 401: it expired early or was revoked)."""
        with self._lock:
            self._token = None
            self._expires_at = 0.0

    def client_assertion(self, now: float | None = None) -> str:
        """A signed JWT asserting our identity to the token endpoint, valid five minutes.

        Parameters
        ----------
        now
            POSIX time of ``iat`` (default: the current time).
        """
        issued = int(time.time() if now is None else now)
        return jwt.encode(
            {
                "iss": self.client_id,
                "sub": self.client_id,
                "aud": self.token_url,
                "exp": issued + ASSERTION_LIFETIME_S,
                "iat": issued,
                "jti": uuid.uuid4().hex,
            },
            self._key,
            algorithm=self.algorithm,
            headers={"kid": self.key_id} if self.key_id else None,
        )

    def _fetch(
        self, session: requests.Session | None, timeout: tuple[float, float]
    ) -> tuple[str, float]:
        """``(access token, lifetime in seconds)`` from one token request."""
        endpoint = f"the EHR token endpoint {_public_url(self.token_url)}"
        assertion = self.client_assertion()
        form = {
            "grant_type": "client_credentials",
            "scope": self.scopes,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        post = session.post if session is not None else requests.post
        try:
            response = post(
                self.token_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise TokenEndpointError(
                f"{endpoint} cannot be reached ({type(exc).__name__})", transient=True, status=0
            ) from None
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if status != 200:
            if status in TRANSIENT_STATUSES:
                raise TokenEndpointError(
                    f"{endpoint} answered HTTP {status}", transient=True, status=status
                )
            raise TokenEndpointError(
                f"{endpoint} refused the client assertion (HTTP {status}"
                f"{_oauth_error(body, assertion)})",
                transient=False,
                status=status,
            )
        token = body.get("access_token")
        try:  # a number, or a numeric string as some servers send
            lifetime_s = float(body.get("expires_in", ASSERTION_LIFETIME_S))
        except (TypeError, ValueError):
            lifetime_s = math.nan
        if not isinstance(token, str) or not token or not math.isfinite(lifetime_s):
            raise TokenEndpointError(
                f"{endpoint} answered without a usable access_token and expires_in",
                transient=False,
                status=status,
            )
        return token, lifetime_s


def _oauth_error(body: dict[str, Any], assertion: str) -> str:
    """``": error: description"`` from an OAuth2 error response, shortened, never the assertion."""
    error = body.get("error")
    description = body.get("error_description")
    parts = [part for part in (error, description) if isinstance(part, str) and part]
    if not parts:
        return ""
    text = ": ".join(parts).replace(assertion, "[client assertion]")
    if len(text) > _DESCRIPTION_CHARS:
        text = text[:_DESCRIPTION_CHARS] + "..."
    return f": {text}"


class HTTPEHRReader:
    """:class:`EHRReader` over HTTP with ``requests``.

    Parameters
    ----------
    base_url
        FHIR base of the EHR (``CAC_EHR_BASE_URL``).
    token
        Bearer token to send (``CAC_EHR_TOKEN``), or a callable returning one per request
        (:class:`BackendServicesToken`), or None.
    timeout_s
        Connect and read timeout of each request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | Callable[[], str] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Accept"] = FHIR_JSON
        self._token = token
        self._timeout = (min(timeout_s, 5.0), timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> HTTPEHRReader | None:
        """The reader for ``CAC_EHR_BASE_URL`` (None when unset), authenticated with
        ``CAC_EHR_TOKEN`` or, when the token URL, client id and key file are set, SMART Backend
        Services (the settings allow only one of the two)."""
        if settings.ehr_base_url is None:
            return None
        token: str | Callable[[], str] | None = settings.ehr_token
        if (
            token is None
            and settings.ehr_token_url
            and settings.ehr_client_id
            and settings.ehr_private_key_file
        ):
            token = BackendServicesToken(
                settings.ehr_token_url,
                settings.ehr_client_id,
                settings.ehr_private_key_file.read_bytes(),
                key_id=settings.ehr_key_id,
                scopes=settings.ehr_scopes,
                timeout_s=settings.ehr_timeout_s,
            )
        return cls(settings.ehr_base_url, token=token, timeout_s=settings.ehr_timeout_s)

    def read(self, reference: str) -> dict[str, Any]:
        url = resolve_url(self.base_url, reference)
        response = self._get(url)
        if response.status_code == 401 and isinstance(self._token, BackendServicesToken):
            # the token expired early or was revoked: fetch a new one, once
            self._token.invalidate()
            response = self._get(url)
        if response.status_code != 200:
            raise EHRReadError(
                f"the EHR answered HTTP {response.status_code} for {reference}",
                transient=response.status_code in TRANSIENT_STATUSES,
            )
        try:
            body = response.json()
        except ValueError:
            raise EHRReadError("the EHR answered with invalid JSON", transient=False) from None
        if not isinstance(body, dict):
            raise EHRReadError("the EHR answered with a non-object JSON", transient=False)
        return body

    def _get(self, url: str) -> requests.Response:
        """``GET url`` with the bearer token; network failures become transient errors."""
        headers = {}
        if self._token is not None:
            token = self._token if isinstance(self._token, str) else self._token()
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._session.get(
                url, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise EHRReadError("the EHR did not answer in time", transient=True) from None
        except requests.RequestException as exc:
            raise EHRReadError(
                f"the EHR cannot be reached ({type(exc).__name__})", transient=True
            ) from None
