"""An independent anthropomorphic non-contrast cardiac CT phantom, for generalisation tests.

The project's coronary detector was developed while looking at :mod:`phantom.chest`. This module
is a second generator written without reading that one's anatomy: it builds the heart from its
chambers in a frame along the heart's long axis, runs the coronary arteries in the grooves
between those chambers, and renders with its own image model. Agreement of the detector on both
generators is evidence that it learned anatomy rather than one phantom.

Model (all simulation choices, not clinical figures; tissue attenuations are the usual
non-contrast CT ranges given in the project's brief for this generator):

- chest wall: skin, subcutaneous fat, muscle, optional breasts, ribs cut by the field of view
  with costal cartilage (some calcified) joining the sternum, a spine of vertebral bodies,
  discs and posterior elements;
- lungs at about -850 HU with vessel trees from the hila, a mediastinum of fat with the
  oesophagus, trachea and main bronchi;
- the heart from chambers (left ventricle with a ~10 mm wall, right ventricle anterior and to
  the right, left atrium posterior and superior, right atrium to the right), blood and muscle of
  near-equal attenuation, epicardial fat of uneven 2-15 mm thickness and a pericardium, the long
  axis pointing anterior-left-inferior at variable angles;
- the aortic root with its sinuses, the ascending aorta arching into the descending aorta, the
  pulmonary trunk and arteries, superior and inferior venae cavae, pulmonary veins; the liver
  dome under the right hemidiaphragm;
- the coronary tree along the grooves: left main to a bifurcation, LAD in the anterior
  interventricular groove to the apex (with a diagonal), LCX in the left atrioventricular
  groove (with an obtuse marginal), RCA around the right atrioventricular groove to the crux and
  the posterior descending artery from the dominant artery (left-dominant in about 10 %);
- calcified plaques and distractors (aortic wall, aortic valve, mitral annulus, pericardium,
  lymph node, metal, bone and costal cartilage) with truth label maps.

Image model: anatomy is sampled on three planes across each slice and averaged with a
trapezoidal slice-sensitivity profile (full width at half maximum = the slice thickness); small
dense objects (plaques, calcifications, metal) are integrated on a 0.1 mm z grid with 4 x 4
in-plane supersampling; then an in-plane Gaussian blur and noise with a band-pass (ramp x
apodisation) power spectrum, correlated between overlapping slices by their overlap.

Arrays are ``(z, y, x)`` in LPS patient coordinates (+x patient's left, +y posterior, +z head),
slices ascending in z. Truth is :func:`phantom.study.score_truth` of the final image.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy import fft as sfft
from scipy import ndimage

from phantom.errors import PhantomConfigError
from phantom.study import Distractor, PhantomStudy, TruthObject, score_truth
from scoring import AcquisitionInfo, Artery, CTVolume, axial_geometry

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

#: Matrix of every study (columns = rows).
MATRIX = 512
#: Field-of-view range (mm); the pixel spacing is FOV / 512, i.e. 0.35-0.50 mm.
FOV_RANGE_MM = (180.0, 256.0)
THICKNESS_CHOICES_MM = (2.5, 3.0)
NOISE_SD_RANGE_HU = (10.0, 35.0)
BLUR_SIGMA_RANGE_MM = (0.6, 0.8)
SLICE_COUNT_RANGE = (40, 70)
#: Mass factor range (mg HA per cm^3 per HU) of real scanners (McCollough CH et al., Radiology
#: 2007; clinical.md section 2).
MASS_FACTOR_RANGE = (0.75, 0.93)

_ZERO_SHARE = 0.15
_HEAVY_SHARE = 0.15


class _Tag(IntEnum):
    """Tissue class of a painted pixel, used to restrict later layers and to label bone."""

    AIR = 0
    FAT = 1
    SOFT = 2
    LUNG = 3
    BONE = 4
    CARTILAGE = 5
    BLOOD = 6
    MYO = 7
    ORGAN = 8
    DIAPH = 9


# --------------------------------------------------------------------------------------------
# Shapes: each can paint itself on an axial plane and test arbitrary points.


@dataclass(frozen=True, slots=True)
class _Plane:
    """Pixel centres of one axial plane: ``x`` columns, ``y`` rows (mm)."""

    x: F32
    y: F32
    px: float

    def span(self, coords: F32, lo: float, hi: float) -> slice:
        first = float(coords[0])
        i0 = max(0, math.floor((lo - first) / self.px))
        i1 = min(coords.size, math.ceil((hi - first) / self.px) + 1)
        return slice(i0, max(i0, i1))


Mask = tuple[slice, slice, BoolArray]


class _Shape(Protocol):
    def mask(self, z: float, g: _Plane) -> Mask | None: ...

    def contains(self, p: F64) -> BoolArray: ...


@dataclass(frozen=True, slots=True)
class _Ellipsoid:
    """Ellipsoid with orthonormal ``axes`` (rows) and ``radii``; ``clip`` keeps the points with
    ``normal . (p - center) >= offset``."""

    center: F64
    axes: F64
    radii: F64
    clip: tuple[F64, float] | None = None

    def padded(self, pad: float, shift: F64 | None = None) -> _Ellipsoid:
        centre = self.center if shift is None else self.center + shift
        clip = None
        if self.clip is not None:
            normal, offset = self.clip
            offset = offset - pad - float(normal @ (centre - self.center))
            clip = (normal, offset)
        return _Ellipsoid(centre, self.axes, self.radii + pad, clip)

    def half_extent(self) -> F64:
        return np.asarray(np.sqrt(((self.axes * self.radii[:, None]) ** 2).sum(axis=0)))

    def mask(self, z: float, g: _Plane) -> Mask | None:
        c = self.center
        cov = (self.axes.T * self.radii**2) @ self.axes
        dz = z - c[2]
        if dz * dz >= cov[2, 2]:
            return None
        # The section at z is the ellipse of the conditional spread (as for a Gaussian).
        scale = math.sqrt(1.0 - dz * dz / cov[2, 2])
        mx = c[0] + cov[0, 2] / cov[2, 2] * dz
        my = c[1] + cov[1, 2] / cov[2, 2] * dz
        hx = math.sqrt(max(cov[0, 0] - cov[0, 2] ** 2 / cov[2, 2], 0.0)) * scale + 0.01
        hy = math.sqrt(max(cov[1, 1] - cov[1, 2] ** 2 / cov[2, 2], 0.0)) * scale + 0.01
        rs = g.span(g.y, my - hy, my + hy)
        cs = g.span(g.x, mx - hx, mx + hx)
        if rs.start >= rs.stop or cs.start >= cs.stop:
            return None
        dx = g.x[cs] - np.float32(c[0])
        dy = g.y[rs] - np.float32(c[1])
        q = np.zeros((dy.size, dx.size), dtype=np.float32)
        for k in range(3):
            ax, ay, az = self.axes[k] / self.radii[k]
            proj = (
                np.float32(ax) * dx[None, :] + (np.float32(ay) * dy + np.float32(az * dz))[:, None]
            )
            q += proj * proj
        inside = q <= 1.0
        if self.clip is not None:
            (nx, ny, nz), offset = self.clip
            side = (
                np.float32(nx) * dx[None, :] + (np.float32(ny) * dy + np.float32(nz * dz))[:, None]
            )
            inside &= side >= offset
        return rs, cs, inside

    def contains(self, p: F64) -> BoolArray:
        d = np.atleast_2d(p) - self.center
        q = (((d @ self.axes.T) / self.radii) ** 2).sum(axis=1)
        inside = q <= 1.0
        if self.clip is not None:
            normal, offset = self.clip
            inside &= d @ normal >= offset
        return np.asarray(inside)


@dataclass(frozen=True, slots=True)
class _Tube:
    """A sweep of spheres along sampled centre points (one or several polylines)."""

    points: F64
    radii: F64

    def padded(self, pad: float) -> _Tube:
        return _Tube(self.points, self.radii + pad)

    def mask(self, z: float, g: _Plane) -> Mask | None:
        dz = self.points[:, 2] - z
        sel = np.abs(dz) < self.radii
        if not sel.any():
            return None
        p = self.points[sel]
        rho = np.sqrt(self.radii[sel] ** 2 - dz[sel] ** 2)
        if 1 < rho.size <= 400:
            # Drop disks inside another disk (the usual case for tubes crossing the plane).
            sep = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
            bigger = (rho[None, :] > rho[:, None]) | (
                (rho[None, :] == rho[:, None])
                & (np.arange(rho.size)[None, :] < np.arange(rho.size)[:, None])
            )
            covered = ((sep + rho[:, None] <= rho[None, :] + 0.02) & bigger).any(axis=1)
            p, rho = p[~covered], rho[~covered]
        rs = g.span(g.y, float((p[:, 1] - rho).min()), float((p[:, 1] + rho).max()))
        cs = g.span(g.x, float((p[:, 0] - rho).min()), float((p[:, 0] + rho).max()))
        ny, nx = rs.stop - rs.start, cs.stop - cs.start
        if ny <= 0 or nx <= 0:
            return None
        out = np.zeros((ny, nx), dtype=bool)
        cx = (p[:, 0] - float(g.x[cs.start])) / g.px
        cy = (p[:, 1] - float(g.y[rs.start])) / g.px
        reach = math.ceil(float(rho.max()) / g.px) + 1
        offs = np.arange(-reach, reach + 1)
        ix = np.rint(cx).astype(np.int64)[:, None] + offs[None, :]
        iy = np.rint(cy).astype(np.int64)[:, None] + offs[None, :]
        dx2 = ((ix - cx[:, None]) * g.px) ** 2
        dy2 = ((iy - cy[:, None]) * g.px) ** 2
        ok_x = (ix >= 0) & (ix < nx)
        ok_y = (iy >= 0) & (iy < ny)
        inside = (dy2[:, :, None] + dx2[:, None, :]) <= (rho**2)[:, None, None]
        inside &= ok_y[:, :, None] & ok_x[:, None, :]
        n_i, a_i, b_i = np.nonzero(inside)
        out[iy[n_i, a_i], ix[n_i, b_i]] = True
        return rs, cs, out

    def contains(self, p: F64) -> BoolArray:
        q = np.atleast_2d(p)
        result = np.zeros(q.shape[0], dtype=bool)
        for start in range(0, q.shape[0], 256):
            chunk = q[start : start + 256]
            d = np.linalg.norm(chunk[:, None, :] - self.points[None, :, :], axis=2)
            result[start : start + 256] = (d <= self.radii[None, :]).any(axis=1)
        return result

    def distance(self, p: F64) -> F64:
        """Distance from points to the centre points (not the surface)."""
        q = np.atleast_2d(p)
        d = np.linalg.norm(q[:, None, :] - self.points[None, :, :], axis=2)
        return np.asarray(d.min(axis=1))


@dataclass(frozen=True, slots=True)
class _Column:
    """A z-extruded super-ellipse: ``|dx/rx|^p + |dy/ry|^p <= 1`` (``ry_post`` behind the
    centre), between ``z0`` and ``z1``; the centre drifts ``drift`` mm per mm of z from
    ``z_ref`` and the radii scale by ``1 + grow * (z - z_ref)``."""

    cx: float
    cy: float
    rx: float
    ry: float
    ry_post: float
    power: float = 2.0
    z0: float = -1e9
    z1: float = 1e9
    z_ref: float = 0.0
    drift: tuple[float, float] = (0.0, 0.0)
    grow: float = 0.0

    def _at(self, z: float) -> tuple[float, float, float, float, float]:
        s = 1.0 + self.grow * (z - self.z_ref)
        return (
            self.cx + self.drift[0] * (z - self.z_ref),
            self.cy + self.drift[1] * (z - self.z_ref),
            self.rx * s,
            self.ry * s,
            self.ry_post * s,
        )

    def mask(self, z: float, g: _Plane) -> Mask | None:
        if not self.z0 <= z <= self.z1:
            return None
        cx, cy, rx, ry, ryp = self._at(z)
        rs = g.span(g.y, cy - ry, cy + ryp)
        cs = g.span(g.x, cx - rx, cx + rx)
        if rs.start >= rs.stop or cs.start >= cs.stop:
            return None
        fx = np.abs((g.x[cs] - np.float32(cx)) / np.float32(rx)) ** np.float32(self.power)
        dy = g.y[rs] - np.float32(cy)
        scale = np.where(dy < 0, np.float32(ry), np.float32(ryp))
        fy = np.abs(dy / scale) ** np.float32(self.power)
        return rs, cs, (fy[:, None] + fx[None, :]) <= 1.0

    def contains(self, p: F64) -> BoolArray:
        q = np.atleast_2d(p)
        out = np.zeros(q.shape[0], dtype=bool)
        for i, (x, y, z) in enumerate(q):
            if not self.z0 <= z <= self.z1:
                continue
            cx, cy, rx, ry, ryp = self._at(float(z))
            fy = abs((y - cy) / (ry if y < cy else ryp)) ** self.power
            out[i] = fy + abs((x - cx) / rx) ** self.power <= 1.0
        return out


@dataclass(frozen=True, slots=True)
class _Dome:
    """Region under an elliptic paraboloid: ``z <= top - depth * ((dx/ax)^2 + (dy/ay)^2)``."""

    cx: float
    cy: float
    ax: float
    ay: float
    top: float
    depth: float

    def mask(self, z: float, g: _Plane) -> Mask | None:
        if z > self.top:
            return None
        s = min((self.top - z) / self.depth, 4.0)
        col = _Column(self.cx, self.cy, self.ax * math.sqrt(s), self.ay * math.sqrt(s), 0.0)
        col = _Column(col.cx, col.cy, col.rx, col.ry, col.ry)
        return col.mask(z, g)

    def contains(self, p: F64) -> BoolArray:
        q = np.atleast_2d(p)
        r = ((q[:, 0] - self.cx) / self.ax) ** 2 + ((q[:, 1] - self.cy) / self.ay) ** 2
        return np.asarray(q[:, 2] <= self.top - self.depth * r)


@dataclass(frozen=True, slots=True)
class _Layer:
    shape: _Shape
    hu: float
    tag: _Tag
    only: frozenset[_Tag] | None = None
    never: frozenset[_Tag] | None = None


# Small dense objects, integrated precisely (partial volume).


@dataclass(frozen=True, slots=True)
class _Capsule:
    a: F64
    b: F64
    radius: float

    def half_extent(self) -> tuple[F64, F64]:
        lo = np.minimum(self.a, self.b) - self.radius
        hi = np.maximum(self.a, self.b) + self.radius
        return lo, hi

    def inside(self, x: F32, y: F32, z: F32) -> BoolArray:
        d = (self.b - self.a).astype(np.float32)
        length2 = float(d @ d) or 1e-9
        rx, ry, rz = x - np.float32(self.a[0]), y - np.float32(self.a[1]), z - np.float32(self.a[2])
        t = np.clip((rx * d[0] + ry * d[1] + rz * d[2]) / np.float32(length2), 0.0, 1.0)
        ex, ey, ez = rx - t * d[0], ry - t * d[1], rz - t * d[2]
        return np.asarray(ex * ex + ey * ey + ez * ez <= np.float32(self.radius**2))


@dataclass(frozen=True, slots=True)
class _Blob:
    """A uniform small object: an ellipsoid (``radii`` along ``axes``) or a capsule."""

    density_hu: float
    center: F64
    axes: F64
    radii: F64
    capsule: _Capsule | None = None

    def bounds(self) -> tuple[F64, F64]:
        if self.capsule is not None:
            return self.capsule.half_extent()
        h = np.sqrt(((self.axes * self.radii[:, None]) ** 2).sum(axis=0))
        return self.center - h, self.center + h

    def inside(self, x: F32, y: F32, z: F32) -> BoolArray:
        if self.capsule is not None:
            return self.capsule.inside(x, y, z)
        q = np.zeros(np.broadcast(x, y, z).shape, dtype=np.float32)
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        for k in range(3):
            ax, ay, az = (self.axes[k] / self.radii[k]).astype(np.float32)
            proj = ax * dx + ay * dy + az * dz
            q += proj * proj
        return np.asarray(q <= 1.0)

    @property
    def volume_mm3(self) -> float:
        if self.capsule is not None:
            r = self.capsule.radius
            length = float(np.linalg.norm(self.capsule.b - self.capsule.a))
            return math.pi * r * r * length + 4.0 / 3.0 * math.pi * r**3
        return 4.0 / 3.0 * math.pi * float(np.prod(self.radii))


@dataclass(frozen=True, slots=True)
class _Placed:
    """A plaque or distractor: its blobs, its truth code and its truth record."""

    blobs: tuple[_Blob, ...]
    plaque_code: int
    distractor: Distractor | None
    record: TruthObject


# --------------------------------------------------------------------------------------------
# Configuration and the drawn model.


@dataclass(frozen=True, slots=True)
class IndependentConfig:
    """What regenerates an independent phantom study: the seed and the study kind."""

    seed: int
    zero_calcium: bool = False
    heavy_distractors: bool = False


@dataclass(frozen=True, slots=True)
class IndependentModel:
    """The drawn study: scan, anatomy layers, placed objects and landmarks (patient mm).

    ``landmarks`` holds ``(x, y, z)`` points: ``heart_center``, ``apex``, ``aortic_valve``,
    ``left_ostium``, ``right_ostium``, ``vertebral_body``, ``sternum``, ``left_lung``,
    ``right_lung``, ``descending_aorta``. ``centerlines`` maps artery names (``LM``, ``LAD``,
    ``LCX``, ``RCA`` and branch names) to ``(n, 3)`` centre points.
    """

    config: IndependentConfig
    pixel_mm: float
    origin_xy_mm: tuple[float, float]
    slice_z_mm: F64
    thickness_mm: float
    increment_mm: float
    noise_sd_hu: float
    noise_cutoff_per_mm: float
    blur_sigma_mm: float
    mass_factor: float
    layers: tuple[_Layer, ...]
    objects: tuple[_Placed, ...]
    landmarks: dict[str, tuple[float, float, float]]
    centerlines: dict[str, F64]
    left_dominant: bool
    heart_scale: float
    fat_hu: float
    parameters: dict[str, float] = field(default_factory=dict)


def _unit(v: F64) -> F64:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def _frame(axis: F64) -> F64:
    """Rows: ``axis`` and two unit vectors perpendicular to it."""
    a = _unit(axis)
    helper = np.array([0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    b = _unit(np.cross(a, helper))
    return np.stack([a, b, np.cross(a, b)])


def _spline(control: Sequence[F64], step_mm: float) -> F64:
    """Catmull-Rom curve through the control points, resampled every ``step_mm``."""
    pts = np.asarray(control, dtype=np.float64)
    ext = np.vstack([2 * pts[0] - pts[1], pts, 2 * pts[-1] - pts[-2]])
    dense = []
    for i in range(1, ext.shape[0] - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        t = np.linspace(0.0, 1.0, 24, endpoint=False)[:, None]
        dense.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    dense.append(pts[-1:])
    return _resample(np.vstack(dense), step_mm)


def _resample(path: F64, step_mm: float) -> F64:
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.asarray(path[:1])
    n = max(2, math.ceil(s[-1] / step_mm) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, path[:, k]) for k in range(3)], axis=1)


def _arc_length(path: F64) -> F64:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])


def _tube(path: F64, r0: float, r1: float | None = None, step_mm: float | None = None) -> _Tube:
    s = _arc_length(path)
    frac = s / s[-1] if s[-1] > 0 else np.zeros_like(s)
    end = r0 if r1 is None else r1
    radii = r0 + (end - r0) * frac
    step = step_mm if step_mm is not None else max(0.3, min(2.0, min(r0, end) / 3.0))
    dense = _resample(path, step)
    sd = _arc_length(dense)
    return _Tube(dense, np.interp(sd, s, radii))


def _concat(tubes: Sequence[_Tube]) -> _Tube:
    return _Tube(np.vstack([t.points for t in tubes]), np.concatenate([t.radii for t in tubes]))


def _ray_ellipse(
    origin: F64, angles: F64, centre: tuple[float, float], semi: tuple[float, float]
) -> F64:
    """Far intersection distance of rays from ``origin`` (2-D) with an axis-aligned ellipse
    (NaN where a ray misses)."""
    dx, dy = np.cos(angles), np.sin(angles)
    ox, oy = origin[0] - centre[0], origin[1] - centre[1]
    a2, b2 = semi[0] ** 2, semi[1] ** 2
    qa = dx * dx / a2 + dy * dy / b2
    qb = 2 * (ox * dx / a2 + oy * dy / b2)
    qc = ox * ox / a2 + oy * oy / b2 - 1.0
    disc = qb * qb - 4 * qa * qc
    with np.errstate(invalid="ignore"):
        t = (-qb + np.sqrt(disc)) / (2 * qa)
    return np.asarray(np.where(disc >= 0, t, np.nan))


@dataclass(frozen=True, slots=True)
class _Heart:
    """Chambers in a frame: ``a`` base-to-apex long axis, ``e1`` toward the left-ventricular
    free wall, ``e2`` completing the frame (superior-anterior side), origin at the centre of the
    left-ventricular base."""

    origin: F64
    a: F64
    e1: F64
    e2: F64
    length: float
    radius: float
    radius2: float
    wall: float
    rv_center: tuple[float, float]
    rv_semi: tuple[float, float]
    rv_length: float

    def world(self, u: F64 | float, v: F64 | float, w: F64 | float) -> F64:
        uu, vv, ww = np.broadcast_arrays(
            np.asarray(u, float), np.asarray(v, float), np.asarray(w, float)
        )
        return np.asarray(
            self.origin + uu[..., None] * self.a + vv[..., None] * self.e1 + ww[..., None] * self.e2
        )

    @property
    def axes(self) -> F64:
        return np.stack([self.a, self.e1, self.e2])

    def lv_section(self, u: float) -> tuple[float, float]:
        s = math.sqrt(max(0.0, 1.0 - (u / self.length) ** 2))
        return self.radius * s, self.radius2 * s

    def rv_section(self, u: float) -> tuple[float, float] | None:
        if u >= self.rv_length * 0.98:
            return None
        s = math.sqrt(max(0.0, 1.0 - (u / self.rv_length) ** 2))
        return self.rv_semi[0] * s, self.rv_semi[1] * s

    def surface(self, u: float, origin: tuple[float, float], angles: F64) -> tuple[F64, F64]:
        """Ray distances from ``origin`` (v, w) to the left and right ventricle outer surfaces
        in the short-axis plane at ``u``."""
        o = np.asarray(origin)
        lv = _ray_ellipse(o, angles, (0.0, 0.0), self.lv_section(u))
        rv_semi = self.rv_section(u)
        rv = (
            np.full_like(lv, np.nan)
            if rv_semi is None
            else _ray_ellipse(o, angles, self.rv_center, rv_semi)
        )
        return lv, rv


def _groove_angle(
    heart: _Heart, u: float, origin: tuple[float, float], upper: bool
) -> float | None:
    """Angle (radians, from e1 toward e2) where the LV and RV outer surfaces meet."""
    lo, hi = (20.0, 170.0) if upper else (190.0, 340.0)
    ang = np.radians(np.arange(lo, hi, 0.5))
    lv, rv = heart.surface(u, origin, ang)
    diff = np.nan_to_num(lv, nan=0.0) - np.nan_to_num(rv, nan=0.0)
    sign = np.sign(diff)
    change = np.nonzero(sign[:-1] * sign[1:] < 0)[0]
    if change.size == 0:
        return None
    mid = math.radians(90.0 if upper else 270.0)
    best = change[np.argmin(np.abs(ang[change] - mid))]
    return float(ang[best])


def _push_out(path: F64, obstacles: Sequence[tuple[_Ellipsoid | _Tube, float]], keep: int) -> F64:
    """Move centre points out of obstacles (each padded by its clearance); the first ``keep``
    points stay (they leave the aortic root)."""
    out = path.copy()
    for _ in range(3):
        for shape, clearance in obstacles:
            if isinstance(shape, _Ellipsoid):
                padded = shape.padded(clearance)
                d = out - padded.center
                local = (d @ padded.axes.T) / padded.radii
                q = np.sqrt((local**2).sum(axis=1))
                inside = padded.contains(out)
                inside[:keep] = False
                if inside.any():
                    scale = 1.0 / np.maximum(q[inside], 1e-6)
                    moved = (local[inside] * scale[:, None] * padded.radii) @ padded.axes
                    out[inside] = padded.center + moved * 1.02
            else:
                d = out[:, None, :] - shape.points[None, :, :]
                dist = np.linalg.norm(d, axis=2)
                j = dist.argmin(axis=1)
                need = shape.radii[j] + clearance
                near = dist[np.arange(out.shape[0]), j]
                inside = near < need
                inside[:keep] = False
                if inside.any():
                    idx = np.nonzero(inside)[0]
                    vec = d[idx, j[idx]] / np.maximum(near[idx], 1e-6)[:, None]
                    out[idx] = shape.points[j[idx]] + vec * need[idx][:, None] * 1.02
    smooth = ndimage.gaussian_filter1d(out, sigma=4.0, axis=0, mode="nearest")
    smooth[:keep] = out[:keep]
    return _resample(smooth, 0.5)


# --------------------------------------------------------------------------------------------
# Drawing the model.


class _Draw:
    """A seeded random source with the few distributions the model needs."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 0x1D3])

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def i(self, lo: int, hi: int) -> int:
        """Integer in ``[lo, hi]``."""
        return int(self.rng.integers(lo, hi + 1))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def direction(self) -> F64:
        return _unit(self.rng.standard_normal(3))


_NEVER_HARD = frozenset({_Tag.BONE})


def independent_model(
    seed: int, *, zero_calcium: bool = False, heavy_distractors: bool = False
) -> IndependentModel:
    """Draw the anatomy, scan and objects of one study (no rendering).

    Raises
    ------
    PhantomConfigError
        When ``seed`` is negative, or both kinds are asked for at once.
    """
    if seed < 0:
        raise PhantomConfigError(f"seed must be >= 0, got {seed}")
    if zero_calcium and heavy_distractors:
        raise PhantomConfigError("a study is either zero_calcium or heavy_distractors, not both")
    config = IndependentConfig(seed, zero_calcium, heavy_distractors)
    d = _Draw(seed)

    # Tissue attenuations (non-contrast; blood and muscle nearly alike).
    fat = d.u(-120.0, -85.0)
    muscle = d.u(38.0, 55.0)
    blood = d.u(32.0, 46.0)
    myo = blood + d.u(-3.0, 8.0)
    lung = d.u(-880.0, -820.0)
    liver = d.u(50.0, 66.0)
    cortex = d.u(300.0, 1000.0)
    marrow = d.u(140.0, 260.0)
    cartilage = d.u(80.0, 125.0)
    peri = d.u(15.0, 35.0)

    # Heart frame: long axis anterior-left-inferior.
    hs = d.u(0.85, 1.2)
    az, el, roll = map(math.radians, (d.u(30.0, 60.0), d.u(15.0, 42.0), d.u(-20.0, 20.0)))
    horiz = np.array([math.sin(az), -math.cos(az), 0.0])
    a = _unit(math.cos(el) * horiz + np.array([0.0, 0.0, -math.sin(el)]))
    e1 = _unit(np.cross(np.array([0.0, 0.0, 1.0]), a))
    e2 = np.cross(a, e1)
    e1, e2 = math.cos(roll) * e1 + math.sin(roll) * e2, -math.sin(roll) * e1 + math.cos(roll) * e2
    length = 86.0 * hs * d.u(0.93, 1.07)
    radius = 31.0 * hs * d.u(0.95, 1.05)
    radius2 = radius * d.u(0.9, 1.05)
    wall = d.u(8.5, 11.5)
    rv_center = (-0.78 * radius, 0.22 * radius2)
    rv_semi = (0.92 * radius, 1.08 * radius2)
    heart = _Heart(
        origin=np.array([d.u(5.0, 25.0), 0.0, 0.0]),
        a=a,
        e1=e1,
        e2=e2,
        length=length,
        radius=radius,
        radius2=radius2,
        wall=wall,
        rv_center=rv_center,
        rv_semi=rv_semi,
        rv_length=0.82 * length,
    )
    axes = heart.axes
    base_clip = (a, -3.0)

    def frame_ellipsoid(
        u: float, v: float, w: float, semi: tuple[float, float, float], clip: bool
    ) -> _Ellipsoid:
        centre = heart.world(u, v, w)
        clip_spec = (a, -3.0 - u) if clip else None
        return _Ellipsoid(centre, axes, np.array(semi, dtype=float), clip_spec)

    lv_out = frame_ellipsoid(0, 0, 0, (length, radius, radius2), True)
    lv_cav = frame_ellipsoid(0, 0, 0, (length - 0.75 * wall, radius - wall, radius2 - wall), True)
    rv_out = frame_ellipsoid(0, *rv_center, (0.82 * length, *rv_semi), True)
    rv_wall = d.u(3.0, 5.0)
    rv_cav = frame_ellipsoid(
        0, *rv_center, (0.82 * length - rv_wall, rv_semi[0] - rv_wall, rv_semi[1] - rv_wall), True
    )
    la_semi = (17.0 * hs * d.u(0.9, 1.15), 27.0 * hs * d.u(0.9, 1.1), 20.0 * hs * d.u(0.9, 1.1))
    la = frame_ellipsoid(-(la_semi[0] + 1.0), 0.1 * radius, -0.35 * radius2, la_semi, False)
    ra_semi = (20.0 * hs, 20.0 * hs * d.u(0.9, 1.1), 25.0 * hs * d.u(0.9, 1.15))
    ra = frame_ellipsoid(-14.0 * hs, -1.2 * radius, -0.1 * radius2, ra_semi, False)
    del base_clip

    # Epicardial fat: uneven (envelope shifted inside its padding), 2-15 mm.
    def fat_envelope(shape: _Ellipsoid, lo: float, hi: float) -> _Ellipsoid:
        pad = d.u(lo, hi)
        shift = d.direction() * d.u(0.0, max(pad - 2.0, 0.0))
        return shape.padded(pad, shift)

    lv_fat = fat_envelope(lv_out, 2.5, 8.5)
    rv_fat = fat_envelope(rv_out, 3.0, 9.0)
    base_fat = frame_ellipsoid(
        1.0,
        0.5 * rv_center[0],
        0.1 * radius2,
        (d.u(8.0, 13.0), 1.55 * radius + d.u(6.0, 12.0), 1.3 * radius2 + d.u(6.0, 12.0)),
        False,
    )

    # Aortic root, valve and the ascending aorta.
    valve = heart.world(-4.0, -0.38 * radius, 0.55 * radius2)
    root_dir = _unit(np.array([-d.u(0.1, 0.35), -d.u(0.1, 0.4), 1.0]))
    r_asc = d.u(12.0, 18.0)
    r_annulus = max(10.0, 0.8 * r_asc)
    r_sinus = 1.25 * r_annulus
    root_axes = _frame(root_dir)
    sinus = _Ellipsoid(valve + 9.0 * root_dir, root_axes, np.array([12.0, r_sinus, r_sinus]))

    def on_root(direction: F64, height: float) -> F64:
        perp = _unit(direction - (direction @ root_dir) * root_dir)
        return valve + height * root_dir + (r_sinus - 0.3) * perp

    left_ostium = on_root(np.array([1.0, d.u(0.0, 0.5), 0.0]), d.u(9.0, 13.0))
    right_ostium = on_root(np.array([-d.u(0.2, 0.5), -1.0, 0.0]), d.u(9.0, 14.0))

    # Body layout from the heart's extents (anterior to posterior).
    heart_parts = (lv_fat, rv_fat, la.padded(3.0), ra.padded(3.0))
    y_front = min(float(e.center[1] - e.half_extent()[1]) for e in heart_parts)
    y_back = max(float(e.center[1] + e.half_extent()[1]) for e in heart_parts)
    z_heart_low = min(float(e.center[2] - e.half_extent()[2]) for e in (lv_fat, rv_fat))
    r_desc = d.u(10.0, 14.0)
    y_desc = y_back + r_desc + d.u(2.0, 6.0)
    r_eso = d.u(7.0, 10.0)
    vb_rx, vb_ry = d.u(17.0, 23.0), d.u(14.0, 19.0)
    y_vb = max(y_desc + d.u(-4.0, 8.0), y_back + vb_ry + d.u(4.0, 12.0))
    x_desc = vb_rx + r_desc * d.u(0.2, 0.7) + d.u(0.0, 6.0)
    y_sternum_back = y_front - d.u(3.0, 14.0)
    st_rx, st_ry = d.u(13.0, 20.0), d.u(5.0, 8.0)
    fat_ant, fat_post, fat_lat = d.u(5.0, 30.0), d.u(5.0, 25.0), d.u(5.0, 30.0)
    mus_ant, mus_lat = d.u(6.0, 16.0), d.u(6.0, 14.0)
    y_skin_ant = y_sternum_back - 2 * st_ry - mus_ant - fat_ant
    y_skin_post = y_vb + d.u(70.0, 90.0) + fat_post
    body_cy = 0.5 * (y_skin_ant + y_skin_post)
    body_b = 0.5 * (y_skin_post - y_skin_ant)
    body_a = body_b * d.u(1.3, 1.6)
    body_p = d.u(2.1, 2.6)
    grow = d.u(0.0, 0.0015)
    cav_post = y_vb + d.u(18.0, 32.0)
    cav_cy = 0.5 * (y_sternum_back + cav_post)
    cav_b = 0.5 * (cav_post - y_sternum_back)
    cav_a = body_a - fat_lat - mus_lat - 10.0

    # Great vessels.
    h_arch = d.u(45.0, 70.0)
    asc_mid = valve + 25.0 * root_dir
    asc_top = asc_mid + np.array([d.u(-4.0, 4.0), d.u(-4.0, 4.0), max(h_arch - 25.0, 12.0)])
    arch_top = np.array(
        [0.5 * (asc_top[0] + x_desc), 0.5 * (asc_top[1] + y_desc), asc_top[2] + d.u(15.0, 28.0)]
    )
    desc_top = np.array([x_desc, y_desc - 6.0, arch_top[2] - 18.0])
    desc_mid = np.array([x_desc, y_desc, arch_top[2] - 60.0])
    desc_low = np.array([x_desc + d.u(-6.0, 6.0), y_desc + d.u(-4.0, 6.0), z_heart_low - 90.0])
    aorta_path = _spline([valve, asc_mid, asc_top, arch_top, desc_top, desc_mid, desc_low], 1.0)
    s_aorta = _arc_length(aorta_path)
    knots = _arc_length(np.array([valve, asc_mid, asc_top, arch_top, desc_top]))
    r_aorta = np.interp(
        s_aorta,
        [0.0, knots[1], knots[2], knots[3], knots[4], s_aorta[-1]],
        [r_annulus, r_asc, r_asc, 0.9 * r_asc, r_desc, r_desc],
    )
    aorta = _Tube(aorta_path, r_aorta)

    def aorta_at(z: float) -> tuple[F64, float]:
        """Ascending aorta centre and radius at height z (first crossing)."""
        idx = int(np.argmin(np.abs(aorta_path[: len(aorta_path) // 2, 2] - z)))
        return aorta_path[idx], float(r_aorta[idx])

    r_pt = d.u(12.0, 15.0)
    pt_valve = valve + np.array([d.u(20.0, 26.0), -d.u(12.0, 18.0), d.u(10.0, 16.0)])
    rv_top = heart.world(12.0, -0.55 * radius, 0.75 * radius2)
    pt_bif = pt_valve + 32.0 * _unit(np.array([d.u(0.2, 0.4), d.u(0.4, 0.6), 0.85]))
    trunk = _tube(_spline([rv_top, pt_valve, pt_bif], 1.0), 0.9 * r_pt, r_pt)
    hilum_left = pt_bif + np.array([d.u(40.0, 55.0), d.u(20.0, 32.0), -d.u(5.0, 18.0)])
    lpa = _tube(
        _spline([pt_bif, pt_bif + np.array([18.0, 14.0, 4.0]), hilum_left], 1.0),
        0.75 * r_pt,
        0.6 * r_pt,
    )
    asc_b, r_b = aorta_at(float(pt_bif[2]))
    r_rpa = 0.65 * r_pt
    hilum_right = np.array(
        [asc_b[0] - d.u(50.0, 62.0), asc_b[1] + r_b + d.u(10.0, 20.0), pt_bif[2] - d.u(8.0, 18.0)]
    )
    rpa = _tube(
        _spline(
            [pt_bif, asc_b + np.array([0.0, r_b + r_rpa + 3.0, -4.0]), hilum_right],
            1.0,
        ),
        0.7 * r_pt,
        0.55 * r_pt,
    )
    r_svc = d.u(8.5, 11.0)
    z_ostium = float(left_ostium[2])
    asc_o, r_o = aorta_at(z_ostium + 15.0)
    svc_xy = np.array([asc_o[0] - r_o - r_svc - d.u(1.0, 5.0), asc_o[1] + d.u(0.0, 10.0)])
    svc = _tube(
        np.array(
            [
                [svc_xy[0], svc_xy[1], z_ostium + 120.0],
                [svc_xy[0], svc_xy[1], z_ostium + 10.0],
                ra.center + np.array([0.0, 0.0, 0.5 * ra_semi[2]]),
            ]
        ),
        r_svc,
    )
    ivc = _tube(
        np.array(
            [
                ra.center,
                ra.center + np.array([4.0, 10.0, -45.0]),
                ra.center + np.array([4.0, 14.0, -140.0]),
            ]
        ),
        d.u(11.0, 13.0),
    )
    pv_paths = []
    for side in (-1.0, 1.0):
        for dz in (10.0, -8.0):
            start = la.center + np.array([side * 0.6 * la_semi[1], 2.0, dz * 0.5])
            pv_paths.append(
                _tube(np.array([start, start + np.array([side * 38.0, d.u(5.0, 15.0), dz])]), 6.5)
            )
    x_eso = d.u(0.0, 10.0)
    y_eso = y_vb - vb_ry - r_eso - 2.0
    eso = _tube(
        np.array([[x_eso, y_eso, z_ostium + 140.0], [x_eso + 4.0, y_eso, z_heart_low - 60.0]]),
        r_eso,
    )
    z_carina = z_ostium + d.u(22.0, 50.0)
    carina = np.array([d.u(-6.0, 4.0), y_eso - r_eso - d.u(9.0, 14.0), z_carina])
    bronchus_left = _spline(
        [carina, carina + np.array([25.0, 8.0, -14.0]), carina + np.array([55.0, 18.0, -40.0])],
        1.0,
    )
    bronchus_right = _spline(
        [carina, carina + np.array([-22.0, 4.0, -10.0]), carina + np.array([-40.0, 10.0, -55.0])],
        1.0,
    )
    trachea_path = np.array([carina + np.array([0.0, -4.0, 120.0]), carina])
    airways = _concat(
        [_tube(trachea_path, 9.0), _tube(bronchus_left, 6.5, 5.5), _tube(bronchus_right, 7.5, 6.0)]
    )

    # Coronary arteries along the grooves of the chambers.
    r_lm = d.u(1.75, 2.0)
    gap = d.u(0.8, 2.0)
    left_dominant = d.chance(0.1)
    ring_c = (0.5 * rv_center[0], 0.35 * rv_center[1])
    u_ring = d.u(1.0, 4.0)
    ag_ring = _groove_angle(heart, u_ring, ring_c, True) or math.radians(80.0)
    pg_ring = _groove_angle(heart, u_ring, ring_c, False) or math.radians(270.0)

    def ring_points(alpha0: float, alpha1: float, pad: float) -> F64:
        ang = np.linspace(alpha0, alpha1, max(8, int(abs(alpha1 - alpha0) / math.radians(2.0))))
        lv, rv = heart.surface(u_ring, ring_c, ang)
        t = np.fmax(np.nan_to_num(lv, nan=0.0), np.nan_to_num(rv, nan=0.0)) + pad
        return heart.world(
            np.full_like(ang, u_ring), ring_c[0] + t * np.cos(ang), ring_c[1] + t * np.sin(ang)
        )

    def groove_path(u0: float, u1: float, upper: bool, pad: float) -> F64:
        pts = []
        alpha = ag_ring if upper else pg_ring
        origin = ring_c
        for u in np.arange(u0, u1, 2.0):
            if heart.rv_section(u) is not None and origin == ring_c:
                alpha = _groove_angle(heart, u, ring_c, upper) or alpha
                lv, rv = heart.surface(u, ring_c, np.array([alpha]))
                t = max(float(np.nan_to_num(lv[0])), float(np.nan_to_num(rv[0])))
                if np.isnan(lv[0]) or t <= 0:
                    break
                pts.append(
                    (
                        u,
                        ring_c[0] + (t + pad) * math.cos(alpha),
                        ring_c[1] + (t + pad) * math.sin(alpha),
                    )
                )
            else:
                if origin == ring_c and pts:
                    _, pv, pw = pts[-1]
                    alpha = math.atan2(pw, pv)
                    origin = (0.0, 0.0)
                lv, _ = heart.surface(u, (0.0, 0.0), np.array([alpha]))
                if np.isnan(lv[0]):
                    break
                t = float(lv[0]) + pad
                pts.append((u, t * math.cos(alpha), t * math.sin(alpha)))
        arr = np.array(pts, dtype=float)
        return heart.world(arr[:, 0], arr[:, 1], arr[:, 2])

    def lv_surface_path(u0: float, u1: float, alpha0: float, alpha1: float, pad: float) -> F64:
        us = np.arange(u0, u1, 2.0)
        ang = np.linspace(alpha0, alpha1, us.size)
        pts = []
        for u, al in zip(us, ang, strict=True):
            lv, _ = heart.surface(float(u), (0.0, 0.0), np.array([al]))
            if np.isnan(lv[0]):
                break
            t = float(lv[0]) + pad
            pts.append((u, t * math.cos(al), t * math.sin(al)))
        arr = np.array(pts, dtype=float)
        return heart.world(arr[:, 0], arr[:, 1], arr[:, 2])

    pad_lad = 1.5 + gap
    lm_target = ring_points(ag_ring - math.radians(8.0), ag_ring - math.radians(8.0), r_lm + gap)[0]
    lm_len = d.u(5.0, 15.0)
    bif = left_ostium + lm_len * _unit(lm_target - left_ostium)
    lm_path = _resample(np.array([left_ostium - 1.0 * _unit(lm_target - left_ostium), bif]), 0.5)
    lad_groove = groove_path(d.u(8.0, 14.0), 0.97 * length, True, pad_lad)
    lad_path = _spline([bif, *lad_groove[::3]], 0.5)
    lcx_end = pg_ring - 2 * math.pi + (0.0 if left_dominant else math.radians(d.u(40.0, 80.0)))
    lcx_ring = ring_points(ag_ring - math.radians(28.0), lcx_end, 1.5 + gap)
    lcx_path = _spline([bif, *lcx_ring[::3], lcx_ring[-1]], 0.5)
    rca_start = ag_ring + math.radians(d.u(35.0, 55.0))
    rca_end = pg_ring - (math.radians(d.u(45.0, 75.0)) if left_dominant else 0.0)
    rca_ring = ring_points(rca_start, rca_end, 1.7 + gap)
    rca_path = _spline([right_ostium, *rca_ring[::3], rca_ring[-1]], 0.5)
    pda_path = groove_path(u_ring + 4.0, d.u(0.55, 0.8) * length, False, 1.2 + gap)
    crux = lcx_path[-1] if left_dominant else rca_path[-1]
    pda_path = _spline([crux, *pda_path[::3]], 0.5)
    diag_u0 = d.u(0.15, 0.35) * length
    diag_from = lad_path[
        int(
            np.argmin(
                np.linalg.norm(lad_path - heart.world(diag_u0, 0, 0), axis=1) * 0
                + np.abs(((lad_path - heart.origin) @ a) - diag_u0)
            )
        )
    ]
    diag_alpha = ag_ring - math.radians(d.u(35.0, 55.0))
    diag_path = _spline(
        [
            diag_from,
            *lv_surface_path(diag_u0 + 8.0, 0.8 * length, ag_ring - 0.3, diag_alpha, 1.2 + gap)[
                ::3
            ],
        ],
        0.5,
    )
    om_idx = int(lcx_path.shape[0] * d.u(0.35, 0.6))
    om_alpha = math.radians(d.u(-15.0, 20.0))
    om_path = _spline(
        [
            lcx_path[om_idx],
            *lv_surface_path(u_ring + 10.0, 0.75 * length, om_alpha, om_alpha - 0.2, 1.2 + gap)[
                ::3
            ],
        ],
        0.5,
    )
    obstacles: list[tuple[_Ellipsoid | _Tube, float]] = [
        (la, 2.5 + gap),
        (ra, 2.5 + gap),
        (lv_out, 1.2 + gap),
        (rv_out, 1.2 + gap),
        (trunk, 2.0 + gap),
    ]
    centerlines = {
        "LM": lm_path,
        "LAD": _push_out(lad_path, obstacles, 8),
        "LCX": _push_out(lcx_path, obstacles, 8),
        "RCA": _push_out(rca_path, [*obstacles, (sinus, 0.5)][:5], 8),
        "PDA": _push_out(pda_path, obstacles, 0),
        "D1": _push_out(diag_path, obstacles, 1),
        "OM1": _push_out(om_path, obstacles, 1),
    }
    vessel_radii = {
        "LM": (r_lm, r_lm),
        "LAD": (d.u(1.5, 1.8), d.u(0.9, 1.1)),
        "LCX": (d.u(1.4, 1.7), d.u(0.9, 1.1)),
        "RCA": (d.u(1.6, 1.9), d.u(1.0, 1.2)),
        "PDA": (d.u(1.1, 1.3), 1.0),
        "D1": (d.u(1.0, 1.3), 1.0),
        "OM1": (d.u(1.0, 1.3), 1.0),
    }
    vessel_tubes = {name: _tube(path, *vessel_radii[name]) for name, path in centerlines.items()}
    fat_tubes = [
        _tube(path[2:] if name in ("LM", "RCA") else path, vessel_radii[name][0] + d.u(1.5, 4.5))
        for name, path in centerlines.items()
    ]
    artery_of = {
        "LM": Artery.LM,
        "LAD": Artery.LAD,
        "D1": Artery.LAD,
        "LCX": Artery.LCX,
        "OM1": Artery.LCX,
        "RCA": Artery.RCA,
        "PDA": Artery.LCX if left_dominant else Artery.RCA,
    }

    # Scan coverage: from above the left main to below the apex.
    thickness = THICKNESS_CHOICES_MM[d.i(0, 1)]
    overlapping = d.chance(0.3)
    increment = thickness - 0.5 if overlapping else thickness
    z_low = z_heart_low - d.u(3.0, 14.0)
    z_high = z_ostium + d.u(10.0, 30.0)
    n_slices = round((z_high - z_low) / increment) + 1
    if n_slices > SLICE_COUNT_RANGE[1] and overlapping:
        increment = thickness
        n_slices = round((z_high - z_low) / increment) + 1
    if n_slices > SLICE_COUNT_RANGE[1]:
        z_low = max(z_low, z_high - (SLICE_COUNT_RANGE[1] - 1) * increment)
        n_slices = SLICE_COUNT_RANGE[1]
    if n_slices < SLICE_COUNT_RANGE[0]:
        extra = (SLICE_COUNT_RANGE[0] - n_slices) * increment
        z_low -= 0.5 * extra
        n_slices = SLICE_COUNT_RANGE[0]
    slice_z = np.asarray(z_low + increment * np.arange(n_slices), dtype=np.float64)

    fov = d.u(*FOV_RANGE_MM)
    pixel = fov / MATRIX
    heart_center = heart.world(0.45 * length, 0.5 * rv_center[0], 0.0)
    apex = heart.world(length, 0.0, 0.0)
    # Centred near the heart (between the ventricles and the atria), never on the body.
    cardiac_mass = 0.5 * (heart_center + la.center)
    fov_c = cardiac_mass[:2] + np.array([d.u(-15.0, 15.0), d.u(0.0, 25.0)])
    # Keep the whole coronary tree (and its fat) well inside the field of view.
    tree = np.vstack([*centerlines.values(), apex[None, :]])
    lo_xy, hi_xy = tree[:, :2].min(axis=0) - 15.0, tree[:, :2].max(axis=0) + 15.0
    fov_c = np.clip(fov_c, hi_xy - 0.5 * fov, lo_xy + 0.5 * fov)
    origin_xy = (
        float(fov_c[0] - (MATRIX / 2 - 0.5) * pixel),
        float(fov_c[1] - (MATRIX / 2 - 0.5) * pixel),
    )

    # ---- anatomy layers (painter's order) ----
    layers: list[_Layer] = []
    only_lung = frozenset({_Tag.LUNG})
    body = _Column(0.0, body_cy, body_a, body_b, body_b, body_p, grow=grow, z_ref=0.0)
    layers.append(_Layer(body, d.u(15.0, 40.0), _Tag.SOFT))
    skin = 2.0
    layers.append(
        _Layer(
            _Column(0.0, body_cy, body_a - skin, body_b - skin, body_b - skin, body_p, grow=grow),
            fat,
            _Tag.FAT,
        )
    )
    breasts = d.chance(0.45)
    if breasts:
        z_b = z_heart_low + d.u(25.0, 60.0)
        for side in (-1.0, 1.0):
            centre = np.array([side * d.u(60.0, 90.0), y_skin_ant + d.u(0.0, 12.0), z_b])
            semi = np.array([d.u(45.0, 70.0), d.u(25.0, 50.0), d.u(45.0, 65.0)])
            axes_b = np.eye(3)
            layers.append(
                _Layer(
                    _Ellipsoid(centre, axes_b, semi), fat, _Tag.FAT, never=frozenset({_Tag.SOFT})
                )
            )
            layers.append(
                _Layer(
                    _Ellipsoid(centre + np.array([0.0, 0.15 * semi[1], 0.0]), axes_b, 0.55 * semi),
                    d.u(-40.0, 30.0),
                    _Tag.SOFT,
                    only=frozenset({_Tag.FAT}),
                )
            )
    mus_cy = body_cy + 0.5 * (fat_ant - fat_post)
    mus_b = body_b - 0.5 * (fat_ant + fat_post)
    layers.append(
        _Layer(
            _Column(0.0, mus_cy, body_a - fat_lat, mus_b, mus_b, body_p, grow=grow),
            muscle,
            _Tag.SOFT,
        )
    )
    cavity = _Column(0.0, cav_cy, cav_a, cav_b, cav_b, d.u(2.0, 2.4), grow=grow)
    layers.append(_Layer(cavity, lung, _Tag.LUNG))
    # Diaphragm and the organs under it.
    domes = [
        (
            _Dome(
                -d.u(40.0, 70.0),
                cav_cy + d.u(-10.0, 15.0),
                d.u(95.0, 125.0),
                d.u(70.0, 95.0),
                z_heart_low + d.u(0.0, 25.0),
                d.u(45.0, 70.0),
            ),
            liver,
        ),
        (
            _Dome(
                d.u(55.0, 85.0),
                cav_cy + d.u(-5.0, 20.0),
                d.u(70.0, 90.0),
                d.u(60.0, 80.0),
                z_heart_low + d.u(-12.0, 6.0),
                d.u(40.0, 60.0),
            ),
            d.u(35.0, 50.0),
        ),
    ]
    under = heart.world(0.6 * length, 0.3 * rv_center[0], -radius2)
    domes.append(
        (_Dome(float(under[0]), float(under[1]), 60.0, 50.0, z_heart_low + 2.0, 30.0), liver)
    )
    for dome, organ_hu in domes:
        raised = _Dome(dome.cx, dome.cy, dome.ax, dome.ay, dome.top + 4.0, dome.depth)
        layers.append(_Layer(raised, muscle, _Tag.DIAPH, only=only_lung))
        layers.append(_Layer(dome, organ_hu, _Tag.ORGAN, only=frozenset({_Tag.DIAPH})))
    if d.chance(0.5):
        dome = domes[1][0]
        bubble = _Ellipsoid(
            np.array([dome.cx + 5.0, dome.cy - 10.0, dome.top - 18.0]),
            np.eye(3),
            np.array([d.u(15.0, 30.0), d.u(12.0, 25.0), d.u(8.0, 14.0)]),
        )
        layers.append(_Layer(bubble, -960.0, _Tag.AIR, only=frozenset({_Tag.ORGAN})))
    layers.append(
        _Layer(
            _Column(0.0, y_vb + vb_ry + 35.0, vb_rx + 12.0, 45.0, 45.0, 2.2),
            muscle,
            _Tag.SOFT,
            only=only_lung,
        )
    )

    # Mediastinal fat: the pads around heart, great vessels and the central column.
    sac_shapes: list[_Ellipsoid | _Tube] = [
        lv_fat,
        rv_fat,
        base_fat,
        la.padded(2.0),
        ra.padded(2.0),
        *fat_tubes,
    ]
    column = _Column(
        d.u(-5.0, 8.0),
        0.5 * (y_sternum_back + y_vb),
        d.u(7.0, 14.0),
        0.5 * (y_vb - y_sternum_back),
        0.5 * (y_vb - y_sternum_back),
    )
    layers.append(_Layer(column, fat, _Tag.FAT, only=only_lung))
    pad_m = d.u(3.0, 12.0)
    for s in [*sac_shapes[:5], aorta, trunk, lpa, rpa, svc, eso, airways]:
        layers.append(
            _Layer(
                s.padded(pad_m if isinstance(s, _Ellipsoid) else 5.0), fat, _Tag.FAT, only=only_lung
            )
        )
    # Lung vessels from the hila.
    branches: list[_Tube] = []
    origins = [(hilum_left, 1.0, 0.3), (hilum_right, -1.0, 0.3)] + [
        (tube.points[-1], 1.0 if tube.points[-1, 0] > la.center[0] else -1.0, -0.4)
        for tube in pv_paths
    ]
    for hilum, side, tilt in origins:
        for _ in range(12):
            direction = _unit(
                np.array([side * d.u(0.2, 1.0), d.u(-0.9, 0.9), tilt + d.u(-0.8, 0.6)])
            )
            length_b = d.u(40.0, 110.0)
            bend = d.direction() * d.u(5.0, 15.0)
            path = _spline(
                [hilum, hilum + 0.5 * length_b * direction + bend, hilum + length_b * direction],
                1.0,
            )
            branches.append(_tube(path, d.u(3.0, 4.5), 1.2, 0.8))
            for _ in range(2):
                start = path[int(path.shape[0] * d.u(0.3, 0.7))]
                sub_dir = _unit(direction + 0.7 * d.direction())
                sub = _spline([start, start + d.u(25.0, 55.0) * sub_dir], 1.0)
                branches.append(_tube(sub, d.u(1.5, 2.2), 0.8, 0.6))
    layers.append(_Layer(_concat(branches), blood, _Tag.SOFT, only=only_lung))
    for tube in pv_paths:
        layers.append(_Layer(tube, blood, _Tag.BLOOD, never=_NEVER_HARD))
    # Oesophagus, airways.
    layers.append(_Layer(eso, d.u(30.0, 45.0), _Tag.SOFT, never=_NEVER_HARD))
    if d.chance(0.5):
        layers.append(
            _Layer(_tube(eso.points[[0, -1]], d.u(1.5, 3.0)), -950.0, _Tag.AIR, never=_NEVER_HARD)
        )
    layers.append(_Layer(airways.padded(1.5), d.u(30.0, 60.0), _Tag.SOFT, never=_NEVER_HARD))
    layers.append(_Layer(airways, -980.0, _Tag.AIR, never=_NEVER_HARD))
    # Heart: pericardium, epicardial fat, chambers.
    for s in sac_shapes:
        layers.append(_Layer(s.padded(1.5), peri, _Tag.SOFT, never=_NEVER_HARD))
    for s in sac_shapes:
        layers.append(_Layer(s, fat, _Tag.FAT, never=_NEVER_HARD))
    for s, hu, tag in (
        (ra, blood, _Tag.BLOOD),
        (la, blood, _Tag.BLOOD),
        (rv_out, myo, _Tag.MYO),
        (rv_cav, blood, _Tag.BLOOD),
        (lv_out, myo, _Tag.MYO),
        (lv_cav, blood, _Tag.BLOOD),
    ):
        layers.append(_Layer(s, hu, tag))
    for s in (sinus, aorta, trunk, lpa, rpa, svc, ivc):
        layers.append(_Layer(s, blood, _Tag.BLOOD, never=_NEVER_HARD))
    for tube in vessel_tubes.values():
        layers.append(_Layer(tube, blood + d.u(0.0, 10.0), _Tag.SOFT, never=_NEVER_HARD))

    # Bones last: spine, ribs with costal cartilage, sternum.
    level = d.u(22.0, 27.0)
    disc = d.u(5.0, 8.0)
    phase = d.u(0.0, level)
    canal_y = y_vb + vb_ry + 9.0
    spine_drift = (0.0, d.u(-0.08, 0.04))
    for k in range(-12, 12):
        z0 = phase + k * level
        z1 = z0 + level - disc
        if z1 < slice_z[0] - 20 or z0 > slice_z[-1] + 20:
            continue
        vb = _Column(0.0, y_vb, vb_rx, vb_ry, vb_ry, 2.0, z0, z1, drift=spine_drift)
        layers.append(_Layer(vb, cortex, _Tag.BONE))
        cc = d.u(1.5, 2.5)
        layers.append(
            _Layer(
                _Column(
                    0.0, y_vb, vb_rx - cc, vb_ry - cc, vb_ry - cc, 2.0, z0, z1, drift=spine_drift
                ),
                marrow,
                _Tag.BONE,
            )
        )
        layers.append(
            _Layer(
                _Column(0.0, y_vb, vb_rx, vb_ry, vb_ry, 2.0, z1, z0 + level, drift=spine_drift),
                d.u(70.0, 100.0),
                _Tag.SOFT,
            )
        )
        arch_hu = 0.5 * (cortex + marrow)
        zs = z0 + 0.3 * level
        layers.append(
            _Layer(
                _Column(0.0, canal_y, 15.0, 14.0, 14.0, 2.0, z0, zs + 6.0, drift=spine_drift),
                arch_hu,
                _Tag.BONE,
            )
        )
        layers.append(
            _Layer(
                _Column(
                    0.0,
                    canal_y + 30.0,
                    5.5,
                    18.0,
                    18.0,
                    2.0,
                    zs - 10.0,
                    zs + 8.0,
                    drift=spine_drift,
                ),
                arch_hu,
                _Tag.BONE,
            )
        )
        for side in (-1.0, 1.0):
            layers.append(
                _Layer(
                    _Column(
                        side * (vb_rx + 14.0),
                        canal_y - 4.0,
                        13.0,
                        6.0,
                        6.0,
                        2.0,
                        zs - 4.0,
                        zs + 6.0,
                        drift=spine_drift,
                    ),
                    arch_hu,
                    _Tag.BONE,
                )
            )
        layers.append(
            _Layer(
                _Column(0.0, canal_y, 8.5, 8.0, 8.0, 2.0, -1e9, 1e9, drift=spine_drift),
                d.u(5.0, 15.0),
                _Tag.SOFT,
            )
        )

    rib_a, rib_b = cav_a + 7.0, cav_b + 7.0
    rib_r = d.u(4.0, 5.5)
    ribs_bone: list[_Tube] = []
    ribs_marrow: list[_Tube] = []
    cartilages: list[_Tube] = []
    cartilage_points: list[F64] = []
    theta0 = math.asin(min(0.95, (vb_rx + 18.0) / rib_a))
    theta_end = math.pi - math.asin(min(0.95, (st_rx + 2.0) / rib_a))
    theta_cc = math.pi - math.asin(min(0.95, (st_rx + d.u(20.0, 35.0)) / rib_a))
    for k in range(-12, 12):
        z_head = phase + k * level + 0.5 * level
        drop = d.u(75.0, 115.0)
        if z_head - drop > slice_z[-1] + 20 or z_head < slice_z[0] - 20:
            continue
        for side in (-1.0, 1.0):
            th = np.linspace(theta0, theta_end, 90)
            frac = (th - theta0) / (math.pi - theta0)
            pts = np.stack(
                [side * rib_a * np.sin(th), cav_cy + rib_b * np.cos(th), z_head - drop * frac**1.1],
                axis=1,
            )
            bone_part = pts[th <= theta_cc]
            cart_part = pts[th >= theta_cc]
            if bone_part.shape[0] > 1:
                ribs_bone.append(_tube(bone_part, rib_r, step_mm=1.0))
                ribs_marrow.append(_tube(bone_part, rib_r - 1.5, step_mm=1.0))
            if cart_part.shape[0] > 1:
                cartilages.append(_tube(cart_part, rib_r + 0.5, step_mm=1.0))
                cartilage_points.append(cart_part)
    if cartilages:
        layers.append(_Layer(_concat(cartilages), cartilage, _Tag.CARTILAGE))
    if ribs_bone:
        layers.append(_Layer(_concat(ribs_bone), cortex, _Tag.BONE))
        layers.append(_Layer(_concat(ribs_marrow), marrow, _Tag.BONE))
    z_xiphoid = z_heart_low + d.u(5.0, 40.0)
    st_drift = (0.0, d.u(0.05, 0.15))
    st_cy = y_sternum_back - st_ry
    sternum = _Column(
        0.0,
        st_cy,
        st_rx,
        st_ry,
        st_ry,
        2.0,
        z_xiphoid,
        1e9,
        z_ref=z_heart_low + 20.0,
        drift=st_drift,
    )
    layers.append(_Layer(sternum, cortex, _Tag.BONE))
    layers.append(
        _Layer(
            _Column(
                0.0,
                st_cy,
                st_rx - 1.5,
                st_ry - 1.5,
                st_ry - 1.5,
                2.0,
                z_xiphoid,
                1e9,
                z_ref=z_heart_low + 20.0,
                drift=st_drift,
            ),
            marrow,
            _Tag.BONE,
        )
    )

    # ---- plaques and distractors ----
    objects: list[_Placed] = []
    coronary_points = np.vstack(list(centerlines.values()))
    plaque_centres: list[tuple[F64, float, int]] = []

    def add(
        blobs: list[_Blob], code: int, distractor: Distractor | None, kind: str, label: str
    ) -> None:
        centre = np.mean([b.center for b in blobs], axis=0)
        lo = np.min([b.bounds()[0] for b in blobs], axis=0)
        hi = np.max([b.bounds()[1] for b in blobs], axis=0)
        record = TruthObject(
            kind=kind,
            label=label,
            center_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
            radii_mm=tuple(float(v) for v in 0.5 * (hi - lo)),  # type: ignore[arg-type]
            density_hu=float(max(b.density_hu for b in blobs)),
            geometric_volume_mm3=float(sum(b.volume_mm3 for b in blobs)),
        )
        objects.append(_Placed(tuple(blobs), code, distractor, record))

    def far_from_coronaries(p: F64, margin: float) -> bool:
        return bool(np.linalg.norm(coronary_points - p, axis=1).min() >= margin)

    def far_from_plaques(p: F64, margin: float) -> bool:
        return all(np.linalg.norm(p - c) >= margin + r for c, r, _ in plaque_centres)

    # Coronary plaques.
    if zero_calcium:
        n_plaques = 0
    elif heavy_distractors:
        n_plaques = d.i(0, 2)
    else:
        roll_n = d.u(0.0, 1.0)
        n_plaques = d.i(1, 4) if roll_n < 0.4 else d.i(5, 12) if roll_n < 0.8 else d.i(13, 28)
    names = ["LAD", "RCA", "LCX", "LM", "D1", "OM1", "PDA"]
    weights = np.array([0.33, 0.24, 0.17, 0.08, 0.07, 0.06, 0.05])
    per_artery: dict[Artery, int] = dict.fromkeys(Artery, 0)
    attempts = 0
    while len(plaque_centres) < n_plaques and attempts < 40 * max(n_plaques, 1):
        attempts += 1
        name = names[int(d.rng.choice(len(names), p=weights))]
        artery = artery_of[name]
        if per_artery[artery] >= 10:
            continue
        path = centerlines[name]
        tube = vessel_tubes[name]
        lo_f, hi_f = (0.25, 0.95) if name == "LM" else (0.04, 0.9)
        idx = int(d.u(lo_f, hi_f) * (path.shape[0] - 1))
        centre0 = path[idx]
        r_vessel = float(
            tube.radii[
                min(
                    int(np.argmin(np.linalg.norm(tube.points - centre0, axis=1))),
                    tube.radii.size - 1,
                )
            ]
        )
        tangent = _unit(path[min(idx + 2, path.shape[0] - 1)] - path[max(idx - 2, 0)])
        basis = _frame(tangent)
        if not plaque_centres:
            # The first plaque of a study is always visible at 130 HU after blur, so that a
            # study with plaques has truth calcium.
            r_across, density = d.u(1.2, 3.0), d.u(300.0, 1000.0)
        elif d.chance(0.3):
            # Specks: small, and dense enough to survive partial volume only sometimes.
            r_across, density = d.u(0.5, 1.0), d.u(400.0, 1000.0)
        else:
            r_across = d.u(0.8, 3.0)
            density = float(np.exp(d.u(math.log(150.0), math.log(1000.0))))
        kind_roll = d.u(0.0, 1.0)
        pieces = 1 if kind_roll < 0.6 else d.i(2, 4)
        eccentric = d.chance(0.5)
        spin = d.u(0.0, 2 * math.pi)
        offset_dir = math.cos(spin) * basis[1] + math.sin(spin) * basis[2]
        offset = (r_vessel * d.u(0.5, 1.0)) if eccentric else d.u(0.0, 0.4) * r_vessel
        blobs: list[_Blob] = []
        step = max(1, int(r_across * 1.6 / 0.5))
        for j in range(pieces):
            k_idx = min(max(idx + (j - (pieces - 1) / 2) * step, 0), path.shape[0] - 1)
            c = path[int(k_idx)] + offset * offset_dir
            t_loc = _unit(
                path[min(int(k_idx) + 2, path.shape[0] - 1)] - path[max(int(k_idx) - 2, 0)]
            )
            b_loc = _frame(t_loc)
            b_loc = np.stack([t_loc, offset_dir - (offset_dir @ t_loc) * t_loc, np.zeros(3)])
            b_loc[1] = _unit(b_loc[1] if np.linalg.norm(b_loc[1]) > 1e-6 else _frame(t_loc)[1])
            b_loc[2] = np.cross(b_loc[0], b_loc[1])
            radial = r_across * (d.u(0.5, 0.9) if eccentric else d.u(0.8, 1.0))
            radii = np.array([r_across * d.u(1.0, 2.2), radial, r_across])
            blobs.append(_Blob(density * d.u(0.85, 1.0), c, b_loc, radii))
        centre = np.mean([b.center for b in blobs], axis=0)
        extent = float(max(b.radii.max() for b in blobs)) + (pieces - 1) * step * 0.25
        if not all(
            np.linalg.norm(centre - c) >= r + extent + (1.0 if code == artery.code else 7.0)
            for c, r, code in plaque_centres
        ):
            continue
        plaque_centres.append((centre, extent, artery.code))
        per_artery[artery] += 1
        add(blobs, artery.code, None, "plaque", str(artery))

    # Distractors.
    heavy = heavy_distractors
    n_aortic = d.i(6, 16) if heavy else d.i(0, 5)
    n_valve = d.i(2, 5) if heavy else (d.i(1, 3) if d.chance(0.25) else 0)
    n_mac = d.i(1, 2) if heavy else (1 if d.chance(0.15) else 0)
    n_peri = d.i(2, 6) if heavy else (d.i(1, 2) if d.chance(0.12) else 0)
    n_node = d.i(2, 5) if heavy else (d.i(1, 2) if d.chance(0.3) else 0)
    n_wires = d.i(4, 7) if heavy else (d.i(4, 6) if d.chance(0.07) else 0)
    n_clips = d.i(3, 10) if heavy else (d.i(1, 4) if d.chance(0.08) else 0)
    n_cart = d.i(3, 10) if heavy else d.i(0, 4)
    z_lo, z_hi = float(slice_z[0]), float(slice_z[-1])

    def in_scan(p: F64, margin: float = 0.0) -> bool:
        return bool(z_lo - margin <= float(p[2]) <= z_hi + margin)

    def calc(centre: F64, axes_c: F64, radii: F64, hu: float) -> _Blob:
        return _Blob(hu, centre, axes_c, radii)

    n_asc = int(np.argmin(np.abs(s_aorta - knots[2])))
    n_arch_end = int(np.argmin(np.abs(s_aorta - knots[4])))
    for _ in range(n_aortic * 4):
        if sum(o.distractor is Distractor.AORTIC_WALL for o in objects) >= n_aortic:
            break
        segment = d.u(0.0, 1.0)
        if segment < 0.35:
            idx, label = d.i(int(0.3 * n_asc), n_asc), "ascending"
        elif segment < 0.55:
            idx, label = d.i(n_asc, n_arch_end), "arch"
        else:
            idx, label = d.i(n_arch_end, aorta_path.shape[0] - 1), "descending"
        centre_line = aorta_path[idx]
        tangent = _unit(
            aorta_path[min(idx + 2, aorta_path.shape[0] - 1)] - aorta_path[max(idx - 2, 0)]
        )
        basis = _frame(tangent)
        spin = d.u(0.0, 2 * math.pi)
        normal = math.cos(spin) * basis[1] + math.sin(spin) * basis[2]
        p = centre_line + (float(r_aorta[idx]) - 0.8) * normal
        if not in_scan(p, -2.0) or not far_from_coronaries(p, 10.0):
            continue
        ax_c = np.stack([tangent, np.cross(normal, tangent), normal])
        blob = calc(
            p, ax_c, np.array([d.u(1.5, 6.0), d.u(1.5, 5.0), d.u(0.7, 1.5)]), d.u(250.0, 900.0)
        )
        add([blob], 0, Distractor.AORTIC_WALL, "aortic_wall", label)
    valve_axes = root_axes
    for _ in range(n_valve):
        beta = d.u(0.0, 2 * math.pi)
        p = (
            valve
            + d.u(-1.0, 3.0) * root_dir
            + r_annulus
            * d.u(0.4, 0.8)
            * (math.cos(beta) * valve_axes[1] + math.sin(beta) * valve_axes[2])
        )
        if in_scan(p) and far_from_coronaries(p, 7.0):
            rr = d.u(1.5, 4.0)
            add(
                [
                    calc(
                        p,
                        np.eye(3),
                        np.array([rr, rr * d.u(0.6, 1.0), rr * d.u(0.5, 1.0)]),
                        d.u(300.0, 1000.0),
                    )
                ],
                0,
                Distractor.AORTIC_VALVE,
                "aortic_valve",
                "cusp",
            )
    mitral_c = heart.world(-2.0, 0.15 * radius, -0.2 * radius2)
    r_mv = 14.0 * hs
    post_dir = math.atan2(-0.75, 0.53)
    for _ in range(n_mac):
        span = math.radians(d.u(60.0, 180.0))
        mid = post_dir + d.u(-0.4, 0.4)
        rr = d.u(1.2, 2.5)
        hu = d.u(250.0, 800.0)
        blobs = []
        n_b = max(2, int(span * r_mv / 2.5))
        for beta in np.linspace(mid - span / 2, mid + span / 2, n_b):
            p = mitral_c + r_mv * (math.cos(beta) * e1 + math.sin(beta) * e2)
            if far_from_coronaries(p, 4.0 + rr):
                blobs.append(calc(p, axes, np.array([rr, rr, rr]), hu))
        if blobs:
            add(blobs, 0, Distractor.MITRAL_ANNULUS, "mitral_annulus", "posterior annulus")
    for _ in range(n_peri * 6):
        if sum(o.distractor is Distractor.PERICARDIUM for o in objects) >= n_peri:
            break
        env = rv_fat if d.chance(0.6) else lv_fat
        direction = _unit(d.direction() - 0.8 * e1 * (1.0 if env is rv_fat else -1.0))
        local = direction @ env.axes.T
        local = local / np.sqrt(((local / env.radii) ** 2).sum())
        p = env.center + local @ env.axes + 1.5 * direction
        if (
            not env.contains(p - 3.0 * direction)[0]
            or not in_scan(p)
            or not far_from_coronaries(p, 9.0)
        ):
            continue
        plate = np.stack([direction, _frame(direction)[1], _frame(direction)[2]])
        add(
            [
                calc(
                    p,
                    plate,
                    np.array([d.u(0.6, 1.2), d.u(2.0, 7.0), d.u(2.0, 7.0)]),
                    d.u(200.0, 700.0),
                )
            ],
            0,
            Distractor.PERICARDIUM,
            "pericardium",
            "pericardial plaque",
        )
    node_sites = [
        carina + np.array([0.0, 8.0, -18.0]),
        0.5 * (pt_bif + arch_top) + np.array([8.0, 0.0, -8.0]),
        hilum_right + np.array([8.0, 0.0, 6.0]),
        hilum_left + np.array([-8.0, 0.0, 6.0]),
    ]
    for _ in range(n_node * 6):
        if sum(o.distractor is Distractor.LYMPH_NODE for o in objects) >= n_node:
            break
        if d.chance(0.7):
            p = node_sites[d.i(0, len(node_sites) - 1)] + d.direction() * d.u(0.0, 8.0)
            label = "mediastinal node"
        else:
            p = np.array(
                [d.u(-1.0, 1.0) * 0.7 * cav_a, cav_cy + d.u(-0.6, 0.6) * cav_b, d.u(z_lo, z_hi)]
            )
            label = "lung granuloma"
        if not in_scan(p) or not far_from_coronaries(p, 12.0):
            continue
        if any(s.contains(p)[0] for s in (lv_fat, rv_fat, la, ra, sinus)):
            continue
        if label == "lung granuloma" and (not cavity.contains(p)[0] or column.contains(p)[0]):
            continue
        rr = d.u(2.0, 6.0)
        add(
            [
                calc(
                    p,
                    _frame(d.direction()),
                    np.array([rr, rr * d.u(0.6, 1.0), rr * d.u(0.6, 1.0)]),
                    d.u(250.0, 900.0),
                )
            ],
            0,
            Distractor.LYMPH_NODE,
            "lymph_node",
            label,
        )
    metal_hu = d.u(2200.0, 3000.0)
    for _ in range(n_wires):
        z_w = d.u(max(z_lo, z_xiphoid + 5.0), z_hi)
        cy_w = st_cy + st_drift[1] * (z_w - (z_heart_low + 20.0))
        tilt = d.u(-0.15, 0.15)
        rw = d.u(0.5, 0.7)
        wire = [
            np.array(
                [
                    (st_rx + 1.5) * math.cos(t),
                    cy_w + (st_ry + 1.5) * math.sin(t),
                    z_w + tilt * (st_ry + 1.5) * math.sin(t),
                ]
            )
            for t in np.linspace(0.0, 2 * math.pi, 19)
        ]
        blobs = [
            _Blob(
                metal_hu, 0.5 * (p0 + p1), np.eye(3), np.array([rw, rw, rw]), _Capsule(p0, p1, rw)
            )
            for p0, p1 in itertools.pairwise(wire)
        ]
        knot = np.array([d.u(-4.0, 4.0), cy_w - st_ry - 2.5, z_w])
        blobs.append(_Blob(metal_hu, knot, np.eye(3), np.array([2.0, 1.5, 1.5])))
        add(blobs, 0, Distractor.METAL, "metal", "sternal wire")
    for _ in range(n_clips * 4):
        if sum(o.record.label == "surgical clip" for o in objects) >= n_clips:
            break
        p = (
            np.array([d.u(15.0, 40.0), y_sternum_back + d.u(2.0, 12.0), d.u(z_lo, z_hi)])
            if d.chance(0.6)
            else heart_center + d.direction() * d.u(40.0, 60.0)
        )
        if not far_from_coronaries(p, 10.0) or not in_scan(p):
            continue
        half = d.direction() * d.u(1.5, 3.0)
        rc = d.u(0.6, 0.8)
        add(
            [
                _Blob(
                    metal_hu, p, np.eye(3), np.array([rc, rc, rc]), _Capsule(p - half, p + half, rc)
                )
            ],
            0,
            Distractor.METAL,
            "metal",
            "surgical clip",
        )
    for _ in range(n_cart):
        if not cartilage_points:
            break
        pts = cartilage_points[d.i(0, len(cartilage_points) - 1)]
        p = pts[d.i(0, pts.shape[0] - 1)] + d.direction() * d.u(0.0, 2.0)
        if in_scan(p):
            rr = d.u(1.0, 3.0)
            add(
                [calc(p, np.eye(3), np.array([rr, rr, rr * d.u(0.5, 1.0)]), d.u(200.0, 600.0))],
                0,
                Distractor.COSTAL_CARTILAGE,
                "costal_cartilage",
                "calcified cartilage",
            )

    mid_level = round((float(slice_z[len(slice_z) // 2]) - phase) / level - 0.5)
    vert_centre = np.array([0.0, y_vb, phase + mid_level * level + 0.5 * (level - disc)])
    mid_z = float(slice_z[len(slice_z) // 2])
    landmarks = {
        "heart_center": tuple(float(v) for v in heart_center),
        "apex": tuple(float(v) for v in apex),
        "aortic_valve": tuple(float(v) for v in valve),
        "left_ostium": tuple(float(v) for v in left_ostium),
        "right_ostium": tuple(float(v) for v in right_ostium),
        "vertebral_body": tuple(float(v) for v in vert_centre),
        "sternum": (0.0, float(st_cy), mid_z),
        "left_lung": (float(0.8 * cav_a), float(cav_cy), mid_z),
        "right_lung": (float(-0.8 * cav_a), float(cav_cy), mid_z),
        "descending_aorta": (float(x_desc), float(y_desc), mid_z),
    }
    return IndependentModel(
        config=config,
        pixel_mm=pixel,
        origin_xy_mm=origin_xy,
        slice_z_mm=slice_z,
        thickness_mm=thickness,
        increment_mm=increment,
        noise_sd_hu=d.u(*NOISE_SD_RANGE_HU),
        noise_cutoff_per_mm=d.u(0.3, 0.55),
        blur_sigma_mm=d.u(*BLUR_SIGMA_RANGE_MM),
        mass_factor=round(d.u(*MASS_FACTOR_RANGE), 3),
        layers=tuple(layers),
        objects=tuple(objects),
        landmarks=landmarks,  # type: ignore[arg-type]
        centerlines=centerlines,
        left_dominant=left_dominant,
        heart_scale=hs,
        fat_hu=fat,
        parameters={
            "heart_azimuth_deg": math.degrees(az),
            "heart_elevation_deg": math.degrees(el),
            "heart_roll_deg": math.degrees(roll),
            "field_of_view_mm": fov,
        },
    )


# --------------------------------------------------------------------------------------------
# Rendering.

#: Relative sample positions (x thickness) of the anatomy planes across a slice (all of weight
#: one under the trapezoidal profile: a box average).
_SUB_OFFSETS = (-1.0 / 3.0, 0.0, 1.0 / 3.0)


def _ssp(dz_mm: F64, thickness_mm: float) -> F64:
    """Trapezoidal slice-sensitivity profile (unnormalised): flat to 0.35 x thickness, zero
    beyond 0.65 x thickness, so the full width at half maximum is the thickness."""
    r = np.abs(np.asarray(dz_mm, dtype=np.float64)) / thickness_mm
    return np.asarray(np.clip((0.65 - r) / 0.3, 0.0, 1.0))


_ALLOWED: dict[tuple[frozenset[_Tag] | None, frozenset[_Tag] | None], BoolArray] = {}


def _allowed(only: frozenset[_Tag] | None, never: frozenset[_Tag] | None) -> BoolArray:
    """Lookup table: which current tags a layer may paint over."""
    key = (only, never)
    if key not in _ALLOWED:
        table = np.ones(len(_Tag), dtype=bool) if only is None else np.zeros(len(_Tag), bool)
        for t in only or ():
            table[int(t)] = True
        for t in never or ():
            table[int(t)] = False
        _ALLOWED[key] = table
    return _ALLOWED[key]


def _paint(hu: F32, tag: npt.NDArray[np.uint8], layer: _Layer, z: float, g: _Plane) -> None:
    found = layer.shape.mask(z, g)
    if found is None:
        return
    rs, cs, inside = found
    if layer.only is not None or layer.never is not None:
        inside = inside & _allowed(layer.only, layer.never)[tag[rs, cs]]
    block = hu[rs, cs]
    block[inside] = np.float32(layer.hu)
    tblock = tag[rs, cs]
    tblock[inside] = int(layer.tag)


def _z_bounds(shape: _Shape) -> tuple[float, float]:
    """The z range a shape can touch (mm)."""
    if isinstance(shape, _Ellipsoid):
        h = float(shape.half_extent()[2])
        return float(shape.center[2]) - h, float(shape.center[2]) + h
    if isinstance(shape, _Tube):
        return float((shape.points[:, 2] - shape.radii).min()), float(
            (shape.points[:, 2] + shape.radii).max()
        )
    if isinstance(shape, _Column):
        return shape.z0, shape.z1
    if isinstance(shape, _Dome):
        return -1e9, shape.top
    return -1e9, 1e9


def _grow(mask: BoolArray, reach: int) -> BoolArray:
    """In-plane square dilation of a ``(z, y, x)`` mask by ``reach`` pixels."""
    out = ndimage.maximum_filter1d(mask.view(np.uint8), 2 * reach + 1, axis=1)
    return np.asarray(ndimage.maximum_filter1d(out, 2 * reach + 1, axis=2) > 0)


def _render_anatomy(model: IndependentModel, g: _Plane) -> tuple[F32, BoolArray, BoolArray]:
    """Slice-profile-averaged anatomy, and per-slice bone and cartilage occupancy."""
    nz = model.slice_z_mm.size
    volume = np.empty((nz, MATRIX, MATRIX), dtype=np.float32)
    bone = np.zeros((nz, MATRIX, MATRIX), dtype=bool)
    cart = np.zeros((nz, MATRIX, MATRIX), dtype=bool)
    offsets = np.asarray(_SUB_OFFSETS) * model.thickness_mm
    weights = _ssp(offsets, model.thickness_mm)
    weights = weights / weights.sum()
    hu = np.empty((MATRIX, MATRIX), dtype=np.float32)
    tag = np.empty((MATRIX, MATRIX), dtype=np.uint8)
    bounds = np.array([_z_bounds(layer.shape) for layer in model.layers])
    for k, zc in enumerate(model.slice_z_mm):
        acc = np.zeros((MATRIX, MATRIX), dtype=np.float32)
        near = (bounds[:, 0] <= zc + offsets[-1]) & (bounds[:, 1] >= zc + offsets[0])
        layers = [layer for layer, keep in zip(model.layers, near, strict=True) if keep]
        for off, w in zip(offsets, weights, strict=True):
            hu.fill(-1000.0)
            tag.fill(int(_Tag.AIR))
            z = float(zc + off)
            for layer in layers:
                _paint(hu, tag, layer, z, g)
            acc += np.float32(w) * hu
            bone[k] |= tag == int(_Tag.BONE)
            cart[k] |= tag == int(_Tag.CARTILAGE)
        volume[k] = acc
    return volume, bone, cart


def _blob_fraction(
    blob: _Blob, model: IndependentModel, g: _Plane
) -> tuple[tuple[slice, slice, slice], F32] | None:
    """Filled fraction of each voxel, integrated over the slice profile (0.1 mm z steps) and
    4 x 4 in-plane sub-samples."""
    lo, hi = blob.bounds()
    t = model.thickness_mm
    zs = model.slice_z_mm
    k0 = int(np.searchsorted(zs, lo[2] - 0.65 * t))
    k1 = int(np.searchsorted(zs, hi[2] + 0.65 * t))
    rs = g.span(g.y, float(lo[1]) - g.px, float(hi[1]) + g.px)
    cs = g.span(g.x, float(lo[0]) - g.px, float(hi[0]) + g.px)
    if k0 >= k1 or rs.start >= rs.stop or cs.start >= cs.stop:
        return None
    n_fine = max(2, math.ceil((hi[2] - lo[2]) / 0.1))
    dzf = (hi[2] - lo[2]) / n_fine
    z_fine = (lo[2] + (np.arange(n_fine) + 0.5) * dzf).astype(np.float32)
    sub = ((np.arange(4) + 0.5) / 4 - 0.5).astype(np.float32) * np.float32(g.px)
    xs = (g.x[cs][:, None] + sub[None, :]).ravel()
    ys = (g.y[rs][:, None] + sub[None, :]).ravel()
    inside = blob.inside(xs[None, None, :], ys[None, :, None], z_fine[:, None, None])
    ny, nx = rs.stop - rs.start, cs.stop - cs.start
    occ = inside.reshape(n_fine, ny, 4, nx, 4).mean(axis=(2, 4), dtype=np.float32)
    prof = _ssp(zs[k0:k1, None] - z_fine[None, :].astype(np.float64), t)
    norm = _ssp(np.arange(-0.65 * t, 0.65 * t, 0.01), t).sum() * 0.01
    w = (prof * dzf / norm).astype(np.float32)
    frac = np.clip((w @ occ.reshape(n_fine, ny * nx)).reshape(k1 - k0, ny, nx), 0.0, 1.0)
    return (slice(k0, k1), rs, cs), frac


def _band_noise(model: IndependentModel, shape: tuple[int, int, int]) -> F32:
    """Noise with a ramp-times-apodisation power spectrum, correlated between overlapping
    slices in proportion to their overlap, scaled to the study's SD."""
    rng = np.random.default_rng([model.config.seed, 0x5EED])
    white = rng.standard_normal(shape, dtype=np.float32)
    fy = np.fft.fftfreq(shape[1], d=model.pixel_mm)
    fx = np.fft.rfftfreq(shape[2], d=model.pixel_mm)
    f = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / model.noise_cutoff_per_mm
    gain = (np.sqrt(0.05 + f) * np.exp(-(f**2))).astype(np.float32)
    noise = sfft.irfft2(sfft.rfft2(white, axes=(1, 2)) * gain, s=shape[1:], axes=(1, 2))
    overlap = max(0.0, 1.0 - model.increment_mm / model.thickness_mm)
    if overlap > 0 and shape[0] > 1:
        rho = min(overlap, 0.49)
        w = (1.0 - math.sqrt(1.0 - 2.0 * rho * rho)) / (2.0 * rho)
        mixed = noise.copy()
        mixed[1:] += w * noise[:-1]
        mixed[:-1] += w * noise[1:]
        noise = mixed
    sd = float(noise.std(dtype=np.float64))
    return np.asarray(noise * np.float32(model.noise_sd_hu / sd), dtype=np.float32)


def render_independent(model: IndependentModel, *, noise: bool = True) -> PhantomStudy:
    """Render a drawn model into a :class:`PhantomStudy` with its truth.

    ``noise=False`` leaves the image noise-free (anatomy checks); truth is scored on whatever
    final image is produced.
    """
    px = model.pixel_mm
    g = _Plane(
        x=(model.origin_xy_mm[0] + px * np.arange(MATRIX)).astype(np.float32),
        y=(model.origin_xy_mm[1] + px * np.arange(MATRIX)).astype(np.float32),
        px=px,
    )
    hu, bone, cart = _render_anatomy(model, g)
    shape = (model.slice_z_mm.size, MATRIX, MATRIX)
    plaque_labels = np.zeros(shape, dtype=np.uint8)
    distractor_labels = np.zeros(shape, dtype=np.uint8)
    grow = math.ceil(3.0 * model.blur_sigma_mm / px) + 1
    # Bone and cartilage labels: their occupancy grown in-plane by the blur's reach.
    distractor_labels[_grow(cart, grow)] = int(Distractor.COSTAL_CARTILAGE)
    distractor_labels[_grow(bone, grow)] = int(Distractor.BONE)
    for placed in model.objects:
        footprint: dict[tuple[int, ...], BoolArray] = {}
        for blob in placed.blobs:
            rendered = _blob_fraction(blob, model, g)
            if rendered is None:
                continue
            region, frac = rendered
            block = hu[region]
            block += frac * (np.float32(blob.density_hu) - block)
            key = tuple(v for sl in region for v in (sl.start, sl.stop))
            footprint[key] = footprint.get(key, np.zeros(frac.shape, bool)) | (frac > 1e-3)
        for key, touched in footprint.items():
            zs, rs, cs = slice(key[0], key[1]), slice(key[2], key[3]), slice(key[4], key[5])
            y0, y1 = max(rs.start - grow, 0), min(rs.stop + grow, MATRIX)
            x0, x1 = max(cs.start - grow, 0), min(cs.stop + grow, MATRIX)
            big = np.zeros((touched.shape[0], y1 - y0, x1 - x0), dtype=bool)
            big[:, rs.start - y0 : rs.stop - y0, cs.start - x0 : cs.stop - x0] = touched
            grown = _grow(big, grow)
            if placed.distractor is None:
                target = plaque_labels[zs, y0:y1, x0:x1]
                target[grown & (target == 0)] = placed.plaque_code
                other = distractor_labels[zs, y0:y1, x0:x1]
                other[grown & (other != int(Distractor.BONE))] = 0
            else:
                target = distractor_labels[zs, y0:y1, x0:x1]
                free = grown & (plaque_labels[zs, y0:y1, x0:x1] == 0)
                target[free] = int(placed.distractor)
    sigma_px = model.blur_sigma_mm / px
    ndimage.gaussian_filter(hu, sigma=(0.0, sigma_px, sigma_px), output=hu, truncate=4.0)
    if noise:
        hu += _band_noise(model, shape)
    final = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    geometry = axial_geometry(
        shape[0],
        (px, px),
        model.increment_mm,
        model.thickness_mm,
        origin_mm=(model.origin_xy_mm[0], model.origin_xy_mm[1], float(model.slice_z_mm[0])),
    )
    acquisition = AcquisitionInfo(
        kvp=120.0,
        reconstruction_kernel="INDEPENDENT",
        mass_factor_patient=model.mass_factor,
        manufacturer="phantom.independent",
        model="independent anthropomorphic",
        series_description=f"independent phantom seed {model.config.seed}",
        patient_position="FFS",
    )
    volume = CTVolume(hu=final, geometry=geometry, acquisition=acquisition)
    records = tuple(p.record for p in model.objects)
    truth = score_truth(volume, plaque_labels, records, by_artery=True)
    return PhantomStudy(
        volume=volume,
        plaque_labels=plaque_labels,
        distractor_labels=distractor_labels,
        truth=truth,
        config=model.config,
    )


def independent_phantom(
    seed: int, *, zero_calcium: bool = False, heavy_distractors: bool = False
) -> PhantomStudy:
    """Draw and render one independent phantom study (``study.config`` regenerates it).

    Raises
    ------
    PhantomConfigError
        When ``seed`` is negative or both study kinds are asked for.
    """
    return render_independent(
        independent_model(seed, zero_calcium=zero_calcium, heavy_distractors=heavy_distractors)
    )


def independent_suite(n: int, seed: int) -> list[IndependentConfig]:
    """Configurations of ``n`` studies: about 15 % zero calcium, 15 % heavy distractors.

    The same ``(n, seed)`` gives the same list; render each with
    ``independent_phantom(c.seed, zero_calcium=c.zero_calcium,
    heavy_distractors=c.heavy_distractors)``.

    Raises
    ------
    PhantomConfigError
        When ``n`` is smaller than 3.
    """
    if n < 3:
        raise PhantomConfigError(f"an independent suite needs at least 3 studies, got n={n}")
    rng = np.random.default_rng([seed, 0x1D5])
    n_zero = max(1, round(_ZERO_SHARE * n))
    n_heavy = max(1, round(_HEAVY_SHARE * n))
    kinds = ["zero"] * n_zero + ["heavy"] * n_heavy + ["normal"] * (n - n_zero - n_heavy)
    order = rng.permutation(n)
    return [
        IndependentConfig(
            seed=seed * 100_019 + 7 * i + 3,
            zero_calcium=kinds[order[i]] == "zero",
            heavy_distractors=kinds[order[i]] == "heavy",
        )
        for i in range(n)
    ]


__all__ = [
    "IndependentConfig",
    "IndependentModel",
    "independent_model",
    "independent_phantom",
    "independent_suite",
    "render_independent",
]
