"""Tests for interpretation.arterial_age (McClelland, Am J Cardiol 2009)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interpretation import InvalidInputError, arterial_age


class TestArterialAge:
    @pytest.mark.parametrize(
        ("agatston", "years"), [(0, 39.1), (10, 56.5), (100, 72.6), (400, 82.6)]
    )
    def test_reference_examples(self, agatston: float, years: float) -> None:
        result = arterial_age(agatston)
        assert result.years == years
        assert not result.over_84

    def test_zero_is_below_the_mesa_ages(self) -> None:
        result = arterial_age(0)
        assert result.under_45
        assert "younger than 45" in result.text

    def test_last_value_before_84(self) -> None:
        result = arterial_age(488)
        assert result.years == 84.0
        assert not result.over_84

    @pytest.mark.parametrize("agatston", [489, 1000, 10_000])
    def test_over_84_is_not_extrapolated(self, agatston: float) -> None:
        result = arterial_age(agatston)
        assert result.over_84
        assert result.years is None
        assert result.text == "over 84 years"

    def test_diabetes_caveat(self) -> None:
        assert len(arterial_age(100, diabetes=True).caveats) == 2
        assert any("diabetes" in c for c in arterial_age(100, diabetes=True).caveats)
        assert len(arterial_age(100, diabetes=False).caveats) == 1

    def test_bad_score(self) -> None:
        with pytest.raises(InvalidInputError):
            arterial_age(-2)

    @given(low=st.floats(0, 5000), extra=st.floats(0, 5000))
    def test_monotone(self, low: float, extra: float) -> None:
        younger = arterial_age(low)
        older = arterial_age(low + extra)
        if younger.over_84:
            assert older.over_84
        elif not older.over_84:
            assert younger.years is not None
            assert older.years is not None
            assert younger.years <= older.years
