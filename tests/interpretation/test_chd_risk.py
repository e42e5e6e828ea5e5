"""Tests for interpretation.chd_risk (MESA risk score, McClelland JACC 2015)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interpretation import MesaRace, PatientContext, Sex, chd_risk_10y
from interpretation.chd_risk import REQUIRED_INPUTS

#: The worked example of the clinical reference (section 6).
HISPANIC_MAN_70 = PatientContext(
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
)


class TestCHDRisk10y:
    def test_reference_example(self) -> None:
        result = chd_risk_10y(HISPANIC_MAN_70, 0)
        assert result.applicable
        assert result.with_cac_pct == 3.06
        assert result.without_cac_pct == 8.61
        assert result.missing == ()

    def test_calcium_raises_the_risk(self) -> None:
        result = chd_risk_10y(HISPANIC_MAN_70, 450)
        assert result.with_cac_pct is not None
        assert result.with_cac_pct > 8.61
        assert result.without_cac_pct == 8.61

    def test_everything_missing(self) -> None:
        result = chd_risk_10y(PatientContext(), 10)
        assert not result.applicable
        assert result.with_cac_pct is None
        assert result.without_cac_pct is None
        assert result.missing == REQUIRED_INPUTS

    @pytest.mark.parametrize(
        ("field", "name"),
        [
            ("hdl_mg_dl", "hdl"),
            ("current_smoker", "current_smoker"),
            ("family_history", "family_history"),
            ("race", "race"),
            ("age_years", "age"),
        ],
    )
    def test_one_missing(self, field: str, name: str) -> None:
        context = dataclasses.replace(HISPANIC_MAN_70, **{field: None})  # type: ignore[arg-type]
        result = chd_risk_10y(context, 10)
        assert result.missing == (name,)
        assert result.with_cac_pct is None
        assert name in result.reason

    def test_race_outside_mesa_groups(self) -> None:
        context = dataclasses.replace(HISPANIC_MAN_70, race=None, race_detail="Japanese")
        result = chd_risk_10y(context, 10)
        assert not result.applicable
        assert result.missing == ()
        assert "Japanese" in result.reason

    @pytest.mark.parametrize("age", [44.5, 85, 90])
    def test_outside_ages(self, age: float) -> None:
        result = chd_risk_10y(dataclasses.replace(HISPANIC_MAN_70, age_years=age), 10)
        assert not result.applicable
        assert result.with_cac_pct is None
        assert "45-84" in result.reason

    @given(low=st.floats(0, 3000), extra=st.floats(0, 3000))
    def test_monotone_in_score(self, low: float, extra: float) -> None:
        lower = chd_risk_10y(HISPANIC_MAN_70, low).with_cac_pct
        higher = chd_risk_10y(HISPANIC_MAN_70, low + extra).with_cac_pct
        assert lower is not None
        assert higher is not None
        assert 0 < lower <= higher < 100
