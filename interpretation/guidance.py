"""Decision support for the referring clinician: what the guidelines say for this score.

Each item carries its source. The items restate published recommendations for the clinician to
weigh with everything else they know; they are not orders.

References
----------
Grundy SM et al. 2018 AHA/ACC guideline on the management of blood cholesterol. Circulation
2019;139:e1082, Table 8 (statin discussion by CAC).
Hecht HS et al. CAC-DRS. J Cardiovasc Comput Tomogr 2018;12:185-191 (recommendations by category;
wording not verified from the full text; aspirin advice predates 2019 guidance).
Arnett DK et al. 2019 ACC/AHA primary prevention guideline. Circulation 2019;140:e596 (lifestyle).
Budoff MJ et al. JACC 2009 (absolute CAC predicts events better than percentiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from interpretation.cac_drs import A2_MIN_AGATSTON, category_for
from interpretation.context import PatientContext
from interpretation.mesa import MesaPercentile
from interpretation.progression import Progression

GRUNDY_2019 = "Grundy SM et al., AHA/ACC cholesterol guideline, Circulation 2019;139:e1082, Table 8"
HECHT_2018 = "Hecht HS et al., CAC-DRS, J Cardiovasc Comput Tomogr 2018;12:185-191"
ARNETT_2019 = "Arnett DK et al., ACC/AHA primary prevention guideline, Circulation 2019;140:e596"
BUDOFF_2009 = "Budoff MJ et al., JACC 2009"
PROGRESSION_SOURCES = "Hokanson JE et al., AJR 2004; Sevrukov AB et al., AJR 2005"

#: Age from which CAC 1-99 especially favours a statin (Grundy, Circulation 2019, Table 8).
STATIN_FAVOURED_FROM_AGE_YEARS = 55
#: MESA percentile at or above which a statin is indicated (Grundy, Circulation 2019, Table 8).
STATIN_INDICATED_FROM_PERCENTILE = 75
#: Reassess a CAC of 0 after this many years (Grundy, Circulation 2019, Table 8).
RESCAN_AFTER_ZERO_YEARS = (5, 10)

_CAC_DRS_2018 = (
    "A0: statin generally not recommended unless diabetes, family history of premature CAD or "
    "smoking.",
    "A1: moderate-intensity statin.",
    "A2: moderate- to high-intensity statin; aspirin 81 mg if bleeding risk is low.",
    "A3: high-intensity statin; aspirin 81 mg if bleeding risk is low.",
)


class GuidanceTopic(StrEnum):
    """What a guidance item is about; values are wire codes."""

    SCOPE = "scope"
    STATIN = "statin"
    CAC_DRS_2018 = "cac_drs_2018"
    PERCENTILE = "percentile"
    PROGRESSION = "progression"
    LIFESTYLE = "lifestyle"


@dataclass(frozen=True, slots=True)
class GuidanceItem:
    """One recommendation or note for the referring clinician, with its source."""

    topic: GuidanceTopic
    text: str
    source: str


def clinician_guidance(
    agatston: float,
    context: PatientContext,
    *,
    percentile: MesaPercentile | None = None,
    progression: Progression | None = None,
) -> tuple[GuidanceItem, ...]:
    """Guidance for the referring clinician, each item with its source.

    Parameters
    ----------
    agatston
        Total Agatston score (>= 0).
    context
        The patient (risk enhancers, age).
    percentile
        The MESA percentile, when one applies (>= 75th indicates a statin per Grundy 2019).
    progression
        The change against a prior scan, if any.

    Returns
    -------
    tuple of GuidanceItem
        Scope, the ACC/AHA statin discussion by CAC, the CAC-DRS 2018 recommendation (labelled
        as such), percentile context, progression and lifestyle.

    Raises
    ------
    InvalidInputError
        If the score is negative or not finite.
    """
    category = category_for(agatston)
    items = [
        GuidanceItem(
            GuidanceTopic.SCOPE,
            "Decision support for the referring clinician: weigh it with the whole clinical "
            "picture and the patient's preferences; it is not a prescription.",
            "this service",
        ),
        GuidanceItem(
            GuidanceTopic.STATIN, _statin_text(agatston, context, percentile), GRUNDY_2019
        ),
        GuidanceItem(
            GuidanceTopic.CAC_DRS_2018,
            f"Per CAC-DRS 2018, {_CAC_DRS_2018[category]} The aspirin advice predates 2019 "
            "guidance that de-emphasises aspirin in primary prevention.",
            HECHT_2018,
        ),
    ]
    if percentile is not None and percentile.applicable and percentile.value is not None:
        items.append(
            GuidanceItem(
                GuidanceTopic.PERCENTILE,
                f"MESA percentile {percentile.value} ({percentile.reason}) is context: the "
                "absolute score predicts events better than the percentile.",
                BUDOFF_2009,
            )
        )
    if progression is not None:
        items.append(
            GuidanceItem(
                GuidanceTopic.PROGRESSION, _progression_text(progression), PROGRESSION_SOURCES
            )
        )
    items.append(
        GuidanceItem(
            GuidanceTopic.LIFESTYLE,
            "Whatever the score: heart-healthy diet, regular physical activity, no smoking, "
            "weight, blood pressure and diabetes control."
            + (" This patient smokes: offer help to stop." if context.current_smoker else ""),
            ARNETT_2019,
        )
    )
    return tuple(items)


def _statin_text(
    agatston: float, context: PatientContext, percentile: MesaPercentile | None
) -> str:
    category = category_for(agatston)
    high_percentile = (
        percentile is not None
        and percentile.value is not None
        and percentile.value >= STATIN_INDICATED_FROM_PERCENTILE
    )
    if category == 0:
        low, high = RESCAN_AFTER_ZERO_YEARS
        text = (
            "CAC 0: it is reasonable to withhold statin therapy and reassess CAC in "
            f"{low}-{high} years, unless the patient smokes, has diabetes or a family history "
            "of premature ASCVD."
        )
        present = [
            name
            for name, flag in (
                ("smokes", context.current_smoker),
                ("has diabetes", context.diabetes),
                ("has a family history of heart disease", context.family_history),
            )
            if flag
        ]
        unknown = [
            name
            for name, flag in (
                ("smoking", context.current_smoker),
                ("diabetes", context.diabetes),
                ("family history", context.family_history),
            )
            if flag is None
        ]
        if present:
            text += (
                f" This patient {' and '.join(present)}: the exception applies, so CAC 0 does not "
                "by itself support withholding a statin."
            )
        if unknown:
            text += f" Not recorded: {', '.join(unknown)}; check before relying on CAC 0."
        return text
    if agatston >= A2_MIN_AGATSTON:
        return "CAC >= 100: statin therapy is indicated."
    if high_percentile and percentile is not None:
        return f"MESA percentile {percentile.value} (>= 75th): statin therapy is indicated."
    text = (
        f"CAC 1-99 favours statin therapy, especially at age >= {STATIN_FAVOURED_FROM_AGE_YEARS}."
    )
    age = context.completed_years
    if age is not None:
        text += (
            f" This patient is {age}."
            if age >= STATIN_FAVOURED_FROM_AGE_YEARS
            else f" This patient is {age}, below {STATIN_FAVOURED_FROM_AGE_YEARS}."
        )
    return text


def _progression_text(progression: Progression) -> str:
    change = progression.absolute_change
    text = (
        f"Change since {progression.prior_date.isoformat()}: {change:+.1f} AU "
        f"(from {progression.prior_agatston:.1f})"
    )
    if progression.annualised_change_per_year is not None:
        text += f", {progression.annualised_change_per_year:+.1f} AU/yr"
    text += (
        ". Significant progression by the square-root rule: "
        + ("yes" if progression.hokanson_significant else "no")
        + f"; beyond scan-to-scan variability (+/- {progression.sevrukov_bound:.1f} AU): "
        + ("yes" if progression.beyond_repeatability else "no")
        + "."
    )
    return text
