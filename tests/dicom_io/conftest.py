"""Small CT volumes with known voxels for the DICOM edge tests."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from scoring.volume import AcquisitionInfo, CTVolume, axial_geometry


def make_volume(
    n_slices: int = 5,
    rows: int = 40,
    columns: int = 36,
    *,
    seed: int = 0,
    low_hu: int = -1024,
    high_hu: int = 3000,
) -> CTVolume:
    """A random int16 volume (values known by construction) on a plain axial grid, with a full
    set of acquisition details."""
    rng = np.random.default_rng(seed)
    hu = rng.integers(low_hu, high_hu, size=(n_slices, rows, columns)).astype(np.int16)
    geometry = axial_geometry(
        n_slices, (0.4, 0.5), increment_mm=3.0, slice_thickness_mm=3.0, origin_mm=(-50, -60, -100)
    )
    acquisition = AcquisitionInfo(
        kvp=120.0,
        reconstruction_kernel="Qr36\\3",
        mass_factor_patient=0.75,
        mass_factor_device=(0.5, 0.75, 1.0),
        manufacturer="Phantom Works",
        model="PW-1",
        acquisition_datetime=datetime(2026, 11, 2, 8, 30, 15),
        patient_position="HFS",
    )
    return CTVolume(hu=hu, geometry=geometry, acquisition=acquisition)


@pytest.fixture
def volume() -> CTVolume:
    return make_volume()
