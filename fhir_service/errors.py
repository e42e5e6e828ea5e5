"""Errors raised by the FHIR service.

Every exception here says when it is raised and what fixes the cause. At the HTTP edge each
:class:`RequestError` becomes an ``OperationOutcome`` with its ``status`` and FHIR issue ``code``
(http://hl7.org/fhir/R4/valueset-issue-type.html); nothing else leaks to the caller.
"""

from __future__ import annotations


class FHIRServiceError(Exception):
    """Base class of every error raised by :mod:`fhir_service`."""


class SettingsError(FHIRServiceError, ValueError):
    """Raised at start-up when a ``CAC_`` environment variable is missing or malformed.

    The message names the variable and the accepted values. Fix the environment (or the file the
    variable names) and start again; the service never runs on a half-read configuration.
    """


class RequestError(FHIRServiceError):
    """A request the service refuses; rendered as an ``OperationOutcome``.

    Parameters
    ----------
    message
        What is wrong and how to fix it, for an integration engineer.
    location
        FHIRPath-style location of the offending element (``ServiceRequest.subject``), if any.
    more
        Further ``(message, location)`` problems found in the same request (one issue each).
    """

    status: int = 400
    code: str = "invalid"

    def __init__(
        self,
        message: str,
        location: str | None = None,
        more: tuple[tuple[str, str | None], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.more = more

    @property
    def issues(self) -> tuple[tuple[str, str | None], ...]:
        """Every ``(message, location)`` problem, the first one first."""
        return ((self.message, self.location), *self.more)


class InvalidResourceError(RequestError):
    """Raised when the body is not valid FHIR JSON of the expected resource type.

    Malformed JSON, a wrong ``resourceType`` or a schema violation. The location names the element;
    fix the sender's payload.
    """

    status = 400
    code = "structure"


class InvalidValueError(RequestError):
    """Raised when an element is well-formed but its value is not acceptable (HTTP 400).

    For example a malformed search parameter. Fix the value named in the location.
    """

    status = 400
    code = "invalid"


class BusinessRuleError(RequestError):
    """Raised when a valid resource breaks a rule of this service (HTTP 422).

    A missing subject or study, an intent other than ``order``, an order code this service does
    not perform, an endpoint address outside the allow-list. The message says which rule; fix the
    order or the service configuration (``CAC_ORDER_CODES``, ``CAC_PACS_ALLOWLIST``).
    """

    status = 422
    code = "business-rule"


class NotSupportedError(RequestError):
    """Raised when the request asks for something the service does not do (HTTP 422).

    For example an unsupported order code or Bundle type. See ``GET /fhir/metadata``.
    """

    status = 422
    code = "not-supported"


class ResourceNotFoundError(RequestError):
    """Raised when the requested resource or route does not exist (HTTP 404).

    Check the id returned in the ``Location`` header of the create response.
    """

    status = 404
    code = "not-found"


class MethodNotAllowedError(RequestError):
    """Raised when the HTTP method is not supported on the route (HTTP 405).

    See ``GET /fhir/metadata`` for the interactions the service supports.
    """

    status = 405
    code = "not-supported"


class ConflictError(RequestError):
    """Raised when the request conflicts with stored state (HTTP 409).

    For example a new version of an order whose processing has already started. Cancel the order
    (``status`` revoked) and place a new one instead.
    """

    status = 409
    code = "conflict"


class PayloadTooLargeError(RequestError):
    """Raised when the body exceeds ``CAC_MAX_BODY_BYTES`` (HTTP 413).

    Send the order without pixel data or raise the limit.
    """

    status = 413
    code = "too-costly"


class UnsupportedMediaTypeError(RequestError):
    """Raised when the ``Content-Type`` is not ``application/fhir+json`` (HTTP 415).

    Send FHIR JSON with ``Content-Type: application/fhir+json``; XML is not supported.
    """

    status = 415
    code = "not-supported"


class AuthenticationError(RequestError):
    """Raised when the bearer token is missing or invalid (HTTP 401).

    A missing ``Authorization`` header, a bad signature, an unknown key id, a wrong issuer or
    audience, or an expired token. Obtain a fresh token from the configured issuer.
    """

    status = 401
    code = "login"


class ForbiddenError(RequestError):
    """Raised when a valid token lacks the SMART scope an operation needs (HTTP 403).

    Ask the authorization server for the scope named in the message (e.g.
    ``system/ServiceRequest.c``).
    """

    status = 403
    code = "forbidden"


class UnavailableError(RequestError):
    """Raised when storage, the broker or the EHR cannot be reached right now (HTTP 503).

    Transient: retry later. Operators: check ``GET /readyz``.
    """

    status = 503
    code = "transient"


class StorageError(FHIRServiceError):
    """Base class of errors raised by :mod:`fhir_service.storage`."""


class TaskNotFoundError(StorageError, LookupError):
    """Raised when a task id is not in storage.

    The id came from a message for a task that was never stored (or a different database). Check
    that the API and the workers use the same ``CAC_DATABASE_URL``.
    """


class InvalidTransitionError(StorageError, ValueError):
    """Raised when a Task status change is not allowed by the FHIR Task state machine.

    For example ``completed`` -> ``in-progress``. The message names both states; a finished Task is
    never reopened, place a new order instead.
    """


class ConcurrentUpdateError(StorageError):
    """Raised when a Task changed between reading it and updating it (optimistic concurrency).

    Another process updated the Task first. Re-read it with ``TaskStore.get`` and decide again.
    """


class EHRReadError(FHIRServiceError):
    """Raised when the EHR cannot return the ServiceRequest a notification points at.

    The message names the HTTP status or network error (never the payload). ``transient`` says
    whether retrying later may help (timeouts, 429, 5xx); otherwise fix the notification or the
    ``CAC_EHR_*`` settings.
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class TokenEndpointError(EHRReadError):
    """Raised when the SMART Backend Services token endpoint gives no usable access token.

    The endpoint could not be reached or timed out (``status`` 0, transient), answered 408, 425,
    429, 500 or 502-504 (transient: retry later), refused the client assertion (other 4xx,
    permanent: fix the client id, the registered key, its ``kid`` or ``CAC_EHR_SCOPES``), or
    answered 200 without an ``access_token``. The message names the token URL (without query or
    credentials), the HTTP status and the OAuth2 ``error`` / ``error_description`` (RFC 6749
    section 5.2); never the client assertion, the key or a token. Raised by
    ``fhir_service.ehr.BackendServicesToken``.

    Attributes
    ----------
    status
        The HTTP status of the answer, 0 when there was none.
    """

    def __init__(self, message: str, *, transient: bool, status: int) -> None:
        super().__init__(message, transient=transient)
        self.status = status
