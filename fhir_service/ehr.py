"""A small EHR reader: fetch the ServiceRequest a subscription notification points at.

Only URLs under ``CAC_EHR_BASE_URL`` are ever fetched (a notification naming another host is
refused: no server-side request forgery). Every request has connect/read timeouts. The full EHR
client (results, SMART Backend Services tokens) belongs to the workers; this reader sends the
static ``CAC_EHR_TOKEN`` when one is configured.
"""

from __future__ import annotations

from typing import Any, Protocol

import requests

from fhir_service.errors import EHRReadError
from fhir_service.mapping import FHIR_JSON

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


class HTTPEHRReader:
    """:class:`EHRReader` over HTTP with ``requests``.

    Parameters
    ----------
    base_url
        FHIR base of the EHR (``CAC_EHR_BASE_URL``).
    token
        Bearer token to send (``CAC_EHR_TOKEN``), if any.
    timeout_s
        Connect and read timeout of each request.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Accept"] = FHIR_JSON
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._timeout = (min(timeout_s, 5.0), timeout_s)

    def read(self, reference: str) -> dict[str, Any]:
        url = resolve_url(self.base_url, reference)
        try:
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False)
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
