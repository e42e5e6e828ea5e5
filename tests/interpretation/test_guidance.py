"""Tests for interpretation.guidance: the statin discussion by CAC and the CAC-DRS 2018 items."""

from __future__ import annotations

import datetime

import pytest

from interpretation import (
    GuidanceItem,
    GuidanceTopic,
    MesaRace,
    PatientContext,
    PriorScore,
    Sex,
    clinician_guidance,
    mesa_percentile,
    progression,
)

NO_ENHANCERS = PatientContext(
    age_years=58, sex=Sex.MALE, current_smoker=False, diabetes=False, family_history=False
)


def topic_text(items: tuple[GuidanceItem, ...], topic: GuidanceTopic) -> str:
    (text,) = [item.text for item in items if item.topic is topic]
    return text


class TestClinicianGuidance:
    def test_every_item_has_a_source(self) -> None:
        for score in (0, 50, 150, 500):
            for item in clinician_guidance(score, NO_ENHANCERS):
                assert item.source
                assert item.text

    def test_decision_support_wording(self) -> None:
        text = topic_text(clinician_guidance(10, NO_ENHANCERS), GuidanceTopic.SCOPE)
        assert "Decision support for the referring clinician" in text

    def test_zero_withhold_and_rescan(self) -> None:
        text = topic_text(clinician_guidance(0, NO_ENHANCERS), GuidanceTopic.STATIN)
        assert "reasonable to withhold statin" in text
        assert "5-10 years" in text
        assert "exception applies" not in text
        assert "Not recorded" not in text

    @pytest.mark.parametrize("flag", ["current_smoker", "diabetes", "family_history"])
    def test_zero_with_an_exception(self, flag: str) -> None:
        context = PatientContext(age_years=58, sex=Sex.MALE, **{flag: True})  # type: ignore[arg-type]
        text = topic_text(clinician_guidance(0, context), GuidanceTopic.STATIN)
        assert "exception applies" in text

    def test_zero_with_unknown_enhancers(self) -> None:
        text = topic_text(clinician_guidance(0, PatientContext(age_years=58)), GuidanceTopic.STATIN)
        assert "Not recorded: smoking, diabetes, family history" in text

    @pytest.mark.parametrize(("age", "phrase"), [(58, "is 58."), (50, "below 55")])
    def test_one_to_99_favours_statin(self, age: int, phrase: str) -> None:
        context = PatientContext(age_years=age, sex=Sex.MALE)
        text = topic_text(clinician_guidance(1, context), GuidanceTopic.STATIN)
        assert "favours statin" in text
        assert phrase in text

    def test_75th_percentile_indicates_statin(self) -> None:
        percentile = mesa_percentile(68, 55, Sex.MALE, MesaRace.WHITE)
        assert percentile.value == 75
        context = PatientContext(age_years=55, sex=Sex.MALE, race=MesaRace.WHITE)
        items = clinician_guidance(68, context, percentile=percentile)
        assert "percentile 75 (>= 75th): statin therapy is indicated" in topic_text(
            items, GuidanceTopic.STATIN
        )
        assert "context" in topic_text(items, GuidanceTopic.PERCENTILE)

    @pytest.mark.parametrize("score", [100, 299, 300, 1000])
    def test_100_or_more_indicates_statin(self, score: float) -> None:
        text = topic_text(clinician_guidance(score, NO_ENHANCERS), GuidanceTopic.STATIN)
        assert text == "CAC >= 100: statin therapy is indicated."

    @pytest.mark.parametrize(
        ("score", "phrase"),
        [
            (0, "A0: statin generally not recommended"),
            (99, "A1: moderate-intensity statin"),
            (100, "A2: moderate- to high-intensity statin; aspirin 81 mg"),
            (300, "A3: high-intensity statin; aspirin 81 mg"),
        ],
    )
    def test_cac_drs_2018_labelled(self, score: float, phrase: str) -> None:
        text = topic_text(clinician_guidance(score, NO_ENHANCERS), GuidanceTopic.CAC_DRS_2018)
        assert text.startswith("Per CAC-DRS 2018, ")
        assert phrase in text
        assert "predates 2019" in text

    def test_lifestyle_always(self) -> None:
        smoker = PatientContext(current_smoker=True)
        text = topic_text(clinician_guidance(0, smoker), GuidanceTopic.LIFESTYLE)
        assert "physical activity" in text
        assert "help to stop" in text

    def test_progression_item(self) -> None:
        change = progression(
            150, datetime.date(2026, 1, 1), PriorScore(datetime.date(2021, 1, 1), 100)
        )
        text = topic_text(
            clinician_guidance(150, NO_ENHANCERS, progression=change), GuidanceTopic.PROGRESSION
        )
        assert "+50.0 AU" in text
        assert "square-root rule: no" in text
        assert "(+/- 49.3 AU): yes" in text
