"""A CT volume in Hounsfield units and the geometry that places it in the patient.

The DICOM-to-volume step (``dicom_io``) builds these objects; everything in :mod:`scoring` reads
them. Arrays are indexed ``(z, y, x)``: slice, row, column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from scoring.errors import InvalidVolumeError


@dataclass(frozen=True, slots=True)
class VolumeGeometry:
    """Where each voxel of a ``(z, y, x)`` volume lies in patient coordinates (mm).

    Parameters
    ----------
    pixel_spacing_mm
        ``(row spacing, column spacing)``: the distance between the centres of adjacent rows and
        of adjacent columns, as in (0028,0030) Pixel Spacing.
    row_direction
        Unit vector of increasing column index, the first triplet of (0020,0037) Image
        Orientation (Patient).
    column_direction
        Unit vector of increasing row index, the second triplet of (0020,0037).
    slice_positions_mm
        ``(z, 3)`` array: (0020,0032) Image Position (Patient) of every slice, i.e. the centre of
        its first transmitted pixel, in slice order along the slice normal.
    slice_thickness_mm
        (0018,0050) Slice Thickness: the nominal reconstructed thickness.
    increment_mm
        The distance between adjacent slice centres along the normal (smaller than the thickness
        for overlapping reconstructions).
    """

    pixel_spacing_mm: tuple[float, float]
    row_direction: tuple[float, float, float]
    column_direction: tuple[float, float, float]
    slice_positions_mm: npt.NDArray[np.float64]
    slice_thickness_mm: float
    increment_mm: float

    def __post_init__(self) -> None:
        if len(self.pixel_spacing_mm) != 2 or min(self.pixel_spacing_mm) <= 0:
            raise InvalidVolumeError(
                f"pixel_spacing_mm must be two positive numbers, got {self.pixel_spacing_mm!r}"
            )
        if self.increment_mm <= 0:
            raise InvalidVolumeError(f"increment_mm must be positive, got {self.increment_mm!r}")
        if self.slice_thickness_mm <= 0:
            raise InvalidVolumeError(
                f"slice_thickness_mm must be positive, got {self.slice_thickness_mm!r}"
            )
        positions = np.asarray(self.slice_positions_mm, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise InvalidVolumeError(
                f"slice_positions_mm must have shape (z, 3), got {positions.shape}"
            )
        object.__setattr__(self, "slice_positions_mm", positions)

    @property
    def slice_normal(self) -> npt.NDArray[np.float64]:
        """Unit normal of the slices: row direction x column direction."""
        normal = np.cross(np.asarray(self.row_direction), np.asarray(self.column_direction))
        return np.asarray(normal / np.linalg.norm(normal), dtype=np.float64)

    @property
    def pixel_area_mm2(self) -> float:
        """Area of one pixel: row spacing x column spacing (pixels need not be square)."""
        return float(self.pixel_spacing_mm[0] * self.pixel_spacing_mm[1])

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel: pixel area x slice increment (no double counting on overlap)."""
        return self.pixel_area_mm2 * self.increment_mm

    def to_patient_mm(
        self, z: npt.ArrayLike, y: npt.ArrayLike, x: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """Patient coordinates (mm) of voxel indices; fractional indices are allowed.

        Parameters
        ----------
        z, y, x
            Slice, row and column indices (scalars or arrays of one shape).

        Returns
        -------
        numpy.ndarray
            ``(..., 3)`` array of ``(x, y, z)`` patient coordinates.
        """
        z_arr = np.asarray(z, dtype=np.float64)
        y_arr = np.asarray(y, dtype=np.float64)
        x_arr = np.asarray(x, dtype=np.float64)
        n = self.slice_positions_mm.shape[0]
        z_floor = np.clip(np.floor(z_arr).astype(np.int64), 0, max(n - 2, 0))
        frac = z_arr - z_floor
        z_next = np.minimum(z_floor + 1, n - 1)
        origin = (
            self.slice_positions_mm[z_floor] * (1.0 - frac)[..., None]
            + self.slice_positions_mm[z_next] * frac[..., None]
        )
        row_dir = np.asarray(self.row_direction, dtype=np.float64)
        col_dir = np.asarray(self.column_direction, dtype=np.float64)
        return np.asarray(
            origin
            + (x_arr * self.pixel_spacing_mm[1])[..., None] * row_dir
            + (y_arr * self.pixel_spacing_mm[0])[..., None] * col_dir,
            dtype=np.float64,
        )


@dataclass(frozen=True, slots=True)
class AcquisitionInfo:
    """What the scanner recorded about the acquisition, as far as scoring cares.

    Every field is optional: a value the series did not carry is ``None``. The DICOM edge fills
    it; the scoring engine uses ``kvp`` and the mass factors and copies the rest into the result.
    """

    kvp: float | None = None
    """(0018,0060) KVP: peak tube voltage in kV."""
    reconstruction_kernel: str | None = None
    """(0018,1210) Convolution Kernel, joined with '\\' when multi-valued."""
    mass_factor_patient: float | None = None
    """(0018,9351) Calcium Scoring Mass Factor Patient (mg HA per cm^3 per HU, as scanned)."""
    mass_factor_device: tuple[float, ...] | None = None
    """(0018,9352) Calcium Scoring Mass Factor Device: one value per (0018,9354) energy level."""
    manufacturer: str | None = None
    model: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    series_description: str | None = None
    acquisition_datetime: datetime | None = None
    patient_position: str | None = None


@dataclass(frozen=True, slots=True)
class CTVolume:
    """A CT volume in Hounsfield units, indexed ``(z, y, x)``, with its geometry.

    ``hu`` may be ``int16`` (the usual case: integer rescale) or ``float32``; it is never copied
    by the scoring engine.
    """

    hu: npt.NDArray[np.int16] | npt.NDArray[np.float32]
    geometry: VolumeGeometry
    acquisition: AcquisitionInfo = field(default_factory=AcquisitionInfo)

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise InvalidVolumeError(f"hu must be a (z, y, x) array, got {self.hu.ndim} dimensions")
        if self.hu.shape[0] != self.geometry.slice_positions_mm.shape[0]:
            raise InvalidVolumeError(
                f"hu has {self.hu.shape[0]} slices but the geometry places "
                f"{self.geometry.slice_positions_mm.shape[0]}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.hu.shape
        return int(z), int(y), int(x)


def axial_geometry(
    n_slices: int,
    pixel_spacing_mm: tuple[float, float],
    increment_mm: float,
    slice_thickness_mm: float | None = None,
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> VolumeGeometry:
    """Geometry of a plain axial stack (identity orientation), slices ascending in z.

    Handy for tests, phantoms and notebooks.
    """
    positions = np.zeros((n_slices, 3), dtype=np.float64)
    positions[:, 0] = origin_mm[0]
    positions[:, 1] = origin_mm[1]
    positions[:, 2] = origin_mm[2] + increment_mm * np.arange(n_slices)
    return VolumeGeometry(
        pixel_spacing_mm=(float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1])),
        row_direction=(1.0, 0.0, 0.0),
        column_direction=(0.0, 1.0, 0.0),
        slice_positions_mm=positions,
        slice_thickness_mm=float(slice_thickness_mm if slice_thickness_mm else increment_mm),
        increment_mm=float(increment_mm),
    )
