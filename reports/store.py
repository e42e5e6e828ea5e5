"""Rendered report artefacts kept on disk under the service's data directory.

One folder per report, ``<root>/<report_id>/``, holding ``patient.html``, ``clinician.html``,
``clinician.pdf``, ``key-NN.png`` and ``record.json`` (whose report it is, for the audit trail).
The pipeline writes a report once it is rendered; the web layer reads it when a link is opened.
A folder is written beside its final place and renamed into it, so a reader never sees half a
report, and saving again replaces the whole report.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from reports.bundle import ReportArtefacts
from reports.errors import ReportNotFoundError, ReportStoreError
from reports.links import check_report_id


class Artefact(StrEnum):
    """The stored files a link can open; values are the file names."""

    PATIENT_HTML = "patient.html"
    CLINICIAN_HTML = "clinician.html"
    CLINICIAN_PDF = "clinician.pdf"


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """What the store knows about a report besides its files (for the audit trail).

    Attributes
    ----------
    patient_reference
        The patient the report is about, e.g. ``"Patient/123"``; ``None`` if not given.
    diagnostic_report
        The DiagnosticReport the artefacts are attached to (reference or URL); ``None`` if not
        given.
    """

    patient_reference: str | None = None
    diagnostic_report: str | None = None


_RECORD_FILE = "record.json"


class ReportStore:
    """Report artefacts on disk.

    Parameters
    ----------
    root
        The folder holding one sub-folder per report, e.g. ``<CAC_DATA_DIR>/reports``; created
        on first save.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(
        self,
        report_id: str,
        artefacts: ReportArtefacts,
        record: ReportRecord | None = None,
    ) -> Path:
        """Store every artefact of a report, replacing an earlier version atomically.

        ``record`` names the patient and the DiagnosticReport, so that opening a page can be
        written to the audit trail against them.

        Raises
        ------
        InvalidReportInputError
            If ``report_id`` is not 1-64 of ``[A-Za-z0-9_-]``.
        ReportStoreError
            If the data directory cannot be written.
        """
        check_report_id(report_id)
        final = self.root / report_id
        staging = self.root / f".{report_id}.{uuid.uuid4().hex}.tmp"
        try:
            staging.mkdir(parents=True)
            (staging / Artefact.PATIENT_HTML).write_text(artefacts.patient_html, "utf-8")
            (staging / Artefact.CLINICIAN_HTML).write_text(artefacts.clinician_html, "utf-8")
            (staging / Artefact.CLINICIAN_PDF).write_bytes(artefacts.clinician_pdf)
            for index, png in enumerate(artefacts.key_images, start=1):
                (staging / f"key-{index:02d}.png").write_bytes(png)
            (staging / _RECORD_FILE).write_text(
                json.dumps(asdict(record or ReportRecord())), "utf-8"
            )
            old = None
            if final.exists():
                old = self.root / f".{report_id}.{uuid.uuid4().hex}.old"
                os.replace(final, old)
            os.replace(staging, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ReportStoreError(
                f"cannot store report {report_id} under {self.root}: {exc}"
            ) from exc
        return final

    def read(self, report_id: str, artefact: Artefact) -> bytes:
        """The bytes of one stored artefact.

        Raises
        ------
        InvalidReportInputError
            If ``report_id`` is malformed.
        ReportNotFoundError
            If the report or the artefact is not stored.
        ReportStoreError
            If the file exists but cannot be read.
        """
        check_report_id(report_id)
        path = self.root / report_id / Artefact(artefact).value
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ReportNotFoundError(f"no stored {artefact.value} for report {report_id}") from exc
        except OSError as exc:
            raise ReportStoreError(f"cannot read {path}: {exc}") from exc

    def key_images(self, report_id: str) -> list[bytes]:
        """The stored key images of a report, in order (empty when there are none).

        Raises
        ------
        ReportNotFoundError
            If the report is not stored.
        """
        check_report_id(report_id)
        folder = self.root / report_id
        if not folder.is_dir():
            raise ReportNotFoundError(f"no stored report {report_id}")
        return [p.read_bytes() for p in sorted(folder.glob("key-*.png"))]

    def record(self, report_id: str) -> ReportRecord:
        """Whose report it is, as given when it was saved (empty when nothing was given).

        Raises
        ------
        ReportNotFoundError
            If the report is not stored.
        ReportStoreError
            If its record cannot be read.
        """
        check_report_id(report_id)
        folder = self.root / report_id
        if not folder.is_dir():
            raise ReportNotFoundError(f"no stored report {report_id}")
        try:
            data = json.loads((folder / _RECORD_FILE).read_text("utf-8"))
        except FileNotFoundError:
            return ReportRecord()
        except (OSError, ValueError) as exc:
            raise ReportStoreError(f"cannot read the record of report {report_id}: {exc}") from exc
        return ReportRecord(
            patient_reference=data.get("patient_reference"),
            diagnostic_report=data.get("diagnostic_report"),
        )
