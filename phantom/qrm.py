"""A QRM-like cardiac calcification insert phantom with known calcium.

Nine calcium hydroxyapatite (HA) cylinders whose diameter equals their length, 1, 3 and 5 mm, at
200, 400 and 800 mg HA/cm^3, in a 100 mm cylindrical insert centred in a water-equivalent
300 x 200 mm body, plus two 20 mm calibration rods (water and 200 mg HA/cm^3) running along the
insert (QRM cardiac calcification insert, clinical.md section 11). Arrays are ``(z, y, x)`` in
LPS patient coordinates; the cylinders' axes are along z, as when the insert lies on the table.

Density to HU
-------------
The simulated scanner is linear in HA density with water at 0 HU:
``HU = density / c_HA``, with ``c_HA`` (mg HA/cm^3 per HU) in the 0.75-0.93 range real scanners
give; 0.8 by default, so 200, 400 and 800 mg/cm^3 read 250, 500 and 1000 HU. This is the
calibration relation of McCollough CH et al., Radiology 2007;243:527-538
(``c_HA = 200 mg/cm^3 / (HU of the 200 mg rod - HU of water)``, clinical.md section 2), run
backwards. The same ``c_HA`` is written as (0018,9351) Calcium Scoring Mass Factor Patient, so
the mass score of a large, well-resolved insert equals its geometric mass.

The truth is the standard score of the final image restricted to the nine inserts' regions
(grown by the blur reach and the slice profile), with no artery (``roi="whole"``). The 200 mg
calibration rod is above 130 HU as well: a whole-volume score also counts it, so the truth's
``whole_volume`` record gives that score for comparison with ``cac score --roi whole``.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from phantom.errors import PhantomConfigError
from phantom.render import (
    Blob,
    Grid,
    blur_in_plane,
    composite_blob,
    correlated_noise,
    sigma_from_fwhm,
)
from phantom.study import PhantomStudy, TruthObject, score_truth
from scoring import AcquisitionInfo, CTVolume, VolumeGeometry, score_volume

#: Insert diameters (= lengths), mm, and HA densities, mg/cm^3 (clinical.md section 11).
INSERT_DIAMETERS_MM = (1.0, 3.0, 5.0)
INSERT_DENSITIES_MG_CM3 = (200.0, 400.0, 800.0)
#: Calibration rods: 20 mm diameter, water and 200 mg HA/cm^3 (clinical.md section 11).
ROD_DIAMETER_MM = 20.0
ROD_DENSITIES_MG_CM3 = (0.0, 200.0)

_BODY_AXES_MM = (150.0, 100.0)
_INSERT_RADIUS_MM = 50.0
_WATER_HU = 0.0
_AIR_HU = -1000.0
#: Where each size sits along its density group's radius, mm from the centre.
_SIZE_RADIUS_MM = {1.0: 15.0, 3.0: 26.0, 5.0: 38.0}
#: Angle of each density group around the insert, degrees (x towards patient's left).
_GROUP_ANGLE_DEG = {200.0: 90.0, 400.0: 210.0, 800.0: 330.0}
_ROD_ANGLE_DEG = {0.0: 270.0, 200.0: 150.0}
_ROD_RADIUS_MM = 30.0


@dataclass(frozen=True, slots=True)
class QRMPhantomConfig:
    """Settings of the insert phantom study; the defaults are a standard 3 mm calcium scan."""

    seed: int = 0
    matrix_size: int = 512
    pixel_spacing_mm: float = 0.4
    slice_thickness_mm: float = 3.0
    increment_mm: float = 3.0
    noise_sd_hu: float = 20.0
    psf_fwhm_mm: float = 1.1
    kvp: float = 120.0
    mass_factor_mg_per_cm3_hu: float = 0.8
    """c_HA of the simulated scanner (real scanners 0.75-0.93, McCollough 2007)."""
    scan_length_mm: float = 60.0
    table_z_mm: float = -100.0
    calibration_rods: bool = True

    def __post_init__(self) -> None:
        if not 64 <= self.matrix_size <= 1024:
            raise PhantomConfigError(f"matrix_size must be 64-1024, got {self.matrix_size}")
        fov = self.matrix_size * self.pixel_spacing_mm
        if not 0.25 <= self.pixel_spacing_mm <= 1.0 or fov < 2 * _INSERT_RADIUS_MM + 10:
            raise PhantomConfigError(
                "pixel_spacing_mm must be 0.25-1.0 mm and the field of view (matrix x spacing) "
                f"at least {2 * _INSERT_RADIUS_MM + 10:.0f} mm, got {self.pixel_spacing_mm} mm "
                f"x {self.matrix_size}"
            )
        if not 0.5 <= self.slice_thickness_mm <= 5.0:
            raise PhantomConfigError(
                f"slice_thickness_mm must be 0.5-5 mm, got {self.slice_thickness_mm}"
            )
        if not 0.2 * self.slice_thickness_mm <= self.increment_mm <= self.slice_thickness_mm:
            raise PhantomConfigError(
                "increment_mm must be between 0.2 x and 1 x the slice thickness, got "
                f"{self.increment_mm}"
            )
        if not 0.0 <= self.noise_sd_hu <= 200.0:
            raise PhantomConfigError(f"noise_sd_hu must be 0-200 HU, got {self.noise_sd_hu}")
        if not 0.3 <= self.psf_fwhm_mm <= 3.0:
            raise PhantomConfigError(f"psf_fwhm_mm must be 0.3-3 mm, got {self.psf_fwhm_mm}")
        if not 0.3 <= self.mass_factor_mg_per_cm3_hu <= 3.0:
            raise PhantomConfigError(
                "mass_factor_mg_per_cm3_hu must be 0.3-3 (real scanners 0.75-0.93), got "
                f"{self.mass_factor_mg_per_cm3_hu}"
            )
        if not 20.0 <= self.scan_length_mm <= 200.0:
            raise PhantomConfigError(f"scan_length_mm must be 20-200 mm, got {self.scan_length_mm}")

    def hu_of_density(self, density_mg_cm3: float) -> float:
        """Attenuation of HA at a density: density / c_HA, water at 0 HU (McCollough 2007)."""
        return _WATER_HU + density_mg_cm3 / self.mass_factor_mg_per_cm3_hu


@dataclass(frozen=True, slots=True)
class InsertSpec:
    """One calcification insert: its name, size, density and centre (patient mm)."""

    name: str
    diameter_mm: float
    density_mg_cm3: float
    center_mm: tuple[float, float, float]

    @property
    def geometric_volume_mm3(self) -> float:
        """Cylinder volume, diameter = length."""
        r = self.diameter_mm / 2.0
        return math.pi * r * r * self.diameter_mm

    @property
    def geometric_mass_mg(self) -> float:
        """HA mass: density (mg/cm^3) x volume (mm^3) / 1000."""
        return self.density_mg_cm3 * self.geometric_volume_mm3 / 1000.0


def qrm_inserts(table_z_mm: float = -100.0) -> tuple[InsertSpec, ...]:
    """The nine calcification inserts, ordered by density then size."""
    out = []
    for density in INSERT_DENSITIES_MG_CM3:
        ang = math.radians(_GROUP_ANGLE_DEG[density])
        for diameter in INSERT_DIAMETERS_MM:
            r = _SIZE_RADIUS_MM[diameter]
            out.append(
                InsertSpec(
                    name=f"HA{density:.0f}-{diameter:.0f}mm",
                    diameter_mm=diameter,
                    density_mg_cm3=density,
                    center_mm=(r * math.cos(ang), r * math.sin(ang), table_z_mm),
                )
            )
    return tuple(out)


_Z_AXIS = ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def qrm_phantom(config: QRMPhantomConfig | None = None) -> PhantomStudy:
    """Render the QRM-like insert phantom study with its truth.

    Parameters
    ----------
    config
        Scan settings; the defaults when omitted. Identical configs give identical arrays.

    Returns
    -------
    PhantomStudy
        ``int16`` volume ``(z, y, x)``; ``insert_labels`` marks the nine inserts' grown regions
        (1-9, in ``truth.objects`` order); ``plaque_labels`` and ``distractor_labels`` are empty.
    """
    cfg = config if config is not None else QRMPhantomConfig()
    n = cfg.matrix_size
    px = cfg.pixel_spacing_mm
    n_slices = math.ceil(cfg.scan_length_mm / cfg.increment_mm) + 1
    z_mm = cfg.table_z_mm + cfg.increment_mm * (
        np.arange(n_slices, dtype=np.float64) - (n_slices - 1) / 2.0
    )
    coords = (np.arange(n, dtype=np.float64) - (n - 1) / 2.0) * px
    grid = Grid(
        x_mm=coords, y_mm=coords.copy(), z_mm=z_mm, pixel_mm=px, thickness_mm=cfg.slice_thickness_mm
    )
    xx, yy = np.meshgrid(grid.x_mm, grid.y_mm)
    body = (xx / _BODY_AXES_MM[0]) ** 2 + (yy / _BODY_AXES_MM[1]) ** 2 <= 1.0
    plane = np.where(body, _WATER_HU, _AIR_HU).astype(np.float32)
    hu = np.repeat(plane[None, :, :], n_slices, axis=0)

    objects: list[TruthObject] = []
    rods: list[tuple[float, Blob]] = []
    if cfg.calibration_rods:
        half_length = (z_mm[-1] - z_mm[0]) / 2.0 + 2.0 * cfg.slice_thickness_mm
        for density in ROD_DENSITIES_MG_CM3:
            ang = math.radians(_ROD_ANGLE_DEG[density])
            rod = Blob(
                center_mm=(
                    _ROD_RADIUS_MM * math.cos(ang),
                    _ROD_RADIUS_MM * math.sin(ang),
                    cfg.table_z_mm,
                ),
                axes=_Z_AXIS,
                radii_mm=(half_length, ROD_DIAMETER_MM / 2.0, ROD_DIAMETER_MM / 2.0),
                value_hu=cfg.hu_of_density(density),
                cylinder=True,
            )
            _paint_rod(hu, rod, grid)
            rods.append((density, rod))
    spread = 3.0 * sigma_from_fwhm(cfg.psf_fwhm_mm) + px
    insert_labels = np.zeros(hu.shape, dtype=np.uint8)
    for index, spec in enumerate(qrm_inserts(cfg.table_z_mm), start=1):
        r = spec.diameter_mm / 2.0
        blob = Blob(
            center_mm=spec.center_mm,
            axes=_Z_AXIS,
            radii_mm=(r, r, r),
            value_hu=cfg.hu_of_density(spec.density_mg_cm3),
            cylinder=True,
        )
        composite_blob(hu, blob, grid, insert_labels, index, spread)
        objects.append(
            TruthObject(
                kind="insert",
                label=spec.name,
                center_mm=spec.center_mm,
                radii_mm=(r, r, r),
                density_hu=blob.value_hu,
                geometric_volume_mm3=spec.geometric_volume_mm3,
                density_mg_ha_cm3=spec.density_mg_cm3,
            )
        )
    blur_in_plane(hu, cfg.psf_fwhm_mm, px)
    if cfg.noise_sd_hu > 0:
        z_sigma = 0.6 * (cfg.slice_thickness_mm / cfg.increment_mm - 1.0)
        hu += correlated_noise(
            hu.shape,
            cfg.noise_sd_hu,
            cfg.psf_fwhm_mm,
            px,
            z_sigma,
            np.random.default_rng([cfg.seed, 16]),
        )
    volume_hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)

    positions = np.stack(
        [np.full(n_slices, grid.x_mm[0]), np.full(n_slices, grid.y_mm[0]), z_mm], axis=1
    )
    geometry = VolumeGeometry(
        pixel_spacing_mm=(px, px),
        row_direction=(1.0, 0.0, 0.0),
        column_direction=(0.0, 1.0, 0.0),
        slice_positions_mm=positions,
        slice_thickness_mm=cfg.slice_thickness_mm,
        increment_mm=cfg.increment_mm,
    )
    volume = CTVolume(hu=volume_hu, geometry=geometry, acquisition=_acquisition(cfg))
    extra: dict[str, Any] = {"calibration": _calibration(cfg, volume, rods, grid)}
    whole = score_volume(volume)
    extra["whole_volume"] = {
        "note": "every candidate in the volume, calibration rod included (cac score --roi whole)",
        "agatston": round(whole.agatston, 3),
        "volume_mm3": round(whole.volume_mm3, 3),
        "mass_mg": round(whole.mass_mg, 4),
        "lesion_count": whole.lesion_count,
    }
    extra["inserts"] = [
        {
            "name": spec.name,
            "diameter_mm": spec.diameter_mm,
            "density_mg_ha_cm3": spec.density_mg_cm3,
            "geometric_volume_mm3": round(spec.geometric_volume_mm3, 3),
            "geometric_mass_mg": round(spec.geometric_mass_mg, 4),
            "center_mm": [round(v, 3) for v in spec.center_mm],
        }
        for spec in qrm_inserts(cfg.table_z_mm)
    ]
    truth = score_truth(volume, insert_labels, tuple(objects), by_artery=False)
    truth = replace(truth, extra=extra)
    empty = np.zeros(hu.shape, dtype=np.uint8)
    return PhantomStudy(
        volume=volume,
        plaque_labels=empty,
        distractor_labels=empty.copy(),
        truth=truth,
        config=cfg,
        insert_labels=insert_labels,
    )


def _paint_rod(hu: npt.NDArray[np.float32], rod: Blob, grid: Grid, supersample: int = 3) -> None:
    """Paint a rod running through every slice: its cross-section is the same in each, so the
    partial-volume fraction is computed once in-plane (``supersample`` x ``supersample``)."""
    cx, cy, _ = rod.center_mm
    r = rod.radii_mm[1]
    px = grid.pixel_mm
    ix0, ix1 = np.searchsorted(grid.x_mm, [cx - r - px, cx + r + px])
    iy0, iy1 = np.searchsorted(grid.y_mm, [cy - r - px, cy + r + px])
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    xs = (grid.x_mm[ix0:ix1, None] + sub[None, :] * px).ravel() - cx
    ys = (grid.y_mm[iy0:iy1, None] + sub[None, :] * px).ravel() - cy
    inside = (ys[:, None] ** 2 + xs[None, :] ** 2 <= r * r).astype(np.float32)
    frac = inside.reshape(iy1 - iy0, supersample, ix1 - ix0, supersample).mean(axis=(1, 3))
    block = hu[:, iy0:iy1, ix0:ix1]
    block += frac[None, :, :] * (np.float32(rod.value_hu) - block)


def _calibration(
    cfg: QRMPhantomConfig, volume: CTVolume, rods: list[tuple[float, Blob]], grid: Grid
) -> dict[str, Any]:
    """Mean HU of each rod over its central area and slices, and the c_HA it implies
    (McCollough 2007: 200 mg/cm^3 / (HU of the 200 mg rod - HU of water))."""
    record: dict[str, Any] = {
        "simulated_mass_factor_mg_per_cm3_hu": cfg.mass_factor_mg_per_cm3_hu,
        "hu_of_density": "HU = density (mg HA/cm^3) / c_HA, water 0 HU (McCollough 2007)",
    }
    if not rods:
        return record
    xx, yy = np.meshgrid(grid.x_mm, grid.y_mm)
    means: dict[float, float] = {}
    for density, rod in rods:
        cx, cy, _ = rod.center_mm
        core = (xx - cx) ** 2 + (yy - cy) ** 2 <= (0.6 * ROD_DIAMETER_MM / 2.0) ** 2
        means[density] = float(volume.hu[:, core].mean())
    record["rod_mean_hu"] = {f"{d:.0f}": round(v, 2) for d, v in means.items()}
    if 0.0 in means and 200.0 in means and means[200.0] > means[0.0]:
        record["measured_mass_factor_mg_per_cm3_hu"] = round(200.0 / (means[200.0] - means[0.0]), 4)
    return record


def _acquisition(cfg: QRMPhantomConfig) -> AcquisitionInfo:
    def uid(what: str) -> str:
        return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'cac-fhir/qrm/{cfg!r}/{what}').int}"

    return AcquisitionInfo(
        kvp=cfg.kvp,
        reconstruction_kernel="PHANTOM_GAUSSIAN",
        mass_factor_patient=cfg.mass_factor_mg_per_cm3_hu,
        manufacturer="cac-fhir",
        model="QRM-like insert phantom",
        study_instance_uid=uid("study"),
        series_instance_uid=uid("series"),
        series_description=(
            f"CaSc {cfg.slice_thickness_mm:g}/{cfg.increment_mm:g}mm QRM-like phantom "
            f"seed {cfg.seed}"
        )[:64],
        acquisition_datetime=datetime(2026, 1, 5, 7, 0, 0),
        patient_position="HFS",
    )


__all__ = ["InsertSpec", "QRMPhantomConfig", "qrm_inserts", "qrm_phantom"]
