"""MESA percentile of a calcium score for the patient's age, sex and race/ethnicity.

The figures are those of the official MESA CAC Score Reference Values calculator, shipped in
``interpretation/data/mesa_cac_percentiles.csv`` (provenance in ``interpretation/data/README.md``).
No closed formula is published, so nothing here interpolates or extrapolates: ages 45-84, the two
sexes and the four MESA groups only.

References
----------
McClelland RL et al. Distribution of coronary artery calcium by race, gender, and age: results
from the Multi-Ethnic Study of Atherosclerosis (MESA). Circulation 2006;113:30-37.
Budoff MJ et al. JACC 2009 (absolute CAC predicts events better than percentiles: the percentile is
context, not the main risk figure).
"""

from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass
from importlib import resources

from interpretation.context import MesaRace, Sex, check_agatston
from interpretation.errors import InvalidInputError, ReferenceDataError

#: Ages covered by MESA (McClelland, Circulation 2006), completed years.
MESA_MIN_AGE_YEARS = 45
MESA_MAX_AGE_YEARS = 84

_DATA_FILE = "mesa_cac_percentiles.csv"
_PERCENTILES = range(1, 100)


@dataclass(frozen=True, slots=True)
class MesaCell:
    """One row of the calculator's table: a race x sex x age cell."""

    race: MesaRace
    sex: Sex
    age_years: int
    p_nonzero_pct: float
    p25: float
    p50: float
    p75: float
    p90: float
    min_score_by_percentile: tuple[float, ...]  # index n-1 -> smallest score reported as n


@dataclass(frozen=True, slots=True)
class MesaPercentile:
    """Where a score lies among MESA participants of the same age, sex and race/ethnicity.

    Attributes
    ----------
    value
        Percentile 0-99 (0 for a score of 0, the calculator's convention, and for a score below
        the cell's 1st percentile); ``None`` when not applicable.
    applicable
        Whether a MESA percentile applies to this patient.
    reason
        Why not, or which cell was used.
    p_nonzero_pct
        Share (%) of people in the cell with any calcium; ``None`` when not applicable.
    age_years_used
        The integer age of the cell used (completed years); ``None`` when not applicable.
    p50
        Median Agatston score of the cell, for context; ``None`` when not applicable.
    p75
        75th-percentile Agatston score of the cell; ``None`` when not applicable.
    """

    value: int | None
    applicable: bool
    reason: str
    p_nonzero_pct: float | None = None
    age_years_used: int | None = None
    p50: float | None = None
    p75: float | None = None


@functools.cache
def load_table() -> dict[tuple[MesaRace, Sex, int], MesaCell]:
    """Read the shipped MESA table once.

    Raises
    ------
    ReferenceDataError
        If the data file is missing, has other columns, or does not hold all 320 cells.
    """
    try:
        text = resources.files("interpretation").joinpath("data", _DATA_FILE).read_text("utf-8")
    except OSError as exc:
        raise ReferenceDataError(f"cannot read interpretation/data/{_DATA_FILE}: {exc}") from exc
    table: dict[tuple[MesaRace, Sex, int], MesaCell] = {}
    try:
        for row in csv.DictReader(io.StringIO(text)):
            cell = MesaCell(
                race=MesaRace(row["race"]),
                sex=Sex(row["sex"]),
                age_years=int(row["age"]),
                p_nonzero_pct=float(row["p_nonzero_pct"]),
                p25=float(row["p25"]),
                p50=float(row["p50"]),
                p75=float(row["p75"]),
                p90=float(row["p90"]),
                min_score_by_percentile=tuple(
                    float(row[f"min_score_pct{n}"]) for n in _PERCENTILES
                ),
            )
            table[(cell.race, cell.sex, cell.age_years)] = cell
    except (KeyError, ValueError) as exc:
        raise ReferenceDataError(f"malformed interpretation/data/{_DATA_FILE}: {exc}") from exc
    expected = len(MesaRace) * len(Sex) * (MESA_MAX_AGE_YEARS - MESA_MIN_AGE_YEARS + 1)
    if len(table) != expected:
        raise ReferenceDataError(
            f"interpretation/data/{_DATA_FILE} holds {len(table)} cells, expected {expected}"
        )
    return table


def mesa_percentile(
    agatston: float, age_years: float | None, sex: Sex | None, race: MesaRace | None
) -> MesaPercentile:
    """The MESA percentile of a score, or the reason none applies.

    Parameters
    ----------
    agatston
        Agatston score (>= 0). It is rounded to the nearest whole number first, as the calculator
        takes whole scores (so 0.4 counts as 0 and 0.6 as 1).
    age_years
        Age in years; fractional ages use completed years (the floor), so 84.9 is 84 and 44.9 is
        44 (outside MESA).
    sex, race
        ``None`` means unknown (or, for race, outside the four MESA groups).

    Returns
    -------
    MesaPercentile
        ``value`` = the largest percentile n whose smallest score is <= the score; 0 for a score
        of 0. Not applicable (``value`` None) outside ages 45-84, for an unknown sex or a
        race/ethnicity outside White, Black, Hispanic, Chinese, with the reason in ``reason``.

    Raises
    ------
    InvalidInputError
        If the score is negative or not finite, or the age negative.

    References
    ----------
    McClelland RL et al. Circulation 2006;113:30-37 (MESA CAC Score Reference Values calculator).
    """
    score = check_agatston(agatston)
    if age_years is None:
        return MesaPercentile(None, False, "age unknown: MESA percentiles are by age")
    if not math.isfinite(age_years) or age_years < 0:
        raise InvalidInputError(f"age_years must be a finite number >= 0, got {age_years!r}")
    age = math.floor(age_years)
    if not MESA_MIN_AGE_YEARS <= age <= MESA_MAX_AGE_YEARS:
        return MesaPercentile(
            None,
            False,
            f"age {age} is outside the MESA range {MESA_MIN_AGE_YEARS}-{MESA_MAX_AGE_YEARS}: "
            "no MESA percentile applies (not extrapolated)",
        )
    if sex is None:
        return MesaPercentile(None, False, "sex unknown: MESA percentiles are by sex")
    if race is None:
        return MesaPercentile(
            None,
            False,
            "race/ethnicity unknown or outside the four MESA groups (White, Black, Hispanic, "
            "Chinese): no MESA percentile applies",
        )
    cell = load_table()[(MesaRace(race), Sex(sex), age)]
    # Half-up rounding: the calculator is given whole Agatston scores.
    whole = math.floor(score + 0.5)
    value = 0
    if whole > 0:
        for n, minimum in zip(_PERCENTILES, cell.min_score_by_percentile, strict=True):
            if whole >= minimum:
                value = n
    return MesaPercentile(
        value=value,
        applicable=True,
        reason=f"MESA {cell.race.value} {cell.sex.value}, age {cell.age_years}",
        p_nonzero_pct=cell.p_nonzero_pct,
        age_years_used=cell.age_years,
        p50=cell.p50,
        p75=cell.p75,
    )
