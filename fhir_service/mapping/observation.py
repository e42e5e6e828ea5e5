"""Build the result ``Observation``s of a calcium score (domain -> FHIR R4B), pure.

Observations: total Agatston (with one component per artery, coded by the artery), volume, mass,
and one interpretation Observation whose components are CAC-DRS, MESA percentile, arterial age
and 10-year CHD risk (each only when the interpretation could compute it). Components rather than
one resource per figure keep the results Bundle small: some EHRs limit conditional transactions
(Medplum: 8 entries). Each carries ``basedOn`` the ServiceRequest, ``derivedFrom``
the ImagingStudy, ``device`` the algorithm's Device, ``effectiveDateTime`` the acquisition time,
the category ``imaging``, ``meta.security`` AIAST (AI asserted) and a stable ``identifier`` so a
re-post is recognised (conditional create).

Codes (``/work/shared/reference/fhir-dicom.md`` section 2):

- observable: SNOMED CT 450360000 "Coronary artery calcium score" (DICOM CID 6142); no LOINC term
  for the numeric result exists, so none is invented;
- method: DCM 112055 Agatston, 112056 Volume, 112057 Mass scoring method (DICOM CID 6140); the
  method code is repeated in ``code`` so each score type is searchable by ``code``;
- arteries: SNOMED CT 3227004 left main, 59438005 LAD, 57396003 circumflex, 13647002 RCA (CID 3016);
- CAC-DRS, MESA percentile, arterial age, 10-year CHD risk: no standard code exists, so they use the
  project's local CodeSystem :data:`CAC_CODE_SYSTEM` (a stable canonical URL, documented in
  ``docs/pipeline.md``);
- units: UCUM ``{Agatston}``, ``mm3``, ``mg``, ``%``, ``a``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.observation import Observation

from scoring.parameters import ARTERIES, Artery
from scoring.result import ScoreResult

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
#: HL7 AI Transparency IG: ``meta.security`` label for AI-asserted content.
AI_SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
AI_SECURITY_CODE = "AIAST"
#: The project's local CodeSystem for figures without a standard code (stable canonical URL).
CAC_CODE_SYSTEM = "https://cac-fhir.org/fhir/CodeSystem/cac-results"
#: Identifier system of every resource the pipeline posts (value: see :func:`result_identifier`).
RESULT_IDENTIFIER_SYSTEM = "https://cac-fhir.org/fhir/identifier/result"

#: SNOMED CT 450360000 Coronary artery calcium score (DICOM CID 6142).
CAC_SCORE_CODE = (SNOMED, "450360000", "Coronary artery calcium score")
#: DICOM CID 6140 calcium scoring methods.
AGATSTON_METHOD = (DCM, "112055", "Agatston scoring method")
VOLUME_METHOD = (DCM, "112056", "Volume scoring method")
MASS_METHOD = (DCM, "112057", "Mass scoring method")
#: DICOM CID 3016 coronary arteries (SNOMED CT).
ARTERY_BODY_SITE: dict[Artery, tuple[str, str, str]] = {
    Artery.LM: (SNOMED, "3227004", "Left main coronary artery"),
    Artery.LAD: (SNOMED, "59438005", "Left anterior descending coronary artery"),
    Artery.LCX: (SNOMED, "57396003", "Circumflex branch of left coronary artery"),
    Artery.RCA: (SNOMED, "13647002", "Right coronary artery"),
}
#: Local codes (:data:`CAC_CODE_SYSTEM`).
INTERPRETATION_CODE = (
    CAC_CODE_SYSTEM,
    "cac-interpretation",
    "Coronary artery calcium interpretation",
)
CAC_DRS_CODE = (CAC_CODE_SYSTEM, "cac-drs", "CAC-DRS category")
CAC_DRS_VESSELS_CODE = (CAC_CODE_SYSTEM, "cac-drs-vessels", "CAC-DRS N modifier")
MESA_PERCENTILE_CODE = (CAC_CODE_SYSTEM, "mesa-percentile", "MESA coronary calcium percentile")
ARTERIAL_AGE_CODE = (CAC_CODE_SYSTEM, "arterial-age", "Coronary arterial age (McClelland 2009)")
CHD_RISK_CODE = (
    CAC_CODE_SYSTEM,
    "chd-risk-10y",
    "10-year coronary heart disease risk (MESA risk score with CAC)",
)


def coding(code: tuple[str, str, str]) -> dict[str, str]:
    """A FHIR Coding as JSON from ``(system, code, display)``."""
    return {"system": code[0], "code": code[1], "display": code[2]}


def quantity(value: float, unit: str, ucum: str | None = None) -> dict[str, Any]:
    """A UCUM Quantity as JSON (US Core: Quantity system SHALL be UCUM)."""
    return {"value": round(float(value), 4), "unit": unit, "system": UCUM, "code": ucum or unit}


def result_identifier(
    service_request_id: str, series_instance_uid: str, algorithm_version: str
) -> str:
    """The stable identifier value of one order's results: ServiceRequest + series + algorithm.

    Re-running the same order on the same series with the same algorithm gives the same value, so
    a conditional create (``ifNoneExist``) finds what an earlier attempt already posted.
    """
    return f"{service_request_id}/{series_instance_uid}/{algorithm_version}"


@dataclass(frozen=True, slots=True)
class ResultContext:
    """What every result resource refers to.

    Parameters
    ----------
    service_request
        Reference to the order, e.g. ``ServiceRequest/123``.
    subject
        Reference to the patient, e.g. ``Patient/456``.
    imaging_study
        Reference to the ImagingStudy, or ``None`` when the order named the study by UID only.
    study_instance_uid, series_instance_uid
        The study and the scored series.
    effective
        Acquisition time of the series (``(0008,0022)/(0008,0032)`` or the study date/time).
    issued
        When the results were made.
    identifier
        :func:`result_identifier` of the order.
    status
        ``preliminary`` (default for algorithm output) or ``final``.
    device
        Reference (or ``urn:uuid:``) to the algorithm's Device.
    """

    service_request: str
    subject: str
    imaging_study: str | None
    study_instance_uid: str
    series_instance_uid: str
    effective: datetime.datetime
    issued: datetime.datetime
    identifier: str
    status: str = "preliminary"
    device: str = ""


@dataclass(frozen=True, slots=True)
class InterpretationFigures:
    """The interpretation's figures the results carry (``None``: not computable for this patient).

    ``cac_drs_label`` is the full CAC-DRS text (e.g. ``CAC-DRS A2/N2``), ``cac_drs_category`` its
    Agatston category 0-3, ``cac_drs_vessels`` the N modifier.
    """

    cac_drs_category: int | None = None
    cac_drs_label: str = ""
    cac_drs_vessels: int | None = None
    mesa_percentile: int | None = None
    mesa_note: str = ""
    arterial_age_years: float | None = None
    chd_risk_10y_pct: float | None = None
    chd_risk_note: str = ""


def _base(ctx: ResultContext, key: str, text: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": {"security": [{"system": AI_SECURITY_SYSTEM, "code": AI_SECURITY_CODE}]},
        "identifier": [{"system": RESULT_IDENTIFIER_SYSTEM, "value": f"{ctx.identifier}/{key}"}],
        "status": ctx.status,
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"}]}
        ],
        "basedOn": [{"reference": ctx.service_request}],
        "subject": {"reference": ctx.subject},
        "effectiveDateTime": ctx.effective.isoformat(),
        "issued": ctx.issued.isoformat(),
        "code": {"text": text},
    }
    if ctx.imaging_study:
        resource["derivedFrom"] = [{"reference": ctx.imaging_study}]
    if ctx.device:
        resource["device"] = {"reference": ctx.device}
    return resource


def build_score_observations(score: ScoreResult, ctx: ResultContext) -> dict[str, Observation]:
    """Total Agatston, Agatston per artery, volume and mass Observations, keyed by a stable key
    (``agatston``, ``agatston-LAD``..., ``volume``, ``mass``)."""
    out: dict[str, Observation] = {}
    settings_note = (
        f"Threshold {score.parameters.threshold_hu:g} HU, minimum area "
        f"{score.parameters.min_area_mm2:g} mm2, "
        f"{int(score.parameters.connectivity)}-connectivity; "
        f"series {ctx.series_instance_uid}."
    )
    total = _base(ctx, "agatston", "Coronary artery calcium score (Agatston)")
    total["code"]["coding"] = [coding(CAC_SCORE_CODE), coding(AGATSTON_METHOD)]
    total["method"] = {"coding": [coding(AGATSTON_METHOD)]}
    total["valueQuantity"] = quantity(score.agatston, "{Agatston}")
    total["note"] = [{"text": settings_note}]
    if score.roi != "whole":
        # per-artery parts as components (one resource instead of four keeps the Bundle within
        # the entry limits some EHRs put on conditional transactions, e.g. Medplum: 8)
        total["component"] = [
            {
                "code": {
                    "coding": [coding(ARTERY_BODY_SITE[artery])],
                    "text": f"Agatston score, {artery.value}",
                },
                "valueQuantity": quantity(score.agatston_by_artery.get(artery, 0.0), "{Agatston}"),
            }
            for artery in ARTERIES
        ]
    out["agatston"] = Observation.model_validate(total)
    volume = _base(ctx, "volume", "Coronary artery calcium volume score")
    volume["code"]["coding"] = [coding(CAC_SCORE_CODE), coding(VOLUME_METHOD)]
    volume["method"] = {"coding": [coding(VOLUME_METHOD)]}
    volume["valueQuantity"] = quantity(score.volume_mm3, "mm3")
    out["volume"] = Observation.model_validate(volume)
    mass = _base(ctx, "mass", "Coronary artery calcium mass score")
    mass["code"]["coding"] = [coding(CAC_SCORE_CODE), coding(MASS_METHOD)]
    mass["method"] = {"coding": [coding(MASS_METHOD)]}
    mass["valueQuantity"] = quantity(score.mass_mg, "mg")
    factor = (
        f"{score.mass_factor_mg_per_mm3_hu:.5f} mg/mm3/HU ({score.mass_factor_source or 'unknown'})"
    )
    if score.mass_calibrated:
        mass["note"] = [{"text": f"Calibrated mass score; calibration factor {factor}."}]
    else:
        mass["note"] = [
            {
                "text": "UNCALIBRATED: no scanner calibration factor was available; the mass uses "
                f"a typical factor {factor} and is not comparable across scanners "
                "(McCollough, Radiology 2007)."
            }
        ]
        mass["interpretation"] = [{"text": "uncalibrated"}]
    out["mass"] = Observation.model_validate(mass)
    return out


def build_interpretation_observations(
    figures: InterpretationFigures, ctx: ResultContext
) -> dict[str, Observation]:
    """One Observation ``interpretation`` (local code ``cac-interpretation``) with a component for
    each figure known: CAC-DRS (``valueCodeableConcept``), CAC-DRS N, MESA percentile (%),
    arterial age (a), 10-year CHD risk (%). Empty when no figure is known."""
    components: list[dict[str, Any]] = []
    notes: list[str] = []
    if figures.cac_drs_category is not None:
        components.append(
            {
                "code": {"coding": [coding(CAC_DRS_CODE)], "text": "CAC-DRS"},
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": f"{CAC_CODE_SYSTEM}-cac-drs-category",
                            "code": f"A{figures.cac_drs_category}",
                            "display": f"CAC-DRS A{figures.cac_drs_category}",
                        }
                    ],
                    "text": figures.cac_drs_label or f"CAC-DRS A{figures.cac_drs_category}",
                },
            }
        )
        if figures.cac_drs_vessels is not None:
            components.append(
                {
                    "code": {
                        "coding": [coding(CAC_DRS_VESSELS_CODE)],
                        "text": "CAC-DRS N (vessels with calcium)",
                    },
                    "valueInteger": figures.cac_drs_vessels,
                }
            )
    if figures.mesa_percentile is not None:
        components.append(
            {
                "code": {"coding": [coding(MESA_PERCENTILE_CODE)], "text": "MESA percentile"},
                "valueQuantity": quantity(figures.mesa_percentile, "%"),
            }
        )
    if figures.mesa_note:
        notes.append(f"MESA percentile: {figures.mesa_note}")
    if figures.arterial_age_years is not None:
        components.append(
            {
                "code": {"coding": [coding(ARTERIAL_AGE_CODE)], "text": "Coronary arterial age"},
                "valueQuantity": quantity(figures.arterial_age_years, "years", "a"),
            }
        )
    if figures.chd_risk_10y_pct is not None:
        components.append(
            {
                "code": {"coding": [coding(CHD_RISK_CODE)], "text": "10-year CHD risk"},
                "valueQuantity": quantity(figures.chd_risk_10y_pct, "%"),
            }
        )
    if figures.chd_risk_note:
        notes.append(f"10-year CHD risk: {figures.chd_risk_note}")
    if not components:
        return {}
    obs = _base(ctx, "interpretation", "Coronary artery calcium interpretation")
    obs["code"]["coding"] = [coding(INTERPRETATION_CODE)]
    obs["component"] = components
    if notes:
        obs["note"] = [{"text": n} for n in notes]
    return {"interpretation": Observation.model_validate(obs)}
