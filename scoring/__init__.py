"""Pure calcium scoring: numpy/scipy arrays in, frozen dataclasses out.

No file, network, web, queue or DICOM library is imported anywhere in this package (an
import-linter contract in pyproject.toml enforces it): the DICOM-to-volume step lives in
:mod:`dicom_io` and hands this package a :class:`CTVolume`. Arrays are indexed ``(z, y, x)``.
"""

from scoring.agatston import (
    agatston_weight,
    find_candidates,
    labels_from_label_map,
    labels_from_mask,
    score_candidates,
    score_volume,
)
from scoring.errors import InvalidParameterError, InvalidVolumeError, LabelMapError, ScoringError
from scoring.parameters import (
    ARTERIES,
    Artery,
    Connectivity,
    ExclusionReason,
    ScoringParameters,
    VolumeMethod,
)
from scoring.result import (
    Candidate,
    CandidateSet,
    Component2D,
    ExcludedCandidate,
    Lesion,
    LesionLabel,
    ScoreResult,
    ScoringWarning,
    WarningCode,
)
from scoring.volume import AcquisitionInfo, CTVolume, VolumeGeometry, axial_geometry

__all__ = [
    "ARTERIES",
    "AcquisitionInfo",
    "Artery",
    "CTVolume",
    "Candidate",
    "CandidateSet",
    "Component2D",
    "Connectivity",
    "ExcludedCandidate",
    "ExclusionReason",
    "InvalidParameterError",
    "InvalidVolumeError",
    "LabelMapError",
    "Lesion",
    "LesionLabel",
    "ScoreResult",
    "ScoringError",
    "ScoringParameters",
    "ScoringWarning",
    "VolumeGeometry",
    "VolumeMethod",
    "WarningCode",
    "agatston_weight",
    "axial_geometry",
    "find_candidates",
    "labels_from_label_map",
    "labels_from_mask",
    "score_candidates",
    "score_volume",
]
