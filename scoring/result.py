"""What a calcium score is made of: candidates, lesions, exclusions, totals and warnings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from scoring.parameters import ARTERIES, Artery, ExclusionReason, ScoringParameters


class WarningCode(StrEnum):
    """Machine-readable codes of the warnings a score carries beside its numbers."""

    NON_STANDARD_KVP = "non_standard_kvp"
    KVP_UNKNOWN = "kvp_unknown"
    NON_STANDARD_THICKNESS = "non_standard_thickness"
    OVERLAPPING_SLICES = "overlapping_slices"
    MASS_UNCALIBRATED = "mass_uncalibrated"
    METAL = "metal"
    DETECTION = "detection"
    SERIES = "series"


@dataclass(frozen=True, slots=True)
class ScoringWarning:
    """A warning with a stable code and a sentence a clinician or technologist can act on."""

    code: WarningCode
    message: str


@dataclass(frozen=True, slots=True)
class Component2D:
    """One 2-D connected component at or above the threshold in one slice, at least the minimum
    area (the unit the Agatston method scores).

    ``rows`` and ``cols`` are the pixel indices of the component in slice ``slice_index``.
    """

    slice_index: int
    rows: npt.NDArray[np.int32]
    cols: npt.NDArray[np.int32]
    area_mm2: float
    peak_hu: float
    sum_hu: float
    weight: int
    agatston: float
    """Area x weight x (increment / 3 mm when normalising)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A calcified candidate lesion: 2-D components joined across adjacent slices where they
    overlap in-plane. Its numbers do not depend on whether it is later scored as coronary."""

    lesion_id: int
    components: tuple[Component2D, ...]
    slice_range: tuple[int, int]
    area_mm2: float
    """Sum of the component areas over all slices."""
    max_area_mm2: float
    peak_hu: float
    mean_hu: float
    agatston: float
    volume_mm3: float
    mass_mg: float
    voxel_count: int
    centroid_index: tuple[float, float, float]
    """``(z, y, x)`` centroid in voxel indices."""
    centroid_mm: tuple[float, float, float]
    """``(x, y, z)`` centroid in patient coordinates."""

    def voxel_indices(self) -> tuple[npt.NDArray[np.int32], ...]:
        """``(z, y, x)`` index arrays of every voxel of the candidate."""
        zs = np.concatenate(
            [np.full(c.rows.shape, c.slice_index, dtype=np.int32) for c in self.components]
        )
        ys = np.concatenate([c.rows for c in self.components])
        xs = np.concatenate([c.cols for c in self.components])
        return zs, ys, xs


@dataclass(frozen=True, slots=True)
class CandidateSet:
    """Every candidate lesion of a volume, before deciding which are coronary."""

    candidates: tuple[Candidate, ...]
    shape: tuple[int, int, int]
    parameters: ScoringParameters
    ignored_small_components: int
    """2-D components under ``min_area_mm2`` (dropped before forming candidates)."""
    mass_factor_mg_per_mm3_hu: float
    mass_calibrated: bool
    mass_factor_source: str
    warnings: tuple[ScoringWarning, ...]

    def by_id(self) -> dict[int, Candidate]:
        return {c.lesion_id: c for c in self.candidates}

    def label_volume(self) -> npt.NDArray[np.int32]:
        """``(z, y, x)`` array holding each voxel's candidate ``lesion_id`` (0 = none)."""
        out = np.zeros(self.shape, dtype=np.int32)
        for cand in self.candidates:
            out[cand.voxel_indices()] = cand.lesion_id
        return out


@dataclass(frozen=True, slots=True)
class LesionLabel:
    """The decision about one candidate: scored (with its artery, or ``None`` when scoring the
    whole volume) or excluded with a reason a reviewer can read."""

    artery: Artery | None = None
    excluded: ExclusionReason | None = None
    detail: str = ""

    @property
    def scored(self) -> bool:
        return self.excluded is None


@dataclass(frozen=True, slots=True)
class Lesion:
    """A scored lesion: one row of the per-lesion table."""

    lesion_id: int
    artery: Artery | None
    slice_range: tuple[int, int]
    area_mm2: float
    max_area_mm2: float
    peak_hu: float
    mean_hu: float
    agatston: float
    volume_mm3: float
    mass_mg: float
    centroid_mm: tuple[float, float, float]
    voxel_count: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ExcludedCandidate:
    """A candidate not scored as coronary calcium, and why."""

    lesion_id: int
    reason: ExclusionReason
    detail: str
    slice_range: tuple[int, int]
    peak_hu: float
    agatston: float
    volume_mm3: float
    centroid_mm: tuple[float, float, float]


def _zero_by_artery() -> dict[Artery, float]:
    return dict.fromkeys(ARTERIES, 0.0)


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The calcium score of one series: totals, per-artery parts, lesions, exclusions, the
    parameters used and every warning.

    Totals are the sums of the scored lesions; per-artery parts sum to the totals when every
    scored lesion has an artery (``roi`` other than ``whole``).
    """

    agatston: float
    volume_mm3: float
    mass_mg: float
    agatston_by_artery: Mapping[Artery, float] = field(default_factory=_zero_by_artery)
    volume_mm3_by_artery: Mapping[Artery, float] = field(default_factory=_zero_by_artery)
    mass_mg_by_artery: Mapping[Artery, float] = field(default_factory=_zero_by_artery)
    lesion_count_by_artery: Mapping[Artery, int] = field(
        default_factory=lambda: dict.fromkeys(ARTERIES, 0)
    )
    lesions: tuple[Lesion, ...] = ()
    excluded: tuple[ExcludedCandidate, ...] = ()
    ignored_small_components: int = 0
    mass_calibrated: bool = False
    mass_factor_mg_per_mm3_hu: float = 0.0
    mass_factor_source: str = ""
    roi: str = "whole"
    parameters: ScoringParameters = field(default_factory=ScoringParameters)
    warnings: tuple[ScoringWarning, ...] = ()

    @property
    def lesion_count(self) -> int:
        return len(self.lesions)

    @property
    def vessels_with_calcium(self) -> int:
        """Number of arteries among LM, LAD, LCX, RCA with Agatston > 0 (CAC-DRS N modifier)."""
        return sum(1 for a in ARTERIES if self.agatston_by_artery.get(a, 0.0) > 0)
