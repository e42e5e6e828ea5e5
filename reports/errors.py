"""Errors raised by the reports package.

Every exception here says, in its docstring, when it is raised and what fixes the cause. The web
layer (``fhir_service.pages``) and the pipeline translate them at their boundary: a reader of a
page or a report never sees a traceback.
"""

from __future__ import annotations


class ReportError(Exception):
    """Base class of every error raised by :mod:`reports`."""


class InvalidReportInputError(ReportError, ValueError):
    """Raised when the objects handed to a renderer do not describe one study.

    For example a score whose lesions name candidates that the candidate set does not hold, a
    candidate set computed on a volume of another shape, or a negative real age. The message names
    the argument. Fix the caller: pass the volume, candidates, score and interpretation of the same
    run.
    """


class PageTokenError(ReportError, ValueError):
    """Base class of the errors about a page link (token). Never shown in detail to the reader."""


class InvalidPageTokenError(PageTokenError):
    """Raised when a page token is malformed, was signed with another secret, or was altered.

    The reader gets a friendly "link not found" page (HTTP 404). Nothing to fix on the server: the
    link is wrong. If every link fails, check that the service and the pipeline share the same
    ``CAC_PAGE_SECRET``.
    """


class ExpiredPageTokenError(PageTokenError):
    """Raised when a correctly signed page token has passed its expiry time.

    The reader gets a friendly "link expired" page (HTTP 410). Issue a new link
    (:func:`reports.links.sign_page_token`) if the reader should still see the page.
    """


class ReportNotFoundError(ReportError, LookupError):
    """Raised when no stored artefacts exist for a report id.

    The pipeline has not stored the report yet (see :class:`reports.store.ReportStore`), or the
    data directory the service reads (``CAC_DATA_DIR``) differs from the one the pipeline writes.
    """


class ReportStoreError(ReportError, OSError):
    """Raised when report artefacts cannot be written to or read from the data directory.

    The message names the path. Check that ``CAC_DATA_DIR`` exists, is writable by the service and
    the workers, and has free space.
    """
