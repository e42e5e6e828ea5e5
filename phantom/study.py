"""What a phantom study is: the CT volume, the truth label maps and the truth scores.

The truth of a study is the standard Agatston / volume / mass score of the FINAL image (after
partial volume, blur and noise) restricted to the true calcium regions, computed with the
project's own scoring engine so that "truth" and "measurement" share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring import (
    ARTERIES,
    Artery,
    CTVolume,
    ExclusionReason,
    ScoringParameters,
    find_candidates,
    labels_from_label_map,
    score_candidates,
)

#: HU given to voxels outside the truth regions when scoring the truth (below any threshold).
_OUTSIDE_HU = -1024


class Distractor(IntEnum):
    """Codes of ``distractor_labels``: calcified or dense structures that are NOT coronary calcium.

    Each maps to the :class:`scoring.ExclusionReason` a correct detector should give it.
    """

    BONE = 1
    COSTAL_CARTILAGE = 2
    AORTIC_WALL = 3
    AORTIC_VALVE = 4
    MITRAL_ANNULUS = 5
    PERICARDIUM = 6
    METAL = 7
    LYMPH_NODE = 8
    """Calcified mediastinal or hilar lymph node (or lung granuloma), outside the heart."""

    @property
    def exclusion_reason(self) -> ExclusionReason:
        """The exclusion reason a detector should record for a candidate on this structure."""
        return _DISTRACTOR_REASON[self]


_DISTRACTOR_REASON = {
    Distractor.BONE: ExclusionReason.BONE,
    Distractor.COSTAL_CARTILAGE: ExclusionReason.BONE,
    Distractor.AORTIC_WALL: ExclusionReason.AORTA,
    Distractor.AORTIC_VALVE: ExclusionReason.AORTIC_VALVE,
    Distractor.MITRAL_ANNULUS: ExclusionReason.MITRAL_ANNULUS,
    Distractor.PERICARDIUM: ExclusionReason.PERICARDIUM,
    Distractor.METAL: ExclusionReason.METAL,
    Distractor.LYMPH_NODE: ExclusionReason.OUTSIDE_HEART,
}


@dataclass(frozen=True, slots=True)
class TruthObject:
    """One object the generator placed: a plaque, a distractor or a calibration insert.

    ``kind`` is ``"plaque"``, a :class:`Distractor` name in lower case, or ``"insert"``;
    ``label`` is the artery (plaques), or the insert's name. ``density_hu`` is the attenuation
    of the object before partial volume and blur.
    """

    kind: str
    label: str
    center_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    density_hu: float
    geometric_volume_mm3: float
    density_mg_ha_cm3: float | None = None
    """Hydroxyapatite density of calibration inserts (``None`` for anatomy)."""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "center_mm": [round(v, 3) for v in self.center_mm],
            "radii_mm": [round(v, 3) for v in self.radii_mm],
            "density_hu": round(self.density_hu, 1),
            "geometric_volume_mm3": round(self.geometric_volume_mm3, 3),
            "density_mg_ha_cm3": self.density_mg_ha_cm3,
        }


@dataclass(frozen=True, slots=True)
class TruthLesion:
    """A lesion of the truth score: a calcified candidate inside the true regions."""

    artery: Artery | None
    agatston: float
    volume_mm3: float
    mass_mg: float
    peak_hu: float
    centroid_mm: tuple[float, float, float]
    """``(x, y, z)`` patient coordinates (mm)."""
    slice_range: tuple[int, int]
    voxel_count: int
    area_mm2: float = 0.0
    """Sum of the lesion's 2-D component areas over its slices."""
    max_area_mm2: float = 0.0
    """Largest 2-D component area (the size that the minimum-area rule sees)."""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "artery": None if self.artery is None else str(self.artery),
            "area_mm2": round(self.area_mm2, 3),
            "max_area_mm2": round(self.max_area_mm2, 3),
            "agatston": round(self.agatston, 3),
            "volume_mm3": round(self.volume_mm3, 3),
            "mass_mg": round(self.mass_mg, 4),
            "peak_hu": round(self.peak_hu, 1),
            "centroid_mm": [round(v, 2) for v in self.centroid_mm],
            "slice_range": list(self.slice_range),
            "voxel_count": self.voxel_count,
        }


def _zero_by_artery() -> dict[Artery, float]:
    return dict.fromkeys(ARTERIES, 0.0)


@dataclass(frozen=True, slots=True)
class PhantomTruth:
    """The known answer of a phantom study.

    Totals and per-artery parts are the standard scores (``parameters``) of the final image
    restricted to the true calcium regions; ``roi`` is ``labels`` (chest phantom: per artery) or
    ``whole`` (insert phantom: every insert counts, no artery). ``objects`` lists what was placed.
    """

    agatston: float
    volume_mm3: float
    mass_mg: float
    agatston_by_artery: Mapping[Artery, float] = field(default_factory=_zero_by_artery)
    volume_mm3_by_artery: Mapping[Artery, float] = field(default_factory=_zero_by_artery)
    mass_mg_by_artery: Mapping[Artery, float] = field(default_factory=_zero_by_artery)
    lesions: tuple[TruthLesion, ...] = ()
    objects: tuple[TruthObject, ...] = ()
    roi: str = "labels"
    mass_factor_mg_per_mm3_hu: float = 0.0
    parameters: ScoringParameters = field(default_factory=ScoringParameters)
    extra: Mapping[str, Any] = field(default_factory=dict)
    """JSON-ready extras (the insert phantom's calibration rods and whole-volume score)."""

    @property
    def lesion_count(self) -> int:
        return len(self.lesions)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready record (what ``cac phantom`` writes as ``truth.json``)."""

        def part(total: float, by_artery: Mapping[Artery, float], digits: int) -> dict[str, Any]:
            return {
                "total": round(total, digits),
                "by_artery": {str(a): round(by_artery.get(a, 0.0), digits) for a in ARTERIES},
            }

        return {
            "roi": self.roi,
            "agatston": part(self.agatston, self.agatston_by_artery, 3),
            "volume_mm3": part(self.volume_mm3, self.volume_mm3_by_artery, 3),
            "mass_mg": part(self.mass_mg, self.mass_mg_by_artery, 4),
            "mass_factor_mg_per_mm3_hu": self.mass_factor_mg_per_mm3_hu,
            "lesion_count": self.lesion_count,
            "lesions": [les.to_json_dict() for les in self.lesions],
            "objects": [obj.to_json_dict() for obj in self.objects],
            "parameters": self.parameters.as_dict(),
            **dict(self.extra),
        }


def score_truth(
    volume: CTVolume,
    truth_labels: npt.NDArray[np.uint8],
    objects: tuple[TruthObject, ...],
    *,
    by_artery: bool,
    parameters: ScoringParameters | None = None,
) -> PhantomTruth:
    """Score the final image restricted to the truth regions with the project's scoring engine.

    Parameters
    ----------
    volume
        The final phantom volume.
    truth_labels
        ``(z, y, x)`` map of the true calcium regions: artery codes 1-4 when ``by_artery``,
        otherwise any non-zero value.
    objects
        The placed objects, copied into the truth.
    by_artery
        ``True``: lesions take the artery of their truth region (``roi="labels"``); ``False``:
        every candidate inside the regions is scored without artery (``roi="whole"``).
    parameters
        Scoring parameters; the standard profile by default.
    """
    params = parameters if parameters is not None else ScoringParameters()
    inside = truth_labels > 0
    masked: npt.NDArray[np.int16] | npt.NDArray[np.float32]
    if volume.hu.dtype == np.float32:
        masked = np.where(inside, volume.hu, np.float32(_OUTSIDE_HU)).astype(np.float32)
    else:
        masked = np.where(inside, volume.hu, np.int16(_OUTSIDE_HU)).astype(np.int16)
    restricted = CTVolume(hu=masked, geometry=volume.geometry, acquisition=volume.acquisition)
    candidates = find_candidates(restricted, params)
    if by_artery:
        result = score_candidates(
            candidates, labels_from_label_map(candidates, truth_labels), roi="labels"
        )
    else:
        result = score_candidates(candidates, None, roi="whole")
    lesions = tuple(
        TruthLesion(
            artery=les.artery,
            agatston=les.agatston,
            volume_mm3=les.volume_mm3,
            mass_mg=les.mass_mg,
            peak_hu=les.peak_hu,
            centroid_mm=les.centroid_mm,
            slice_range=les.slice_range,
            voxel_count=les.voxel_count,
            area_mm2=les.area_mm2,
            max_area_mm2=les.max_area_mm2,
        )
        for les in result.lesions
    )
    return PhantomTruth(
        agatston=result.agatston,
        volume_mm3=result.volume_mm3,
        mass_mg=result.mass_mg,
        agatston_by_artery=dict(result.agatston_by_artery),
        volume_mm3_by_artery=dict(result.volume_mm3_by_artery),
        mass_mg_by_artery=dict(result.mass_mg_by_artery),
        lesions=lesions,
        objects=objects,
        roi=result.roi,
        mass_factor_mg_per_mm3_hu=result.mass_factor_mg_per_mm3_hu,
        parameters=params,
    )


@dataclass(frozen=True, slots=True)
class PhantomStudy:
    """A synthetic CT study with its truth.

    Attributes
    ----------
    volume
        ``int16`` HU volume, ``(z, y, x)``, LPS patient coordinates (+x patient's left,
        +y posterior, +z head), slices ascending in z.
    plaque_labels
        ``uint8 (z, y, x)``: artery codes 1=LM 2=LAD 3=LCX 4=RCA on the true coronary plaque
        regions, grown by the partial-volume and blur spread so blooming stays inside (all zero
        for the insert phantom).
    distractor_labels
        ``uint8 (z, y, x)``: :class:`Distractor` codes of bone and non-coronary calcium.
    truth
        The known scores.
    config
        The configuration that generated the study (regenerates it exactly).
    insert_labels
        Insert phantom only: ``uint8 (z, y, x)`` index (1-based, in ``truth.objects`` order) of
        each calcification insert's grown region.
    """

    volume: CTVolume
    plaque_labels: npt.NDArray[np.uint8]
    distractor_labels: npt.NDArray[np.uint8]
    truth: PhantomTruth
    config: Any
    insert_labels: npt.NDArray[np.uint8] | None = None
