"""Tests for interpretation.cac_drs (Hecht, JCCT 2018)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interpretation import InvalidInputError, RiskCategory, cac_drs, risk_category
from scoring.parameters import ARTERIES, Artery


class TestCACDRS:
    @pytest.mark.parametrize(
        ("agatston", "category"),
        [
            (0, 0),
            (0.2, 1),
            (1, 1),
            (99, 1),
            (99.9, 1),
            (100, 2),
            (299, 2),
            (299.99, 2),
            (300, 3),
            (399, 3),
            (400, 3),
            (5000, 3),
        ],
    )
    def test_category_boundaries(self, agatston: float, category: int) -> None:
        result = cac_drs(agatston)
        assert result.category == category
        assert result.label == f"CAC-DRS A{category}"
        assert result.vessels is None

    def test_vessel_modifier(self) -> None:
        result = cac_drs(150, {Artery.LM: 0, Artery.LAD: 100, Artery.LCX: 20, Artery.RCA: 30})
        assert result.vessels == 3
        assert result.label == "CAC-DRS A2/N3"

    def test_all_four_vessels_by_string_key(self) -> None:
        result = cac_drs(300, {"LM": 1, "LAD": 1, "LCX": 1, "RCA": 297})  # type: ignore[dict-item]
        assert result.label == "CAC-DRS A3/N4"

    def test_zero_omits_n(self) -> None:
        result = cac_drs(0, {Artery.LAD: 0})
        assert result.vessels == 0
        assert result.label == "CAC-DRS A0"

    def test_unknown_artery(self) -> None:
        with pytest.raises(InvalidInputError, match="PDA"):
            cac_drs(10, {"PDA": 10})  # type: ignore[dict-item]

    @pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
    def test_bad_score(self, bad: float) -> None:
        with pytest.raises(InvalidInputError, match="agatston"):
            cac_drs(bad)

    def test_bad_artery_score(self) -> None:
        with pytest.raises(InvalidInputError, match="LAD"):
            cac_drs(10, {Artery.LAD: -5})


class TestRiskCategory:
    @pytest.mark.parametrize(
        ("agatston", "expected", "text"),
        [
            (0, RiskCategory.VERY_LOW, "very low"),
            (1, RiskCategory.MILDLY_INCREASED, "mildly increased"),
            (99, RiskCategory.MILDLY_INCREASED, "mildly increased"),
            (100, RiskCategory.MODERATELY_INCREASED, "moderately increased"),
            (299, RiskCategory.MODERATELY_INCREASED, "moderately increased"),
            (
                300,
                RiskCategory.MODERATELY_TO_SEVERELY_INCREASED,
                "moderately to severely increased",
            ),
        ],
    )
    def test_levels(self, agatston: float, expected: RiskCategory, text: str) -> None:
        assert risk_category(agatston) is expected
        assert cac_drs(agatston).risk_category is expected
        assert expected.text == text


class TestCACDRSProperties:
    @given(low=st.floats(0, 10_000), extra=st.floats(0, 10_000))
    def test_category_monotone(self, low: float, extra: float) -> None:
        assert cac_drs(low).category <= cac_drs(low + extra).category

    @given(scores=st.lists(st.floats(0, 1000), min_size=4, max_size=4))
    def test_vessels_count_arteries_with_calcium(self, scores: list[float]) -> None:
        by_artery = dict(zip(ARTERIES, scores, strict=True))
        result = cac_drs(sum(scores), by_artery)
        assert result.vessels == sum(score > 0 for score in scores)
        assert ("/N" in result.label) == (result.category > 0 and result.vessels > 0)
