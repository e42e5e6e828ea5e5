"""What people see: the patient's page and the clinician's report, rendered server-side.

Domain objects in (the CT volume, its candidates and score, the interpretation, the patient
context and a :class:`~reports.study.StudyIdentification`), self-contained HTML, PDF and PNG out.
:func:`render_report_bundle` is the one call the pipeline makes; :class:`ReportStore` keeps the
result under the data directory and :mod:`reports.links` signs the expiring links the service
(``fhir_service.pages``) opens. No network access; file access only in :mod:`reports.store`.
"""

from reports.bundle import ReportArtefacts, render_report_bundle
from reports.errors import (
    ExpiredPageTokenError,
    InvalidPageTokenError,
    InvalidReportInputError,
    PageTokenError,
    ReportError,
    ReportNotFoundError,
    ReportStoreError,
)
from reports.links import PageKind, PageLink, page_path, sign_page_token, verify_page_token
from reports.store import Artefact, ReportRecord, ReportStore
from reports.study import StudyIdentification

__all__ = [
    "Artefact",
    "ExpiredPageTokenError",
    "InvalidPageTokenError",
    "InvalidReportInputError",
    "PageKind",
    "PageLink",
    "PageTokenError",
    "ReportArtefacts",
    "ReportError",
    "ReportNotFoundError",
    "ReportRecord",
    "ReportStore",
    "ReportStoreError",
    "StudyIdentification",
    "page_path",
    "render_report_bundle",
    "sign_page_token",
    "verify_page_token",
]
