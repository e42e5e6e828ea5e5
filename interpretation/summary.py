"""The patient's summary in plain language, rendered from translatable Jinja2 templates.

The wording lives in ``interpretation/templates/<locale>/patient_summary.txt.j2``; this module only
decides which variant applies and fills in the numbers. The text says what the score is and is not
(calcium as a sign of plaque, not narrowing), the number and its category, the comparison with
people of the same age, sex and background, the arterial age, what it means, what the patient can
do, that their doctor will discuss it, and when a repeat scan may help.

References
----------
Hecht HS et al. J Cardiovasc Comput Tomogr 2018;12:185-191 (categories and risk levels).
McClelland RL et al. Circulation 2006;113:30-37 (comparison with people of the same age, sex and
background); Am J Cardiol 2009;103:59-63 (arterial age).
Grundy SM et al. Circulation 2019;139:e1082, Table 8 (CAC 0: reassess in 5-10 years; exceptions).
Hokanson JE et al. AJR 2004; Sevrukov AB et al. AJR 2005 (change beyond scan-to-scan variability).
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from typing import Any

import jinja2

from interpretation.arterial_age import arterial_age
from interpretation.cac_drs import category_for
from interpretation.context import PatientContext
from interpretation.errors import UnsupportedLocaleError
from interpretation.mesa import MESA_MAX_AGE_YEARS, MESA_MIN_AGE_YEARS, mesa_percentile
from interpretation.progression import Progression

#: Locales with a full set of templates under ``interpretation/templates/``.
SUPPORTED_LOCALES: tuple[str, ...] = ("en",)
_TEMPLATE = "patient_summary.txt.j2"


@functools.cache
def _environment() -> jinja2.Environment:
    # Plain text, not HTML: nothing to escape. Undefined variables fail loudly in tests.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("interpretation", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def format_score(agatston: float) -> str:
    """A score as a patient reads it: whole numbers, and "less than 1" for a trace.

    Rounded down, so the number shown never crosses into a category above the one reported
    (99.7 is CAC-DRS A1 and is shown as 99, not 100).
    """
    if 0 < agatston < 1:
        return "less than 1"
    return str(math.floor(agatston))


def _comparison(agatston: float, context: PatientContext) -> tuple[str, int | None, int | None]:
    """Which comparison sentence applies: (variant, percentile, share of zero scores in 100)."""
    age = context.completed_years
    if age is None or not MESA_MIN_AGE_YEARS <= age <= MESA_MAX_AGE_YEARS:
        return "age", None, None
    if context.sex is None:
        return "sex", None, None
    result = mesa_percentile(agatston, context.age_years, context.sex, context.race)
    if not result.applicable or result.value is None or result.p_nonzero_pct is None:
        return "background", None, None
    if format_score(agatston) == "0":
        return "zero", 0, round(100 - result.p_nonzero_pct)
    if result.value == 0:
        return "low", 0, None
    return "percentile", result.value, None


def _long_date(day: datetime.date) -> str:
    """A date as the English template writes it, e.g. "1 March 2021"."""
    return f"{day.day} {day:%B} {day.year}"


def _progression_variant(progression: Progression | None) -> str | None:
    if progression is None:
        return None
    if not progression.beyond_repeatability:
        return "same"
    return "up" if progression.absolute_change > 0 else "down"


def _exceptions(context: PatientContext) -> str:
    """The reasons a score of 0 may still lead to a statin (Grundy 2019), in plain words."""
    parts = [
        text
        for text, flag in (
            ("smoke", context.current_smoker),
            ("have diabetes", context.diabetes),
            ("have heart disease in your family", context.family_history),
        )
        if flag
    ]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def summary_variables(
    agatston: float,
    context: PatientContext,
    *,
    progression: Progression | None = None,
) -> dict[str, Any]:
    """The values the template needs, computed from the score and the context.

    Raises
    ------
    InvalidInputError
        If the score is negative or not finite.
    """
    category = category_for(agatston)
    comparison, percentile, zero_share = _comparison(agatston, context)
    age = arterial_age(agatston, diabetes=context.diabetes)
    if age.over_84:
        arterial = "over_84"
    elif age.under_45:
        arterial = "under_45"
    else:
        arterial = "years"
    method_differs = progression is not None and any(
        "parameters" in w or "reconstruction" in w for w in progression.warnings
    )
    return {
        "category": category,
        "score_text": format_score(agatston),
        "comparison": comparison,
        "percentile": percentile,
        "zero_share": zero_share,
        "arterial": arterial,
        "arterial_years": None if age.years is None else round(age.years),
        "diabetes": bool(context.diabetes),
        "exceptions": _exceptions(context),
        "symptoms": " and ".join(context.symptoms),
        "progression": _progression_variant(progression),
        "prior_date": None if progression is None else _long_date(progression.prior_date),
        "prior_score_text": None
        if progression is None
        else format_score(progression.prior_agatston),
        "method_differs": method_differs,
    }


def patient_summary(
    agatston: float,
    context: PatientContext,
    *,
    progression: Progression | None = None,
    locale: str = "en",
) -> str:
    """The patient's summary in plain language.

    Parameters
    ----------
    agatston
        Total Agatston score (>= 0).
    context
        The patient (age, sex and background for the comparison; risk factors for the CAC 0
        exceptions; symptoms).
    progression
        The change against a prior scan, if any.
    locale
        Language of the text; one of :data:`SUPPORTED_LOCALES`.

    Returns
    -------
    str
        Paragraphs separated by blank lines, each headed by a question.

    Raises
    ------
    UnsupportedLocaleError
        If no templates exist for ``locale``.
    InvalidInputError
        If the score is negative or not finite.
    """
    if locale not in SUPPORTED_LOCALES:
        raise UnsupportedLocaleError(
            f"no patient summary templates for locale {locale!r}; supported: "
            + ", ".join(SUPPORTED_LOCALES)
        )
    variables = summary_variables(agatston, context, progression=progression)
    text = _environment().get_template(f"{locale}/{_TEMPLATE}").render(**variables)
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"
