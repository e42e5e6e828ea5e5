"""Tests for interpretation.context: race mapping, patient context checks."""

from __future__ import annotations

import datetime

import pytest

from interpretation import InvalidInputError, MesaRace, PatientContext, PriorScore, Sex
from interpretation.context import race_from_us_core


class TestRaceFromUSCore:
    @pytest.mark.parametrize(
        ("race_codes", "ethnicity_codes", "expected"),
        [
            (["2106-3"], [], MesaRace.WHITE),
            (["2054-5"], ["2186-5"], MesaRace.BLACK),
            (["2028-9", "2034-7"], [], MesaRace.CHINESE),
            (["2034-7"], [], MesaRace.CHINESE),
            (["2106-3"], ["2135-2"], MesaRace.HISPANIC),
            ([], ["2135-2"], MesaRace.HISPANIC),
            (["2054-5", "2106-3"], ["2135-2"], MesaRace.HISPANIC),
        ],
    )
    def test_mesa_groups(
        self, race_codes: list[str], ethnicity_codes: list[str], expected: MesaRace
    ) -> None:
        assert race_from_us_core(race_codes, ethnicity_codes) == expected

    @pytest.mark.parametrize(
        "race_codes",
        [
            [],
            ["2028-9"],  # Asian without the Chinese detail
            ["2028-9", "2039-6"],  # Japanese
            ["1002-5"],  # American Indian or Alaska Native
            ["2076-8"],  # Native Hawaiian or Other Pacific Islander
            ["2106-3", "2054-5"],  # several races: MESA gave each person one group
            ["2106-3", "2028-9"],  # White and Asian (not Chinese)
            ["2131-1"],  # other race
        ],
    )
    def test_no_mesa_group(self, race_codes: list[str]) -> None:
        assert race_from_us_core(race_codes, ["2186-5"]) is None


class TestPatientContext:
    def test_everything_unknown_by_default(self) -> None:
        context = PatientContext()
        assert context.age_years is None
        assert context.known_cad is None
        assert context.completed_years is None

    def test_completed_years_is_the_floor(self) -> None:
        assert PatientContext(age_years=44.99).completed_years == 44
        assert PatientContext(age_years=45.0).completed_years == 45

    @pytest.mark.parametrize("name", ["age_years", "hdl_mg_dl", "systolic_bp_mmhg"])
    @pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
    def test_rejects_bad_numbers(self, name: str, value: float) -> None:
        with pytest.raises(InvalidInputError, match=name):
            PatientContext(**{name: value})  # type: ignore[arg-type]

    def test_rejects_impossible_age(self) -> None:
        with pytest.raises(InvalidInputError, match="age_years"):
            PatientContext(age_years=200)

    @pytest.mark.parametrize(
        ("flags", "expected"),
        [
            ({"prior_mi": True}, True),
            ({"prior_cabg": True, "prior_mi": False}, True),
            ({"prior_pci": True}, True),
            ({"prior_cad": True}, True),
            ({"prior_mi": False, "prior_cabg": False, "prior_pci": False}, False),
            ({"prior_mi": False}, None),
        ],
    )
    def test_known_cad(self, flags: dict[str, bool], expected: bool | None) -> None:
        assert PatientContext(sex=Sex.MALE, **flags).known_cad is expected  # type: ignore[arg-type]

    def test_latest_prior_before_a_date(self) -> None:
        older = PriorScore(datetime.date(2018, 1, 1), 10)
        newer = PriorScore(datetime.date(2022, 1, 1), 40)
        later = PriorScore(datetime.date(2027, 1, 1), 90)
        context = PatientContext(prior_scores=(newer, older, later))
        assert context.latest_prior(before=datetime.date(2026, 11, 26)) == newer
        assert context.latest_prior() == later
        assert context.latest_prior(before=datetime.date(2010, 1, 1)) is None

    def test_prior_score_rejects_negative(self) -> None:
        with pytest.raises(InvalidInputError, match="prior agatston"):
            PriorScore(datetime.date(2020, 1, 1), -1)
