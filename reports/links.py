"""Unguessable, expiring links to a stored report: HMAC-signed tokens.

A token names a report, what it opens (the patient page or the clinician report) and when it
expires, and carries an HMAC-SHA256 of those over a secret shared by the service and the pipeline
(``CAC_PAGE_SECRET``). It cannot be guessed or altered without the secret. The token is readable
(base64url), so report ids must not carry personal data: use a random id (e.g. the Task id).

References
----------
RFC 2104 (HMAC); FIPS 180-4 (SHA-256); RFC 4648 section 5 (base64url).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

from reports.errors import ExpiredPageTokenError, InvalidPageTokenError, InvalidReportInputError

#: Report ids: letters, digits, '-' and '_', 1-64 characters (also safe as a folder name).
REPORT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The shortest secret accepted: 32 bytes, the HMAC-SHA256 output size (RFC 2104 section 3).
MIN_SECRET_BYTES = 32
_DOMAIN = b"cac-fhir page link v1\x00"


class PageKind(StrEnum):
    """What a link opens; values appear in the token and the URL."""

    PATIENT = "patient"
    CLINICIAN = "clinician"


@dataclass(frozen=True, slots=True)
class PageLink:
    """A verified token: the report it opens, what it opens, and its expiry (UTC)."""

    report_id: str
    kind: PageKind
    expires_at: datetime.datetime


def check_report_id(report_id: str) -> str:
    """Return ``report_id`` if it is 1-64 letters, digits, '-' or '_'.

    Raises
    ------
    InvalidReportInputError
        Otherwise (it becomes a folder name: no dots, slashes or spaces).
    """
    if not isinstance(report_id, str) or not REPORT_ID_PATTERN.match(report_id):
        raise InvalidReportInputError(
            f"report_id must be 1-64 letters, digits, '-' or '_', got {report_id!r}"
        )
    return report_id


def check_secret(secret: bytes) -> bytes:
    """Return ``secret`` if it has at least :data:`MIN_SECRET_BYTES` bytes.

    Raises
    ------
    InvalidReportInputError
        If it is shorter.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidReportInputError(
            f"the page secret must be at least {MIN_SECRET_BYTES} bytes, got {len(secret)}"
        )
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise InvalidPageTokenError("token is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidPageTokenError("token is not base64url") from exc
    # only the canonical spelling: otherwise unused low bits of the last character could be
    # changed and the token would still verify
    if _b64(data) != text:
        raise InvalidPageTokenError("token is not canonical base64url")
    return data


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + payload, hashlib.sha256).digest()


def sign_page_token(
    secret: bytes, report_id: str, kind: PageKind, expires_at: datetime.datetime
) -> str:
    """A token opening ``kind`` of report ``report_id`` until ``expires_at``.

    Parameters
    ----------
    secret
        The shared secret (at least 32 bytes).
    report_id
        The stored report (:class:`reports.store.ReportStore`), 1-64 of ``[A-Za-z0-9_-]``.
    kind
        The patient page or the clinician report.
    expires_at
        A timezone-aware time after which the link answers "expired".

    Returns
    -------
    str
        URL-safe: ``<payload>.<signature>``, both base64url.

    Raises
    ------
    InvalidReportInputError
        For a short secret, a malformed report id or a naive ``expires_at``.
    """
    check_secret(secret)
    check_report_id(report_id)
    if expires_at.tzinfo is None:
        raise InvalidReportInputError("expires_at must be timezone-aware (e.g. UTC)")
    payload = f"{PageKind(kind).value}.{report_id}.{int(expires_at.timestamp())}".encode("ascii")
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify_page_token(
    secret: bytes, token: str, *, now: datetime.datetime | None = None
) -> PageLink:
    """Check a token's signature, then its expiry.

    Raises
    ------
    InvalidPageTokenError
        If the token is malformed or its signature does not match (altered, or signed with
        another secret). Checked first, so an altered token never reads as "expired".
    ExpiredPageTokenError
        If the signature matches but the expiry has passed.
    """
    check_secret(secret)
    if not isinstance(token, str) or len(token) > 512 or token.count(".") != 1:
        raise InvalidPageTokenError("token is malformed")
    payload_text, mac_text = token.split(".")
    payload = _unb64(payload_text)
    if not hmac.compare_digest(_unb64(mac_text), _mac(secret, payload)):
        raise InvalidPageTokenError("token signature does not match")
    try:
        kind_text, report_id, expiry_text = payload.decode("ascii").split(".")
        kind = PageKind(kind_text)
        check_report_id(report_id)
        expires_at = datetime.datetime.fromtimestamp(int(expiry_text), datetime.UTC)
    except (UnicodeDecodeError, ValueError, OverflowError, OSError) as exc:
        raise InvalidPageTokenError("token payload is malformed") from exc
    if (now or datetime.datetime.now(datetime.UTC)) >= expires_at:
        raise ExpiredPageTokenError(f"the link expired at {expires_at.isoformat()}")
    return PageLink(report_id, kind, expires_at)


def page_path(kind: PageKind, token: str) -> str:
    """The service path a token opens (``fhir_service.pages``): ``/pages/<kind>/<token>``.

    Prefix it with the service's public base URL (``CAC_PUBLIC_BASE_URL``) to make the link.
    """
    return f"/pages/{PageKind(kind).value}/{token}"
