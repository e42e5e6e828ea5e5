"""The Flask application factory.

``create_app(settings)`` builds one app per process: storage engine (migrations applied when
``CAC_AUTO_MIGRATE`` is on), the Celery publisher, the token validator and the error handlers that
turn every failure into an ``OperationOutcome``.

Adding a blueprint (e.g. the patient page / clinician report)::

    from fhir_service.app import create_app
    app = create_app(settings)
    app.register_blueprint(my_blueprint)          # or list it in EXTRA_BLUEPRINTS

Blueprints reach the shared objects through ``fhir_service.api.service()`` (settings, engine,
``TaskStore``, ``AuditStore``) and should call ``fhir_service.api.authenticate`` for protected
routes.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from datetime import UTC, datetime
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from celery import Celery
from flask import Flask, Response, request
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from fhir_service.api import Service, outcome_response, register_blueprints
from fhir_service.auth import TokenValidator, www_authenticate
from fhir_service.ehr import EHRReader, HTTPEHRReader
from fhir_service.errors import (
    AuthenticationError,
    ForbiddenError,
    InvalidValueError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RequestError,
    ResourceNotFoundError,
    UnavailableError,
    UnsupportedMediaTypeError,
)
from fhir_service.queue import create_celery
from fhir_service.settings import Settings
from fhir_service.storage import make_engine, migrate

logger = logging.getLogger(__name__)

#: ``module:attribute`` of further blueprints to register (owners add theirs here).
EXTRA_BLUEPRINTS: tuple[str, ...] = ("fhir_service.pages:blueprint",)

AUTH_DISABLED_WARNING = (
    "AUTHENTICATION IS DISABLED (CAC_AUTH_DISABLED=1): anyone who can reach this port can place"
    " orders and read Tasks. Use only for local trials."
)


def software_version() -> str:
    """Installed version of the ``cac-fhir`` distribution."""
    try:
        return version("cac-fhir")
    except PackageNotFoundError:
        return "unknown"


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    celery_app: Celery | None = None,
    ehr_reader: EHRReader | None = None,
) -> Flask:
    """Build the FHIR service application.

    Parameters
    ----------
    settings
        Defaults to ``Settings.from_env()``.
    engine, celery_app, ehr_reader
        Injected collaborators (tests); built from ``settings`` when None. The EHR reader is
        built only when ``CAC_EHR_BASE_URL`` is set.

    Raises
    ------
    SettingsError
        Bad configuration (e.g. an unreadable JWKS file).
    """
    settings = settings or Settings.from_env()
    app = Flask("fhir_service")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # no HTML redirects for "//" or a trailing slash: a FHIR client gets 404/200, never a 308
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    engine = engine or make_engine(settings.database_url)
    if settings.auto_migrate:
        migrate(engine)
    validator = None if settings.auth_disabled else TokenValidator.from_settings(settings)
    if settings.auth_disabled:
        logger.warning(AUTH_DISABLED_WARNING)
    if ehr_reader is None:
        ehr_reader = HTTPEHRReader.from_settings(settings)
    app.extensions["cac"] = Service(
        settings=settings,
        engine=engine,
        celery=celery_app or create_celery(settings),
        validator=validator,
        ehr_reader=ehr_reader,
        started=datetime.now(UTC),
        software_version=software_version(),
    )
    register_blueprints(app)
    for spec in EXTRA_BLUEPRINTS:
        module_name, _, attribute = spec.partition(":")
        app.register_blueprint(getattr(import_module(module_name), attribute))
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def _request_error(error: RequestError) -> Response:
        headers: dict[str, str] = {}
        if isinstance(error, AuthenticationError):
            has_token = bool(request.headers.get("Authorization"))
            headers["WWW-Authenticate"] = www_authenticate(
                "invalid_token" if has_token else None, error.message if has_token else None
            )
        elif isinstance(error, ForbiddenError):
            headers["WWW-Authenticate"] = www_authenticate("insufficient_scope", error.message)
        elif isinstance(error, UnavailableError):
            headers["Retry-After"] = "30"
        return outcome_response(error, headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        translated: RequestError
        if status == 404:
            translated = ResourceNotFoundError(
                f"no such endpoint: {request.method} {request.path}; see GET /fhir/metadata"
            )
        elif status == 405:
            allowed = (
                sorted(error.valid_methods or ()) if isinstance(error, MethodNotAllowed) else []
            )
            headers["Allow"] = ", ".join(allowed)
            translated = MethodNotAllowedError(
                f"{request.method} is not supported on {request.path}"
                + (f"; allowed: {', '.join(allowed)}" if allowed else "")
            )
        elif status == 413:
            translated = PayloadTooLargeError(
                "the request body is larger than the configured limit (CAC_MAX_BODY_BYTES)"
            )
        elif status == 415:
            translated = UnsupportedMediaTypeError("send Content-Type: application/fhir+json")
        elif status < 500:
            translated = InvalidValueError(f"bad request: {error.description}")
            translated.status = status
        else:
            translated = UnavailableError("the service is not available right now")
            translated.status = status
        return outcome_response(translated, headers)

    @app.errorhandler(SQLAlchemyError)
    def _storage_error(error: SQLAlchemyError) -> Response:
        logger.error("storage error: %s", type(error).__name__)
        if isinstance(error, DBAPIError) and not error.connection_invalidated:
            logger.error("storage error detail: %s", type(error.orig).__name__)
        return outcome_response(
            UnavailableError("storage is unavailable right now; retry later"),
            {"Retry-After": "30"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        reference = uuid.uuid4().hex
        # frames only: exception messages may quote request content (PHI)
        logger.error(
            "internal error %s: %s\n%s",
            reference,
            type(error).__name__,
            "".join(traceback.format_tb(error.__traceback__)),
        )
        failure = RequestError(f"internal error (reference {reference}); the service logged it")
        failure.status = 500
        failure.code = "exception"
        return outcome_response(failure)
