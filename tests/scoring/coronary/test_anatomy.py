"""Anatomy steps of the coronary detector on small constructed coarse grids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from scoring.coronary.anatomy import (
    NOISE_SPECK_MM2,
    HeartDepth,
    SetDistance,
    Tube,
    _disk,
    _fill_convex,
    _in_plane,
    _lungs,
    _max_5x5,
    _maxima_3d,
    _opening_px,
    _per_slice,
    _tissue,
    _until_heart,
)
from scoring.coronary.frame import CoarseGrid

SPACING = (2.5, 2.0, 2.0)


def _grid(hu: np.ndarray) -> CoarseGrid:
    return CoarseGrid(hu=hu.astype(np.float32), factor=4, spacing_mm=SPACING)


def _disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.asarray((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2)


class TestLungs:
    def test_lungs_cut_by_the_field_of_view_on_every_side_are_lungs(self) -> None:
        # A small field of view: both lungs run off the left, right and posterior edges and
        # meet behind the heart; only the air in front of the chest is outside the patient.
        rng = np.random.default_rng(0)
        hu = np.full((12, 60, 60), 40.0)
        hu[:, :6, :] = -1000.0 + rng.normal(0.0, 10.0, (12, 6, 60))
        hu[:, 6:10, :] = 0.0  # chest wall
        lung = np.zeros((60, 60), dtype=bool)
        lung[14:, :22] = True
        lung[14:, 38:] = True
        lung[50:, :] = True
        hu[:, lung] = -850.0 + rng.normal(0.0, 30.0, (12, int(lung.sum())))
        lungs, outside = _lungs(_grid(hu))
        assert lungs[:, lung].all()
        assert outside[:, :6, :].all()
        assert not outside[:, lung].any()

    def test_pure_air_at_any_edge_is_outside(self) -> None:
        hu = np.full((12, 40, 40), 40.0)
        hu[:, :, :5] = -1000.0  # air beside the patient, at the right edge only
        hu[:, 8:32, 10:34] = -850.0  # an enclosed lung (70 ml)
        lungs, outside = _lungs(_grid(hu))
        assert outside[:, :, :5].all()
        assert lungs[:, 8:32, 10:34].all()


class TestTissue:
    def test_noise_specks_inside_soft_tissue_are_tissue_but_fat_is_not(self) -> None:
        hu = np.full((3, 50, 50), -100.0)  # fat
        heart = _disc((50, 50), (25, 25), 15)
        hu[:, heart] = 40.0
        hu[1, 20, 20] = -80.0  # one noisy block inside the heart
        hu[1, 30:32, 28:30] = -60.0  # four more
        groove = _disc((50, 50), (25, 25), 15) & ~_disc((50, 50), (25, 25), 13)
        hu[2, groove] = -100.0  # a ring of fat through the heart, larger than a speck
        nothing = np.zeros(hu.shape, dtype=bool)
        tissue = _tissue(_grid(hu), nothing, nothing)
        assert tissue[1, 20, 20]
        assert tissue[1, 30:32, 28:30].all()
        assert not tissue[2, groove].any()
        assert not tissue[:, 0, 0].any()
        # the largest speck kept is NOISE_SPECK_MM2 in area
        assert 4 * SPACING[1] * SPACING[2] <= NOISE_SPECK_MM2


class TestInPlane:
    @pytest.mark.parametrize("erode", [True, False])
    @pytest.mark.parametrize("radius", [1, 2, 3, 5])
    def test_matches_scipy_on_random_masks_and_at_the_edges(self, erode: bool, radius: int) -> None:
        rng = np.random.default_rng(radius)
        operation = ndimage.binary_erosion if erode else ndimage.binary_dilation
        for shape in [(3, 17, 23), (2, 4, 30), (1, 1, 9), (2, 12, 3)]:
            mask = rng.random(shape) < rng.uniform(0.2, 0.9)
            disk = _disk(radius)
            assert np.array_equal(_in_plane(mask, disk, erode), operation(mask, disk[None]))
            assert np.array_equal(_in_plane(mask[0], disk, erode), operation(mask[0], disk))


class TestFillConvex:
    def test_fills_the_pixels_whose_centres_lie_within_half_a_pixel_of_the_polygon(self) -> None:
        triangle = np.array([[1.0, 1.0], [8.0, 1.0], [8.0, 8.0]])
        filled = _fill_convex(triangle, (10, 12))
        expected = np.zeros((10, 12), dtype=bool)
        for row in range(1, 9):
            expected[row, 1 : row + 1] = True
        assert np.array_equal(filled, expected)


class TestMaxima:
    def test_max_5x5_matches_scipy_at_the_edges(self) -> None:
        values = np.random.default_rng(1).random((3, 9, 4)).astype(np.float32)
        expected = ndimage.maximum_filter(values, size=(1, 5, 5))
        assert np.array_equal(_max_5x5(values), expected)

    def test_plateaus_are_numbered_in_raster_order_as_scipy_labels_them(self) -> None:
        # quantised values make plateaus of equal maxima, some touching diagonally
        rng = np.random.default_rng(2)
        dist = np.round(rng.random((4, 30, 30)) * 3).astype(np.float32) * 4.0
        where = rng.random(dist.shape) < 0.9
        got = _maxima_3d(dist, 4.0, 12.0, where)
        peaks = (dist >= 4.0) & (dist <= 12.0) & where
        peaks &= dist == ndimage.maximum_filter(dist, size=(1, 5, 5))
        plane = np.zeros((3, 3, 3), dtype=bool)
        plane[1] = True
        labels, n = ndimage.label(peaks, structure=plane)
        expected: dict[int, list[tuple[float, float, float]]] = {}
        for k in range(1, n + 1):
            zs, rs, cs = np.nonzero(labels == k)
            value = float(dist[zs[0], rs[0], cs[0]])
            expected.setdefault(int(zs[0]), []).append((rs.mean(), cs.mean(), value))
        assert n > 10
        assert got.keys() == expected.keys()
        for z, found in got.items():
            assert np.allclose(np.asarray(found), np.asarray(expected[z]))


class TestHeartDepth:
    @pytest.mark.parametrize("spacing", [(2.5, 2.0, 2.0), (3.0, 1.8049415268129723, 1.8)])
    def test_matches_the_distance_transform_also_at_the_grid_faces(
        self, spacing: tuple[float, float, float]
    ) -> None:
        # a lumpy body that touches the grid's first slice and first row
        rng = np.random.default_rng(3)
        heart = ndimage.binary_opening(rng.random((14, 24, 26)) < 0.8, iterations=1)
        heart[:, :, 20:] = False
        expected = np.asarray(
            ndimage.distance_transform_edt(np.pad(heart, 1), sampling=spacing)[1:-1, 1:-1, 1:-1],
            dtype=np.float32,
        )
        depth = HeartDepth(heart, spacing)
        zz, jj, ii = np.indices(heart.shape).reshape(3, -1)
        assert np.array_equal(depth.at(zz, jj, ii), expected.reshape(-1))
        for limit in (2.0, 3.6, 5.0, 8.0):
            assert np.array_equal(depth.deeper_than(limit), expected > limit)

    def test_no_heart_has_no_depth(self) -> None:
        depth = HeartDepth(np.zeros((3, 4, 5), dtype=bool), SPACING)
        assert not depth.at(np.array([1]), np.array([1]), np.array([1])).any()
        assert not depth.deeper_than(1.0).any()


class TestSetDistance:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_equals_the_euclidean_distance_transform(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        members = ndimage.binary_opening(rng.random((14, 30, 30)) > 0.55, iterations=1)
        members[0, 0, 0] = True
        distance = ndimage.distance_transform_edt(~members, sampling=SPACING)
        z, j, i = (np.arange(n) for n in members.shape)
        zz, jj, ii = (a.ravel() for a in np.meshgrid(z, j, i, indexing="ij"))
        got = SetDistance(members, SPACING).at(zz, jj, ii, 1000.0)
        np.testing.assert_allclose(got, distance[zz, jj, ii], rtol=0, atol=1e-9)

    def test_caps_and_skips(self) -> None:
        members = np.zeros((5, 20, 20), dtype=bool)
        members[2, 10, 10] = True
        where = np.array([True, False])
        got = SetDistance(members, SPACING).at(
            np.array([2, 2]), np.array([10, 10]), np.array([15, 19]), 8.0, where=where
        )
        assert got.tolist() == [8.0, 8.0]  # 10 mm away: capped; the second was not asked
        near = SetDistance(members, SPACING).at(np.array([2]), np.array([12]), np.array([10]), 8.0)
        assert near.tolist() == [4.0]


class TestAscendingAorta:
    def test_ends_where_it_enters_the_heart(self) -> None:
        # a round aorta (radius 12 mm) coming down through fat into a heart ten times wider
        hu = np.full((20, 80, 80), -100.0)
        aorta = _disc((80, 80), (30, 40), 6)
        heart = _disc((80, 80), (40, 40), 20)
        hu[10:, aorta] = 40.0
        hu[:10, heart] = 40.0
        hu[:10, aorta] = 40.0
        nothing = np.zeros(hu.shape, dtype=bool)
        tissue = _tissue(_grid(hu), nothing, nothing)
        slices = np.arange(19, 3, -1)
        tube = Tube(
            slices=slices,
            centres=np.tile([30.0, 40.0], (slices.size, 1)),
            radii_mm=np.full(slices.size, 12.0),
        )
        core = _per_slice("erode", tissue, _disk(_opening_px(_grid(hu))))
        cut = _until_heart(tube, core, _grid(hu))
        assert cut.slices.tolist() == list(range(19, 9, -1))
