"""Known-answer and property tests of the scoring engine (scoring.agatston).

Every expected number here is worked out by hand from the definition (Agatston 1990; clinical.md
sections 1-2): area = pixels x row spacing x column spacing, weight from peak HU, x increment/3.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scoring import (
    AcquisitionInfo,
    Artery,
    Connectivity,
    CTVolume,
    ExclusionReason,
    InvalidParameterError,
    LabelMapError,
    LesionLabel,
    ScoringParameters,
    VolumeMethod,
    WarningCode,
    agatston_weight,
    axial_geometry,
    find_candidates,
    labels_from_label_map,
    labels_from_mask,
    score_candidates,
    score_volume,
)

BACKGROUND_HU = -20


def make_volume(
    hu: npt.NDArray[np.int16],
    spacing: tuple[float, float] = (0.5, 0.5),
    increment: float = 3.0,
    thickness: float | None = None,
    kvp: float | None = 120.0,
    mass_factor_patient: float | None = None,
) -> CTVolume:
    geometry = axial_geometry(hu.shape[0], spacing, increment, thickness or increment)
    return CTVolume(hu, geometry, AcquisitionInfo(kvp=kvp, mass_factor_patient=mass_factor_patient))


def blank(z: int = 3, y: int = 24, x: int = 24) -> npt.NDArray[np.int16]:
    return np.full((z, y, x), BACKGROUND_HU, dtype=np.int16)


class TestAgatstonWeight:
    @pytest.mark.parametrize(
        ("peak", "weight"),
        [(130, 1), (199, 1), (200, 2), (299, 2), (300, 3), (399, 3), (400, 4), (1500, 4)],
    )
    def test_band_edges(self, peak: int, weight: int) -> None:
        assert agatston_weight(peak) == weight

    def test_below_threshold_is_weight_one(self) -> None:
        assert agatston_weight(100) == 1


class TestFindCandidates:
    @pytest.mark.parametrize(("peak", "weight"), [(130, 1), (250, 2), (350, 3), (700, 4)])
    def test_each_weight_band(self, peak: int, weight: int) -> None:
        hu = blank()
        hu[1, 4:8, 4:8] = 140
        hu[1, 5, 5] = peak  # the peak decides the weight of the whole 2-D lesion
        result = score_volume(make_volume(hu))
        # 16 pixels x 0.25 mm^2 = 4 mm^2
        assert result.agatston == pytest.approx(4.0 * weight)
        assert result.lesion_count == 1

    def test_minimum_area_edge_included_and_below_ignored(self) -> None:
        hu = blank()
        hu[1, 2:4, 2:4] = 300  # 4 px x 0.25 = 1.0 mm^2: exactly the minimum, kept
        hu[1, 10:13, 10] = 300  # 3 px = 0.75 mm^2: ignored
        result = score_volume(make_volume(hu))
        assert result.agatston == pytest.approx(1.0 * 3)
        assert result.ignored_small_components == 1

    def test_anisotropic_pixels_use_both_spacings(self) -> None:
        hu = blank()
        hu[1, 4:6, 4:7] = 410  # 6 px
        result = score_volume(make_volume(hu, spacing=(0.4, 0.7)))
        assert result.agatston == pytest.approx(6 * 0.4 * 0.7 * 4)
        assert result.volume_mm3 == pytest.approx(6 * 0.4 * 0.7 * 3.0)

    def test_increment_normalisation_for_overlapping_slices(self) -> None:
        hu = blank(z=4)
        hu[1:3, 4:8, 4:8] = 210
        result = score_volume(make_volume(hu, increment=1.5, thickness=3.0))
        # two slices of 4 mm^2 x weight 2, each scaled by 1.5 / 3
        assert result.agatston == pytest.approx(2 * 4.0 * 2 * 0.5)
        assert result.volume_mm3 == pytest.approx(32 * 0.25 * 1.5)
        codes = {w.code for w in result.warnings}
        assert WarningCode.OVERLAPPING_SLICES in codes
        assert WarningCode.NON_STANDARD_THICKNESS not in codes

    def test_normalisation_can_be_turned_off(self) -> None:
        hu = blank()
        hu[1, 4:8, 4:8] = 210
        params = ScoringParameters(normalise_increment=False)
        result = score_volume(make_volume(hu, increment=2.5), params)
        assert result.agatston == pytest.approx(8.0)

    def test_threshold_inclusive_and_exclusive(self) -> None:
        hu = blank()
        hu[1, 4:8, 4:8] = 130
        assert score_volume(make_volume(hu)).agatston == pytest.approx(4.0)
        exclusive = ScoringParameters(threshold_inclusive=False)
        assert score_volume(make_volume(hu), exclusive).agatston == 0.0

    def test_connectivity_joins_diagonals_only_with_eight(self) -> None:
        hu = blank()
        hu[1, 4:6, 4:6] = 300
        hu[1, 6:8, 6:8] = 300  # touches the first square at a corner only
        eight = score_volume(make_volume(hu))
        four = score_volume(make_volume(hu), ScoringParameters(connectivity=Connectivity.FOUR))
        assert eight.lesion_count == 1
        assert four.lesion_count == 2
        assert eight.agatston == pytest.approx(four.agatston) == pytest.approx(2 * 1.0 * 3)

    def test_lesions_join_across_overlapping_slices_only(self) -> None:
        hu = blank(z=4)
        hu[0, 4:8, 4:8] = 300
        hu[1, 6:10, 6:10] = 300  # overlaps slice 0
        hu[3, 4:8, 4:8] = 300  # slice 2 empty: a separate lesion
        candidates = find_candidates(make_volume(hu))
        assert [c.slice_range for c in candidates.candidates] == [(0, 1), (3, 3)]

    def test_mass_uses_mean_hu_volume_and_factor(self) -> None:
        hu = blank()
        hu[1, 4:8, 4:8] = 400
        params = ScoringParameters(mass_factor_mg_per_mm3_hu=0.0008)
        result = score_volume(make_volume(hu), params)
        assert result.mass_mg == pytest.approx(0.0008 * 400 * 16 * 0.25 * 3.0)
        assert result.mass_calibrated
        assert WarningCode.MASS_UNCALIBRATED not in {w.code for w in result.warnings}

    def test_mass_factor_from_dicom_per_cm3(self) -> None:
        hu = blank()
        hu[1, 4:8, 4:8] = 400
        result = score_volume(make_volume(hu, mass_factor_patient=0.8))
        assert result.mass_factor_mg_per_mm3_hu == pytest.approx(0.0008)
        assert result.mass_calibrated
        assert "0018,9351" in result.mass_factor_source

    def test_uncalibrated_mass_is_flagged(self) -> None:
        hu = blank()
        hu[1, 4:8, 4:8] = 400
        result = score_volume(make_volume(hu))
        assert not result.mass_calibrated
        assert WarningCode.MASS_UNCALIBRATED in {w.code for w in result.warnings}

    @pytest.mark.parametrize(
        ("kvp", "code"),
        [(100.0, WarningCode.NON_STANDARD_KVP), (None, WarningCode.KVP_UNKNOWN)],
    )
    def test_non_standard_kvp_warns(self, kvp: float | None, code: WarningCode) -> None:
        result = score_volume(make_volume(blank(), kvp=kvp))
        assert code in {w.code for w in result.warnings}

    def test_standard_acquisition_has_no_acquisition_warning(self) -> None:
        params = ScoringParameters(mass_factor_mg_per_mm3_hu=0.0008)
        assert score_volume(make_volume(blank()), params).warnings == ()

    @pytest.mark.parametrize("thickness", [1.0, 5.0])
    def test_thickness_outside_standard_warns(self, thickness: float) -> None:
        result = score_volume(make_volume(blank(), increment=thickness))
        assert WarningCode.NON_STANDARD_THICKNESS in {w.code for w in result.warnings}

    def test_centroid_in_patient_coordinates(self) -> None:
        hu = blank()
        hu[2, 10:12, 4:8] = 300  # rows 10-11, columns 4-7
        geometry = axial_geometry(3, (0.5, 0.5), 3.0, origin_mm=(-100.0, -50.0, 20.0))
        result = score_volume(CTVolume(hu, geometry))
        assert result.lesions[0].centroid_mm == pytest.approx(
            (-100 + 5.5 * 0.5, -50 + 10.5 * 0.5, 26.0)
        )

    def test_isotropic_volume_differs_but_agatston_does_not(self) -> None:
        hu = blank(z=5, y=40, x=40)
        zz, yy, xx = np.mgrid[0:5, 0:40, 0:40]
        ball = ((zz - 2) * 3.0) ** 2 + ((yy - 20) * 0.5) ** 2 + ((xx - 20) * 0.5) ** 2 <= 4.0**2
        hu[ball] = 500
        voxel = score_volume(make_volume(hu))
        iso = score_volume(make_volume(hu), ScoringParameters(volume_method=VolumeMethod.ISOTROPIC))
        assert iso.agatston == pytest.approx(voxel.agatston)
        assert iso.volume_mm3 != pytest.approx(voxel.volume_mm3)
        assert 0.3 * voxel.volume_mm3 < iso.volume_mm3 < 1.5 * voxel.volume_mm3

    def test_empty_volume_scores_zero(self) -> None:
        result = score_volume(make_volume(blank()))
        assert (result.agatston, result.volume_mm3, result.mass_mg, result.lesion_count) == (
            0.0,
            0.0,
            0.0,
            0,
        )


class TestScoringParameters:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"threshold_hu": -5},
            {"min_area_mm2": -1},
            {"connectivity": 6},
            {"volume_method": "cubic"},
            {"mass_factor_mg_per_mm3_hu": 0.8},
        ],
    )
    def test_out_of_range_parameters_are_refused(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(InvalidParameterError):
            ScoringParameters(**kwargs)  # type: ignore[arg-type]

    def test_recorded_as_wire_values(self) -> None:
        record = ScoringParameters().as_dict()
        assert record["connectivity"] == 8
        assert record["volume_method"] == "voxel"
        assert record["threshold_hu"] == 130.0


class TestLabelsFromLabelMap:
    def test_majority_artery_and_unlabelled_exclusion(self) -> None:
        hu = blank()
        hu[1, 2:6, 2:6] = 300
        hu[1, 12:16, 12:16] = 300
        hu[1, 18:22, 2:6] = 300
        label_map = np.zeros(hu.shape, dtype=np.uint8)
        label_map[1, 2:6, 2:5] = Artery.LAD.code  # 12 of 16 voxels
        label_map[1, 2:6, 5] = Artery.LM.code
        label_map[1, 12:16, 12:16] = Artery.RCA.code
        candidates = find_candidates(make_volume(hu))
        labels = labels_from_label_map(candidates, label_map)
        result = score_candidates(candidates, labels, roi="labels")
        assert result.agatston_by_artery[Artery.LAD] == pytest.approx(12.0)
        assert result.agatston_by_artery[Artery.RCA] == pytest.approx(12.0)
        assert result.agatston == pytest.approx(24.0)
        assert [e.reason for e in result.excluded] == [ExclusionReason.NOT_LABELLED]
        assert result.vessels_with_calcium == 2

    def test_shape_mismatch_names_both_shapes(self) -> None:
        candidates = find_candidates(make_volume(blank()))
        with pytest.raises(LabelMapError, match=r"\(3, 24, 24\)"):
            labels_from_label_map(candidates, np.zeros((2, 24, 24), dtype=np.uint8))


class TestLabelsFromMask:
    def test_candidates_outside_the_roi_are_excluded(self) -> None:
        hu = blank()
        hu[1, 2:6, 2:6] = 300
        hu[1, 12:16, 12:16] = 300
        mask = np.zeros(hu.shape, dtype=bool)
        mask[:, :10, :10] = True
        result = score_volume(make_volume(hu), roi_mask=mask)
        assert result.agatston == pytest.approx(12.0)
        assert [e.reason for e in result.excluded] == [ExclusionReason.OUTSIDE_ROI]
        assert result.roi == "mask"

    def test_wrong_shape_is_refused(self) -> None:
        candidates = find_candidates(make_volume(blank()))
        with pytest.raises(LabelMapError):
            labels_from_mask(candidates, np.zeros((1, 1, 1), dtype=bool))


class TestScoreCandidates:
    def test_unknown_roi_is_refused(self) -> None:
        with pytest.raises(InvalidParameterError, match="roi"):
            score_candidates(find_candidates(make_volume(blank())), roi="heart")

    def test_candidate_without_decision_is_excluded(self) -> None:
        hu = blank()
        hu[1, 2:6, 2:6] = 300
        candidates = find_candidates(make_volume(hu))
        result = score_candidates(candidates, {}, roi="auto")
        assert result.agatston == 0.0
        assert result.excluded[0].reason == ExclusionReason.NOT_LABELLED

    def test_explicit_exclusion_keeps_its_reason(self) -> None:
        hu = blank()
        hu[1, 2:6, 2:6] = 300
        candidates = find_candidates(make_volume(hu))
        labels = {1: LesionLabel(excluded=ExclusionReason.BONE, detail="rib")}
        result = score_candidates(candidates, labels, roi="auto")
        assert result.excluded[0].reason == ExclusionReason.BONE
        assert result.excluded[0].detail == "rib"
        assert result.excluded[0].agatston == pytest.approx(12.0)


# --- properties -------------------------------------------------------------------------------

volumes = arrays(
    np.int16,
    st.tuples(st.integers(1, 4), st.integers(4, 16), st.integers(4, 16)),
    elements=st.sampled_from([-100, 0, 120, 135, 180, 220, 320, 450, 900]),
)
spacings = st.tuples(st.sampled_from([0.3, 0.5, 0.7]), st.sampled_from([0.3, 0.5, 0.7]))


def padded(hu: npt.NDArray[np.int16], pad: int) -> npt.NDArray[np.int16]:
    return np.pad(hu, ((0, 0), (pad, pad), (pad, pad)), constant_values=BACKGROUND_HU)


class TestProperties:
    @settings(max_examples=80, deadline=None)
    @given(volumes, spacings)
    def test_never_negative_and_parts_sum_to_totals(
        self, hu: npt.NDArray[np.int16], spacing: tuple[float, float]
    ) -> None:
        result = score_volume(make_volume(hu, spacing=spacing))
        assert result.agatston >= 0
        assert result.volume_mm3 >= 0
        assert result.mass_mg >= 0
        assert result.agatston == pytest.approx(sum(les.agatston for les in result.lesions))
        assert result.volume_mm3 == pytest.approx(sum(les.volume_mm3 for les in result.lesions))

    @settings(max_examples=60, deadline=None)
    @given(volumes)
    def test_per_artery_parts_sum_to_total(self, hu: npt.NDArray[np.int16]) -> None:
        candidates = find_candidates(make_volume(hu))
        arteries = list(Artery)
        labels = {
            c.lesion_id: LesionLabel(artery=arteries[c.lesion_id % 4])
            for c in candidates.candidates
        }
        result = score_candidates(candidates, labels, roi="auto")
        assert sum(result.agatston_by_artery.values()) == pytest.approx(result.agatston)
        assert sum(result.volume_mm3_by_artery.values()) == pytest.approx(result.volume_mm3)
        assert sum(result.mass_mg_by_artery.values()) == pytest.approx(result.mass_mg)

    @settings(max_examples=40, deadline=None)
    @given(volumes)
    def test_zero_when_nothing_reaches_the_threshold(self, hu: npt.NDArray[np.int16]) -> None:
        low = np.minimum(hu, 129).astype(np.int16)
        assert score_volume(make_volume(low)).agatston == 0.0

    @settings(max_examples=60, deadline=None)
    @given(volumes, st.integers(0, 3), st.integers(0, 3))
    def test_invariant_under_in_plane_translation_and_flips(
        self, hu: npt.NDArray[np.int16], dy: int, dx: int
    ) -> None:
        base = padded(hu, 3)
        reference = score_volume(make_volume(base))
        shifted = np.roll(base, (dy, dx), axis=(1, 2))
        for variant in (shifted, base[:, ::-1, :], base[:, :, ::-1]):
            result = score_volume(make_volume(np.ascontiguousarray(variant)))
            assert result.agatston == pytest.approx(reference.agatston)
            assert result.volume_mm3 == pytest.approx(reference.volume_mm3)
            assert result.mass_mg == pytest.approx(reference.mass_mg)

    @settings(max_examples=60, deadline=None)
    @given(volumes)
    def test_sub_minimum_lesions_ignored(self, hu: npt.NDArray[np.int16]) -> None:
        # with 0.3 x 0.3 mm pixels, a lesion needs 12 pixels to reach 1 mm^2
        result = score_volume(make_volume(hu, spacing=(0.3, 0.3)))
        assert all(
            c.area_mm2 >= 1.0 - 1e-9
            for cand in find_candidates(make_volume(hu, spacing=(0.3, 0.3))).candidates
            for c in cand.components
        )
        assert result.agatston >= 0

    @settings(max_examples=60, deadline=None)
    @given(volumes, st.data())
    def test_raising_hu_never_lowers_the_score(
        self, hu: npt.NDArray[np.int16], data: st.DataObject
    ) -> None:
        before = score_volume(make_volume(hu)).agatston
        mask = data.draw(arrays(np.bool_, hu.shape))
        raised = np.where(mask, np.maximum(hu, 0) + 200, hu).astype(np.int16)
        assert score_volume(make_volume(raised)).agatston >= before - 1e-9
