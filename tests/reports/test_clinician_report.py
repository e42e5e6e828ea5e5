"""The clinician report: HTML structure, and the PDF rendered to text and pixels with poppler."""

from __future__ import annotations

import datetime
import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from PIL import Image

from interpretation import Interpretation, PatientContext, PriorScore, interpret
from reports.bundle import ReportArtefacts, render_report_bundle
from reports.clinician_report import render_clinician_html, render_clinician_pdf, report_content
from reports.key_images import ARTERY_COLOURS, UNASSIGNED_COLOUR, render_key_images
from scoring import Artery, score_candidates
from tests.reports.conftest import Study, context_for, make_study

GENERATED = datetime.datetime(2026, 11, 26, 8, 0, tzinfo=datetime.UTC)
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"


def _interpretation(study: Study, context: PatientContext) -> Interpretation:
    return interpret(
        study.score.agatston,
        context,
        by_artery=dict(study.score.agatston_by_artery),
        scan_date=datetime.date(2026, 11, 20),
    )


@pytest.fixture(scope="module")
def context() -> PatientContext:
    base = context_for()
    return PatientContext(
        **{
            **{f: getattr(base, f) for f in base.__dataclass_fields__},
            "symptoms": ("chest pain",),
            "prior_scores": (PriorScore(datetime.date(2023, 11, 1), 400.0),),
        }
    )


@pytest.fixture(scope="module")
def bundle(four_artery_study: Study, context: PatientContext) -> ReportArtefacts:
    study = four_artery_study
    return render_report_bundle(
        study.volume,
        study.candidates,
        study.score,
        _interpretation(study, context),
        context,
        study.identification,
        algorithm="cac-fhir test",
        generated_at=GENERATED,
    )


def _soup(bundle: ReportArtefacts) -> BeautifulSoup:
    return BeautifulSoup(bundle.clinician_html, "html.parser")


def _table(page: BeautifulSoup, name: str) -> list[list[str]]:
    table = page.select_one(f'[data-testid="table-{name}"]')
    assert table is not None, name
    return [
        [cell.get_text(strip=True) for cell in row.find_all(["th", "td"])]
        for row in table.find_all("tr")
    ]


def _facts(page: BeautifulSoup, section: str) -> dict[str, str]:
    dl = page.select_one(f'[data-testid="section-{section}"] dl')
    return {
        dt.get_text(strip=True): dd.get_text(strip=True)
        for dt, dd in zip(dl.find_all("dt"), dl.find_all("dd"), strict=True)
    }


class TestClinicianHTML:
    def test_sections_in_reading_order(self, bundle: ReportArtefacts) -> None:
        names = [s["data-testid"] for s in _soup(bundle).select("section[data-testid]")]
        assert names == [
            "section-identification",
            "section-acquisition",
            "section-result",
            "section-key-images",
            "section-interpretation",
            "section-progression",
            "section-appropriateness",
            "section-guidance",
            "section-lesion-tables",
            "section-warnings",
            "section-method",
        ]

    def test_identification_and_acquisition(self, bundle: ReportArtefacts) -> None:
        page = _soup(bundle)
        ident = _facts(page, "identification")
        assert ident["Patient"] == "Jane Example"
        assert ident["Patient ID"] == "MRN-0042"
        assert ident["Accession number"] == "ACC-2026-117"
        assert ident["Age at scan"] == "62 years"
        acq = _facts(page, "acquisition")
        assert acq["Tube voltage"] == "120 kVp"
        assert acq["Slice thickness"] == "3 mm"
        assert acq["Reconstruction kernel"] == "B35f"

    def test_per_artery_table_matches_the_score(
        self, bundle: ReportArtefacts, four_artery_study: Study
    ) -> None:
        score = four_artery_study.score
        rows = _table(_soup(bundle), "per-artery")
        assert rows[0] == ["Artery", "Agatston", "Volume (mm³)", "Mass (mg)", "Lesions"]
        for artery, row in zip(Artery, rows[1:5], strict=True):
            assert row == [
                artery.value,
                f"{score.agatston_by_artery[artery]:,.1f}",
                f"{score.volume_mm3_by_artery[artery]:,.1f}",
                f"{score.mass_mg_by_artery[artery]:,.1f}",
                "1",
            ]
        assert rows[5][:2] == ["Total", f"{score.agatston:,.1f}"]

    def test_result_and_interpretation(self, bundle: ReportArtefacts) -> None:
        page = _soup(bundle)
        result = _facts(page, "result")
        assert result["CAC-DRS"] == "CAC-DRS A3/N4"
        interp = _facts(page, "interpretation")
        assert interp["MESA percentile"].startswith("99th percentile (MESA black female, age 62)")
        assert interp["Arterial age"] == "over 84 years"
        assert "% with CAC" in interp["10-year CHD risk"]
        inputs = dict(r for r in _table(page, "risk-inputs")[1:])
        assert inputs["HDL cholesterol"] == "50 mg/dL"
        assert inputs["Systolic blood pressure"] == "130 mmHg"

    def test_progression_appropriateness_guidance(self, bundle: ReportArtefacts) -> None:
        page = _soup(bundle)
        prog = _facts(page, "progression")
        assert prog["Prior score"] == "400.0 on 2023-11-01"
        assert prog["Hokanson (sqrt now - sqrt before >= 2.5)"] == "significant"
        findings = _table(page, "appropriateness")
        assert any(row[0] == "warning" and "angiogram" in row[1].lower() for row in findings[1:])
        guidance = _table(page, "guidance")
        sources = " ".join(row[2] for row in guidance[1:])
        assert "Grundy SM" in sources
        assert "Hecht HS" in sources

    def test_lesions_exclusions_warnings_method(
        self, bundle: ReportArtefacts, four_artery_study: Study
    ) -> None:
        page = _soup(bundle)
        lesions = _table(page, "lesions")
        assert sorted(r[1] for r in lesions[1:]) == ["LAD", "LCX", "LM", "RCA"]
        excluded = _table(page, "excluded")
        assert sorted(r[1] for r in excluded[1:]) == ["aorta", "bone"]
        warnings = page.select_one('[data-testid="section-warnings"]').get_text()
        assert "[mass_uncalibrated]" in warnings
        method = _facts(page, "method")
        assert method["Algorithm"] == "cac-fhir test"
        assert method["Threshold"].startswith(">= 130 HU")
        assert method["Minimum lesion area"] == "1 mm²"

    def test_key_images_inline_with_alt_text_and_legend(self, bundle: ReportArtefacts) -> None:
        page = _soup(bundle)
        figures = page.select('[data-testid="key-image"]')
        assert len(figures) == len(bundle.key_images) == 4
        for figure, caption in zip(figures, bundle.key_image_captions, strict=True):
            img = figure.find("img")
            assert img["src"].startswith("data:image/png;base64,")
            assert img["alt"] == caption
        legend = [li.get_text(strip=True) for li in page.select(".legend li")]
        assert legend == ["LM", "LAD", "LCX", "RCA", "excluded candidate"]

    def test_no_script_and_nothing_external(self, bundle: ReportArtefacts) -> None:
        page = _soup(bundle)
        assert page.find("script") is None
        assert all(img["src"].startswith("data:") for img in page.find_all("img"))

    def test_patient_html_is_the_patient_page(self, bundle: ReportArtefacts) -> None:
        assert "Your heart calcium scan result" in bundle.patient_html


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def _pdf_pages(pdf: bytes, tmp_path: Path, dpi: int = 100) -> list[np.ndarray]:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", str(path), str(tmp_path / "page")], check=True
    )
    pages = []
    for png in sorted(tmp_path.glob("page-*.png")):
        with Image.open(png) as image:
            pages.append(np.asarray(image.convert("RGB")))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for index, png in enumerate(sorted(tmp_path.glob("page-*.png")), start=1):
        (ARTEFACTS / f"clinician-report-page-{index}.png").write_bytes(png.read_bytes())
    return pages


def _near(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    diff = np.abs(pixels.astype(np.int16) - np.array(colour, dtype=np.int16))
    return int(np.all(diff <= tolerance, axis=-1).sum())


class TestClinicianPDF:
    def test_is_a_pdf_with_the_tables(
        self, bundle: ReportArtefacts, four_artery_study: Study, tmp_path: Path
    ) -> None:
        assert bundle.clinician_pdf.startswith(b"%PDF-")
        text = _pdftotext(bundle.clinician_pdf, tmp_path)
        score = four_artery_study.score
        assert "Calcium by artery" in text
        header = next(
            line for line in text.splitlines() if "Agatston" in line and "Lesions" in line
        )
        assert header.split()[:2] == ["Artery", "Agatston"]
        lad = next(line for line in text.splitlines() if line.split()[:1] == ["LAD"])
        assert f"{score.agatston_by_artery[Artery.LAD]:,.1f}" in lad
        for words in (
            "CAC-DRS A3/N4",
            "MRN-0042",
            "Key images",
            "Guidance for the referring",
            "Excluded candidates",
            "aortic wall",
            "cac-fhir test",
        ):
            assert words in text, words

    def test_key_images_show_every_artery_colour(
        self, bundle: ReportArtefacts, tmp_path: Path
    ) -> None:
        pages = _pdf_pages(bundle.clinician_pdf, tmp_path)
        key_page = pages[1]  # page 2 holds the key images, after the result on page 1
        for artery, colour in ARTERY_COLOURS.items():
            assert _near(key_page, colour) > 40, artery
        # the first page holds tables, not images: no artery outline colours there
        assert all(_near(pages[0], colour) < 40 for colour in ARTERY_COLOURS.values())

    def test_same_pdf_content_from_report_content(
        self, four_artery_study: Study, context: PatientContext
    ) -> None:
        study = four_artery_study
        keys = render_key_images(study.volume, study.candidates, study.score)
        content = report_content(
            study.volume,
            study.score,
            _interpretation(study, context),
            context,
            study.identification,
            keys,
            algorithm="x",
            generated_at=GENERATED,
        )
        html = render_clinician_html(content)
        pdf = render_clinician_pdf(content)
        assert "Generated 2026-11-26 08:00 UTC" in html
        with Image.open(io.BytesIO(keys.images[0].png)) as image:
            assert image.width >= 480
        assert pdf.startswith(b"%PDF-")


def test_non_latin_text_is_spelled_out_in_the_pdf(four_artery_study: Study, tmp_path: Path) -> None:
    study = four_artery_study
    context = context_for()
    keys = render_key_images(study.volume, study.candidates, study.score)
    from dataclasses import replace

    identification = replace(study.identification, patient_name="Zoë Ω-Tester ≥ 1")
    content = report_content(
        study.volume,
        study.score,
        _interpretation(study, context),
        context,
        identification,
        keys,
        generated_at=GENERATED,
    )
    text = _pdftotext(render_clinician_pdf(content), tmp_path)
    assert "Zoë ?-Tester >= 1" in text


class TestOtherStudies:
    def test_whole_volume_score_has_no_artery_rows(self, four_artery_study: Study) -> None:
        study = four_artery_study
        whole = score_candidates(study.candidates, None, roi="whole")
        context = context_for()
        bundle = render_report_bundle(
            study.volume,
            study.candidates,
            whole,
            interpret(whole.agatston, context),
            context,
            study.identification,
            generated_at=GENERATED,
        )
        page = BeautifulSoup(bundle.clinician_html, "html.parser")
        rows = _table(page, "per-artery")
        assert [r[0] for r in rows] == ["Artery", "Total"]
        legend = [li.get_text(strip=True) for li in page.select(".legend li")]
        assert legend == ["scored (no artery)", "excluded candidate"]
        assert all("scored #" in caption for caption in bundle.key_image_captions)
        with Image.open(io.BytesIO(bundle.key_images[0])) as image:
            pixels = np.asarray(image.convert("RGB"))[30:-40]
        assert _near(pixels, UNASSIGNED_COLOUR, 0) > 50

    def test_zero_score(self) -> None:
        study = make_study({})
        context = context_for()
        bundle = render_report_bundle(
            study.volume,
            study.candidates,
            study.score,
            interpret(
                study.score.agatston, context, by_artery=dict(study.score.agatston_by_artery)
            ),
            context,
            study.identification,
            generated_at=GENERATED,
        )
        page = BeautifulSoup(bundle.clinician_html, "html.parser")
        assert (
            page.select_one('[data-testid="headline"]')
            .get_text()
            .startswith("Agatston 0.0 - CAC-DRS A0")
        )
        assert bundle.key_images
        assert all("no scored lesion" in c for c in bundle.key_image_captions)
        assert bundle.clinician_pdf.startswith(b"%PDF-")
        assert '<span class="score-number" data-testid="score">0</span>' in bundle.patient_html

    def test_lesions_beyond_the_image_limit_are_listed(
        self, four_artery_study: Study, tmp_path: Path
    ) -> None:
        study = four_artery_study
        context = context_for()
        bundle = render_report_bundle(
            study.volume,
            study.candidates,
            study.score,
            _interpretation(study, context),
            context,
            study.identification,
            max_key_images=2,
            generated_at=GENERATED,
        )
        assert len(bundle.key_images) == 2
        page = BeautifulSoup(bundle.clinician_html, "html.parser")
        note = page.select_one('[data-testid="section-key-images"]').get_text(" ", strip=True)
        assert "Scored lesions not on these images" in note
        assert "Scored lesions not on these images" in _pdftotext(bundle.clinician_pdf, tmp_path)


def test_missing_risk_inputs_are_listed_not_guessed(four_artery_study: Study) -> None:
    study = four_artery_study
    context = PatientContext(age_years=62, sex=context_for().sex, race=context_for().race)
    keys = render_key_images(study.volume, study.candidates, study.score)
    content = report_content(
        study.volume,
        study.score,
        _interpretation(study, context),
        context,
        study.identification,
        keys,
        generated_at=GENERATED,
    )
    page = BeautifulSoup(render_clinician_html(content), "html.parser")
    facts = _facts(page, "interpretation")
    assert facts["10-year CHD risk"].startswith("not computed")
    assert "total cholesterol" in facts["Risk inputs missing"]
    assert "%" not in facts["10-year CHD risk"]
    inputs = dict(r for r in _table(page, "risk-inputs")[1:])
    assert inputs["HDL cholesterol"] == "not recorded"


class TestManyExcludedCandidates:
    def test_table_is_capped_and_the_rest_counted_by_reason(self) -> None:
        from reports.clinician_report import MAX_EXCLUDED_ROWS, _lesions
        from scoring import ExcludedCandidate, ExclusionReason, ScoreResult

        excluded = tuple(
            ExcludedCandidate(
                lesion_id=i,
                reason=ExclusionReason.BONE if i % 10 else ExclusionReason.AORTA,
                detail="",
                slice_range=(0, 0),
                peak_hu=500.0,
                agatston=float(i),
                volume_mm3=1.0,
                centroid_mm=(0.0, 0.0, 0.0),
            )
            for i in range(1, 301)
        )
        section = _lesions(
            ScoreResult(agatston=0.0, volume_mm3=0.0, mass_mg=0.0, excluded=excluded)
        )
        table = section.tables[1]
        assert len(table.rows) == MAX_EXCLUDED_ROWS
        # the 30 aortic candidates come before any bone, largest first
        assert [row[1] for row in table.rows[:30]] == ["aorta"] * 30
        assert table.rows[0][0] == "300"
        assert any(
            "300 candidates were excluded (aorta 30, bone 270)" in p for p in section.paragraphs
        )
