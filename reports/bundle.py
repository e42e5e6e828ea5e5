"""One call for the pipeline: every artefact of a scored study, rendered from domain objects."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from interpretation import Interpretation, PatientContext
from reports.clinician_report import render_clinician_html, render_clinician_pdf, report_content
from reports.key_images import DEFAULT_WINDOW_HU, render_key_images
from reports.patient_page import render_patient_page
from reports.study import StudyIdentification
from scoring.result import CandidateSet, ScoreResult
from scoring.volume import CTVolume


@dataclass(frozen=True, slots=True)
class ReportArtefacts:
    """What a scored study is presented as.

    Attributes
    ----------
    patient_html
        The patient's page (``text/html; charset=utf-8``), self-contained.
    clinician_html
        The clinician report (``text/html; charset=utf-8``), key images inline.
    clinician_pdf
        The clinician report as PDF (``application/pdf``).
    key_images
        The key images as PNG files (``image/png``), in slice order.
    key_image_captions
        One caption per key image (its text alternative).
    """

    patient_html: str
    clinician_html: str
    clinician_pdf: bytes
    key_images: list[bytes]
    key_image_captions: list[str]


def render_report_bundle(
    volume: CTVolume,
    candidates: CandidateSet,
    score: ScoreResult,
    interpretation: Interpretation,
    context: PatientContext,
    identification: StudyIdentification,
    *,
    algorithm: str | None = None,
    window_hu: tuple[float, float] = DEFAULT_WINDOW_HU,
    max_key_images: int = 8,
    generated_at: datetime.datetime | None = None,
) -> ReportArtefacts:
    """Render the patient page, the clinician report (HTML and PDF) and the key images.

    Pure: no file or network access; the caller stores or attaches the results.

    Parameters
    ----------
    volume
        The scored CT volume, ``(z, y, x)`` in HU.
    candidates
        The candidate set the score was computed from (:func:`scoring.find_candidates`).
    score
        The score (:func:`scoring.score_candidates`); its lesion ids name candidates.
    interpretation
        :func:`interpretation.interpret` of ``score.agatston`` for this patient.
    context
        The patient context the interpretation was made with.
    identification
        Patient and study identification printed on the clinician report.
    algorithm
        Name and version of the scoring software; default the installed ``cac-fhir`` version.
    window_hu
        Display window of the key images (width, level).
    max_key_images
        The most key images (see :func:`reports.key_images.render_key_images`).
    generated_at
        Time printed on the report (UTC); default now.

    Returns
    -------
    ReportArtefacts

    Raises
    ------
    InvalidReportInputError
        If the volume, candidates and score do not belong together, or the interpretation does
        not fit the context.
    """
    key_images = render_key_images(
        volume, candidates, score, window_hu=window_hu, max_images=max_key_images
    )
    content = report_content(
        volume,
        score,
        interpretation,
        context,
        identification,
        key_images,
        algorithm=algorithm,
        generated_at=generated_at,
    )
    return ReportArtefacts(
        patient_html=render_patient_page(interpretation, context, identification),
        clinician_html=render_clinician_html(content),
        clinician_pdf=render_clinician_pdf(content),
        key_images=[k.png for k in key_images.images],
        key_image_captions=[k.caption for k in key_images.images],
    )
