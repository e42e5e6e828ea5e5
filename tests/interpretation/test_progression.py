"""Tests for interpretation.progression (Hokanson AJR 2004, Sevrukov AJR 2005)."""

from __future__ import annotations

import datetime

import pytest

from interpretation import InvalidInputError, PriorScore, progression
from interpretation.progression import hokanson_significant, sevrukov_bound

BEFORE = datetime.date(2021, 11, 26)
NOW = datetime.date(2026, 11, 26)


class TestHokanson:
    @pytest.mark.parametrize(
        ("before", "now", "significant"),
        [
            (0, 6.25, True),  # sqrt 2.5 exactly
            (0, 6.2, False),
            (100, 156.25, True),  # 12.5 - 10
            (100, 156, False),
            (400, 300, False),
        ],
    )
    def test_square_root_rule(self, before: float, now: float, significant: bool) -> None:
        assert hokanson_significant(before, now) is significant


class TestSevrukov:
    def test_zero_baseline(self) -> None:
        assert sevrukov_bound(0) == 11.6

    @pytest.mark.parametrize(("baseline", "bound"), [(100, 49.3), (400, 98.6), (1, 4.93)])
    def test_bound(self, baseline: float, bound: float) -> None:
        assert sevrukov_bound(baseline) == pytest.approx(bound)


class TestProgression:
    def test_from_zero_baseline(self) -> None:
        assert not progression(11.6, NOW, PriorScore(BEFORE, 0)).beyond_repeatability
        assert progression(11.7, NOW, PriorScore(BEFORE, 0)).beyond_repeatability

    def test_changes(self) -> None:
        result = progression(150, NOW, PriorScore(BEFORE, 100, "p"), profile_now="p")
        assert result.absolute_change == 50
        assert result.years == pytest.approx(5.0, abs=0.01)
        assert result.annualised_change_per_year == pytest.approx(10.0, abs=0.02)
        assert result.beyond_repeatability
        assert not result.hokanson_significant
        assert result.warnings == ()

    def test_decrease_beyond_bound(self) -> None:
        result = progression(40, NOW, PriorScore(BEFORE, 100, "p"), profile_now="p")
        assert result.absolute_change == -60
        assert result.beyond_repeatability
        assert not result.hokanson_significant

    def test_different_profiles_warn(self) -> None:
        result = progression(
            150, NOW, PriorScore(BEFORE, 100, "130 HU, 3 mm"), profile_now="130 HU, 1.5 mm"
        )
        assert any("different parameters" in w for w in result.warnings)

    @pytest.mark.parametrize(("before", "now"), [(None, "p"), ("p", None), (None, None)])
    def test_unknown_profiles_warn(self, before: str | None, now: str | None) -> None:
        result = progression(150, NOW, PriorScore(BEFORE, 100, before), profile_now=now)
        assert any("Not known whether" in w for w in result.warnings)

    def test_rapid_progression_warns(self) -> None:
        result = progression(1600, NOW, PriorScore(BEFORE, 100, "p"), profile_now="p")
        assert result.annualised_change_per_year is not None
        assert result.annualised_change_per_year >= 300
        assert any("3.8" in w for w in result.warnings)

    def test_same_day(self) -> None:
        result = progression(10, NOW, PriorScore(NOW, 10, "p"), profile_now="p")
        assert result.annualised_change_per_year is None
        assert result.years == 0
        assert any("share a date" in w for w in result.warnings)

    def test_prior_after_scan(self) -> None:
        with pytest.raises(InvalidInputError, match="dated after"):
            progression(10, BEFORE, PriorScore(NOW, 10))

    def test_bad_score(self) -> None:
        with pytest.raises(InvalidInputError, match="agatston_now"):
            progression(-1, NOW, PriorScore(BEFORE, 10))
