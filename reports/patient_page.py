"""The patient's page: their score, where it sits among people like them, their heart age and the
plain-language summary, as one self-contained HTML document.

The page has no script and fetches nothing (its Content-Security-Policy forbids it), so it can be
served by the service, attached to the DiagnosticReport and opened offline alike. Pictures are
inline SVG with text alternatives (:mod:`reports.charts`).

References
----------
McClelland RL et al. Circulation 2006;113:30-37 (MESA reference values, the comparison curve).
McClelland RL et al. Am J Cardiol 2009;103:59-63 (arterial age).
Hecht HS et al. J Cardiovasc Comput Tomogr 2018;12:185-191 (CAC-DRS groups).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from interpretation import Interpretation, PatientContext, Sex
from interpretation.mesa import MESA_MAX_AGE_YEARS, MESA_MIN_AGE_YEARS, load_table
from interpretation.summary import format_score
from reports.charts import arterial_age_svg, cac_drs_bands, mesa_curve_svg, zero_share_pct
from reports.errors import InvalidReportInputError
from reports.study import StudyIdentification
from reports.templating import environment

_RACE_WORDS = {"white": "White", "black": "Black", "hispanic": "Hispanic", "chinese": "Chinese"}


@dataclass(frozen=True, slots=True)
class SummaryBlock:
    """A paragraph, or a list when ``items`` is not empty."""

    text: str = ""
    items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SummaryPart:
    """One question of the summary and the blocks that answer it."""

    heading: str | None
    blocks: tuple[SummaryBlock, ...] = field(default=())


def summary_parts(summary: str) -> list[SummaryPart]:
    """Split the plain-text summary into headed parts.

    The summary (``interpretation.patient_summary``) is paragraphs separated by blank lines; a
    paragraph whose first line ends with "?" is headed by that question, and lines starting with
    "- " form a list.
    """
    parts: list[SummaryPart] = []
    paragraphs = [p for p in summary.strip().split("\n\n") if p.strip()]
    for index, paragraph in enumerate(paragraphs):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        heading = None
        if lines[0].endswith("?"):
            heading, lines = lines[0], lines[1:]
        blocks = _blocks(lines)
        last = index == len(paragraphs) - 1
        if heading is None and parts and parts[-1].heading is not None and not last:
            # an unheaded paragraph continues the question before it; the last one closes the page
            parts[-1] = SummaryPart(parts[-1].heading, parts[-1].blocks + blocks)
            continue
        parts.append(SummaryPart(heading, blocks))
    return parts


def _blocks(lines: list[str]) -> tuple[SummaryBlock, ...]:
    blocks: list[SummaryBlock] = []
    text: list[str] = []
    items: list[str] = []
    for line in lines:
        if line.startswith("- "):
            if text:
                blocks.append(SummaryBlock(text=" ".join(text)))
                text = []
            items.append(line[2:].strip())
        else:
            if items:
                blocks.append(SummaryBlock(items=tuple(items)))
                items = []
            text.append(line)
    if text:
        blocks.append(SummaryBlock(text=" ".join(text)))
    if items:
        blocks.append(SummaryBlock(items=tuple(items)))
    return tuple(blocks)


def group_words(context: PatientContext, age_years: int) -> str:
    """Who the comparison group is, in plain words, e.g. "Black women aged 62"."""
    people = "women" if context.sex == Sex.FEMALE else "men"
    race = _RACE_WORDS.get(context.race.value, context.race.value) if context.race else ""
    return f"{race} {people} aged {age_years}".strip()


def _mesa_reason(context: PatientContext) -> str:
    """Why no comparison applies, as the template words it: "age", "sex" or "background"."""
    age = context.completed_years
    if age is None or not MESA_MIN_AGE_YEARS <= age <= MESA_MAX_AGE_YEARS:
        return "age"
    if context.sex is None:
        return "sex"
    return "background"


def render_patient_page(
    interpretation: Interpretation,
    context: PatientContext,
    identification: StudyIdentification | None = None,
) -> str:
    """Render the patient's page.

    Parameters
    ----------
    interpretation
        The interpretation of the patient's score (:func:`interpretation.interpret`).
    context
        The patient context the interpretation was made with (age, sex and background pick the
        MESA curve; the age is drawn beside the heart age).
    identification
        Printed discreetly under the title (first name and scan date only: the page may be seen
        on a shared screen); ``None`` prints nothing.

    Returns
    -------
    str
        A complete HTML document (UTF-8), with no script and no external resource. The page's
        own wording lives in ``reports/templates/patient_page.html.j2``.

    Raises
    ------
    InvalidReportInputError
        If the interpretation's MESA percentile does not fit the context (another patient's
        interpretation).
    """
    agatston = interpretation.agatston
    percentile = interpretation.mesa_percentile
    mesa_chart = None
    mesa: dict[str, object] = {}
    if percentile.applicable:
        if context.sex is None or context.race is None or percentile.age_years_used is None:
            raise InvalidReportInputError(
                "the interpretation has a MESA percentile but the context lacks the sex or "
                "race/ethnicity it was taken for: pass the context the interpretation was made with"
            )
        cell = load_table()[(context.race, context.sex, percentile.age_years_used)]
        group = group_words(context, percentile.age_years_used)
        mesa_chart = mesa_curve_svg(cell, agatston, percentile.value, group_text=group)
        mesa = {
            "group": group,
            "score_is_zero": format_score(agatston) == "0",
            "zero_share": zero_share_pct(cell),
            "percentile": percentile.value,
        }
    arterial = interpretation.arterial_age
    if arterial.over_84:
        heart = "over 84"
    elif arterial.under_45:
        heart = "under 45"
    else:
        heart = f"about {round(arterial.years or 0)}"
    who = None
    scan_date = None
    if identification is not None:
        if identification.patient_name:
            who = f"For {identification.patient_name.split()[0]}"
        if identification.study_date is not None:
            scan_date = identification.study_date.strftime("%d %B %Y").lstrip("0")
    return (
        environment()
        .get_template("patient_page.html.j2")
        .render(
            lang="en",
            who=who,
            scan_date=scan_date,
            score_text=format_score(agatston),
            category=interpretation.cac_drs.category,
            bands=cac_drs_bands(agatston),
            mesa_chart=mesa_chart,
            mesa=mesa,
            mesa_reason=_mesa_reason(context),
            mesa_ages=(MESA_MIN_AGE_YEARS, MESA_MAX_AGE_YEARS),
            age_chart=arterial_age_svg(context.age_years, arterial),
            real_age=None if context.age_years is None else math.floor(context.age_years),
            heart_age=heart,
            summary=summary_parts(interpretation.patient_summary),
        )
    )


def render_link_error_page(*, expired: bool) -> str:
    """The friendly page for a link that is wrong (``expired=False``) or out of date.

    It names no patient, report or reason beyond "not found" / "expired".
    """
    if expired:
        title = "This link has expired"
        message = "For your privacy, links to scan results only work for a limited time."
    else:
        title = "This link does not work"
        message = "We could not find a page for this link. It may have been copied incompletely."
    return environment().get_template("page_error.html.j2").render(title=title, message=message)


def render_unavailable_page() -> str:
    """The friendly page shown when a valid link cannot be served right now (storage down)."""
    return (
        environment()
        .get_template("page_error.html.j2")
        .render(
            title="This page is not available right now",
            message="Something went wrong on our side. Please try the same link again later.",
        )
    )
