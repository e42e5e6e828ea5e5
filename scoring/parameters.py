"""The parameters of a calcium score, each explicit, defaulted to the common clinical profile.

References
----------
Agatston AS et al. Quantification of coronary artery calcium using ultrafast computed tomography.
JACC 1990;15(4):827-832.
van Praagh GD et al. Fully automated calcium scoring: vendor emulation. Med Phys 2021
(doi:10.1002/mp.14912).
van Ooijen PMA et al. Eur Radiol 2005 (4- vs 8-connectivity changes scores by about 3 %).
Callister TQ et al. Radiology 1998;208:807-814 (volume score).
McCollough CH et al. Radiology 2007;243:527-538 (mass score and its calibration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum, StrEnum
from typing import Any

from scoring.errors import InvalidParameterError


class Artery(StrEnum):
    """The four scored coronary arteries; values are the labels used on the wire."""

    LM = "LM"
    LAD = "LAD"
    LCX = "LCX"
    RCA = "RCA"

    @property
    def code(self) -> int:
        """Integer code in label maps: LM=1, LAD=2, LCX=3, RCA=4 (0 = not coronary)."""
        return _ARTERY_CODES[self]

    @classmethod
    def from_code(cls, code: int) -> Artery:
        for artery, value in _ARTERY_CODES.items():
            if value == code:
                return artery
        raise InvalidParameterError(f"no artery has label code {code}; use 1=LM 2=LAD 3=LCX 4=RCA")


_ARTERY_CODES = {Artery.LM: 1, Artery.LAD: 2, Artery.LCX: 3, Artery.RCA: 4}
ARTERIES: tuple[Artery, ...] = (Artery.LM, Artery.LAD, Artery.LCX, Artery.RCA)


class Connectivity(IntEnum):
    """In-plane pixel connectivity used to form 2-D lesions: 4 (edges) or 8 (edges and corners)."""

    FOUR = 4
    EIGHT = 8


class VolumeMethod(StrEnum):
    """How the volume score counts voxels.

    ``voxel``: voxels at or above the threshold x voxel volume (Callister 1998), voxel depth = the
    slice increment. ``isotropic``: each lesion is first resampled (linear interpolation) to
    isotropic voxels of the in-plane spacing and re-thresholded, as some vendors do; this changes
    volume by about -30 % and Agatston barely (clinical.md section 2).
    """

    VOXEL = "voxel"
    ISOTROPIC = "isotropic"


class ExclusionReason(StrEnum):
    """Why a calcified candidate was not scored as coronary calcium (reviewers see these)."""

    TOO_SMALL = "too_small"
    OUTSIDE_ROI = "outside_roi"
    OUTSIDE_HEART = "outside_heart"
    BONE = "bone"
    AORTA = "aorta"
    AORTIC_VALVE = "aortic_valve"
    MITRAL_ANNULUS = "mitral_annulus"
    PERICARDIUM = "pericardium"
    METAL = "metal"
    NOISE = "noise"
    NOT_LABELLED = "not_labelled"


# Mid-point of the calibration factors real scanners give, 0.75-0.93 mg HA/cm^3 per HU
# (McCollough 2007 as summarised in clinical.md section 2), in mg/mm^3/HU. Used only when
# neither the DICOM image nor the configuration provides a factor; the result is then marked
# uncalibrated.
UNCALIBRATED_MASS_FACTOR_MG_PER_MM3_HU = 0.00084

#: Agatston's reference slice thickness: scores from other increments are scaled by increment / 3.
REFERENCE_SLICE_MM = 3.0
#: Reference tube voltage of the Agatston method (Agatston 1990).
REFERENCE_KVP = 120.0
#: Slice thicknesses outside this range are flagged (clinical.md section 1).
STANDARD_THICKNESS_RANGE_MM = (2.5, 3.0)


@dataclass(frozen=True, slots=True)
class ScoringParameters:
    """Every choice that changes a calcium score; recorded in each result.

    Parameters
    ----------
    threshold_hu
        Candidate voxels are those at (or above, see ``threshold_inclusive``) this attenuation.
        Agatston 1990: 130 HU.
    threshold_inclusive
        ``True``: ``HU >= threshold`` (the default); ``False``: ``HU > threshold``.
    connectivity
        In-plane connectivity of 2-D lesions, 8 by default (van Ooijen 2005).
    min_area_mm2
        2-D lesions smaller than this are ignored; 1 mm^2 by default (GE; Philips 0.5, Siemens any).
    mass_factor_mg_per_mm3_hu
        Calibration factor c_HA for the mass score (mg per mm^3 per HU). ``None``: use the DICOM
        (0018,9351) factor when present, otherwise the uncalibrated default.
    volume_method
        See :class:`VolumeMethod`.
    normalise_increment
        Multiply Agatston by ``increment / 3 mm`` (every open implementation that normalises does).
    """

    threshold_hu: float = 130.0
    threshold_inclusive: bool = True
    connectivity: Connectivity = Connectivity.EIGHT
    min_area_mm2: float = 1.0
    mass_factor_mg_per_mm3_hu: float | None = None
    volume_method: VolumeMethod = VolumeMethod.VOXEL
    normalise_increment: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.threshold_hu < 3000:
            raise InvalidParameterError(
                f"threshold_hu must be between 0 and 3000 HU, got {self.threshold_hu}"
            )
        if self.min_area_mm2 < 0:
            raise InvalidParameterError(f"min_area_mm2 must be >= 0, got {self.min_area_mm2}")
        if self.mass_factor_mg_per_mm3_hu is not None and not (
            0 < self.mass_factor_mg_per_mm3_hu < 0.01
        ):
            raise InvalidParameterError(
                "mass_factor_mg_per_mm3_hu must be in (0, 0.01) mg/mm^3/HU (typically "
                f"0.00075-0.00093), got {self.mass_factor_mg_per_mm3_hu}"
            )
        try:
            object.__setattr__(self, "connectivity", Connectivity(int(self.connectivity)))
        except ValueError as exc:
            raise InvalidParameterError(
                f"connectivity must be 4 or 8, got {self.connectivity!r}"
            ) from exc
        try:
            object.__setattr__(self, "volume_method", VolumeMethod(self.volume_method))
        except ValueError as exc:
            raise InvalidParameterError(
                f"volume_method must be one of {[m.value for m in VolumeMethod]}, "
                f"got {self.volume_method!r}"
            ) from exc

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of the parameters (enums as their wire values)."""
        record = asdict(self)
        record["connectivity"] = int(self.connectivity)
        record["volume_method"] = str(self.volume_method)
        return record
