"""Clinical interpretation of a coronary calcium score: pure functions, no I/O.

Scores and patient context in, interpretation out: CAC-DRS, MESA percentile, arterial age, MESA
10-year CHD risk, progression, appropriateness of the test, the risk category, decision support for
the referring clinician and a plain-language summary for the patient. Every number comes from the
project's clinical reference with its source cited beside it. The only files read are this
package's own data table and templates (through :mod:`importlib.resources`).
"""

from interpretation.appropriateness import (
    AppropriatenessFinding,
    FindingCode,
    Severity,
    appropriateness,
)
from interpretation.arterial_age import ArterialAge, arterial_age
from interpretation.cac_drs import CACDRS, RiskCategory, cac_drs, risk_category
from interpretation.chd_risk import CHDRisk, chd_risk_10y
from interpretation.context import MesaRace, PatientContext, PriorScore, Sex, race_from_us_core
from interpretation.errors import (
    InterpretationError,
    InvalidInputError,
    ReferenceDataError,
    UnsupportedLocaleError,
)
from interpretation.guidance import GuidanceItem, GuidanceTopic, clinician_guidance
from interpretation.interpret import Interpretation, interpret
from interpretation.mesa import MesaPercentile, mesa_percentile
from interpretation.progression import Progression, progression
from interpretation.summary import SUPPORTED_LOCALES, patient_summary

__all__ = [
    "CACDRS",
    "SUPPORTED_LOCALES",
    "AppropriatenessFinding",
    "ArterialAge",
    "CHDRisk",
    "FindingCode",
    "GuidanceItem",
    "GuidanceTopic",
    "Interpretation",
    "InterpretationError",
    "InvalidInputError",
    "MesaPercentile",
    "MesaRace",
    "PatientContext",
    "PriorScore",
    "Progression",
    "ReferenceDataError",
    "RiskCategory",
    "Severity",
    "Sex",
    "UnsupportedLocaleError",
    "appropriateness",
    "arterial_age",
    "cac_drs",
    "chd_risk_10y",
    "clinician_guidance",
    "interpret",
    "mesa_percentile",
    "patient_summary",
    "progression",
    "race_from_us_core",
    "risk_category",
]
