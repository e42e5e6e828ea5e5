"""What the interpretation needs to know about the patient, and how EHR race codes map to MESA.

Everything a clinician may not know is optional: ``None`` always means *unknown*, never *no*.
Functions that need a missing value say what is missing instead of guessing it.

References
----------
McClelland RL et al. Distribution of coronary artery calcium by race, gender, and age: results
from the Multi-Ethnic Study of Atherosclerosis (MESA). Circulation 2006;113:30-37.
HL7 US Core race and ethnicity extensions, CDC Race & Ethnicity code system
(urn:oid:2.16.840.1.113883.6.238).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from interpretation.errors import InvalidInputError


class Sex(StrEnum):
    """Sex as used by the MESA reference values and risk equation; values are the wire codes
    (FHIR ``AdministrativeGender`` female/male)."""

    FEMALE = "female"
    MALE = "male"


class MesaRace(StrEnum):
    """The four race/ethnicity groups studied in MESA (McClelland, Circulation 2006)."""

    WHITE = "white"
    BLACK = "black"
    HISPANIC = "hispanic"
    CHINESE = "chinese"


#: CDC Race & Ethnicity codes (urn:oid:2.16.840.1.113883.6.238) used by the US Core extensions.
CDC_WHITE = "2106-3"
CDC_BLACK = "2054-5"
CDC_ASIAN = "2028-9"
CDC_CHINESE = "2034-7"
CDC_HISPANIC = "2135-2"

_RACE_BY_CDC_CODE: dict[str, MesaRace] = {
    CDC_WHITE: MesaRace.WHITE,
    CDC_BLACK: MesaRace.BLACK,
    CDC_CHINESE: MesaRace.CHINESE,
}


def race_from_us_core(race_codes: Sequence[str], ethnicity_codes: Sequence[str]) -> MesaRace | None:
    """Map US Core race and ethnicity codes to a MESA group, or ``None`` when none applies.

    Parameters
    ----------
    race_codes
        CDC codes from the US Core race extension (``ombCategory`` and ``detailed``), e.g.
        ``["2028-9", "2034-7"]`` for Asian / Chinese.
    ethnicity_codes
        CDC codes from the US Core ethnicity extension, e.g. ``["2135-2"]`` for Hispanic or Latino.

    Returns
    -------
    MesaRace or None
        ``HISPANIC`` whenever the ethnicity is Hispanic or Latino (MESA classified Hispanic
        participants by ethnicity, whatever their race); otherwise ``WHITE`` (2106-3), ``BLACK``
        (2054-5) or ``CHINESE`` (the detailed code 2034-7 under Asian 2028-9) when exactly one of
        these groups is named. ``None`` (no MESA group applies) for no codes, any other race (for
        example Asian without the Chinese detail, American Indian, Pacific Islander) and for
        several races: MESA assigned each participant one group, and choosing one for a person of
        several would be a guess.

    Notes
    -----
    The Asian category code (2028-9) beside the Chinese detail code is not a second race: it is
    the OMB category the detail belongs to. A race code this function does not know (including
    "other race" 2131-1 or data-absent reasons) makes the result ``None``.
    """
    if CDC_HISPANIC in ethnicity_codes:
        return MesaRace.HISPANIC
    groups: set[MesaRace] = set()
    unknown = False
    for code in race_codes:
        if code == CDC_ASIAN:
            continue
        race = _RACE_BY_CDC_CODE.get(code)
        if race is None:
            unknown = True
        else:
            groups.add(race)
    if CDC_ASIAN in race_codes and MesaRace.CHINESE not in groups:
        unknown = True
    if unknown or len(groups) != 1:
        return None
    return groups.pop()


@dataclass(frozen=True, slots=True)
class PriorScore:
    """An earlier calcium score of the same patient.

    Parameters
    ----------
    date
        The date of the earlier scan.
    agatston
        Its Agatston score (>= 0).
    profile
        A short description of how it was scored (threshold, minimum area, slice thickness,
        kernel, kVp...), compared as text with the current scan's profile; ``None`` if unknown.
    source
        Where it came from (e.g. an Observation reference), for the reader; ``None`` if unknown.
    """

    date: datetime.date
    agatston: float
    profile: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        check_agatston(self.agatston, "prior agatston")


@dataclass(frozen=True, slots=True)
class PatientContext:
    """What is known about the patient; every ``None`` means unknown.

    Parameters
    ----------
    age_years
        Age at the scan in years (may be fractional).
    sex
        Female or male; ``None`` if unknown or neither.
    race
        The MESA group, or ``None``. With ``race_detail`` set, ``None`` means the recorded
        race/ethnicity is outside the four MESA groups; with ``race_detail`` also ``None`` it
        means unknown.
    race_detail
        What the EHR recorded, in words, e.g. ``"Asian (not Chinese)"`` or ``"several races"``.
    total_cholesterol_mg_dl, hdl_mg_dl, systolic_bp_mmhg
        Latest values, mg/dL and mmHg.
    on_bp_medication, on_lipid_medication, current_smoker, diabetes, family_history
        Risk factors as in the MESA risk score (family history of heart attack).
    symptoms
        Symptoms in words, e.g. ``("chest pain", "breathlessness")``; empty if none are recorded.
    prior_mi, prior_cabg, prior_pci
        Known coronary disease: heart attack, bypass surgery, stent or angioplasty.
    prior_cad
        Known coronary disease of a kind not given above (e.g. from a command-line flag).
    pregnant, trying_to_conceive
        Pregnancy status.
    prior_scores
        Earlier calcium scores, in any order.
    """

    age_years: float | None = None
    sex: Sex | None = None
    race: MesaRace | None = None
    race_detail: str | None = None
    total_cholesterol_mg_dl: float | None = None
    hdl_mg_dl: float | None = None
    systolic_bp_mmhg: float | None = None
    on_bp_medication: bool | None = None
    on_lipid_medication: bool | None = None
    current_smoker: bool | None = None
    diabetes: bool | None = None
    family_history: bool | None = None
    symptoms: tuple[str, ...] = ()
    prior_mi: bool | None = None
    prior_cabg: bool | None = None
    prior_pci: bool | None = None
    prior_cad: bool | None = None
    pregnant: bool | None = None
    trying_to_conceive: bool | None = None
    prior_scores: tuple[PriorScore, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("age_years", "total_cholesterol_mg_dl", "hdl_mg_dl", "systolic_bp_mmhg"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.age_years is not None and self.age_years > 130:
            raise InvalidInputError(f"age_years must be at most 130, got {self.age_years!r}")

    @property
    def completed_years(self) -> int | None:
        """Age in completed years (the floor of ``age_years``), as tables by integer age use."""
        return None if self.age_years is None else math.floor(self.age_years)

    @property
    def known_cad(self) -> bool | None:
        """True if any known coronary disease is recorded; False if all are recorded absent."""
        flags = (self.prior_mi, self.prior_cabg, self.prior_pci, self.prior_cad)
        if any(flags):
            return True
        if all(flag is False for flag in flags[:3]) and self.prior_cad is not True:
            return False
        return None

    def latest_prior(self, before: datetime.date | None = None) -> PriorScore | None:
        """The most recent prior score (strictly before ``before`` when given), or None."""
        candidates = [p for p in self.prior_scores if before is None or p.date < before]
        return max(candidates, key=lambda p: p.date) if candidates else None


def check_agatston(agatston: float, name: str = "agatston") -> float:
    """Return ``agatston`` as a float if it is a finite number >= 0, else raise.

    Raises
    ------
    InvalidInputError
        If the score is negative, NaN or infinite.
    """
    value = float(agatston)
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {agatston!r}")
    return value
