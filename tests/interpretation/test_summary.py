"""Tests for interpretation.summary: content of each variant and its readability.

Readability is measured with textstat's Flesch-Kincaid grade (syllables from the CMU Pronouncing
Dictionary, see conftest.py); every variant must be at grade 8 or below.
"""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path

import pytest
import textstat

from interpretation import (
    MesaRace,
    PatientContext,
    PriorScore,
    Sex,
    UnsupportedLocaleError,
    patient_summary,
    progression,
)
from interpretation.summary import format_score, summary_variables

NOW = datetime.date(2026, 11, 26)
BEFORE = datetime.date(2021, 11, 26)

#: One score per CAC-DRS category, with the boundaries.
SCORES = (0, 0.3, 1, 68, 99, 100, 299, 300, 450, 2500)
#: (age, sex, race, race_detail) covering every comparison variant.
PEOPLE = (
    (55, Sex.MALE, MesaRace.WHITE, None),
    (84, Sex.MALE, MesaRace.WHITE, None),
    (62, Sex.FEMALE, MesaRace.BLACK, None),
    (30, Sex.FEMALE, None, None),
    (60, None, None, None),
    (60, Sex.FEMALE, None, "Japanese"),
)
#: Prior scores covering "same", "up" and "down" (and no prior).
PRIORS = (None, 0, 80, 3000)


def summaries() -> list[tuple[str, str]]:
    out = []
    for score, (age, sex, race, detail), diabetes, enhancers, symptoms, prior in itertools.product(
        SCORES, PEOPLE, (False, True), (False, True), ((), ("chest pain",)), PRIORS
    ):
        context = PatientContext(
            age_years=age,
            sex=sex,
            race=race,
            race_detail=detail,
            diabetes=diabetes,
            current_smoker=enhancers,
            family_history=enhancers,
            symptoms=symptoms,
        )
        change = (
            None
            if prior is None
            else progression(score, NOW, PriorScore(BEFORE, prior, "a"), profile_now="b")
        )
        label = f"{score=} {age=} {sex=} {race=} {diabetes=} {enhancers=} {symptoms=} {prior=}"
        out.append((label, patient_summary(score, context, progression=change)))
    return out


@pytest.mark.usefixtures("cmu_dictionary")
class TestReadability:
    def test_every_variant_at_grade_8_or_below(self) -> None:
        texts = summaries()
        variants = {text for _, text in texts}
        assert len(variants) > 200
        grades = {label: textstat.flesch_kincaid_grade(text) for label, text in texts}
        worst = max(grades, key=grades.__getitem__)
        assert grades[worst] <= 8, (worst, grades[worst])

    def test_the_measure_can_fail(self) -> None:
        jargon = (
            "Quantification of coronary arterial calcification by electron-beam computed "
            "tomography demonstrates considerable prognostic discrimination for atherosclerotic "
            "cardiovascular morbidity, independent of conventional epidemiological determinants."
        )
        assert textstat.flesch_kincaid_grade(jargon) > 8


def context(**kwargs: object) -> PatientContext:
    fields: dict[str, object] = {"age_years": 55, "sex": Sex.MALE, "race": MesaRace.WHITE}
    fields.update(kwargs)
    return PatientContext(**fields)  # type: ignore[arg-type]


class TestContent:
    def test_says_what_the_score_is_and_is_not(self) -> None:
        text = patient_summary(68, context())
        assert "sign of plaque" in text
        assert "does not show if a blood vessel is narrow or blocked" in text

    @pytest.mark.parametrize(
        ("score", "phrase"),
        [
            (0, "Your score is 0. No calcium was found."),
            (1, "Your score is 1. A small amount"),
            (99, "Your score is 99. A small amount"),
            (100, "Your score is 100. Some calcium"),
            (299, "Your score is 299. Some calcium"),
            (300, "Your score is 300. Quite a lot of calcium"),
        ],
    )
    def test_number_and_category(self, score: float, phrase: str) -> None:
        assert phrase in patient_summary(score, context())

    def test_trace_of_calcium(self) -> None:
        assert "Your score is less than 1. A small amount" in patient_summary(0.3, context())

    def test_comparison(self) -> None:
        assert "higher than about 75 in 100" in patient_summary(68, context())
        assert "About 44 in 100 of them also have a score of 0" in patient_summary(0, context())
        assert "low end" in patient_summary(1, context(age_years=84))

    @pytest.mark.parametrize(
        ("kwargs", "phrase"),
        [
            ({"age_years": 40}, "aged 45 to 84"),
            ({"sex": None}, "by sex"),
            ({"race": None}, "four groups"),
        ],
    )
    def test_no_comparison(self, kwargs: dict[str, object], phrase: str) -> None:
        text = patient_summary(68, context(**kwargs))
        assert "could not compare" in text
        assert phrase in text

    def test_heart_age(self) -> None:
        assert "aged about 73" in patient_summary(100, context())
        assert "younger than 45" in patient_summary(0, context())
        assert "older than 84" in patient_summary(1000, context())
        assert "not made for people with diabetes" in patient_summary(100, context(diabetes=True))

    def test_what_to_do(self) -> None:
        text = patient_summary(150, context())
        for word in ("vegetables", "walk", "smoke", "blood pressure", "diabetes", "cholesterol"):
            assert word in text
        assert "Your doctor has your full report" in text
        assert "statins" in text

    def test_zero_with_exceptions(self) -> None:
        text = patient_summary(0, context(current_smoker=True, diabetes=True))
        assert "But you smoke and have diabetes." in text
        assert "5 to 10 years" in text

    def test_symptoms(self) -> None:
        text = patient_summary(10, context(symptoms=("chest pain", "breathlessness")))
        assert "You told us about chest pain and breathlessness." in text

    @pytest.mark.parametrize(
        ("prior", "phrase"),
        [(60, "about the same"), (10, "gone up"), (300, "lower now")],
    )
    def test_change_since_last_scan(self, prior: float, phrase: str) -> None:
        change = progression(68, NOW, PriorScore(BEFORE, prior, "a"), profile_now="a")
        text = patient_summary(68, context(), progression=change)
        assert "Your last scan was on 26 November 2021" in text
        assert phrase in text
        assert "not have been done in the same way" not in text

    def test_method_differs(self) -> None:
        change = progression(68, NOW, PriorScore(BEFORE, 60, "a"), profile_now="b")
        text = patient_summary(68, context(), progression=change)
        assert "not have been done in the same way" in text

    def test_unsupported_locale(self) -> None:
        with pytest.raises(UnsupportedLocaleError, match="'fr'"):
            patient_summary(10, context(), locale="fr")

    def test_templates_hold_the_wording(self) -> None:
        # The text lives in templates so it can be translated; the code only picks variants.
        source = Path(__file__).parents[2] / "interpretation" / "summary.py"
        assert "calcium was found" not in source.read_text()
        assert set(summary_variables(10, context())) >= {"category", "score_text", "comparison"}


class TestFormatScore:
    @pytest.mark.parametrize(
        ("score", "text"),
        [
            (0, "0"),
            (0.3, "less than 1"),
            (0.99, "less than 1"),
            (1, "1"),
            (99.9, "99"),
            (300, "300"),
        ],
    )
    def test_format(self, score: float, text: str) -> None:
        assert format_score(score) == text
