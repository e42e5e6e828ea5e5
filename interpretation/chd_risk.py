"""MESA 10-year coronary heart disease (CHD) risk with and without the calcium score.

References
----------
McClelland RL et al. 10-year coronary heart disease risk prediction using coronary artery calcium
and traditional risk factors: derivation in the MESA with validation in the HNR Study and the
DHS. JACC 2015;66:1643-1653.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from interpretation.context import MesaRace, PatientContext, Sex, check_agatston
from interpretation.mesa import MESA_MAX_AGE_YEARS, MESA_MIN_AGE_YEARS


@dataclass(frozen=True, slots=True)
class _Coefficients:
    """One column of the MESA risk equation (McClelland, JACC 2015): raw, uncentred values."""

    age: float
    male: float
    chinese: float
    black: float
    hispanic: float
    diabetes: float
    current_smoker: float
    total_cholesterol: float
    hdl: float
    lipid_medication: float
    systolic_bp: float
    bp_medication: float
    family_history: float
    ln_cac_plus_1: float
    baseline_survival_10y: float


#: With CAC (McClelland, JACC 2015). White is the reference group.
WITH_CAC = _Coefficients(
    age=0.0172,
    male=0.4079,
    chinese=-0.3475,
    black=0.0353,
    hispanic=-0.0222,
    diabetes=0.3892,
    current_smoker=0.3717,
    total_cholesterol=0.0043,
    hdl=-0.0114,
    lipid_medication=0.1206,
    systolic_bp=0.0066,
    bp_medication=0.2278,
    family_history=0.3239,
    ln_cac_plus_1=0.2743,
    baseline_survival_10y=0.99833,
)
#: Without CAC, for comparison (McClelland, JACC 2015).
WITHOUT_CAC = _Coefficients(
    age=0.0455,
    male=0.7496,
    chinese=-0.5055,
    black=-0.2111,
    hispanic=-0.1900,
    diabetes=0.5168,
    current_smoker=0.4732,
    total_cholesterol=0.0053,
    hdl=-0.0140,
    lipid_medication=0.2473,
    systolic_bp=0.0085,
    bp_medication=0.3381,
    family_history=0.4522,
    ln_cac_plus_1=0.0,
    baseline_survival_10y=0.99963,
)

#: The inputs the equation needs, by the name listed in ``CHDRisk.missing``.
REQUIRED_INPUTS: tuple[str, ...] = (
    "age",
    "sex",
    "race",
    "diabetes",
    "current_smoker",
    "total_cholesterol",
    "hdl",
    "systolic_bp",
    "bp_medication",
    "lipid_medication",
    "family_history",
)
_FIELD_BY_INPUT = {
    "age": "age_years",
    "sex": "sex",
    "race": "race",
    "diabetes": "diabetes",
    "current_smoker": "current_smoker",
    "total_cholesterol": "total_cholesterol_mg_dl",
    "hdl": "hdl_mg_dl",
    "systolic_bp": "systolic_bp_mmhg",
    "bp_medication": "on_bp_medication",
    "lipid_medication": "on_lipid_medication",
    "family_history": "family_history",
}


@dataclass(frozen=True, slots=True)
class CHDRisk:
    """10-year risk of a CHD event (%), or why it was not computed.

    Attributes
    ----------
    with_cac_pct
        Risk with the calcium score in the equation, rounded to 0.01 %; ``None`` if not computed.
    without_cac_pct
        Risk from risk factors alone, for comparison; ``None`` if not computed.
    missing
        The inputs that were unknown (names from :data:`REQUIRED_INPUTS`); empty when none.
    applicable
        Whether the equation was computed.
    reason
        Why not, or which equation was used.
    """

    with_cac_pct: float | None
    without_cac_pct: float | None
    missing: tuple[str, ...]
    applicable: bool
    reason: str


def _risk_pct(coef: _Coefficients, context: PatientContext, agatston: float) -> float:
    """100 x (1 - S0 ^ exp(X)) with every input known (checked by the caller)."""
    assert context.age_years is not None
    assert context.total_cholesterol_mg_dl is not None
    assert context.hdl_mg_dl is not None
    assert context.systolic_bp_mmhg is not None
    race = context.race
    x = (
        coef.age * context.age_years
        + coef.male * (context.sex == Sex.MALE)
        + coef.chinese * (race == MesaRace.CHINESE)
        + coef.black * (race == MesaRace.BLACK)
        + coef.hispanic * (race == MesaRace.HISPANIC)
        + coef.diabetes * bool(context.diabetes)
        + coef.current_smoker * bool(context.current_smoker)
        + coef.total_cholesterol * context.total_cholesterol_mg_dl
        + coef.hdl * context.hdl_mg_dl
        + coef.lipid_medication * bool(context.on_lipid_medication)
        + coef.systolic_bp * context.systolic_bp_mmhg
        + coef.bp_medication * bool(context.on_bp_medication)
        + coef.family_history * bool(context.family_history)
        + coef.ln_cac_plus_1 * math.log1p(agatston)
    )
    survival = float(coef.baseline_survival_10y ** math.exp(x))
    return 100.0 * (1.0 - survival)


def chd_risk_10y(context: PatientContext, agatston: float) -> CHDRisk:
    """MESA 10-year CHD risk with CAC and without, when every risk factor is known.

    Parameters
    ----------
    context
        The patient; every input of the equation must be known (not ``None``).
    agatston
        Agatston score (>= 0).

    Returns
    -------
    CHDRisk
        Risk (%) = 100 x (1 - S0 ^ exp(X)), X = sum of coefficient x raw value. Nothing is
        computed, and ``missing`` lists what is unknown, when any input is missing; nothing is
        computed either outside ages 45-84 or the four MESA groups (where it was derived).

    Raises
    ------
    InvalidInputError
        If the score is negative or not finite.

    References
    ----------
    McClelland RL et al. JACC 2015;66:1643-1653 (coefficients, S0; check: 70-year-old Hispanic
    man, SBP 130, HDL 50, total cholesterol 190, on BP medication -> 3.06 % with CAC 0, 8.61 %
    without CAC).
    """
    score = check_agatston(agatston)
    missing = tuple(
        name for name in REQUIRED_INPUTS if getattr(context, _FIELD_BY_INPUT[name]) is None
    )
    # An EHR that recorded a race outside the MESA groups has not *missed* it: say so apart.
    race_outside = context.race is None and context.race_detail is not None
    if race_outside:
        missing = tuple(name for name in missing if name != "race")
    if missing:
        return CHDRisk(None, None, missing, False, "not computed: unknown " + ", ".join(missing))
    if race_outside:
        return CHDRisk(
            None,
            None,
            (),
            False,
            f"not computed: race/ethnicity ({context.race_detail}) is outside the four MESA "
            "groups the equation was derived in",
        )
    age = context.completed_years
    assert age is not None
    if not MESA_MIN_AGE_YEARS <= age <= MESA_MAX_AGE_YEARS:
        return CHDRisk(
            None,
            None,
            (),
            False,
            f"not computed: age {age} is outside {MESA_MIN_AGE_YEARS}-{MESA_MAX_AGE_YEARS}, the "
            "ages the equation was derived in",
        )
    with_cac = round(_risk_pct(WITH_CAC, context, score), 2)
    without_cac = round(_risk_pct(WITHOUT_CAC, context, score), 2)
    return CHDRisk(with_cac, without_cac, (), True, "MESA 10-year CHD risk (McClelland, JACC 2015)")
