"""Arterial age: the age at which the average MESA participant has this calcium score.

References
----------
McClelland RL et al. Arterial age as a function of coronary artery calcium (from the Multi-Ethnic
Study of Atherosclerosis [MESA]). Am J Cardiol 2009;103:59-63. The full text was not reviewed for
this project (clinical.md section 7): the formula and its limits need review before clinical use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from interpretation.context import check_agatston
from interpretation.mesa import MESA_MAX_AGE_YEARS, MESA_MIN_AGE_YEARS

#: Arterial age (years) = INTERCEPT + SLOPE x ln(CAC + 1) (McClelland, Am J Cardiol 2009).
ARTERIAL_AGE_INTERCEPT_YEARS = 39.1
ARTERIAL_AGE_SLOPE_YEARS = 7.25

_BASE_CAVEAT = (
    "Arterial age is derived from MESA participants aged 45-84 "
    "(McClelland, Am J Cardiol 2009; full text not reviewed); it is not validated in people with "
    "diabetes."
)


@dataclass(frozen=True, slots=True)
class ArterialAge:
    """Arterial age estimated from a calcium score.

    Attributes
    ----------
    years
        The estimate, rounded to 0.1 year; ``None`` when it would pass 84 (``over_84``).
    over_84
        True when the formula passes the oldest MESA age (CAC above about 488): reported as
        "over 84", never as an extrapolated number.
    under_45
        True when the estimate is below the youngest MESA age (CAC 0 gives 39.1): read it as
        "younger than 45".
    text
        The result in words for a report, e.g. ``"72.6 years"`` or ``"over 84 years"``.
    caveats
        Limits of the estimate for this patient.
    """

    years: float | None
    over_84: bool
    under_45: bool
    text: str
    caveats: tuple[str, ...]


def arterial_age(agatston: float, *, diabetes: bool | None = None) -> ArterialAge:
    """Estimate arterial age from an Agatston score.

    Parameters
    ----------
    agatston
        Agatston score (>= 0).
    diabetes
        Whether the patient has diabetes; True adds a caveat (the estimate is not validated
        there).

    Returns
    -------
    ArterialAge
        39.1 + 7.25 x ln(CAC + 1): CAC 0 -> 39.1, 10 -> 56.5, 100 -> 72.6, 400 -> 82.6 years;
        above 84 reported as "over 84".

    Raises
    ------
    InvalidInputError
        If the score is negative or not finite.

    References
    ----------
    McClelland RL et al. Am J Cardiol 2009;103:59-63.
    """
    score = check_agatston(agatston)
    raw_years = ARTERIAL_AGE_INTERCEPT_YEARS + ARTERIAL_AGE_SLOPE_YEARS * math.log1p(score)
    caveats = [_BASE_CAVEAT]
    if diabetes:
        caveats.append("This patient has diabetes: the arterial age is not validated for them.")
    if raw_years > MESA_MAX_AGE_YEARS:
        caveats.append(
            f"The formula passes {MESA_MAX_AGE_YEARS}, the oldest age studied; no number is given."
        )
        return ArterialAge(None, True, False, f"over {MESA_MAX_AGE_YEARS} years", tuple(caveats))
    years = round(raw_years, 1)
    under_45 = raw_years < MESA_MIN_AGE_YEARS
    text = f"{years:.1f} years"
    if under_45:
        text += f" (below the ages studied: read as younger than {MESA_MIN_AGE_YEARS})"
        caveats.append(
            f"{years:.1f} is below {MESA_MIN_AGE_YEARS}, the youngest age studied in MESA."
        )
    return ArterialAge(years, False, under_45, text, tuple(caveats))
