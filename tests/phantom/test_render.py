"""Partial-volume rendering: filled fractions add up to the object's volume by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phantom.render import Blob, Grid, blob_fraction, composite_blob, slice_profile, sphere_axes


def grid(thickness_mm: float = 3.0, increment_mm: float = 3.0, pixel_mm: float = 0.4) -> Grid:
    xy = (np.arange(64, dtype=np.float64) - 31.5) * pixel_mm
    n = int(24 / increment_mm)
    z = (np.arange(n, dtype=np.float64) - (n - 1) / 2) * increment_mm
    return Grid(x_mm=xy, y_mm=xy.copy(), z_mm=z, pixel_mm=pixel_mm, thickness_mm=thickness_mm)


class TestSliceProfile:
    def test_integrates_to_one(self) -> None:
        dz = np.linspace(-4.0, 4.0, 8001)
        area = float(np.sum(slice_profile(dz, 3.0)) * (dz[1] - dz[0]))
        assert area == pytest.approx(1.0, abs=1e-3)

    def test_half_maximum_at_half_thickness(self) -> None:
        peak, half = slice_profile(np.array([0.0, 1.25]), 2.5)
        assert half / peak == pytest.approx(0.5, rel=1e-6)

    def test_zero_beyond_one_thickness(self) -> None:
        assert slice_profile(np.array([3.01, -3.01]), 3.0).tolist() == [0.0, 0.0]


class TestBlobFraction:
    @pytest.mark.parametrize(("thickness", "increment"), [(3.0, 3.0), (2.5, 2.5), (3.0, 1.5)])
    def test_sphere_volume_is_kept(self, thickness: float, increment: float) -> None:
        g = grid(thickness, increment)
        blob = Blob((0.1, -0.2, 0.3), sphere_axes(), (3.0, 3.0, 3.0), 500.0)
        rendered = blob_fraction(blob, g)
        assert rendered is not None
        _, frac = rendered
        volume = float(frac.sum()) * g.pixel_mm**2 * increment
        assert volume == pytest.approx(4.0 / 3.0 * math.pi * 27.0, rel=0.02)

    def test_cylinder_volume_is_kept(self) -> None:
        g = grid()
        blob = Blob(
            (0.0, 0.0, 0.0),
            ((0.0, 0.0, 1.0), (1.0, 0, 0), (0, 1.0, 0)),
            (2.5, 2.5, 2.5),
            800.0,
            cylinder=True,
        )
        rendered = blob_fraction(blob, g)
        assert rendered is not None
        volume = float(rendered[1].sum()) * g.pixel_mm**2 * 3.0
        assert volume == pytest.approx(math.pi * 2.5**2 * 5.0, rel=0.02)
        assert blob.volume_mm3 == pytest.approx(math.pi * 2.5**2 * 5.0)

    def test_partial_volume_lowers_a_thin_object(self) -> None:
        g = grid()
        blob = Blob((0.0, 0.0, 0.0), sphere_axes(), (0.5, 0.5, 0.5), 800.0)
        rendered = blob_fraction(blob, g)
        assert rendered is not None
        assert 0.0 < float(rendered[1].max()) < 0.3

    def test_blob_outside_the_volume(self) -> None:
        blob = Blob((500.0, 0.0, 0.0), sphere_axes(), (1.0, 1.0, 1.0), 800.0)
        assert blob_fraction(blob, grid()) is None


class TestCompositeBlob:
    def test_mixes_and_labels_the_grown_footprint(self) -> None:
        g = grid()
        hu = np.full(g.shape, 40.0, dtype=np.float32)
        labels = np.zeros(g.shape, dtype=np.uint8)
        blob = Blob((0.0, 0.0, 0.0), sphere_axes(), (2.0, 2.0, 2.0), 640.0)
        assert composite_blob(hu, blob, g, labels, 3, spread_mm=1.0)
        assert 40.0 < hu.max() <= 640.0
        assert set(np.unique(labels)) == {0, 3}
        # Every voxel the blob changed is labelled, and the label reaches beyond it.
        assert np.all(labels[hu > 40.0 + 1e-3] == 3)
        assert np.count_nonzero(labels) > np.count_nonzero(hu > 40.0 + 1e-3)
