"""CAC-DRS category, vessel modifier and the risk level it stands for.

References
----------
Hecht HS et al. CAC-DRS: Coronary Artery Calcium Data and Reporting System. An expert consensus
document of the Society of Cardiovascular Computed Tomography (SCCT). J Cardiovasc Comput Tomogr
2018;12:185-191. Category boundaries as restated by the 2023 multisociety appropriate use
criteria (exactly 300 is A3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from interpretation.context import check_agatston
from interpretation.errors import InvalidInputError
from scoring.parameters import ARTERIES, Artery

#: Lower Agatston bound of CAC-DRS A1, A2 and A3 (Hecht, JCCT 2018). Not 100/400: 100-399 and
#: >= 400 are older, non-CAC-DRS bands.
A1_MIN_AGATSTON = 1.0
A2_MIN_AGATSTON = 100.0
A3_MIN_AGATSTON = 300.0


class RiskCategory(StrEnum):
    """Risk level attached to each CAC-DRS category (Hecht, JCCT 2018); values are wire codes."""

    VERY_LOW = "very_low"
    MILDLY_INCREASED = "mildly_increased"
    MODERATELY_INCREASED = "moderately_increased"
    MODERATELY_TO_SEVERELY_INCREASED = "moderately_to_severely_increased"

    @property
    def text(self) -> str:
        """The level in words, as CAC-DRS names it."""
        return _RISK_TEXT[self]


_RISK_TEXT = {
    RiskCategory.VERY_LOW: "very low",
    RiskCategory.MILDLY_INCREASED: "mildly increased",
    RiskCategory.MODERATELY_INCREASED: "moderately increased",
    RiskCategory.MODERATELY_TO_SEVERELY_INCREASED: "moderately to severely increased",
}
_RISK_BY_CATEGORY = (
    RiskCategory.VERY_LOW,
    RiskCategory.MILDLY_INCREASED,
    RiskCategory.MODERATELY_INCREASED,
    RiskCategory.MODERATELY_TO_SEVERELY_INCREASED,
)


@dataclass(frozen=True, slots=True)
class CACDRS:
    """A CAC-DRS classification.

    Attributes
    ----------
    category
        0-3 for A0-A3.
    vessels
        The N modifier: how many of LM, LAD, LCX, RCA have calcium; ``None`` when no per-artery
        scores were given.
    label
        The report text, e.g. ``"CAC-DRS A2/N3"``; N is left out when it is 0 or unknown.
    """

    category: int
    vessels: int | None
    label: str

    @property
    def risk_category(self) -> RiskCategory:
        """The risk level CAC-DRS attaches to this category."""
        return _RISK_BY_CATEGORY[self.category]


def category_for(agatston: float) -> int:
    """The CAC-DRS A category (0-3) of an Agatston score.

    Raises
    ------
    InvalidInputError
        If the score is negative or not finite.
    """
    value = check_agatston(agatston)
    if value >= A3_MIN_AGATSTON:
        return 3
    if value >= A2_MIN_AGATSTON:
        return 2
    # Any calcium at all is A1: fractional scores between 0 and 1 (possible after slice-increment
    # normalisation) are not zero.
    if value > 0:
        return 1
    return 0


def cac_drs(agatston: float, by_artery: Mapping[Artery, float] | None = None) -> CACDRS:
    """Classify a total Agatston score, with the vessel modifier when per-artery scores are known.

    Parameters
    ----------
    agatston
        Total Agatston score (>= 0).
    by_artery
        Agatston score per artery (LM, LAD, LCX, RCA); arteries not listed count as 0.

    Returns
    -------
    CACDRS
        Category 0 (score 0), 1 (1-99), 2 (100-299) or 3 (>= 300; exactly 300 is A3), and N.

    Raises
    ------
    InvalidInputError
        If a score is negative or not finite, or a key is not one of the four arteries.

    References
    ----------
    Hecht HS et al. J Cardiovasc Comput Tomogr 2018;12:185-191.
    """
    category = category_for(agatston)
    vessels: int | None = None
    if by_artery is not None:
        vessels = 0
        for key, score in by_artery.items():
            if key not in ARTERIES:
                raise InvalidInputError(
                    f"by_artery key {key!r} is not an artery; use one of "
                    + ", ".join(a.value for a in ARTERIES)
                )
            if check_agatston(score, f"agatston of {key}") > 0:
                vessels += 1
    label = f"CAC-DRS A{category}"
    if category > 0 and vessels:
        label += f"/N{vessels}"
    return CACDRS(category=category, vessels=vessels, label=label)


def risk_category(agatston: float) -> RiskCategory:
    """The CAC-DRS risk level of a score: very low, mildly, moderately, moderately-to-severely
    increased (Hecht, JCCT 2018)."""
    return _RISK_BY_CATEGORY[category_for(agatston)]
