"""A third synthetic non-contrast, ECG-gated cardiac CT generator with known truth, written blind.

This generator was written without reading the project's coronary calcium detector or its two
other chest generators (:mod:`phantom.chest`, :mod:`phantom.independent`), from general knowledge
of chest CT anatomy, so that it can serve as a held-out test of whether the detector generalises to
anatomy built differently. Every number below is a simulation choice made for that purpose, not a
clinical measurement or claim.

What is modelled
----------------
- **Body**: a superelliptic trunk (flat back, rounder front) with subcutaneous fat, a muscle layer,
  optional breasts, a thoracic cavity with paravertebral recesses; lungs with a dependent
  (posterior) density gradient and tapering vessels from the hila.
- **Heart from four chambers** in a heart frame whose long axis has an azimuth (from anterior
  toward the patient's left), an elevation (below horizontal) and a roll: a bullet-shaped left
  ventricle with a thick wall, a right ventricle whose cavity is an ellipsoid overwritten by the LV
  wall (so it becomes a crescent in front of the septum), left and right atria, both appendages,
  the right ventricular outflow tract and pulmonary trunk, and an aortic root with three sinuses
  of Valsalva. Blood and myocardium differ by only a few HU (non-contrast).
- **Epicardial fat** fills the space between the myocardium and a pericardial sac defined as a
  *smooth union* of the chambers inflated by a spatially varying thickness: concave creases (the
  interventricular and atrioventricular grooves) fill with thick fat, convex walls get a thin
  layer (about 1 mm over the RV free wall in some patients). The pericardium is a 1-2 mm soft
  tissue shell outside it; paracardiac fat pads sit at the cardiophrenic angles.
- **Coronary tree** traced on the grooves found from the chamber geometry (the LV/RV junction
  curves and the AV ring), each centreline projected onto the level set "lumen radius + fat gap"
  of the distance to all cardiac tissue, so vessels lie in fat beside the muscle: LM (5-15 mm from
  the left sinus), LAD to and sometimes round the apex with 1-3 diagonals, LCX round the left AV
  groove with obtuse marginals, RCA from the right sinus round the right AV groove with acute
  marginals, the posterior descending artery from the RCA (right dominance, about 85 %), the LCX
  (left, about 10 %) or the RCA with a long LCX posterolateral branch (co-dominance), and
  sometimes a ramus intermedius. Lumen radius tapers 2.0 -> 0.8 mm; each vessel has a fat sleeve.
- **Great vessels and mediastinum**: ascending aorta rising right and forward into an arch that is
  in the field of view in some studies only, descending aorta left of the spine, pulmonary trunk
  and arteries, both caval veins, four pulmonary veins, oesophagus (sometimes with air), azygos
  vein, trachea, carina and main bronchi when in range, mediastinal lymph nodes, liver, stomach
  (with a gas cap) and spleen under two diaphragmatic domes.
- **Bone**: vertebrae with cortex and cancellous core, discs, posterior elements and canal; ribs
  of flattened cross-section sloping down to costal cartilage; sternum and xiphoid.
- **Calcium**: coronary plaques (single nodules, eccentric wall crescents, long chains, adjacent
  pairs; 0.5-3 mm, 150-1000 HU, clustered proximally), and the distractors of
  :class:`phantom.study.Distractor`: aortic wall nodules and curved plates (ascending, arch,
  descending), aortic valve cusp nodules and arcs, mitral annulus calcification (C-shaped or full
  ring inside the muscle at the left AV junction), pericardial plates (including over the RV and
  the diaphragmatic surface), calcified lymph nodes (subcarinal, hilar, paratracheal, AP window,
  para-oesophageal; some next to the left atrium or the pulmonary artery) and lung granulomas,
  costal cartilage calcification, and metal (sternal wires and surgical clips) given a true metal
  attenuation before partial volume so that even thin objects read far above 2000 HU.

Image model (own design)
------------------------
Large anatomy (bone included) is painted on a 1.1 mm grid of sub-planes a third of the slice
thickness apart and interpolated to the image grid; small and dense objects (coronary lumens, all
calcium, metal) are painted at the image pixel size on sub-planes 0.3-0.45 mm apart.
Every object is integrated through the slice sensitivity profile, a rectangle of the nominal
thickness convolved with a Gaussian edge (sigma = 0.18 x thickness). The in-plane point spread
function is a Gaussian core with a weak wide halo (6 % weight, 2.5 x the core width), its full
width at half maximum equal to the configured one. Noise is white noise shaped by a
ramp-times-apodisation spectrum ``(f + f0) * MTF_core(f)^2`` in-plane and correlated between
slices by the same slice profile (planes drawn at half the increment), scaled to the configured
standard deviation. Soft tissues: fat -120 to -80 HU, lung -900 to -800, blood and muscle 30-55,
cortical bone 450-1100.

Truth
-----
``plaque_labels`` hold the artery codes (1 LM, 2 LAD, 3 LCX, 4 RCA; side branches count for their
parent; the ramus intermedius carries no plaque) of each plaque's region grown in-plane by the
blur's reach and through the slice profile; ``distractor_labels`` the :class:`Distractor` code of
every distractor's region grown the same way. Plaques are kept clear of every distractor so the
two label maps never overlap: a plaque whose grown region would touch any distractor's
label (bone included) or another artery's plaque is moved elsewhere on its artery or dropped. The
truth is :func:`phantom.study.score_truth` of the final image restricted to ``plaque_labels``, per
artery.

Arrays are ``(z, y, x)`` in LPS patient coordinates (+x patient's left, +y posterior, +z head),
slices ascending in z. Pure numpy/scipy, no file I/O; same configuration, same arrays and truth.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from phantom.errors import PhantomConfigError
from phantom.study import Distractor, PhantomStudy, TruthObject, score_truth
from scoring import AcquisitionInfo, Artery, CTVolume, axial_geometry

FArr = npt.NDArray[np.floating[Any]]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Image matrix (rows = columns).
MATRIX_SIZE = 512
#: Bounds on the number of reconstructed slices.
MIN_SLICES = 35
MAX_SLICES = 75

_AIR_HU = -1000.0
_HU_MIN = -1024
_HU_MAX = 3071
#: Pixel size of the grid that carries the large anatomy (mm) (simulation choice).
_COARSE_PIXEL_MM = 1.1
#: Sigma of the slice profile's Gaussian edge, as a fraction of the slice thickness.
_SSP_EDGE_FRACTION = 0.18
#: Weak wide halo of the in-plane PSF: weight and width relative to the core.
_PSF_HALO_WEIGHT = 0.06
_PSF_HALO_SCALE = 2.5
#: Sub-plane spacing of small dense objects (mm): calcium, and lumens / metal.
_CALCIUM_STEP_MM = 0.3
_SOFT_STEP_MM = 0.45
#: Relative low-frequency floor of the noise power spectrum.
_NPS_FLOOR = 0.15
#: Fraction of the grown profile above which a voxel belongs to an object's label.
_LABEL_FRACTION = 0.01
#: Metal is given whatever true attenuation makes its blurred peak read about this value.
_METAL_TARGET_HU = 3400.0
_METAL_HU_RANGE = (4000.0, 16000.0)

_DOMINANCES = ("right", "left", "co")


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlindConfig:
    """Settings of one blind-phantom study; ``None`` fields are drawn from ``seed``.

    Parameters
    ----------
    seed
        Seeds every random choice (anatomy, coronary tree, plaques, distractors, noise), each from
        its own stream, so for example ``zero_calcium`` does not change the anatomy.
    zero_calcium
        No coronary plaque at all (the truth is zero); distractors are still placed.
    heavy_distractors
        Every distractor kind present and abundant, with little coronary calcium (one or two small
        plaques unless ``zero_calcium``). When ``fov_offset_mm`` is drawn, the field of view is
        moved forward so the sternum and costal cartilages stay in view.
    burden
        Coronary calcium burden, 0-1: number, size and density of plaques (simulation scale; the
        truth category depends on it only statistically).
    slice_thickness_mm
        Nominal slice thickness, 2.0-3.0 mm (2.5 and 3.0 are the usual calcium-scoring values).
    increment_mm
        Slice increment, 0.4-1 x the thickness (``None``: equal to the thickness). Enlarged
        toward the thickness when the heart would otherwise need more than 75 slices.
    pixel_spacing_mm
        In-plane pixel spacing, 0.33-0.5 mm (field of view 170-256 mm on 512 x 512).
    noise_sd_hu
        Standard deviation of the correlated noise, 0-50 HU (10-35 drawn; 0 renders noise-free).
    psf_fwhm_mm
        Full width at half maximum of the in-plane point spread function, 0.6-1.5 mm.
    heart_scale
        Linear size of the heart, 0.8-1.25.
    azimuth_deg, elevation_deg, roll_deg
        Long-axis azimuth in the axial plane from anterior toward the left (25-65 degrees),
        elevation below horizontal (15-50 degrees) and roll about the long axis (-25 to 25).
    heart_offset_mm
        ``(x, y, z)`` shifts, each -15 to 15 mm: lateral from the nominal position, antero-posterior
        within the chest (moving fat from the anterior to the posterior mediastinum), and
        cranio-caudal relative to the diaphragmatic domes.
    patient_size
        0 (slim) to 1 (obese): trunk size and subcutaneous, mediastinal and epicardial fat.
    body_aspect
        Trunk width / depth, 1.25-1.8.
    fov_offset_mm
        ``(x, y)`` offset of the field-of-view centre from the heart centre, each -20 to 20 mm.
    dominance
        Coronary dominance, ``"right"``, ``"left"`` or ``"co"``; drawn 85/10/5 %.
    """

    seed: int = 0
    zero_calcium: bool = False
    heavy_distractors: bool = False
    burden: float | None = None
    slice_thickness_mm: float = 3.0
    increment_mm: float | None = None
    pixel_spacing_mm: float | None = None
    noise_sd_hu: float | None = None
    psf_fwhm_mm: float | None = None
    heart_scale: float | None = None
    azimuth_deg: float | None = None
    elevation_deg: float | None = None
    roll_deg: float | None = None
    heart_offset_mm: tuple[float, float, float] | None = None
    patient_size: float | None = None
    body_aspect: float | None = None
    fov_offset_mm: tuple[float, float] | None = None
    dominance: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise PhantomConfigError(f"seed must be an integer, got {self.seed!r}")
        if int(self.seed) < 0:
            raise PhantomConfigError(f"seed must be >= 0, got {self.seed}")
        for name in ("zero_calcium", "heavy_distractors"):
            if not isinstance(getattr(self, name), bool):
                raise PhantomConfigError(
                    f"{name} must be True or False, got {getattr(self, name)!r}"
                )
        _check_range("slice_thickness_mm", self.slice_thickness_mm, 2.0, 3.0, "mm")
        ranges: dict[str, tuple[float, float, str]] = {
            "burden": (0.0, 1.0, ""),
            "pixel_spacing_mm": (0.33, 0.5, "mm"),
            "noise_sd_hu": (0.0, 50.0, "HU"),
            "psf_fwhm_mm": (0.6, 1.5, "mm"),
            "heart_scale": (0.8, 1.25, ""),
            "azimuth_deg": (25.0, 65.0, "degrees"),
            "elevation_deg": (15.0, 50.0, "degrees"),
            "roll_deg": (-25.0, 25.0, "degrees"),
            "patient_size": (0.0, 1.0, ""),
            "body_aspect": (1.25, 1.8, ""),
        }
        for name, (low, high, unit) in ranges.items():
            value = getattr(self, name)
            if value is not None:
                _check_range(name, value, low, high, unit)
        if self.increment_mm is not None:
            _check_range(
                "increment_mm",
                self.increment_mm,
                0.4 * self.slice_thickness_mm,
                self.slice_thickness_mm,
                "mm (0.4-1 x slice_thickness_mm)",
            )
        _check_vector("heart_offset_mm", self.heart_offset_mm, 3, 15.0)
        _check_vector("fov_offset_mm", self.fov_offset_mm, 2, 20.0)
        if self.dominance is not None and self.dominance not in _DOMINANCES:
            raise PhantomConfigError(
                f"dominance must be one of {list(_DOMINANCES)} or None, got {self.dominance!r}"
            )


def _check_range(name: str, value: object, low: float, high: float, unit: str) -> None:
    """Raise :class:`PhantomConfigError` naming ``name`` unless ``value`` is a number in range."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or not low - 1e-9 <= float(value) <= high + 1e-9:  # type: ignore[arg-type]
        raise PhantomConfigError(
            f"{name} must be {low:g}-{high:g} {unit}".rstrip() + f", got {value!r}"
        )


def _check_vector(name: str, value: object, length: int, bound: float) -> None:
    """Raise :class:`PhantomConfigError` unless ``value`` is None or a tuple of bounded numbers."""
    if value is None:
        return
    if not isinstance(value, tuple | list) or len(value) != length:
        raise PhantomConfigError(f"{name} must be a tuple of {length} numbers, got {value!r}")
    for item in value:
        _check_range(name, item, -bound, bound, "mm (each component)")


@dataclass(frozen=True, slots=True)
class _Resolved:
    """Every scan and anatomy variation of a study, with the ``None`` fields drawn."""

    burden: float
    thickness_mm: float
    increment_mm: float
    pixel_mm: float
    noise_sd_hu: float
    psf_fwhm_mm: float
    heart_scale: float
    azimuth_deg: float
    elevation_deg: float
    roll_deg: float
    heart_offset_mm: tuple[float, float, float]
    patient_size: float
    body_aspect: float
    fov_offset_mm: tuple[float, float]
    dominance: str

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        return {
            k: ([round(float(x), 4) for x in v] if isinstance(v, tuple) else v)
            if not isinstance(v, float)
            else round(v, 4)
            for k, v in record.items()
        }


def _resolve(cfg: BlindConfig) -> _Resolved:
    """Draw every ``None`` field of the configuration from its own stream of ``seed``."""
    rng = _rng(int(cfg.seed), 1)
    draws = rng.random(16)

    def pick(value: float | None, low: float, high: float, index: int) -> float:
        return float(value) if value is not None else low + (high - low) * float(draws[index])

    if cfg.heart_offset_mm is not None:
        offset = tuple(float(v) for v in cfg.heart_offset_mm)
    else:
        offset = tuple(float(v) for v in rng.uniform(-15.0, 15.0, 3))
    if cfg.fov_offset_mm is not None:
        fov = tuple(float(v) for v in cfg.fov_offset_mm)
    else:
        fx, fy = rng.uniform(-20.0, 20.0, 2)
        if cfg.heavy_distractors:
            fy = -abs(fy)
        fov = (float(fx), float(fy))
    if cfg.dominance is not None:
        dominance = cfg.dominance
    else:
        dominance = _DOMINANCES[int(np.searchsorted([0.85, 0.95], float(draws[15]), side="right"))]
    thickness = float(cfg.slice_thickness_mm)
    return _Resolved(
        burden=pick(cfg.burden, 0.0, 1.0, 0),
        thickness_mm=thickness,
        increment_mm=float(cfg.increment_mm) if cfg.increment_mm is not None else thickness,
        pixel_mm=pick(cfg.pixel_spacing_mm, 0.33, 0.5, 1),
        noise_sd_hu=pick(cfg.noise_sd_hu, 10.0, 35.0, 2),
        psf_fwhm_mm=pick(cfg.psf_fwhm_mm, 0.6, 1.5, 3),
        heart_scale=pick(cfg.heart_scale, 0.8, 1.25, 4),
        azimuth_deg=pick(cfg.azimuth_deg, 25.0, 65.0, 5),
        elevation_deg=pick(cfg.elevation_deg, 15.0, 50.0, 6),
        roll_deg=pick(cfg.roll_deg, -25.0, 25.0, 7),
        heart_offset_mm=(offset[0], offset[1], offset[2]),
        patient_size=pick(cfg.patient_size, 0.0, 1.0, 8),
        body_aspect=pick(cfg.body_aspect, 1.25, 1.75, 9),
        fov_offset_mm=(fov[0], fov[1]),
        dominance=dominance,
    )


def blind_suite(n: int = 60, seed: int = 0) -> list[BlindConfig]:
    """A spread of blind-phantom configurations for a held-out evaluation.

    About 15 % zero-calcium and 15 % heavy-distractor studies, the rest calcified with burdens
    stratified over 0-1; slice thickness alternating 2.5 / 3.0 mm, every third study an
    overlapping reconstruction (increment 0.6-0.8 x the thickness); pixel spacing, noise, PSF,
    heart size and orientation, offsets, patient size and aspect stratified across their ranges
    (Latin hypercube); dominance right / left / co in about 85 / 10 / 5 %.

    Parameters
    ----------
    n
        Number of studies (>= 1).
    seed
        Seed of the spread; each study gets its own seed derived from it.

    Returns
    -------
    list of BlindConfig
        Deterministic in ``(n, seed)``.

    Raises
    ------
    PhantomConfigError
        When ``n < 1`` or ``seed < 0``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PhantomConfigError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PhantomConfigError(f"seed must be an integer >= 0, got {seed!r}")
    rng = _rng(seed, 99)
    n_zero = round(0.15 * n)
    n_heavy = round(0.15 * n)
    n_cal = n - n_zero - n_heavy
    roles = np.array(["zero"] * n_zero + ["heavy"] * n_heavy + ["calcified"] * n_cal)
    roles = roles[rng.permutation(n)]

    def strata(count: int) -> F64:
        return np.asarray((rng.permutation(count) + rng.random(count)) / count, dtype=np.float64)

    burdens = strata(max(n_cal, 1))
    n_left = round(0.10 * n)
    n_co = round(0.05 * n)
    dominance = np.array(["left"] * n_left + ["co"] * n_co + ["right"] * (n - n_left - n_co))
    dominance = dominance[rng.permutation(n)]
    unit = {
        name: strata(n)
        for name in (
            "pixel",
            "noise",
            "psf",
            "scale",
            "azimuth",
            "elevation",
            "roll",
            "size",
            "aspect",
            "ox",
            "oy",
            "oz",
            "fx",
            "fy",
        )
    }
    seeds = rng.choice(2**31 - 1, size=n, replace=False)
    out: list[BlindConfig] = []
    cal_index = 0
    for i in range(n):
        thickness = 2.5 if i % 2 == 0 else 3.0
        increment = thickness
        if i % 3 == 2:
            increment = round(thickness * float(rng.uniform(0.6, 0.8)), 1)
        role = str(roles[i])
        if role == "calcified":
            burden = float(burdens[cal_index])
            cal_index += 1
        elif role == "heavy":
            burden = float(rng.uniform(0.0, 0.1))
        else:
            burden = 0.0
        fy = -20.0 + 40.0 * float(unit["fy"][i])
        if role == "heavy":
            fy = -abs(fy)
        out.append(
            BlindConfig(
                seed=int(seeds[i]),
                zero_calcium=role == "zero",
                heavy_distractors=role == "heavy",
                burden=round(burden, 4),
                slice_thickness_mm=thickness,
                increment_mm=increment,
                pixel_spacing_mm=round(0.33 + 0.17 * float(unit["pixel"][i]), 4),
                noise_sd_hu=round(10.0 + 25.0 * float(unit["noise"][i]), 2),
                psf_fwhm_mm=round(0.6 + 0.9 * float(unit["psf"][i]), 3),
                heart_scale=round(0.8 + 0.45 * float(unit["scale"][i]), 4),
                azimuth_deg=round(25.0 + 40.0 * float(unit["azimuth"][i]), 2),
                elevation_deg=round(15.0 + 35.0 * float(unit["elevation"][i]), 2),
                roll_deg=round(-25.0 + 50.0 * float(unit["roll"][i]), 2),
                heart_offset_mm=(
                    round(-15.0 + 30.0 * float(unit["ox"][i]), 2),
                    round(-15.0 + 30.0 * float(unit["oy"][i]), 2),
                    round(-15.0 + 30.0 * float(unit["oz"][i]), 2),
                ),
                patient_size=round(float(unit["size"][i]), 4),
                body_aspect=round(1.25 + 0.5 * float(unit["aspect"][i]), 4),
                fov_offset_mm=(round(-20.0 + 40.0 * float(unit["fx"][i]), 2), round(fy, 2)),
                dominance=str(dominance[i]),
            )
        )
    return out


# ------------------------------------------------------------------------------------------------
# Geometry helpers and signed distance functions (mm; negative inside)
# ------------------------------------------------------------------------------------------------


def _vec(x: float, y: float, z: float) -> F64:
    return np.array([x, y, z], dtype=np.float64)


def _unit(v: F64) -> F64:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-12 else _vec(1.0, 0.0, 0.0)


def _xyz(v: F64) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])


def _perp(v: F64) -> F64:
    """A unit vector perpendicular to ``v``."""
    t = _vec(0.0, 0.0, 1.0) if abs(float(v[2])) < 0.9 else _vec(1.0, 0.0, 0.0)
    return _unit(np.cross(v, t))


def _fa(value: Any) -> FArr:
    """Type the result of a numpy expression on float arrays (the stubs often say ``Any``)."""
    return cast(FArr, value)


def _safe_div(num: FArr, den: FArr, fill: float) -> FArr:
    out = np.full(np.broadcast_shapes(num.shape, den.shape), fill, dtype=num.dtype)
    np.divide(num, den, out=out, where=den > 1e-9)
    return out


def _sd_ellipsoid_local(l1: FArr, l2: FArr, l3: FArr, r: tuple[float, float, float]) -> FArr:
    """First-order distance to an ellipsoid with semi-axes ``r`` in its own frame."""
    s1 = l1 / r[0]
    s2 = l2 / r[1]
    s3 = l3 / r[2]
    q = np.sqrt(s1 * s1 + s2 * s2 + s3 * s3)
    g = np.sqrt((s1 / r[0]) ** 2 + (s2 / r[1]) ** 2 + (s3 / r[2]) ** 2)
    return _fa((q - 1.0) * _safe_div(q, g, min(r)))


def _sd_ellipse2(u: FArr, w: FArr, ru: float, rw: float) -> FArr:
    """First-order distance to an ellipse with semi-axes ``ru``, ``rw`` in its own frame."""
    su = u / ru
    sw = w / rw
    q = np.sqrt(su * su + sw * sw)
    g = np.sqrt((su / ru) ** 2 + (sw / rw) ** 2)
    return _fa((q - 1.0) * _safe_div(q, g, min(ru, rw)))


def _sd_capsule(xg: FArr, yg: FArr, zg: FArr, a: F64, b: F64, ra: float, rb: float) -> FArr:
    """Distance to a segment swept by a radius varying linearly from ``ra`` to ``rb``."""
    ax, ay, az = _xyz(a)
    abx, aby, abz = _xyz(b - a)
    l2 = abx * abx + aby * aby + abz * abz
    px = xg - ax
    py = yg - ay
    pz = zg - az
    if l2 < 1e-12:
        return _fa(np.sqrt(px * px + py * py + pz * pz) - ra)
    t = np.clip((px * abx + py * aby + pz * abz) * (1.0 / l2), 0.0, 1.0)
    dx = px - t * abx
    dy = py - t * aby
    dz = pz - t * abz
    return _fa(np.sqrt(dx * dx + dy * dy + dz * dz) - (ra + t * (rb - ra)))


def _sd_flat_segment(
    xg: FArr, yg: FArr, zg: FArr, a: F64, b: F64, normal: F64, rn: float, rb: float
) -> FArr:
    """Distance to a segment with an elliptical cross-section (semi-axis ``rn`` along
    ``normal``, ``rb`` along the binormal)."""
    ax, ay, az = _xyz(a)
    ab = b - a
    abx, aby, abz = _xyz(ab)
    l2 = max(abx * abx + aby * aby + abz * abz, 1e-12)
    n = _unit(normal - ab * float(np.dot(normal, ab)) / l2)
    bn = _unit(np.cross(ab, n))
    px = xg - ax
    py = yg - ay
    pz = zg - az
    t = np.clip((px * abx + py * aby + pz * abz) * (1.0 / l2), 0.0, 1.0)
    ex = px - t * abx
    ey = py - t * aby
    ez = pz - t * abz
    nx, ny, nz = _xyz(n)
    bx, by, bz = _xyz(bn)
    return _sd_ellipse2(ex * nx + ey * ny + ez * nz, ex * bx + ey * by + ez * bz, rn, rb)


def _smin(a: FArr, b: FArr, k: float) -> FArr:
    """Polynomial smooth minimum (a soft union of two distance fields) of blending width ``k``."""
    h = np.clip(0.5 + (0.5 / k) * (b - a), 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


@dataclass(frozen=True)
class _Ellipsoid:
    """An ellipsoid with arbitrary axes; ``sd`` is its first-order distance field."""

    centre: F64
    axes: F64
    """``(3, 3)``: unit axes as rows."""
    radii: tuple[float, float, float]

    def sd(self, xg: FArr, yg: FArr, zg: FArr) -> FArr:
        cx, cy, cz = _xyz(self.centre)
        dx = xg - cx
        dy = yg - cy
        dz = zg - cz
        local = [dx * float(e[0]) + dy * float(e[1]) + dz * float(e[2]) for e in self.axes]
        return _sd_ellipsoid_local(local[0], local[1], local[2], self.radii)

    def bbox(self, pad: float = 0.0) -> tuple[F64, F64]:
        half = np.sqrt(((np.asarray(self.radii)[:, None] * self.axes) ** 2).sum(axis=0)) + pad
        return self.centre - half, self.centre + half

    @property
    def volume_mm3(self) -> float:
        return 4.0 / 3.0 * math.pi * self.radii[0] * self.radii[1] * self.radii[2]


def _frame_from(direction: F64) -> F64:
    """Orthonormal rows: ``direction`` then two perpendiculars."""
    d = _unit(direction)
    e1 = _perp(d)
    return np.stack([d, e1, np.cross(d, e1)])


def _axis_ellipsoid(centre: F64, radii: tuple[float, float, float]) -> _Ellipsoid:
    return _Ellipsoid(centre, np.eye(3), radii)


@dataclass(frozen=True)
class _Capsule:
    """A segment swept by a linearly varying radius (vessels, outflow tracts, bone processes)."""

    a: F64
    b: F64
    ra: float
    rb: float

    def sd(self, xg: FArr, yg: FArr, zg: FArr) -> FArr:
        return _sd_capsule(xg, yg, zg, self.a, self.b, self.ra, self.rb)

    def bbox(self, pad: float = 0.0) -> tuple[F64, F64]:
        r = max(self.ra, self.rb) + pad
        return np.minimum(self.a, self.b) - r, np.maximum(self.a, self.b) + r


def _spline_path(control: F64, step_mm: float) -> F64:
    """Cubic spline through control points (chord-length parameter), resampled by arc length."""
    pts = np.asarray(control, dtype=np.float64)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6])
    pts = pts[keep]
    if len(pts) < 2:
        return np.asarray(pts, dtype=np.float64)
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    if len(pts) == 2:
        dense = pts[0] + (pts[1] - pts[0]) * np.linspace(0, 1, 50)[:, None]
    else:
        spline = CubicSpline(chord, pts, axis=0, bc_type="natural")
        dense = spline(np.linspace(0.0, chord[-1], max(20, int(chord[-1] / 0.25))))
    return _resample(np.asarray(dense, dtype=np.float64), step_mm)


def _resample(pts: F64, step_mm: float) -> F64:
    """Resample a polyline at (nearly) equal arc-length steps."""
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] < step_mm:
        return pts[[0, -1]]
    n = max(2, round(s[-1] / step_mm) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, pts[:, i]) for i in range(3)], axis=1)


def _arclength(pts: F64) -> F64:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])


def _smooth_path(pts: F64, passes: int, keep_start: int = 1) -> F64:
    """Smooth a polyline with ``passes`` of a [1, 2, 1] filter, keeping its ends."""
    out = pts.copy()
    for _ in range(passes):
        inner = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
        out[max(1, keep_start) : -1] = inner[max(1, keep_start) - 1 :]
    return out


def _numeric_gradient(sdf: Callable[[F64], F64], pts: F64, h: float = 0.3) -> F64:
    """Central-difference gradient of a point distance function."""
    grads = []
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        grads.append((sdf(pts + e) - sdf(pts - e)) / (2.0 * h))
    return np.stack(grads, axis=1)


def _project_to_level(pts: F64, target: F64, sdf: Callable[[F64], F64], iterations: int = 6) -> F64:
    """Move points along the distance gradient until ``sdf == target`` (Newton steps)."""
    p = pts.copy()
    h = 0.3
    for _ in range(iterations):
        d = sdf(p)
        g = np.stack([(sdf(p + h * np.eye(3)[i]) - d) / h for i in range(3)], axis=1)
        g2 = np.maximum((g * g).sum(axis=1), 1e-6)
        step = ((target - d) / g2)[:, None] * g
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step = np.where(norm > 4.0, step * 4.0 / np.maximum(norm, 1e-9), step)
        p = p + step
    return p


def _points_sdf(fn: Callable[[FArr, FArr, FArr], FArr]) -> Callable[[F64], F64]:
    """Adapt a grid distance function to ``(n, 3)`` point arrays."""

    def wrapped(p: F64) -> F64:
        return np.asarray(fn(p[:, 0], p[:, 1], p[:, 2]), dtype=np.float64)

    return wrapped


# ------------------------------------------------------------------------------------------------
# Scan geometry, slice profile and canvases
# ------------------------------------------------------------------------------------------------


def _ssp_cdf(t: F64, thickness: float, sigma: float) -> F64:
    """Integral of the slice sensitivity profile (rectangle * Gaussian edge) up to ``t``."""

    def psi(x: F64) -> F64:
        return np.asarray(
            x * ndtr(x / sigma) + sigma * np.exp(-0.5 * (x / sigma) ** 2) / math.sqrt(2 * math.pi),
            dtype=np.float64,
        )

    return (psi(t + thickness / 2.0) - psi(t - thickness / 2.0)) / thickness


def _ssp_pdf(t: F64, thickness: float, sigma: float) -> F64:
    """The slice sensitivity profile (rectangle * Gaussian edge), per mm."""
    return np.asarray(
        (ndtr((t + thickness / 2.0) / sigma) - ndtr((t - thickness / 2.0) / sigma)) / thickness,
        dtype=np.float64,
    )


def _ssp_weights(z_out: F64, z_cells: F64, cell_mm: float, thickness: float, sigma: float) -> F64:
    """``(n_out, n_cells)``: weight of each sub-plane slab in each reconstructed slice."""
    dt = z_cells[None, :] - z_out[:, None]
    return _ssp_cdf(dt + cell_mm / 2.0, thickness, sigma) - _ssp_cdf(
        dt - cell_mm / 2.0, thickness, sigma
    )


@dataclass(frozen=True)
class _Scan:
    """The reconstructed image grid: pixel centres (mm), slice centres, profile and PSF widths."""

    px: float
    x_mm: F64
    y_mm: F64
    z_mm: F64
    thickness_mm: float
    increment_mm: float
    ssp_sigma_mm: float
    psf_core_sigma_mm: float
    margin_above_mm: float
    margin_below_mm: float

    @property
    def support_mm(self) -> float:
        return self.thickness_mm / 2.0 + 4.0 * self.ssp_sigma_mm

    @property
    def reach_mm(self) -> float:
        """In-plane growth of labels: the blur's reach."""
        return (
            max(3.0 * self.psf_core_sigma_mm, 1.2 * _PSF_HALO_SCALE * self.psf_core_sigma_mm)
            + self.px
        )

    @property
    def metal_reach_mm(self) -> float:
        return 2.5 * _PSF_HALO_SCALE * self.psf_core_sigma_mm + 2.0 * self.px

    def contains(self, p: F64, margin_xy: float = 3.0, margin_z: float = 0.0) -> bool:
        x, y, z = _xyz(p)
        return bool(
            self.x_mm[0] + margin_xy <= x <= self.x_mm[-1] - margin_xy
            and self.y_mm[0] + margin_xy <= y <= self.y_mm[-1] - margin_xy
            and self.z_mm[0] + margin_z <= z <= self.z_mm[-1] - margin_z
        )


@dataclass(frozen=True)
class _Win:
    """A box of a canvas: its slices and broadcastable coordinate arrays ``zg, yg, xg`` (mm)."""

    sl: tuple[slice, slice, slice]
    zg: F32
    yg: F32
    xg: F32

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.zg.shape[0], self.yg.shape[1], self.xg.shape[2])

    def sub(self, lo: F64, hi: F64) -> tuple[tuple[slice, slice, slice], _Win] | None:
        z0, z1 = np.searchsorted(self.zg[:, 0, 0], [lo[2], hi[2]], side="left")
        y0, y1 = np.searchsorted(self.yg[0, :, 0], [lo[1], hi[1]], side="left")
        x0, x1 = np.searchsorted(self.xg[0, 0, :], [lo[0], hi[0]], side="left")
        z1, y1, x1 = (
            min(z1 + 1, self.shape[0]),
            min(y1 + 1, self.shape[1]),
            min(x1 + 1, self.shape[2]),
        )
        if z1 <= z0 or y1 <= y0 or x1 <= x0:
            return None
        rel = (slice(int(z0), int(z1)), slice(int(y0), int(y1)), slice(int(x0), int(x1)))
        absolute = tuple(
            slice(o.start + r.start, o.start + r.stop) for o, r in zip(self.sl, rel, strict=True)
        )
        return rel, _Win(
            (absolute[0], absolute[1], absolute[2]),
            self.zg[rel[0]],
            self.yg[:, rel[1]],
            self.xg[:, :, rel[2]],
        )


def _window(xs: F64, ys: F64, zs: F64, lo: F64, hi: F64) -> _Win | None:
    """The canvas box covering ``lo``-``hi`` (mm), or None when it misses the canvas."""
    x0, x1 = np.searchsorted(xs, [lo[0], hi[0]], side="left")
    y0, y1 = np.searchsorted(ys, [lo[1], hi[1]], side="left")
    z0, z1 = np.searchsorted(zs, [lo[2], hi[2]], side="left")
    x1, y1, z1 = min(x1 + 1, len(xs)), min(y1 + 1, len(ys)), min(z1 + 1, len(zs))
    if x1 <= x0 or y1 <= y0 or z1 <= z0:
        return None
    return _Win(
        (slice(int(z0), int(z1)), slice(int(y0), int(y1)), slice(int(x0), int(x1))),
        zs[z0:z1].astype(np.float32)[:, None, None],
        ys[y0:y1].astype(np.float32)[None, :, None],
        xs[x0:x1].astype(np.float32)[None, None, :],
    )


class _Coarse:
    """The large anatomy: HU on thin sub-planes of a ~1.1 mm grid, plus a grown bone indicator."""

    def __init__(self, scan: _Scan) -> None:
        p = _COARSE_PIXEL_MM
        self.pixel_mm = p
        self.step_mm = scan.thickness_mm / 3.0
        self.x = np.arange(scan.x_mm[0] - 1.5 * p, scan.x_mm[-1] + 2.0 * p, p)
        self.y = np.arange(scan.y_mm[0] - 1.5 * p, scan.y_mm[-1] + 2.0 * p, p)
        lo = scan.z_mm[0] - scan.support_mm - self.step_mm
        hi = scan.z_mm[-1] + scan.support_mm + self.step_mm
        self.z = np.arange(lo, hi + 0.5 * self.step_mm, self.step_mm)
        shape = (len(self.z), len(self.y), len(self.x))
        self.hu = np.full(shape, _AIR_HU, dtype=np.float32)
        self.bone = np.zeros(shape, dtype=np.float32)
        self.reach_mm = scan.reach_mm

    def window(self, lo: F64, hi: F64) -> _Win | None:
        pad = self.pixel_mm
        return _window(self.x, self.y, self.z, lo - pad, hi + pad)

    def composite(self, win: _Win, d: FArr, value: float | FArr, bone: bool = False) -> None:
        """Paint ``value`` over the window where the distance ``d`` is negative, with a one-pixel
        partial-volume ramp; ``bone`` also marks the region grown by the blur reach as bone."""
        inv = 1.0 / self.pixel_mm
        f = np.clip(0.5 - d * inv, 0.0, 1.0).astype(np.float32, copy=False)
        region = self.hu[win.sl]
        region += f * (value - region)
        if bone:
            g = np.clip(0.5 - (d - self.reach_mm) * inv, 0.0, 1.0).astype(np.float32, copy=False)
            np.maximum(self.bone[win.sl], g, out=self.bone[win.sl])

    def paint(
        self,
        lo: F64,
        hi: F64,
        sdf: Callable[[FArr, FArr, FArr], FArr],
        value: float | Callable[[_Win, FArr], FArr],
        bone: bool = False,
    ) -> None:
        win = self.window(lo, hi)
        if win is None:
            return
        d = sdf(win.xg, win.yg, win.zg)
        val: float | FArr = value(win, d) if callable(value) else value
        self.composite(win, d, val, bone)

    def paint_tube(
        self,
        pts: F64,
        radii: F64 | float,
        value: float,
        *,
        chunk: int = 4,
        clip: Callable[[FArr, FArr, FArr], FArr] | None = None,
    ) -> None:
        r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(pts),))
        for start in range(0, len(pts) - 1, chunk):
            stop = min(start + chunk, len(pts) - 1)
            seg = pts[start : stop + 1]
            rmax = float(r[start : stop + 1].max())
            win = self.window(seg.min(axis=0) - rmax, seg.max(axis=0) + rmax)
            if win is None:
                continue
            d: FArr | None = None
            for i in range(start, stop):
                di = _sd_capsule(
                    win.xg, win.yg, win.zg, pts[i], pts[i + 1], float(r[i]), float(r[i + 1])
                )
                d = di if d is None else np.minimum(d, di)
            assert d is not None
            if clip is not None:
                d = np.maximum(d, clip(win.xg, win.yg, win.zg))
            self.composite(win, d, value)

    def paint_ztube(
        self,
        pts: F64,
        radii: F64 | float,
        value: float,
        *,
        semi: tuple[float, float] | None = None,
        bone: bool = False,
    ) -> None:
        """A tube whose path rises monotonically in z, painted plane by plane (cross-section
        corrected for tilt; ``semi`` gives an axis-aligned elliptical section instead)."""
        order = np.argsort(pts[:, 2])
        p = pts[order]
        r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(pts),))[order]
        zmask = (self.z >= p[0, 2]) & (self.z <= p[-1, 2])
        if not zmask.any():
            return
        zs = self.z[zmask]
        cx = np.interp(zs, p[:, 2], p[:, 0])
        cy = np.interp(zs, p[:, 2], p[:, 1])
        rr = np.interp(zs, p[:, 2], r)
        gx = np.gradient(cx, zs) if len(zs) > 1 else np.zeros_like(zs)
        gy = np.gradient(cy, zs) if len(zs) > 1 else np.zeros_like(zs)
        tan2 = gx * gx + gy * gy
        cos_t = 1.0 / np.sqrt(1.0 + tan2)
        ext = rr / cos_t if semi is None else np.full_like(rr, max(semi))
        lo = _vec(float((cx - ext).min()), float((cy - ext).min()), float(zs[0]))
        hi = _vec(float((cx + ext).max()), float((cy + ext).max()), float(zs[-1]))
        win = self.window(lo, hi)
        if win is None:
            return
        zsel = np.searchsorted(zs, win.zg[:, 0, 0].astype(np.float64) - 1e-6)
        zsel = np.clip(zsel, 0, len(zs) - 1)
        f32 = np.float32
        ccx = cx[zsel].astype(f32)[:, None, None]
        ccy = cy[zsel].astype(f32)[:, None, None]
        ex = win.xg - ccx
        ey = win.yg - ccy
        if semi is None:
            tn = np.sqrt(np.maximum(tan2[zsel], 1e-12))
            tx = np.where(tan2[zsel] > 1e-12, gx[zsel] / tn, 1.0).astype(f32)[:, None, None]
            ty = np.where(tan2[zsel] > 1e-12, gy[zsel] / tn, 0.0).astype(f32)[:, None, None]
            ct = cos_t[zsel].astype(f32)[:, None, None]
            par = (ex * tx + ey * ty) * ct
            perp = ey * tx - ex * ty
            d = np.sqrt(par * par + perp * perp) - rr[zsel].astype(f32)[:, None, None]
        else:
            d = _sd_ellipse2(ex, ey, semi[0], semi[1])
        inside_z = (win.zg >= f32(zs[0])) & (win.zg <= f32(zs[-1]))
        d = np.where(inside_z, d, f32(1e3))
        self.composite(win, d, value, bone)


class _Fine:
    """Small dense objects rendered at the pixel size and integrated through the slice profile."""

    def __init__(self, scan: _Scan, volume: F32) -> None:
        self.scan = scan
        self.volume = volume

    def splat(
        self,
        lo: F64,
        hi: F64,
        sdf: Callable[[FArr, FArr, FArr], FArr],
        step_mm: float,
        reach_mm: float,
    ) -> _Splat | None:
        scan = self.scan
        px = scan.px
        pad = reach_mm + 2.0 * px
        xs, ys, z_out = scan.x_mm, scan.y_mm, scan.z_mm
        x0, x1 = np.searchsorted(xs, [lo[0] - pad, hi[0] + pad])
        y0, y1 = np.searchsorted(ys, [lo[1] - pad, hi[1] + pad])
        zl = float(lo[2]) - reach_mm - px
        zh = float(hi[2]) + reach_mm + px
        k0, k1 = np.searchsorted(z_out, [zl - scan.support_mm, zh + scan.support_mm])
        if x1 <= x0 or y1 <= y0 or k1 <= k0:
            return None
        origin = float(z_out[0])
        j0 = math.floor((zl - origin) / step_mm)
        j1 = math.ceil((zh - origin) / step_mm)
        z_sub = np.asarray(origin + step_mm * np.arange(j0, j1 + 1), dtype=np.float64)
        weights = _ssp_weights(z_out[k0:k1], z_sub, step_mm, scan.thickness_mm, scan.ssp_sigma_mm)
        w32 = weights.astype(np.float32)
        zg = z_sub.astype(np.float32)[:, None, None]
        yg = ys[y0:y1].astype(np.float32)[None, :, None]
        xg = xs[x0:x1].astype(np.float32)[None, None, :]
        d = sdf(xg, yg, zg)
        frac = np.clip(0.5 - d * (1.0 / px), 0.0, 1.0).astype(np.float32)
        inside = (d <= reach_mm).astype(np.float32)
        ns = len(z_sub)
        shape = (int(k1 - k0), int(y1 - y0), int(x1 - x0))
        fraction = (w32 @ frac.reshape(ns, -1)).reshape(shape)
        grown = (w32 @ inside.reshape(ns, -1)).reshape(shape)
        sl = (slice(int(k0), int(k1)), slice(int(y0), int(y1)), slice(int(x0), int(x1)))
        return _Splat(sl, fraction, grown)

    def composite(self, sp: _Splat, value: float) -> None:
        region = self.volume[sp.sl]
        region += sp.fraction * (np.float32(value) - region)


@dataclass(frozen=True)
class _Splat:
    """One small object integrated through the slice profile on its box of the image grid."""

    sl: tuple[slice, slice, slice]
    fraction: F32
    """Slice-profile-weighted fraction of the object in each voxel."""
    grown: F32
    """The same for the object grown by the blur reach (label region where > 1 %)."""

    @property
    def peak_fraction(self) -> float:
        return float(self.fraction.max()) if self.fraction.size else 0.0


# ------------------------------------------------------------------------------------------------
# Tissues
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tissues:
    """The HU of each tissue in one study (drawn; see :func:`_draw_tissues`)."""

    fat: float
    epicardial_fat: float
    muscle: float
    myocardium: float
    blood: float
    pericardium: float
    lung: float
    lung_gradient: float
    liver: float
    spleen: float
    stomach: float
    cortex: float
    cancellous: float
    cartilage: float
    disc: float
    csf: float
    gland: float
    wall: float
    """Coronary lumen and wall (blood and vessel wall averaged)."""


def _draw_tissues(rng: np.random.Generator) -> _Tissues:
    """Tissue attenuations of one study (simulation choices: fat -118 to -85 HU, lung -895 to
    -835 plus a dependent gradient, myocardium 38-52, blood a few HU lower, cortex 450-1100)."""
    fat = float(rng.uniform(-118.0, -85.0))
    myocardium = float(rng.uniform(38.0, 52.0))
    blood = max(30.0, myocardium - float(rng.uniform(2.0, 9.0)))
    return _Tissues(
        fat=fat,
        epicardial_fat=float(np.clip(fat + rng.uniform(-4.0, 6.0), -120.0, -80.0)),
        muscle=float(rng.uniform(40.0, 55.0)),
        myocardium=myocardium,
        blood=blood,
        pericardium=float(rng.uniform(15.0, 35.0)),
        lung=float(rng.uniform(-895.0, -835.0)),
        lung_gradient=float(rng.uniform(10.0, 35.0)),
        liver=float(rng.uniform(50.0, 65.0)),
        spleen=float(rng.uniform(40.0, 52.0)),
        stomach=float(rng.uniform(8.0, 30.0)),
        cortex=float(rng.uniform(450.0, 1100.0)),
        cancellous=float(rng.uniform(120.0, 280.0)),
        cartilage=float(rng.uniform(60.0, 115.0)),
        disc=float(rng.uniform(60.0, 90.0)),
        csf=float(rng.uniform(0.0, 15.0)),
        gland=float(rng.uniform(10.0, 40.0)),
        wall=min(blood + float(rng.uniform(0.0, 6.0)), 55.0),
    )


# ------------------------------------------------------------------------------------------------
# The heart
# ------------------------------------------------------------------------------------------------

_HEART_PARTS = ("ra", "raa", "la", "laa", "rv", "rvot", "lv", "root", "pa")


@dataclass(frozen=True)
class _Root:
    """The aortic root: annulus, axis, sinus-of-Valsalva lobes and the two coronary ostia."""

    annulus: F64
    axis: F64
    r_annulus: float
    stj: F64
    r_stj: float
    sinuses: tuple[_Ellipsoid, _Ellipsoid, _Ellipsoid]
    """Right (anterior) coronary, left coronary and non-coronary sinus."""
    sinus_dirs: F64
    """``(3, 3)`` unit radial directions of the three sinuses."""
    ostium_left: F64
    ostium_right: F64

    def sd(self, xg: FArr, yg: FArr, zg: FArr) -> FArr:
        d = _sd_capsule(
            xg, yg, zg, self.annulus - 3.0 * self.axis, self.stj, self.r_annulus, self.r_stj
        )
        for sinus in self.sinuses:
            d = np.minimum(d, sinus.sd(xg, yg, zg))
        return d

    def bbox(self, pad: float) -> tuple[F64, F64]:
        r = max(self.r_annulus, self.r_stj) * 1.3 + pad
        lo = np.minimum(self.annulus, self.stj) - r
        hi = np.maximum(self.annulus, self.stj) + r
        return lo, hi


@dataclass(frozen=True)
class _Heart:
    """The heart in its own frame ``(a, b, c)``: ``a`` along the long axis from the base toward the
    apex, ``b`` toward the right ventricle, ``c`` completing the frame (superior and anterior
    when the roll is zero: the anterior interventricular groove lies on the ``c > 0`` side).
    Chambers, outflow tracts and root as distance fields."""

    origin: F64
    u: F64
    v: F64
    w: F64
    scale: float
    lv_r0: float
    lv_r: float
    lv_aeq: float
    lv_len: float
    lv_wall: float
    lv_apex_wall: float
    rv_centre: tuple[float, float, float]
    rv_radii: tuple[float, float, float]
    rv_wall: float
    la: _Ellipsoid
    ra: _Ellipsoid
    laa: _Ellipsoid
    raa: _Ellipsoid
    rvot: _Capsule
    pa: _Capsule
    root: _Root
    a_ring: float
    hull_k: float
    fat_t0: float
    fat_av: float
    fat_apex: float
    fat_rv_thin: float
    fat_mod: tuple[float, float, float]
    peri_t: float
    mitral_centre: F64
    mitral_radius: float
    channels: tuple[_Capsule, ...] = ()
    """Fat channels carved out of every chamber but the root where the LM and RCA leave their
    sinuses (the artery's first millimetres run in fat, not through the RV or an appendage)."""

    # -- frames
    def local(self, xg: FArr, yg: FArr, zg: FArr) -> tuple[FArr, FArr, FArr]:
        ox, oy, oz = _xyz(self.origin)
        dx = xg - ox
        dy = yg - oy
        dz = zg - oz
        out = []
        for e in (self.u, self.v, self.w):
            out.append(dx * float(e[0]) + dy * float(e[1]) + dz * float(e[2]))
        return out[0], out[1], out[2]

    def to_patient(self, a: FArr | float, b: FArr | float, c: FArr | float) -> F64:
        a_ = np.atleast_1d(np.asarray(a, dtype=np.float64))
        b_ = np.atleast_1d(np.asarray(b, dtype=np.float64))
        c_ = np.atleast_1d(np.asarray(c, dtype=np.float64))
        a_, b_, c_ = np.broadcast_arrays(a_, b_, c_)
        return np.asarray(
            self.origin + a_[:, None] * self.u + b_[:, None] * self.v + c_[:, None] * self.w,
            dtype=np.float64,
        )

    def point(self, a: float, b: float, c: float) -> F64:
        return np.asarray(self.to_patient(a, b, c)[0], dtype=np.float64)

    # -- ventricles in the heart frame
    def lv_radius(self, a: F64) -> F64:
        a = np.asarray(a, dtype=np.float64)
        cap = self.lv_len - self.lv_aeq
        t = np.clip(a / self.lv_aeq, 0.0, 1.0)
        cyl = self.lv_r0 + (self.lv_r - self.lv_r0) * t
        s = np.clip((a - self.lv_aeq) / cap, 0.0, 1.0)
        capped = self.lv_r * np.sqrt(np.maximum(1.0 - s * s, 0.0))
        return np.where(a > self.lv_aeq, capped, cyl)

    def _bullet(self, ha: FArr, hb: FArr, hc: FArr, cavity: bool) -> FArr:
        if cavity:
            r0, r, length, cut = (
                self.lv_r0 - 0.9 * self.lv_wall,
                self.lv_r - self.lv_wall,
                self.lv_len - self.lv_apex_wall,
                1.5,
            )
        else:
            r0, r, length, cut = self.lv_r0, self.lv_r, self.lv_len, 0.0
        a_eq = self.lv_aeq
        cap = length - a_eq
        rho = np.sqrt(hb * hb + hc * hc)
        t = np.clip(ha * (1.0 / a_eq), 0.0, 1.0)
        d_cyl = rho - (r0 + (r - r0) * t)
        sa = (ha - a_eq) * (1.0 / cap)
        sr = rho * (1.0 / r)
        q = np.sqrt(sa * sa + sr * sr)
        g = np.sqrt((sa * (1.0 / cap)) ** 2 + (sr * (1.0 / r)) ** 2)
        d_cap = (q - 1.0) * _safe_div(q, g, r)
        d = np.where(ha > a_eq, d_cap, d_cyl)
        return _fa(np.maximum(d, -(ha + cut)))

    def _rv(self, ha: FArr, hb: FArr, hc: FArr, cavity: bool) -> FArr:
        ca, cb, cc = self.rv_centre
        ra, rb, rc = self.rv_radii
        if cavity:
            ra, rb, rc = ra - self.rv_wall, rb - self.rv_wall, rc - self.rv_wall
        d = _sd_ellipsoid_local(ha - ca, hb - cb, hc - cc, (ra, rb, rc))
        return _fa(np.maximum(d, -(ha + (3.0 if cavity else 2.0))))

    def part_sd(
        self, name: str, xg: FArr, yg: FArr, zg: FArr, ha: FArr, hb: FArr, hc: FArr
    ) -> FArr:
        d = self._part_sd(name, xg, yg, zg, ha, hb, hc)
        if name == "root":
            return d
        for channel in self.channels:
            lo, hi = channel.bbox(1.0)
            if (
                float(np.min(xg)) > hi[0]
                or float(np.max(xg)) < lo[0]
                or float(np.min(yg)) > hi[1]
                or float(np.max(yg)) < lo[1]
                or float(np.min(zg)) > hi[2]
                or float(np.max(zg)) < lo[2]
            ):
                continue
            d = np.maximum(d, -channel.sd(xg, yg, zg))
        return d

    def _part_sd(
        self, name: str, xg: FArr, yg: FArr, zg: FArr, ha: FArr, hb: FArr, hc: FArr
    ) -> FArr:
        if name == "lv":
            return self._bullet(ha, hb, hc, cavity=False)
        if name == "rv":
            return self._rv(ha, hb, hc, cavity=False)
        if name == "rvot":
            return self.rvot.sd(xg, yg, zg)
        if name == "pa":
            return self.pa.sd(xg, yg, zg)
        if name == "root":
            return self.root.sd(xg, yg, zg)
        ellipsoid: _Ellipsoid = getattr(self, name)
        return ellipsoid.sd(xg, yg, zg)

    def part_bbox(self, name: str, pad: float) -> tuple[F64, F64]:
        if name in ("lv", "rv"):
            pts = self._ventricle_samples(name)
            return pts.min(axis=0) - pad, pts.max(axis=0) + pad
        if name == "root":
            return self.root.bbox(pad)
        shape: _Ellipsoid | _Capsule = getattr(self, name)
        return shape.bbox(pad)

    def _ventricle_samples(self, name: str) -> F64:
        th = np.linspace(-math.pi, math.pi, 25)
        if name == "lv":
            a = np.linspace(-1.0, self.lv_len, 24)
            rho = self.lv_radius(a)
            aa, tt = np.meshgrid(a, th, indexing="ij")
            rr = np.repeat(rho[:, None], len(th), axis=1)
            return self.to_patient(aa.ravel(), (rr * np.cos(tt)).ravel(), (rr * np.sin(tt)).ravel())
        ca, cb, cc = self.rv_centre
        ra, rb, rc = self.rv_radii
        ph = np.linspace(-math.pi / 2, math.pi / 2, 13)
        pp, tt = np.meshgrid(ph, th, indexing="ij")
        a = ca + ra * np.sin(pp)
        a = np.maximum(a, -2.0)
        return self.to_patient(
            a.ravel(),
            (cb + rb * np.cos(pp) * np.cos(tt)).ravel(),
            (cc + rc * np.cos(pp) * np.sin(tt)).ravel(),
        )

    def samples(self, parts: Sequence[str] = _HEART_PARTS) -> F64:
        """Points on (or bounding) the chambers, for extents."""
        out = []
        for name in parts:
            if name in ("lv", "rv"):
                out.append(self._ventricle_samples(name))
            else:
                lo, hi = self.part_bbox(name, 0.0)
                if name in ("la", "ra", "laa", "raa"):
                    e: _Ellipsoid = getattr(self, name)
                    g = np.array(
                        [
                            [i, j, k]
                            for i in (-1, 0, 1)
                            for j in (-1, 0, 1)
                            for k in (-1, 0, 1)
                            if i or j or k
                        ],
                        dtype=np.float64,
                    )
                    g = g / np.linalg.norm(g, axis=1, keepdims=True)
                    out.append(e.centre + (g * np.asarray(e.radii)) @ e.axes)
                else:
                    out.append(np.stack([lo, hi]))
        return np.concatenate(out)

    # -- whole-heart fields
    def tissue_sd(self, xg: FArr, yg: FArr, zg: FArr) -> FArr:
        ha, hb, hc = self.local(xg, yg, zg)
        d = self.part_sd(_HEART_PARTS[0], xg, yg, zg, ha, hb, hc)
        for name in _HEART_PARTS[1:]:
            d = np.minimum(d, self.part_sd(name, xg, yg, zg, ha, hb, hc))
        return d

    def hull_sd(self, xg: FArr, yg: FArr, zg: FArr) -> FArr:
        ha, hb, hc = self.local(xg, yg, zg)
        d = self.part_sd(_HEART_PARTS[0], xg, yg, zg, ha, hb, hc)
        for name in _HEART_PARTS[1:]:
            d = _smin(d, self.part_sd(name, xg, yg, zg, ha, hb, hc), self.hull_k)
        return d

    def fat_thickness(self, ha: FArr, hb: FArr, hc: FArr) -> FArr:
        """Epicardial fat beyond the smoothed chamber hull (mm): a base layer, thicker round the
        AV ring and toward the apex, thinner over the LV lateral wall and (in some patients) over
        the RV free wall, with lumpy low-frequency variation."""
        ring = np.exp(-(((ha - self.a_ring) * (1.0 / 9.0)) ** 2))
        apex = np.clip((ha - 0.65 * self.lv_len) * (1.0 / (0.35 * self.lv_len)), 0.0, 1.0)
        rv_free = np.clip((hb - 0.9 * self.lv_r) * (1.0 / 15.0), 0.0, 1.0) * (1.0 - ring)
        lateral = np.clip((-hb - 0.4 * self.lv_r) * (1.0 / 12.0), 0.0, 1.0) * (1.0 - ring)
        amp, p1, p2 = self.fat_mod
        mod = amp * (
            np.cos(ha * (1.0 / 11.0) + p1) * np.cos(hc * (1.0 / 9.0) + p2)
            + 0.6 * np.cos(hb * (1.0 / 7.0) + p2) * np.cos(ha * (1.0 / 23.0) - p1)
        )
        t = (
            self.fat_t0 * (1.0 - 0.6 * lateral)
            + self.fat_av * ring
            + self.fat_apex * apex
            - self.fat_rv_thin * rv_free
            + mod
        )
        return _fa(np.maximum(t, 0.4))

    def sac_sd(self, xg: FArr, yg: FArr, zg: FArr) -> FArr:
        ha, hb, hc = self.local(xg, yg, zg)
        return self.hull_sd(xg, yg, zg) - self.fat_thickness(ha, hb, hc)

    # -- ventricle surfaces along rays from the LV axis
    def rv_ray(self, a: F64, theta: F64) -> F64:
        ca, cb, cc = self.rv_centre
        ra, rb, rc = self.rv_radii
        s = np.clip((a - ca) / ra, -1.0, 1.0)
        f = np.sqrt(np.maximum(1.0 - s * s, 0.0))
        f = np.where(a < -2.0, 0.0, f)
        bb = np.maximum(rb * f, 1e-3)
        cc_ = np.maximum(rc * f, 1e-3)
        co, si = np.cos(theta), np.sin(theta)
        qa = co * co / (bb * bb) + si * si / (cc_ * cc_)
        qb = -2.0 * (co * cb / (bb * bb) + si * cc / (cc_ * cc_))
        qc = cb * cb / (bb * bb) + cc * cc / (cc_ * cc_) - 1.0
        disc = qb * qb - 4.0 * qa * qc
        root = (-qb + np.sqrt(np.maximum(disc, 0.0))) / (2.0 * qa)
        return np.where((disc > 0) & (f > 0.05), np.maximum(root, 0.0), 0.0)

    def boundary(self, a: F64, theta: F64) -> F64:
        """Distance from the LV axis to the outer ventricular surface at ``(a, theta)``."""
        a = np.asarray(a, dtype=np.float64)
        return np.maximum(self.lv_radius(np.maximum(a, 0.0)), self.rv_ray(a, theta))

    def surface_point(self, a: F64, theta: F64, lift: float = 0.0) -> F64:
        rho = self.boundary(a, theta) + lift
        return self.to_patient(a, rho * np.cos(theta), rho * np.sin(theta))

    def junctions(self, a: F64) -> tuple[F64, F64]:
        """Angles (radians) of the anterior (c > 0) and posterior (c < 0) LV/RV junctions."""
        th = np.radians(np.arange(-179.5, 180.0, 0.5))
        owner_rv = (
            self.rv_ray(a[:, None], th[None, :]) > self.lv_radius(np.maximum(a, 0.0))[:, None]
        )
        ant = np.where(owner_rv & (th >= 0), th, -np.inf).max(axis=1)
        post = np.where(owner_rv & (th <= 0), th, np.inf).min(axis=1)
        ant = np.where(np.isfinite(ant), ant, np.nan)
        post = np.where(np.isfinite(post), post, np.nan)
        return _fill_nan(ant, math.radians(100.0)), _fill_nan(post, math.radians(-100.0))

    @property
    def centre(self) -> F64:
        return self.point(0.35 * self.lv_len, 0.25 * self.lv_r, 0.0)


def _fill_nan(values: F64, default: float) -> F64:
    """Fill NaNs forward (and the leading ones backward) from the nearest finite value."""
    out = values.copy()
    good = np.isfinite(out)
    if not good.any():
        return np.full_like(out, default)
    idx = np.where(good, np.arange(len(out)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = out[idx]
    first = int(np.argmax(good))
    out[:first] = values[first]
    return out


def _build_heart(res: _Resolved, rng: np.random.Generator, z_table: float) -> _Heart:
    """Chamber geometry of one study from its orientation, scale and the anatomy stream."""
    s = res.heart_scale
    al = math.radians(res.azimuth_deg)
    be = math.radians(res.elevation_deg)
    ga = math.radians(res.roll_deg)
    h = _vec(math.sin(al), -math.cos(al), 0.0)
    u = _unit(math.cos(be) * h + _vec(0.0, 0.0, -math.sin(be)))
    r = _vec(-math.cos(al), -math.sin(al), 0.0)
    w0 = np.cross(r, u)
    v = _unit(math.cos(ga) * r + math.sin(ga) * w0)
    w = _unit(np.cross(v, u))
    ox, _, _ = res.heart_offset_mm
    origin = _vec(8.0 + ox, 0.0, z_table)

    lv_r = float(rng.uniform(27.0, 32.0)) * s
    lv_wall = float(rng.uniform(8.0, 11.5)) * math.sqrt(s)
    lv_len = float(rng.uniform(82.0, 96.0)) * s
    lv_aeq = 0.32 * lv_len
    rv_gap = float(rng.uniform(15.0, 24.0)) * s
    rv_centre = (0.30 * lv_len, 0.62 * lv_r, float(rng.uniform(-0.1, 0.1)) * lv_r)
    rv_radii = (
        float(rng.uniform(0.55, 0.62)) * lv_len,
        0.38 * lv_r + rv_gap,
        float(rng.uniform(1.12, 1.3)) * lv_r,
    )
    lv_apex_wall = float(rng.uniform(4.0, 6.5))
    rv_wall = float(rng.uniform(3.0, 5.0))
    lv_r0 = 0.88 * lv_r

    def pt(a: float, b: float, c: float) -> F64:
        return np.asarray(origin + a * u + b * v + c * w, dtype=np.float64)

    jitter = rng.normal(0.0, 1.5, 3)

    la_c = pt(-(19.0 + float(rng.uniform(0.0, 5.0))) * s, -0.35 * lv_r, -0.1 * lv_r)
    la = _axis_ellipsoid(
        la_c,
        (
            float(rng.uniform(24.0, 30.0)) * s,
            float(rng.uniform(15.0, 19.0)) * s,
            float(rng.uniform(18.0, 23.0)) * s,
        ),
    )
    ra_c = pt(-10.0 * s, 0.95 * lv_r, -0.3 * lv_r)
    ra = _axis_ellipsoid(
        ra_c,
        (
            float(rng.uniform(20.0, 25.0)) * s,
            float(rng.uniform(19.0, 24.0)) * s,
            float(rng.uniform(23.0, 28.0)) * s,
        ),
    )
    laa_c = pt(-5.0 * s, -0.82 * lv_r, 0.72 * lv_r)
    laa = _Ellipsoid(
        laa_c, _frame_from(laa_c - la_c), (float(rng.uniform(13.0, 18.0)) * s, 8.0 * s, 6.5 * s)
    )
    raa_c = pt(-3.0 * s, 1.0 * lv_r, 0.55 * lv_r)
    raa = _Ellipsoid(
        raa_c, _frame_from(raa_c - ra_c), (float(rng.uniform(13.0, 17.0)) * s, 9.0 * s, 7.0 * s)
    )

    r_asc = float(rng.uniform(12.5, 19.0)) * (0.85 + 0.15 * s)
    r_ann = float(np.clip(0.75 * r_asc, 9.5, 13.5))
    annulus = pt(-3.0 * s, 0.30 * lv_r, 0.38 * lv_r) + jitter
    axis = _unit(_vec(-0.35, -0.35, 0.87) + rng.normal(0.0, 0.08, 3))
    twist = float(rng.uniform(-15.0, 15.0))
    root = _make_root(annulus, axis, r_ann, 0.92 * r_asc, s, twist)

    pv = annulus + s * (_vec(14.0, -13.0, 15.0) + rng.normal(0.0, 2.5, 3))
    rvot = _Capsule(
        pt(0.12 * lv_len, rv_centre[1] + 0.2 * lv_r, 0.55 * rv_radii[2]), pv, 14.0 * s, 12.5 * s
    )
    pa_dir = _unit(_vec(0.3, 0.75, 0.55) + rng.normal(0.0, 0.08, 3))
    pa_end = pv + float(rng.uniform(25.0, 38.0)) * s * pa_dir
    r_pa = float(rng.uniform(12.5, 15.0)) * s
    pa = _Capsule(pv, pa_end, r_pa, r_pa)

    size = res.patient_size
    mitral_r = float(rng.uniform(12.0, 16.0)) * s
    mitral_off = 0.3 * lv_r0
    mitral_r = min(mitral_r, lv_r0 - mitral_off - 2.5)
    mitral_dir = _unit(_vec(0.0, -0.7, -0.7))
    mitral_centre = pt(0.8, mitral_off * float(mitral_dir[1]), mitral_off * float(mitral_dir[2]))
    rv_thin = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.5 else 0.0
    t0 = float(rng.uniform(0.6, 2.5)) + 2.5 * size
    heart = _Heart(
        origin=origin,
        u=u,
        v=v,
        w=w,
        scale=s,
        lv_r0=lv_r0,
        lv_r=lv_r,
        lv_aeq=lv_aeq,
        lv_len=lv_len,
        lv_wall=lv_wall,
        lv_apex_wall=lv_apex_wall,
        rv_centre=rv_centre,
        rv_radii=rv_radii,
        rv_wall=rv_wall,
        la=la,
        ra=ra,
        laa=laa,
        raa=raa,
        rvot=rvot,
        pa=pa,
        root=root,
        a_ring=float(rng.uniform(-2.0, 1.0)) * s,
        hull_k=float(rng.uniform(10.0, 16.0)),
        fat_t0=t0,
        fat_av=float(rng.uniform(2.0, 6.0)),
        fat_apex=float(rng.uniform(0.0, 4.0)),
        fat_rv_thin=rv_thin * t0,
        fat_mod=(
            float(rng.uniform(0.6, 2.0)),
            float(rng.uniform(0, 2 * math.pi)),
            float(rng.uniform(0, 2 * math.pi)),
        ),
        peri_t=float(rng.uniform(1.0, 2.0)),
        mitral_centre=mitral_centre,
        mitral_radius=mitral_r,
    )
    return _clear_ostia(heart, annulus, axis, r_ann, 0.92 * r_asc, twist)


def _clear_ostia(
    heart: _Heart, annulus: F64, axis: F64, r_ann: float, r_stj: float, twist: float
) -> _Heart:
    """Turn each coronary sinus (within +-40 degrees) to where its ostium and the first
    millimetres of its artery are clearest of the other chambers, then push any appendage,
    outflow tract or atrium still within 3.5 mm of that path away from it."""
    others = [n for n in _HEART_PARTS if n not in ("root", "lv", "rv")]

    def clearance(h: _Heart, pts: F64) -> F64:
        xg, yg, zg = pts[:, 0], pts[:, 1], pts[:, 2]
        ha, hb, hc = h.local(xg, yg, zg)
        d = np.full(len(pts), 1e3)
        for name in (*others, "lv", "rv"):
            d = np.minimum(d, h.part_sd(name, xg, yg, zg, ha, hb, hc))
        return d

    def path(root: _Root, which: int) -> F64:
        ost = root.ostium_right if which == 0 else root.ostium_left
        steps = np.array([1.0, 3.0, 5.0, 7.0])[:, None]
        return np.asarray(ost + steps * root.sinus_dirs[which], dtype=np.float64)

    turns = [0.0, 0.0]
    for which in (0, 1):
        best = (-1e9, 0.0)
        for turn in sorted(np.linspace(-40.0, 40.0, 17), key=abs):
            trial = list(turns)
            trial[which] = float(turn)
            root = _make_root(annulus, axis, r_ann, r_stj, heart.scale, twist, (trial[0], trial[1]))
            score = float(clearance(heart, path(root, which)).min())
            if score > best[0] + 0.25:
                best = (score, float(turn))
        turns[which] = best[1]
    root = _make_root(annulus, axis, r_ann, r_stj, heart.scale, twist, (turns[0], turns[1]))
    heart = replace(heart, root=root)
    for which in (0, 1):
        pts = path(root, which)
        for name in others:
            shape = getattr(heart, name)
            for _ in range(6):
                d = np.asarray(shape.sd(pts[:, 0], pts[:, 1], pts[:, 2]), dtype=np.float64)
                k = int(np.argmin(d))
                if d[k] >= 3.5:
                    break
                grad = _numeric_gradient(_points_sdf(shape.sd), pts[k : k + 1])[0]
                shift = -(3.5 - float(d[k]) + 0.3) * _unit(grad)
                if isinstance(shape, _Ellipsoid):
                    shape = replace(shape, centre=shape.centre + shift)
                else:
                    shape = replace(shape, a=shape.a + shift, b=shape.b + shift)
            heart = replace(heart, **{name: shape})
    channels = (
        _Capsule(root.ostium_right, root.ostium_right + 10.0 * root.sinus_dirs[0], 4.5, 4.5),
        _Capsule(root.ostium_left, root.ostium_left + 7.0 * root.sinus_dirs[1], 4.5, 4.5),
    )
    return replace(heart, channels=channels)


def _make_root(
    annulus: F64,
    axis: F64,
    r_ann: float,
    r_stj: float,
    s: float,
    twist_deg: float,
    turn_deg: tuple[float, float] = (0.0, 0.0),
) -> _Root:
    """The aortic root: sinus angles from anterior toward the patient's left (right coronary
    sinus -20, left 125, non-coronary -135 degrees, all turned by ``twist_deg``; the two coronary
    sinuses further by ``turn_deg``)."""
    anterior = _unit(_vec(0.0, -1.0, 0.0) - axis * float(np.dot(_vec(0.0, -1.0, 0.0), axis)))
    lateral = np.cross(axis, anterior)
    if float(lateral[0]) < 0:
        lateral = -lateral
    twist = math.radians(twist_deg)
    angles = {"right": -20.0 + turn_deg[0], "left": 125.0 + turn_deg[1], "non": -135.0}
    dirs = []
    sinuses = []
    height = 9.0 * math.sqrt(s)
    for key in ("right", "left", "non"):
        ang = math.radians(angles[key]) + twist
        d = _unit(math.cos(ang) * anterior + math.sin(ang) * lateral)
        dirs.append(d)
        centre = annulus + height * axis + 0.45 * r_ann * d
        frame = np.stack([d, np.cross(axis, d), axis])
        sinuses.append(_Ellipsoid(centre, frame, (0.75 * r_ann, 0.75 * r_ann, 0.95 * r_ann)))
    stj = annulus + 22.0 * s * axis
    ost_h = 2.5
    ostia = [annulus + (height + ost_h) * axis + (0.45 + 0.72) * r_ann * d for d in dirs[:2]]
    return _Root(
        annulus=annulus,
        axis=axis,
        r_annulus=r_ann,
        stj=stj,
        r_stj=r_stj,
        sinuses=(sinuses[0], sinuses[1], sinuses[2]),
        sinus_dirs=np.stack(dirs),
        ostium_left=ostia[1],
        ostium_right=ostia[0],
    )


# ------------------------------------------------------------------------------------------------
# Coronary tree
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Vessel:
    """One coronary vessel: 1 mm centreline samples with lumen radius, frames and fat sleeve."""

    name: str
    artery: Artery | None
    points: F64
    radii: F64
    arclen: F64
    normals: F64
    tangents: F64
    sleeve: F64
    parent: str = ""

    @property
    def length_mm(self) -> float:
        return float(self.arclen[-1])


def _radius_profile(length: F64, r0: float, r1: float) -> F64:
    """Lumen radius tapering from ``r0`` to ``r1`` along the vessel."""
    total = max(float(length[-1]), 1e-6)
    return r0 - (r0 - r1) * (length / total) ** 0.85


def _finish_vessel(
    name: str,
    artery: Artery | None,
    guide: F64,
    r0: float,
    r1: float,
    heart: _Heart,
    gap: float,
    rng: np.random.Generator,
    free_start_mm: float = 0.0,
) -> _Vessel:
    """Project a guide curve onto the level set 'lumen radius + fat gap' of the distance to
    the cardiac tissue (Newton steps), smooth, resample at 1 mm and compute the local frames."""
    tissue = _points_sdf(heart.tissue_sd)
    pts = _resample(guide, 1.5)
    s = _arclength(pts)
    radius = _radius_profile(s, r0, r1)
    target = radius + gap
    movable = s >= free_start_mm
    for passes in (3, 2):
        moved = _project_to_level(pts[movable], target[movable], tissue)
        pts = pts.copy()
        pts[movable] = moved
        keep = max(1, int(np.searchsorted(s, free_start_mm)))
        pts = _smooth_path(pts, passes, keep_start=keep)
        pts = _resample(pts, 1.0)
        s = _arclength(pts)
        radius = _radius_profile(s, r0, r1)
        target = radius + gap
        movable = s >= free_start_mm
    # repair points that smoothing pulled toward the muscle
    d = tissue(pts)
    bad = movable & (d < target - 0.25)
    if bad.any():
        pts[bad] = _project_to_level(pts[bad], target[bad], tissue, iterations=6)
    tangents = np.gradient(pts, axis=0)
    tangents /= np.maximum(np.linalg.norm(tangents, axis=1, keepdims=True), 1e-9)
    grad = _numeric_gradient(tissue, pts)
    grad -= tangents * (grad * tangents).sum(axis=1, keepdims=True)
    norm = np.linalg.norm(grad, axis=1, keepdims=True)
    fallback = np.stack([_perp(t) for t in tangents])
    normals = np.where(norm > 1e-6, grad / np.maximum(norm, 1e-9), fallback)
    sleeve = radius + float(rng.uniform(2.5, 3.5))
    return _Vessel(name, artery, pts, radius, s, normals, tangents, sleeve)


def _trim_vessel(v: _Vessel, length_mm: float) -> _Vessel:
    """The vessel cut to its first ``length_mm`` (unchanged when shorter)."""
    n = min(max(int(np.searchsorted(v.arclen, length_mm)) + 1, 2), len(v.points))
    return replace(
        v,
        points=v.points[:n],
        radii=v.radii[:n],
        arclen=v.arclen[:n],
        normals=v.normals[:n],
        tangents=v.tangents[:n],
        sleeve=v.sleeve[:n],
    )


def _branch_guide(heart: _Heart, parent: _Vessel, index: int, a: F64, theta: F64) -> F64:
    """Guide curve of a side branch: from its parent's point ``index`` over the surface."""
    surf = heart.surface_point(a, theta, lift=3.0)
    start = parent.points[max(index, 0)]
    return _spline_path(np.concatenate([start[None, :], surf]), 1.5)


def _nearest_index(points: F64, target: F64) -> int:
    """Index of the point nearest ``target``."""
    return int(np.argmin(np.linalg.norm(points - target, axis=1)))


def _build_coronaries(heart: _Heart, res: _Resolved, rng: np.random.Generator) -> list[_Vessel]:
    """The coronary tree of one study, traced on the grooves of its chambers."""
    s = heart.scale
    gap = float(rng.uniform(0.8, 1.5))
    a_ring = heart.a_ring
    ring_a = np.array([a_ring])
    ant0, post0 = (float(x[0]) for x in heart.junctions(ring_a))
    lm_r = float(rng.uniform(1.9, 2.2))
    vessels: list[_Vessel] = []

    # LM: from the left sinus toward the top of the anterior interventricular groove
    ost_l = heart.root.ostium_left
    n_l = heart.root.sinus_dirs[1]
    lm_len = float(rng.uniform(5.0, 15.0))
    a_top = np.arange(a_ring + 4.0, a_ring + 45.0, 1.0)
    ant_top, _ = heart.junctions(a_top)
    tops = heart.surface_point(a_top, ant_top + math.radians(6.0), 3.5)
    far = np.linalg.norm(tops - ost_l, axis=1) >= lm_len + 4.0
    corner = tops[int(np.argmax(far))] if far.any() else tops[-1]
    lm_path = _spline_path(np.stack([ost_l, ost_l + 3.0 * n_l, corner]), 0.5)
    lm_s = _arclength(lm_path)
    cut = lm_len + 2.0
    for _ in range(5):
        lm_end = int(np.searchsorted(lm_s, cut))
        lm = _finish_vessel(
            "LM",
            Artery.LM,
            lm_path[: max(lm_end, 3) + 1],
            lm_r,
            0.95 * lm_r,
            heart,
            gap,
            rng,
            free_start_mm=3.0,
        )
        if lm.length_mm >= lm_len or cut >= float(lm_s[-1]):
            break
        cut *= 1.5
    lm = _trim_vessel(lm, lm_len)
    vessels.append(lm)
    bif = lm.points[-1]

    # LAD down the anterior junction, sometimes round the apex
    a_lad = np.arange(a_ring + 4.0, heart.lv_len + 0.01, 2.0)
    ant, _ = heart.junctions(a_lad)
    lad_pts = [heart.surface_point(a_lad, ant + math.radians(3.0), 1.0)]
    if rng.random() < 0.4:
        wrap = float(rng.uniform(10.0, 25.0)) * s
        a_back = np.arange(heart.lv_len - 2.0, heart.lv_len - wrap, -2.0)
        _, post_back = heart.junctions(a_back)
        lad_pts.append(heart.surface_point(a_back, post_back, 1.0))
    lad_guide = np.concatenate([bif[None, :], *lad_pts])
    lad_guide = _spline_path(lad_guide, 1.5)
    lad_r = min(float(rng.uniform(1.7, 2.0)), lm_r)
    lad = _finish_vessel("LAD", Artery.LAD, lad_guide, lad_r, 0.8, heart, gap, rng)
    vessels.append(lad)

    dominance = res.dominance
    crux_l = post0 + 2.0 * math.pi
    if dominance == "right":
        lcx_end = math.radians(float(rng.uniform(200.0, 240.0)))
    elif dominance == "left":
        lcx_end = crux_l
    else:
        lcx_end = crux_l - math.radians(float(rng.uniform(5.0, 15.0)))
    th_l = np.radians(np.arange(math.degrees(ant0) + 8.0, 205.0, 2.0))
    ring_l = heart.surface_point(np.full_like(th_l, a_ring), th_l, 1.0)
    start_l = th_l[_nearest_index(ring_l, bif)]
    th_lcx = np.arange(start_l, lcx_end, math.radians(3.0))
    lcx_guide = np.concatenate(
        [bif[None, :], heart.surface_point(np.full_like(th_lcx, a_ring), th_lcx, 1.0)]
    )
    lcx_r = float(rng.uniform(1.5, 1.85))
    lcx = _finish_vessel(
        "LCX",
        Artery.LCX,
        _spline_path(lcx_guide, 1.5),
        lcx_r,
        0.9 if dominance == "left" else 0.8,
        heart,
        gap,
        rng,
    )
    vessels.append(lcx)

    # RCA from the right sinus round the right AV groove
    ost_r = heart.root.ostium_right
    n_r = heart.root.sinus_dirs[0]
    th_r = np.radians(np.arange(math.degrees(post0) + 30.0, math.degrees(ant0) - 5.0, 2.0))
    ring_r = heart.surface_point(np.full_like(th_r, a_ring), th_r, 1.0)
    start_r = th_r[_nearest_index(ring_r, ost_r + 8.0 * n_r)]
    if dominance == "left":
        rca_end = math.radians(float(rng.uniform(-60.0, -30.0)))
        rca_r = float(rng.uniform(1.3, 1.6))
    elif dominance == "co":
        rca_end = post0 - math.radians(float(rng.uniform(0.0, 8.0)))
        rca_r = float(rng.uniform(1.6, 1.9))
    else:
        rca_end = post0 - math.radians(float(rng.uniform(15.0, 40.0)))
        rca_r = float(rng.uniform(1.7, 2.0))
    rca_end = min(rca_end, start_r - math.radians(30.0))
    th_rca = np.arange(start_r, rca_end, -math.radians(3.0))
    rca_guide = np.concatenate(
        [
            np.stack([ost_r, ost_r + 3.0 * n_r]),
            heart.surface_point(np.full_like(th_rca, a_ring), th_rca, 1.0),
        ]
    )
    rca = _finish_vessel(
        "RCA",
        Artery.RCA,
        _spline_path(rca_guide, 1.5),
        rca_r,
        0.8,
        heart,
        gap,
        rng,
        free_start_mm=3.0,
    )
    vessels.append(rca)

    # posterior descending artery from the crux
    crux = heart.surface_point(ring_a, np.array([post0]), 1.0)[0]
    pda_parent = lcx if dominance == "left" else rca
    a_pda = np.arange(a_ring + 3.0, float(rng.uniform(0.55, 0.85)) * heart.lv_len, 2.0)
    _, post_pda = heart.junctions(a_pda)
    idx = _nearest_index(pda_parent.points, crux)
    pda_guide = _branch_guide(heart, pda_parent, idx, a_pda, post_pda)
    pda = _finish_vessel(
        "PDA", pda_parent.artery, pda_guide, float(rng.uniform(1.1, 1.4)), 0.8, heart, gap, rng
    )
    vessels.append(pda)
    if dominance == "co":
        a_pl = np.arange(a_ring + 3.0, float(rng.uniform(35.0, 55.0)) * s, 2.0)
        th_pl = np.full_like(a_pl, lcx_end - math.radians(5.0))
        pl = _finish_vessel(
            "PL",
            Artery.LCX,
            _branch_guide(heart, lcx, len(lcx.points) - 3, a_pl, th_pl),
            float(rng.uniform(1.0, 1.3)),
            0.8,
            heart,
            gap,
            rng,
        )
        vessels.append(pl)

    # diagonals from the LAD
    n_diag = int(rng.integers(1, 4))
    fractions = np.sort(rng.uniform(0.12, 0.6, n_diag))
    for i, frac in enumerate(fractions):
        idx = int(np.searchsorted(lad.arclen, frac * lad.length_mm))
        a0 = float(heart.local(*(lad.points[idx][k : k + 1] for k in range(3)))[0][0])
        length = float(rng.uniform(30.0, 55.0)) * s
        a_d = np.linspace(a0 + 4.0, min(a0 + length, 0.92 * heart.lv_len), 12)
        ant_d, _ = heart.junctions(a_d)
        th_d = ant_d + np.radians(np.linspace(12.0, float(rng.uniform(30.0, 60.0)), 12))
        vessels.append(
            _finish_vessel(
                f"D{i + 1}",
                Artery.LAD,
                _branch_guide(heart, lad, idx, a_d, th_d),
                float(rng.uniform(1.0, 1.35)),
                0.8,
                heart,
                gap,
                rng,
            )
        )
    # obtuse marginals from the LCX
    n_om = int(rng.integers(1, 4))
    span = np.linspace(
        start_l + math.radians(35.0),
        max(lcx_end - math.radians(8.0), start_l + math.radians(40.0)),
        n_om + 2,
    )[1:-1]
    for i, th in enumerate(span):
        target = heart.surface_point(ring_a, np.array([th]), 1.0)[0]
        idx = _nearest_index(lcx.points, target)
        a_o = np.linspace(a_ring + 5.0, a_ring + float(rng.uniform(35.0, 65.0)) * s, 12)
        th_o = th + np.radians(np.linspace(0.0, float(rng.uniform(-12.0, 12.0)), 12))
        vessels.append(
            _finish_vessel(
                f"OM{i + 1}",
                Artery.LCX,
                _branch_guide(heart, lcx, idx, a_o, th_o),
                float(rng.uniform(1.0, 1.35)),
                0.8,
                heart,
                gap,
                rng,
            )
        )
    # acute marginals from the RCA over the RV free wall
    n_am = int(rng.integers(1, 3))
    for i, th_deg in enumerate(np.sort(rng.uniform(-45.0, 5.0, n_am))[::-1]):
        th = math.radians(float(th_deg))
        if th < rca_end + math.radians(5.0):
            continue
        target = heart.surface_point(ring_a, np.array([th]), 1.0)[0]
        idx = _nearest_index(rca.points, target)
        a_m = np.linspace(a_ring + 5.0, float(rng.uniform(30.0, 55.0)) * s, 10)
        vessels.append(
            _finish_vessel(
                f"AM{i + 1}",
                Artery.RCA,
                _branch_guide(heart, rca, idx, a_m, np.full_like(a_m, th)),
                float(rng.uniform(1.0, 1.3)),
                0.8,
                heart,
                gap,
                rng,
            )
        )
    # ramus intermedius (anatomy only; carries no plaque)
    if rng.random() < 0.2:
        a_ri = np.linspace(a_ring + 6.0, float(rng.uniform(40.0, 55.0)) * s, 10)
        th_ri = np.full_like(a_ri, ant0 + math.radians(float(rng.uniform(30.0, 50.0))))
        vessels.append(
            _finish_vessel(
                "RI",
                None,
                _branch_guide(heart, lm, len(lm.points) - 1, a_ri, th_ri),
                float(rng.uniform(1.1, 1.4)),
                0.8,
                heart,
                gap,
                rng,
            )
        )
    parents = {"LAD": "LM", "LCX": "LM", "PDA": pda_parent.name, "PL": "LCX", "RI": "LM"}
    for k, v in enumerate(vessels):
        name = v.name.rstrip("0123456789")
        parent = parents.get(v.name) or {"D": "LAD", "OM": "LCX", "AM": "RCA"}.get(name, "")
        vessels[k] = replace(v, parent=parent)
    return vessels


# ------------------------------------------------------------------------------------------------
# Body, mediastinum, great vessels, abdomen
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Body:
    """The trunk: superelliptic outline with a flat back, chest wall layers, sternum, spine and
    (optional) breasts, all relative to the heart."""

    x_mid: float
    y_centre: float
    half_width: float
    half_ant: float
    half_post: float
    exponent: float
    taper: float
    z_ref: float
    fat_mm: float
    wall_lat_mm: float
    sternum_y: float
    """Posterior surface of the sternum at ``z_ref``."""
    sternum_tilt: float
    sternum_half: tuple[float, float]
    z_xiphoid: float
    spine_x: float
    spine_y: float
    """Centre of the vertebral bodies at ``z_ref``."""
    spine_tilt: float
    vb_half: tuple[float, float]
    level_mm: float
    breasts: tuple[float, float, float] | None
    """``(half-width, half-depth, half-height)`` of breasts, or None."""
    aorta_offset: tuple[float, float]
    """Descending aorta centre relative to the vertebral-body centre (x, y)."""
    aorta_radius: float
    azygos_offset: tuple[float, float]

    def scale_at(self, z: float) -> float:
        return 1.0 + self.taper * (z - self.z_ref)

    def outline_sd(self, xg: FArr, yg: FArr, z: float, inset: float, inset_ant: float) -> FArr:
        k = self.scale_at(z)
        a = self.half_width * k - inset
        b_ant = self.half_ant * k - inset_ant
        b_post = self.half_post * k - inset
        return _sd_superellipse(
            xg - self.x_mid, yg - self.y_centre, a, b_ant, b_post, self.exponent
        )

    def cavity_sd(self, xg: FArr, yg: FArr, z: float) -> FArr:
        inset = self.fat_mm + self.wall_lat_mm
        inset_ant = self.half_ant * self.scale_at(z) - (self.y_centre - self.sternum_at(z))
        d = self.outline_sd(xg, yg, z, inset, inset_ant)
        d = np.maximum(d, yg - (self.spine_at(z) + self.vb_half[1] + 6.0))
        notch = _sd_ellipse2(
            xg - self.x_mid,
            yg - (self.spine_at(z) + 10.0),
            self.vb_half[0] + 10.0,
            self.vb_half[1] + 22.0,
        )
        return _fa(np.maximum(d, -notch))

    def sternum_at(self, z: float) -> float:
        return self.sternum_y - self.sternum_tilt * (z - self.z_ref)

    def spine_at(self, z: float) -> float:
        return self.spine_y + self.spine_tilt * (z - self.z_ref)

    def cavity_point(self, phi: float, z: float, lift: float) -> tuple[F64, F64]:
        """Point at parametric angle ``phi`` (0 posterior midline, +pi/2 left) on the cavity
        outline at height ``z``, lifted outward, and the outward normal."""
        k = self.scale_at(z)
        inset = self.fat_mm + self.wall_lat_mm
        a = self.half_width * k - inset
        b_post = self.half_post * k - inset
        b_ant = self.y_centre - self.sternum_at(z)
        n = self.exponent
        sx = math.copysign(abs(math.sin(phi)) ** (2.0 / n), math.sin(phi))
        sy = math.copysign(abs(math.cos(phi)) ** (2.0 / n), math.cos(phi))
        b = b_post if sy > 0 else b_ant
        x = a * sx
        y = b * sy
        gx = math.copysign(abs(x / a) ** (n - 1), x) / a
        gy = math.copysign(abs(y / b) ** (n - 1), y) / b
        normal = _unit(_vec(gx, gy, 0.0))
        p = _vec(self.x_mid + x, self.y_centre + y, z) + lift * normal
        return p, normal


def _sd_superellipse(dx: FArr, dy: FArr, a: float, b_ant: float, b_post: float, n: float) -> FArr:
    """First-order distance to a superellipse with different front and back half-depths."""
    b = np.where(dy < 0, np.float32(b_ant), np.float32(b_post))
    sx = np.abs(dx) * (1.0 / a)
    sy = np.abs(dy) / b
    pn = sx**n + sy**n
    f = pn ** (1.0 / n)
    gx = sx ** (n - 1.0) * (1.0 / a)
    gy = sy ** (n - 1.0) / b
    fpow = _safe_div(np.ones_like(f), f ** (n - 1.0), 1.0)
    g = np.sqrt(gx * gx + gy * gy) * fpow
    return (f - 1.0) * _safe_div(np.ones_like(g), g, min(a, b_ant, b_post))


@dataclass(frozen=True)
class _Mediastinum:
    """Great vessels, oesophagus, azygos vein and airways of one study (patient mm)."""

    aorta: F64
    aorta_radius: F64
    ascending_end: int
    descending_start: int
    svc: F64
    svc_r: float
    ivc: F64
    ivc_r: float
    rpa: F64
    lpa: F64
    pa_branch_r: float
    pulmonary_veins: tuple[F64, ...]
    pv_r: float
    oesophagus: F64
    oesophagus_semi: tuple[float, float]
    oesophagus_air: tuple[float, float] | None
    azygos: F64
    azygos_r: float
    trachea: F64
    bronchi: tuple[F64, F64, F64, F64]
    airway_r: tuple[float, float]
    carina: F64
    hila: tuple[F64, F64]


@dataclass(frozen=True)
class _Abdomen:
    """The diaphragm (two domes and the central tendon) and the organs under it."""

    domes: tuple[tuple[float, float, float, float, float], ...]
    """``(x, y, z_peak, curvature_x, curvature_y)`` of right dome, left dome, central tendon."""
    thickness: float
    liver: _Ellipsoid
    spleen: _Ellipsoid
    stomach: _Ellipsoid
    gas_level: float

    def dome_z(self, xg: FArr, yg: FArr) -> FArr:
        out: FArr | None = None
        for x0, y0, zp, rx, ry in self.domes:
            z = zp - (xg - x0) ** 2 * (0.5 / rx) - (yg - y0) ** 2 * (0.5 / ry)
            out = z if out is None else -_smin(-out, -z, 12.0)
        assert out is not None
        return out


def _build_body(heart: _Heart, res: _Resolved, rng: np.random.Generator) -> _Body:
    """Build the trunk around the heart: the sternum in front of the RV, the spine behind the
    left atrium (moved back when the descending aorta would touch the atrium), body size from
    the patient size and aspect."""
    size = res.patient_size
    samples = heart.samples()
    x_mid = 0.0
    y_front = float(samples[:, 1].min())
    near_mid = samples[np.abs(samples[:, 0] - x_mid) < 45.0]
    la_post = float(heart.la.centre[1] + heart.la.radii[1])
    post = max(la_post, float(near_mid[:, 1].max()) if len(near_mid) else la_post)
    oy = res.heart_offset_mm[1]
    g_ant = float(np.clip(rng.uniform(1.0, 8.0) + 5.0 * size + 0.5 * oy, 1.0, 22.0))
    g_post = float(np.clip(rng.uniform(17.0, 26.0) - 0.4 * oy, 16.0, 34.0))
    vb_half = (float(rng.uniform(18.0, 22.0)), float(rng.uniform(13.5, 16.5)))
    sternum_half = (float(rng.uniform(12.0, 16.0)), float(rng.uniform(5.0, 7.0)))
    sternum_y = y_front - g_ant
    spine_y = post + g_post + vb_half[1]
    spine_x = x_mid + float(rng.uniform(-4.0, 4.0))
    # the descending aorta leans on the left antero-lateral side of the vertebral body, the
    # azygos vein on the right; the spine moves back when the aorta would hit the left atrium
    r_desc = float(np.clip(heart.root.r_stj / 0.92 * rng.uniform(0.7, 0.85), 10.0, 15.0))
    aorta_offset = _beside_ellipse(vb_half, float(rng.uniform(40.0, 62.0)), r_desc + 1.5)
    azygos_offset = _beside_ellipse(vb_half, -float(rng.uniform(30.0, 50.0)), 5.5)
    for _ in range(30):
        centre = _vec(
            spine_x + aorta_offset[0], spine_y + aorta_offset[1], float(heart.la.centre[2])
        )
        clearance = float(heart.la.sd(centre[0:1], centre[1:2], centre[2:3])[0]) - r_desc - 2.0
        if clearance >= 0.0:
            break
        spine_y += max(-clearance, 1.0)
    fat = float(rng.uniform(4.0, 10.0) + 32.0 * size**1.3)
    wall_ant = float(rng.uniform(4.0, 10.0))
    skin_front = sternum_y - 2.0 * sternum_half[1] - wall_ant - fat * 0.8
    spinous_tip = spine_y + vb_half[1] + 38.0
    wall_post = float(rng.uniform(10.0, 16.0))
    skin_back = spinous_tip + wall_post + 0.5 * fat
    y_centre = 0.5 * (skin_front + skin_back) + 8.0
    half_ant = y_centre - skin_front
    half_post = skin_back - y_centre
    wall_lat = float(rng.uniform(12.0, 20.0))
    half_depth = 0.5 * (half_ant + half_post)
    heart_half_x = float(np.abs(samples[:, 0] - x_mid).max())
    half_width = max(half_depth * res.body_aspect, heart_half_x + fat + wall_lat + 25.0)
    z_ref = float(heart.origin[2])
    breasts = None
    if rng.random() < 0.4:
        breasts = (
            float(rng.uniform(45.0, 70.0)),
            float(rng.uniform(15.0, 35.0)) * (0.6 + size),
            float(rng.uniform(40.0, 60.0)),
        )
    z_low = float(samples[:, 2].min())
    return _Body(
        x_mid=x_mid,
        y_centre=y_centre,
        half_width=half_width,
        half_ant=half_ant,
        half_post=half_post,
        exponent=float(rng.uniform(2.2, 2.8)),
        taper=float(rng.uniform(-0.0004, 0.0008)),
        z_ref=z_ref,
        fat_mm=fat,
        wall_lat_mm=wall_lat,
        sternum_y=sternum_y,
        sternum_tilt=float(rng.uniform(0.05, 0.3)),
        sternum_half=sternum_half,
        z_xiphoid=z_low + float(rng.uniform(-5.0, 25.0)),
        spine_x=spine_x,
        spine_y=spine_y,
        spine_tilt=float(rng.uniform(0.05, 0.25)),
        vb_half=vb_half,
        level_mm=float(rng.uniform(23.0, 27.0)) * (0.9 + 0.1 * res.heart_scale),
        breasts=breasts,
        aorta_offset=aorta_offset,
        aorta_radius=r_desc,
        azygos_offset=azygos_offset,
    )


def _beside_ellipse(
    half: tuple[float, float], angle_deg: float, lift: float
) -> tuple[float, float]:
    """Offset of a point lifted ``lift`` mm off an ellipse (semi-axes ``half``) at ``angle_deg``
    from its anterior pole toward the patient's left."""
    t = math.radians(angle_deg)
    x, y = half[0] * math.sin(t), -half[1] * math.cos(t)
    n = _unit(_vec(x / half[0] ** 2, y / half[1] ** 2, 0.0))
    return x + lift * float(n[0]), y + lift * float(n[1])


def _build_mediastinum(
    heart: _Heart, body: _Body, rng: np.random.Generator, z_lm: float, z_bottom: float
) -> _Mediastinum:
    """Aorta (root to descending), pulmonary arteries, caval and pulmonary veins, oesophagus,
    azygos vein and airways, placed from the heart, spine and LM height."""
    root = heart.root
    la = heart.la
    la_post = float(la.centre[1] + la.radii[1])
    r_asc = root.r_stj / 0.92
    spine_front = body.spine_at(z_lm) - body.vb_half[1]
    z_arch = z_lm + float(rng.uniform(45.0, 80.0))
    # ascending aorta -> arch -> descending aorta left of the spine
    r_desc = body.aorta_radius
    oes_semi = (float(rng.uniform(7.5, 10.0)), float(rng.uniform(5.0, 7.0)))
    x_desc = body.spine_x + body.aorta_offset[0]
    y_desc = body.spine_at(z_lm) + body.aorta_offset[1]
    x_oes = min(body.spine_x + float(rng.uniform(-4.0, 3.0)), x_desc - r_desc - oes_semi[0] - 1.5)
    stj = root.stj
    up = _unit(_vec(-0.15, -0.1, 1.0) + rng.normal(0.0, 0.05, 3))
    asc_top = stj + (z_arch - 22.0 - float(stj[2])) * up / max(float(up[2]), 0.5)
    arch_apex = _vec(0.5 * (float(asc_top[0]) + x_desc), 0.5 * (float(asc_top[1]) + y_desc), z_arch)
    desc_top = _vec(x_desc, y_desc, z_arch - 24.0)
    desc_pts = [desc_top]
    z = z_arch - 60.0
    while z > z_bottom - 60.0:
        t = (z_arch - z) / 200.0
        desc_pts.append(
            _vec(x_desc - 4.0 * t, body.spine_at(z) + body.aorta_offset[1] - 3.0 * t, z)
        )
        z -= 40.0
    control = np.stack([root.annulus + 8.0 * root.axis, stj, asc_top, arch_apex, *desc_pts])
    aorta = _spline_path(control, 2.0)
    slope = np.gradient(aorta[:, 2]) / np.maximum(
        np.linalg.norm(np.gradient(aorta, axis=0), axis=1), 1e-9
    )
    top = int(np.argmax(aorta[:, 2]))
    asc_end = int(np.argmax(slope[: top + 1] < 0.45)) if (slope[: top + 1] < 0.45).any() else top
    after = np.where(slope[top:] < -0.45)[0]
    desc_start = top + int(after[0]) if len(after) else top
    s_a = _arclength(aorta)
    radius = np.interp(
        s_a, [0.0, float(s_a[top]), float(s_a[-1])], [r_asc, 0.5 * (r_asc + r_desc), r_desc]
    )

    # oesophagus, azygos
    oes_y = min(la_post + 1.5 + oes_semi[1], spine_front - oes_semi[1] - 0.5)
    oes = np.stack(
        [_vec(x_oes + 4.0, oes_y + 2.0, z_bottom - 60.0), _vec(x_oes, oes_y, z_lm + 120.0)]
    )
    air = None
    if rng.random() < 0.5:
        air = (float(rng.uniform(2.0, 4.0)), float(rng.uniform(1.0, 2.5)))
    ax_, ay_ = body.azygos_offset
    azygos = np.stack(
        [
            _vec(body.spine_x + ax_, body.spine_at(z_bottom - 60.0) + ay_, z_bottom - 60.0),
            _vec(body.spine_x + ax_, body.spine_at(z_lm + 120.0) + ay_, z_lm + 120.0),
        ]
    )
    # airways
    carina = _vec(
        body.x_mid + float(rng.uniform(-3.0, 3.0)),
        oes_y - oes_semi[1] - 11.0,
        z_lm + float(rng.uniform(20.0, 45.0)),
    )
    r_tr = float(rng.uniform(9.0, 11.0))
    trachea = np.stack([carina, carina + _vec(0.0, 0.0, 150.0)])
    right_main = _spline_path(
        np.stack([carina, carina + _vec(-14.0, 2.0, -12.0), carina + _vec(-24.0, 4.0, -22.0)]), 2.0
    )
    right_lower = _spline_path(
        np.stack(
            [
                right_main[-1],
                right_main[-1] + _vec(-8.0, 4.0, -18.0),
                right_main[-1] + _vec(-14.0, 8.0, -45.0),
            ]
        ),
        2.0,
    )
    left_main = _spline_path(
        np.stack([carina, carina + _vec(22.0, 5.0, -12.0), carina + _vec(42.0, 10.0, -24.0)]), 2.0
    )
    left_lower = _spline_path(
        np.stack(
            [
                left_main[-1],
                left_main[-1] + _vec(8.0, 6.0, -16.0),
                left_main[-1] + _vec(14.0, 10.0, -42.0),
            ]
        ),
        2.0,
    )
    hila = (right_main[-1] + _vec(-6.0, -4.0, -8.0), left_main[-1] + _vec(6.0, -4.0, -8.0))

    # pulmonary arteries: the right one passes behind the ascending aorta
    pa_end = heart.pa.b
    r_br = float(rng.uniform(9.0, 11.5)) * heart.scale
    z_b = float(pa_end[2])
    asc_at = aorta[: max(asc_end, 2)]
    k = int(np.argmin(np.abs(asc_at[:, 2] - z_b)))
    behind = asc_at[k] + _vec(0.0, float(radius[k]) + r_br + 3.0, -2.0)
    rpa = _spline_path(np.stack([pa_end, behind, hila[0] + _vec(0.0, -6.0, 4.0)]), 2.0)
    lpa = _spline_path(
        np.stack([pa_end, pa_end + _vec(16.0, 10.0, 6.0), hila[1] + _vec(0.0, -4.0, 6.0)]), 2.0
    )

    # caval veins
    ra = heart.ra
    svc_r = float(rng.uniform(8.5, 11.0))
    k_stj = int(np.argmin(np.abs(asc_at[:, 2] - (float(stj[2]) + 20.0))))
    svc_x = float(asc_at[k_stj][0]) - float(radius[k_stj]) - svc_r - 3.0
    svc_y = float(asc_at[k_stj][1]) + float(rng.uniform(2.0, 10.0))
    ra_top = ra.centre + _vec(0.0, 0.0, 0.7 * ra.radii[2])
    svc = _spline_path(
        np.stack(
            [
                ra_top,
                _vec(svc_x, svc_y, float(ra_top[2]) + 18.0),
                _vec(svc_x - 2.0, svc_y + 4.0, z_lm + 150.0),
            ]
        ),
        2.0,
    )
    ivc_r = float(rng.uniform(10.5, 13.0))
    ra_bot = ra.centre + _vec(4.0, 6.0, -0.65 * ra.radii[2])
    ivc = np.stack([_vec(float(ra_bot[0]) + 4.0, float(ra_bot[1]) + 10.0, z_bottom - 80.0), ra_bot])
    # pulmonary veins from the four corners of the left atrium to the hila
    pvs = []
    pv_r = float(rng.uniform(5.5, 7.0))
    for side in (1.0, -1.0):
        for dz in (0.5, -0.45):
            start = la.centre + _vec(side * 0.6 * la.radii[0], 0.3 * la.radii[1], dz * la.radii[2])
            length = float(rng.uniform(22.0, 34.0))
            direction = _unit(_vec(side * 1.0, float(rng.uniform(0.2, 0.6)), 0.5 * dz))
            end = start + length * direction
            pvs.append(
                _spline_path(
                    np.stack(
                        [
                            la.centre + _vec(side * 0.3 * la.radii[0], 0.0, dz * la.radii[2]),
                            start,
                            end,
                        ]
                    ),
                    2.0,
                )
            )
    return _Mediastinum(
        aorta=aorta,
        aorta_radius=radius,
        ascending_end=asc_end,
        descending_start=desc_start,
        svc=svc,
        svc_r=svc_r,
        ivc=ivc,
        ivc_r=ivc_r,
        rpa=rpa,
        lpa=lpa,
        pa_branch_r=r_br,
        pulmonary_veins=tuple(pvs),
        pv_r=pv_r,
        oesophagus=oes,
        oesophagus_semi=oes_semi,
        oesophagus_air=air,
        azygos=azygos,
        azygos_r=float(rng.uniform(3.5, 5.0)),
        trachea=trachea,
        bronchi=(right_main, right_lower, left_main, left_lower),
        airway_r=(r_tr, float(rng.uniform(6.0, 7.5))),
        carina=carina,
        hila=hila,
    )


def _build_abdomen(
    heart: _Heart, body: _Body, res: _Resolved, rng: np.random.Generator
) -> _Abdomen:
    """Diaphragmatic domes under the heart (cranio-caudal heart offset moves them) and the
    liver, spleen and stomach below them."""
    samples = heart.samples(("lv", "rv"))
    z_low = float(samples[:, 2].min())
    oz = res.heart_offset_mm[2]
    z_ct = z_low + float(rng.uniform(-4.0, 4.0)) - 0.35 * oz
    xm, yc = body.x_mid, body.y_centre
    xr = xm - float(rng.uniform(50.0, 80.0))
    xl = xm + float(rng.uniform(55.0, 85.0))
    zr = z_ct + float(rng.uniform(14.0, 35.0))
    zl = z_ct + float(rng.uniform(2.0, 18.0))
    domes = (
        (
            xr,
            yc + float(rng.uniform(-5.0, 15.0)),
            zr,
            float(rng.uniform(80.0, 120.0)),
            float(rng.uniform(60.0, 90.0)),
        ),
        (
            xl,
            yc + float(rng.uniform(0.0, 15.0)),
            zl,
            float(rng.uniform(70.0, 110.0)),
            float(rng.uniform(55.0, 85.0)),
        ),
        (xm + 10.0, float(heart.centre[1]), z_ct, 260.0, 260.0),
    )
    liver = _axis_ellipsoid(_vec(xm - 35.0, yc + 5.0, zr - 70.0), (125.0, 95.0, 90.0))
    spleen = _axis_ellipsoid(_vec(xl + 25.0, yc + 50.0, zl - 45.0), (28.0, 45.0, 55.0))
    stomach = _axis_ellipsoid(_vec(xl - 10.0, yc - 5.0, zl - 38.0), (48.0, 38.0, 45.0))
    return _Abdomen(
        domes=domes,
        thickness=float(rng.uniform(3.0, 5.0)),
        liver=liver,
        spleen=spleen,
        stomach=stomach,
        gas_level=zl - float(rng.uniform(8.0, 20.0)),
    )


# ------------------------------------------------------------------------------------------------
# Scan planning
# ------------------------------------------------------------------------------------------------


def _plan_scan(
    res: _Resolved, heart: _Heart, vessels: Sequence[_Vessel], rng: np.random.Generator
) -> _Scan:
    """Slices from 10-40 mm above the LM to a few mm below the heart (35-75 slices: margins
    trimmed, then the increment widened toward the thickness, when too many), field of view
    centred on the heart plus the offset."""
    lm = next(v for v in vessels if v.name == "LM")
    z_lm = float(lm.points[:, 2].max())
    z_low = float(heart.samples(("lv", "rv", "ra", "la")).min(axis=0)[2])
    above = float(rng.uniform(10.0, 40.0))
    below = float(rng.uniform(4.0, 15.0))
    inc = res.increment_mm
    thickness = res.thickness_mm

    def count(a: float, b: float, step: float) -> int:
        return math.floor((z_lm + a - (z_low - b)) / step + 1e-6) + 1

    while count(above, below, inc) > MAX_SLICES and above > 10.0:
        above = max(10.0, above - 2.0)
    while count(above, below, inc) > MAX_SLICES and below > 2.0:
        below = max(2.0, below - 1.0)
    if count(above, below, inc) > MAX_SLICES:
        inc = min(thickness, (z_lm + above - (z_low - below)) / (MAX_SLICES - 1) + 1e-3)
        inc = math.ceil(inc * 100.0) / 100.0
    while count(above, below, inc) < MIN_SLICES:
        if above < 60.0:
            above += 2.0
        else:
            below += 2.0
    n = min(count(above, below, inc), MAX_SLICES)
    z0 = z_lm + above - (n - 1) * inc
    z_mm = np.asarray(z0 + inc * np.arange(n), dtype=np.float64)
    centre = heart.samples(("lv", "rv", "la", "ra")).mean(axis=0)
    cx = float(centre[0]) + res.fov_offset_mm[0]
    cy = float(centre[1]) + res.fov_offset_mm[1]
    px = res.pixel_mm
    grid = (np.arange(MATRIX_SIZE) - (MATRIX_SIZE - 1) / 2.0) * px
    core = _psf_core_sigma(res.psf_fwhm_mm)
    return _Scan(
        px=px,
        x_mm=np.asarray(cx + grid, dtype=np.float64),
        y_mm=np.asarray(cy + grid, dtype=np.float64),
        z_mm=z_mm,
        thickness_mm=thickness,
        increment_mm=inc,
        ssp_sigma_mm=_SSP_EDGE_FRACTION * thickness,
        psf_core_sigma_mm=core,
        margin_above_mm=above,
        margin_below_mm=float(z_low - z_mm[0]),
    )


def _psf_core_sigma(fwhm: float) -> float:
    """Core sigma of the Gaussian-plus-halo PSF whose FWHM is ``fwhm`` (bisection)."""
    w, k = _PSF_HALO_WEIGHT, _PSF_HALO_SCALE

    def profile(r: float, sigma: float) -> float:
        return (1.0 - w) / sigma**2 * math.exp(-0.5 * (r / sigma) ** 2) + w / (
            k * sigma
        ) ** 2 * math.exp(-0.5 * (r / (k * sigma)) ** 2)

    lo, hi = 0.05, fwhm
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if profile(fwhm / 2.0, mid) > 0.5 * profile(0.0, mid):
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


# ------------------------------------------------------------------------------------------------
# Painting the large anatomy
# ------------------------------------------------------------------------------------------------


def _paint_body(coarse: _Coarse, body: _Body, tis: _Tissues) -> None:
    """Trunk layers (fat, breasts, muscle, lung with a dependent gradient), evaluated in 2-D at
    four heights and interpolated between them."""
    z_keys = np.linspace(float(coarse.z[0]), float(coarse.z[-1]), 4)
    xg = coarse.x.astype(np.float32)[None, :]
    yg = coarse.y.astype(np.float32)[:, None]
    inv = 1.0 / coarse.pixel_mm

    def frac(d: FArr) -> F32:
        return _fa(np.clip(0.5 - d * inv, 0.0, 1.0).astype(np.float32))

    outer = np.stack([frac(body.outline_sd(xg, yg, float(z), 0.0, 0.0)) for z in z_keys])
    muscle = np.stack(
        [frac(body.outline_sd(xg, yg, float(z), body.fat_mm, 0.8 * body.fat_mm)) for z in z_keys]
    )
    cavity = np.stack([frac(body.cavity_sd(xg, yg, float(z))) for z in z_keys])
    lung = tis.lung + tis.lung_gradient * np.clip((yg - (body.y_centre - 60.0)) / 140.0, 0.0, 1.0)
    weights = np.interp(coarse.z, z_keys, np.arange(len(z_keys)))
    i0 = np.clip(np.floor(weights).astype(int), 0, len(z_keys) - 2)
    t = (weights - i0).astype(np.float32)
    breasts = body.breasts
    breast_shapes: list[_Ellipsoid] = []
    gland_shapes: list[_Ellipsoid] = []
    if breasts is not None:
        for side in (-1.0, 1.0):
            x = body.x_mid + side * 0.5 * body.half_width
            frac_x = min(abs(x - body.x_mid) / body.half_width, 0.95)
            y_skin = body.y_centre - body.half_ant * (1.0 - frac_x**body.exponent) ** (
                1.0 / body.exponent
            )
            z_b = body.z_ref + 20.0
            breast_shapes.append(_axis_ellipsoid(_vec(x, y_skin + 0.25 * breasts[1], z_b), breasts))
            gland_shapes.append(
                _axis_ellipsoid(
                    _vec(x, y_skin - 0.2 * breasts[1], z_b),
                    (0.45 * breasts[0], 0.45 * breasts[1], 0.45 * breasts[2]),
                )
            )
    for iz in range(len(coarse.z)):
        plane = coarse.hu[iz]
        a, b = i0[iz], i0[iz] + 1
        tz = t[iz]
        if breasts is not None:
            for e in breast_shapes:
                d = e.sd(xg, yg, np.full((1, 1), coarse.z[iz], dtype=np.float32))
                plane += frac(d) * (np.float32(tis.fat) - plane)
        f = outer[a] + tz * (outer[b] - outer[a])
        plane += f * (np.float32(tis.fat) - plane)
        if breasts is not None:
            for e in gland_shapes:
                d = e.sd(xg, yg, np.full((1, 1), coarse.z[iz], dtype=np.float32))
                plane += frac(d) * (np.float32(tis.gland) - plane)
        f = muscle[a] + tz * (muscle[b] - muscle[a])
        plane += f * (np.float32(tis.muscle) - plane)
        f = cavity[a] + tz * (cavity[b] - cavity[a])
        plane += f * (lung - plane)


def _cavity_clip(body: _Body) -> Callable[[FArr, FArr, FArr], FArr]:
    """Distance to the thoracic cavity at the middle height of a box (clips lung vessels)."""

    def clip(xg: FArr, yg: FArr, zg: FArr) -> FArr:
        z = float(np.mean(zg))
        return body.cavity_sd(xg, yg, z) + 0.0 * zg

    return clip


def _paint_lung_vessels(
    coarse: _Coarse, body: _Body, med: _Mediastinum, tis: _Tissues, rng: np.random.Generator
) -> None:
    """Tapering soft-tissue vessels fanning out from both hila, clipped to the cavity."""
    clip = _cavity_clip(body)
    for side, hilum in ((-1.0, med.hila[0]), (1.0, med.hila[1])):
        for _ in range(int(rng.integers(14, 22))):
            start = hilum + rng.normal(0.0, 8.0, 3)
            direction = _unit(
                _vec(side * rng.uniform(0.3, 1.0), rng.uniform(-0.6, 0.9), rng.uniform(-0.9, 0.6))
            )
            length = float(rng.uniform(45.0, 110.0))
            ctrl = [start]
            for _ in range(3):
                direction = _unit(direction + rng.normal(0.0, 0.25, 3))
                ctrl.append(ctrl[-1] + direction * length / 3.0)
            pts = _spline_path(np.stack(ctrl), 4.0)
            r = np.linspace(float(rng.uniform(2.5, 4.0)), float(rng.uniform(0.8, 1.3)), len(pts))
            coarse.paint_tube(pts, r, tis.blood, chunk=3, clip=clip)


def _paint_abdomen(coarse: _Coarse, body: _Body, ab: _Abdomen, tis: _Tissues) -> None:
    """Diaphragm muscle, sub-diaphragmatic fat, liver, spleen and stomach with its gas cap."""
    z_top = max(d[2] for d in ab.domes) + ab.thickness + 2.0
    lo = _vec(float(coarse.x[0]), float(coarse.y[0]), float(coarse.z[0]))
    hi = _vec(float(coarse.x[-1]), float(coarse.y[-1]), z_top)
    win = coarse.window(lo, hi)
    if win is None:
        return
    xg2 = win.xg[0]
    yg2 = win.yg[0]
    dome = ab.dome_z(xg2, yg2)
    gy, gx = np.gradient(dome, coarse.pixel_mm)
    scale = (1.0 / np.sqrt(1.0 + gx * gx + gy * gy)).astype(np.float32)
    cav = body.cavity_sd(xg2, yg2, float(np.mean(win.zg)))
    below = (win.zg - dome[None]) * scale[None]
    d_dia = np.maximum(below - ab.thickness, cav[None] - 1.0)
    coarse.composite(win, d_dia, tis.muscle)
    d_abd = np.maximum(below, cav[None] + 2.0)
    coarse.composite(win, d_abd, min(tis.fat + 10.0, -80.0))
    for organ, value in ((ab.liver, tis.liver), (ab.spleen, tis.spleen), (ab.stomach, tis.muscle)):
        d = np.maximum(organ.sd(win.xg, win.yg, win.zg), d_abd + 1.0)
        coarse.composite(win, d, value)
    st = ab.stomach
    inner = _Ellipsoid(
        st.centre, st.axes, (st.radii[0] - 4.0, st.radii[1] - 4.0, st.radii[2] - 4.0)
    )
    d_in = np.maximum(inner.sd(win.xg, win.yg, win.zg), d_abd + 5.0)
    coarse.composite(win, d_in, tis.stomach)
    d_gas = np.maximum(d_in, ab.gas_level - win.zg)
    coarse.composite(win, d_gas, _AIR_HU)


def _paint_mediastinal_fat(
    coarse: _Coarse, heart: _Heart, body: _Body, med: _Mediastinum, tis: _Tissues, size: float
) -> None:
    """Fat columns round the great vessels and the posterior mediastinum, the prevascular fat
    between sternum and heart, and the paracardiac fat pads."""
    root = heart.root
    gv_bottom = root.annulus
    gv_top = root.annulus + _vec(-5.0, 5.0, 160.0)
    column = _Capsule(gv_bottom, gv_top, 30.0 + 10.0 * size, 34.0 + 10.0 * size)
    coarse.paint(*column.bbox(), column.sd, tis.fat)
    mid_oes = med.oesophagus.mean(axis=0)
    desc = med.aorta[med.descending_start :]
    if len(desc):
        xc = 0.5 * (float(mid_oes[0]) + float(desc[:, 0].mean()))
        yc = 0.5 * (float(mid_oes[1]) + float(desc[:, 1].mean()))
        post = _Capsule(
            _vec(xc, yc, float(coarse.z[0]) - 20.0),
            _vec(xc, yc, float(coarse.z[-1]) + 20.0),
            24.0 + 6.0 * size,
            24.0 + 6.0 * size,
        )
        coarse.paint(*post.bbox(), post.sd, tis.fat)
    # prevascular / anterior mediastinal fat bridging the sternum and the heart's front
    y_back = float(heart.centre[1])
    zs = np.linspace(body.z_xiphoid - 10.0, float(coarse.z[-1]) + 30.0, 12)
    gap_y = [0.5 * (body.sternum_at(float(z)) + y_back) for z in zs]
    half_y = 0.5 * max(y_back - body.sternum_at(float(zs[0])), 0.0) + 3.0
    ant = np.stack([_vec(body.x_mid + 10.0, y, float(z)) for y, z in zip(gap_y, zs, strict=True)])
    coarse.paint_ztube(ant, 1.0, tis.fat, semi=(16.0 + 14.0 * size, half_y))
    apex = heart.point(heart.lv_len, 0.0, 0.0)
    for centre, r in (
        (
            apex + _vec(5.0, -10.0, -8.0),
            (18.0 + 22.0 * size, 14.0 + 10.0 * size, 14.0 + 8.0 * size),
        ),
        (
            heart.ra.centre + _vec(-8.0, -18.0, -25.0),
            (14.0 + 18.0 * size, 12.0 + 8.0 * size, 12.0 + 6.0 * size),
        ),
    ):
        pad = _axis_ellipsoid(centre, r)
        coarse.paint(*pad.bbox(), pad.sd, tis.fat)


def _paint_posterior_mediastinum(coarse: _Coarse, med: _Mediastinum, tis: _Tissues) -> None:
    """Descending aorta, oesophagus (air in some studies) and azygos vein."""
    desc = med.aorta[med.descending_start :]
    if len(desc) > 1:
        coarse.paint_ztube(desc[::-1], med.aorta_radius[med.descending_start :][::-1], tis.blood)
    coarse.paint_ztube(med.oesophagus, 1.0, tis.muscle, semi=med.oesophagus_semi)
    if med.oesophagus_air is not None:
        coarse.paint_ztube(med.oesophagus, 1.0, _AIR_HU, semi=med.oesophagus_air)
    coarse.paint_ztube(med.azygos, med.azygos_r, tis.blood)


def _paint_airways(coarse: _Coarse, med: _Mediastinum, tis: _Tissues) -> None:
    """Trachea and main bronchi (soft-tissue wall, air lumen) when near the scan."""
    r_tr, r_br = med.airway_r
    if med.carina[2] - 60.0 > coarse.z[-1]:
        return
    coarse.paint_ztube(med.trachea, r_tr, tis.muscle - 10.0)
    for b in med.bronchi:
        coarse.paint_tube(b, r_br, tis.muscle - 10.0, chunk=4)
    coarse.paint_ztube(med.trachea, r_tr - 2.0, _AIR_HU)
    for b in med.bronchi:
        coarse.paint_tube(b, r_br - 1.8, _AIR_HU, chunk=4)


def _paint_great_vessels(coarse: _Coarse, med: _Mediastinum, tis: _Tissues) -> None:
    """Caval veins, pulmonary veins and arteries, ascending aorta and (when in range) the arch."""
    coarse.paint_ztube(med.svc, med.svc_r, tis.blood)
    coarse.paint_ztube(med.ivc, med.ivc_r, tis.blood)
    for pv in med.pulmonary_veins:
        coarse.paint_tube(pv, med.pv_r, tis.blood, chunk=4)
    coarse.paint_tube(med.rpa, med.pa_branch_r, tis.blood, chunk=4)
    coarse.paint_tube(med.lpa, med.pa_branch_r, tis.blood, chunk=4)
    a0 = 3
    asc = med.aorta[a0 : med.ascending_end + 1]
    if len(asc) > 1:
        coarse.paint_ztube(asc, med.aorta_radius[a0 : med.ascending_end + 1], tis.blood)
    arch = med.aorta[max(med.ascending_end - 1, 0) : med.descending_start + 2]
    if (
        len(arch) > 1
        and arch[:, 2].max() + 25.0 > coarse.z[0]
        and arch[:, 2].min() - 25.0 < coarse.z[-1]
    ):
        coarse.paint_tube(
            arch,
            med.aorta_radius[max(med.ascending_end - 1, 0) : med.descending_start + 2],
            tis.blood,
            chunk=3,
        )


class _HeartPainter:
    """Paints the heart in two passes around the coronary sleeves (sac first, chambers last)."""

    def __init__(self, coarse: _Coarse, heart: _Heart) -> None:
        self.coarse = coarse
        self.heart = heart
        pts = heart.samples()
        pad = heart.hull_k + 16.0
        self.win = coarse.window(pts.min(axis=0) - pad, pts.max(axis=0) + pad)
        self.cache: dict[str, tuple[tuple[slice, slice, slice], _Win, FArr]] = {}

    def paint_sac(self, tis: _Tissues) -> None:
        win = self.win
        if win is None:
            return
        heart = self.heart
        ha, hb, hc = heart.local(win.xg, win.yg, win.zg)
        hull = np.full(win.shape, 1e3, dtype=np.float32)
        for name in _HEART_PARTS:
            lo, hi = heart.part_bbox(name, heart.hull_k + 2.0)
            sub = win.sub(lo, hi)
            if sub is None:
                continue
            rel, sw = sub
            d = heart.part_sd(name, sw.xg, sw.yg, sw.zg, ha[rel], hb[rel], hc[rel])
            self.cache[name] = (rel, sw, d)
            hull[rel] = _smin(hull[rel], d, heart.hull_k)
        t = heart.fat_thickness(ha, hb, hc)
        sac = hull - t
        self.coarse.composite(win, sac - heart.peri_t, tis.pericardium)
        self.coarse.composite(win, sac, tis.epicardial_fat)

    def paint_chambers(self, tis: _Tissues) -> None:
        win = self.win
        if win is None:
            return
        heart = self.heart
        values = {
            "ra": tis.blood,
            "raa": tis.blood,
            "la": tis.blood,
            "laa": tis.blood,
            "rv": tis.myocardium,
            "rvot": tis.blood,
            "lv": tis.myocardium,
            "root": tis.blood,
            "pa": tis.blood,
        }
        for name in _HEART_PARTS:
            if name not in self.cache:
                continue
            _, sw, d = self.cache[name]
            self.coarse.composite(sw, d, values[name])
            if name in ("rv", "lv"):
                ha, hb, hc = heart.local(sw.xg, sw.yg, sw.zg)
                cav = (
                    heart._rv(ha, hb, hc, True) if name == "rv" else heart._bullet(ha, hb, hc, True)
                )
                self.coarse.composite(sw, cav, tis.blood)


def _paint_coronary_sleeves(coarse: _Coarse, vessels: Sequence[_Vessel], tis: _Tissues) -> None:
    """A fat sleeve round every coronary vessel (painted before the chambers, so it never
    cuts into the muscle)."""
    for v in vessels:
        start = int(np.searchsorted(v.arclen, 3.0)) if v.name in ("LM", "RCA") else 0
        pts = v.points[start::2]
        sleeve = v.sleeve[start::2]
        if len(pts) > 1:
            coarse.paint_tube(pts, sleeve, tis.epicardial_fat, chunk=4)


def _paint_coronary_sinus(
    coarse: _Coarse,
    heart: _Heart,
    vessels: Sequence[_Vessel],
    tis: _Tissues,
    rng: np.random.Generator,
) -> None:
    """The coronary sinus on the atrial side of the posterior left AV groove (skipped when it
    would touch a coronary sleeve)."""
    post0 = float(heart.junctions(np.array([heart.a_ring]))[1][0])
    th = np.radians(np.arange(175.0, math.degrees(post0) + 360.0 + 10.0, 4.0))
    a_cs = heart.a_ring - float(rng.uniform(6.0, 9.0))
    r_cs = float(rng.uniform(3.0, 4.5))
    guide = heart.surface_point(np.full_like(th, a_cs), th, 2.0)
    tissue = _points_sdf(heart.tissue_sd)
    pts = _project_to_level(
        _resample(guide, 2.0), np.full(len(_resample(guide, 2.0)), r_cs + 0.5), tissue
    )
    pts = _smooth_path(pts, 3)
    others = np.concatenate([v.points for v in vessels])
    reach = np.concatenate([v.sleeve for v in vessels])
    for p in pts:
        if (np.linalg.norm(others - p, axis=1) - reach < r_cs + 0.5).any():
            return
    coarse.paint_tube(pts, r_cs, tis.blood, chunk=4)


# ------------------------------------------------------------------------------------------------
# Bones
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rib:
    """One rib (flattened elliptical tube) and its costal cartilage."""

    points: F64
    normals: F64
    semi: tuple[float, float]
    cartilage: F64
    cartilage_normals: F64
    cartilage_semi: tuple[float, float]


def _bone_value(tis: _Tissues, cortex_mm: float, pixel: float) -> Callable[[_Win, FArr], FArr]:
    """HU inside a bone: cortex within ``cortex_mm`` of the surface, cancellous deeper."""

    def value(win: _Win, d: FArr) -> FArr:
        t = np.clip(0.5 + (d + cortex_mm) * (1.0 / pixel), 0.0, 1.0)
        return _fa(np.float32(tis.cancellous) + np.float32(tis.cortex - tis.cancellous) * t)

    return value


def _build_ribs(body: _Body, coarse: _Coarse, rng: np.random.Generator) -> list[_Rib]:
    """Ribs every vertebral level, from the costovertebral joint round the cavity outline,
    sloping down, with costal cartilage to the sternal edge (or the costal margin)."""
    ribs: list[_Rib] = []
    z_hi = float(coarse.z[-1]) + 70.0
    z_lo = float(coarse.z[0]) - 20.0
    z_head = z_hi
    level = body.level_mm
    while z_head > z_lo:
        for side in (-1.0, 1.0):
            drop = float(rng.uniform(35.0, 65.0))
            phi0 = math.radians(float(rng.uniform(22.0, 30.0)))
            phi_end = math.radians(float(rng.uniform(128.0, 145.0)))
            semi = (float(rng.uniform(2.6, 3.6)), float(rng.uniform(5.0, 7.0)))
            phis = np.linspace(phi0, phi_end, 26)
            pts = []
            normals = []
            for phi in phis:
                z = z_head - drop * ((phi - phi0) / (phi_end - phi0)) ** 1.3
                p, n = body.cavity_point(side * phi, z, semi[0] + 1.0)
                pts.append(p)
                normals.append(n)
            joint = _vec(
                body.spine_x + side * (body.vb_half[0] + 3.0),
                body.spine_at(z_head) + 3.0,
                z_head + 2.0,
            )
            pts_arr = np.concatenate([joint[None, :], np.stack(pts)])
            normals_arr = np.concatenate([normals[0][None, :], np.stack(normals)])
            z_end = float(pts_arr[-1, 2])
            reaches = z_head > body.z_xiphoid + 20.0
            phi_c_end = math.radians(172.0 if reaches else 160.0)
            rise = float(rng.uniform(5.0, 25.0)) if reaches else -5.0
            cart_pts = []
            cart_n = []
            cphis = np.linspace(phi_end, phi_c_end, 8)
            for j, phi in enumerate(cphis):
                z = z_end + rise * (j / (len(cphis) - 1))
                p, n = body.cavity_point(side * float(phi), z, 4.5)
                cart_pts.append(p)
                cart_n.append(n)
            if reaches:
                st = _vec(
                    body.x_mid + side * (body.sternum_half[0] + 1.0),
                    body.sternum_at(z_end + rise) - body.sternum_half[1],
                    z_end + rise,
                )
                cart_pts.append(st)
                cart_n.append(cart_n[-1])
            ribs.append(
                _Rib(
                    points=pts_arr,
                    normals=normals_arr,
                    semi=semi,
                    cartilage=np.stack(cart_pts),
                    cartilage_normals=np.stack(cart_n),
                    cartilage_semi=(float(rng.uniform(3.5, 4.5)), float(rng.uniform(5.0, 6.5))),
                )
            )
        z_head -= level
    return ribs


def _paint_flat_tube(
    coarse: _Coarse,
    pts: F64,
    normals: F64,
    semi: tuple[float, float],
    value: float | Callable[[_Win, FArr], FArr],
    bone: bool,
    chunk: int = 3,
) -> None:
    """Paint a tube of elliptical cross-section along a polyline, in chunks."""
    rmax = max(semi) + 1.0
    for start in range(0, len(pts) - 1, chunk):
        stop = min(start + chunk, len(pts) - 1)
        seg = pts[start : stop + 1]
        win = coarse.window(seg.min(axis=0) - rmax, seg.max(axis=0) + rmax)
        if win is None:
            continue
        d: FArr | None = None
        for i in range(start, stop):
            n = normals[i] + normals[i + 1]
            di = _sd_flat_segment(win.xg, win.yg, win.zg, pts[i], pts[i + 1], n, semi[0], semi[1])
            d = di if d is None else np.minimum(d, di)
        assert d is not None
        val = value(win, d) if callable(value) else value
        coarse.composite(win, d, val, bone)


def _paint_bones(
    coarse: _Coarse, body: _Body, ribs: Sequence[_Rib], tis: _Tissues, rng: np.random.Generator
) -> list[TruthObject]:
    """Discs, vertebral bodies (tilted with the kyphosis), posterior elements, canal and cord,
    ribs, costal cartilage, sternum and xiphoid; returns their truth objects."""
    objects: list[TruthObject] = []
    pix = coarse.pixel_mm
    cortex_t = float(rng.uniform(1.2, 1.8))
    bone_val = _bone_value(tis, cortex_t, pix)
    z0, z1 = float(coarse.z[0]), float(coarse.z[-1])
    # spine: disc column, bodies, posterior elements, canal and cord
    col = np.stack([_vec(body.spine_x, body.spine_at(z), z) for z in (z0 - 30.0, z1 + 30.0)])
    coarse.paint_ztube(col, 1.0, tis.disc, semi=(body.vb_half[0] - 1.0, body.vb_half[1] - 1.0))
    level = body.level_mm
    height = level - float(rng.uniform(4.0, 6.0))
    z_c = body.z_ref + float(rng.uniform(0.0, level))
    while z_c - level > z0 - level:
        z_c -= level
    index = 0
    while z_c < z1 + level:
        yc = body.spine_at(z_c)
        tilt = math.atan(body.spine_tilt) + float(rng.uniform(-0.05, 0.05))
        hx, hy = body.vb_half
        hx *= float(rng.uniform(0.95, 1.05))
        centre = _vec(body.spine_x, yc, z_c)

        def vb_sd(
            xg: FArr,
            yg: FArr,
            zg: FArr,
            c: F64 = centre,
            t: float = tilt,
            hx: float = hx,
            hy: float = hy,
        ) -> FArr:
            dy = yg - float(c[1])
            dz = zg - float(c[2])
            yy = dy * math.cos(t) - dz * math.sin(t)
            zz = dy * math.sin(t) + dz * math.cos(t)
            dxy = _sd_ellipse2(xg - float(c[0]), yy, hx - 1.5, hy - 1.5) - 1.5
            dz_ = np.abs(zz) - (0.5 * height - 1.5)
            out = np.sqrt(np.maximum(dxy, 0.0) ** 2 + np.maximum(dz_, 0.0) ** 2) + np.minimum(
                np.maximum(dxy, dz_), 0.0
            )
            return _fa(out - 1.5)

        half = _vec(
            hx + 2.0,
            hy + 2.0 + 0.5 * height * abs(math.sin(tilt)),
            0.5 * height + 2.0 + hy * abs(math.sin(tilt)),
        )
        coarse.paint(centre - half, centre + half, vb_sd, bone_val, bone=True)
        back = yc + hy
        post_val = tis.cancellous + 0.45 * (tis.cortex - tis.cancellous)
        for side in (-1.0, 1.0):
            ped = _Capsule(
                _vec(body.spine_x + side * 0.6 * hx, back - 3.0, z_c + 2.0),
                _vec(body.spine_x + side * 0.55 * hx, back + 14.0, z_c + 2.0),
                4.0,
                4.5,
            )
            coarse.paint(*ped.bbox(), ped.sd, post_val, bone=True)
            lam = _Capsule(
                _vec(body.spine_x + side * 0.55 * hx, back + 14.0, z_c + 2.0),
                _vec(body.spine_x, back + 21.0, z_c - 1.0),
                3.5,
                4.0,
            )
            coarse.paint(*lam.bbox(), lam.sd, post_val, bone=True)
            trans = _Capsule(
                _vec(body.spine_x + side * 0.55 * hx, back + 14.0, z_c + 4.0),
                _vec(body.spine_x + side * (hx + 16.0), back + 20.0, z_c + 3.0),
                4.0,
                5.0,
            )
            coarse.paint(*trans.bbox(), trans.sd, post_val, bone=True)
        spin = _Capsule(
            _vec(body.spine_x, back + 21.0, z_c - 1.0),
            _vec(body.spine_x, back + 38.0, z_c - 14.0),
            4.0,
            3.0,
        )
        coarse.paint(*spin.bbox(), spin.sd, post_val, bone=True)
        objects.append(
            TruthObject(
                "bone",
                f"vertebra {index}",
                _xyz(centre),
                (hx, hy, 0.5 * height),
                tis.cortex,
                math.pi * hx * hy * height,
            )
        )
        index += 1
        z_c += level
    canal_y = (body.spine_at(z0) + body.vb_half[1] + 8.5, body.spine_at(z1) + body.vb_half[1] + 8.5)
    canal = np.stack(
        [_vec(body.spine_x, canal_y[0], z0 - 10.0), _vec(body.spine_x, canal_y[1], z1 + 10.0)]
    )
    coarse.paint_ztube(canal, 1.0, tis.csf, semi=(8.0, 7.0))
    coarse.paint_ztube(canal, 1.0, tis.muscle - 10.0, semi=(4.5, 3.8))
    # ribs and costal cartilage
    for i, rib in enumerate(ribs):
        rib_val = _bone_value(tis, min(cortex_t, 0.45 * rib.semi[0]), pix)
        _paint_flat_tube(coarse, rib.points, rib.normals, rib.semi, rib_val, bone=True)
        _paint_flat_tube(
            coarse,
            rib.cartilage,
            rib.cartilage_normals,
            rib.cartilage_semi,
            tis.cartilage,
            bone=False,
        )
        mid = rib.points[len(rib.points) // 2]
        objects.append(
            TruthObject(
                "bone", f"rib {i}", _xyz(mid), (rib.semi[0], rib.semi[1], 0.0), tis.cortex, 0.0
            )
        )
    # sternum and xiphoid
    sh = body.sternum_half

    def sternum_sd(xg: FArr, yg: FArr, zg: FArr) -> FArr:
        yc = body.sternum_y - body.sternum_tilt * (zg - body.z_ref) - sh[1]
        dxy = _sd_superellipse(xg - body.x_mid, yg - yc, sh[0], sh[1], sh[1], 2.6)
        return _fa(np.maximum(dxy, body.z_xiphoid - zg))

    lo = _vec(
        body.x_mid - sh[0] - 2.0,
        body.sternum_at(z1) - 2.0 * sh[1] - 3.0,
        max(z0, body.z_xiphoid) - 2.0,
    )
    hi = _vec(body.x_mid + sh[0] + 2.0, body.sternum_at(z0) + 3.0, z1 + 2.0)
    coarse.paint(lo, hi, sternum_sd, bone_val, bone=True)
    xiph_top = _vec(body.x_mid, body.sternum_at(body.z_xiphoid) - sh[1], body.z_xiphoid + 2.0)
    xiph = _Capsule(xiph_top, xiph_top + _vec(0.0, -6.0, -30.0), 4.5, 3.0)
    coarse.paint(*xiph.bbox(), xiph.sd, bone_val, bone=True)
    objects.append(
        TruthObject(
            "bone",
            "sternum",
            (body.x_mid, body.sternum_y - sh[1], body.z_ref),
            (sh[0], sh[1], 0.0),
            tis.cortex,
            0.0,
        )
    )
    return objects


# ------------------------------------------------------------------------------------------------
# Calcified objects: distractors, plaques, metal
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calc:
    """One calcified (or metal) object: its distance field, box, density and truth record."""

    kind: str
    """``"plaque"`` or a :class:`Distractor` name in lower case."""
    code: int
    """Artery code (plaques) or :class:`Distractor` value."""
    label: str
    lo: F64
    hi: F64
    sdf: Callable[[FArr, FArr, FArr], FArr]
    density_hu: float
    centre: F64
    radii: tuple[float, float, float]
    volume_mm3: float
    metal: bool = False
    probe: dict[str, Any] | None = None

    def truth_object(self, density_hu: float | None = None) -> TruthObject:
        return TruthObject(
            kind=self.kind,
            label=self.label,
            center_mm=_xyz(self.centre),
            radii_mm=self.radii,
            density_hu=float(self.density_hu if density_hu is None else density_hu),
            geometric_volume_mm3=float(self.volume_mm3),
        )


def _ellipsoid_calc(
    kind: str,
    code: int,
    label: str,
    e: _Ellipsoid,
    density: float,
    metal: bool = False,
    probe: dict[str, Any] | None = None,
) -> _Calc:
    """A :class:`_Calc` for an ellipsoidal object."""
    lo, hi = e.bbox(0.5)
    return _Calc(
        kind, code, label, lo, hi, e.sd, density, e.centre, e.radii, e.volume_mm3, metal, probe
    )


def _wrap(angle: FArr) -> FArr:
    """Angles wrapped to (-pi, pi]."""
    return _fa(np.mod(angle + math.pi, 2.0 * math.pi) - math.pi)


def _wall_patch(
    axis_point: F64,
    tangent: F64,
    e1: F64,
    r_in: float,
    r_out: float,
    phi0: float,
    half_phi: float,
    half_len: float,
) -> tuple[Callable[[FArr, FArr, FArr], FArr], F64, F64, float]:
    """A curved plate in the wall of a (locally straight) tube: radii ``r_in``-``r_out``,
    angles ``phi0 +- half_phi`` around ``tangent`` from ``e1``, ``+- half_len`` along it."""
    t = _unit(tangent)
    e1 = _unit(e1 - t * float(np.dot(e1, t)))
    e2 = np.cross(t, e1)
    cx, cy, cz = _xyz(axis_point)
    tx, ty, tz = _xyz(t)
    ax, ay, az = _xyz(e1)
    bx, by, bz = _xyz(e2)
    r_mid = 0.5 * (r_in + r_out)
    half_t = 0.5 * (r_out - r_in)

    def sd(xg: FArr, yg: FArr, zg: FArr) -> FArr:
        dx = xg - cx
        dy = yg - cy
        dz = zg - cz
        s = dx * tx + dy * ty + dz * tz
        q1 = dx * ax + dy * ay + dz * az
        q2 = dx * bx + dy * by + dz * bz
        rho = np.sqrt(q1 * q1 + q2 * q2)
        dphi = _wrap(np.arctan2(q2, q1) - phi0)
        d_r = np.abs(rho - r_mid) - half_t
        d_a = (np.abs(dphi) - half_phi) * r_mid
        d_s = np.abs(s) - half_len
        return _fa(np.maximum(np.maximum(d_r, d_a), d_s))

    phis = phi0 + np.linspace(-half_phi, half_phi, 9)
    ring = np.cos(phis)[:, None] * e1 + np.sin(phis)[:, None] * e2
    pts = np.concatenate(
        [axis_point + r * ring + s * t for r in (r_in, r_out) for s in (-half_len, half_len)]
    )
    volume = 2.0 * half_phi * r_mid * (r_out - r_in) * 2.0 * half_len
    return sd, pts.min(axis=0) - 0.5, pts.max(axis=0) + 0.5, volume


def _torus_arc(
    centre: F64, normal: F64, e1: F64, radius: float, tube: float, phi0: float, half_phi: float
) -> tuple[Callable[[FArr, FArr, FArr], FArr], F64, F64, float]:
    """A tube along an arc of a circle (``half_phi`` = pi gives the full ring), with round ends."""
    n = _unit(normal)
    e1 = _unit(e1 - n * float(np.dot(e1, n)))
    e2 = np.cross(n, e1)
    cx, cy, cz = _xyz(centre)
    nx, ny, nz = _xyz(n)
    ax, ay, az = _xyz(e1)
    bx, by, bz = _xyz(e2)
    full = half_phi >= math.pi - 1e-6
    ends = [
        centre + radius * (math.cos(phi0 + s * half_phi) * e1 + math.sin(phi0 + s * half_phi) * e2)
        for s in (-1.0, 1.0)
    ]

    def sd(xg: FArr, yg: FArr, zg: FArr) -> FArr:
        dx = xg - cx
        dy = yg - cy
        dz = zg - cz
        h = dx * nx + dy * ny + dz * nz
        q1 = dx * ax + dy * ay + dz * az
        q2 = dx * bx + dy * by + dz * bz
        rho = np.sqrt(q1 * q1 + q2 * q2)
        ring = np.sqrt((rho - radius) ** 2 + h * h) - tube
        if full:
            return _fa(ring)
        dphi = _wrap(np.arctan2(q2, q1) - phi0)
        cap = None
        for e in ends:
            ex, ey, ez = _xyz(e)
            dc = np.sqrt((xg - ex) ** 2 + (yg - ey) ** 2 + (zg - ez) ** 2) - tube
            cap = dc if cap is None else np.minimum(cap, dc)
        assert cap is not None
        return _fa(np.where(np.abs(dphi) <= half_phi, ring, cap))

    phis = phi0 + np.linspace(-half_phi, half_phi, 25)
    pts = centre + radius * (np.cos(phis)[:, None] * e1 + np.sin(phis)[:, None] * e2)
    volume = math.pi * tube * tube * 2.0 * half_phi * radius
    return sd, pts.min(axis=0) - tube - 0.5, pts.max(axis=0) + tube + 0.5, volume


def _rounded_box(
    centre: F64, axes: F64, half: tuple[float, float, float], rounding: float
) -> Callable[[FArr, FArr, FArr], FArr]:
    """A box with rounded edges (surgical clips)."""
    cx, cy, cz = _xyz(centre)

    def sd(xg: FArr, yg: FArr, zg: FArr) -> FArr:
        dx = xg - cx
        dy = yg - cy
        dz = zg - cz
        qs = [
            np.abs(dx * float(e[0]) + dy * float(e[1]) + dz * float(e[2])) - (h - rounding)
            for e, h in zip(axes, half, strict=True)
        ]
        outside = np.sqrt(sum(np.maximum(q, 0.0) ** 2 for q in qs))
        inside = np.minimum(np.maximum(np.maximum(qs[0], qs[1]), qs[2]), 0.0)
        return _fa(outside + inside - rounding)

    return sd


def _random_frame(rng: np.random.Generator) -> F64:
    """A random orthonormal frame."""
    a = _unit(rng.normal(0.0, 1.0, 3))
    return _frame_from(a)


@dataclass
class _Plan:
    """Distractor objects and the lymph nodes' soft tissue (painted on the coarse grid)."""

    calcs: list[_Calc] = field(default_factory=list)
    nodes: list[_Ellipsoid] = field(default_factory=list)


def _aortic_wall_calcs(
    med: _Mediastinum, scan: _Scan, rng: np.random.Generator, count: int, plan: _Plan
) -> None:
    """Wall nodules and thin curved plates on the ascending, arch and descending aorta, where
    they are in the scan."""
    path, radius = med.aorta, med.aorta_radius
    tang = np.gradient(path, axis=0)
    tang /= np.maximum(np.linalg.norm(tang, axis=1, keepdims=True), 1e-9)
    ranges = {
        "ascending": (4, med.ascending_end),
        "arch": (med.ascending_end, med.descending_start),
        "descending": (med.descending_start, len(path) - 1),
    }
    visible = {
        name: [i for i in range(lo, hi) if scan.contains(path[i], 8.0, 1.0)]
        for name, (lo, hi) in ranges.items()
    }
    names = [n for n, idx in visible.items() if idx]
    placed = 0
    attempts = 0
    while placed < count and names and attempts < 10 * count:
        attempts += 1
        seg = (
            names[int(rng.integers(len(names)))]
            if placed >= len(names)
            else names[placed % len(names)]
        )
        i = int(rng.choice(visible[seg]))
        p, t, r = path[i], tang[i], float(radius[i])
        e1 = _perp(t)
        phi = float(rng.uniform(-math.pi, math.pi))
        density = float(rng.uniform(250.0, 1200.0))
        direction = _unit(math.cos(phi) * e1 + math.sin(phi) * np.cross(t, e1))
        if rng.random() < 0.5:
            radii = (
                float(rng.uniform(1.5, 5.0)),
                float(rng.uniform(0.8, 2.0)),
                float(rng.uniform(1.5, 4.0)),
            )
            centre = p + (r - 0.3 * radii[1]) * direction
            axes = np.stack([t, direction, np.cross(t, direction)])
            plan.calcs.append(
                _ellipsoid_calc(
                    "aortic_wall",
                    Distractor.AORTIC_WALL,
                    f"{seg} wall nodule",
                    _Ellipsoid(centre, axes, radii),
                    density,
                )
            )
        else:
            thick = float(rng.uniform(0.8, 2.0))
            half_phi = math.radians(float(rng.uniform(20.0, 70.0)))
            half_len = float(rng.uniform(3.0, 12.0))
            sd, lo, hi, vol = _wall_patch(p, t, e1, r - thick, r, phi, half_phi, half_len)
            plan.calcs.append(
                _Calc(
                    "aortic_wall",
                    Distractor.AORTIC_WALL,
                    f"{seg} wall plate",
                    lo,
                    hi,
                    sd,
                    density,
                    p + r * direction,
                    (half_len, r * half_phi, thick),
                    vol,
                )
            )
        placed += 1


def _valve_calcs(heart: _Heart, rng: np.random.Generator, count: int, plan: _Plan) -> None:
    """Aortic valve cusp nodules and arcs at the valve plane."""
    root = heart.root
    axis = root.axis
    e1 = root.sinus_dirs[0]
    for _ in range(count):
        cusp = int(rng.integers(3))
        d = root.sinus_dirs[cusp]
        phi_c = math.atan2(float(np.dot(d, np.cross(axis, e1))), float(np.dot(d, e1)))
        density = float(rng.uniform(300.0, 1100.0))
        if rng.random() < 0.55:
            rho = float(rng.uniform(0.35, 0.85)) * root.r_annulus
            phi = phi_c + math.radians(float(rng.uniform(-35.0, 35.0)))
            radial = math.cos(phi) * e1 + math.sin(phi) * np.cross(axis, e1)
            centre = root.annulus + float(rng.uniform(0.0, 4.0)) * axis + rho * radial
            r = float(rng.uniform(1.0, 3.5))
            radii = (r, r * float(rng.uniform(0.6, 1.0)), r * float(rng.uniform(0.6, 1.0)))
            plan.calcs.append(
                _ellipsoid_calc(
                    "aortic_valve",
                    Distractor.AORTIC_VALVE,
                    "cusp nodule",
                    _Ellipsoid(centre, _random_frame(rng), radii),
                    density,
                )
            )
        else:
            radius = float(rng.uniform(0.75, 0.98)) * root.r_annulus
            tube = float(rng.uniform(0.7, 1.5))
            half = math.radians(float(rng.uniform(20.0, 60.0)))
            centre = root.annulus + float(rng.uniform(-1.0, 3.0)) * axis
            sd, lo, hi, vol = _torus_arc(centre, axis, e1, radius, tube, phi_c, half)
            plan.calcs.append(
                _Calc(
                    "aortic_valve",
                    Distractor.AORTIC_VALVE,
                    "cusp arc",
                    lo,
                    hi,
                    sd,
                    density,
                    centre,
                    (radius, tube, tube),
                    vol,
                )
            )


def _mac_calc(heart: _Heart, rng: np.random.Generator, plan: _Plan, heavy: bool) -> None:
    """Mitral annulus calcification: a C-shaped arc (or, in some heavy studies, the full ring)
    on the posterior annulus at the left AV junction."""
    n = heart.u
    e1 = _unit(heart.v - n * float(np.dot(heart.v, n)))
    away = heart.mitral_centre - heart.root.annulus
    away = away - n * float(np.dot(away, n))
    e2 = np.cross(n, e1)
    phi0 = math.atan2(float(np.dot(away, e2)), float(np.dot(away, e1)))
    half = (
        math.pi
        if (heavy and rng.random() < 0.5)
        else math.radians(float(rng.uniform(50.0, 160.0 if not heavy else 180.0)))
    )
    tube = float(rng.uniform(1.2, 3.0 if heavy else 2.2))
    radius = heart.mitral_radius
    sd, lo, hi, vol = _torus_arc(heart.mitral_centre, n, e1, radius, tube, phi0, half)
    shape = "ring" if half >= math.pi - 1e-6 else "C-shaped arc"
    plan.calcs.append(
        _Calc(
            "mitral_annulus",
            Distractor.MITRAL_ANNULUS,
            shape,
            lo,
            hi,
            sd,
            float(rng.uniform(300.0, 1000.0)),
            heart.mitral_centre,
            (radius, tube, tube),
            vol,
        )
    )


def _sac_surface(heart: _Heart, start: F64, direction: F64) -> tuple[F64, F64] | None:
    """Where a ray from ``start`` leaves the pericardial sac, and the sac's outward normal."""
    sac = _points_sdf(heart.sac_sd)
    ts = np.linspace(-5.0, 35.0, 161)
    line = start + ts[:, None] * direction
    d = sac(line)
    cross = np.where((d[:-1] < 0) & (d[1:] >= 0))[0]
    if not len(cross):
        return None
    i = int(cross[0])
    t = ts[i] + (ts[i + 1] - ts[i]) * float(-d[i] / (d[i + 1] - d[i]))
    p = start + t * direction
    g = _numeric_gradient(sac, p[None, :])[0]
    return p, _unit(g)


def _pericardial_calcs(
    heart: _Heart,
    vessels: Sequence[_Vessel],
    scan: _Scan,
    rng: np.random.Generator,
    count: int,
    plan: _Plan,
    heavy: bool,
) -> None:
    """Plates on the pericardial sac over the RV, the diaphragmatic surface, the lateral wall or
    the apex, clear of the coronary vessels."""
    sites = ["rv", "diaphragmatic", "lateral", "apex"]
    vessel_pts = np.concatenate([v.points for v in vessels])
    vessel_r = np.concatenate([v.radii for v in vessels])
    placed = 0
    attempts = 0
    while placed < count and attempts < 40:
        attempts += 1
        site = sites[placed % len(sites)] if heavy else sites[int(rng.integers(len(sites)))]
        length = heart.lv_len
        if site == "rv":
            a, th = (
                float(rng.uniform(0.2, 0.65)) * length,
                math.radians(float(rng.uniform(-25.0, 30.0))),
            )
        elif site == "diaphragmatic":
            a, th = (
                float(rng.uniform(0.15, 0.7)) * length,
                math.radians(float(rng.uniform(-150.0, -70.0))),
            )
        elif site == "lateral":
            a, th = (
                float(rng.uniform(0.2, 0.7)) * length,
                math.radians(float(rng.uniform(150.0, 210.0))),
            )
        else:
            a, th = float(rng.uniform(0.8, 0.95)) * length, float(rng.uniform(-math.pi, math.pi))
        base = heart.surface_point(np.array([a]), np.array([th]), 0.0)[0]
        axis_pt = heart.point(a, 0.0, 0.0)
        found = _sac_surface(heart, base, _unit(base - axis_pt))
        if found is None:
            continue
        p0, normal = found
        if site == "diaphragmatic" and float(normal[2]) > 0.0:
            continue
        if not scan.contains(p0, 6.0, 1.0):
            continue
        extent = float(rng.uniform(4.0, 22.0 if heavy else 14.0))
        thick = float(rng.uniform(1.0, 2.5))
        near = np.linalg.norm(vessel_pts - p0, axis=1) - vessel_r
        if (near < extent + thick + 2.5).any():
            continue
        curvature = float(rng.uniform(45.0, 70.0))
        centre = p0 - curvature * normal
        cx, cy, cz = _xyz(centre)
        px_, py_, pz_ = _xyz(p0 + 0.5 * thick * normal)
        ca = curvature + 0.5 * thick

        def sd(
            xg: FArr,
            yg: FArr,
            zg: FArr,
            cx: float = cx,
            cy: float = cy,
            cz: float = cz,
            px_: float = px_,
            py_: float = py_,
            pz_: float = pz_,
            ca: float = ca,
            ht: float = 0.5 * thick,
            ext: float = extent,
        ) -> FArr:
            rs = np.sqrt((xg - cx) ** 2 + (yg - cy) ** 2 + (zg - cz) ** 2)
            ball = np.sqrt((xg - px_) ** 2 + (yg - py_) ** 2 + (zg - pz_) ** 2) - ext
            return _fa(np.maximum(np.abs(rs - ca) - ht, ball))

        lo = p0 - extent - thick - 1.0
        hi = p0 + extent + thick + 1.0
        plan.calcs.append(
            _Calc(
                "pericardium",
                Distractor.PERICARDIUM,
                f"{site} plate",
                lo,
                hi,
                sd,
                float(rng.uniform(250.0, 900.0)),
                p0,
                (extent, extent, thick),
                math.pi * extent**2 * thick,
            )
        )
        placed += 1


def _plan_nodes(
    heart: _Heart,
    med: _Mediastinum,
    scan: _Scan,
    rng: np.random.Generator,
    plan: _Plan,
    heavy: bool,
    calcified: int,
) -> None:
    """Mediastinal and hilar lymph nodes in view, the first ``calcified`` of them with a central,
    eggshell or dense calcification."""
    carina = med.carina
    aorta_top = med.aorta[int(np.argmax(med.aorta[:, 2]))]
    la = heart.la
    sites = {
        "subcarinal": carina + _vec(0.0, 6.0, -float(rng.uniform(12.0, 22.0))),
        "right hilar": med.hila[0] + _vec(-4.0, -3.0, -6.0),
        "left hilar": med.hila[1] + _vec(4.0, -3.0, -6.0),
        "aortopulmonary window": aorta_top + _vec(-5.0, 0.0, -float(med.aorta_radius.max()) - 10.0),
        "paratracheal": carina + _vec(-15.0, -6.0, 18.0),
        "para-oesophageal": la.centre
        + _vec(-0.55 * la.radii[0], la.radii[1] + 5.0, float(rng.uniform(-8.0, 8.0))),
        "lower hilar": la.centre
        + _vec(float(rng.choice([-1.0, 1.0])) * (la.radii[0] + 18.0), 6.0, -8.0),
    }
    tissue = _points_sdf(heart.tissue_sd)
    in_view = [k for k, p in sites.items() if scan.contains(p, 15.0, 4.0)]
    rng.shuffle(in_view)
    n_soft = int(rng.integers(0, 3))
    wanted = min(len(in_view), calcified + n_soft)
    for j, name in enumerate(in_view[:wanted]):
        centre = sites[name]
        radii = tuple(float(x) for x in rng.uniform(5.0, 9.0, 3) * rng.uniform(0.8, 1.2))
        r3 = (radii[0], radii[1], radii[2])
        # keep the node clear of the heart (it may abut the left atrium)
        gap = float(tissue(centre[None, :])[0])
        if gap < max(r3) + 1.0:
            g = _unit(_numeric_gradient(tissue, centre[None, :])[0])
            centre = centre + (max(r3) + 1.0 - gap) * g
        node = _Ellipsoid(centre, _random_frame(rng), r3)
        plan.nodes.append(node)
        if j >= calcified:
            continue
        style = int(rng.integers(3))
        density = float(rng.uniform(350.0, 1000.0))
        if style == 0:
            r = float(rng.uniform(1.5, min(4.0, 0.7 * min(r3))))
            calc = _Ellipsoid(
                centre + rng.normal(0.0, 1.0, 3), _random_frame(rng), (r, r * 0.9, r * 0.8)
            )
            plan.calcs.append(
                _ellipsoid_calc(
                    "lymph_node", Distractor.LYMPH_NODE, f"{name} node, central", calc, density
                )
            )
        elif style == 1:
            inner = _Ellipsoid(node.centre, node.axes, (r3[0] - 1.2, r3[1] - 1.2, r3[2] - 1.2))
            cut = _unit(rng.normal(0.0, 1.0, 3))
            keep = float(rng.uniform(-0.4, 0.6))
            cx, cy, cz = _xyz(centre)
            kx, ky, kz = _xyz(cut)
            mr = max(r3)

            def shell(
                xg: FArr,
                yg: FArr,
                zg: FArr,
                node: _Ellipsoid = node,
                inner: _Ellipsoid = inner,
                cx: float = cx,
                cy: float = cy,
                cz: float = cz,
                kx: float = kx,
                ky: float = ky,
                kz: float = kz,
                keep: float = keep,
                mr: float = mr,
            ) -> FArr:
                plane = (xg - cx) * kx + (yg - cy) * ky + (zg - cz) * kz - keep * mr
                return _fa(
                    np.maximum(np.maximum(node.sd(xg, yg, zg), -inner.sd(xg, yg, zg)), plane)
                )

            lo, hi = node.bbox(0.5)
            plan.calcs.append(
                _Calc(
                    "lymph_node",
                    Distractor.LYMPH_NODE,
                    f"{name} node, eggshell",
                    lo,
                    hi,
                    shell,
                    density,
                    centre,
                    r3,
                    0.5 * (node.volume_mm3 - inner.volume_mm3),
                )
            )
        else:
            dense = _Ellipsoid(centre, node.axes, (0.8 * r3[0], 0.8 * r3[1], 0.8 * r3[2]))
            plan.calcs.append(
                _ellipsoid_calc(
                    "lymph_node", Distractor.LYMPH_NODE, f"{name} node, dense", dense, density
                )
            )


def _granulomas(
    coarse: _Coarse, scan: _Scan, rng: np.random.Generator, count: int, plan: _Plan
) -> None:
    """Calcified granulomas at random points of the painted lung."""
    placed = 0
    attempts = 0
    while placed < count and attempts < 200:
        attempts += 1
        p = _vec(
            float(rng.uniform(scan.x_mm[0] + 10.0, scan.x_mm[-1] - 10.0)),
            float(rng.uniform(scan.y_mm[0] + 10.0, scan.y_mm[-1] - 10.0)),
            float(rng.uniform(scan.z_mm[0] + 3.0, scan.z_mm[-1] - 3.0)),
        )
        iz = int(np.argmin(np.abs(coarse.z - p[2])))
        iy = int(np.argmin(np.abs(coarse.y - p[1])))
        ix = int(np.argmin(np.abs(coarse.x - p[0])))
        block = coarse.hu[max(iz - 4, 0) : iz + 5, max(iy - 6, 0) : iy + 7, max(ix - 6, 0) : ix + 7]
        if block.size == 0 or float(block.max()) > -650.0:
            continue
        r = float(rng.uniform(1.5, 4.0))
        e = _Ellipsoid(
            p,
            _random_frame(rng),
            (r, r * float(rng.uniform(0.8, 1.0)), r * float(rng.uniform(0.8, 1.0))),
        )
        plan.calcs.append(
            _ellipsoid_calc(
                "lymph_node",
                Distractor.LYMPH_NODE,
                "lung granuloma",
                e,
                float(rng.uniform(400.0, 1200.0)),
            )
        )
        placed += 1


def _cartilage_calcs(
    ribs: Sequence[_Rib], scan: _Scan, rng: np.random.Generator, count: int, plan: _Plan
) -> None:
    """Calcified nodules and rims in the costal cartilages in view."""
    candidates = [
        (rib, j)
        for rib in ribs
        for j in range(len(rib.cartilage) - 1)
        if scan.contains(0.5 * (rib.cartilage[j] + rib.cartilage[j + 1]), 6.0, 1.5)
    ]
    if not candidates:
        return
    for _ in range(count):
        rib, j = candidates[int(rng.integers(len(candidates)))]
        a, b = rib.cartilage[j], rib.cartilage[j + 1]
        t = float(rng.uniform(0.2, 0.8))
        p = a + t * (b - a)
        density = float(rng.uniform(200.0, 700.0))
        rn, rb = rib.cartilage_semi
        if rng.random() < 0.6:
            r = float(rng.uniform(1.5, min(3.5, rn)))
            centre = p + rng.normal(0.0, 0.6, 3)
            e = _Ellipsoid(
                centre, _frame_from(b - a), (r * float(rng.uniform(1.0, 2.0)), r, r * 0.9)
            )
            plan.calcs.append(
                _ellipsoid_calc(
                    "costal_cartilage", Distractor.COSTAL_CARTILAGE, "cartilage nodule", e, density
                )
            )
        else:
            thick = float(rng.uniform(0.8, 1.5))
            extent = float(rng.uniform(3.0, 8.0))
            normal = rib.cartilage_normals[j]
            px_, py_, pz_ = _xyz(p)

            def rim(
                xg: FArr,
                yg: FArr,
                zg: FArr,
                a: F64 = a,
                b: F64 = b,
                n: F64 = normal,
                rn: float = rn,
                rb: float = rb,
                ht: float = 0.5 * thick,
                ext: float = extent,
                px_: float = px_,
                py_: float = py_,
                pz_: float = pz_,
            ) -> FArr:
                d = _sd_flat_segment(xg, yg, zg, a, b, n, rn, rb)
                ball = np.sqrt((xg - px_) ** 2 + (yg - py_) ** 2 + (zg - pz_) ** 2) - ext
                return _fa(np.maximum(np.abs(d + ht) - ht, ball))

            r = max(rn, rb) + 1.0
            plan.calcs.append(
                _Calc(
                    "costal_cartilage",
                    Distractor.COSTAL_CARTILAGE,
                    "cartilage rim",
                    p - extent - r,
                    p + extent + r,
                    rim,
                    density,
                    p,
                    (extent, extent, thick),
                    math.pi * extent**2 * thick,
                )
            )


def _metal_objects(
    body: _Body,
    heart: _Heart,
    med: _Mediastinum,
    scan: _Scan,
    rng: np.random.Generator,
    wires: bool,
    clips: int,
    plan: _Plan,
) -> None:
    """Sternal wires (loops round the sternum with a twisted knot) and surgical clips (internal
    mammary bed, mediastinum, pericardial surface)."""
    sh = body.sternum_half
    if wires:
        spacing = float(rng.uniform(18.0, 28.0))
        z = body.z_xiphoid + float(rng.uniform(8.0, 15.0))
        while z < float(scan.z_mm[-1]) + 5.0:
            if z > float(scan.z_mm[0]) - 2.0:
                yc = body.sternum_at(z) - sh[1]
                phis = np.linspace(0.0, 2.0 * math.pi, 33)
                tilt = float(rng.uniform(-0.06, 0.06))
                loop = np.stack(
                    [
                        body.x_mid + (sh[0] + 1.6) * np.cos(phis),
                        yc + (sh[1] + 1.4) * np.sin(phis),
                        z + tilt * (sh[0] + 1.6) * np.cos(phis) + 0.6 * np.sin(2.0 * phis),
                    ],
                    axis=1,
                )
                r_w = float(rng.uniform(0.6, 0.75))
                knot = _Ellipsoid(
                    _vec(body.x_mid + float(rng.uniform(-6.0, 6.0)), yc - sh[1] - 2.4, z),
                    _frame_from(_vec(1.0, 0.0, 0.0)),
                    (2.6, 1.6, 2.0),
                )

                def wire(
                    xg: FArr,
                    yg: FArr,
                    zg: FArr,
                    loop: F64 = loop,
                    r_w: float = r_w,
                    knot: _Ellipsoid = knot,
                ) -> FArr:
                    d = knot.sd(xg, yg, zg)
                    for i in range(len(loop) - 1):
                        d = np.minimum(d, _sd_capsule(xg, yg, zg, loop[i], loop[i + 1], r_w, r_w))
                    return d

                lo = np.minimum(loop.min(axis=0), knot.bbox()[0]) - 1.0
                hi = np.maximum(loop.max(axis=0), knot.bbox()[1]) + 1.0
                centre = _vec(body.x_mid, yc, z)
                if scan.contains(centre, 2.0, -2.0):
                    plan.calcs.append(
                        _Calc(
                            "metal",
                            Distractor.METAL,
                            "sternal wire",
                            lo,
                            hi,
                            wire,
                            0.0,
                            centre,
                            (sh[0] + 1.6, sh[1] + 1.4, r_w),
                            math.pi * r_w**2 * 2 * math.pi * sh[0] + knot.volume_mm3,
                            metal=True,
                        )
                    )
            z += spacing
    placed = 0
    attempts = 0
    while placed < clips and attempts < 50:
        attempts += 1
        site = int(rng.integers(3))
        if site == 0:
            z = float(rng.uniform(scan.z_mm[0] + 3.0, scan.z_mm[-1] - 3.0))
            p = _vec(
                body.x_mid + float(rng.uniform(12.0, 30.0)),
                body.sternum_at(z) + float(rng.uniform(4.0, 9.0)),
                z,
            )
            where = "internal mammary bed"
        elif site == 1:
            i = int(rng.integers(4, max(med.ascending_end, 5)))
            t = _unit(med.aorta[min(i + 1, len(med.aorta) - 1)] - med.aorta[i])
            d = _perp(t)
            d = _unit(
                math.cos(rng.uniform(0, 2 * math.pi)) * d
                + math.sin(rng.uniform(0, 2 * math.pi)) * np.cross(t, d)
            )
            p = med.aorta[i] + (float(med.aorta_radius[i]) + float(rng.uniform(4.0, 8.0))) * d
            where = "mediastinal"
        else:
            a = float(rng.uniform(0.1, 0.6)) * heart.lv_len
            th = float(rng.uniform(-math.pi, math.pi))
            base = heart.surface_point(np.array([a]), np.array([th]), 0.0)[0]
            found = _sac_surface(heart, base, _unit(base - heart.point(a, 0.0, 0.0)))
            if found is None:
                continue
            p = found[0] + 3.0 * found[1]
            where = "pericardial"
        if not scan.contains(p, 8.0, 2.0):
            continue
        frame = _random_frame(rng)
        half = (
            float(rng.uniform(3.0, 4.5)),
            float(rng.uniform(0.8, 1.2)),
            float(rng.uniform(0.45, 0.6)),
        )
        sd = _rounded_box(p, frame, half, 0.3)
        ext = np.sqrt(((np.asarray(half)[:, None] * frame) ** 2).sum(axis=0)) + 0.5
        plan.calcs.append(
            _Calc(
                "metal",
                Distractor.METAL,
                f"{where} clip",
                p - ext,
                p + ext,
                sd,
                0.0,
                p,
                half,
                8.0 * half[0] * half[1] * half[2],
                metal=True,
            )
        )
        placed += 1


@dataclass(frozen=True)
class _PlaqueSpec:
    """A plaque wanted on a vessel: where, what shape, how large and dense."""

    vessel: _Vessel
    index: int
    kind: str
    radius_mm: float
    density_hu: float
    required: bool = False
    """One of the clearly visible plaques every calcified study has: re-placed until it fits."""


def _respec(
    spec: _PlaqueSpec, attempt: int, vessels: Sequence[_Vessel], rng: np.random.Generator
) -> _PlaqueSpec:
    """A new position for a plaque that could not be placed (outside the scan or too close to
    a distractor): elsewhere on the same vessel, then on its artery's other vessels, and for the
    second guaranteed plaque finally on the other circumflex/right artery."""
    v = spec.vessel
    assert v.artery is not None
    artery = v.artery
    if spec.required and attempt >= 18 and artery in (Artery.RCA, Artery.LCX):
        artery = Artery.LCX if artery == Artery.RCA else Artery.RCA
    group = [w for w in _vessel_groups(vessels)[artery] if w.length_mm > 8.0]
    if not group:
        return spec
    if attempt >= 10 or v not in group:
        v = group[int(rng.integers(len(group)))]
    upper = min(60.0, v.length_mm - 3.0) if spec.required else v.length_mm - 3.0
    s = float(rng.uniform(3.0, max(upper, 3.5)))
    return _PlaqueSpec(
        v,
        int(np.searchsorted(v.arclen, s)),
        spec.kind,
        spec.radius_mm,
        spec.density_hu,
        spec.required,
    )


def _vessel_groups(vessels: Sequence[_Vessel]) -> dict[Artery, list[_Vessel]]:
    """The vessels of each scored artery (side branches with their parent)."""
    groups: dict[Artery, list[_Vessel]] = {a: [] for a in Artery}
    for v in vessels:
        if v.artery is not None:
            groups[v.artery].append(v)
    return groups


def _plaque_calcs(spec: _PlaqueSpec, heart: _Heart, rng: np.random.Generator) -> list[_Calc]:
    """The calcified objects of one plaque spec: a nodule, an adjacent pair, a chain, or an
    eccentric crescent in the vessel wall."""
    v = spec.vessel
    out: list[_Calc] = []
    tissue = _points_sdf(heart.tissue_sd)

    def frame(i: int) -> tuple[F64, F64, F64, F64, float]:
        i = int(np.clip(i, 0, len(v.points) - 1))
        t = v.tangents[i]
        n = v.normals[i]
        return v.points[i], t, n, np.cross(t, n), float(v.radii[i])

    def probe(i: int, name: str, centre: F64) -> dict[str, Any]:
        return {
            "vessel": v.name,
            "index": int(np.clip(i, 0, len(v.points) - 1)),
            "kind": name,
            "artery": str(v.artery),
            "center_mm": [round(float(x), 3) for x in centre],
        }

    def nodule(i: int, r: float, density: float, name: str) -> _Calc:
        p, t, n, b, rv = frame(i)
        psi = float(rng.uniform(-math.pi, math.pi))
        direction = _unit(math.cos(psi) * n + math.sin(psi) * b)
        ecc = float(rng.uniform(0.4, 1.0))
        elong = float(rng.uniform(1.0, 2.0))
        flat = float(rng.uniform(0.6, 1.0))
        radii = (r * elong, r, r * flat)
        centre = p + ecc * rv * direction
        clearance = float(tissue(centre[None, :])[0]) - (radii[1] - 0.5)
        if clearance < 0:
            centre = centre - clearance * n
        axes = np.stack([t, direction, np.cross(t, direction)])
        e = _Ellipsoid(centre, axes, radii)
        return _ellipsoid_calc(
            "plaque", spec_code, str(v.artery), e, density, probe=probe(i, name, centre)
        )

    assert v.artery is not None
    spec_code = v.artery.code
    r, density, i = spec.radius_mm, spec.density_hu, spec.index
    if spec.kind == "nodule":
        out.append(nodule(i, r, density, "nodule"))
    elif spec.kind == "pair":
        first = nodule(i, r, density, "pair")
        out.append(first)
        r2 = r * float(rng.uniform(0.6, 1.0))
        step = round(first.radii[0] + r2 * 1.5 + float(rng.uniform(1.0, 3.0)))
        out.append(nodule(i + step, r2, density * float(rng.uniform(0.7, 1.1)), "pair"))
    elif spec.kind == "chain":
        count = int(rng.integers(3, 7))
        j = i
        for _ in range(count):
            if j >= len(v.points) - 2:
                break
            rr = max(0.5, r * float(rng.uniform(0.5, 1.0)))
            out.append(
                nodule(
                    j, rr, float(np.clip(density * rng.uniform(0.7, 1.2), 150.0, 1000.0)), "chain"
                )
            )
            j += round(float(rng.uniform(2.0, 4.5)) + rr)
    else:
        p, t, n, b, rv = frame(i)
        psi = float(rng.uniform(-2.0, 2.0))
        thick = float(np.clip(r * rng.uniform(0.4, 0.8), 0.5, 1.6))
        half_phi = math.radians(float(rng.uniform(35.0, 110.0)))
        half_len = float(rng.uniform(1.5, 2.0 + 2.0 * r))
        sd, lo, hi, vol = _wall_patch(p, t, n, 0.8 * rv, rv + thick, psi, half_phi, half_len)
        direction = _unit(math.cos(psi) * n + math.sin(psi) * b)
        centre = p + (rv + 0.5 * thick) * direction
        out.append(
            _Calc(
                "plaque",
                spec_code,
                str(v.artery),
                lo,
                hi,
                sd,
                density,
                centre,
                (half_len, rv * half_phi, thick),
                vol,
                probe=probe(i, "arc", centre),
            )
        )
    return out


def _plaque_specs(
    vessels: Sequence[_Vessel], cfg: BlindConfig, res: _Resolved, rng: np.random.Generator
) -> list[_PlaqueSpec]:
    """The plaques wanted, most important first (placement may drop later ones)."""
    if cfg.zero_calcium:
        return []
    groups = _vessel_groups(vessels)
    b = res.burden

    def pick(
        artery: Artery, proximal: tuple[float, float] | None = None, main_only: bool = False
    ) -> tuple[_Vessel, int] | None:
        group = [v for v in groups[artery] if v.length_mm > 8.0]
        if not group:
            return None
        main = group[0]
        v = (
            main
            if (main_only or rng.random() < 0.75 or len(group) == 1)
            else group[1 + int(rng.integers(len(group) - 1))]
        )
        if proximal is not None:
            s = float(rng.uniform(*proximal))
        else:
            s = 3.0 + (v.length_mm - 6.0) * float(rng.beta(1.3, 2.8 if v is main else 2.0))
        s = float(np.clip(s, 3.0, v.length_mm - 3.0))
        return v, int(np.searchsorted(v.arclen, s))

    specs: list[_PlaqueSpec] = []
    heavy = cfg.heavy_distractors
    first = pick(Artery.LAD, (4.0, 25.0), main_only=True)
    if first is not None:
        if heavy:
            r, d = float(rng.uniform(1.2, 1.4)), float(rng.uniform(420.0, 520.0))
        else:
            r = float(rng.uniform(1.3, 1.8)) + 0.6 * b
            d = float(rng.uniform(450.0, 700.0)) + 300.0 * b
        specs.append(_PlaqueSpec(first[0], first[1], "nodule", r, min(d, 1000.0), required=True))
    second_artery = Artery.RCA if rng.random() < 0.6 else Artery.LCX
    second = pick(second_artery, (5.0, 40.0), main_only=True)
    if second is not None and (not heavy or rng.random() < 0.5):
        if heavy:
            r, d = float(rng.uniform(0.8, 1.1)), float(rng.uniform(250.0, 400.0))
        else:
            r, d = (
                float(rng.uniform(1.1, 1.5)) + 0.5 * b,
                float(rng.uniform(380.0, 650.0)) + 200.0 * b,
            )
        specs.append(
            _PlaqueSpec(second[0], second[1], "nodule", r, min(d, 1000.0), required=not heavy)
        )
    if heavy:
        return specs
    n_extra = int(b**1.3 * float(rng.uniform(10.0, 24.0)))
    arteries = [Artery.LAD, Artery.RCA, Artery.LCX, Artery.LM]
    weights = np.array([0.42, 0.25, 0.2, 0.13])
    for _ in range(n_extra):
        artery = arteries[int(rng.choice(4, p=weights))]
        chosen = pick(artery)
        if chosen is None:
            continue
        u = float(rng.random())
        kinds = ("nodule", "arc", "chain", "pair")
        probs = np.array([0.45, 0.2, 0.2 * (0.5 + b), 0.15])
        kind = kinds[int(rng.choice(4, p=probs / probs.sum()))]
        r = float(np.clip(0.5 + (0.6 + 2.0 * b) * rng.beta(1.6, 2.2), 0.5, 3.0))
        d = float(np.clip(rng.uniform(150.0, 350.0 + 650.0 * b) * (0.8 + 0.4 * u), 150.0, 1000.0))
        if artery == Artery.LM:
            r = min(r, 2.2)
        specs.append(_PlaqueSpec(chosen[0], chosen[1], kind, r, d))
    return specs


# ------------------------------------------------------------------------------------------------
# Image chain
# ------------------------------------------------------------------------------------------------


def _interpolation_matrix(src: F64, dst: F64) -> F32:
    """``(len(dst), len(src))`` linear interpolation weights from a regular grid ``src``."""
    q = (dst - src[0]) / (src[1] - src[0])
    i0 = np.clip(np.floor(q).astype(np.int64), 0, len(src) - 2)
    w = np.clip(q - i0, 0.0, 1.0)
    out = np.zeros((len(dst), len(src)), dtype=np.float32)
    rows = np.arange(len(dst))
    out[rows, i0] = 1.0 - w
    out[rows, i0 + 1] += w
    return out


def _coarse_to_fine(coarse: _Coarse, scan: _Scan) -> tuple[F32, npt.NDArray[np.bool_]]:
    """Integrate the coarse sub-planes through the slice profile and interpolate in-plane to the
    image grid; the bone indicator is thresholded on the coarse grid and taken nearest."""
    w = _ssp_weights(scan.z_mm, coarse.z, coarse.step_mm, scan.thickness_mm, scan.ssp_sigma_mm)
    w /= w.sum(axis=1, keepdims=True)
    w32 = w.astype(np.float32)
    nzc, nyc, nxc = coarse.hu.shape
    n = len(scan.z_mm)
    proj = (w32 @ coarse.hu.reshape(nzc, -1)).reshape(n, nyc, nxc)
    ry = _interpolation_matrix(coarse.y, scan.y_mm)
    rx = _interpolation_matrix(coarse.x, scan.x_mm)
    rows = np.matmul(ry[None], proj)
    fine = (rows.reshape(-1, nxc) @ rx.T).reshape(n, len(scan.y_mm), len(scan.x_mm))
    bone_c = (w32 @ coarse.bone.reshape(nzc, -1)).reshape(n, nyc, nxc) > 0.05
    iy = np.clip(np.rint((scan.y_mm - coarse.y[0]) / coarse.pixel_mm).astype(np.int64), 0, nyc - 1)
    ix = np.clip(np.rint((scan.x_mm - coarse.x[0]) / coarse.pixel_mm).astype(np.int64), 0, nxc - 1)
    bone = bone_c[:, iy][:, :, ix]
    return np.ascontiguousarray(fine, dtype=np.float32), bone


def _blur_and_noise(volume: F32, scan: _Scan, noise_sd: float, rng: np.random.Generator) -> F32:
    """Apply the in-plane PSF and add the correlated noise, both in the Fourier domain (edges
    padded by replication)."""
    pad = 8
    padded = np.pad(volume, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    m = padded.shape[1]
    spec = sp_fft.rfft2(padded, workers=1)
    del padded
    fy = sp_fft.fftfreq(m, d=scan.px)
    fx = sp_fft.rfftfreq(m, d=scan.px)
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    sc = scan.psf_core_sigma_mm
    sh = _PSF_HALO_SCALE * sc
    mtf = (1.0 - _PSF_HALO_WEIGHT) * np.exp(
        -2.0 * math.pi**2 * sc**2 * f2
    ) + _PSF_HALO_WEIGHT * np.exp(-2.0 * math.pi**2 * sh**2 * f2)
    spec *= mtf.astype(np.float32)[None]
    if noise_sd > 0:
        f = np.sqrt(f2)
        f_peak = 1.0 / (2.0 * math.pi * sc * math.sqrt(2.0))
        nps = (f + _NPS_FLOOR * f_peak) * np.exp(-4.0 * math.pi**2 * sc**2 * f2)
        nps[:, 0] = 0.0
        nps[:, -1] = 0.0
        amp = np.sqrt(nps)
        mask = amp > 1e-3 * amp.max()
        variance = 4.0 / float(m) ** 4 * float((amp[mask] ** 2).sum())
        bins = (amp[mask] * (noise_sd / math.sqrt(variance))).astype(np.float32)
        half = scan.increment_mm / 2.0
        n_taps = max(1, math.ceil(scan.support_mm / half))
        offsets = np.arange(-n_taps, n_taps + 1)
        taps = _ssp_pdf(
            np.asarray(offsets * half, dtype=np.float64), scan.thickness_mm, scan.ssp_sigma_mm
        )
        taps = (taps / math.sqrt(float((taps**2).sum()))).astype(np.float32)
        n_bins = int(mask.sum())
        planes: list[npt.NDArray[np.complex64]] = []

        def draw() -> npt.NDArray[np.complex64]:
            g = rng.standard_normal((2, n_bins), dtype=np.float32)
            return cast(npt.NDArray[np.complex64], (g[0] + 1j * g[1]).astype(np.complex64))

        planes = [draw() for _ in range(2 * n_taps)]
        for k in range(len(scan.z_mm)):
            while len(planes) < 2 * n_taps + 1:
                planes.append(draw())
            noise = np.zeros(n_bins, dtype=np.complex64)
            for tap, plane in zip(taps, planes, strict=True):
                noise += tap * plane
            spec[k][mask] += noise * bins
            planes = planes[2:]
    out = sp_fft.irfft2(spec, s=(m, m), workers=1)
    return np.ascontiguousarray(out[:, pad:-pad, pad:-pad], dtype=np.float32)


def _metal_density(sp: _Splat, volume: F32, scan: _Scan) -> float:
    """The true attenuation that makes the object's blurred peak read about 3400 HU."""
    sigma_px = scan.psf_core_sigma_mm / scan.px
    blurred = gaussian_filter(sp.fraction, (0.0, sigma_px, sigma_px), mode="constant")
    peak = max(float(blurred.max()), 1e-3)
    background = (
        float(np.median(volume[sp.sl][sp.fraction > 0.5])) if (sp.fraction > 0.5).any() else 0.0
    )
    value = background + (_METAL_TARGET_HU - background) / peak
    return float(np.clip(value, *_METAL_HU_RANGE))


# ------------------------------------------------------------------------------------------------
# The study
# ------------------------------------------------------------------------------------------------


def blind_phantom(config: BlindConfig | None = None) -> PhantomStudy:
    """Render one blind-phantom study with its truth.

    Parameters
    ----------
    config
        The study's settings; ``BlindConfig()`` when omitted. Identical configurations give
        identical arrays and truth.

    Returns
    -------
    PhantomStudy
        ``int16`` volume ``(z, y, x)`` in HU (LPS, slices ascending in z, 512 x 512),
        ``plaque_labels`` (artery codes on the grown plaque regions), ``distractor_labels``
        (:class:`Distractor` codes), the truth (:func:`phantom.study.score_truth` on the final
        image within ``plaque_labels``, per artery) and ``config``. ``truth.extra`` records the
        resolved variations, scan plan, tissue values, landmarks (patient mm) and, per plaque, a
        point on its lumen and a point in the epicardial fat beside that lumen.

    Raises
    ------
    PhantomConfigError
        When ``config`` is not a :class:`BlindConfig` (its values are checked when it is built).
    """
    cfg = config if config is not None else BlindConfig()
    if not isinstance(cfg, BlindConfig):
        raise PhantomConfigError(f"config must be a BlindConfig, got {type(cfg).__name__}")
    seed = int(cfg.seed)
    res = _resolve(cfg)
    anat = _rng(seed, 11)
    tis = _draw_tissues(anat)
    z_table = float(_rng(seed, 16).uniform(-190.0, -90.0))
    heart = _build_heart(res, anat, z_table)
    vessels = _build_coronaries(heart, res, _rng(seed, 12))
    scan = _plan_scan(res, heart, vessels, _rng(seed, 16))
    body = _build_body(heart, res, anat)
    z_lm = float(next(v for v in vessels if v.name == "LM").points[:, 2].max())
    med = _build_mediastinum(heart, body, anat, z_lm, float(scan.z_mm[0]))
    abdomen = _build_abdomen(heart, body, res, anat)

    dis = _rng(seed, 14)
    plan = _Plan()
    heavy = cfg.heavy_distractors
    n_nodes = (
        int(dis.integers(2, 5)) if heavy else int(dis.random() < 0.3) + int(dis.random() < 0.15)
    )
    _plan_nodes(heart, med, scan, dis, plan, heavy, n_nodes)

    coarse = _Coarse(scan)
    _paint_body(coarse, body, tis)
    _paint_lung_vessels(coarse, body, med, tis, anat)
    _paint_abdomen(coarse, body, abdomen, tis)
    _paint_mediastinal_fat(coarse, heart, body, med, tis, res.patient_size)
    _paint_posterior_mediastinum(coarse, med, tis)
    _paint_airways(coarse, med, tis)
    for node in plan.nodes:
        coarse.paint(*node.bbox(1.0), node.sd, tis.muscle - 8.0)
    painter = _HeartPainter(coarse, heart)
    painter.paint_sac(tis)
    _paint_coronary_sinus(coarse, heart, vessels, tis, anat)
    _paint_great_vessels(coarse, med, tis)
    _paint_coronary_sleeves(coarse, vessels, tis)
    painter.paint_chambers(tis)
    ribs = _build_ribs(body, coarse, anat)
    bone_objects = _paint_bones(coarse, body, ribs, tis, anat)
    _plan_distractors(plan, dis, heavy, res, heart, vessels, body, med, ribs, coarse, scan)

    z_mid = float(scan.z_mm[len(scan.z_mm) // 2])
    lungs: dict[str, list[float]] = {}
    for name, side in (("left_lung", 1.0), ("right_lung", -1.0)):
        point = _lung_point(heart, body, scan, coarse, z_mid, side)
        if point is not None:
            lungs[name] = [round(float(x), 2) for x in point]
    volume, bone = _coarse_to_fine(coarse, scan)
    del coarse
    plaque_labels = np.zeros(volume.shape, dtype=np.uint8)
    distractor_labels = np.zeros(volume.shape, dtype=np.uint8)
    distractor_labels[bone] = Distractor.BONE
    del bone
    fine = _Fine(scan, volume)
    _paint_lumens(fine, vessels, tis)
    objects = _render_distractors(fine, plan, distractor_labels)
    plq = _rng(seed, 13)
    specs = _plaque_specs(vessels, cfg, res, plq)
    placed = _place_plaques(fine, specs, vessels, heart, plaque_labels, distractor_labels, plq)
    objects += [calc.truth_object() for calc in placed]
    probes = _plaque_probes(placed, vessels, heart, scan)

    final = _blur_and_noise(volume, scan, res.noise_sd_hu, _rng(seed, 15))
    del volume
    hu = np.clip(np.rint(final), _HU_MIN, _HU_MAX).astype(np.int16)
    del final
    geometry = axial_geometry(
        len(scan.z_mm),
        (scan.px, scan.px),
        scan.increment_mm,
        scan.thickness_mm,
        origin_mm=(float(scan.x_mm[0]), float(scan.y_mm[0]), float(scan.z_mm[0])),
    )
    ct = CTVolume(hu=hu, geometry=geometry, acquisition=_acquisition(cfg, scan))
    truth = score_truth(ct, plaque_labels, tuple(objects) + tuple(bone_objects), by_artery=True)
    extra = _extra(lungs, cfg, res, scan, heart, body, med, vessels, probes, tis)
    return PhantomStudy(
        volume=ct,
        plaque_labels=plaque_labels,
        distractor_labels=distractor_labels,
        truth=replace(truth, extra=extra),
        config=cfg,
    )


def _plan_distractors(
    plan: _Plan,
    rng: np.random.Generator,
    heavy: bool,
    res: _Resolved,
    heart: _Heart,
    vessels: Sequence[_Vessel],
    body: _Body,
    med: _Mediastinum,
    ribs: Sequence[_Rib],
    coarse: _Coarse,
    scan: _Scan,
) -> None:
    """Choose the calcified distractors: all kinds, abundant, in heavy studies; otherwise each
    kind with its own probability (aortic wall calcium more likely with more coronary burden)."""
    if heavy:
        _aortic_wall_calcs(med, scan, rng, int(rng.integers(5, 11)), plan)
        _valve_calcs(heart, rng, int(rng.integers(2, 6)), plan)
        _mac_calc(heart, rng, plan, True)
        _pericardial_calcs(heart, vessels, scan, rng, int(rng.integers(2, 5)), plan, True)
        _granulomas(coarse, scan, rng, int(rng.integers(2, 6)), plan)
        _cartilage_calcs(ribs, scan, rng, int(rng.integers(4, 11)), plan)
        _metal_objects(body, heart, med, scan, rng, True, int(rng.integers(2, 6)), plan)
        if not any(c.code == Distractor.LYMPH_NODE for c in plan.calcs):
            _granulomas(coarse, scan, rng, 2, plan)
        return
    if rng.random() < 0.25 + 0.6 * res.burden:
        _aortic_wall_calcs(med, scan, rng, int(rng.integers(1, 5)), plan)
    if rng.random() < 0.25:
        _valve_calcs(heart, rng, int(rng.integers(1, 3)), plan)
    if rng.random() < 0.15:
        _mac_calc(heart, rng, plan, False)
    if rng.random() < 0.1:
        _pericardial_calcs(heart, vessels, scan, rng, 1, plan, False)
    if rng.random() < 0.3:
        _granulomas(coarse, scan, rng, int(rng.integers(1, 3)), plan)
    if rng.random() < 0.4:
        _cartilage_calcs(ribs, scan, rng, int(rng.integers(1, 5)), plan)
    sternotomy = rng.random() < 0.08
    clips = int(rng.integers(1, 4)) if (sternotomy or rng.random() < 0.06) else 0
    _metal_objects(body, heart, med, scan, rng, sternotomy, clips, plan)


def _paint_lumens(fine: _Fine, vessels: Sequence[_Vessel], tis: _Tissues) -> None:
    """The coronary lumens (blood and wall) at the pixel size, in chunks of four 2 mm segments."""
    for v in vessels:
        pts = v.points[::2]
        r = v.radii[::2]
        for start in range(0, len(pts) - 1, 4):
            stop = min(start + 4, len(pts) - 1)
            seg = pts[start : stop + 1]
            rmax = float(r[start : stop + 1].max())

            def lumen(
                xg: FArr,
                yg: FArr,
                zg: FArr,
                start: int = start,
                stop: int = stop,
                pts: F64 = pts,
                r: F64 = r,
            ) -> FArr:
                d = _sd_capsule(
                    xg, yg, zg, pts[start], pts[start + 1], float(r[start]), float(r[start + 1])
                )
                for i in range(start + 1, stop):
                    d = np.minimum(
                        d, _sd_capsule(xg, yg, zg, pts[i], pts[i + 1], float(r[i]), float(r[i + 1]))
                    )
                return d

            sp = fine.splat(
                seg.min(axis=0) - rmax, seg.max(axis=0) + rmax, lumen, _SOFT_STEP_MM, 0.0
            )
            if sp is not None:
                fine.composite(sp, tis.wall)


def _render_distractors(
    fine: _Fine, plan: _Plan, labels: npt.NDArray[np.uint8]
) -> list[TruthObject]:
    """Calcified distractors, then metal (given a true attenuation from its blurred peak)."""
    scan = fine.scan
    objects: list[TruthObject] = []
    for metal in (False, True):
        for calc in plan.calcs:
            if calc.metal != metal:
                continue
            step = _SOFT_STEP_MM * 0.7 if metal else _CALCIUM_STEP_MM
            reach = scan.metal_reach_mm if metal else scan.reach_mm
            sp = fine.splat(calc.lo, calc.hi, calc.sdf, step, reach)
            if sp is None or sp.peak_fraction < 0.02:
                continue
            density = _metal_density(sp, fine.volume, scan) if metal else calc.density_hu
            fine.composite(sp, density)
            labels[sp.sl][sp.grown > _LABEL_FRACTION] = calc.code
            objects.append(calc.truth_object(density))
    return objects


def _place_plaques(
    fine: _Fine,
    specs: Sequence[_PlaqueSpec],
    vessels: Sequence[_Vessel],
    heart: _Heart,
    plaque_labels: npt.NDArray[np.uint8],
    distractor_labels: npt.NDArray[np.uint8],
    rng: np.random.Generator,
) -> list[_Calc]:
    """Render the plaques whose grown region is inside the scan and clear of every distractor
    label and of other arteries' plaques; a guaranteed plaque is re-placed until it fits (and
    must reach 30 % of its full partial-volume peak, so it is clearly visible)."""
    scan = fine.scan
    placed_calcs: list[_Calc] = []
    for first_spec in specs:
        spec = first_spec
        for attempt in range(30 if spec.required else 4):
            if attempt:
                spec = _respec(spec, attempt, vessels, rng)
            placed = 0
            for calc in _plaque_calcs(spec, heart, rng):
                if not scan.contains(calc.centre, 6.0, 0.5 * scan.thickness_mm):
                    continue
                sp = fine.splat(calc.lo, calc.hi, calc.sdf, _CALCIUM_STEP_MM, scan.reach_mm)
                if sp is None or sp.peak_fraction < (0.3 if spec.required else 0.05):
                    continue
                region = sp.grown > _LABEL_FRACTION
                existing = plaque_labels[sp.sl][region]
                if (distractor_labels[sp.sl][region] > 0).any() or (
                    (existing > 0) & (existing != calc.code)
                ).any():
                    continue
                fine.composite(sp, calc.density_hu)
                plaque_labels[sp.sl][region] = calc.code
                placed_calcs.append(calc)
                placed += 1
            if placed:
                break
    return placed_calcs


def _plaque_probes(
    calcs: Sequence[_Calc], vessels: Sequence[_Vessel], heart: _Heart, scan: _Scan
) -> list[dict[str, Any]]:
    """For each placed plaque, a point on its vessel's axis near it (the soft-tissue lumen) and
    a point in the fat beside that lumen, in the axial plane on the side away from the heart's
    tissue, both clear of every plaque and near a slice centre (LM plaques may use the proximal
    LAD). The points are ``None`` when no clear spot lies within 25 mm."""
    by_name = {v.name: v for v in vessels}
    tissue = _points_sdf(heart.tissue_sd)
    sac = _points_sdf(heart.sac_sd)
    centres = np.stack([c.centre for c in calcs]) if calcs else np.zeros((0, 3))
    sizes = np.array([max(c.radii) for c in calcs])
    axis_pts = np.concatenate([v.points for v in vessels])
    axis_r = np.concatenate([v.radii for v in vessels])
    owner = np.concatenate([np.full(len(v.points), v.name) for v in vessels])
    out: list[dict[str, Any]] = []
    for calc in calcs:
        info = dict(calc.probe or {})
        v = by_name[info["vessel"]]
        i = int(info["index"])
        candidates = [(v, i + d) for d in sorted(range(-30, 31), key=lambda d: (abs(d), d))]
        if v.name == "LM":
            candidates += [(by_name[n], k) for k in range(25) for n in ("LAD", "LCX")]
        elif v.parent in by_name:
            parent = by_name[v.parent]
            origin = _nearest_index(parent.points, v.points[0])
            candidates += [(parent, origin + d) for d in sorted(range(-15, 16), key=abs)]
        found: tuple[F64, F64, float] | None = None
        for inside_sac in (True, False):
            found = _probe_search(
                candidates,
                v,
                centres,
                sizes,
                axis_pts,
                axis_r,
                owner,
                tissue,
                sac,
                scan,
                inside_sac,
            )
            if found is not None:
                break
        info.pop("index", None)
        info["density_hu"] = round(calc.density_hu, 1)
        info["lumen_mm"] = None if found is None else [round(float(x), 3) for x in found[0]]
        info["fat_mm"] = None if found is None else [round(float(x), 3) for x in found[1]]
        info["lumen_radius_mm"] = None if found is None else round(found[2], 3)
        out.append(info)
    return out


def _probe_search(
    candidates: Sequence[tuple[_Vessel, int]],
    v: _Vessel,
    centres: F64,
    sizes: F64,
    axis_pts: F64,
    axis_r: F64,
    owner: npt.NDArray[np.str_],
    tissue: Callable[[F64], F64],
    sac: Callable[[F64], F64],
    scan: _Scan,
    inside_sac: bool,
) -> tuple[F64, F64, float] | None:
    """The first candidate axis point whose lumen and fat probes are clear (see
    :func:`_plaque_probes`); with ``inside_sac`` the fat point must also lie 1 mm inside the
    pericardial sac, so it cannot be a sleeve bulging into the lung."""
    for w, j in candidates:
        if not 0 <= j < len(w.points):
            continue
        lumen = w.points[j]
        gap_z = float(np.min(np.abs(scan.z_mm - lumen[2])))
        if gap_z > 0.4 * scan.increment_mm or not scan.contains(lumen, 6.0, 0.0):
            continue
        rv = float(w.radii[j])
        if float(np.min(np.linalg.norm(centres - lumen, axis=1) - sizes)) <= 2.0:
            continue
        allowed = {w.name, v.name, w.parent, v.parent} | (
            {"LAD", "LCX"} if v.name == "LM" else set()
        )
        others = ~np.isin(owner, sorted(allowed))
        # across the vessel's in-plane course, so the slice thickness does not smear the
        # lumen onto the fat point
        across = np.cross(_vec(0.0, 0.0, 1.0), w.tangents[j])
        if float(np.linalg.norm(across)) < 0.2:
            across = _vec(float(w.normals[j][0]), float(w.normals[j][1]), 0.0)
        across = _unit(across)
        sides = sorted(
            (across, -across),
            key=lambda e: -float(tissue((lumen + (rv + 1.4) * e)[None, :])[0]),
        )
        for e in sides:
            fat = lumen + (rv + 1.4) * e
            if float(np.min(np.linalg.norm(centres - fat, axis=1) - sizes)) <= 2.0:
                continue
            if (np.linalg.norm(axis_pts[others] - fat, axis=1) < axis_r[others] + 1.5).any():
                continue
            if float(tissue(fat[None, :])[0]) <= 1.5:
                continue
            if inside_sac and float(sac(fat[None, :])[0]) > -1.0:
                continue
            return lumen, fat, rv
    return None


def _extra(
    lungs: dict[str, list[float]],
    cfg: BlindConfig,
    res: _Resolved,
    scan: _Scan,
    heart: _Heart,
    body: _Body,
    med: _Mediastinum,
    vessels: Sequence[_Vessel],
    probes: list[dict[str, Any]],
    tis: _Tissues,
) -> dict[str, Any]:
    """The JSON-ready ``truth.extra`` record."""

    def r3(p: F64) -> list[float]:
        return [round(float(x), 2) for x in p]

    z_mid = float(scan.z_mm[len(scan.z_mm) // 2])
    landmarks: dict[str, list[float]] = {
        "lv_cavity": r3(heart.point(0.4 * heart.lv_len, 0.0, 0.0)),
        "left_atrium": r3(heart.la.centre),
    }
    asc = med.aorta[3 : med.ascending_end + 1]
    if len(asc):
        target = min(float(scan.z_mm[-1]) - 6.0, float(asc[-1, 2]))
        p = asc[int(np.argmin(np.abs(asc[:, 2] - target)))]
        if scan.contains(p, 15.0, 2.0) and float(p[2]) > float(heart.root.stj[2]):
            landmarks["ascending_aorta"] = r3(p)
    desc = med.aorta[med.descending_start :]
    if len(desc):
        p = desc[int(np.argmin(np.abs(desc[:, 2] - z_mid)))]
        if scan.contains(p, 15.0, 2.0):
            landmarks["descending_aorta"] = r3(p)
    spine = _vec(body.spine_x, body.spine_at(z_mid), z_mid)
    if scan.contains(spine, 25.0, 2.0):
        landmarks["spine"] = r3(spine)
    sternum = _vec(body.x_mid, body.sternum_at(z_mid) - body.sternum_half[1], z_mid)
    if scan.contains(sternum, 12.0, 2.0) and z_mid > body.z_xiphoid + 5.0:
        landmarks["sternum"] = r3(sternum)
    landmarks.update(lungs)
    return {
        "generator": "phantom.blind",
        "resolved": res.as_dict(),
        "scan": {
            "slices": len(scan.z_mm),
            "increment_mm": round(scan.increment_mm, 3),
            "thickness_mm": scan.thickness_mm,
            "margin_above_lm_mm": round(scan.margin_above_mm, 2),
            "margin_below_heart_mm": round(scan.margin_below_mm, 2),
            "psf_core_sigma_mm": round(scan.psf_core_sigma_mm, 4),
            "label_reach_mm": round(scan.reach_mm, 3),
        },
        "tissues_hu": {k: round(v, 1) for k, v in asdict(tis).items()},
        "landmarks": landmarks,
        "vessels": {v.name: round(v.length_mm, 1) for v in vessels},
        "plaques": probes,
        "zero_calcium": cfg.zero_calcium,
        "heavy_distractors": cfg.heavy_distractors,
    }


def _lung_point(
    heart: _Heart, body: _Body, scan: _Scan, coarse: _Coarse, z: float, side: float
) -> F64 | None:
    """A point in one lung at height ``z``: between the heart's outline and the chest wall, in
    the middle of the longest free run, not on a lung vessel of the painted background."""
    tissue = _points_sdf(heart.tissue_sd)
    sac = _points_sdf(heart.sac_sd)
    best: F64 | None = None
    best_room = 0.0
    for dy in (10.0, 25.0, -5.0, 40.0):
        y = float(heart.centre[1]) + dy
        xs = np.arange(scan.x_mm[0] + 8.0, scan.x_mm[-1] - 8.0, 1.0)
        xs = xs[(xs - body.x_mid) * side > 30.0]
        if not len(xs):
            continue
        pts = np.stack([xs, np.full_like(xs, y), np.full_like(xs, z)], axis=1)
        free = (tissue(pts) > 12.0) & (sac(pts) > 8.0)
        cav = body.cavity_sd(xs.astype(np.float32), np.full(1, y, dtype=np.float32), z) < -12.0
        ok = free & cav
        ok &= np.abs(xs - body.spine_x) > body.vb_half[0] + 30.0
        iz = np.abs(coarse.z - z) <= scan.thickness_mm
        iy = np.abs(coarse.y - y) <= 4.0
        if iz.any() and iy.any():
            block = coarse.hu[iz][:, iy].max(axis=(0, 1))
            near = np.interp(xs, coarse.x, block)
            wide = np.maximum.reduce([np.roll(near, k) for k in range(-4, 5)])
            ok &= wide < -720.0
        if not ok.any():
            continue
        # longest run
        runs = np.split(np.arange(len(xs)), np.where(np.diff(ok.astype(int)) != 0)[0] + 1)
        for run in runs:
            if ok[run[0]] and len(run) > best_room:
                best_room = float(len(run))
                best = pts[run[len(run) // 2]]
    return best if best_room >= 10.0 else None


def _acquisition(cfg: BlindConfig, scan: _Scan) -> AcquisitionInfo:
    """Acquisition details (deterministic UIDs from the configuration)."""

    def uid(what: str) -> str:
        return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'cac-fhir/blind/{cfg!r}/{what}').int}"

    return AcquisitionInfo(
        kvp=120.0,
        reconstruction_kernel="BLIND_GAUSS_HALO",
        mass_factor_patient=0.8,
        manufacturer="cac-fhir",
        model="blind cardiac phantom",
        study_instance_uid=uid("study"),
        series_instance_uid=uid("series"),
        series_description=(
            f"CaSc {scan.thickness_mm:g}/{scan.increment_mm:g}mm blind phantom seed {cfg.seed}"
        )[:64],
        acquisition_datetime=datetime(2026, 1, 6, 7, 0, 0) + timedelta(minutes=int(cfg.seed) % 600),
        patient_position="HFS",
    )


__all__ = ["MATRIX_SIZE", "MAX_SLICES", "MIN_SLICES", "BlindConfig", "blind_phantom", "blind_suite"]
