"""An anthropomorphic, non-contrast, ECG-gated cardiac CT phantom with known calcium truth.

``chest_phantom(config)`` renders one study from a :class:`ChestPhantomConfig`; the same config
always gives the same arrays (every random draw comes from ``config.seed``). Pure numpy/scipy,
no file I/O. Arrays are ``(z, y, x)`` in LPS patient coordinates: +x = patient's left,
+y = posterior, +z = head; slices ascend in z.

What is drawn
-------------
Body ellipse (subcutaneous fat, muscle), lungs, a mediastinal fat band, the diaphragm domes
(liver on the right), the heart as a rotated ellipsoid (blood and myocardium alike, no contrast)
in its epicardial fat, the pulmonary trunk, the aortic root with the ascending aorta rising from
it (right-anterior) and the descending aorta beside the spine (left-posterior), the spine
(vertebral bodies, discs, canal, posterior arch), sternum, ribs with costal cartilage (cropped
by the field of view), and a coronary tree along the grooves of the heart: LM from the left
coronary ostium of the aortic root, LAD down the anterior interventricular groove, LCX in the
left atrioventricular groove, RCA from the right ostium in the right atrioventricular groove
and on down the posterior interventricular groove, with side branches (diagonals, obtuse and
acute marginals); pulmonary vessels in the lungs. Calcified plaques sit in the vessel walls;
distractors (aortic wall, aortic valve, mitral annulus, pericardium, costal cartilage, metal
clips and sternal wires, calcified lymph nodes) are placed away from them.

Image model (a simulation choice, not a clinical number): smooth anatomy is averaged at three
points across the slice profile, calcium and metal are sampled at <= 0.25 mm in z and 3 x 3
points per pixel and averaged over a Gaussian slice profile of FWHM = slice thickness; then an
in-plane Gaussian PSF and correlated noise rescaled to the requested SD.

Attenuation values (HU) of the soft tissues are typical values for non-contrast CT at 120 kVp
used only to draw a plausible image; no clinical decision depends on them. The ranges asked by
the project brief are kept: fat -100, lung -850, blood/myocardium ~40, vertebral cortex 300-700,
plaques 150-1000 HU peak density, noise 10-35 HU SD, pixel spacing 0.33-0.5 mm, slices 2.5/3 mm.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
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
    subslice_offsets,
)
from phantom.study import Distractor, PhantomStudy, TruthObject, score_truth
from scoring import AcquisitionInfo, Artery, CTVolume, VolumeGeometry

FloatArray = npt.NDArray[np.float64]

# Typical non-contrast attenuation (HU) used to draw the image (simulation values).
AIR_HU = -1000.0
FAT_HU = -100.0
LUNG_HU = -850.0
MUSCLE_HU = 50.0
BLOOD_HU = 40.0
LIVER_HU = 55.0
CSF_HU = 10.0
DISC_HU = 80.0
PERICARDIUM_HU = 25.0
CARTILAGE_HU = 100.0
CANCELLOUS_HU = 200.0
# Stainless steel attenuates far beyond the 12-bit CT range; the image clips it at 3071 HU.
METAL_HU = 15000.0

#: Plaque peak density range of the brief (HU).
PLAQUE_DENSITY_RANGE_HU = (150.0, 1000.0)
#: Plaque radius range of the brief (mm).
PLAQUE_RADIUS_RANGE_MM = (0.5, 3.0)
#: Simulated pixel spacing, slice thickness and noise ranges of the brief.
PIXEL_SPACING_RANGE_MM = (0.33, 0.5)
THICKNESS_CHOICES_MM = (2.5, 3.0)
NOISE_SD_RANGE_HU = (10.0, 35.0)
#: Calibration factors real scanners give (mg HA/cm^3 per HU), McCollough CH et al.,
#: Radiology 2007 (clinical.md section 2). The phantom scanner uses one of them.
MASS_FACTOR_RANGE_MG_CM3_HU = (0.75, 0.93)

_DISTRACTOR_COUNT_FIELDS = (
    "aortic_wall_calcs",
    "aortic_valve_calcs",
    "mitral_annulus_calcs",
    "pericardial_calcs",
    "cartilage_calcs",
    "surgical_clips",
    "sternal_wires",
    "lymph_node_calcs",
)

#: Side branches drawn on each artery (diagonals, obtuse marginals, acute marginal).
_BRANCH_COUNT = {Artery.LM: 0, Artery.LAD: 2, Artery.LCX: 2, Artery.RCA: 1}

_ARTERY_PROBABILITY = {Artery.LM: 0.12, Artery.LAD: 0.4, Artery.LCX: 0.2, Artery.RCA: 0.28}


@dataclass(frozen=True, slots=True)
class PlaqueSpec:
    """One calcified plaque in a coronary wall.

    Parameters
    ----------
    artery
        The artery it belongs to.
    position
        Where along the artery's centreline, as a fraction of its length (0 = ostium or
        bifurcation, 1 = distal end).
    radius_mm
        Radius across the vessel (0.5-3 mm).
    density_hu
        Attenuation of the calcium before partial volume and blur (150-1000 HU).
    elongation
        Length along the vessel / radius across it (>= 1).
    wall_angle_deg
        Angle around the vessel of the wall the plaque sits in.
    """

    artery: Artery
    position: float
    radius_mm: float
    density_hu: float
    elongation: float = 1.0
    wall_angle_deg: float = 0.0
    branch: int = 0
    """0: the artery itself; k >= 1: its k-th side branch (LAD: 2 diagonals, LCX: 2 obtuse
    marginals, RCA: 1 acute marginal, LM: none); the plaque still counts for the artery."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "artery", Artery(self.artery))
        limit = _BRANCH_COUNT[Artery(self.artery)]
        if not 0 <= self.branch <= limit:
            raise PhantomConfigError(
                f"plaque branch must be 0-{limit} for the {self.artery}, got {self.branch}"
            )
        if not 0.0 <= self.position <= 1.0:
            raise PhantomConfigError(f"plaque position must be in 0-1, got {self.position}")
        lo, hi = PLAQUE_RADIUS_RANGE_MM
        if not lo <= self.radius_mm <= hi:
            raise PhantomConfigError(
                f"plaque radius_mm must be in {lo}-{hi} mm, got {self.radius_mm}"
            )
        lo, hi = PLAQUE_DENSITY_RANGE_HU
        if not lo <= self.density_hu <= hi:
            raise PhantomConfigError(
                f"plaque density_hu must be in {lo:.0f}-{hi:.0f} HU, got {self.density_hu}"
            )
        if not 1.0 <= self.elongation <= 4.0:
            raise PhantomConfigError(f"plaque elongation must be in 1-4, got {self.elongation}")


@dataclass(frozen=True, slots=True)
class ChestPhantomConfig:
    """Everything that varies between chest phantom studies; ``seed`` fixes the rest.

    The defaults describe a typical study (3 mm contiguous slices, 0.4 mm pixels, 20 HU noise,
    two plaques, no distractor calcium). :meth:`random` draws a plausible study.
    """

    seed: int = 0
    matrix_size: int = 512
    pixel_spacing_mm: float = 0.4
    slice_thickness_mm: float = 3.0
    increment_mm: float = 3.0
    noise_sd_hu: float = 20.0
    psf_fwhm_mm: float = 1.1
    kvp: float = 120.0
    mass_factor_mg_per_cm3_hu: float = 0.8
    patient_scale: float = 1.0
    subcutaneous_fat_mm: float = 15.0
    heart_scale: float = 1.0
    heart_offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    heart_azimuth_deg: float = 40.0
    """Angle of the long axis (base to apex) from patient-left towards anterior."""
    heart_elevation_deg: float = 35.0
    """Angle of the long axis below the axial plane."""
    heart_roll_deg: float = 0.0
    epicardial_fat_mm: float = 6.0
    body_aspect: float = 0.7
    """Antero-posterior / lateral size of the body."""
    heart_aspect: tuple[float, float] = (0.724, 0.69)
    """The heart's two short semi-axes relative to its long one."""
    heart_shape: tuple[float, ...] = (0.0,) * 7
    """Smooth departure of the heart from an ellipsoid: coefficients of the 7 low-order terms of
    :func:`heart_shape_factor` (all 0: an ellipsoid; each within +/-0.1)."""
    aorta_tilt_deg: tuple[float, float] = (6.8, 2.3)
    """Tilt of the ascending aorta from vertical towards the patient's right and anterior."""
    descending_aorta_offset_mm: tuple[float, float] = (0.0, 0.0)
    fat_hu: float = FAT_HU
    lung_hu: float = LUNG_HU
    blood_hu: float = BLOOD_HU
    """Blood and myocardium alike (no contrast)."""
    muscle_hu: float = MUSCLE_HU
    fov_offset_mm: tuple[float, float] = (0.0, 0.0)
    table_z_mm: float = -140.0
    """Patient z of the heart centre (a real-looking table position)."""
    plaques: tuple[PlaqueSpec, ...] = (
        PlaqueSpec(Artery.LAD, 0.25, 2.0, 650.0, 1.5, 40.0),
        PlaqueSpec(Artery.RCA, 0.35, 1.5, 450.0, 1.2, 200.0),
    )
    aortic_wall_calcs: int = 0
    aortic_valve_calcs: int = 0
    mitral_annulus_calcs: int = 0
    pericardial_calcs: int = 0
    cartilage_calcs: int = 0
    surgical_clips: int = 0
    sternal_wires: int = 0
    lymph_node_calcs: int = 0

    def __post_init__(self) -> None:
        if not 64 <= self.matrix_size <= 1024:
            raise PhantomConfigError(f"matrix_size must be 64-1024, got {self.matrix_size}")
        if not 0.25 <= self.pixel_spacing_mm <= 1.0:
            raise PhantomConfigError(
                f"pixel_spacing_mm must be 0.25-1.0 mm, got {self.pixel_spacing_mm}"
            )
        if not 0.5 <= self.slice_thickness_mm <= 5.0:
            raise PhantomConfigError(
                f"slice_thickness_mm must be 0.5-5 mm, got {self.slice_thickness_mm}"
            )
        if not 0.2 * self.slice_thickness_mm <= self.increment_mm <= self.slice_thickness_mm:
            raise PhantomConfigError(
                "increment_mm must be between 0.2 x and 1 x the slice thickness "
                f"({self.slice_thickness_mm} mm), got {self.increment_mm}"
            )
        if not 0.0 <= self.noise_sd_hu <= 200.0:
            raise PhantomConfigError(f"noise_sd_hu must be 0-200 HU, got {self.noise_sd_hu}")
        if not 0.3 <= self.psf_fwhm_mm <= 3.0:
            raise PhantomConfigError(f"psf_fwhm_mm must be 0.3-3 mm, got {self.psf_fwhm_mm}")
        if not 0.7 <= self.patient_scale <= 1.4:
            raise PhantomConfigError(f"patient_scale must be 0.7-1.4, got {self.patient_scale}")
        if not 0.7 <= self.heart_scale <= 1.4:
            raise PhantomConfigError(f"heart_scale must be 0.7-1.4, got {self.heart_scale}")
        if not 3.0 <= self.epicardial_fat_mm <= 15.0:
            raise PhantomConfigError(
                f"epicardial_fat_mm must be 3-15 mm, got {self.epicardial_fat_mm}"
            )
        for name, lo, hi in (
            ("body_aspect", 0.55, 0.85),
            ("fat_hu", -130.0, -70.0),
            ("lung_hu", -920.0, -750.0),
            ("blood_hu", 20.0, 60.0),
            ("muscle_hu", 30.0, 70.0),
        ):
            if not lo <= getattr(self, name) <= hi:
                raise PhantomConfigError(
                    f"{name} must be {lo:g} to {hi:g}, got {getattr(self, name)}"
                )
        if len(self.heart_shape) != 7 or not all(-0.1 <= v <= 0.1 for v in self.heart_shape):
            raise PhantomConfigError(
                f"heart_shape must be 7 coefficients in -0.1-0.1, got {self.heart_shape}"
            )
        object.__setattr__(self, "heart_shape", tuple(float(v) for v in self.heart_shape))
        if not all(0.55 <= v <= 0.9 for v in self.heart_aspect):
            raise PhantomConfigError(
                f"heart_aspect must be two values in 0.55-0.9, got {self.heart_aspect}"
            )
        if not all(-20.0 <= v <= 20.0 for v in self.aorta_tilt_deg):
            raise PhantomConfigError(
                f"aorta_tilt_deg must be two angles in -20-20, got {self.aorta_tilt_deg}"
            )
        if not all(-10.0 <= v <= 10.0 for v in self.descending_aorta_offset_mm):
            raise PhantomConfigError(
                f"descending_aorta_offset_mm must be two values in -10-10 mm, got "
                f"{self.descending_aorta_offset_mm}"
            )
        if not 0.0 < self.mass_factor_mg_per_cm3_hu < 10.0:
            raise PhantomConfigError(
                "mass_factor_mg_per_cm3_hu must be positive (real scanners 0.75-0.93), got "
                f"{self.mass_factor_mg_per_cm3_hu}"
            )
        for name in _DISTRACTOR_COUNT_FIELDS:
            if not 0 <= getattr(self, name) <= 40:
                raise PhantomConfigError(f"{name} must be 0-40, got {getattr(self, name)}")
        object.__setattr__(self, "plaques", tuple(self.plaques))

    @property
    def zero_calcium(self) -> bool:
        """No coronary plaque was placed."""
        return not self.plaques

    @classmethod
    def random(
        cls,
        seed: int,
        *,
        zero_calcium: bool = False,
        heavy_distractors: bool = False,
        **overrides: Any,
    ) -> ChestPhantomConfig:
        """Draw a plausible study from ``seed``.

        Parameters
        ----------
        seed
            Fixes every draw (and the noise of the rendered study).
        zero_calcium
            No coronary plaque (distractors may still be present).
        heavy_distractors
            Many aortic, valve, annulus, pericardial, cartilage and metal distractors, and at
            most two small coronary plaques.
        **overrides
            Any :class:`ChestPhantomConfig` field, applied after the draw (``plaques`` given
            here is used as is).
        """
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise PhantomConfigError(
                f"unknown chest phantom setting(s): {', '.join(sorted(unknown))}"
            )
        rng = np.random.default_rng([seed, 1])
        thickness = float(rng.choice(THICKNESS_CHOICES_MM))
        overlapping = rng.random() < 0.35
        increment = thickness - 0.5 if overlapping else thickness
        heavy = heavy_distractors
        draw: dict[str, Any] = {
            "seed": seed,
            "pixel_spacing_mm": round(float(rng.uniform(*PIXEL_SPACING_RANGE_MM)), 4),
            "slice_thickness_mm": thickness,
            "increment_mm": increment,
            "noise_sd_hu": round(float(rng.uniform(*NOISE_SD_RANGE_HU)), 1),
            "psf_fwhm_mm": round(float(rng.uniform(0.8, 1.4)), 2),
            "mass_factor_mg_per_cm3_hu": round(float(rng.uniform(*MASS_FACTOR_RANGE_MG_CM3_HU)), 3),
            "patient_scale": round(float(rng.uniform(0.85, 1.2)), 3),
            "subcutaneous_fat_mm": round(float(rng.uniform(6.0, 30.0)), 1),
            "heart_scale": round(float(rng.uniform(0.85, 1.2)), 3),
            "heart_offset_mm": tuple(round(float(v), 1) for v in rng.uniform(-10, 10, 3)),
            "heart_azimuth_deg": round(float(rng.uniform(28.0, 52.0)), 1),
            "heart_elevation_deg": round(float(rng.uniform(25.0, 45.0)), 1),
            "heart_roll_deg": round(float(rng.uniform(-15.0, 15.0)), 1),
            "epicardial_fat_mm": round(float(rng.uniform(4.0, 9.0)), 1),
            "fov_offset_mm": tuple(round(float(v), 1) for v in rng.uniform(-12, 12, 2)),
            "table_z_mm": round(float(rng.uniform(-190.0, -100.0)), 1),
            "aortic_wall_calcs": int(rng.integers(6, 14) if heavy else rng.integers(0, 3)),
            "aortic_valve_calcs": int(rng.integers(2, 4) if heavy else rng.integers(0, 2)),
            "mitral_annulus_calcs": int(rng.integers(6, 12) if heavy else 0),
            "pericardial_calcs": int(rng.integers(2, 5) if heavy else rng.integers(0, 2)),
            "cartilage_calcs": int(rng.integers(4, 9) if heavy else rng.integers(0, 3)),
            "surgical_clips": int(rng.integers(2, 5) if heavy else 0),
            "sternal_wires": int(rng.integers(2, 4) if heavy else 0),
            "lymph_node_calcs": int(rng.integers(1, 4) if heavy else int(rng.random() < 0.15)),
        }
        if not heavy and rng.random() < 0.15:
            draw["mitral_annulus_calcs"] = int(rng.integers(3, 8))
        # Inter-patient variation of shapes and tissue attenuation (its own stream).
        var = np.random.default_rng([seed, 9])
        draw["body_aspect"] = round(float(var.uniform(0.62, 0.78)), 3)
        draw["heart_aspect"] = tuple(round(float(v), 3) for v in var.uniform(0.64, 0.8, 2))
        draw["aorta_tilt_deg"] = (
            round(float(var.uniform(0.0, 14.0)), 1),
            round(float(var.uniform(-4.0, 8.0)), 1),
        )
        draw["descending_aorta_offset_mm"] = tuple(
            round(float(v), 1) for v in var.uniform(-6.0, 6.0, 2)
        )
        draw["heart_shape"] = tuple(round(float(v), 3) for v in var.uniform(-0.07, 0.07, 7))
        draw["fat_hu"] = round(float(var.uniform(-115.0, -85.0)), 1)
        draw["lung_hu"] = round(float(var.uniform(-880.0, -820.0)), 1)
        draw["blood_hu"] = round(float(var.uniform(33.0, 48.0)), 1)
        draw["muscle_hu"] = round(float(var.uniform(42.0, 58.0)), 1)
        draw.update({k: v for k, v in overrides.items() if k != "plaques"})
        draw["plaques"] = ()
        config = cls(**draw)
        if "plaques" in overrides:
            return replace(config, plaques=tuple(overrides["plaques"]))
        if zero_calcium:
            return config
        return replace(config, plaques=_draw_plaques(config, rng, small_only=heavy))


# --------------------------------------------------------------------------------------------
# Anatomy (geometry only, no pixels)


@dataclass(frozen=True, slots=True)
class _Path:
    """A coronary centreline sampled every 0.5 mm, with the vessel radius at each point."""

    points: FloatArray  # (n, 3) patient mm
    radii: FloatArray  # (n,)

    def at(self, fraction: float) -> tuple[FloatArray, FloatArray, float]:
        """Point, unit tangent and vessel radius at a fraction of the length."""
        n = self.points.shape[0]
        i = min(max(round(fraction * (n - 1)), 0), n - 1)
        j0, j1 = max(i - 2, 0), min(i + 2, n - 1)
        tangent = self.points[j1] - self.points[j0]
        return self.points[i], tangent / np.linalg.norm(tangent), float(self.radii[i])


@dataclass(frozen=True, slots=True)
class _Anatomy:
    s: float  # patient scale
    body_axes: tuple[float, float]
    fat_mm: float
    muscle_mm: float
    cavity_axes: tuple[float, float]
    heart_center: FloatArray
    heart_axes: tuple[float, float, float]  # along u (apex), m (anterior), left
    heart_shape: tuple[float, ...]
    frame: FloatArray  # 3x3, columns u, m, left
    fat_mm_epi: float
    l_av: float
    root_center: FloatArray
    root_radius: float
    aa_dir: FloatArray
    aa_radius: float
    pa_start: FloatArray
    pa_dir: FloatArray
    pa_radius: float
    da_center: tuple[float, float]
    da_radius: float
    vb_center: tuple[float, float]
    vb_axes: tuple[float, float]
    canal_center: tuple[float, float]
    canal_radius: float
    sternum_center: tuple[float, float]
    sternum_axes: tuple[float, float]
    paths: dict[Artery, _Path]
    branches: dict[Artery, tuple[_Path, ...]]
    z_range: tuple[float, float]
    fov_center: tuple[float, float]
    grid: Grid = field(repr=False)

    def local_to_world(self, l_mm: float, m_mm: float, n_mm: float) -> FloatArray:
        return np.asarray(
            self.heart_center + self.frame @ np.array([l_mm, m_mm, n_mm]), dtype=np.float64
        )

    def surface(self, l_frac: float, alpha_deg: float, out_mm: float) -> FloatArray:
        """Point on the heart (muscle) ellipsoid at long-axis fraction and groove angle
        (0 = anterior, +90 = patient's left side, +-180 = posterior), pushed out along the
        normal by ``out_mm``."""
        a, b, c = self.heart_axes
        k = math.sqrt(max(1.0 - l_frac * l_frac, 0.0))
        ang = math.radians(alpha_deg)
        unit = np.array([l_frac, k * math.cos(ang), k * math.sin(ang)])
        scale = 1.0 / math.sqrt(float(heart_shape_factor(self.heart_shape, unit)))
        local = scale * unit * np.array([a, b, c])
        normal = local / np.array([a * a, b * b, c * c])
        normal = self.frame @ (normal / np.linalg.norm(normal))
        return np.asarray(self.heart_center + self.frame @ local + out_mm * normal)


def heart_shape_factor(
    coefficients: tuple[float, ...], unit: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.floating[Any]]:
    """How much the heart's quadratic form is scaled in each direction (1 = ellipsoid).

    ``unit`` is ``(3, ...)``: unit vectors in the heart's normalised frame (long axis / axes
    lengths). The surface in direction ``d`` lies at ``1 / sqrt(factor(d))`` of the ellipsoid's
    radius; the terms (``l``, ``m``, ``n``, ``lm``, ``ln``, ``mn``, ``l^2 - 1/3``) make the heart
    egg-shaped, lopsided or flattened without changing its smoothness.
    """
    dl, dm, dn = unit[0], unit[1], unit[2]
    basis = (dl, dm, dn, dl * dm, dl * dn, dm * dn, dl * dl - 1.0 / 3.0)
    out = np.ones_like(dl)
    for coefficient, term in zip(coefficients, basis, strict=True):
        if coefficient:
            out = out + coefficient * term
    return np.asarray(out)


def _tilted(right_deg: float, anterior_deg: float) -> FloatArray:
    """Unit vector pointing up (+z), tilted towards the patient's right (-x) and anterior (-y)."""
    v = np.array([-math.tan(math.radians(right_deg)), -math.tan(math.radians(anterior_deg)), 1.0])
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def _all_paths(anatomy: _Anatomy) -> list[_Path]:
    """Every coronary centreline: the four arteries and their side branches."""
    return [*anatomy.paths.values(), *(b for bs in anatomy.branches.values() for b in bs)]


def _heart_frame(azimuth_deg: float, elevation_deg: float, roll_deg: float) -> FloatArray:
    az, el, roll = (math.radians(v) for v in (azimuth_deg, elevation_deg, roll_deg))
    # Long axis from base to apex: towards the patient's left (+x), anterior (-y), inferior (-z).
    u = np.array([math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), -math.sin(el)])
    anterior = np.array([0.0, -1.0, 0.0])
    m = anterior - (anterior @ u) * u
    m /= np.linalg.norm(m)
    left = np.cross(u, m)
    if left[0] < 0:
        left = -left
    m2 = math.cos(roll) * m + math.sin(roll) * left
    left2 = -math.sin(roll) * m + math.cos(roll) * left
    return np.stack([u, m2, left2], axis=1)


def _densify(points: list[FloatArray], radii: list[float], step_mm: float = 0.5) -> _Path:
    pts = np.asarray(points, dtype=np.float64)
    rad = np.asarray(radii, dtype=np.float64)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s_new = np.linspace(0.0, arc[-1], max(int(arc[-1] / step_mm) + 1, 2))
    out = np.stack([np.interp(s_new, arc, pts[:, k]) for k in range(3)], axis=1)
    return _Path(points=out, radii=np.interp(s_new, arc, rad))


def _build_anatomy(cfg: ChestPhantomConfig) -> _Anatomy:
    s = cfg.patient_scale
    h = cfg.heart_scale
    body_axes = (160.0 * s, 160.0 * s * cfg.body_aspect)
    fat_mm = cfg.subcutaneous_fat_mm
    muscle_mm = 12.0 * s
    wall = fat_mm + muscle_mm + 9.0 * s
    cavity_axes = (body_axes[0] - wall, body_axes[1] - wall)
    ox, oy, oz = cfg.heart_offset_mm
    heart_center = np.array([25.0 * s + ox, -24.0 * s + oy, cfg.table_z_mm + oz])
    heart_axes = (58.0 * h, 58.0 * h * cfg.heart_aspect[0], 58.0 * h * cfg.heart_aspect[1])
    frame = _heart_frame(cfg.heart_azimuth_deg, cfg.heart_elevation_deg, cfg.heart_roll_deg)
    vb_axes = (20.0 * s, 17.0 * s)

    # The chest holds the heart: a large heart in a small or fat patient widens the thoracic
    # cavity (and the body with it) instead of poking through the chest wall or the spine.
    cu, cv = np.meshgrid(np.linspace(0.0, math.pi, 25), np.linspace(0.0, 2.0 * math.pi, 49))
    reach = np.array(heart_axes) + cfg.epicardial_fat_mm + 3.0
    unit = np.stack(
        [np.cos(cu).ravel(), (np.sin(cu) * np.cos(cv)).ravel(), (np.sin(cu) * np.sin(cv)).ravel()]
    )
    local = reach[:, None] * unit / np.sqrt(heart_shape_factor(cfg.heart_shape, unit))
    shell = heart_center[:, None] + frame @ local
    need = math.sqrt(
        float(np.max((shell[0] / cavity_axes[0]) ** 2 + (shell[1] / cavity_axes[1]) ** 2))
    )
    if need > 1.0:
        cavity_axes = (cavity_axes[0] * need, cavity_axes[1] * need)
    # Spine and descending aorta sit behind the heart: push them back (with the posterior wall)
    # where the heart would reach them.
    push = 0.0
    near_spine = np.abs(shell[0]) < vb_axes[0] + 5.0 * s
    if near_spine.any():
        vb_front = cavity_axes[1] + wall - 70.0 * s - vb_axes[1]
        push = max(push, float(shell[1][near_spine].max()) + 3.0 - vb_front)
    da_dx, da_dy = cfg.descending_aorta_offset_mm
    da_reach = 11.5 * s + 2.0
    da_x = vb_axes[0] + 5.0 * s + da_dx
    da_y = cavity_axes[1] + wall - 84.0 * s + da_dy
    off_x = shell[0] - da_x
    near_da = np.abs(off_x) < da_reach
    if near_da.any():
        limit = da_y - np.sqrt(da_reach**2 - off_x[near_da] ** 2)
        push = max(push, float(np.max(shell[1][near_da] - limit)))
    if push > 0:
        cavity_axes = (cavity_axes[0], cavity_axes[1] + push)
    body_axes = (cavity_axes[0] + wall, cavity_axes[1] + wall)

    vb_center = (0.0, body_axes[1] - 70.0 * s)
    canal_center = (0.0, vb_center[1] + vb_axes[1] + 9.0 * s)
    da_radius = 11.5 * s
    dax, day = cfg.descending_aorta_offset_mm
    da_center = (vb_axes[0] + 5.0 * s + dax, vb_center[1] - 14.0 * s + day)
    sternum_axes = (14.0 * s, 6.0 * s)
    sternum_center = (0.0, -(cavity_axes[1] + 6.0 * s))

    a = heart_axes[0]
    l_av = -0.45
    aa_radius = 14.5 * s
    root_radius = aa_radius + 2.0
    proto = _Anatomy(
        s=s,
        body_axes=body_axes,
        fat_mm=fat_mm,
        muscle_mm=muscle_mm,
        cavity_axes=cavity_axes,
        heart_center=heart_center,
        heart_axes=heart_axes,
        heart_shape=cfg.heart_shape,
        frame=frame,
        fat_mm_epi=cfg.epicardial_fat_mm,
        l_av=l_av,
        root_center=heart_center,
        root_radius=root_radius,
        aa_dir=_tilted(*cfg.aorta_tilt_deg),
        aa_radius=aa_radius,
        pa_start=heart_center,
        pa_dir=np.array([0.25, 0.35, 1.0]) / math.hypot(0.25, 0.35, 1.0),
        pa_radius=12.0 * h,
        da_center=da_center,
        da_radius=da_radius,
        vb_center=vb_center,
        vb_axes=vb_axes,
        canal_center=canal_center,
        canal_radius=8.0 * s,
        sternum_center=sternum_center,
        sternum_axes=sternum_axes,
        paths={},
        branches={},
        z_range=(0.0, 0.0),
        fov_center=(0.0, 0.0),
        grid=Grid(np.zeros(1), np.zeros(1), np.zeros(1), 1.0, 1.0),
    )
    root_k = 0.28 * heart_axes[1]
    ang = math.radians(-25.0)
    root_center = proto.local_to_world(
        (l_av - 0.18) * a, root_k * math.cos(ang), root_k * math.sin(ang)
    )
    pa_k = 0.7 * heart_axes[1]
    pa_start = proto.local_to_world((l_av - 0.05) * a, pa_k, 0.15 * pa_k)
    proto = replace(proto, root_center=root_center, pa_start=pa_start)

    # Coronary centrelines (vessel radii are simulation values that taper distally).
    def ring(alpha0: float, alpha1: float, out: float) -> list[FloatArray]:
        n = max(int(abs(alpha1 - alpha0) / 3.0), 2)
        return [proto.surface(l_av, float(al), out) for al in np.linspace(alpha0, alpha1, n)]

    def meridian(alpha: float, l0: float, l1: float, out: float) -> list[FloatArray]:
        n = max(int(abs(l1 - l0) * 40), 2)
        return [proto.surface(float(lf), alpha, out) for lf in np.linspace(l0, l1, n)]

    rng = np.random.default_rng([cfg.seed, 2])
    alpha_bif = float(rng.uniform(30.0, 42.0))
    alpha_iv = float(rng.uniform(15.0, 28.0))
    alpha_lcx_end = float(rng.uniform(130.0, 165.0))
    l_pda_end = float(rng.uniform(0.2, 0.5))
    bif = proto.surface(l_av - 0.03, alpha_bif, 2.5)
    ostium_l = root_center + root_radius * (bif - root_center) / np.linalg.norm(bif - root_center)
    rca_start = proto.surface(l_av, -30.0, 2.3)
    ostium_r = root_center + root_radius * (rca_start - root_center) / np.linalg.norm(
        rca_start - root_center
    )
    lad_pts = [bif, *meridian(alpha_iv, l_av + 0.1, 0.9, 2.2)]
    lcx_pts = [bif, *ring(alpha_bif + 10.0, alpha_lcx_end, 2.2)]
    rca_pts = [ostium_r, *ring(-30.0, -180.0, 2.3), *meridian(-180.0, l_av + 0.08, l_pda_end, 2.0)]
    paths = {
        Artery.LM: _densify([ostium_l, bif], [2.0, 2.0]),
        Artery.LAD: _densify(lad_pts, list(np.linspace(1.8, 0.9, len(lad_pts)))),
        Artery.LCX: _densify(lcx_pts, list(np.linspace(1.7, 1.0, len(lcx_pts)))),
        Artery.RCA: _densify(rca_pts, list(np.linspace(1.9, 1.0, len(rca_pts)))),
    }

    # Side branches over the ventricles (they belong to their parent artery): two diagonals
    # from the LAD, two obtuse marginals from the LCX, one acute marginal from the RCA.
    def sweep(l0: float, a0: float, l1: float, a1: float) -> _Path:
        n = 24
        pts = [
            proto.surface(float(lf), float(al), 1.8)
            for lf, al in zip(np.linspace(l0, l1, n), np.linspace(a0, a1, n), strict=True)
        ]
        return _densify(pts, list(np.linspace(1.2, 0.7, n)))

    diag_l = np.sort(rng.uniform(l_av + 0.2, 0.35, 2))
    om_alpha = np.sort(rng.uniform(alpha_bif + 35.0, alpha_lcx_end - 10.0, 2))
    am_alpha = float(rng.uniform(-110.0, -70.0))
    branches = {
        Artery.LM: (),
        Artery.LAD: tuple(
            sweep(
                float(lf),
                alpha_iv,
                float(lf) + float(rng.uniform(0.3, 0.45)),
                alpha_iv + float(rng.uniform(40.0, 60.0)),
            )
            for lf in diag_l
        ),
        Artery.LCX: tuple(
            sweep(
                l_av,
                float(al),
                l_av + float(rng.uniform(0.4, 0.6)),
                float(al) + float(rng.uniform(-5.0, 15.0)),
            )
            for al in om_alpha
        ),
        Artery.RCA: (
            sweep(
                l_av,
                am_alpha,
                l_av + float(rng.uniform(0.4, 0.6)),
                am_alpha + float(rng.uniform(-10.0, 5.0)),
            ),
        ),
    }

    # Coverage: from below the heart to above the left main and the root, as a calcium scan.
    muscle = frame @ (
        np.array(heart_axes)[:, None] * unit / np.sqrt(heart_shape_factor(cfg.heart_shape, unit))
    )
    top = max(heart_center[2] + muscle[2].max(), *(p.points[:, 2].max() for p in paths.values()))
    top = max(top, root_center[2] + root_radius) + 10.0
    bottom = heart_center[2] + muscle[2].min() - 8.0
    n_slices = math.ceil((top - bottom) / cfg.increment_mm) + 1
    z_mm = bottom + cfg.increment_mm * np.arange(n_slices)

    fov_center = (
        float(heart_center[0] - 6.0 * s + cfg.fov_offset_mm[0]),
        float(heart_center[1] + 4.0 * s + cfg.fov_offset_mm[1]),
    )
    px = cfg.pixel_spacing_mm
    n = cfg.matrix_size
    x_mm = fov_center[0] + (np.arange(n, dtype=np.float64) - (n - 1) / 2.0) * px
    y_mm = fov_center[1] + (np.arange(n, dtype=np.float64) - (n - 1) / 2.0) * px
    grid = Grid(x_mm=x_mm, y_mm=y_mm, z_mm=z_mm, pixel_mm=px, thickness_mm=cfg.slice_thickness_mm)
    return replace(
        proto,
        paths=paths,
        branches=branches,
        z_range=(float(z_mm[0]), float(z_mm[-1])),
        fov_center=fov_center,
        grid=grid,
    )


def chest_landmarks(config: ChestPhantomConfig) -> dict[str, tuple[float, float, float]]:
    """Where the main structures of a chest phantom study lie, in patient mm ``(x, y, z)``.

    For evaluating detectors and for tests; the rendered image does not depend on calling it.
    Keys: ``heart_center``, ``apex``, ``aortic_root``, ``ascending_aorta_top``,
    ``descending_aorta_top`` (both on the top slice), ``left_ostium``, ``right_ostium``,
    ``vertebral_body`` and ``sternum`` (at the heart centre's z).
    """
    an = _build_anatomy(config)
    z_top = an.grid.z_mm[-1]
    t_top = (z_top - an.root_center[2]) / an.aa_dir[2]
    hz = float(an.heart_center[2])
    return {
        "heart_center": _tuple3(an.heart_center),
        "apex": _tuple3(an.surface(1.0, 0.0, 0.0)),
        "aortic_root": _tuple3(an.root_center),
        "ascending_aorta_top": _tuple3(an.root_center + t_top * an.aa_dir),
        "descending_aorta_top": (an.da_center[0], an.da_center[1], float(z_top)),
        "left_ostium": _tuple3(an.paths[Artery.LM].points[0]),
        "right_ostium": _tuple3(an.paths[Artery.RCA].points[0]),
        "vertebral_body": (an.vb_center[0], an.vb_center[1], hz),
        "sternum": (an.sternum_center[0], an.sternum_center[1], hz),
    }


def _spread_mm(cfg: ChestPhantomConfig) -> float:
    """How far blur reaches beyond an object: 3 PSF sigmas plus a pixel."""
    return 3.0 * sigma_from_fwhm(cfg.psf_fwhm_mm) + cfg.pixel_spacing_mm


def _plaque_blob(anatomy: _Anatomy, spec: PlaqueSpec) -> Blob:
    if spec.branch == 0:
        path = anatomy.paths[spec.artery]
    else:
        available = anatomy.branches[spec.artery]
        if spec.branch > len(available):
            raise PhantomConfigError(
                f"plaque on branch {spec.branch} of the {spec.artery}, which has "
                f"{len(available)} side branch(es) in this anatomy"
            )
        path = available[spec.branch - 1]
    point, tangent, vessel_r = path.at(spec.position)
    helper = np.array([0.0, 0.0, 1.0]) if abs(tangent[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(tangent, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(tangent, e1)
    ang = math.radians(spec.wall_angle_deg)
    wall = math.cos(ang) * e1 + math.sin(ang) * e2
    center = point + 0.6 * vessel_r * wall
    return Blob(
        center_mm=(float(center[0]), float(center[1]), float(center[2])),
        axes=(_tuple3(tangent), _tuple3(e1), _tuple3(e2)),
        radii_mm=(spec.radius_mm * spec.elongation, spec.radius_mm, spec.radius_mm),
        value_hu=spec.density_hu,
    )


def _tuple3(v: FloatArray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


def _apart(a: Blob, b: Blob, cfg: ChestPhantomConfig, margin_mm: float) -> bool:
    """Whether two blobs' grown truth regions cannot touch (in-plane or along z)."""
    d = np.subtract(a.center_mm, b.center_mm)
    reach = a.max_radius_mm + b.max_radius_mm
    in_plane = math.hypot(d[0], d[1]) >= reach + 2.0 * _spread_mm(cfg) + margin_mm
    along_z = abs(d[2]) >= reach + 2.0 * cfg.slice_thickness_mm + margin_mm
    return in_plane or along_z


def _inside_study(anatomy: _Anatomy, blob: Blob, margin_mm: float) -> bool:
    g = anatomy.grid
    x, y, z = blob.center_mm
    r = blob.max_radius_mm + margin_mm
    return bool(
        g.x_mm[0] + r <= x <= g.x_mm[-1] - r
        and g.y_mm[0] + r <= y <= g.y_mm[-1] - r
        and g.z_mm[0] + r + g.thickness_mm <= z <= g.z_mm[-1] - r - g.thickness_mm
    )


def _draw_plaques(
    cfg: ChestPhantomConfig, rng: np.random.Generator, *, small_only: bool
) -> tuple[PlaqueSpec, ...]:
    anatomy = _build_anatomy(cfg)
    density_range = PLAQUE_DENSITY_RANGE_HU
    if small_only:
        # Little calcium, but visible: a heavy-distractor study should still test detection.
        count, r_lo, r_hi, density_range = int(rng.integers(1, 3)), 1.0, 1.6, (350.0, 800.0)
    else:
        burden = rng.choice(4, p=[0.2, 0.25, 0.35, 0.2])
        count = int(rng.integers(*((1, 3), (2, 5), (4, 9), (8, 15))[burden]))
        r_lo, r_hi = 0.5, (1.2, 1.8, 2.5, 3.0)[burden]
    arteries = list(_ARTERY_PROBABILITY)
    probs = np.array(list(_ARTERY_PROBABILITY.values()))
    placed: list[tuple[PlaqueSpec, Blob]] = []
    for _ in range(count * 25):
        if len(placed) == count:
            break
        artery = arteries[int(rng.choice(len(arteries), p=probs / probs.sum()))]
        lo, hi = (0.2, 0.8) if artery is Artery.LM else (0.05, 0.85)
        radius = r_lo + (r_hi - r_lo) * float(rng.beta(1.3, 1.8))
        density = float(rng.uniform(*density_range))
        if not placed:
            # The first plaque is large and dense enough to survive partial volume and blur,
            # so a calcified study is not silently a zero-calcium one.
            radius = float(rng.uniform(1.0, max(r_hi, 1.4)))
            density = float(rng.uniform(350.0, density_range[1]))
        branch = 0
        if _BRANCH_COUNT[artery] and rng.random() < 0.2:
            branch = int(rng.integers(1, _BRANCH_COUNT[artery] + 1))
            lo, hi = 0.05, 0.7
        spec = PlaqueSpec(
            artery=artery,
            branch=branch,
            position=round(float(rng.uniform(lo, hi)), 4),
            radius_mm=round(radius, 2),
            density_hu=round(density, 1),
            elongation=round(float(rng.uniform(1.0, 2.2)), 2),
            wall_angle_deg=round(float(rng.uniform(0.0, 360.0)), 1),
        )
        blob = _plaque_blob(anatomy, spec)
        if not _inside_study(anatomy, blob, 6.0):
            continue
        if any(
            other.artery != artery and not _apart(blob, other_blob, cfg, 2.0)
            for other, other_blob in placed
        ):
            continue
        placed.append((spec, blob))
    return tuple(spec for spec, _ in placed)


# --------------------------------------------------------------------------------------------
# Distractors


@dataclass(frozen=True, slots=True)
class _Placed:
    kind: Distractor
    blob: Blob


def _orthonormal(direction: FloatArray) -> tuple[FloatArray, FloatArray]:
    d = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(d, e1)


def _random_axes(rng: np.random.Generator) -> tuple[FloatArray, FloatArray, FloatArray]:
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    e1, e2 = _orthonormal(d)
    return d, e1, e2


def _blob(
    center: FloatArray, axes: tuple[FloatArray, ...], radii: tuple[float, ...], hu: float
) -> Blob:
    return Blob(
        center_mm=_tuple3(center),
        axes=tuple(_tuple3(a / np.linalg.norm(a)) for a in axes),
        radii_mm=(float(radii[0]), float(radii[1]), float(radii[2])),
        value_hu=float(hu),
    )


def _rib_point(anatomy: _Anatomy, rib: _Ribs, phi: float, k: int) -> FloatArray:
    ax, by = rib.axes
    return np.array(
        [ax * math.cos(phi), by * math.sin(phi), rib.z_of(math.sin(phi), k)], dtype=np.float64
    )


@dataclass(frozen=True, slots=True)
class _Ribs:
    axes: tuple[float, float]
    radial_half_mm: float
    z_half_mm: float
    pitch_mm: float
    drop_mm: float
    z0_mm: float
    cartilage_x_mm: float
    spine_x_mm: float
    sternum_x_mm: float

    def z_of(self, sin_phi: FloatArray | float, k: FloatArray | int) -> Any:
        """Centre-line z of rib ``k`` at elliptical angle with sine ``sin_phi`` (+1 posterior):
        ribs run down towards the front."""
        return self.z0_mm + k * self.pitch_mm - self.drop_mm * (1.0 - np.asarray(sin_phi)) / 2.0


def _ribs(anatomy: _Anatomy, cfg: ChestPhantomConfig) -> _Ribs:
    s = anatomy.s
    rng = np.random.default_rng([cfg.seed, 3])
    return _Ribs(
        axes=(anatomy.cavity_axes[0] + 4.5 * s, anatomy.cavity_axes[1] + 4.5 * s),
        radial_half_mm=3.5 * s,
        z_half_mm=5.5 * s,
        pitch_mm=27.0 * s,
        drop_mm=90.0 * s,
        z0_mm=float(anatomy.heart_center[2] + rng.uniform(0.0, 27.0 * s)),
        cartilage_x_mm=anatomy.sternum_axes[0] + 30.0 * s,
        spine_x_mm=anatomy.vb_axes[0] + 6.0 * s,
        sternum_x_mm=anatomy.sternum_axes[0],
    )


def _place_distractors(
    anatomy: _Anatomy, cfg: ChestPhantomConfig, plaques: list[Blob], ribs: _Ribs
) -> list[_Placed]:
    rng = np.random.default_rng([cfg.seed, 4])
    placed: list[_Placed] = []
    coronary = np.concatenate([p.points for p in _all_paths(anatomy)])

    def accept(kind: Distractor, blob: Blob, min_vessel_mm: float = 0.0) -> bool:
        if not _inside_study(anatomy, blob, 2.0):
            return False
        if any(not _apart(blob, p, cfg, 3.0) for p in plaques):
            return False
        if min_vessel_mm > 0:
            dist = np.linalg.norm(coronary - np.asarray(blob.center_mm), axis=1).min()
            if dist < min_vessel_mm + blob.max_radius_mm:
                return False
        placed.append(_Placed(kind, blob))
        return True

    z_lo, z_hi = anatomy.z_range
    # Aortic wall: flat plaques in the wall of the ascending or descending aorta.
    for _ in range(cfg.aortic_wall_calcs):
        for _attempt in range(20):
            hu = float(rng.uniform(300.0, 900.0))
            radii = (float(rng.uniform(0.8, 1.5)), float(rng.uniform(1.5, 4.0)))
            height = float(rng.uniform(1.5, 5.0))
            theta = float(rng.uniform(0.0, 2.0 * math.pi))
            if rng.random() < 0.5:
                axis = np.array([0.0, 0.0, 1.0])
                z = float(rng.uniform(z_lo, z_hi))
                centre_axis = np.array([*anatomy.da_center, z])
                r_vessel = anatomy.da_radius
            else:
                axis = anatomy.aa_dir
                t = float(rng.uniform(anatomy.root_radius, z_hi - anatomy.root_center[2]))
                centre_axis = anatomy.root_center + t * axis
                r_vessel = anatomy.aa_radius
            e1, e2 = _orthonormal(axis)
            radial = math.cos(theta) * e1 + math.sin(theta) * e2
            tangential = np.cross(axis, radial)
            centre = centre_axis + (r_vessel - 0.5 * radii[0]) * radial
            blob = _blob(centre, (radial, tangential, axis), (radii[0], radii[1], height), hu)
            if accept(Distractor.AORTIC_WALL, blob):
                break
    # Aortic valve: nodules on the cusps, in the valve plane of the root.
    valve_normal = anatomy.heart_center - anatomy.root_center
    e1, e2 = _orthonormal(valve_normal)
    cusp0 = float(rng.uniform(0.0, 2.0 * math.pi))
    for i in range(cfg.aortic_valve_calcs):
        ang = cusp0 + 2.0 * math.pi * (i % 3) / 3.0 + float(rng.uniform(-0.3, 0.3))
        radial = math.cos(ang) * e1 + math.sin(ang) * e2
        centre = anatomy.root_center + float(rng.uniform(0.35, 0.65)) * anatomy.root_radius * radial
        r = float(rng.uniform(1.5, 3.5))
        blob = _blob(
            centre,
            (radial, np.cross(valve_normal, radial), valve_normal),
            (r, r * 1.3, r * 0.8),
            float(rng.uniform(300.0, 1000.0)),
        )
        accept(Distractor.AORTIC_VALVE, blob)
    # Mitral annulus: a C-shaped chain along the posterior annulus, inside the heart.
    if cfg.mitral_annulus_calcs:
        a, b, c = anatomy.heart_axes
        ring_r = 0.89 * min(b, c)
        ang = math.radians(110.0)
        centre_ring = anatomy.local_to_world(
            (anatomy.l_av + 0.06) * a, 0.4 * ring_r * math.cos(ang), 0.4 * ring_r * math.sin(ang)
        )
        u = anatomy.frame[:, 0]
        m_ax = anatomy.frame[:, 1]
        left = anatomy.frame[:, 2]
        annulus_r = 13.0 * anatomy.heart_axes[1] / 42.0
        start = float(rng.uniform(60.0, 120.0))
        span = float(rng.uniform(60.0, 150.0))
        for i in range(cfg.mitral_annulus_calcs):
            t = math.radians(start + span * i / max(cfg.mitral_annulus_calcs - 1, 1))
            radial = math.cos(t) * m_ax + math.sin(t) * left
            centre = centre_ring + annulus_r * radial
            r = float(rng.uniform(1.3, 2.5))
            blob = _blob(
                centre,
                (radial, np.cross(u, radial), u),
                (r, r * 1.4, r),
                float(rng.uniform(300.0, 900.0)),
            )
            accept(Distractor.MITRAL_ANNULUS, blob)
    # Pericardium: flat patches on the pericardial surface, away from the coronaries.
    fat = anatomy.fat_mm_epi
    for _ in range(cfg.pericardial_calcs):
        for _attempt in range(30):
            lf = float(rng.uniform(-0.2, 0.8))
            alpha = float(rng.uniform(-180.0, 180.0))
            centre = anatomy.surface(lf, alpha, fat + 1.0)
            normal = centre - anatomy.surface(lf, alpha, 0.0)
            t1, t2 = _orthonormal(normal)
            patch = (
                float(rng.uniform(0.7, 1.3)),
                float(rng.uniform(2.0, 5.0)),
                float(rng.uniform(1.5, 4.0)),
            )
            blob = _blob(centre, (normal, t1, t2), patch, float(rng.uniform(300.0, 800.0)))
            if accept(Distractor.PERICARDIUM, blob, min_vessel_mm=10.0):
                break
    # Costal cartilage: calcified nodules in the cartilage between rib ends and sternum.
    for _ in range(cfg.cartilage_calcs):
        for _attempt in range(30):
            side = 1.0 if rng.random() < 0.5 else -1.0
            x = side * float(rng.uniform(ribs.sternum_x_mm + 3.0, ribs.cartilage_x_mm - 2.0))
            ax, _by = ribs.axes
            phi = math.atan2(-math.sqrt(max(1.0 - (x / ax) ** 2, 0.0)), x / ax)
            k_lo = math.floor((z_lo - ribs.z_of(math.sin(phi), 0)) / ribs.pitch_mm)
            k = int(rng.integers(k_lo, k_lo + 6))
            centre = _rib_point(anatomy, ribs, phi, k)
            r = float(rng.uniform(1.0, 2.5))
            blob = _blob(
                centre,
                (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])),
                (r * 1.3, r, r),
                float(rng.uniform(250.0, 600.0)),
            )
            if accept(Distractor.COSTAL_CARTILAGE, blob):
                break
    # Surgical clips: small metal bars on the heart surface or in the anterior mediastinum.
    for _ in range(cfg.surgical_clips):
        for _attempt in range(30):
            centre = anatomy.surface(
                float(rng.uniform(-0.3, 0.7)), float(rng.uniform(-120.0, 120.0)), fat + 4.0
            )
            axes = _random_axes(rng)
            blob = _blob(centre, axes, (2.5, 0.6, 0.6), METAL_HU)
            if accept(Distractor.METAL, blob, min_vessel_mm=10.0):
                break
    # Calcified lymph nodes near the hila and below the carina: lobulated, outside the heart.
    a, b, c = anatomy.heart_axes
    fat_axes = np.array([a, b, c]) + fat
    hx, hy, hz = anatomy.heart_center
    s = anatomy.s
    stations = (
        np.array([hx - 60.0 * s, hy + 35.0 * s]),
        np.array([hx + 35.0 * s, hy + 45.0 * s]),
        np.array([hx - 15.0 * s, hy + 45.0 * s]),
    )
    for _ in range(cfg.lymph_node_calcs):
        for _attempt in range(40):
            xy = stations[int(rng.integers(0, 3))] + rng.normal(0.0, 10.0 * s, 2)
            centre = np.array([*xy, float(rng.uniform(hz, z_hi - 8.0))])
            local = anatomy.frame.T @ (centre - anatomy.heart_center)
            if float(np.sum((local / fat_axes) ** 2)) < 1.3:
                continue
            r = float(rng.uniform(1.5, 3.5))
            hu = float(rng.uniform(300.0, 900.0))
            axes = _random_axes(rng)
            node = _blob(centre, axes, (r * 1.3, r, r * 0.9), hu)
            if accept(Distractor.LYMPH_NODE, node, min_vessel_mm=15.0):
                lobe = centre + r * axes[1]
                accept(Distractor.LYMPH_NODE, _blob(lobe, axes, (r * 0.8, r * 0.7, r * 0.7), hu))
                break
    # Sternal wires: loops of thin wire around the sternum at a few levels.
    sx, sy = anatomy.sternum_axes
    scx, scy = anatomy.sternum_center
    levels = np.linspace(z_lo + 10.0, z_hi - 10.0, cfg.sternal_wires + 2)[1:-1]
    for z in levels:
        for t in np.linspace(0.0, 2.0 * math.pi, 36, endpoint=False):
            centre = np.array([scx + (sx + 2.0) * math.cos(t), scy + (sy + 2.0) * math.sin(t), z])
            tangent = np.array([-(sx + 2.0) * math.sin(t), (sy + 2.0) * math.cos(t), 0.0])
            e1, e2 = _orthonormal(tangent)
            accept(Distractor.METAL, _blob(centre, (tangent, e1, e2), (0.8, 0.45, 0.45), METAL_HU))
    return placed


# --------------------------------------------------------------------------------------------
# Rendering


def _lung_vessels(anatomy: _Anatomy, cfg: ChestPhantomConfig) -> tuple[FloatArray, FloatArray]:
    """Centre points (1 mm apart) and radii of pulmonary vessel segments running out from each
    hilum towards the chest wall, tapering; drawn only into lung."""
    rng = np.random.default_rng([cfg.seed, 8])
    s = anatomy.s
    z_lo, z_hi = anatomy.z_range
    hx, hy, _ = anatomy.heart_center
    hila = (np.array([hx - 70.0 * s, hy + 35.0 * s]), np.array([hx + 40.0 * s, hy + 40.0 * s]))
    pts: list[FloatArray] = []
    radii: list[FloatArray] = []
    for _ in range(220):
        hilum = hila[int(rng.integers(0, 2))]
        start_xy = hilum + rng.normal(0.0, 30.0 * s, 2)
        z0 = float(rng.uniform(z_lo - 10.0, z_hi + 10.0))
        outward = start_xy - np.array([hx, hy]) + rng.normal(0.0, 20.0, 2)
        direction = np.array([*outward / np.linalg.norm(outward), float(rng.normal(0.0, 0.4))])
        direction /= np.linalg.norm(direction)
        length = float(rng.uniform(20.0, 70.0))
        r0 = float(rng.uniform(0.8, 3.0))
        t = np.arange(0.0, length, 1.0)
        pts.append(np.array([*start_xy, z0])[None, :] + t[:, None] * direction[None, :])
        radii.append(r0 * (1.0 - 0.6 * t / length))
    return np.concatenate(pts), np.concatenate(radii)


def _ellipse(
    x: npt.NDArray[np.floating[Any]],
    y: npt.NDArray[np.floating[Any]],
    cx: float,
    cy: float,
    ax: float,
    by: float,
) -> Any:
    return ((x - cx) / ax) ** 2 + ((y - cy) / by) ** 2


class _Renderer:
    """Draws the smooth anatomy plane by plane (patient z), reusing the static 2-D parts."""

    def __init__(self, anatomy: _Anatomy, cfg: ChestPhantomConfig) -> None:
        self.an = anatomy
        self.cfg = cfg
        g = anatomy.grid
        self.px = g.pixel_mm
        xx, yy = np.meshgrid(g.x_mm, g.y_mm)
        self.xx = xx.astype(np.float32)
        self.yy = yy.astype(np.float32)
        s = anatomy.s
        rng = np.random.default_rng([cfg.seed, 5])
        self.cortical_hu = float(rng.uniform(450.0, 650.0))
        self.cancellous_hu = float(rng.uniform(160.0, 260.0))
        self.disc_period = 29.0 * s
        self.disc_height = 6.5 * s
        self.disc_z0 = float(rng.uniform(0.0, self.disc_period))

        bx, by = anatomy.body_axes
        body = _ellipse(xx, yy, 0.0, 0.0, bx, by) <= 1.0
        muscle = _ellipse(xx, yy, 0.0, 0.0, bx - anatomy.fat_mm, by - anatomy.fat_mm) <= 1.0
        self.cavity = _ellipse(xx, yy, 0.0, 0.0, *anatomy.cavity_axes) <= 1.0
        base = np.full(xx.shape, AIR_HU, dtype=np.float32)
        base[body] = self.cfg.fat_hu
        base[muscle] = self.cfg.muscle_hu
        base[self.cavity] = self.cfg.lung_hu
        band = _ellipse(xx, yy, 4.0 * s, -12.0 * s, 30.0 * s, anatomy.cavity_axes[1]) <= 1.0
        base[band & self.cavity] = self.cfg.fat_hu
        self.base = base

        # Static overlay drawn over the heart: descending aorta, oesophagus, spine, sternum.
        overlay = np.full(xx.shape, np.nan, dtype=np.float32)
        dax, day = anatomy.da_center
        da_d2 = (xx - dax) ** 2 + (yy - day) ** 2
        overlay[da_d2 <= (anatomy.da_radius + 2.5) ** 2] = self.cfg.fat_hu
        overlay[da_d2 <= anatomy.da_radius**2] = self.cfg.blood_hu
        vx, vy = anatomy.vb_center
        oes = ((xx - 6.0 * s) ** 2 + (yy - (vy - anatomy.vb_axes[1] - 9.0 * s)) ** 2) <= (
            7.0 * s
        ) ** 2
        overlay[oes] = self.cfg.muscle_hu
        cx, cy = anatomy.canal_center
        arch = ((xx - cx) ** 2 + (yy - cy) ** 2) <= (anatomy.canal_radius + 6.0 * s) ** 2
        spinous = _ellipse(xx, yy, cx, cy + 18.0 * s, 4.5 * s, 12.0 * s) <= 1.0
        transverse = (_ellipse(xx, yy, cx - 22.0 * s, cy - 2.0 * s, 12.0 * s, 5.0 * s) <= 1.0) | (
            _ellipse(xx, yy, cx + 22.0 * s, cy - 2.0 * s, 12.0 * s, 5.0 * s) <= 1.0
        )
        posterior = arch | spinous | transverse
        overlay[posterior] = self.cortical_hu * 0.8
        overlay[((xx - cx) ** 2 + (yy - cy) ** 2) <= anatomy.canal_radius**2] = CSF_HU
        vb_q = _ellipse(xx, yy, vx, vy, *anatomy.vb_axes)
        vb_inner = _ellipse(xx, yy, vx, vy, anatomy.vb_axes[0] - 2.0, anatomy.vb_axes[1] - 2.0)
        self.vb = vb_q <= 1.0
        self.vb_values = np.where(vb_inner <= 1.0, self.cancellous_hu, self.cortical_hu).astype(
            np.float32
        )
        stx, sty = anatomy.sternum_center
        sax, say = anatomy.sternum_axes
        sternum = _ellipse(xx, yy, stx, sty, sax, say) <= 1.0
        sternum_inner = _ellipse(xx, yy, stx, sty, sax - 1.5, say - 1.5) <= 1.0
        overlay[sternum] = self.cortical_hu
        overlay[sternum_inner] = self.cancellous_hu
        self.overlay_mask = ~np.isnan(overlay)
        self.overlay_values = overlay[self.overlay_mask]
        self.bone2d = posterior | sternum | self.vb

        # Ribs: pixels of the band just outside the cavity, with their elliptical angle.
        self.ribs = _ribs(anatomy, cfg)
        rax, rby = self.ribs.axes
        ex, ey = xx / rax, yy / rby
        rho = np.sqrt(ex * ex + ey * ey)
        phi = np.arctan2(ey, ex)
        local_r = np.sqrt((rax * np.cos(phi)) ** 2 + (rby * np.sin(phi)) ** 2)
        dist = (rho - 1.0) * local_r
        in_band = (np.abs(dist) < self.ribs.radial_half_mm) & (np.abs(xx) > self.ribs.sternum_x_mm)
        in_band &= ~((yy > 0) & (np.abs(xx) < self.ribs.spine_x_mm))
        self.rib_idx = np.nonzero(in_band)
        self.rib_dist = dist[in_band]
        self.rib_sin = np.sin(phi[in_band])
        self.rib_cartilage = (yy[in_band] < 0) & (np.abs(xx[in_band]) < self.ribs.cartilage_x_mm)

        # Heart quadratic forms on the heart's bounding box.
        a, b, c = anatomy.heart_axes
        f = anatomy.fat_mm_epi
        self.heart_forms = []
        inv_fat = anatomy.frame @ np.diag(np.square([a + f, b + f, c + f])) @ anatomy.frame.T
        sphere = np.random.default_rng(0).normal(size=(3, 2000))
        sphere /= np.linalg.norm(sphere, axis=0)
        self.shape = anatomy.heart_shape
        reach = float(np.max(1.0 / np.sqrt(heart_shape_factor(self.shape, sphere))))
        half = np.sqrt(np.diag(inv_fat)) * reach + 4.0
        hx, hy, hz = anatomy.heart_center
        self.hz = hz
        ix0, ix1 = np.searchsorted(g.x_mm, [hx - half[0], hx + half[0]])
        iy0, iy1 = np.searchsorted(g.y_mm, [hy - half[1], hy + half[1]])
        self.hbox = (slice(int(iy0), int(iy1)), slice(int(ix0), int(ix1)))
        self.heart_zhalf = float(half[2])
        dx = self.xx[self.hbox] - np.float32(hx)
        dy = self.yy[self.hbox] - np.float32(hy)
        for axes in ((a + f, b + f, c + f), (a, b, c)):
            amat = anatomy.frame @ np.diag(1.0 / np.square(axes)) @ anatomy.frame.T
            q0 = amat[0, 0] * dx * dx + 2 * amat[0, 1] * dx * dy + amat[1, 1] * dy * dy
            lin = 2.0 * (amat[0, 2] * dx + amat[1, 2] * dy)
            self.heart_forms.append((q0.astype(np.float32), lin.astype(np.float32), amat[2, 2]))
        # Normalised heart-frame coordinates of the box (in-plane part; z is added per plane),
        # for the direction-dependent shape factor.
        fr = anatomy.frame
        self.heart_local = [
            ((fr[0, k] * dx + fr[1, k] * dy) / axis).astype(np.float32)
            for k, axis in enumerate((a, b, c))
        ]
        self.heart_local_z = [float(fr[2, k] / axis) for k, axis in enumerate((a, b, c))]
        self.pericardium_q = (1.0 + 1.5 / (b + f)) ** 2

        # Diaphragm domes: liver on the right, spleen and stomach on the left.
        bottom = hz - math.sqrt(
            (anatomy.frame @ np.diag(np.square([a, b, c])) @ anatomy.frame.T)[2, 2]
        )
        self.domes = (
            (
                (-40.0 * s, 5.0 * s),
                (115.0 * s, 95.0 * s, 75.0 * s),
                bottom + 0.45 * (hz - bottom),
                LIVER_HU,
            ),
            (
                (60.0 * s, 15.0 * s),
                (85.0 * s, 80.0 * s, 60.0 * s),
                bottom + 0.2 * (hz - bottom),
                self.cfg.blood_hu,
            ),
        )

        # Coronary centrelines for grooves and vessels.
        pts = np.concatenate([p.points for p in _all_paths(anatomy)])
        rad = np.concatenate([p.radii for p in _all_paths(anatomy)])
        self.c_pts = pts
        self.c_rv = rad
        self.c_rg = rad + 3.5
        r_px = math.ceil(float(self.c_rg.max()) / self.px) + 1
        oy, ox = np.mgrid[-r_px : r_px + 1, -r_px : r_px + 1]
        self.st_oy = oy.ravel()
        self.st_ox = ox.ravel()
        self.lung_pts, self.lung_r = _lung_vessels(anatomy, cfg)
        r_px = math.ceil(float(self.lung_r.max()) / self.px) + 1
        oy, ox = np.mgrid[-r_px : r_px + 1, -r_px : r_px + 1]
        self.lung_oy = oy.ravel()
        self.lung_ox = ox.ravel()

    def _splat(
        self,
        shape: tuple[int, ...],
        z: float,
        pts: FloatArray,
        radii: FloatArray,
        stencil: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Pixels of a plane inside the union of spheres (centres ``pts``, ``radii``)."""
        dz = pts[:, 2] - z
        sel = np.abs(dz) < radii
        if not sel.any():
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        g = self.an.grid
        near = pts[sel]
        rho = np.sqrt(np.maximum(radii[sel] ** 2 - dz[sel] ** 2, 0.0))
        oy, ox = stencil
        cols = np.rint((near[:, 0] - g.x_mm[0]) / self.px).astype(np.int64)[:, None] + ox
        rows = np.rint((near[:, 1] - g.y_mm[0]) / self.px).astype(np.int64)[:, None] + oy
        ok = (cols >= 0) & (cols < shape[1]) & (rows >= 0) & (rows < shape[0])
        cols = np.clip(cols, 0, shape[1] - 1)
        rows = np.clip(rows, 0, shape[0] - 1)
        d = np.hypot(g.x_mm[cols] - near[:, 0:1], g.y_mm[rows] - near[:, 1:2])
        inside = ok & (d <= rho[:, None])
        return rows[inside], cols[inside]

    def _tube(
        self,
        plane: npt.NDArray[np.float32],
        z: float,
        start: FloatArray,
        direction: FloatArray,
        radius: float,
        value: float,
        length: float,
    ) -> None:
        """Paint a straight tube (segment start -> start + length * direction) into a plane."""
        end = start + length * direction
        if not min(start[2], end[2]) - radius <= z <= max(start[2], end[2]) + radius:
            return
        dz_total = direction[2]
        t_mid = (z - start[2]) / dz_total if abs(dz_total) > 1e-6 else 0.0
        t_mid = min(max(t_mid, 0.0), length)
        cx, cy = start[0] + t_mid * direction[0], start[1] + t_mid * direction[1]
        reach = radius / max(abs(dz_total), 0.3) + 2.0
        g = self.an.grid
        ix0, ix1 = np.searchsorted(g.x_mm, [cx - reach, cx + reach])
        iy0, iy1 = np.searchsorted(g.y_mm, [cy - reach, cy + reach])
        if ix0 >= ix1 or iy0 >= iy1:
            return
        box = (slice(int(iy0), int(iy1)), slice(int(ix0), int(ix1)))
        px_ = self.xx[box] - start[0]
        py_ = self.yy[box] - start[1]
        pz_ = z - start[2]
        t = np.clip(px_ * direction[0] + py_ * direction[1] + pz_ * direction[2], 0.0, length)
        d2 = (
            (px_ - t * direction[0]) ** 2
            + (py_ - t * direction[1]) ** 2
            + (pz_ - t * direction[2]) ** 2
        )
        plane[box][d2 <= radius * radius] = value

    def _coronary(self, plane: npt.NDArray[np.float32], z: float, fat_inside: Any) -> None:
        """Epicardial fat grooves around, then the vessels along, the coronary centrelines."""
        stencil = (self.st_oy, self.st_ox)
        r_g, c_g = self._splat(plane.shape, z, self.c_pts, self.c_rg, stencil)
        keep = fat_inside[r_g, c_g]
        plane[r_g[keep], c_g[keep]] = self.cfg.fat_hu
        self._root(plane, z)
        r_v, c_v = self._splat(plane.shape, z, self.c_pts, self.c_rv, stencil)
        plane[r_v, c_v] = self.cfg.blood_hu

    def _lung_vessels(self, plane: npt.NDArray[np.float32], z: float) -> None:
        """Pulmonary vessels, drawn only where the plane is still lung."""
        rows, cols = self._splat(
            plane.shape, z, self.lung_pts, self.lung_r, (self.lung_oy, self.lung_ox)
        )
        keep = plane[rows, cols] == np.float32(self.cfg.lung_hu)
        plane[rows[keep], cols[keep]] = self.cfg.blood_hu

    def _root(self, plane: npt.NDArray[np.float32], z: float) -> None:
        an = self.an
        top = an.grid.z_mm[-1] + 20.0
        length = (top - an.root_center[2]) / an.aa_dir[2]
        self._tube(plane, z, an.root_center, an.aa_dir, an.aa_radius, self.cfg.blood_hu, length)
        self._tube(plane, z, an.root_center, an.aa_dir, an.root_radius, self.cfg.blood_hu, 0.0)

    def plane(self, z: float) -> npt.NDArray[np.float32]:
        an = self.an
        plane = self.base.copy()
        # Diaphragm domes under the lungs.
        for (dcx, dcy), (dax, day, daz), top_z, value in self.domes:
            dz = z - (top_z - daz)
            if abs(dz) < daz:
                k = math.sqrt(1.0 - (dz / daz) ** 2)
                dome = _ellipse(self.xx, self.yy, dcx, dcy, dax * k, day * k) <= 1.0
                plane[dome & self.cavity] = value
        fat_inside = np.zeros(plane.shape, dtype=bool)
        dzh = z - self.hz
        if abs(dzh) <= self.heart_zhalf:
            (q0f, linf, azzf), (q0m, linm, azzm) = self.heart_forms
            qf = q0f + linf * np.float32(dzh) + np.float32(azzf * dzh * dzh)
            qm = q0m + linm * np.float32(dzh) + np.float32(azzm * dzh * dzh)
            if any(self.shape):
                unit = np.stack(
                    [
                        part + np.float32(kz * dzh)
                        for part, kz in zip(self.heart_local, self.heart_local_z, strict=True)
                    ]
                ) / np.sqrt(np.maximum(qm, np.float32(1e-6)))
                factor = heart_shape_factor(self.shape, unit).astype(np.float32)
                qf = qf * factor
                qm = qm * factor
            box = plane[self.hbox]
            cav = self.cavity[self.hbox] | (qf <= 1.0)
            box[(qf <= self.pericardium_q) & cav] = PERICARDIUM_HU
            box[(qf <= 1.0)] = self.cfg.fat_hu
            box[qm <= 1.0] = self.cfg.blood_hu
            fat_inside[self.hbox] = qf <= 1.0
        self._tube(
            plane,
            z,
            an.pa_start,
            an.pa_dir,
            an.pa_radius,
            self.cfg.blood_hu,
            (an.grid.z_mm[-1] + 20.0 - an.pa_start[2]) / an.pa_dir[2],
        )
        self._coronary(plane, z, fat_inside)  # grooves, then the aortic root, then vessels
        self._lung_vessels(plane, z)
        # Static overlay: descending aorta, oesophagus, spine and sternum.
        plane[self.overlay_mask] = self.overlay_values
        in_disc = (z - self.disc_z0) % self.disc_period < self.disc_height
        plane[self.vb] = DISC_HU if in_disc else self.vb_values[self.vb]
        # Ribs and costal cartilage.
        r = self.ribs
        t = (z - r.z_of(self.rib_sin, 0)) / r.pitch_mm
        dzr = (t - np.rint(t)) * r.pitch_mm
        norm = (self.rib_dist / r.radial_half_mm) ** 2 + (dzr / r.z_half_mm) ** 2
        inside = norm <= 1.0
        values = np.where(norm > 0.45, self.cortical_hu, self.cancellous_hu)
        values = np.where(self.rib_cartilage, CARTILAGE_HU, values)
        rows, cols = self.rib_idx
        plane[rows[inside], cols[inside]] = values[inside]
        return plane

    def bone_mask(self, z: float) -> npt.NDArray[np.bool_]:
        """Bone (not cartilage) in a plane: for the distractor label map."""
        mask = self.bone2d.copy()
        r = self.ribs
        t = (z - r.z_of(self.rib_sin, 0)) / r.pitch_mm
        dzr = (t - np.rint(t)) * r.pitch_mm
        norm = (self.rib_dist / r.radial_half_mm) ** 2 + (dzr / r.z_half_mm) ** 2
        inside = (norm <= 1.0) & ~self.rib_cartilage
        rows, cols = self.rib_idx
        mask[rows[inside], cols[inside]] = True
        return np.asarray(mask, dtype=bool)


def _uid(cfg: Any, kind: str, what: str) -> str:
    """A deterministic DICOM UID under the 2.25 (UUID) root."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'cac-fhir/{kind}/{cfg!r}/{what}').int}"


def _acquisition(cfg: ChestPhantomConfig, description: str) -> AcquisitionInfo:
    return AcquisitionInfo(
        kvp=cfg.kvp,
        reconstruction_kernel="PHANTOM_GAUSSIAN",
        mass_factor_patient=cfg.mass_factor_mg_per_cm3_hu,
        manufacturer="cac-fhir",
        model="chest phantom",
        study_instance_uid=_uid(cfg, "chest", "study"),
        series_instance_uid=_uid(cfg, "chest", "series"),
        series_description=description,
        acquisition_datetime=datetime(2026, 1, 5, 8, 0, 0) + timedelta(minutes=cfg.seed % 100000),
        patient_position="HFS",
    )


def chest_phantom(config: ChestPhantomConfig | None = None) -> PhantomStudy:
    """Render a non-contrast, ECG-gated cardiac CT study with known coronary calcium.

    Parameters
    ----------
    config
        What to draw; the default configuration when omitted. Identical configs give identical
        arrays.

    Returns
    -------
    PhantomStudy
        ``int16`` volume ``(z, y, x)`` in LPS coordinates, the artery label map of the true
        plaque regions (grown by the blur reach, over every slice the slice profile touches),
        the distractor label map, and the truth scored by :mod:`scoring` on the final image
        restricted to the plaque regions.
    """
    cfg = config if config is not None else ChestPhantomConfig()
    anatomy = _build_anatomy(cfg)
    grid = anatomy.grid
    renderer = _Renderer(anatomy, cfg)
    offsets, weights = subslice_offsets(cfg.slice_thickness_mm)
    shape = grid.shape
    hu = np.empty(shape, dtype=np.float32)
    distractor_labels = np.zeros(shape, dtype=np.uint8)
    for i, z in enumerate(grid.z_mm):
        acc = np.zeros(shape[1:], dtype=np.float32)
        bone = np.zeros(shape[1:], dtype=bool)
        for off, w in zip(offsets, weights, strict=True):
            acc += np.float32(w) * renderer.plane(float(z + off))
            bone |= renderer.bone_mask(float(z + off))
        hu[i] = acc
        distractor_labels[i][bone] = Distractor.BONE

    spread = _spread_mm(cfg)
    plaque_blobs = [_plaque_blob(anatomy, spec) for spec in cfg.plaques]
    distractors = _place_distractors(anatomy, cfg, plaque_blobs, renderer.ribs)
    objects: list[TruthObject] = []
    for item in distractors:
        if composite_blob(hu, item.blob, grid, distractor_labels, int(item.kind), spread):
            objects.append(_truth_object(item.kind.name.lower(), item.kind.name, item.blob))
    plaque_labels = np.zeros(shape, dtype=np.uint8)
    for spec, blob in zip(cfg.plaques, plaque_blobs, strict=True):
        if composite_blob(hu, blob, grid, plaque_labels, spec.artery.code, spread):
            objects.append(_truth_object("plaque", str(spec.artery), blob))

    blur_in_plane(hu, cfg.psf_fwhm_mm, cfg.pixel_spacing_mm)
    if cfg.noise_sd_hu > 0:
        z_sigma = 0.6 * (cfg.slice_thickness_mm / cfg.increment_mm - 1.0)
        hu += correlated_noise(
            shape,
            cfg.noise_sd_hu,
            cfg.psf_fwhm_mm,
            cfg.pixel_spacing_mm,
            z_sigma,
            np.random.default_rng([cfg.seed, 6]),
        )
    volume_hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    del hu

    px = cfg.pixel_spacing_mm
    positions = np.stack(
        [np.full(shape[0], grid.x_mm[0]), np.full(shape[0], grid.y_mm[0]), grid.z_mm], axis=1
    )
    geometry = VolumeGeometry(
        pixel_spacing_mm=(px, px),
        row_direction=(1.0, 0.0, 0.0),
        column_direction=(0.0, 1.0, 0.0),
        slice_positions_mm=positions,
        slice_thickness_mm=cfg.slice_thickness_mm,
        increment_mm=cfg.increment_mm,
    )
    # (0008,103E) Series Description is LO: at most 64 characters.
    kind = " zero-Ca" if cfg.zero_calcium else ""
    description = (
        f"CaSc {cfg.slice_thickness_mm:g}/{cfg.increment_mm:g}mm chest phantom{kind} "
        f"seed {cfg.seed}"
    )[:64]
    volume = CTVolume(hu=volume_hu, geometry=geometry, acquisition=_acquisition(cfg, description))
    truth = score_truth(volume, plaque_labels, tuple(objects), by_artery=True)
    return PhantomStudy(
        volume=volume,
        plaque_labels=plaque_labels,
        distractor_labels=distractor_labels,
        truth=truth,
        config=cfg,
    )


def _truth_object(kind: str, label: str, blob: Blob) -> TruthObject:
    return TruthObject(
        kind=kind,
        label=label,
        center_mm=blob.center_mm,
        radii_mm=blob.radii_mm,
        density_hu=blob.value_hu,
        geometric_volume_mm3=blob.volume_mm3,
    )


__all__ = ["ChestPhantomConfig", "PlaqueSpec", "chest_landmarks", "chest_phantom"]
