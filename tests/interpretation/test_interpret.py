"""Tests for interpretation.interpret: the whole interpretation and its JSON and text forms."""

from __future__ import annotations

import datetime
import json

import pytest

from interpretation import (
    InvalidInputError,
    MesaRace,
    PatientContext,
    PriorScore,
    RiskCategory,
    Sex,
    interpret,
)
from scoring.parameters import Artery

JSON_KEYS = {
    "cac_drs",
    "mesa_percentile",
    "arterial_age",
    "chd_risk_10y",
    "progression",
    "appropriateness",
    "risk_category",
    "clinician_guidance",
    "patient_summary",
}

FULL = PatientContext(
    age_years=70,
    sex=Sex.MALE,
    race=MesaRace.HISPANIC,
    systolic_bp_mmhg=130,
    hdl_mg_dl=50,
    total_cholesterol_mg_dl=190,
    on_bp_medication=True,
    on_lipid_medication=False,
    current_smoker=False,
    diabetes=False,
    family_history=False,
    prior_scores=(PriorScore(datetime.date(2021, 11, 26), 0, "standard"),),
)


class TestInterpret:
    def test_reference_patient(self) -> None:
        result = interpret(0, FULL)
        assert result.cac_drs.label == "CAC-DRS A0"
        assert result.risk_category is RiskCategory.VERY_LOW
        assert result.chd_risk_10y.with_cac_pct == 3.06
        assert result.chd_risk_10y.without_cac_pct == 8.61
        assert result.arterial_age.years == 39.1
        assert result.progression is None  # no scan date: no comparison

    def test_progression_with_scan_date(self) -> None:
        result = interpret(
            20,
            FULL,
            scan_date=datetime.date(2026, 11, 26),
            scoring_profile="standard",
        )
        assert result.progression is not None
        assert result.progression.beyond_repeatability  # > 11.6 from a baseline of 0
        assert result.progression.warnings == ()

    def test_json_keys_and_shape(self) -> None:
        result = interpret(
            120,
            PatientContext(age_years=62, sex=Sex.FEMALE, race=MesaRace.BLACK),
            by_artery={Artery.LAD: 100, Artery.RCA: 20},
        )
        data = json.loads(json.dumps(result.to_json_dict()))
        assert set(data) == JSON_KEYS
        assert data["cac_drs"]["label"] == "CAC-DRS A2/N2"
        assert data["mesa_percentile"]["value"] == 91
        assert set(data["chd_risk_10y"]) >= {"with_cac", "without_cac", "missing"}
        assert data["chd_risk_10y"]["with_cac"] is None
        assert "total_cholesterol" in data["chd_risk_10y"]["missing"]
        assert data["progression"] is None
        assert data["risk_category"] == "moderately_increased"
        assert all({"topic", "text", "source"} <= set(g) for g in data["clinician_guidance"])
        assert data["patient_summary"].startswith("What does this scan show?")

    def test_json_progression(self) -> None:
        result = interpret(20, FULL, scan_date=datetime.date(2026, 11, 26), scoring_profile="other")
        progression = result.to_json_dict()["progression"]
        assert progression["prior_date"] == "2021-11-26"
        assert progression["absolute_change"] == 20
        assert progression["sevrukov_bound"] == 11.6
        assert progression["warnings"]

    def test_render_text(self) -> None:
        text = interpret(
            450, FULL, scan_date=datetime.date(2026, 11, 26), scoring_profile="standard"
        ).render_text()
        assert "CAC-DRS A3 - risk moderately to severely increased" in text
        assert "MESA percentile:     84" in text
        assert "Arterial age:        83.4 years" in text
        assert "% with CAC, 8.61 % without" in text
        assert "Progression:" in text
        assert "decision support" in text
        assert "For the patient:" in text

    def test_render_text_not_applicable(self) -> None:
        text = interpret(10, PatientContext(age_years=30, sex=Sex.FEMALE)).render_text()
        assert "MESA percentile:     n/a - age 30 is outside" in text
        assert "10-year CHD risk:    not computed" in text
        assert "[info] Age 30 is below 35-70" in text

    def test_bad_score(self) -> None:
        with pytest.raises(InvalidInputError):
            interpret(float("nan"), FULL)
