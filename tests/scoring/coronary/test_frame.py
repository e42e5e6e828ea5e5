"""Canonical orientation and the coarse anatomy grid."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import CTVolume, VolumeGeometry, axial_geometry
from scoring.coronary.frame import CanonicalFrame, CoarseGrid


def _volume(
    row_dir: tuple[float, float, float], col_dir: tuple[float, float, float], dz: float
) -> CTVolume:
    hu = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    positions = np.zeros((3, 3))
    positions[:, 2] = dz * np.arange(3)
    geometry = VolumeGeometry(
        pixel_spacing_mm=(0.5, 0.8),
        row_direction=row_dir,
        column_direction=col_dir,
        slice_positions_mm=positions,
        slice_thickness_mm=3.0,
        increment_mm=3.0,
    )
    return CTVolume(hu=hu, geometry=geometry)


class TestCanonicalFrame:
    def test_identity(self) -> None:
        volume = _volume((1, 0, 0), (0, 1, 0), 3.0)
        frame = CanonicalFrame.of(volume)
        assert frame.flip == (False, False, False)
        assert not frame.transpose
        assert frame.spacing_mm == (3.0, 0.5, 0.8)
        np.testing.assert_array_equal(frame.view(volume.hu), volume.hu)

    @pytest.mark.parametrize(
        ("row_dir", "col_dir", "dz"),
        [
            ((-1, 0, 0), (0, 1, 0), 3.0),
            ((1, 0, 0), (0, -1, 0), -3.0),
            ((0, 1, 0), (1, 0, 0), 3.0),
            ((0, -1, 0), (-1, 0, 0), -3.0),
        ],
    )
    def test_indices_round_trip_and_follow_the_view(
        self, row_dir: tuple[float, float, float], col_dir: tuple[float, float, float], dz: float
    ) -> None:
        volume = _volume(row_dir, col_dir, dz)
        frame = CanonicalFrame.of(volume)
        view = frame.view(volume.hu)
        z, y, x = np.nonzero(np.ones(volume.shape, dtype=bool))
        zc, yc, xc = frame.to_canonical(z, y, x)
        np.testing.assert_array_equal(view[zc, yc, xc], volume.hu[z, y, x])
        zs, ys, xs = frame.to_stored(zc, yc, xc)
        np.testing.assert_array_equal(zs, z)
        np.testing.assert_array_equal(ys, y)
        np.testing.assert_array_equal(xs, x)
        # canonical axes run superior, posterior, left in patient coordinates
        first = volume.geometry.to_patient_mm(*frame.to_stored(0, 0, 0))
        step_z = volume.geometry.to_patient_mm(*frame.to_stored(1, 0, 0)) - first
        step_y = volume.geometry.to_patient_mm(*frame.to_stored(0, 1, 0)) - first
        step_x = volume.geometry.to_patient_mm(*frame.to_stored(0, 0, 1)) - first
        assert step_z[2] > 0
        assert step_y[1] > 0
        assert step_x[0] > 0


class TestCoarseGrid:
    def test_block_values_and_coordinates(self) -> None:
        hu = np.zeros((2, 40, 40), dtype=np.int16)
        hu[:, :20, :] = -1000
        volume = CTVolume(hu=hu, geometry=axial_geometry(2, (0.4, 0.4), 3.0))
        frame = CanonicalFrame.of(volume)
        coarse = CoarseGrid.of(frame.view(volume.hu), frame)
        assert coarse.factor == 5
        assert coarse.hu.shape == (2, 8, 8)
        assert coarse.spacing_mm == pytest.approx((3.0, 2.0, 2.0))
        np.testing.assert_allclose(coarse.hu[:, :4], -1000.0)
        np.testing.assert_allclose(coarse.hu[:, 4:], 0.0)
        rows, cols = coarse.from_fine(np.array([0, 24, 39]), np.array([4, 5, 39]))
        np.testing.assert_array_equal(rows, [0, 4, 7])
        np.testing.assert_array_equal(cols, [0, 1, 7])
        assert coarse.to_fine(1, 2) == (7.0, 12.0)
