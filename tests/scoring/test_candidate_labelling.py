"""find_candidates against a plain reference: per-slice ``scipy.ndimage.label`` and a 3-D label.

The engine finds its 2-D components and 3-D candidates on runs of pixels for speed; these tests
check it against the definition written the slow, obvious way (Agatston 1990; clinical.md
sections 1-2): each slice thresholded and labelled with ``ndimage.label``, components under the
minimum area dropped, and the kept components joined where they share an in-plane pixel in
adjacent slices (one 3-D ``ndimage.label`` whose structure links a voxel to the voxels directly
above and below it only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from phantom.chest import ChestPhantomConfig, chest_phantom
from scoring import (
    AcquisitionInfo,
    CandidateSet,
    Connectivity,
    CTVolume,
    ScoringParameters,
    agatston_weight,
    axial_geometry,
    find_candidates,
)


@dataclass(frozen=True)
class Reference:
    """Per-slice component labels, which of them are kept, and the 3-D candidate labels."""

    slice_labels: list[npt.NDArray[np.integer[Any]]]
    kept: list[npt.NDArray[np.bool_]]
    candidate_labels: npt.NDArray[np.integer[Any]]
    n_candidates: int
    ignored: int


def reference_labelling(volume: CTVolume, params: ScoringParameters) -> Reference:
    rank = 1 if params.connectivity == Connectivity.FOUR else 2
    in_plane = ndimage.generate_binary_structure(2, rank)
    slice_labels: list[npt.NDArray[np.integer[Any]]] = []
    kept: list[npt.NDArray[np.bool_]] = []
    kept_mask = np.zeros(volume.shape, dtype=bool)
    ignored = 0
    for z, plane in enumerate(volume.hu):
        above = plane >= params.threshold_hu
        if not params.threshold_inclusive:
            above = plane > params.threshold_hu
        labels, n = ndimage.label(above, structure=in_plane)
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        keep = counts * volume.geometry.pixel_area_mm2 >= params.min_area_mm2 - 1e-9
        keep[0] = False
        ignored += n - int(np.count_nonzero(keep))
        kept_mask[z] = keep[labels]
        slice_labels.append(labels)
        kept.append(keep)
    across = np.zeros((3, 3, 3), dtype=bool)
    across[1] = in_plane
    across[0, 1, 1] = across[2, 1, 1] = True
    candidate_labels, n_candidates = ndimage.label(kept_mask, structure=across)
    return Reference(slice_labels, kept, candidate_labels, n_candidates, ignored)


def assert_matches_reference(candidates: CandidateSet, volume: CTVolume) -> None:
    params = candidates.parameters
    ref = reference_labelling(volume, params)
    assert candidates.ignored_small_components == ref.ignored
    assert len(candidates.candidates) == ref.n_candidates
    # candidates come in raster order of their first voxel (first slice, then first pixel)
    present, first_voxel = np.unique(ref.candidate_labels.ravel(), return_index=True)
    order = present[present > 0][np.argsort(first_voxel[present > 0], kind="stable")]
    increment_factor = volume.geometry.increment_mm / 3.0 if params.normalise_increment else 1.0
    for cand, label in zip(candidates.candidates, order.tolist(), strict=True):
        expected = np.flatnonzero(ref.candidate_labels.ravel() == label)
        got = np.ravel_multi_index(cand.voxel_indices(), volume.shape)
        assert np.array_equal(np.sort(got), expected)
        assert cand.voxel_count == expected.size
        slices = [c.slice_index for c in cand.components]
        assert slices == sorted(slices)
        assert cand.slice_range == (min(slices), max(slices))
        for comp in cand.components:
            labels = ref.slice_labels[comp.slice_index]
            component_label = int(labels[comp.rows[0], comp.cols[0]])
            assert ref.kept[comp.slice_index][component_label]
            pixels = np.ravel_multi_index((comp.rows, comp.cols), labels.shape)
            assert np.all(np.diff(pixels) > 0), "pixels in raster order"
            assert np.array_equal(pixels, np.flatnonzero(labels.ravel() == component_label))
            values = volume.hu[comp.slice_index][comp.rows, comp.cols].astype(np.float64)
            assert comp.area_mm2 == pixels.size * volume.geometry.pixel_area_mm2
            assert comp.peak_hu == values.max()
            assert comp.sum_hu == pytest.approx(values.sum(), rel=1e-12)
            assert comp.weight == agatston_weight(comp.peak_hu)
            assert comp.agatston == comp.area_mm2 * comp.weight * increment_factor
        assert cand.peak_hu == max(c.peak_hu for c in cand.components)
        assert cand.agatston == pytest.approx(sum(c.agatston for c in cand.components))


def make_volume(hu: npt.NDArray[np.int16] | npt.NDArray[np.float32]) -> CTVolume:
    return CTVolume(hu, axial_geometry(hu.shape[0], (0.5, 0.4), 2.5), AcquisitionInfo(kvp=120.0))


volumes = arrays(
    np.int16,
    st.tuples(st.integers(1, 5), st.integers(1, 20), st.integers(1, 20)),
    elements=st.sampled_from([-100, 0, 129, 130, 131, 180, 220, 320, 450, 900]),
)
parameters = st.builds(
    ScoringParameters,
    threshold_hu=st.sampled_from([130.0, 130.5, 200.0]),
    threshold_inclusive=st.booleans(),
    connectivity=st.sampled_from([Connectivity.FOUR, Connectivity.EIGHT]),
    min_area_mm2=st.sampled_from([0.0, 0.2, 1.0, 2.0]),
    normalise_increment=st.booleans(),
)


class TestFindCandidatesMatchesSliceLabelling:
    @settings(max_examples=150, deadline=None)
    @given(volumes, parameters)
    def test_integer_volumes(self, hu: npt.NDArray[np.int16], params: ScoringParameters) -> None:
        volume = make_volume(hu)
        assert_matches_reference(find_candidates(volume, params), volume)

    @settings(max_examples=60, deadline=None)
    @given(volumes, st.data())
    def test_float_volumes_with_fractional_hu(
        self, hu: npt.NDArray[np.int16], data: st.DataObject
    ) -> None:
        fraction = data.draw(arrays(np.float32, hu.shape, elements=st.floats(-0.5, 0.5, width=32)))
        volume = make_volume(hu.astype(np.float32) + fraction)
        params = ScoringParameters(min_area_mm2=0.5)
        assert_matches_reference(find_candidates(volume, params), volume)

    def test_runs_do_not_wrap_from_one_row_into_the_next(self) -> None:
        # the last column of each row and the first of the next are adjacent in memory only
        hu = np.full((1, 4, 5), -50, dtype=np.int16)
        hu[0, 0, -1] = hu[0, 1, 0] = 400
        candidates = find_candidates(make_volume(hu), ScoringParameters(min_area_mm2=0.0))
        assert [c.voxel_count for c in candidates.candidates] == [1, 1]

    def test_strided_and_fortran_ordered_volumes_give_the_same_candidates(self) -> None:
        rng = np.random.default_rng(3)
        hu = rng.choice(np.array([-100, 140, 400], dtype=np.int16), size=(4, 30, 40))
        expected = find_candidates(make_volume(np.ascontiguousarray(hu[:, ::-1, ::2])))
        for variant in (hu[:, ::-1, ::2], np.asfortranarray(hu[:, ::-1, ::2])):
            got = find_candidates(make_volume(variant))
            assert [c.voxel_count for c in got.candidates] == [
                c.voxel_count for c in expected.candidates
            ]
            for a, b in zip(got.candidates, expected.candidates, strict=True):
                assert all(
                    np.array_equal(x, y)
                    for x, y in zip(a.voxel_indices(), b.voxel_indices(), strict=True)
                )
                assert (a.agatston, a.mass_mg, a.peak_hu) == (b.agatston, b.mass_mg, b.peak_hu)

    def test_chest_phantom_with_overlapping_slices(self) -> None:
        # heavy distractors: many bone, valve, annulus and metal components; 2.5 mm increment
        # over 3 mm slices
        config = ChestPhantomConfig.random(
            7, heavy_distractors=True, slice_thickness_mm=3.0, increment_mm=2.5
        )
        study = chest_phantom(config)
        candidates = find_candidates(study.volume)
        assert len(candidates.candidates) > 20
        assert_matches_reference(candidates, study.volume)
