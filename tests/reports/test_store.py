"""Report artefacts on disk: save, read, replace, and the errors a reader can meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.bundle import ReportArtefacts
from reports.errors import InvalidReportInputError, ReportNotFoundError, ReportStoreError
from reports.store import Artefact, ReportRecord, ReportStore


def _artefacts(tag: str, images: int = 2) -> ReportArtefacts:
    return ReportArtefacts(
        patient_html=f"<p>patient {tag}</p>",
        clinician_html=f"<p>clinician {tag}</p>",
        clinician_pdf=f"%PDF-{tag}".encode(),
        key_images=[f"png{tag}{i}".encode() for i in range(images)],
        key_image_captions=[f"caption {i}" for i in range(images)],
    )


class TestReportStore:
    def test_save_then_read_every_artefact(self, tmp_path: Path) -> None:
        store = ReportStore(tmp_path / "reports")
        store.save("r1", _artefacts("a"))
        assert store.read("r1", Artefact.PATIENT_HTML) == b"<p>patient a</p>"
        assert store.read("r1", Artefact.CLINICIAN_HTML) == b"<p>clinician a</p>"
        assert store.read("r1", Artefact.CLINICIAN_PDF) == b"%PDF-a"
        assert store.key_images("r1") == [b"pnga0", b"pnga1"]

    def test_saving_again_replaces_the_whole_report(self, tmp_path: Path) -> None:
        store = ReportStore(tmp_path)
        store.save("r1", _artefacts("a", images=3))
        store.save("r1", _artefacts("b", images=1))
        assert store.read("r1", Artefact.PATIENT_HTML) == b"<p>patient b</p>"
        assert store.key_images("r1") == [b"pngb0"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r1"]

    def test_unknown_report(self, tmp_path: Path) -> None:
        store = ReportStore(tmp_path)
        with pytest.raises(ReportNotFoundError):
            store.read("nope", Artefact.PATIENT_HTML)
        with pytest.raises(ReportNotFoundError):
            store.key_images("nope")

    @pytest.mark.parametrize("report_id", ["../x", "a/b", "", ".hidden"])
    def test_path_like_ids_are_refused(self, tmp_path: Path, report_id: str) -> None:
        with pytest.raises(InvalidReportInputError):
            ReportStore(tmp_path).read(report_id, Artefact.PATIENT_HTML)

    def test_unwritable_root(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        with pytest.raises(ReportStoreError, match="cannot store report r1"):
            ReportStore(blocker).save("r1", _artefacts("a"))

    def test_record_round_trip(self, tmp_path: Path) -> None:
        store = ReportStore(tmp_path)
        record = ReportRecord(patient_reference="Patient/1", diagnostic_report="DiagnosticReport/2")
        store.save("r1", _artefacts("a"), record)
        assert store.record("r1") == record
        store.save("r2", _artefacts("b"))
        assert store.record("r2") == ReportRecord()
        with pytest.raises(ReportNotFoundError):
            store.record("r3")
