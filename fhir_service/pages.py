"""The patient page and the clinician report, served from stored results.

Two ways in:

* an unguessable, expiring link: ``GET /pages/patient/<token>``, ``GET /pages/clinician/<token>``
  and ``GET /pages/clinician/<token>/pdf``, where the token is signed by
  :func:`reports.links.sign_page_token` with the shared ``CAC_PAGE_SECRET``. A wrong, altered or
  unknown link shows a friendly page (404), an expired one another (410); neither says anything
  about any report.
* an authenticated request (a bearer token granting ``DiagnosticReport`` read, as for the FHIR
  API): ``GET /pages/reports/<report_id>/patient``, ``.../clinician``, ``.../clinician.pdf``.

The content comes from the artefacts the pipeline stored with :class:`reports.store.ReportStore`
under ``<CAC_DATA_DIR>/reports`` (nothing is rendered on request). Every page served is written
to the audit trail (a BALP read AuditEvent against the report's patient and DiagnosticReport, as
recorded with the report); a page is not shown when its read cannot be audited. Refused links are
audited as minor failures, without the token.

Configuration (read once when the blueprint is registered): ``CAC_PAGE_SECRET`` (at least 32
bytes) or ``CAC_PAGE_SECRET_FILE`` (a file holding it). Without either, every link answers the
friendly 404 page and a warning is logged at start-up; the authenticated routes still work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import SQLAlchemyError

from fhir_service.api import audit, audit_refusal, authenticate, service
from fhir_service.auth import Interaction
from fhir_service.errors import (
    RequestError,
    ResourceNotFoundError,
    SettingsError,
    UnavailableError,
)
from fhir_service.mapping.audit_event import AuditAction, AuditOutcome
from reports.errors import (
    ExpiredPageTokenError,
    InvalidReportInputError,
    PageTokenError,
    ReportNotFoundError,
    ReportStoreError,
)
from reports.links import MIN_SECRET_BYTES, PageKind, verify_page_token
from reports.patient_page import render_link_error_page, render_unavailable_page
from reports.store import Artefact, ReportStore

logger = logging.getLogger(__name__)

PREFIX = "CAC_"
NO_SECRET_WARNING = (
    "patient page links are disabled: set CAC_PAGE_SECRET (>= 32 bytes) or CAC_PAGE_SECRET_FILE;"
    " every link answers 404"
)

#: Headers of every page response: never cached or indexed, no referrer leaks the token, and the
#: browser may load nothing but the inline styles and images the page carries.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    ),
}


@dataclass(frozen=True, slots=True)
class PageSettings:
    """Where the reports are and the link secret.

    Parameters
    ----------
    reports_dir
        ``<CAC_DATA_DIR>/reports``.
    secret
        The link secret, or ``None`` when links are disabled.
    """

    reports_dir: Path
    secret: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], data_dir: Path) -> PageSettings:
        """Read ``CAC_PAGE_SECRET`` / ``CAC_PAGE_SECRET_FILE``.

        Raises
        ------
        SettingsError
            If both are set, the file cannot be read, or the secret is shorter than 32 bytes.
        """
        raw = env.get(PREFIX + "PAGE_SECRET", "").strip()
        path = env.get(PREFIX + "PAGE_SECRET_FILE", "").strip()
        if raw and path:
            raise SettingsError(f"set only one of {PREFIX}PAGE_SECRET and {PREFIX}PAGE_SECRET_FILE")
        if path:
            try:
                raw = Path(path).read_text("utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"{PREFIX}PAGE_SECRET_FILE {path!r} cannot be read: {exc.strerror}"
                ) from None
        secret = raw.encode("utf-8") if raw else None
        if secret is not None and len(secret) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"{PREFIX}PAGE_SECRET must be at least {MIN_SECRET_BYTES} bytes "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return cls(reports_dir=Path(data_dir) / "reports", secret=secret)


blueprint = Blueprint("pages", __name__, url_prefix="/pages")


@blueprint.record_once
def _configure(state: BlueprintSetupState) -> None:
    settings = PageSettings.from_env(os.environ, state.app.extensions["cac"].settings.data_dir)
    if settings.secret is None:
        logger.warning(NO_SECRET_WARNING)
    state.app.extensions["cac_pages"] = settings


def _settings() -> PageSettings:
    settings: PageSettings = current_app.extensions["cac_pages"]
    return settings


def _page(body: str | bytes, status: int = 200, mimetype: str = "text/html") -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    response.headers.update(PAGE_HEADERS)
    return response


def _friendly(expired: bool) -> Response:
    return _page(render_link_error_page(expired=expired), 410 if expired else 404)


def _store() -> ReportStore:
    return ReportStore(_settings().reports_dir)


def _served(body: bytes, artefact: Artefact) -> Response:
    if artefact is Artefact.CLINICIAN_PDF:
        return _page(body, mimetype="application/pdf")
    return _page(body)


def _audit_read(report_id: str, artefact: Artefact) -> None:
    """Write the successful read to the audit trail, against the report's patient.

    Raises
    ------
    SQLAlchemyError, ReportStoreError
        If the audit trail or the report's record cannot be reached: the page is then not shown.
    """
    record = _store().record(report_id)
    service().audit_store.record(
        audit(
            AuditAction.READ,
            AuditOutcome.SUCCESS,
            resources=[record.diagnostic_report] if record.diagnostic_report else [],
            patients=[record.patient_reference] if record.patient_reference else [],
            description=None,
        )
    )
    logger.info("page served: %s of report %s", artefact.value, report_id)


def _audit_refused_link(status: int) -> None:
    """Write a refused link to the audit trail (minor failure); never fails the answer."""
    reason = "expired" if status == 410 else "not valid"
    try:
        service().audit_store.record(
            audit(
                AuditAction.READ,
                AuditOutcome.MINOR_FAILURE,
                description=f"HTTP {status}: page link {reason}",
            )
        )
    except SQLAlchemyError as exc:
        logger.warning("audit: could not record a refused page link (%s)", type(exc).__name__)


def _refused(expired: bool) -> Response:
    response = _friendly(expired)
    _audit_refused_link(response.status_code)
    return response


def _by_link(token: str, kind: PageKind, artefact: Artefact) -> Response:
    secret = _settings().secret
    if secret is None:
        return _refused(expired=False)
    try:
        link = verify_page_token(secret, token)
        if link.kind != kind:
            return _refused(expired=False)
        body = _store().read(link.report_id, artefact)
        _audit_read(link.report_id, artefact)
    except ExpiredPageTokenError:
        return _refused(expired=True)
    except (PageTokenError, ReportNotFoundError, InvalidReportInputError):
        return _refused(expired=False)
    except (ReportStoreError, SQLAlchemyError) as exc:
        logger.error("page link: cannot serve (%s)", type(exc).__name__)
        return _page(render_unavailable_page(), 503)
    return _served(body, artefact)


@blueprint.get("/patient/<token>")
def patient_page(token: str) -> Response:
    """The patient's page behind a signed link."""
    return _by_link(token, PageKind.PATIENT, Artefact.PATIENT_HTML)


@blueprint.get("/clinician/<token>")
def clinician_report(token: str) -> Response:
    """The clinician report (HTML) behind a signed link."""
    return _by_link(token, PageKind.CLINICIAN, Artefact.CLINICIAN_HTML)


@blueprint.get("/clinician/<token>/pdf")
def clinician_report_pdf(token: str) -> Response:
    """The clinician report (PDF) behind a signed link."""
    return _by_link(token, PageKind.CLINICIAN, Artefact.CLINICIAN_PDF)


_AUTHENTICATED = {
    "patient": Artefact.PATIENT_HTML,
    "clinician": Artefact.CLINICIAN_HTML,
    "clinician.pdf": Artefact.CLINICIAN_PDF,
}


@blueprint.get("/reports/<report_id>/<name>")
def authenticated_artefact(report_id: str, name: str) -> Response:
    """A stored artefact for a caller whose token grants ``DiagnosticReport`` read.

    Errors are the service's usual OperationOutcomes (401/403 from authentication, 404 for an
    unknown report or artefact name, 503 when storage fails); each read and refusal is audited.
    """
    try:
        authenticate("DiagnosticReport", Interaction.READ)
        artefact = _AUTHENTICATED.get(name)
        if artefact is None:
            raise ResourceNotFoundError(
                f"no page {name!r}; use one of {', '.join(sorted(_AUTHENTICATED))}"
            )
        try:
            body = _store().read(report_id, artefact)
            _audit_read(report_id, artefact)
        except (ReportNotFoundError, InvalidReportInputError):
            raise ResourceNotFoundError(f"no stored report {report_id!r}") from None
        except ReportStoreError:
            raise UnavailableError("report storage is unavailable right now; retry later") from None
    except RequestError as exc:
        audit_refusal(AuditAction.READ, exc)
        raise
    return _served(body, artefact)


__all__ = ["PAGE_HEADERS", "PageSettings", "blueprint"]
