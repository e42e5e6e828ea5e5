"""Tests of the blind cardiac phantom (:mod:`phantom.blind`).

Five studies are rendered once per module: a calcified study (twice, for determinism), its
noise-free and zero-calcium variants, and a heavy-distractor overlapping reconstruction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from dicom_io.writer import series_datasets
from phantom import BlindConfig, PhantomConfigError, blind_phantom, blind_suite
from phantom.blind import MAX_SLICES, MIN_SLICES
from phantom.study import Distractor, PhantomStudy, score_truth
from scoring import ARTERIES, Artery

CALCIFIED = BlindConfig(
    seed=7,
    burden=0.6,
    pixel_spacing_mm=0.45,
    noise_sd_hu=20.0,
    psf_fwhm_mm=1.0,
    fov_offset_mm=(0.0, 12.0),
)
HEAVY = BlindConfig(
    seed=5,
    heavy_distractors=True,
    slice_thickness_mm=2.5,
    increment_mm=1.5,
    noise_sd_hu=30.0,
    fov_offset_mm=(5.0, -10.0),
)


@pytest.fixture(scope="module")
def calcified() -> PhantomStudy:
    return blind_phantom(CALCIFIED)


@pytest.fixture(scope="module")
def clean() -> PhantomStudy:
    return blind_phantom(dataclasses.replace(CALCIFIED, noise_sd_hu=0.0))


@pytest.fixture(scope="module")
def zero() -> PhantomStudy:
    return blind_phantom(dataclasses.replace(CALCIFIED, zero_calcium=True))


@pytest.fixture(scope="module")
def heavy() -> PhantomStudy:
    return blind_phantom(HEAVY)


def _voxel(study: PhantomStudy, point_mm: list[float]) -> tuple[int, int, int]:
    geometry = study.volume.geometry
    x0, y0, _ = geometry.slice_positions_mm[0]
    px = geometry.pixel_spacing_mm[0]
    k = int(np.argmin(np.abs(geometry.slice_positions_mm[:, 2] - point_mm[2])))
    return k, round((point_mm[1] - y0) / px), round((point_mm[0] - x0) / px)


def _disc(study: PhantomStudy, point_mm: list[float], radius_mm: float, slices: int = 0) -> Any:
    """HU values in an in-plane disc around a point, on the nearest slice(s)."""
    k, j, i = _voxel(study, point_mm)
    n = round(radius_mm / study.volume.geometry.pixel_spacing_mm[0])
    yy, xx = np.ogrid[-n : n + 1, -n : n + 1]
    mask = yy**2 + xx**2 <= n * n
    block = study.volume.hu[k - slices : k + slices + 1, j - n : j + n + 1, i - n : i + n + 1]
    return block[:, mask].astype(np.float64)


def _hu(study: PhantomStudy, point_mm: list[float]) -> float:
    k, j, i = _voxel(study, point_mm)
    return float(study.volume.hu[k, j, i])


class TestBlindConfig:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("slice_thickness_mm", 5.0),
            ("increment_mm", 3.5),
            ("increment_mm", 0.5),
            ("pixel_spacing_mm", 0.7),
            ("noise_sd_hu", -1.0),
            ("psf_fwhm_mm", 2.0),
            ("heart_scale", 1.5),
            ("azimuth_deg", 80.0),
            ("elevation_deg", 5.0),
            ("roll_deg", 40.0),
            ("burden", 1.2),
            ("patient_size", -0.1),
            ("body_aspect", 2.5),
            ("heart_offset_mm", (0.0, 30.0, 0.0)),
            ("heart_offset_mm", (0.0, 1.0)),
            ("fov_offset_mm", (25.0, 0.0)),
            ("dominance", "balanced"),
            ("seed", -3),
            ("zero_calcium", "yes"),
        ],
    )
    def test_invalid_value_names_the_field(self, field: str, value: object) -> None:
        with pytest.raises(PhantomConfigError, match=field):
            BlindConfig(**{field: value})  # type: ignore[arg-type]

    def test_defaults_are_valid(self) -> None:
        cfg = BlindConfig()
        assert cfg.seed == 0
        assert cfg.slice_thickness_mm == 3.0


class TestBlindSuite:
    def test_spread(self) -> None:
        suite = blind_suite(60, 0)
        assert len(suite) == 60
        assert sum(c.zero_calcium for c in suite) == 9
        assert sum(c.heavy_distractors for c in suite) == 9
        assert not any(c.zero_calcium and c.heavy_distractors for c in suite)
        assert [c.slice_thickness_mm for c in suite[:4]] == [2.5, 3.0, 2.5, 3.0]
        for i, c in enumerate(suite):
            assert c.increment_mm is not None
            overlapping = c.increment_mm < c.slice_thickness_mm
            assert overlapping == (i % 3 == 2)
        burdens = sorted(
            c.burden or 0.0 for c in suite if not (c.zero_calcium or c.heavy_distractors)
        )
        assert burdens[0] < 0.05
        assert burdens[-1] > 0.95
        for name, low, high in (
            ("pixel_spacing_mm", 0.33, 0.5),
            ("noise_sd_hu", 10.0, 35.0),
            ("psf_fwhm_mm", 0.6, 1.5),
            ("heart_scale", 0.8, 1.25),
            ("azimuth_deg", 25.0, 65.0),
            ("elevation_deg", 15.0, 50.0),
            ("roll_deg", -25.0, 25.0),
        ):
            values = np.array([getattr(c, name) for c in suite], dtype=np.float64)
            span = high - low
            assert values.min() < low + 0.1 * span, name
            assert values.max() > high - 0.1 * span, name
            assert values.min() >= low, name
            assert values.max() <= high, name
        dominance = [c.dominance for c in suite]
        assert dominance.count("right") == 51
        assert dominance.count("left") == 6
        assert dominance.count("co") == 3
        assert len({c.seed for c in suite}) == 60
        assert all(
            c.fov_offset_mm is not None and c.fov_offset_mm[1] <= 0
            for c in suite
            if c.heavy_distractors
        )

    def test_deterministic(self) -> None:
        assert blind_suite(20, 4) == blind_suite(20, 4)
        assert blind_suite(20, 4) != blind_suite(20, 5)

    @pytest.mark.parametrize(("n", "seed"), [(0, 0), (5, -1)])
    def test_rejects_bad_arguments(self, n: int, seed: int) -> None:
        with pytest.raises(PhantomConfigError):
            blind_suite(n, seed)


class TestBlindPhantom:
    def test_deterministic(self, calcified: PhantomStudy) -> None:
        again = blind_phantom(CALCIFIED)
        np.testing.assert_array_equal(again.volume.hu, calcified.volume.hu)
        np.testing.assert_array_equal(again.plaque_labels, calcified.plaque_labels)
        np.testing.assert_array_equal(again.distractor_labels, calcified.distractor_labels)
        assert again.truth.to_json_dict() == calcified.truth.to_json_dict()
        assert again.volume.acquisition == calcified.volume.acquisition

    def test_volume_and_geometry(self, calcified: PhantomStudy, heavy: PhantomStudy) -> None:
        for study, cfg in ((calcified, CALCIFIED), (heavy, HEAVY)):
            hu = study.volume.hu
            assert hu.dtype == np.int16
            assert hu.shape[1:] == (512, 512)
            assert MIN_SLICES <= hu.shape[0] <= MAX_SLICES
            assert hu.min() >= -1024
            assert hu.max() <= 3071
            geometry = study.volume.geometry
            z = geometry.slice_positions_mm[:, 2]
            assert np.all(np.diff(z) > 0)
            assert geometry.slice_thickness_mm == cfg.slice_thickness_mm
            assert geometry.increment_mm == pytest.approx(
                cfg.increment_mm or cfg.slice_thickness_mm
            )
            assert geometry.row_direction == (1.0, 0.0, 0.0)
            assert geometry.column_direction == (0.0, 1.0, 0.0)
            assert study.plaque_labels.shape == hu.shape
            assert study.plaque_labels.dtype == np.uint8
            assert study.distractor_labels.dtype == np.uint8
            assert set(np.unique(study.plaque_labels)) <= {0, 1, 2, 3, 4}
            assert set(np.unique(study.distractor_labels)) <= {0, *(int(d) for d in Distractor)}
        assert calcified.volume.geometry.pixel_spacing_mm == (0.45, 0.45)
        assert heavy.volume.geometry.increment_mm < heavy.volume.geometry.slice_thickness_mm

    def test_truth_is_score_of_final_image(self, calcified: PhantomStudy) -> None:
        again = score_truth(
            calcified.volume, calcified.plaque_labels, calcified.truth.objects, by_artery=True
        )
        assert again.agatston == pytest.approx(calcified.truth.agatston)
        assert again.volume_mm3 == pytest.approx(calcified.truth.volume_mm3)
        assert again.mass_mg == pytest.approx(calcified.truth.mass_mg)
        for artery in ARTERIES:
            assert again.agatston_by_artery[artery] == pytest.approx(
                calcified.truth.agatston_by_artery[artery]
            )

    def test_calcified_truth_in_two_arteries(self, calcified: PhantomStudy) -> None:
        truth = calcified.truth
        assert truth.agatston > 0
        assert sum(1 for a in ARTERIES if truth.agatston_by_artery[a] > 0) >= 2
        for total, parts in (
            (truth.agatston, truth.agatston_by_artery),
            (truth.volume_mm3, truth.volume_mm3_by_artery),
            (truth.mass_mg, truth.mass_mg_by_artery),
        ):
            assert sum(parts[a] for a in ARTERIES) == pytest.approx(total)
        labelled = {Artery.from_code(int(c)) for c in np.unique(calcified.plaque_labels) if c}
        scored = {a for a in ARTERIES if truth.agatston_by_artery[a] > 0}
        assert scored <= labelled
        assert all(les.artery is not None for les in truth.lesions)

    def test_zero_calcium(self, zero: PhantomStudy, calcified: PhantomStudy) -> None:
        assert not zero.plaque_labels.any()
        assert zero.truth.agatston == 0.0
        assert zero.truth.volume_mm3 == 0.0
        assert zero.truth.mass_mg == 0.0
        assert zero.truth.lesion_count == 0
        assert not any(o.kind == "plaque" for o in zero.truth.objects)
        # same seed, same anatomy and noise: the images differ only around the plaques
        near = ndimage.binary_dilation(calcified.plaque_labels > 0, iterations=3)
        diff = np.abs(zero.volume.hu.astype(np.int32) - calcified.volume.hu.astype(np.int32))
        assert diff[~near].max() <= 15
        assert diff[near].max() > 100

    def test_labels_disjoint(self, calcified: PhantomStudy, heavy: PhantomStudy) -> None:
        for study in (calcified, heavy):
            assert not ((study.plaque_labels > 0) & (study.distractor_labels > 0)).any()

    def test_first_plaque_clearly_visible(self, calcified: PhantomStudy) -> None:
        assert calcified.volume.hu[calcified.plaque_labels == Artery.LAD.code].max() >= 300

    def test_heavy_has_every_distractor_kind(self, heavy: PhantomStudy) -> None:
        present = {int(c) for c in np.unique(heavy.distractor_labels)}
        assert present >= {int(d) for d in Distractor}
        kinds = {o.kind for o in heavy.truth.objects}
        assert kinds >= {d.name.lower() for d in Distractor}
        # little coronary calcium
        assert heavy.truth.agatston < 100

    def test_metal_stays_metallic(self, heavy: PhantomStudy) -> None:
        components, count = ndimage.label(heavy.distractor_labels == Distractor.METAL)
        assert count >= 2
        peaks = ndimage.maximum(heavy.volume.hu, components, index=np.arange(1, count + 1))
        assert np.min(peaks) > 2000

    @pytest.mark.parametrize(("name", "sd"), [("calcified", 20.0), ("heavy", 30.0)])
    def test_noise_sd_in_blood_pool(
        self, name: str, sd: float, request: pytest.FixtureRequest
    ) -> None:
        study: PhantomStudy = request.getfixturevalue(name)
        roi = _disc(study, study.truth.extra["landmarks"]["lv_cavity"], 7.0, slices=1)
        assert float(roi.std()) == pytest.approx(sd, rel=0.2)
        assert 20.0 < float(roi.mean()) < 65.0

    def test_anatomy(self, clean: PhantomStudy) -> None:
        marks = clean.truth.extra["landmarks"]
        assert set(marks) >= {
            "lv_cavity",
            "left_atrium",
            "ascending_aorta",
            "descending_aorta",
            "spine",
            "sternum",
            "left_lung",
            "right_lung",
        }
        for lung in ("left_lung", "right_lung"):
            assert float(np.median(_disc(clean, marks[lung], 3.0))) < -700
        for blood in ("lv_cavity", "left_atrium", "ascending_aorta", "descending_aorta"):
            assert 25.0 < float(_disc(clean, marks[blood], 4.0).mean()) < 60.0, blood
        spine = _disc(clean, marks["spine"], 12.0)
        assert spine.max() > 250
        assert clean.distractor_labels[_voxel(clean, marks["spine"])] == Distractor.BONE
        assert clean.distractor_labels[_voxel(clean, marks["sternum"])] == Distractor.BONE
        lv, la = marks["lv_cavity"], marks["left_atrium"]
        asc, desc, spine_c = marks["ascending_aorta"], marks["descending_aorta"], marks["spine"]
        assert marks["left_lung"][0] > lv[0] > marks["right_lung"][0]
        assert desc[0] > spine_c[0]  # descending aorta left of the spine
        assert desc[1] > la[1] > lv[1]  # behind the left atrium, which is behind the LV
        assert asc[0] < desc[0]  # the ascending aorta is right of the descending one
        assert asc[1] < desc[1]  # and in front of it
        assert marks["sternum"][1] < lv[1] < spine_c[1]

    def test_plaques_in_epicardial_fat_beside_a_lumen(self, clean: PhantomStudy) -> None:
        probes = clean.truth.extra["plaques"]
        plaques = [o for o in clean.truth.objects if o.kind == "plaque"]
        assert len(probes) == len(plaques) > 3
        for probe in probes:
            assert probe["lumen_mm"] is not None, probe
            fat = _hu(clean, probe["fat_mm"])
            lumen = _hu(clean, probe["lumen_mm"])
            assert -200.0 < fat < -30.0, probe
            assert lumen > fat + 25.0, probe
            assert lumen < 130.0, probe

    def test_writable_as_dicom(self, zero: PhantomStudy) -> None:
        datasets = series_datasets(zero.volume)
        assert len(datasets) == zero.volume.shape[0]
        k = len(datasets) // 2
        ds = datasets[k]
        pixels: npt.NDArray[Any] = ds.pixel_array * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept
        )
        np.testing.assert_array_equal(pixels, zero.volume.hu[k])
