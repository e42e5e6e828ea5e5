"""A canonical, anatomically oriented view of a CT volume, and a coarse copy for anatomy.

Every anatomical rule of :mod:`scoring.coronary` is written for one orientation: axis 0 runs from
feet to head (superior), axis 1 from front to back (posterior), axis 2 from the patient's right to
left (the DICOM patient coordinate system LPS, PS3.3 C.7.6.2.1.1). :class:`CanonicalFrame` finds
the flips (and the in-plane transposition) that bring an axial series into that orientation from
(0020,0037) Image Orientation (Patient) and the order of (0020,0032) Image Position (Patient), and
converts indices both ways; nothing is resampled.

Anatomy (lungs, heart, aorta, bone) is found on a coarse copy whose pixels are blocks of about
2 mm (block means of the original pixels): structures of interest are centimetres wide, and the
coarse copy makes the analysis about twenty times cheaper than reading the series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.volume import CTVolume

#: In-plane size of the coarse anatomy grid (mm). A design choice of this module (not a clinical
#: number): small against the aorta (25-35 mm) and the heart, large against the noise grain.
COARSE_PIXEL_MM = 2.0


@dataclass(frozen=True, slots=True)
class CanonicalFrame:
    """How the stored ``(z, y, x)`` axes map onto superior / posterior / left.

    Attributes
    ----------
    transpose
        ``True`` when the stored rows run along patient x (the in-plane axes are swapped).
    flip
        Per canonical axis ``(z, y, x)``: ``True`` when the stored order runs the other way.
    shape
        Canonical shape ``(z, y, x)``.
    spacing_mm
        Canonical voxel size ``(slice increment, row spacing, column spacing)`` in mm.
    axial
        ``False`` when the slice normal is not close to the patient's head-foot axis; the rules
        are then applied as if it were, and the caller warns.
    """

    transpose: bool
    flip: tuple[bool, bool, bool]
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    axial: bool

    @classmethod
    def of(cls, volume: CTVolume) -> CanonicalFrame:
        """The canonical frame of ``volume`` (from its geometry only)."""
        geometry = volume.geometry
        row_dir = np.asarray(geometry.row_direction, dtype=np.float64)
        col_dir = np.asarray(geometry.column_direction, dtype=np.float64)
        normal = geometry.slice_normal
        axial = bool(abs(normal[2]) > 0.9)
        transpose = bool(abs(row_dir[1]) > abs(row_dir[0]))
        # After an optional transpose, canonical x is the stored axis along patient x.
        x_dir, y_dir = (col_dir, row_dir) if transpose else (row_dir, col_dir)
        positions = geometry.slice_positions_mm
        dz = float(positions[-1, 2] - positions[0, 2]) if positions.shape[0] > 1 else normal[2]
        flip = (bool(dz < 0), bool(y_dir[1] < 0), bool(x_dir[0] < 0))
        n_z, n_y, n_x = volume.shape
        row_mm, col_mm = geometry.pixel_spacing_mm
        if transpose:
            n_y, n_x = n_x, n_y
            row_mm, col_mm = col_mm, row_mm
        return cls(
            transpose=transpose,
            flip=flip,
            shape=(n_z, n_y, n_x),
            spacing_mm=(float(geometry.increment_mm), float(row_mm), float(col_mm)),
            axial=axial,
        )

    def view(self, hu: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """The stored ``(z, y, x)`` array as a canonical view (no copy)."""
        out = np.swapaxes(hu, 1, 2) if self.transpose else hu
        slices = tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)
        return out[slices]

    def to_canonical(
        self, z: npt.NDArray[np.integer], y: npt.NDArray[np.integer], x: npt.NDArray[np.integer]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Stored voxel indices -> canonical voxel indices."""
        zc, yc, xc = (np.asarray(a, dtype=np.int64) for a in (z, y, x))
        if self.transpose:
            yc, xc = xc, yc
        out = []
        for axis, values in enumerate((zc, yc, xc)):
            out.append(self.shape[axis] - 1 - values if self.flip[axis] else values)
        return out[0], out[1], out[2]

    def to_stored(
        self, z: npt.ArrayLike, y: npt.ArrayLike, x: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Canonical (possibly fractional) indices -> stored indices."""
        values = [np.asarray(a, dtype=np.float64) for a in (z, y, x)]
        for axis in range(3):
            if self.flip[axis]:
                values[axis] = self.shape[axis] - 1 - values[axis]
        zs, ys, xs = values
        if self.transpose:
            ys, xs = xs, ys
        return zs, ys, xs


@dataclass(frozen=True, slots=True)
class CoarseGrid:
    """Coarse copy of the canonical volume over ``factor x factor`` in-plane pixel blocks.

    ``hu[z, j, i]`` averages a few pixels spread over canonical rows ``j*factor ...
    j*factor+factor-1`` and the same columns; slices are kept.
    """

    hu: npt.NDArray[np.float32]
    factor: int
    spacing_mm: tuple[float, float, float]

    @classmethod
    def of(cls, canonical_hu: npt.NDArray[np.generic], frame: CanonicalFrame) -> CoarseGrid:
        """Block-average a canonical HU view to about :data:`COARSE_PIXEL_MM` pixels."""
        _, row_mm, col_mm = frame.spacing_mm
        factor = max(1, round(COARSE_PIXEL_MM / min(row_mm, col_mm)))
        n_z, n_y, n_x = canonical_hu.shape
        ny, nx = n_y // factor, n_x // factor
        if ny == 0 or nx == 0:
            factor = 1
            ny, nx = n_y, n_x
        # The mean of a few evenly spread pixels of each block (not all of them): as good for
        # telling air, fat, soft tissue and bone apart, and cheaper than reading the volume.
        offsets = sorted({max(0, round(factor * q)) for q in (0.2, 0.6)} | {factor // 2})
        coarse = np.zeros((n_z, ny, nx), dtype=np.float32)
        # slice by slice: each slice is read from memory once and its strided samples are then
        # taken from the cache (the sums, in the same order, are the same)
        for z in range(n_z):
            plane = canonical_hu[z]
            out = coarse[z]
            for dy in offsets:
                for dx in offsets:
                    out += plane[dy : ny * factor : factor, dx : nx * factor : factor]
        coarse /= len(offsets) ** 2
        return cls(
            hu=np.ascontiguousarray(coarse),
            factor=factor,
            spacing_mm=(frame.spacing_mm[0], row_mm * factor, col_mm * factor),
        )

    def from_fine(
        self, y: npt.NDArray[np.integer], x: npt.NDArray[np.integer]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Canonical fine row/column indices -> coarse ones (clipped to the grid)."""
        ny, nx = self.hu.shape[1:]
        return (
            np.clip(np.asarray(y, dtype=np.int64) // self.factor, 0, ny - 1),
            np.clip(np.asarray(x, dtype=np.int64) // self.factor, 0, nx - 1),
        )

    def to_fine(self, j: npt.ArrayLike, i: npt.ArrayLike) -> tuple[float, float]:
        """Coarse (fractional) row/column -> canonical fine row/column of the block centre."""
        half = (self.factor - 1) / 2.0
        return (
            float(np.asarray(j, dtype=np.float64) * self.factor + half),
            float(np.asarray(i, dtype=np.float64) * self.factor + half),
        )
