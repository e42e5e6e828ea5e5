"""The QRM-like insert phantom: insert geometry, density-to-HU calibration and truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phantom.errors import PhantomConfigError
from phantom.qrm import QRMPhantomConfig, qrm_inserts, qrm_phantom
from phantom.study import PhantomStudy


@pytest.fixture(scope="module")
def study() -> PhantomStudy:
    return qrm_phantom(QRMPhantomConfig(matrix_size=320, pixel_spacing_mm=0.4))


@pytest.fixture(scope="module")
def noiseless() -> PhantomStudy:
    return qrm_phantom(QRMPhantomConfig(matrix_size=320, pixel_spacing_mm=0.4, noise_sd_hu=0.0))


class TestInserts:
    def test_nine_inserts_of_known_size(self) -> None:
        inserts = qrm_inserts()
        assert len(inserts) == 9
        assert {(i.diameter_mm, i.density_mg_cm3) for i in inserts} == {
            (d, rho) for d in (1.0, 3.0, 5.0) for rho in (200.0, 400.0, 800.0)
        }
        # Diameter = length: volume pi r^2 d; masses 0.16-78.5 mg (clinical.md section 11).
        masses = sorted(i.geometric_mass_mg for i in inserts)
        assert masses[0] == pytest.approx(0.157, abs=1e-3)
        assert masses[-1] == pytest.approx(78.54, abs=1e-2)
        five = next(i for i in inserts if i.diameter_mm == 5.0)
        assert five.geometric_volume_mm3 == pytest.approx(math.pi * 2.5**2 * 5.0)

    def test_regions_centred_on_the_inserts(self, study: PhantomStudy) -> None:
        labels = study.insert_labels
        assert labels is not None
        g = study.volume.geometry
        x0, y0 = g.slice_positions_mm[0, :2]
        for index, spec in enumerate(qrm_inserts(), start=1):
            zs, ys, xs = np.nonzero(labels == index)
            assert zs.size > 0, spec.name
            cx = x0 + xs.mean() * g.pixel_spacing_mm[1]
            cy = y0 + ys.mean() * g.pixel_spacing_mm[0]
            assert (cx, cy) == pytest.approx(spec.center_mm[:2], abs=0.3)
            assert g.slice_positions_mm[zs, 2].mean() == pytest.approx(spec.center_mm[2], abs=1.6)

    def test_every_insert_labelled(self, study: PhantomStudy) -> None:
        labels = study.insert_labels
        assert labels is not None
        assert set(np.unique(labels)) == set(range(10))


class TestCalibration:
    def test_hu_of_density(self) -> None:
        config = QRMPhantomConfig(mass_factor_mg_per_cm3_hu=0.8)
        assert config.hu_of_density(200.0) == pytest.approx(250.0)
        assert config.hu_of_density(800.0) == pytest.approx(1000.0)

    def test_rods_give_back_the_mass_factor(self, study: PhantomStudy) -> None:
        record = study.truth.extra["calibration"]
        assert record["measured_mass_factor_mg_per_cm3_hu"] == pytest.approx(0.8, rel=0.03)
        assert study.volume.acquisition.mass_factor_patient == 0.8

    def test_large_dense_insert_keeps_its_hu_and_mass(self, noiseless: PhantomStudy) -> None:
        spec = next(i for i in qrm_inserts() if i.name == "HA800-5mm")
        lesion = min(
            noiseless.truth.lesions,
            key=lambda les: math.dist(les.centroid_mm[:2], spec.center_mm[:2]),
        )
        assert 700.0 < lesion.peak_hu <= 1000.0
        assert lesion.mass_mg == pytest.approx(spec.geometric_mass_mg, rel=0.15)


class TestTruth:
    def test_scored_without_artery(self, study: PhantomStudy) -> None:
        truth = study.truth
        assert truth.roi == "whole"
        assert truth.agatston > 0
        assert all(les.artery is None for les in truth.lesions)
        assert not study.plaque_labels.any()
        # The 5 mm inserts are found at every density; 1 mm ones vanish in 3 mm slices.
        assert 3 <= truth.lesion_count <= 9

    def test_whole_volume_counts_the_calibration_rod(self, study: PhantomStudy) -> None:
        whole = study.truth.extra["whole_volume"]
        assert whole["agatston"] > study.truth.agatston
        rodless = qrm_phantom(
            QRMPhantomConfig(matrix_size=320, pixel_spacing_mm=0.4, calibration_rods=False)
        )
        assert rodless.truth.extra["whole_volume"]["agatston"] == pytest.approx(
            rodless.truth.agatston, abs=0.01
        )

    def test_deterministic(self) -> None:
        config = QRMPhantomConfig(matrix_size=288, pixel_spacing_mm=0.5, seed=4)
        a, b = qrm_phantom(config), qrm_phantom(config)
        assert np.array_equal(a.volume.hu, b.volume.hu)
        assert a.truth == b.truth


class TestConfig:
    def test_rejects_a_field_of_view_smaller_than_the_insert(self) -> None:
        with pytest.raises(PhantomConfigError, match="field of view"):
            QRMPhantomConfig(matrix_size=128, pixel_spacing_mm=0.4)

    def test_rejects_increment_over_thickness(self) -> None:
        with pytest.raises(PhantomConfigError, match="increment_mm"):
            QRMPhantomConfig(increment_mm=4.0)
