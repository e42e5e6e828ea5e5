"""Tests for interpretation.appropriateness: one test per rule, with its age boundaries."""

from __future__ import annotations

import pytest

from interpretation import (
    FindingCode,
    PatientContext,
    Severity,
    Sex,
    appropriateness,
)


def codes(context: PatientContext) -> list[FindingCode]:
    return [finding.code for finding in appropriateness(context)]


class TestAppropriateness:
    def test_nothing_against(self) -> None:
        assert appropriateness(PatientContext(age_years=55, sex=Sex.MALE)) == ()

    def test_symptoms(self) -> None:
        (finding,) = appropriateness(
            PatientContext(age_years=55, sex=Sex.MALE, symptoms=("chest pain", "breathlessness"))
        )
        assert finding.code is FindingCode.SYMPTOMS
        assert finding.severity is Severity.WARNING
        assert "CT coronary angiogram" in finding.message
        assert "chest pain, breathlessness" in finding.message

    @pytest.mark.parametrize(
        ("flag", "words"),
        [
            ("prior_mi", "heart attack"),
            ("prior_cabg", "bypass surgery"),
            ("prior_pci", "stent"),
            ("prior_cad", "Known coronary disease"),
        ],
    )
    def test_known_coronary_disease(self, flag: str, words: str) -> None:
        context = PatientContext(age_years=55, sex=Sex.MALE, **{flag: True})  # type: ignore[arg-type]
        (finding,) = appropriateness(context)
        assert finding.code is FindingCode.KNOWN_CAD
        assert finding.severity is Severity.STOP
        assert words in finding.message
        assert "adds nothing" in finding.message

    def test_pregnancy(self) -> None:
        (finding,) = appropriateness(PatientContext(age_years=40, sex=Sex.FEMALE, pregnant=True))
        assert finding.code is FindingCode.PREGNANT
        assert finding.severity is Severity.STOP
        assert "should not be done" in finding.message

    def test_trying_to_conceive(self) -> None:
        (finding,) = appropriateness(
            PatientContext(age_years=40, sex=Sex.FEMALE, trying_to_conceive=True)
        )
        assert finding.code is FindingCode.TRYING_TO_CONCEIVE
        assert finding.severity is Severity.STOP

    def test_unknown_flags_raise_nothing(self) -> None:
        context = PatientContext(age_years=50, sex=Sex.FEMALE, pregnant=None, prior_mi=None)
        assert appropriateness(context) == ()

    @pytest.mark.parametrize(
        ("sex", "age", "expected"),
        [
            (Sex.FEMALE, 34.9, [FindingCode.AGE_BELOW_INFORMATIVE_RANGE]),
            (Sex.FEMALE, 35, []),
            (Sex.FEMALE, 70.9, []),
            (Sex.FEMALE, 71, [FindingCode.AGE_ABOVE_INFORMATIVE_RANGE]),
            (Sex.FEMALE, 90, [FindingCode.AGE_ABOVE_INFORMATIVE_RANGE]),
            (Sex.MALE, 39, [FindingCode.AGE_BELOW_INFORMATIVE_RANGE]),
            (Sex.MALE, 40, []),
            (Sex.MALE, 60, []),
            (Sex.MALE, 61, [FindingCode.AGE_ABOVE_INFORMATIVE_RANGE]),
            (Sex.MALE, 80.9, [FindingCode.AGE_ABOVE_INFORMATIVE_RANGE]),
            (Sex.MALE, 81, [FindingCode.MAN_OVER_80]),
        ],
    )
    def test_age_ranges(self, sex: Sex, age: float, expected: list[FindingCode]) -> None:
        assert codes(PatientContext(age_years=age, sex=sex)) == expected

    def test_man_over_80_is_a_warning(self) -> None:
        (finding,) = appropriateness(PatientContext(age_years=82, sex=Sex.MALE))
        assert finding.severity is Severity.WARNING
        assert "adds little" in finding.message

    def test_age_range_findings_are_info(self) -> None:
        (finding,) = appropriateness(PatientContext(age_years=30, sex=Sex.FEMALE))
        assert finding.severity is Severity.INFO
        assert "35-70" in finding.message

    def test_unknown_age(self) -> None:
        assert codes(PatientContext(sex=Sex.MALE)) == [FindingCode.AGE_UNKNOWN]

    def test_unknown_sex(self) -> None:
        assert codes(PatientContext(age_years=50)) == [FindingCode.SEX_UNKNOWN]

    def test_most_severe_first(self) -> None:
        context = PatientContext(
            age_years=30,
            sex=Sex.FEMALE,
            symptoms=("chest pain",),
            pregnant=True,
            prior_mi=True,
        )
        severities = [finding.severity for finding in appropriateness(context)]
        assert severities == [Severity.STOP, Severity.STOP, Severity.WARNING, Severity.INFO]
