"""Whether a calcium score is the right test for this patient.

The rules come from the patient information this project grew from, as summarised in the
project's clinical reference (section 9); the age ranges are where the score is most informative,
not limits on who may be scanned.

References
----------
Hecht HS et al. J Cardiovasc Comput Tomogr 2018;12:185-191 (CAC-DRS: the score is for people
without known coronary disease).
Arnett DK et al. 2019 ACC/AHA guideline on the primary prevention of cardiovascular disease.
Circulation 2019;140:e596 (CAC for risk assessment in primary prevention).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from interpretation.context import PatientContext, Sex


class FindingCode(StrEnum):
    """What an appropriateness finding is about; values are wire codes."""

    SYMPTOMS = "symptoms"
    KNOWN_CAD = "known_cad"
    PREGNANT = "pregnant"
    TRYING_TO_CONCEIVE = "trying_to_conceive"
    AGE_BELOW_INFORMATIVE_RANGE = "age_below_informative_range"
    AGE_ABOVE_INFORMATIVE_RANGE = "age_above_informative_range"
    MAN_OVER_80 = "man_over_80"
    AGE_UNKNOWN = "age_unknown"
    SEX_UNKNOWN = "sex_unknown"


class Severity(StrEnum):
    """How much a finding matters; values are wire codes.

    ``info``: context for reading the score. ``warning``: the score is of limited value or
    another test fits better. ``stop``: the scan should not be done, or the score adds nothing.
    """

    INFO = "info"
    WARNING = "warning"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class AppropriatenessFinding:
    """One finding, with a sentence for the referring clinician."""

    code: FindingCode
    severity: Severity
    message: str


#: Ages (completed years) at which the score is most informative (clinical reference section 9).
WOMEN_INFORMATIVE_AGE_YEARS = (35, 70)
MEN_INFORMATIVE_AGE_YEARS = (40, 60)
#: Men older than this almost all score high, so the score adds little (clinical reference s. 9).
MEN_LITTLE_VALUE_OVER_AGE_YEARS = 80


def appropriateness(context: PatientContext) -> tuple[AppropriatenessFinding, ...]:
    """Check the patient's context against the rules for when a calcium score helps.

    Parameters
    ----------
    context
        The patient. Unknown flags (``None``) raise no finding, except unknown age or sex, which
        are reported because the age rules cannot be checked.

    Returns
    -------
    tuple of AppropriatenessFinding
        Most severe first; empty when nothing speaks against the test. Ages are compared in
        completed years: women 35-70 and men 40-60 inclusive are in the most informative range;
        "men over 80" means 81 or older in completed years.
    """
    findings: list[AppropriatenessFinding] = []
    if context.pregnant:
        findings.append(
            AppropriatenessFinding(
                FindingCode.PREGNANT,
                Severity.STOP,
                "The patient is pregnant: a calcium-score CT should not be done.",
            )
        )
    if context.trying_to_conceive:
        findings.append(
            AppropriatenessFinding(
                FindingCode.TRYING_TO_CONCEIVE,
                Severity.STOP,
                "The patient is trying to conceive: a calcium-score CT should not be done.",
            )
        )
    if context.known_cad:
        history = [
            name
            for name, flag in (
                ("heart attack", context.prior_mi),
                ("bypass surgery", context.prior_cabg),
                ("stent or angioplasty", context.prior_pci),
            )
            if flag
        ]
        findings.append(
            AppropriatenessFinding(
                FindingCode.KNOWN_CAD,
                Severity.STOP,
                "Known coronary disease"
                + (f" (prior {', '.join(history)})" if history else "")
                + ": the calcium score adds nothing to management.",
            )
        )
    if context.symptoms:
        findings.append(
            AppropriatenessFinding(
                FindingCode.SYMPTOMS,
                Severity.WARNING,
                f"Symptoms recorded ({', '.join(context.symptoms)}): a CT coronary angiogram is "
                "more appropriate than a calcium score, which does not show narrowing or "
                "non-calcified plaque.",
            )
        )
    findings.extend(_age_findings(context))
    order = {Severity.STOP: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return tuple(sorted(findings, key=lambda f: order[f.severity]))


def _age_findings(context: PatientContext) -> list[AppropriatenessFinding]:
    age = context.completed_years
    if age is None:
        return [
            AppropriatenessFinding(
                FindingCode.AGE_UNKNOWN,
                Severity.INFO,
                "Age unknown: whether the patient is in the age range where the score is most "
                "informative cannot be checked, and no MESA percentile applies.",
            )
        ]
    if context.sex is None:
        return [
            AppropriatenessFinding(
                FindingCode.SEX_UNKNOWN,
                Severity.INFO,
                "Sex unknown: the most informative age ranges (women 35-70, men 40-60) and the "
                "MESA comparisons are by sex and cannot be applied.",
            )
        ]
    if context.sex == Sex.MALE and age > MEN_LITTLE_VALUE_OVER_AGE_YEARS:
        return [
            AppropriatenessFinding(
                FindingCode.MAN_OVER_80,
                Severity.WARNING,
                f"Man aged {age}: men over {MEN_LITTLE_VALUE_OVER_AGE_YEARS} almost all have a "
                "high score, so it adds little to decisions.",
            )
        ]
    low, high = (
        WOMEN_INFORMATIVE_AGE_YEARS if context.sex == Sex.FEMALE else MEN_INFORMATIVE_AGE_YEARS
    )
    group = "women" if context.sex == Sex.FEMALE else "men"
    if age < low:
        return [
            AppropriatenessFinding(
                FindingCode.AGE_BELOW_INFORMATIVE_RANGE,
                Severity.INFO,
                f"Age {age} is below {low}-{high}, the range where the score is most informative "
                f"for {group}: read the result with that in mind.",
            )
        ]
    if age > high:
        return [
            AppropriatenessFinding(
                FindingCode.AGE_ABOVE_INFORMATIVE_RANGE,
                Severity.INFO,
                f"Age {age} is above {low}-{high}, the range where the score is most informative "
                f"for {group}: read the result with that in mind.",
            )
        ]
    return []
