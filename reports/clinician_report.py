"""The clinician's report, as HTML and as PDF, from one description of its content.

:func:`report_content` turns the domain objects into sections of key-value rows, tables and
paragraphs; :func:`render_clinician_html` (Jinja2) and :func:`render_clinician_pdf` (fpdf2, pure
Python, no system package) lay the same sections out, so the two forms never disagree.

References
----------
Hecht HS et al. J Cardiovasc Comput Tomogr 2018;12:185-191 (CAC-DRS).
McClelland RL et al. Circulation 2006;113:30-37 (MESA percentile); JACC 2015;66:1643-1653
(10-year CHD risk); Am J Cardiol 2009;103:59-63 (arterial age).
Hokanson JE et al. AJR 2004; Sevrukov AB et al. AJR 2005 (progression).
"""

from __future__ import annotations

import base64
import datetime
import importlib.metadata
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from markupsafe import Markup
from PIL import Image

from interpretation import Interpretation, PatientContext
from reports.key_images import (
    ARTERY_COLOURS,
    EXCLUDED_COLOUR,
    UNASSIGNED_COLOUR,
    KeyImageSet,
    hex_colour,
)
from reports.study import StudyIdentification
from reports.templating import environment
from scoring.parameters import ARTERIES, ExclusionReason
from scoring.result import ScoreResult
from scoring.volume import CTVolume

#: Rows of the excluded-candidates table; the rest are counted by reason in a sentence.
MAX_EXCLUDED_ROWS = 40

NOT_RECORDED = "not recorded"


def algorithm_version() -> str:
    """Name and version of this software, as installed (``cac-fhir X.Y.Z``)."""
    try:
        return f"cac-fhir {importlib.metadata.version('cac-fhir')}"
    except importlib.metadata.PackageNotFoundError:
        return "cac-fhir (version unknown: package not installed)"


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the report: a caption, column headers and rows of text cells."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    name: str
    """Stable identifier (HTML ``data-testid``), e.g. ``"per-artery"``."""
    emphasis_last_row: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """One section: key-value facts, then tables, then paragraphs and bullet items."""

    title: str
    name: str
    facts: tuple[tuple[str, str], ...] = ()
    tables: tuple[Table, ...] = ()
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportContent:
    """Everything the clinician report shows, ready to lay out."""

    title: str
    headline: str
    sections: tuple[Section, ...]
    key_images: KeyImageSet
    legend: tuple[tuple[str, str, bool], ...]
    """``(label, #rrggbb, dashed)`` entries of the key-image legend."""
    footer: str
    generated_at: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )


def _text(value: object) -> str:
    if value is None or value == "":
        return NOT_RECORDED
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _num(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _age_at(identification: StudyIdentification, context: PatientContext) -> str:
    if context.age_years is not None:
        return f"{math.floor(context.age_years)} years"
    if identification.birth_date and identification.study_date:
        b, s = identification.birth_date, identification.study_date
        return f"{s.year - b.year - ((s.month, s.day) < (b.month, b.day))} years"
    return NOT_RECORDED


def _identification(identification: StudyIdentification, context: PatientContext) -> Section:
    i = identification
    return Section(
        "Patient and study",
        "identification",
        facts=(
            ("Patient", _text(i.patient_name)),
            ("Patient ID", _text(i.patient_id)),
            ("Birth date", _text(i.birth_date)),
            ("Sex", _text(i.sex or (context.sex.value if context.sex else None))),
            ("Age at scan", _age_at(i, context)),
            ("Study date", _text(i.study_date)),
            ("Accession number", _text(i.accession_number)),
            ("Study Instance UID", _text(i.study_instance_uid)),
            ("Series Instance UID", _text(i.series_instance_uid)),
            ("Referring physician", _text(i.referring_physician)),
            ("Institution", _text(i.institution)),
            ("Order", _text(i.order_reference)),
        ),
    )


def _acquisition(volume: CTVolume, score: ScoreResult) -> Section:
    acq = volume.acquisition
    geo = volume.geometry
    mass = (
        f"calibrated, {score.mass_factor_mg_per_mm3_hu:.5f} mg/mm³/HU ({score.mass_factor_source})"
        if score.mass_calibrated
        else f"uncalibrated, {score.mass_factor_mg_per_mm3_hu:.5f} mg/mm³/HU "
        f"({score.mass_factor_source or 'default factor'})"
    )
    return Section(
        "Acquisition",
        "acquisition",
        facts=(
            ("Scanner", _text(" ".join(p for p in (acq.manufacturer, acq.model) if p) or None)),
            ("Series", _text(acq.series_description)),
            ("Acquired", _text(acq.acquisition_datetime)),
            ("Tube voltage", f"{acq.kvp:g} kVp" if acq.kvp is not None else NOT_RECORDED),
            ("Reconstruction kernel", _text(acq.reconstruction_kernel)),
            ("Slice thickness", f"{geo.slice_thickness_mm:g} mm"),
            ("Slice increment", f"{geo.increment_mm:g} mm"),
            (
                "Pixel spacing",
                f"{geo.pixel_spacing_mm[0]:g} × {geo.pixel_spacing_mm[1]:g} mm",
            ),
            ("Matrix", f"{volume.shape[0]} slices of {volume.shape[1]} × {volume.shape[2]}"),
            ("Mass calibration", mass),
        ),
    )


def _per_artery(score: ScoreResult) -> Table:
    rows: list[tuple[str, ...]] = []
    if score.roi != "whole":
        for artery in ARTERIES:
            rows.append(
                (
                    artery.value,
                    _num(score.agatston_by_artery[artery]),
                    _num(score.volume_mm3_by_artery[artery]),
                    _num(score.mass_mg_by_artery[artery]),
                    str(score.lesion_count_by_artery[artery]),
                )
            )
    rows.append(
        (
            "Total",
            _num(score.agatston),
            _num(score.volume_mm3),
            _num(score.mass_mg),
            str(score.lesion_count),
        )
    )
    caption = "Calcium by artery" if score.roi != "whole" else "Calcium (no artery labels)"
    return Table(
        caption,
        ("Artery", "Agatston", "Volume (mm³)", "Mass (mg)", "Lesions"),
        tuple(rows),
        "per-artery",
        emphasis_last_row=True,
    )


def _result(score: ScoreResult, interpretation: Interpretation) -> Section:
    roi = {
        "auto": "coronary calcium, detected and labelled automatically",
        "labels": "coronary calcium labelled by a reader",
        "whole": "every calcified candidate in the volume (no artery labels)",
    }.get(score.roi, score.roi)
    return Section(
        "Result",
        "result",
        facts=(
            ("Total Agatston score", _num(score.agatston)),
            ("CAC-DRS", interpretation.cac_drs.label),
            ("Risk category (CAC-DRS)", interpretation.risk_category.text),
            ("Scored", roi),
        ),
        tables=(_per_artery(score),),
    )


def _lesions(score: ScoreResult) -> Section:
    lesions = Table(
        "Scored lesions",
        ("#", "Artery", "Slices", "Agatston", "Volume (mm³)", "Mass (mg)", "Peak HU"),
        tuple(
            (
                str(les.lesion_id),
                les.artery.value if les.artery else "-",
                f"{les.slice_range[0] + 1}-{les.slice_range[1] + 1}",
                _num(les.agatston),
                _num(les.volume_mm3),
                _num(les.mass_mg),
                f"{les.peak_hu:.0f}",
            )
            for les in score.lesions
        ),
        "lesions",
    )
    # A noisy chest CT can have a thousand excluded candidates (mostly bone): list the ones a
    # reviewer should look at (non-bone first, then by Agatston) and count the rest by reason.
    listed = sorted(
        score.excluded, key=lambda e: (e.reason == ExclusionReason.BONE, -e.agatston, e.lesion_id)
    )[:MAX_EXCLUDED_ROWS]
    excluded = Table(
        "Excluded candidates",
        ("#", "Reason", "Detail", "Slices", "Agatston", "Peak HU"),
        tuple(
            (
                str(exc.lesion_id),
                exc.reason.value.replace("_", " "),
                exc.detail or "-",
                f"{exc.slice_range[0] + 1}-{exc.slice_range[1] + 1}",
                _num(exc.agatston),
                f"{exc.peak_hu:.0f}",
            )
            for exc in listed
        ),
        "excluded",
    )
    paragraphs = []
    if len(listed) < len(score.excluded):
        counts: dict[str, int] = {}
        for exc in score.excluded:
            reason = exc.reason.value.replace("_", " ")
            counts[reason] = counts.get(reason, 0) + 1
        paragraphs.append(
            f"{len(score.excluded)} candidates were excluded ("
            + ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
            + f"); the table lists {len(listed)} of them, those other than bone first, then the "
            "largest."
        )
    if score.ignored_small_components:
        paragraphs.append(
            f"{score.ignored_small_components} 2-D components under the minimum area were "
            "ignored before forming candidates."
        )
    return Section(
        "Lesions", "lesion-tables", tables=(lesions, excluded), paragraphs=tuple(paragraphs)
    )


def _risk_inputs(context: PatientContext) -> tuple[tuple[str, str], ...]:
    c = context
    race = c.race.value if c.race else (c.race_detail or None)
    return (
        ("Age", f"{c.age_years:g} years" if c.age_years is not None else NOT_RECORDED),
        ("Sex", _text(c.sex.value if c.sex else None)),
        ("Race/ethnicity", _text(race)),
        (
            "Total cholesterol",
            f"{c.total_cholesterol_mg_dl:g} mg/dL"
            if c.total_cholesterol_mg_dl is not None
            else NOT_RECORDED,
        ),
        ("HDL cholesterol", f"{c.hdl_mg_dl:g} mg/dL" if c.hdl_mg_dl is not None else NOT_RECORDED),
        (
            "Systolic blood pressure",
            f"{c.systolic_bp_mmhg:g} mmHg" if c.systolic_bp_mmhg is not None else NOT_RECORDED,
        ),
        ("Blood-pressure medication", _text(c.on_bp_medication)),
        ("Lipid-lowering medication", _text(c.on_lipid_medication)),
        ("Current smoker", _text(c.current_smoker)),
        ("Diabetes", _text(c.diabetes)),
        ("Family history of heart attack", _text(c.family_history)),
    )


def _interpretation(interpretation: Interpretation, context: PatientContext) -> Section:
    pct = interpretation.mesa_percentile
    mesa = (
        f"{pct.value}th percentile ({pct.reason})"
        if pct.applicable and pct.value is not None
        else f"not applicable: {pct.reason}"
    )
    age = interpretation.arterial_age
    risk = interpretation.chd_risk_10y
    if risk.applicable and risk.with_cac_pct is not None and risk.without_cac_pct is not None:
        risk_text = (
            f"{risk.with_cac_pct:.2f} % with CAC; {risk.without_cac_pct:.2f} % from risk "
            "factors alone (MESA risk score, McClelland, JACC 2015)"
        )
    else:
        risk_text = risk.reason
    facts = [
        ("MESA percentile", mesa),
        ("Arterial age", age.text),
        ("10-year CHD risk", risk_text),
    ]
    if risk.missing:
        facts.append(("Risk inputs missing", ", ".join(m.replace("_", " ") for m in risk.missing)))
    inputs = Table(
        "Inputs of the 10-year risk",
        ("Input", "Value"),
        _risk_inputs(context),
        "risk-inputs",
    )
    return Section(
        "Interpretation",
        "interpretation",
        facts=tuple(facts),
        tables=(inputs,),
        items=age.caveats,
    )


def _progression(interpretation: Interpretation) -> Section:
    prog = interpretation.progression
    if prog is None:
        return Section(
            "Progression",
            "progression",
            paragraphs=("No prior calcium score was available for comparison.",),
        )
    annual = (
        f"{prog.annualised_change_per_year:+.1f} AU/year"
        if prog.annualised_change_per_year is not None
        else "not computed (same date)"
    )
    return Section(
        "Progression",
        "progression",
        facts=(
            ("Prior score", f"{_num(prog.prior_agatston)} on {prog.prior_date.isoformat()}"),
            ("Interval", f"{prog.years:.1f} years"),
            ("Absolute change", f"{prog.absolute_change:+.1f} AU"),
            ("Annualised change", annual),
            (
                "Hokanson (sqrt now - sqrt before >= 2.5)",
                "significant" if prog.hokanson_significant else "not significant",
            ),
            (
                "Sevrukov repeatability bound",
                f"±{prog.sevrukov_bound:.1f} AU: "
                + ("beyond" if prog.beyond_repeatability else "within"),
            ),
        ),
        items=prog.warnings,
    )


def _appropriateness(interpretation: Interpretation) -> Section:
    findings = interpretation.appropriateness
    if not findings:
        return Section(
            "Appropriateness",
            "appropriateness",
            paragraphs=("No finding: the test suits this patient as far as the context shows.",),
        )
    return Section(
        "Appropriateness",
        "appropriateness",
        tables=(
            Table(
                "Findings",
                ("Severity", "Finding"),
                tuple((f.severity.value, f.message) for f in findings),
                "appropriateness",
            ),
        ),
    )


def _guidance(interpretation: Interpretation) -> Section:
    return Section(
        "Guidance for the referring clinician",
        "guidance",
        tables=(
            Table(
                "Decision support (not a prescription)",
                ("Topic", "Guidance", "Source"),
                tuple(
                    (g.topic.value.replace("_", " "), g.text, g.source)
                    for g in interpretation.clinician_guidance
                ),
                "guidance",
            ),
        ),
    )


def _method(score: ScoreResult, version: str) -> Section:
    p = score.parameters
    return Section(
        "Method",
        "method",
        facts=(
            ("Algorithm", version),
            (
                "Threshold",
                f"{'>=' if p.threshold_inclusive else '>'} {p.threshold_hu:g} HU "
                "(Agatston, JACC 1990)",
            ),
            ("Minimum lesion area", f"{p.min_area_mm2:g} mm²"),
            ("In-plane connectivity", f"{int(p.connectivity)}-connected"),
            ("Volume method", p.volume_method.value),
            (
                "Agatston slice normalisation",
                "increment / 3 mm" if p.normalise_increment else "none",
            ),
            (
                "Mass factor",
                f"{p.mass_factor_mg_per_mm3_hu:g} mg/mm³/HU (configured)"
                if p.mass_factor_mg_per_mm3_hu is not None
                else "from DICOM (0018,9351) when present, else the uncalibrated default",
            ),
        ),
    )


def _warnings(score: ScoreResult, interpretation: Interpretation) -> Section:
    items = [f"{w.message} [{w.code.value}]" for w in score.warnings]
    if interpretation.progression is not None:
        items.extend(f"Progression: {w}" for w in interpretation.progression.warnings)
    return Section(
        "Warnings",
        "warnings",
        items=tuple(items),
        paragraphs=() if items else ("None.",),
    )


def _legend(score: ScoreResult) -> tuple[tuple[str, str, bool], ...]:
    present = {les.artery for les in score.lesions}
    entries = [(a.value, hex_colour(ARTERY_COLOURS[a]), False) for a in ARTERIES if a in present]
    if None in present:
        entries.append(("scored (no artery)", hex_colour(UNASSIGNED_COLOUR), False))
    entries.append(("excluded candidate", hex_colour(EXCLUDED_COLOUR), True))
    return tuple(entries)


def report_content(
    volume: CTVolume,
    score: ScoreResult,
    interpretation: Interpretation,
    context: PatientContext,
    identification: StudyIdentification,
    key_images: KeyImageSet,
    *,
    algorithm: str | None = None,
    generated_at: datetime.datetime | None = None,
) -> ReportContent:
    """Gather what the clinician report shows.

    Parameters
    ----------
    volume
        The scored CT volume (acquisition and geometry).
    score
        Its calcium score.
    interpretation, context
        The interpretation and the patient context it was made with.
    identification
        Patient and study identification.
    key_images
        From :func:`reports.key_images.render_key_images`.
    algorithm
        Name and version of the scoring software; default :func:`algorithm_version`.
    generated_at
        When the report is produced (UTC); default now.

    Returns
    -------
    ReportContent
    """
    sections = (
        _identification(identification, context),
        _acquisition(volume, score),
        _result(score, interpretation),
        _interpretation(interpretation, context),
        _progression(interpretation),
        _appropriateness(interpretation),
        _guidance(interpretation),
        _lesions(score),
        _warnings(score, interpretation),
        _method(score, algorithm or algorithm_version()),
    )
    headline = (
        f"Agatston {_num(score.agatston)} - {interpretation.cac_drs.label} - "
        f"{interpretation.risk_category.text} risk"
    )
    return ReportContent(
        title="Coronary artery calcium score",
        headline=headline,
        sections=sections,
        key_images=key_images,
        legend=_legend(score),
        footer=(
            "Decision support for the referring clinician, produced automatically; verify the "
            "artery labels on the key images. Not a diagnosis."
        ),
        generated_at=generated_at or datetime.datetime.now(datetime.UTC),
    )


def render_clinician_html(content: ReportContent) -> str:
    """The clinician report as one self-contained HTML document (images inline as data URIs)."""
    images = [
        {
            "src": Markup("data:image/png;base64,") + base64.b64encode(k.png).decode("ascii"),
            "caption": k.caption,
            "slice": k.slice_index + 1,
        }
        for k in content.key_images.images
    ]
    return (
        environment()
        .get_template("clinician_report.html.j2")
        .render(
            content=content,
            images=images,
            generated=content.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
    )


# --- PDF ---------------------------------------------------------------------------------------

_LATIN1_REPLACEMENTS = {
    "≥": ">=",
    "≤": "<=",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "…": "...",
    "≈": "~",
    "→": "->",
    "√": "sqrt ",
}


def _latin1(text: str) -> str:
    """Text the PDF core fonts can print (Latin-1); other characters spelled out or '?'."""
    for src, dst in _LATIN1_REPLACEMENTS.items():
        text = text.replace(src, dst)
    return text.encode("latin-1", "replace").decode("latin-1")


class _ReportPDF(FPDF):
    """A4 portrait with a running footer (page x of y)."""

    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, _latin1(f"{self.footer_text}   Page {self.page_no()} of {{nb}}"), align="C")


def _pdf_table(pdf: FPDF, table: Table) -> None:
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_text_color(26, 26, 26)
    pdf.cell(0, 6, _latin1(table.caption), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    if not table.rows:
        pdf.set_font("Helvetica", "", 9)
        pdf.cell(0, 5, "None.", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        return
    widths = _column_widths(table, pdf.epw)
    pdf.set_font("Helvetica", "", 8.5)
    with pdf.table(
        col_widths=widths,
        text_align="LEFT",
        line_height=4.6,
        headings_style=_heading_style(),
        borders_layout="HORIZONTAL_LINES",
    ) as pdf_table:
        header = pdf_table.row()
        for h in table.headers:
            header.cell(_latin1(h))
        for index, row in enumerate(table.rows):
            cells = pdf_table.row()
            bold = table.emphasis_last_row and index == len(table.rows) - 1
            for value in row:
                if bold:
                    cells.cell(_latin1(value), style=FontFace(emphasis="BOLD"))
                else:
                    cells.cell(_latin1(value))
    pdf.ln(2)


def _heading_style() -> FontFace:
    return FontFace(emphasis="BOLD", fill_color=(230, 230, 230))


def _column_widths(table: Table, total: float) -> tuple[float, ...]:
    lengths = [
        max([len(table.headers[i])] + [len(r[i]) for r in table.rows])
        for i in range(len(table.headers))
    ]
    capped = [min(max(n, 4), 60) for n in lengths]
    scale = total / sum(capped)
    return tuple(c * scale for c in capped)


def _pdf_section(pdf: FPDF, section: Section) -> None:
    if pdf.will_page_break(30):
        pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.set_text_color(26, 26, 26)
    pdf.cell(0, 8, _latin1(section.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_draw_color(160, 160, 160)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(1.5)
    for label, value in section.facts:
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(55, 5, _latin1(label))
        pdf.set_font("Helvetica", "", 9)
        pdf.multi_cell(0, 5, _latin1(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    if section.facts:
        pdf.ln(1.5)
    for table in section.tables:
        _pdf_table(pdf, table)
    pdf.set_font("Helvetica", "", 9)
    for paragraph in section.paragraphs:
        pdf.multi_cell(0, 5, _latin1(paragraph), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    for item in section.items:
        pdf.multi_cell(0, 5, _latin1(f"- {item}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.ln(3)


def _pdf_key_images(pdf: FPDF, content: ReportContent) -> None:
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Key images", new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font("Helvetica", "", 9)
    images = content.key_images.images
    if not images:
        pdf.multi_cell(
            0,
            5,
            "No scored or excluded calcium: no key images.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            align="L",
        )
        return
    width, level = content.key_images.window_hu
    pdf.multi_cell(
        0,
        5,
        _latin1(
            f"Axial slices, window W {width:g} / L {level:g} HU. Each scored lesion is ringed in "
            "its artery's colour and tagged with its artery and number; excluded candidates are "
            "ringed thin, dashed and grey with their reason (bone: outline only)."
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
        align="L",
    )
    _pdf_legend(pdf, content.legend)
    column_w = (pdf.epw - 6) / 2
    for index, key in enumerate(images):
        with io.BytesIO(key.png) as stream, Image.open(stream) as img:
            ratio = img.height / img.width
        image_h = column_w * ratio
        col = index % 2
        if col == 0:
            if pdf.will_page_break(image_h + 12):
                pdf.add_page()
            row_y = pdf.get_y()
        x = pdf.l_margin + col * (column_w + 6)
        pdf.image(io.BytesIO(key.png), x=x, y=row_y, w=column_w)
        pdf.set_xy(x, row_y + image_h + 1)
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(column_w, 4, _latin1(key.caption), align="L")
        if col == 1 or index == len(images) - 1:
            pdf.set_xy(pdf.l_margin, row_y + image_h + 12)
    if content.key_images.not_shown_lesion_ids:
        pdf.multi_cell(
            0,
            5,
            "Scored lesions not on these images (see the lesion table): "
            + ", ".join(f"#{i}" for i in content.key_images.not_shown_lesion_ids),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            align="L",
        )


def _pdf_legend(pdf: FPDF, legend: Sequence[tuple[str, str, bool]]) -> None:
    pdf.ln(1)
    y = pdf.get_y()
    x = pdf.l_margin
    pdf.set_font("Helvetica", "", 9)
    for label, colour, dashed in legend:
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        pdf.set_draw_color(*rgb)
        pdf.set_line_width(0.3 if dashed else 1.2)
        if dashed:
            pdf.set_dash_pattern(dash=1, gap=1)
        pdf.rect(x, y + 1, 6, 3)
        pdf.set_dash_pattern()
        pdf.set_xy(x + 8, y)
        pdf.cell(pdf.get_string_width(label) + 6, 5, _latin1(label))
        x = pdf.get_x()
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_xy(pdf.l_margin, y + 8)


def render_clinician_pdf(content: ReportContent) -> bytes:
    """The clinician report as PDF bytes (A4): the same sections as the HTML, then key images.

    Drawn with fpdf2 and its built-in Helvetica (no font file and no system package needed);
    characters outside Latin-1 are spelled out (``≥`` as ``>=``).
    """
    pdf = _ReportPDF(orientation="portrait", unit="mm", format="A4")
    pdf.footer_text = content.footer
    pdf.set_title(_latin1(f"{content.title} - {content.headline}"))
    pdf.set_creator(_latin1(algorithm_version()))
    pdf.set_creation_date(content.generated_at)
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _latin1(content.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 6, _latin1(content.headline), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(
        0,
        5,
        _latin1(f"Generated {content.generated_at.strftime('%Y-%m-%d %H:%M UTC')}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(26, 26, 26)
    pdf.ln(2)
    for section in content.sections[:3]:
        _pdf_section(pdf, section)
    _pdf_key_images(pdf, content)
    pdf.add_page()
    for section in content.sections[3:]:
        _pdf_section(pdf, section)
    return bytes(pdf.output())
