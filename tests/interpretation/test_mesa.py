"""Tests for interpretation.mesa against the MESA calculator's figures (McClelland 2006)."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interpretation import InvalidInputError, MesaRace, Sex, mesa_percentile
from interpretation.mesa import load_table

SHIPPED_SHA256 = "3adab5dbe04acfbac8f4295977428314626a1fc8f8fb2048ced6a6f27e2b9467"


class TestShippedTable:
    def test_digest_matches_the_provenance_note(self) -> None:
        data = resources.files("interpretation").joinpath("data", "mesa_cac_percentiles.csv")
        assert hashlib.sha256(data.read_bytes()).hexdigest() == SHIPPED_SHA256
        readme = resources.files("interpretation").joinpath("data", "README.md").read_text()
        assert SHIPPED_SHA256 in readme
        assert "McClelland" in readme

    def test_all_cells(self) -> None:
        table = load_table()
        assert len(table) == 320
        for cell in table.values():
            mins = cell.min_score_by_percentile
            assert len(mins) == 99
            assert list(mins) == sorted(mins)
            assert 0 <= cell.p_nonzero_pct <= 100


class TestMesaPercentile:
    @pytest.mark.parametrize(
        ("age", "sex", "race", "agatston", "expected"),
        [
            (55, Sex.MALE, MesaRace.WHITE, 1, 43),
            (55, Sex.MALE, MesaRace.WHITE, 68, 75),
            (62, Sex.FEMALE, MesaRace.BLACK, 120, 91),
            (70, Sex.MALE, MesaRace.HISPANIC, 450, 84),
        ],
    )
    def test_calculator_examples(
        self, age: int, sex: Sex, race: MesaRace, agatston: float, expected: int
    ) -> None:
        result = mesa_percentile(agatston, age, sex, race)
        assert result.applicable
        assert result.value == expected
        assert result.age_years_used == age

    def test_zero_is_percentile_zero(self) -> None:
        result = mesa_percentile(0, 55, Sex.MALE, MesaRace.WHITE)
        assert result.value == 0
        assert result.p_nonzero_pct == 56.0

    def test_fractional_age_uses_completed_years(self) -> None:
        assert mesa_percentile(68, 55.99, Sex.MALE, MesaRace.WHITE).age_years_used == 55
        assert mesa_percentile(68, 84.9, Sex.MALE, MesaRace.WHITE).age_years_used == 84

    def test_score_rounded_to_whole_number(self) -> None:
        assert mesa_percentile(0.4, 55, Sex.MALE, MesaRace.WHITE).value == 0
        assert mesa_percentile(0.6, 55, Sex.MALE, MesaRace.WHITE).value == 43

    def test_positive_score_below_first_percentile(self) -> None:
        # White men aged 84: the 1st percentile already has calcium; a trace is below it.
        cell = load_table()[(MesaRace.WHITE, Sex.MALE, 84)]
        assert cell.min_score_by_percentile[0] > 1
        assert mesa_percentile(1, 84, Sex.MALE, MesaRace.WHITE).value == 0

    @pytest.mark.parametrize("age", [44.99, 30, 85, 90])
    def test_outside_ages(self, age: float) -> None:
        result = mesa_percentile(100, age, Sex.FEMALE, MesaRace.WHITE)
        assert not result.applicable
        assert result.value is None
        assert "45-84" in result.reason

    def test_unknown_age_sex_race(self) -> None:
        assert "age unknown" in mesa_percentile(10, None, Sex.MALE, MesaRace.WHITE).reason
        assert "sex unknown" in mesa_percentile(10, 60, None, MesaRace.WHITE).reason
        result = mesa_percentile(10, 60, Sex.MALE, None)
        assert not result.applicable
        assert "four MESA groups" in result.reason

    def test_bad_inputs(self) -> None:
        with pytest.raises(InvalidInputError, match="agatston"):
            mesa_percentile(-1, 60, Sex.MALE, MesaRace.WHITE)
        with pytest.raises(InvalidInputError, match="age_years"):
            mesa_percentile(1, -3, Sex.MALE, MesaRace.WHITE)

    @given(
        low=st.floats(0, 5000),
        extra=st.floats(0, 5000),
        age=st.integers(45, 84),
        sex=st.sampled_from(Sex),
        race=st.sampled_from(MesaRace),
    )
    def test_monotone_in_score(
        self, low: float, extra: float, age: int, sex: Sex, race: MesaRace
    ) -> None:
        lower = mesa_percentile(low, age, sex, race).value
        higher = mesa_percentile(low + extra, age, sex, race).value
        assert lower is not None
        assert higher is not None
        assert 0 <= lower <= higher <= 99
