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
under ``<CAC_DATA_DIR>/reports`` (nothing is rendered on request).

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

from fhir_service.api import authenticate
from fhir_service.auth import Interaction
from fhir_service.errors import ResourceNotFoundError, SettingsError, UnavailableError
from reports.errors import (
    ExpiredPageTokenError,
    InvalidReportInputError,
    PageTokenError,
    ReportNotFoundError,
    ReportStoreError,
)
from reports.links import MIN_SECRET_BYTES, PageKind, verify_page_token
from reports.patient_page import render_link_error_page
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


def _artefact(report_id: str, artefact: Artefact) -> bytes:
    return ReportStore(_settings().reports_dir).read(report_id, artefact)


def _by_link(token: str, kind: PageKind, artefact: Artefact) -> Response:
    secret = _settings().secret
    if secret is None:
        return _friendly(expired=False)
    try:
        link = verify_page_token(secret, token)
        if link.kind != kind:
            return _friendly(expired=False)
        body = _artefact(link.report_id, artefact)
    except ExpiredPageTokenError:
        return _friendly(expired=True)
    except (PageTokenError, ReportNotFoundError, InvalidReportInputError):
        return _friendly(expired=False)
    except ReportStoreError as exc:
        logger.error("page link: %s", exc)
        return _page("<!DOCTYPE html><title>Try again later</title><p>Please try again later.", 503)
    if artefact is Artefact.CLINICIAN_PDF:
        return _page(body, mimetype="application/pdf")
    return _page(body)


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
    unknown report or artefact name, 503 when storage fails).
    """
    authenticate("DiagnosticReport", Interaction.READ)
    artefact = _AUTHENTICATED.get(name)
    if artefact is None:
        raise ResourceNotFoundError(
            f"no page {name!r}; use one of {', '.join(sorted(_AUTHENTICATED))}"
        )
    try:
        body = _artefact(report_id, artefact)
    except (ReportNotFoundError, InvalidReportInputError):
        raise ResourceNotFoundError(f"no stored report {report_id!r}") from None
    except ReportStoreError:
        raise UnavailableError("report storage is unavailable right now; retry later") from None
    if artefact is Artefact.CLINICIAN_PDF:
        return _page(body, mimetype="application/pdf")
    return _page(body)


__all__ = ["PAGE_HEADERS", "PageSettings", "blueprint"]
