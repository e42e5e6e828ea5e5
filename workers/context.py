"""Read the patient's context for the interpretation from the EHR (FHIR R4 searches).

Age from ``Patient.birthDate`` at the scan date; sex from ``Patient.gender`` (female/male); race
and ethnicity from the US Core extensions (CDC codes, mapped with
:func:`interpretation.race_from_us_core`); latest total cholesterol (LOINC 2093-3), HDL (2085-9),
systolic blood pressure (8480-6, alone or as a component of the panel 85354-9), smoking status
(72166-2); diabetes, myocardial infarction (Condition), bypass and coronary stent/angioplasty
(Procedure); lipid-lowering and blood-pressure medication (MedicationRequest); family history of
coronary disease (FamilyMemberHistory); pregnancy status (82810-3); symptoms in the order's
``reasonCode``; earlier calcium scores (the project's own Observations, SNOMED CT 450360000 with
method DCM 112055). Codes and sources: ``/work/shared/reference/fhir-dicom.md`` section 2.

Anything the EHR does not hold stays ``None`` (unknown), never ``False``.

Notes
-----
The reference names the resource types but not the SNOMED CT / RxNorm codes of the conditions,
procedures and drugs; the code lists below are the usual SNOMED CT concepts and ICD-10-CM chapters
and are matched together with words in the coding's display or text. They are unverified against
a terminology server: extend them (``CONDITION_CODES`` etc.) for your EHR.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.familymemberhistory import FamilyMemberHistory
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure

from interpretation.context import MesaRace, PatientContext, PriorScore, Sex, race_from_us_core
from workers.ehr import EHRClient

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
TOTAL_CHOLESTEROL = "2093-3"
HDL_CHOLESTEROL = "2085-9"
BP_PANEL = "85354-9"
SYSTOLIC_BP = "8480-6"
SMOKING_STATUS = "72166-2"
PREGNANCY_STATUS = "82810-3"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
#: SNOMED CT 450360000 Coronary artery calcium score; DCM 112055 Agatston scoring method.
CAC_SCORE = "450360000"
AGATSTON_METHOD = "112055"

#: Condition / procedure / drug classes: (codes, words). Unverified lists, see the module notes.
CONDITION_CODES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "diabetes": (
        frozenset({"73211009", "44054006", "46635009", "E10", "E11", "E13", "E14"}),
        ("diabetes",),
    ),
    "mi": (
        frozenset({"22298006", "401303003", "401314000", "I21", "I22", "I25.2"}),
        ("myocardial infarction", "heart attack"),
    ),
}
PROCEDURE_CODES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "cabg": (frozenset({"232717009", "0210"}), ("bypass", "cabg")),
    "pci": (
        frozenset({"415070008", "36969009", "11101003", "0270"}),
        ("percutaneous coronary", "coronary stent", "angioplasty", "pci"),
    ),
}
MEDICATION_WORDS: dict[str, tuple[str, ...]] = {
    "lipid": (
        "statin",
        "atorvastatin",
        "rosuvastatin",
        "simvastatin",
        "pravastatin",
        "ezetimibe",
        "lipid",
    ),
    "bp": (
        "lisinopril",
        "amlodipine",
        "losartan",
        "valsartan",
        "hydrochlorothiazide",
        "chlorthalidone",
        "ramipril",
        "metoprolol",
        "antihypertensive",
        "blood pressure",
    ),
}
#: Smoking status answers meaning a current smoker (SNOMED CT, US Core smoking status value set).
CURRENT_SMOKER_CODES = frozenset(
    {"449868002", "428041000124106", "77176002", "428071000124103", "428061000124105"}
)
NON_SMOKER_CODES = frozenset({"8517006", "266919005"})
#: Pregnancy status answers (LOINC answer list LL4129-4 / SNOMED CT).
PREGNANT_CODES = frozenset({"77386006", "LA15173-0"})
NOT_PREGNANT_CODES = frozenset({"60001007", "LA26683-5"})
SYMPTOM_WORDS = ("chest pain", "angina", "dyspnea", "dyspnoea", "breathless", "shortness of breath")


@dataclass(frozen=True, slots=True)
class ContextSources:
    """References of the resources the context was read from (shown in the report)."""

    references: tuple[str, ...]


def _codes_and_words(concepts: Iterable[Any]) -> tuple[set[str], str]:
    codes: set[str] = set()
    words: list[str] = []
    for concept in concepts:
        if concept is None:
            continue
        for c in concept.coding or []:
            if c.code:
                codes.add(str(c.code))
            if c.display:
                words.append(str(c.display).lower())
        if concept.text:
            words.append(str(concept.text).lower())
    return codes, " ".join(words)


def _matches(concepts: Iterable[Any], spec: tuple[frozenset[str], tuple[str, ...]]) -> bool:
    codes, words = _codes_and_words(concepts)
    known, phrases = spec
    if any(code in known or code.split(".")[0] in known for code in codes):
        return True
    return any(phrase in words for phrase in phrases)


def age_years(birth_date: datetime.date, on: datetime.date) -> float:
    """Age in years (fractional) at ``on``."""
    return (on - birth_date).days / 365.2425


def _latest(observations: Sequence[Observation]) -> Observation | None:
    def when(o: Observation) -> str:
        value = o.effectiveDateTime or o.issued
        return str(value) if value is not None else ""

    usable = [
        o for o in observations if o.status in ("final", "amended", "corrected", "preliminary")
    ]
    return max(usable, key=when) if usable else None


def _quantity(observation: Observation | None, component_code: str | None = None) -> float | None:
    if observation is None:
        return None
    if component_code is not None:
        for comp in observation.component or []:
            codes, _ = _codes_and_words([comp.code])
            if component_code in codes and comp.valueQuantity is not None:
                return (
                    float(comp.valueQuantity.value)
                    if comp.valueQuantity.value is not None
                    else None
                )
    if observation.valueQuantity is not None and observation.valueQuantity.value is not None:
        return float(observation.valueQuantity.value)
    return None


def _cholesterol_mg_dl(observation: Observation | None) -> float | None:
    value = _quantity(observation)
    if value is None or observation is None or observation.valueQuantity is None:
        return value
    unit = str(observation.valueQuantity.code or observation.valueQuantity.unit or "").lower()
    # mmol/L -> mg/dL for cholesterol: x 38.67 (molar mass of cholesterol 386.65 g/mol)
    return value * 38.67 if unit in ("mmol/l", "mmol/liter") else value


def race_codes(patient: Patient) -> tuple[list[str], list[str]]:
    """CDC codes of the US Core race and ethnicity extensions (``ombCategory`` and ``detailed``)."""
    race: list[str] = []
    ethnicity: list[str] = []
    for ext in patient.extension or []:
        target = (
            race if ext.url == US_CORE_RACE else ethnicity if ext.url == US_CORE_ETHNICITY else None
        )
        if target is None:
            continue
        for sub in ext.extension or []:
            if (
                sub.url in ("ombCategory", "detailed")
                and sub.valueCoding is not None
                and sub.valueCoding.code
            ):
                target.append(str(sub.valueCoding.code))
    return race, ethnicity


def read_patient_context(
    ehr: EHRClient,
    patient: Patient,
    service_request: dict[str, Any],
    scan_date: datetime.date,
) -> tuple[PatientContext, ContextSources]:
    """Read everything the interpretation uses about ``patient`` from ``ehr``.

    Parameters
    ----------
    ehr
        The EHR client.
    patient
        The order's subject (already read).
    service_request
        The order (FHIR JSON), for symptoms in ``reasonCode``.
    scan_date
        The scan date (age at the scan; the latest values before it).
    """
    subject = f"Patient/{patient.id}"
    sources: list[str] = [subject]

    def observations(code: str) -> list[Observation]:
        found = ehr.search(Observation, {"subject": subject, "code": f"{LOINC}|{code}"})
        sources.extend(f"Observation/{o.id}" for o in found)
        return found

    sex = Sex(patient.gender) if patient.gender in ("female", "male") else None
    age = age_years(patient.birthDate, scan_date) if patient.birthDate else None
    race_list, ethnicity_list = race_codes(patient)
    race: MesaRace | None = race_from_us_core(race_list, ethnicity_list)
    race_detail = None
    if race is None and (race_list or ethnicity_list):
        race_detail = "recorded race/ethnicity outside the four MESA groups"

    total = _cholesterol_mg_dl(_latest(observations(TOTAL_CHOLESTEROL)))
    hdl = _cholesterol_mg_dl(_latest(observations(HDL_CHOLESTEROL)))
    systolic = _quantity(_latest(observations(SYSTOLIC_BP)))
    if systolic is None:
        systolic = _quantity(_latest(observations(BP_PANEL)), SYSTOLIC_BP)
    smoking = _latest(observations(SMOKING_STATUS))
    current_smoker: bool | None = None
    if smoking is not None and smoking.valueCodeableConcept is not None:
        codes, words = _codes_and_words([smoking.valueCodeableConcept])
        if codes & CURRENT_SMOKER_CODES or "current" in words:
            current_smoker = True
        elif codes & NON_SMOKER_CODES or "never" in words or "former" in words or "ex-" in words:
            current_smoker = False
    pregnancy = _latest(observations(PREGNANCY_STATUS))
    pregnant: bool | None = None
    if pregnancy is not None and pregnancy.valueCodeableConcept is not None:
        codes, words = _codes_and_words([pregnancy.valueCodeableConcept])
        if codes & NOT_PREGNANT_CODES or "not pregnant" in words:
            pregnant = False
        elif codes & PREGNANT_CODES or "pregnant" in words:
            pregnant = True

    conditions = ehr.search(Condition, {"subject": subject})
    sources.extend(f"Condition/{c.id}" for c in conditions)
    active = [
        c
        for c in conditions
        if not c.verificationStatus
        or not _codes_and_words([c.verificationStatus])[0] & {"refuted", "entered-in-error"}
    ]
    diabetes = (
        True if any(_matches([c.code], CONDITION_CODES["diabetes"]) for c in active) else None
    )
    prior_mi = True if any(_matches([c.code], CONDITION_CODES["mi"]) for c in active) else None

    procedures = [
        p for p in ehr.search(Procedure, {"subject": subject}) if p.status != "entered-in-error"
    ]
    sources.extend(f"Procedure/{p.id}" for p in procedures)
    prior_cabg = (
        True if any(_matches([p.code], PROCEDURE_CODES["cabg"]) for p in procedures) else None
    )
    prior_pci = (
        True if any(_matches([p.code], PROCEDURE_CODES["pci"]) for p in procedures) else None
    )

    meds = [
        m
        for m in ehr.search(MedicationRequest, {"subject": subject})
        if m.status in ("active", "completed", "on-hold")
    ]
    sources.extend(f"MedicationRequest/{m.id}" for m in meds)
    med_words = " ".join(_codes_and_words([m.medicationCodeableConcept])[1] for m in meds)
    on_lipid = True if any(w in med_words for w in MEDICATION_WORDS["lipid"]) else None
    on_bp = True if any(w in med_words for w in MEDICATION_WORDS["bp"]) else None

    family = ehr.search(FamilyMemberHistory, {"patient": subject})
    sources.extend(f"FamilyMemberHistory/{f.id}" for f in family)
    family_history: bool | None = None
    for member in family:
        for cond in member.condition or []:
            if (
                _matches([cond.code], CONDITION_CODES["mi"])
                or "coronary" in _codes_and_words([cond.code])[1]
            ):
                family_history = True

    reasons = service_request.get("reasonCode") or []
    reason_words = " ".join(
        [str(r.get("text", "")).lower() for r in reasons]
        + [str(c.get("display", "")).lower() for r in reasons for c in r.get("coding", []) or []]
    )
    symptoms = tuple(word for word in SYMPTOM_WORDS if word in reason_words)

    prior_scores = read_prior_scores(ehr, subject, scan_date)
    context = PatientContext(
        age_years=age,
        sex=sex,
        race=race,
        race_detail=race_detail,
        total_cholesterol_mg_dl=total,
        hdl_mg_dl=hdl,
        systolic_bp_mmhg=systolic,
        on_bp_medication=on_bp,
        on_lipid_medication=on_lipid,
        current_smoker=current_smoker,
        diabetes=diabetes,
        family_history=family_history,
        symptoms=symptoms,
        prior_mi=prior_mi,
        prior_cabg=prior_cabg,
        prior_pci=prior_pci,
        pregnant=pregnant,
        prior_scores=prior_scores,
    )
    return context, ContextSources(tuple(dict.fromkeys(sources)))


def read_prior_scores(
    ehr: EHRClient, subject: str, before: datetime.date
) -> tuple[PriorScore, ...]:
    """Earlier total Agatston scores of the patient (our own Observations, before ``before``)."""
    found = ehr.search(Observation, {"subject": subject, "code": f"{SNOMED}|{CAC_SCORE}"})
    out: list[PriorScore] = []
    for obs in found:
        if obs.bodySite is not None or obs.valueQuantity is None or obs.valueQuantity.value is None:
            continue
        method_codes, _ = _codes_and_words([obs.method])
        if AGATSTON_METHOD not in method_codes or obs.status == "entered-in-error":
            continue
        when = obs.effectiveDateTime
        if when is None:
            continue
        day = (
            when.date()
            if isinstance(when, datetime.datetime)
            else datetime.date.fromisoformat(str(when)[:10])
        )
        if day >= before:
            continue
        out.append(PriorScore(day, float(obs.valueQuantity.value), source=f"Observation/{obs.id}"))
    return tuple(sorted(out, key=lambda p: p.date))
