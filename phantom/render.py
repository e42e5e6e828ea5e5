"""Rendering helpers shared by the phantoms: slice profile and partial-volume blobs.

Arrays are indexed ``(z, y, x)``. Everything here is pure numpy/scipy.

The image model is a simulation choice, not a clinical number: each reconstructed slice is the
object averaged over a Gaussian slice-sensitivity profile whose full width at half maximum is the
nominal slice thickness (truncated at +/- one thickness), then blurred in-plane by a Gaussian
point-spread function, then given correlated noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

FloatArray = npt.NDArray[np.float64]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True, slots=True)
class Grid:
    """Where the voxel centres of a ``(z, y, x)`` axial volume lie in patient coordinates.

    ``x_mm`` holds the column centres (patient x, +x = patient's left), ``y_mm`` the row centres
    (patient y, +y = posterior), ``z_mm`` the slice centres (patient z, +z = head), ascending.
    """

    x_mm: FloatArray
    y_mm: FloatArray
    z_mm: FloatArray
    pixel_mm: float
    thickness_mm: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z_mm.size, self.y_mm.size, self.x_mm.size)


def slice_profile(dz_mm: FloatArray, thickness_mm: float) -> FloatArray:
    """Slice-sensitivity profile (per mm, integrating to 1) at distances ``dz_mm`` from the
    slice centre: a Gaussian of FWHM = thickness, truncated at +/- one thickness."""
    sigma = thickness_mm / _FWHM_PER_SIGMA
    norm = sigma * math.sqrt(2.0 * math.pi) * math.erf(thickness_mm / (sigma * math.sqrt(2.0)))
    dz = np.asarray(dz_mm, dtype=np.float64)
    out = np.exp(-0.5 * (dz / sigma) ** 2) / norm
    out[np.abs(dz) > thickness_mm] = 0.0
    return np.asarray(out, dtype=np.float64)


def subslice_offsets(thickness_mm: float) -> tuple[FloatArray, FloatArray]:
    """Three sample offsets across a slice (mm) and their profile weights (summing to 1), used to
    average smooth anatomy over the slice thickness."""
    offsets = np.array([-thickness_mm / 3.0, 0.0, thickness_mm / 3.0])
    weights = slice_profile(offsets, thickness_mm)
    return offsets, weights / weights.sum()


def sigma_from_fwhm(fwhm_mm: float) -> float:
    """Gaussian sigma of a given full width at half maximum."""
    return fwhm_mm / _FWHM_PER_SIGMA


@dataclass(frozen=True, slots=True)
class Blob:
    """An ellipsoid (or cylinder) of uniform attenuation.

    ``center_mm`` is in patient mm ``(x, y, z)``; ``axes`` holds three orthonormal vectors and
    ``radii_mm`` the semi-axis length along each. With ``cylinder`` the first axis is the
    cylinder's axis (``radii_mm[0]`` = half its length) and the other two span its elliptical
    cross-section.
    """

    center_mm: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    radii_mm: tuple[float, float, float]
    value_hu: float
    cylinder: bool = False

    @property
    def max_radius_mm(self) -> float:
        return max(self.radii_mm)

    @property
    def volume_mm3(self) -> float:
        r = self.radii_mm
        if self.cylinder:
            return math.pi * r[1] * r[2] * 2.0 * r[0]
        return 4.0 / 3.0 * math.pi * r[0] * r[1] * r[2]


def sphere_axes() -> tuple[tuple[float, float, float], ...]:
    """The patient axes, for blobs whose orientation does not matter."""
    return ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def blob_fraction(
    blob: Blob, grid: Grid, supersample: int = 3
) -> tuple[tuple[slice, slice, slice], npt.NDArray[np.float32]] | None:
    """Fraction of each voxel that an ellipsoid fills, after slice-profile averaging.

    The ellipsoid is sampled on a fine z grid (<= 0.25 mm) and ``supersample`` x ``supersample``
    points per pixel, then each slice takes its profile-weighted average.

    Returns
    -------
    tuple or None
        ``(region, fraction)``: the ``(z, y, x)`` slices of the volume the blob touches and the
        ``float32`` fraction there, or ``None`` when the blob misses the volume.
    """
    cx, cy, cz = blob.center_mm
    axes = np.asarray(blob.axes, dtype=np.float64)
    radii = np.asarray(blob.radii_mm, dtype=np.float64)
    # Half extent along each patient axis (a cylinder reaches its rim at both ends).
    if blob.cylinder:
        half = np.abs(axes[0]) * radii[0] + np.sqrt(((axes[1:] * radii[1:, None]) ** 2).sum(0))
    else:
        half = np.sqrt(((axes * radii[:, None]) ** 2).sum(axis=0))
    px = grid.pixel_mm
    ix0 = int(np.searchsorted(grid.x_mm, cx - half[0] - px))
    ix1 = int(np.searchsorted(grid.x_mm, cx + half[0] + px))
    iy0 = int(np.searchsorted(grid.y_mm, cy - half[1] - px))
    iy1 = int(np.searchsorted(grid.y_mm, cy + half[1] + px))
    iz0 = int(np.searchsorted(grid.z_mm, cz - half[2] - grid.thickness_mm))
    iz1 = int(np.searchsorted(grid.z_mm, cz + half[2] + grid.thickness_mm))
    if ix0 >= ix1 or iy0 >= iy1 or iz0 >= iz1:
        return None
    step = min(0.25, max(half[2] / 6.0, 0.05))
    n_fine = max(2, math.ceil(2.0 * half[2] / step))
    z_fine = cz - half[2] + (np.arange(n_fine) + 0.5) * (2.0 * half[2] / n_fine)
    dz_step = 2.0 * half[2] / n_fine
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    xs = (grid.x_mm[ix0:ix1, None] + sub[None, :] * px).ravel() - cx
    ys = (grid.y_mm[iy0:iy1, None] + sub[None, :] * px).ravel() - cy
    zs = z_fine - cz
    # Quadratic form sum_k ((d . a_k) / r_k)^2 evaluated on the separable (z, y, x) grid.
    q = np.zeros((zs.size, ys.size, xs.size), dtype=np.float64)
    along = np.zeros_like(q)
    for k in range(3):
        ax, ay, az = axes[k] / radii[k]
        proj = az * zs[:, None, None] + ay * ys[None, :, None] + ax * xs[None, None, :]
        if blob.cylinder and k == 0:
            along = np.abs(proj)
        else:
            q += proj * proj
    if blob.cylinder:
        inside = ((q <= 1.0) & (along <= 1.0)).astype(np.float32)
    else:
        inside = (q <= 1.0).astype(np.float32)
    ny, nx = iy1 - iy0, ix1 - ix0
    occ = inside.reshape(zs.size, ny, supersample, nx, supersample).mean(axis=(2, 4))
    weights = slice_profile(grid.z_mm[iz0:iz1, None] - z_fine[None, :], grid.thickness_mm)
    frac = (weights * dz_step) @ occ.reshape(zs.size, ny * nx)
    frac = np.clip(frac, 0.0, 1.0).reshape(iz1 - iz0, ny, nx).astype(np.float32)
    return (slice(iz0, iz1), slice(iy0, iy1), slice(ix0, ix1)), frac


def composite_blob(
    hu: npt.NDArray[np.float32],
    blob: Blob,
    grid: Grid,
    labels: npt.NDArray[np.uint8] | None = None,
    code: int = 0,
    spread_mm: float = 0.0,
) -> bool:
    """Paint a blob into ``hu`` with partial volume; optionally mark its grown footprint.

    Each voxel becomes ``(1 - f) * hu + f * value`` where ``f`` is the filled fraction. When
    ``labels`` is given, voxels the blob touches, grown in-plane by ``spread_mm`` (the blur's
    reach), take ``code`` where they are still 0.

    Returns
    -------
    bool
        Whether the blob touched the volume.
    """
    rendered = blob_fraction(blob, grid)
    if rendered is None:
        return False
    region, frac = rendered
    block = hu[region]
    block += frac * (np.float32(blob.value_hu) - block)
    if labels is not None:
        grow = math.ceil(spread_mm / grid.pixel_mm) + 1
        zsl, ysl, xsl = region
        y0 = max(ysl.start - grow, 0)
        y1 = min(ysl.stop + grow, grid.shape[1])
        x0 = max(xsl.start - grow, 0)
        x1 = min(xsl.stop + grow, grid.shape[2])
        footprint = np.zeros((frac.shape[0], y1 - y0, x1 - x0), dtype=bool)
        footprint[
            :,
            ysl.start - y0 : ysl.start - y0 + frac.shape[1],
            xsl.start - x0 : xsl.start - x0 + frac.shape[2],
        ] = frac > 1e-3
        yy, xx = np.mgrid[-grow : grow + 1, -grow : grow + 1]
        disk = (yy * yy + xx * xx) <= grow * grow
        grown = ndimage.binary_dilation(footprint, structure=disk[None, :, :])
        target = labels[zsl, y0:y1, x0:x1]
        target[grown & (target == 0)] = code
    return True


def blur_in_plane(hu: npt.NDArray[np.float32], fwhm_mm: float, pixel_mm: float) -> None:
    """Gaussian in-plane point-spread function, applied in place slice by slice."""
    sigma_px = sigma_from_fwhm(fwhm_mm) / pixel_mm
    ndimage.gaussian_filter(hu, sigma=(0.0, sigma_px, sigma_px), output=hu, truncate=3.5)


def correlated_noise(
    shape: tuple[int, int, int],
    sd_hu: float,
    correlation_fwhm_mm: float,
    pixel_mm: float,
    z_sigma_slices: float,
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    """Filtered white noise rescaled to exactly ``sd_hu`` standard deviation.

    The in-plane Gaussian filter gives the noise grain of a reconstruction kernel; a z filter of
    ``z_sigma_slices`` correlates the noise of overlapping slices (they share projection data).
    """
    noise = rng.standard_normal(shape, dtype=np.float32)
    sigma_px = sigma_from_fwhm(correlation_fwhm_mm) / pixel_mm
    ndimage.gaussian_filter(
        noise, sigma=(z_sigma_slices, sigma_px, sigma_px), output=noise, truncate=3.0
    )
    sd = float(noise.std(dtype=np.float64))
    if sd > 0:
        noise *= np.float32(sd_hu / sd)
    return noise
