"""A small EHR reader: fetch the ServiceRequest a subscription notification points at.

Only URLs under ``CAC_EHR_BASE_URL`` are ever fetched (a notification naming another host is
refused: no server-side request forgery). Every request has connect/read timeouts. It sends the
static ``CAC_EHR_TOKEN`` or a SMART Backend Services token; the full EHR client (results) belongs
to the workers, which the web layer must not import.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_service.errors import EHRReadError, SettingsError
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


class BackendServicesToken:
    """Access tokens from SMART Backend Services (``client_credentials`` + ``private_key_jwt``).

    The client assertion is signed RS384 (RSA key) or ES384 (EC key), with ``iss`` = ``sub`` =
    the client id, ``aud`` = the token URL, a 5-minute expiry and a unique ``jti`` (SMART App
    Launch 2.0, Backend Services). Tokens are cached until a minute before they expire and are
    sent only to the EHR base URL.

    Parameters
    ----------
    token_url, client_id, private_key_pem, key_id, scopes
        ``CAC_EHR_TOKEN_URL``, ``CAC_EHR_CLIENT_ID``, the contents of ``CAC_EHR_PRIVATE_KEY_FILE``,
        ``CAC_EHR_KEY_ID``, ``CAC_EHR_SCOPES``.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_pem: bytes,
        *,
        key_id: str | None,
        scopes: str,
        timeout_s: float = 10.0,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError):
            raise SettingsError("CAC_EHR_PRIVATE_KEY_FILE is not an unencrypted PEM key") from None
        if isinstance(key, rsa.RSAPrivateKey):
            self._algorithm = "RS384"
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            self._algorithm = "ES384"
        else:
            raise SettingsError("CAC_EHR_PRIVATE_KEY_FILE must hold an RSA or EC private key")
        self._key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = key
        self._key_id = key_id
        self._scopes = scopes
        self._timeout = (min(timeout_s, 5.0), timeout_s)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __call__(self) -> str:
        """A valid access token (fetched when none is cached or it is about to expire)."""
        with self._lock:
            if self._token is None or time.time() > self._expires_at - 60:
                self._token, self._expires_at = self._fetch()
            return self._token

    def _fetch(self) -> tuple[str, float]:
        now = int(time.time())
        headers = {"kid": self._key_id} if self._key_id else None
        assertion = jwt.encode(
            {
                "iss": self._client_id,
                "sub": self._client_id,
                "aud": self._token_url,
                "exp": now + 300,
                "iat": now,
                "jti": uuid.uuid4().hex,
            },
            self._key,
            algorithm=self._algorithm,
            headers=headers,
        )
        form = {
            "grant_type": "client_credentials",
            "scope": self._scopes,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        try:
            response = requests.post(
                self._token_url, data=form, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise EHRReadError(
                f"the EHR token endpoint cannot be reached ({type(exc).__name__})", transient=True
            ) from None
        if response.status_code != 200:
            raise EHRReadError(
                f"the EHR token endpoint answered HTTP {response.status_code}",
                transient=response.status_code in TRANSIENT_STATUSES,
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise EHRReadError(
                "the EHR token endpoint answered without an access_token", transient=False
            ) from None
        return token, time.time() + lifetime


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
        Services."""
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
        headers = {}
        if self._token is not None:
            token = self._token if isinstance(self._token, str) else self._token()
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._session.get(
                url, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise EHRReadError("the EHR did not answer in time", transient=True) from None
        except requests.RequestException as exc:
            raise EHRReadError(
                f"the EHR cannot be reached ({type(exc).__name__})", transient=True
            ) from None
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
