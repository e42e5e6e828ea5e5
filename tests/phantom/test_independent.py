"""The independent chest phantom: deterministic, truthful, anatomically sane, in range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phantom.errors import PhantomConfigError
from phantom.independent import (
    FOV_RANGE_MM,
    IndependentConfig,
    IndependentModel,
    independent_model,
    independent_phantom,
    independent_suite,
    render_independent,
)
from phantom.study import Distractor, PhantomStudy, score_truth
from scoring import ARTERIES, Artery

#: A study with several plaques in more than one artery (checked in TestTruth).
SEED = 6


@pytest.fixture(scope="module")
def model() -> IndependentModel:
    return independent_model(SEED)


@pytest.fixture(scope="module")
def study() -> PhantomStudy:
    return independent_phantom(SEED)


@pytest.fixture(scope="module")
def clean(model: IndependentModel) -> PhantomStudy:
    """The same study without noise, for anatomy checks."""
    return render_independent(model, noise=False)


def _voxel(study: PhantomStudy, point: tuple[float, float, float]) -> tuple[int, int, int]:
    geometry = study.volume.geometry
    origin = geometry.slice_positions_mm[0]
    spacing = geometry.pixel_spacing_mm[0]
    k = int(np.argmin(np.abs(geometry.slice_positions_mm[:, 2] - point[2])))
    return (
        k,
        round((point[1] - origin[1]) / spacing),
        round((point[0] - origin[0]) / spacing),
    )


class TestDeterminism:
    def test_same_seed_same_study(self, study: PhantomStudy) -> None:
        again = independent_phantom(SEED)
        np.testing.assert_array_equal(again.volume.hu, study.volume.hu)
        np.testing.assert_array_equal(again.plaque_labels, study.plaque_labels)
        np.testing.assert_array_equal(again.distractor_labels, study.distractor_labels)
        assert again.truth.agatston == study.truth.agatston

    def test_config_regenerates(self, study: PhantomStudy) -> None:
        assert study.config == IndependentConfig(SEED, zero_calcium=False, heavy_distractors=False)

    def test_other_seed_differs(self, model: IndependentModel) -> None:
        other = independent_model(SEED + 1)
        assert other.landmarks["apex"] != model.landmarks["apex"]

    def test_invalid_requests(self) -> None:
        with pytest.raises(PhantomConfigError, match="seed"):
            independent_model(-1)
        with pytest.raises(PhantomConfigError, match="not both"):
            independent_model(1, zero_calcium=True, heavy_distractors=True)


class TestTruth:
    def test_calcified_study_has_truth(self, study: PhantomStudy) -> None:
        plaques = [o for o in study.truth.objects if o.kind == "plaque"]
        assert len(plaques) >= 3
        assert study.plaque_labels.any()
        assert study.truth.agatston > 0
        assert sum(v > 0 for v in study.truth.agatston_by_artery.values()) >= 2

    def test_per_artery_parts_add_up(self, study: PhantomStudy) -> None:
        truth = study.truth
        assert math.isclose(sum(truth.agatston_by_artery.values()), truth.agatston, rel_tol=1e-9)
        assert math.isclose(
            sum(truth.volume_mm3_by_artery.values()), truth.volume_mm3, rel_tol=1e-9
        )
        assert math.isclose(sum(truth.mass_mg_by_artery.values()), truth.mass_mg, rel_tol=1e-9)
        assert {les.artery for les in truth.lesions} <= set(ARTERIES)

    def test_truth_is_the_score_of_the_final_image(self, study: PhantomStudy) -> None:
        again = score_truth(study.volume, study.plaque_labels, study.truth.objects, by_artery=True)
        assert again.agatston == study.truth.agatston
        assert dict(again.agatston_by_artery) == dict(study.truth.agatston_by_artery)

    def test_label_codes(self, study: PhantomStudy) -> None:
        assert set(np.unique(study.plaque_labels)) <= {0, *(a.code for a in Artery)}
        assert set(np.unique(study.distractor_labels)) <= {0, *(int(d) for d in Distractor)}
        assert not (study.plaque_labels.astype(bool) & study.distractor_labels.astype(bool)).any()

    def test_zero_calcium(self) -> None:
        zero = independent_phantom(SEED, zero_calcium=True)
        assert zero.truth.agatston == 0
        assert zero.truth.lesion_count == 0
        assert not zero.plaque_labels.any()
        assert not [o for o in zero.truth.objects if o.kind == "plaque"]

    def test_heavy_distractors(self) -> None:
        heavy = independent_model(SEED, heavy_distractors=True)
        kinds = [p.record.kind for p in heavy.objects]
        assert kinds.count("plaque") <= 2
        assert kinds.count("aortic_wall") >= 4
        assert "metal" in kinds
        assert len(kinds) - kinds.count("plaque") >= 10


class TestAnatomy:
    def test_lungs_are_air(self, clean: PhantomStudy) -> None:
        hu = clean.volume.hu
        middle = hu[hu.shape[0] // 2]
        lung_like = (middle > -900) & (middle < -800)
        assert lung_like.mean() > 0.15

    def test_order_front_to_back(self, model: IndependentModel) -> None:
        y = {name: p[1] for name, p in model.landmarks.items()}
        assert y["sternum"] < y["heart_center"] < y["descending_aorta"] <= y["vertebral_body"]
        assert model.landmarks["apex"][0] > model.landmarks["vertebral_body"][0]
        assert model.landmarks["apex"][1] < model.landmarks["aortic_valve"][1]
        assert model.landmarks["apex"][2] < model.landmarks["aortic_valve"][2]

    def test_spine_is_bone(self, clean: PhantomStudy, model: IndependentModel) -> None:
        k, r, c = _voxel(clean, model.landmarks["vertebral_body"])
        assert r > _voxel(clean, model.landmarks["heart_center"])[1]
        assert 0 <= r < 512
        assert clean.volume.hu[k, r, c] >= 120
        assert clean.distractor_labels[k, r, c] == int(Distractor.BONE)
        bone = clean.distractor_labels == int(Distractor.BONE)
        assert clean.volume.hu[bone].max() >= 300

    def test_plaques_lie_in_fat_near_the_heart(
        self, clean: PhantomStudy, model: IndependentModel
    ) -> None:
        hu = clean.volume.hu
        heart = np.asarray(model.landmarks["heart_center"])
        spacing = clean.volume.geometry.pixel_spacing_mm[0]
        reach = round(5.0 / spacing)
        yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
        ring = (yy**2 + xx**2 >= (3.0 / spacing) ** 2) & (yy**2 + xx**2 <= reach**2)
        plaques = [o for o in clean.truth.objects if o.kind == "plaque"]
        assert plaques
        for plaque in plaques:
            assert np.linalg.norm(np.asarray(plaque.center_mm) - heart) < 110.0
            k, r, c = _voxel(clean, plaque.center_mm)
            around = hu[k, r - reach : r + reach + 1, c - reach : c + reach + 1][ring]
            fat = (around > -150) & (around < -50)
            assert fat.mean() > 0.1, plaque
            assert (around < -500).mean() < 0.5, plaque


class TestRanges:
    @pytest.mark.parametrize("seed", range(0, 40, 3))
    def test_scan_in_range(self, seed: int) -> None:
        m = independent_model(seed)
        assert 0.33 <= m.pixel_mm <= 0.5
        assert FOV_RANGE_MM[0] <= 512 * m.pixel_mm <= FOV_RANGE_MM[1] + 1e-9
        assert m.thickness_mm in (2.5, 3.0)
        assert m.increment_mm in (m.thickness_mm, m.thickness_mm - 0.5)
        assert 40 <= m.slice_z_mm.size <= 70
        assert np.all(np.diff(m.slice_z_mm) > 0)
        assert m.slice_z_mm[0] < m.landmarks["apex"][2]
        assert m.slice_z_mm[-1] > m.landmarks["left_ostium"][2]
        assert 10.0 <= m.noise_sd_hu <= 35.0
        assert 0.6 <= m.blur_sigma_mm <= 0.8
        centre = np.asarray(m.landmarks["heart_center"][:2])
        fov_centre = np.asarray(m.origin_xy_mm) + 255.5 * m.pixel_mm
        assert np.linalg.norm(fov_centre - centre) < 60.0
        assert abs(fov_centre[0] - m.landmarks["vertebral_body"][0]) > 0.0

    def test_volume_geometry(
        self, study: PhantomStudy, clean: PhantomStudy, model: IndependentModel
    ) -> None:
        volume = study.volume
        assert volume.hu.dtype == np.int16
        assert volume.shape == (model.slice_z_mm.size, 512, 512)
        assert volume.geometry.pixel_spacing_mm == (model.pixel_mm, model.pixel_mm)
        assert volume.geometry.slice_thickness_mm == model.thickness_mm
        np.testing.assert_allclose(volume.geometry.slice_positions_mm[:, 2], model.slice_z_mm)
        noise = volume.hu.astype(np.float64) - clean.volume.hu
        assert noise.std() == pytest.approx(model.noise_sd_hu, rel=0.1)


class TestSuite:
    def test_spread(self) -> None:
        suite = independent_suite(20, seed=0)
        assert len(suite) == 20
        assert len({c.seed for c in suite}) == 20
        assert sum(c.zero_calcium for c in suite) == 3
        assert sum(c.heavy_distractors for c in suite) == 3
        assert not any(c.zero_calcium and c.heavy_distractors for c in suite)

    def test_deterministic(self) -> None:
        assert independent_suite(10, seed=2) == independent_suite(10, seed=2)
        assert independent_suite(10, seed=2) != independent_suite(10, seed=3)

    def test_too_small(self) -> None:
        with pytest.raises(PhantomConfigError, match="at least 3"):
            independent_suite(2, seed=0)
