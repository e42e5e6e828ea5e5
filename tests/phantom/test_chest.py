"""The anthropomorphic chest phantom: determinism, anatomy, truth consistency, noise, geometry."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from phantom.chest import ChestPhantomConfig, PlaqueSpec, chest_landmarks, chest_phantom
from phantom.errors import PhantomConfigError
from phantom.study import Distractor, PhantomStudy
from scoring import ARTERIES, Artery, ExclusionReason, find_candidates

#: Small, fast studies: 256 x 256 pixels of 0.8 mm keep the 205 mm field of view.
SMALL: dict[str, Any] = {"matrix_size": 256, "pixel_spacing_mm": 0.8}


def index_of(study: PhantomStudy, point: tuple[float, float, float]) -> tuple[int, int, int]:
    """(z, y, x) voxel index nearest to a patient point on an axial phantom."""
    g = study.volume.geometry
    x0, y0 = g.slice_positions_mm[0, :2]
    z = int(np.argmin(np.abs(g.slice_positions_mm[:, 2] - point[2])))
    return (
        z,
        round((point[1] - y0) / g.pixel_spacing_mm[0]),
        round((point[0] - x0) / g.pixel_spacing_mm[1]),
    )


def roi_mean(study: PhantomStudy, point: tuple[float, float, float], half: int = 3) -> float:
    z, y, x = index_of(study, point)
    return float(study.volume.hu[z, y - half : y + half + 1, x - half : x + half + 1].mean())


@pytest.fixture(scope="module")
def reference() -> PhantomStudy:
    return chest_phantom(ChestPhantomConfig(**SMALL))


@pytest.fixture(scope="module")
def noiseless() -> PhantomStudy:
    return chest_phantom(ChestPhantomConfig(noise_sd_hu=0.0, **SMALL))


@pytest.fixture(scope="module")
def heavy() -> PhantomStudy:
    return chest_phantom(ChestPhantomConfig.random(11, heavy_distractors=True, **SMALL))


class TestDeterminism:
    def test_same_seed_same_arrays(self) -> None:
        config = ChestPhantomConfig.random(5, **SMALL)
        assert config == ChestPhantomConfig.random(5, **SMALL)
        a, b = chest_phantom(config), chest_phantom(config)
        assert np.array_equal(a.volume.hu, b.volume.hu)
        assert np.array_equal(a.plaque_labels, b.plaque_labels)
        assert np.array_equal(a.distractor_labels, b.distractor_labels)
        assert a.truth == b.truth
        assert a.volume.acquisition.series_instance_uid == b.volume.acquisition.series_instance_uid

    def test_other_seed_other_study(self) -> None:
        assert ChestPhantomConfig.random(5, **SMALL) != ChestPhantomConfig.random(6, **SMALL)


class TestVolume:
    def test_types_and_hu_range(self, reference: PhantomStudy) -> None:
        hu = reference.volume.hu
        assert hu.dtype == np.int16
        assert reference.plaque_labels.dtype == np.uint8
        assert reference.plaque_labels.shape == hu.shape == reference.distractor_labels.shape
        assert hu.min() >= -1024
        assert hu.max() <= 3071
        assert 30 <= hu.shape[0] <= 80

    def test_lps_axial_geometry(self, reference: PhantomStudy) -> None:
        g = reference.volume.geometry
        assert g.row_direction == (1.0, 0.0, 0.0)
        assert g.column_direction == (0.0, 1.0, 0.0)
        assert np.all(np.diff(g.slice_positions_mm[:, 2]) == pytest.approx(3.0))
        # A real-looking Image Position (Patient): the table well below the origin.
        assert -300.0 < g.slice_positions_mm[0, 2] < 0.0
        assert reference.volume.acquisition.kvp == 120.0
        assert reference.volume.acquisition.mass_factor_patient == pytest.approx(0.8)

    def test_overlapping_reconstruction(self) -> None:
        study = chest_phantom(ChestPhantomConfig(slice_thickness_mm=2.5, increment_mm=2.0, **SMALL))
        g = study.volume.geometry
        assert (g.slice_thickness_mm, g.increment_mm) == (2.5, 2.0)
        assert np.allclose(np.diff(g.slice_positions_mm[:, 2]), 2.0)


class TestAnatomy:
    def test_aortas(self, reference: PhantomStudy) -> None:
        marks = chest_landmarks(reference.config)
        ascending, descending = marks["ascending_aorta_top"], marks["descending_aorta_top"]
        # Ascending aorta right (-x) and anterior (-y) of the descending aorta.
        assert ascending[0] < descending[0]
        assert ascending[1] < descending[1]
        # Descending aorta beside the spine, on the patient's left; root at the heart's base.
        assert descending[0] > marks["vertebral_body"][0]
        assert marks["aortic_root"][2] > marks["heart_center"][2]
        for point in (ascending, descending):
            assert roi_mean(reference, point) == pytest.approx(40.0, abs=15.0)

    def test_heart_between_the_lungs(self, reference: PhantomStudy) -> None:
        marks = chest_landmarks(reference.config)
        hx, hy, hz = marks["heart_center"]
        assert roi_mean(reference, (hx, hy, hz)) == pytest.approx(40.0, abs=15.0)
        z, y, x = index_of(reference, (hx, hy, hz))
        row = reference.volume.hu[z, y - 2 : y + 3].mean(axis=0)
        lung = row < -700
        assert lung[:x].any(), "no lung on the patient's right of the heart"
        assert lung[x:].any(), "no lung on the patient's left of the heart"

    def test_large_heart_in_a_small_fat_patient_stays_in_the_chest(self) -> None:
        config = ChestPhantomConfig(
            patient_scale=0.85,
            subcutaneous_fat_mm=30.0,
            heart_scale=1.2,
            heart_offset_mm=(10.0, -10.0, 0.0),
            noise_sd_hu=0.0,
            **SMALL,
        )
        study = chest_phantom(config)
        marks = chest_landmarks(config)
        z, y, x = index_of(study, marks["heart_center"])
        row = study.volume.hu[z, y]
        assert (row[:x] < -700).any()
        assert (row[x:] < -700).any()
        # The sternum is still in front of the heart, in bone.
        zs, ys, xs = index_of(study, marks["sternum"])
        assert study.distractor_labels[zs, ys, xs] == Distractor.BONE
        assert marks["sternum"][1] < marks["heart_center"][1] - config.heart_scale * 30.0

    def test_lung_and_bone_values(self, noiseless: PhantomStudy) -> None:
        hu = noiseless.volume.hu
        lung = hu[(hu < -700) & (hu > -950)]
        assert float(np.median(lung)) == pytest.approx(-850.0, abs=10.0)
        marks = chest_landmarks(noiseless.config)
        bone = noiseless.distractor_labels == Distractor.BONE
        assert bone.any()
        assert 100.0 < float(np.median(hu[bone])) < 700.0
        z, y, x = index_of(noiseless, marks["vertebral_body"])
        assert noiseless.distractor_labels[z, y, x] == Distractor.BONE

    @pytest.mark.parametrize("sign", [1.0, -1.0])
    def test_non_ellipsoidal_heart_keeps_its_plaques(self, sign: float) -> None:
        shape = tuple(sign * 0.1 * (-1) ** k for k in range(7))
        study = chest_phantom(ChestPhantomConfig(heart_shape=shape, noise_sd_hu=0.0, **SMALL))
        assert study.truth.agatston_by_artery[Artery.LAD] > 0
        assert study.truth.agatston_by_artery[Artery.RCA] > 0
        marks = chest_landmarks(study.config)
        assert roi_mean(study, marks["heart_center"]) == pytest.approx(40.0, abs=1.0)

    def test_tissue_values_vary_between_patients(self) -> None:
        config = ChestPhantomConfig(lung_hu=-880.0, blood_hu=34.0, noise_sd_hu=0.0, **SMALL)
        study = chest_phantom(config)
        hu = study.volume.hu
        assert float(np.median(hu[(hu < -700) & (hu > -950)])) == pytest.approx(-880.0, abs=10.0)
        marks = chest_landmarks(config)
        assert roi_mean(study, marks["heart_center"]) == pytest.approx(34.0, abs=1.0)

    def test_ostia_on_the_aortic_root(self, reference: PhantomStudy) -> None:
        marks = chest_landmarks(reference.config)
        root = np.array(marks["aortic_root"])
        left = np.linalg.norm(np.array(marks["left_ostium"]) - root)
        right = np.linalg.norm(np.array(marks["right_ostium"]) - root)
        assert left == pytest.approx(right)
        assert marks["left_ostium"][0] > marks["right_ostium"][0]


class TestTruth:
    def test_reference_plaques_scored(self, reference: PhantomStudy) -> None:
        truth = reference.truth
        assert truth.agatston_by_artery[Artery.LAD] > 0
        assert truth.agatston_by_artery[Artery.RCA] > 0
        assert truth.agatston_by_artery[Artery.LM] == 0
        assert truth.agatston_by_artery[Artery.LCX] == 0
        assert truth.agatston == pytest.approx(sum(truth.agatston_by_artery.values()))
        assert truth.volume_mm3 == pytest.approx(sum(truth.volume_mm3_by_artery.values()))
        assert truth.mass_mg > 0

    def test_lesions_lie_in_their_artery_region(self, reference: PhantomStudy) -> None:
        assert reference.truth.lesions
        for lesion in reference.truth.lesions:
            assert lesion.artery is not None
            assert 1.0 <= lesion.max_area_mm2 <= lesion.area_mm2
            z, y, x = index_of(reference, lesion.centroid_mm)
            assert reference.plaque_labels[z, y, x] == lesion.artery.code

    def test_blooming_stays_inside_the_regions(self, noiseless: PhantomStudy) -> None:
        candidates = find_candidates(noiseless.volume)
        touching = 0
        for cand in candidates.candidates:
            codes = noiseless.plaque_labels[cand.voxel_indices()]
            if codes.any():
                touching += 1
                assert codes.all(), f"candidate {cand.lesion_id} leaks out of its plaque region"
        assert touching >= 2

    def test_plaques_on_side_branches_count_for_their_artery(self) -> None:
        plaques = tuple(
            PlaqueSpec(artery, 0.5, 1.5, 600.0, 1.5, 0.0, branch)
            for artery, branch in (
                (Artery.LAD, 1),
                (Artery.LAD, 2),
                (Artery.LCX, 1),
                (Artery.LCX, 2),
                (Artery.RCA, 1),
            )
        )
        study = chest_phantom(ChestPhantomConfig(plaques=plaques, **SMALL))
        by_artery = study.truth.agatston_by_artery
        assert by_artery[Artery.LM] == 0.0
        assert all(by_artery[a] > 0 for a in (Artery.LAD, Artery.LCX, Artery.RCA))

    def test_zero_calcium(self) -> None:
        study = chest_phantom(ChestPhantomConfig.random(3, zero_calcium=True, **SMALL))
        assert study.config.plaques == ()
        assert not study.plaque_labels.any()
        assert study.truth.agatston == 0.0
        assert study.truth.lesions == ()
        assert all(study.truth.agatston_by_artery[a] == 0.0 for a in ARTERIES)

    def test_json_record(self, reference: PhantomStudy) -> None:
        record = reference.truth.to_json_dict()
        assert record["agatston"]["total"] == pytest.approx(reference.truth.agatston, abs=1e-3)
        assert set(record["agatston"]["by_artery"]) == {"LM", "LAD", "LCX", "RCA"}
        assert len(record["lesions"]) == reference.truth.lesion_count
        assert {o["kind"] for o in record["objects"]} == {"plaque"}


class TestDistractors:
    def test_heavy_study_has_every_kind(self, heavy: PhantomStudy) -> None:
        present = set(np.unique(heavy.distractor_labels)) - {0}
        assert {
            Distractor.BONE,
            Distractor.AORTIC_WALL,
            Distractor.AORTIC_VALVE,
            Distractor.MITRAL_ANNULUS,
            Distractor.METAL,
            Distractor.LYMPH_NODE,
        } <= present
        # Metal saturates the image and is labelled as such.
        hottest = np.unravel_index(np.argmax(heavy.volume.hu), heavy.volume.hu.shape)
        assert heavy.volume.hu[hottest] > 2000
        assert heavy.distractor_labels[hottest] == Distractor.METAL

    def test_little_coronary_calcium(self, heavy: PhantomStudy) -> None:
        assert 1 <= len(heavy.config.plaques) <= 2
        assert all(p.radius_mm <= 1.6 for p in heavy.config.plaques)

    def test_plaque_and_distractor_regions_apart(self, heavy: PhantomStudy) -> None:
        calcified = heavy.distractor_labels > Distractor.COSTAL_CARTILAGE
        assert not np.any(calcified & (heavy.plaque_labels > 0))

    def test_exclusion_reasons(self) -> None:
        assert Distractor.AORTIC_WALL.exclusion_reason is ExclusionReason.AORTA
        assert Distractor.COSTAL_CARTILAGE.exclusion_reason is ExclusionReason.BONE
        assert Distractor.METAL.exclusion_reason is ExclusionReason.METAL
        assert Distractor.LYMPH_NODE.exclusion_reason is ExclusionReason.OUTSIDE_HEART


class TestNoise:
    @pytest.mark.parametrize("sd", [10.0, 35.0])
    def test_sd_in_a_homogeneous_region(self, sd: float) -> None:
        config = ChestPhantomConfig(noise_sd_hu=sd, plaques=(), **SMALL)
        study = chest_phantom(config)
        quiet = chest_phantom(replace(config, noise_sd_hu=0.0))
        marks = chest_landmarks(config)
        z, y, x = index_of(study, marks["heart_center"])
        box = (slice(z - 3, z + 4), slice(y - 12, y + 13), slice(x - 12, x + 13))
        assert int(np.ptp(quiet.volume.hu[box])) <= 1  # homogeneous without noise
        measured = float(study.volume.hu[box].astype(np.float64).std())
        assert measured == pytest.approx(sd, rel=0.2)


class TestConfig:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("pixel_spacing_mm", 0.1),
            ("increment_mm", 3.5),
            ("noise_sd_hu", -1.0),
            ("heart_scale", 2.0),
            ("surgical_clips", -1),
            ("lung_hu", -500.0),
            ("heart_aspect", (0.3, 0.7)),
            ("heart_shape", (0.2, 0, 0, 0, 0, 0, 0)),
        ],
    )
    def test_rejects_out_of_range(self, field: str, value: float) -> None:
        with pytest.raises(PhantomConfigError, match=field):
            ChestPhantomConfig(**{field: value})  # type: ignore[arg-type]

    def test_rejects_bad_plaque(self) -> None:
        with pytest.raises(PhantomConfigError, match="radius_mm"):
            PlaqueSpec(Artery.LAD, 0.5, 5.0, 400.0)
        with pytest.raises(PhantomConfigError, match="density_hu"):
            PlaqueSpec(Artery.LAD, 0.5, 1.0, 100.0)
        with pytest.raises(PhantomConfigError, match="branch must be 0-0 for the LM"):
            PlaqueSpec(Artery.LM, 0.5, 1.0, 400.0, branch=1)

    def test_rejects_unknown_override(self) -> None:
        with pytest.raises(PhantomConfigError, match="no_such_field"):
            ChestPhantomConfig.random(1, no_such_field=3)

    def test_random_draws_stay_in_range(self) -> None:
        for seed in range(20):
            config = ChestPhantomConfig.random(seed)
            assert 0.33 <= config.pixel_spacing_mm <= 0.5
            assert config.slice_thickness_mm in (2.5, 3.0)
            assert config.increment_mm <= config.slice_thickness_mm
            assert 10.0 <= config.noise_sd_hu <= 35.0
            assert -115.0 <= config.fat_hu <= -85.0
            assert 33.0 <= config.blood_hu <= 48.0
            assert config.plaques
