"""Change in the calcium score since an earlier scan, and whether it is more than noise.

References
----------
Hokanson JE et al. Evaluating changes in coronary artery calcium: an analytic method that accounts
for interscan variability. AJR 2004;182:1327-1332 (square-root rule).
Sevrukov AB et al. Serial electron beam CT measurements of coronary artery calcium: has your
patient's calcium score actually changed? AJR 2005 (repeatability bound).
Budoff MJ et al. Progression of coronary calcium and incident coronary heart disease events: MESA.
JACC 2013 (average 24.9 +/- 65.3 AU/yr; >= 300 AU/yr carried HR 3.8 for CHD).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from interpretation.context import PriorScore, check_agatston
from interpretation.errors import InvalidInputError

#: Significant progression: sqrt(CAC now) - sqrt(CAC before) >= 2.5 (Hokanson, AJR 2004).
HOKANSON_SQRT_DELTA = 2.5
#: Smallest significant change = +/- 4.930 x sqrt(baseline Agatston) (Sevrukov, AJR 2005).
SEVRUKOV_FACTOR = 4.930
#: From a baseline of 0, a follow-up above 11.6 AU is significant (Sevrukov, AJR 2005).
SEVRUKOV_ZERO_BASELINE_AU = 11.6
#: Annual change >= 300 AU/yr carried a hazard ratio of 3.8 for CHD (Budoff, JACC 2013).
RAPID_PROGRESSION_AU_PER_YEAR = 300.0
#: MESA average annual change, mean and SD in AU/yr (Budoff, JACC 2013).
MESA_MEAN_CHANGE_AU_PER_YEAR = 24.9
MESA_SD_CHANGE_AU_PER_YEAR = 65.3

_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class Progression:
    """Change against one earlier score.

    Attributes
    ----------
    prior_agatston, prior_date
        The earlier score and its date.
    absolute_change
        Agatston now minus before (AU; negative when lower).
    annualised_change_per_year
        ``absolute_change`` / ``years`` (AU/yr); ``None`` when both scans share a date.
    years
        Time between the scans in years (days / 365.25).
    hokanson_significant
        sqrt(now) - sqrt(before) >= 2.5 (Hokanson, AJR 2004).
    sevrukov_bound
        The smallest change beyond scan-to-scan variability: 4.930 x sqrt(before), or 11.6 AU
        from a baseline of 0 (Sevrukov, AJR 2005).
    beyond_repeatability
        |change| > ``sevrukov_bound``.
    warnings
        Why the comparison may mislead (different scoring, a same-day scan, fast progression).
    """

    prior_agatston: float
    prior_date: datetime.date
    absolute_change: float
    annualised_change_per_year: float | None
    years: float
    hokanson_significant: bool
    sevrukov_bound: float
    beyond_repeatability: bool
    warnings: tuple[str, ...]


def sevrukov_bound(baseline_agatston: float) -> float:
    """The smallest significant change from a baseline score (Sevrukov, AJR 2005).

    4.930 x sqrt(baseline); from a baseline of 0, 11.6 AU.
    """
    baseline = check_agatston(baseline_agatston, "baseline agatston")
    if baseline == 0:
        return SEVRUKOV_ZERO_BASELINE_AU
    return SEVRUKOV_FACTOR * math.sqrt(baseline)


def hokanson_significant(agatston_before: float, agatston_now: float) -> bool:
    """Significant progression by the square-root rule: sqrt(now) - sqrt(before) >= 2.5
    (Hokanson, AJR 2004)."""
    before = check_agatston(agatston_before, "agatston before")
    now = check_agatston(agatston_now, "agatston now")
    return math.sqrt(now) - math.sqrt(before) >= HOKANSON_SQRT_DELTA


def progression(
    agatston_now: float,
    date_now: datetime.date,
    prior: PriorScore,
    *,
    profile_now: str | None = None,
) -> Progression:
    """Compare the current score with an earlier one.

    Parameters
    ----------
    agatston_now
        The current Agatston score (>= 0).
    date_now
        The date of the current scan.
    prior
        The earlier score; its ``profile`` is compared with ``profile_now``.
    profile_now
        How the current scan was scored (same form as ``prior.profile``); ``None`` if unknown.

    Returns
    -------
    Progression
        Absolute and annualised change, Hokanson's rule, Sevrukov's bound, and warnings: scans
        scored with different parameters or reconstructions (or not known to be alike) should not
        be compared without care: serial scores are comparable only for like reconstructions and
        scoring parameters.

    Raises
    ------
    InvalidInputError
        If a score is negative or not finite, or the prior scan is dated after ``date_now``.
    """
    now = check_agatston(agatston_now, "agatston_now")
    before = float(prior.agatston)
    if prior.date > date_now:
        raise InvalidInputError(
            f"the prior scan ({prior.date.isoformat()}) is dated after this scan "
            f"({date_now.isoformat()}); check the dates"
        )
    years = (date_now - prior.date).days / _DAYS_PER_YEAR
    change = now - before
    warnings: list[str] = []
    annualised: float | None = None
    if years > 0:
        annualised = change / years
    else:
        warnings.append("Both scans share a date: no yearly rate is given.")
    if profile_now is not None and prior.profile is not None:
        if profile_now.strip() != prior.profile.strip():
            warnings.append(
                "The two scans were scored with different parameters or reconstructions "
                f"(now: {profile_now}; before: {prior.profile}): the change may partly reflect "
                "the method, not the patient."
            )
    else:
        warnings.append(
            "Not known whether both scans were scored with the same parameters and "
            "reconstruction; compare only like with like."
        )
    if annualised is not None and annualised >= RAPID_PROGRESSION_AU_PER_YEAR:
        warnings.append(
            f"Change of {annualised:.0f} AU/yr: >= {RAPID_PROGRESSION_AU_PER_YEAR:.0f} AU/yr "
            "carried a hazard ratio of 3.8 for CHD in MESA (Budoff, JACC 2013)."
        )
    bound = sevrukov_bound(before)
    return Progression(
        prior_agatston=before,
        prior_date=prior.date,
        absolute_change=change,
        annualised_change_per_year=annualised,
        years=years,
        hokanson_significant=hokanson_significant(before, now),
        sevrukov_bound=bound,
        beyond_repeatability=abs(change) > bound,
        warnings=tuple(warnings),
    )
