"""Errors of the pipeline: what went wrong talking to the EHR or the PACS, or in the order itself.

Two families decide what the Celery task does:

- :class:`TransientError` (timeouts, connection refused, HTTP 429 and 502-504): retried with
  bounded exponential backoff; when the bound is reached the Task ends ``failed`` with the reason.
- :class:`PermanentError` (everything else): the Task ends ``failed`` (or ``rejected`` for
  :class:`OrderRejectedError`) at once with a readable ``statusReason``.

Every exception carries a one-line ``reason`` meant for ``Task.statusReason``.
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose.

    ``reason`` is the sentence written to ``Task.statusReason``; ``code`` is a short machine code
    (e.g. ``study-not-found``) written beside it.
    """

    code = "pipeline-error"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class TransientError(PipelineError):
    """Raised when a peer is temporarily unavailable: a timeout, a refused connection, or HTTP 429,
    502, 503 or 504. The task retries it with backoff; fix the peer (or wait) if it persists."""

    code = "transient"


class PermanentError(PipelineError):
    """Raised for a failure that a retry cannot fix; the Task ends ``failed`` with ``reason``.
    Fix the order, the data or the configuration named in the reason."""

    code = "permanent"


class ConfigurationError(PermanentError):
    """Raised when the worker's settings are missing or inconsistent (no EHR base URL, unreadable
    private key, a PACS base that is not allow-listed). Fix the ``CAC_`` environment."""

    code = "configuration"


class FHIRServerError(PipelineError):
    """Raised when the EHR answers a FHIR request with an HTTP error.

    Attributes
    ----------
    status
        The HTTP status code.
    operation_outcome
        The server's ``OperationOutcome`` JSON when it sent one, else ``None``.
    """

    code = "ehr-error"

    def __init__(
        self,
        reason: str,
        *,
        status: int,
        operation_outcome: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason, code=code)
        self.status = status
        self.operation_outcome = operation_outcome


class EHRTransientError(FHIRServerError, TransientError):
    """Raised when the EHR answers 429 or 502-504 or does not answer in time; retried."""

    code = "ehr-unavailable"


class EHRPermanentError(FHIRServerError, PermanentError):
    """Raised when the EHR refuses a request (4xx other than 429, or 500/501); the reason quotes
    its OperationOutcome. Fix the resource or the EHR permissions it names."""

    code = "ehr-refused"


class EHRNotFoundError(EHRPermanentError):
    """Raised when a resource the order references does not exist in the EHR (HTTP 404/410).
    Fix the reference in the order."""

    code = "ehr-not-found"


class AuthenticationError(PermanentError):
    """Raised when the EHR's token endpoint refuses our SMART Backend Services client assertion
    or the static token is rejected (401/403). Fix the client id, key, scopes or token."""

    code = "ehr-authentication"


class PACSError(PipelineError):
    """Base of the errors from the PACS (DICOMweb) side."""

    code = "pacs-error"


class PACSTransientError(PACSError, TransientError):
    """Raised when the PACS does not answer, times out, or answers 429/502-504; retried."""

    code = "pacs-unavailable"


class PACSPermanentError(PACSError, PermanentError):
    """Raised when the PACS refuses a request for good (401/403/4xx/500). Fix the credentials or
    the request it names."""

    code = "pacs-refused"


class PACSNotAllowedError(PACSError, ConfigurationError):
    """Raised when an Endpoint or configured address is not one of the allow-listed PACS bases
    (``CAC_PACS_ALLOWED_BASES``); we never fetch from arbitrary URLs (SSRF). Add the base to the
    allow-list if it is a PACS you trust."""

    code = "pacs-not-allowed"


class StudyNotFoundError(PermanentError):
    """Raised when the PACS holds no study with the order's Study Instance UID or accession number.
    Fix the ImagingStudy identifier or send the study to the PACS, then re-order."""

    code = "study-not-found"


class NoSuitableSeriesError(PermanentError):
    """Raised when the study has no series usable for calcium scoring (wrong modality, contrast,
    thin or missing slices); the reason lists why each series was not chosen."""

    code = "no-suitable-series"


class StudyTooLargeError(PermanentError):
    """Raised when a series exceeds the configured size limit (``CAC_PACS_MAX_BYTES``). Raise the
    limit or check that the order points to the calcium-score series."""

    code = "study-too-large"


class ImageDecodeError(PermanentError):
    """Raised when retrieved instances cannot be read or turned into a CT volume (broken DICOM,
    unsupported transfer syntax, inconsistent geometry). The reason names the problem."""

    code = "broken-dicom"


class OrderError(PermanentError):
    """Raised when the order itself cannot be processed: the ServiceRequest lacks a subject or an
    ImagingStudy, or the Task does not point to a ServiceRequest. Fix the order."""

    code = "invalid-order"


class OrderRejectedError(PermanentError):
    """Raised when the configured appropriateness policy rejects the order (e.g. known coronary
    disease); the Task ends ``rejected`` with this reason instead of ``failed``."""

    code = "order-rejected"
