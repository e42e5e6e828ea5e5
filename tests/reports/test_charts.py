"""The patient page's pictures: the MESA curve, the heart-age bars and the CAC-DRS bands."""

from __future__ import annotations

import re

import pytest

from interpretation import MesaRace, Sex, arterial_age
from interpretation.mesa import load_table
from reports.charts import (
    arterial_age_svg,
    cac_drs_bands,
    mesa_curve_svg,
    patient_percentile_position,
    population_curve,
    zero_share_pct,
)

# 55-year-old White man: P(CAC > 0) = 56 %, scores 1 -> 43rd and 68 -> 75th percentile
# (clinical.md section 5, the calculator's examples).
CELL = load_table()[(MesaRace.WHITE, Sex.MALE, 55)]


class TestPopulationCurve:
    def test_zero_share(self) -> None:
        assert zero_share_pct(CELL) == 44

    def test_flat_at_zero_then_the_calculator_minimum_scores(self) -> None:
        curve = population_curve(CELL)
        assert len(curve) == 99
        assert all(score == 0 for n, score in curve if n <= 44)
        assert dict(curve)[75] == 68.0
        assert dict(curve)[99] == CELL.min_score_by_percentile[98]

    def test_never_decreases(self) -> None:
        scores = [s for _, s in population_curve(CELL)]
        assert scores == sorted(scores)


class TestPatientPosition:
    def test_zero_score_sits_in_the_middle_of_the_zero_group(self) -> None:
        assert patient_percentile_position(CELL, 0.0, 0) == 22.0

    def test_positive_score_sits_at_its_percentile(self) -> None:
        assert patient_percentile_position(CELL, 68.0, 75) == 75.0


class TestMesaCurveSVG:
    def test_accessible_picture_with_the_patients_point(self) -> None:
        svg = str(mesa_curve_svg(CELL, 68.0, 75, group_text="White men aged 55"))
        assert 'role="img"' in svg
        assert 'aria-labelledby="mesa-chart-title mesa-chart-desc"' in svg
        assert '<title id="mesa-chart-title">' in svg
        desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg)
        assert desc is not None
        assert "higher than about 75 in 100" in desc.group(1)
        assert "About 44 in 100 have a score of 0" in desc.group(1)
        assert 'class="patient-point" data-percentile="75" data-agatston="68"' in svg

    def test_point_on_the_curve(self) -> None:
        svg = str(mesa_curve_svg(CELL, 68.0, 75))
        circle = re.search(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)
        curve = re.search(r'<polyline class="population-curve" points="([^"]+)"', svg)
        assert circle is not None
        assert curve is not None
        points = dict(p.split(",") for p in curve.group(1).split())
        # the curve passes through the patient's point: same x, same y
        assert points[circle.group(1)] == circle.group(2)

    def test_group_text_is_escaped(self) -> None:
        svg = str(mesa_curve_svg(CELL, 5.0, 50, group_text="<script>"))
        assert "<script>" not in svg
        assert "&lt;script&gt;" in svg


class TestArterialAgeSVG:
    def test_two_bars_with_text(self) -> None:
        svg = str(arterial_age_svg(62, arterial_age(100.0)))
        assert svg.count('class="age-bar"') == 2
        assert "Your age: 62. Your heart age: about 73." in svg

    def test_over_84(self) -> None:
        svg = str(arterial_age_svg(70, arterial_age(1000.0)))
        assert "over 84" in svg

    def test_unknown_real_age_draws_one_bar(self) -> None:
        svg = str(arterial_age_svg(None, arterial_age(0.0)))
        assert svg.count('class="age-bar"') == 1
        assert "under 45" in svg


class TestCACDRSBands:
    @pytest.mark.parametrize(
        ("agatston", "category"),
        [(0, 0), (0.5, 1), (1, 1), (99, 1), (99.9, 1), (100, 2), (299, 2), (300, 3), (5000, 3)],
    )
    def test_current_band(self, agatston: float, category: int) -> None:
        bands = cac_drs_bands(agatston)
        assert [b.category for b in bands if b.current] == [category]
        assert [b.range_text for b in bands] == ["0", "1 to 99", "100 to 299", "300 or more"]

    def test_position_inside_the_band(self) -> None:
        current = next(b for b in cac_drs_bands(200) if b.current)
        assert current.position_pct == pytest.approx(50.0)
        assert all(b.position_pct is None for b in cac_drs_bands(200) if not b.current)
