"""A small constructed chest CT whose anatomy and calcifications are known by construction.

Independent of :mod:`phantom` (and simpler): ellipsoids and tubes drawn at 1 mm pixels, 3 mm
slices, patient coordinates LPS (x left, y posterior, z head). Each calcification is a sphere whose
expected decision (an artery or an exclusion reason) is recorded beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from scoring import Artery, CTVolume, ExclusionReason, axial_geometry

PIXEL_MM = 1.0
SLICE_MM = 3.0
N_SLICES = 40
N_PIXELS = 200
ORIGIN = (-100.0, -100.0, 0.0)


@dataclass
class Chest:
    volume: CTVolume
    expected: dict[str, Artery | ExclusionReason]
    centres_mm: dict[str, tuple[float, float, float]]
    extras: dict[str, float] = field(default_factory=dict)


def _unit(v: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(v, dtype=np.float64)
    return np.asarray(a / np.linalg.norm(a), dtype=np.float64)


def rel_to(
    p: npt.NDArray[np.float64],
    xx: npt.NDArray[np.float64],
    yy: npt.NDArray[np.float64],
    zz: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Offsets (mm) of every voxel from ``p``, ``(..., 3)``."""
    return np.stack([xx - p[0], yy - p[1], zz - p[2]], axis=-1)


def build_chest(
    *,
    noise_sd_hu: float = 0.0,
    seed: int = 0,
    flip_x: bool = False,
    calcium: bool = True,
    ostial_left_main: bool = False,
    bifurcation_lcx: bool = False,
    sleeved_lad: bool = False,
    ostial_rca: bool = False,
    free_wall_pericardium: bool = False,
    annular_band: bool = False,
    wide_calcium: bool = False,
    chest_wall_cartilage: bool = False,
) -> Chest:
    """The constructed chest, optionally with correlated noise and stored with x reversed.

    With ``ostial_left_main`` the left main's calcification is a rod that starts inside the
    aortic wall and runs 9 mm outward to the left (an ostial plaque straddling the root's wall).
    With ``bifurcation_lcx`` a rod runs around the base in the left atrioventricular groove
    from 28 to 50 degrees, just past the bifurcation (the LCX's first millimetres).
    With ``sleeved_lad`` the LAD's plaque is large and sits in its vessel, a soft-tissue sleeve
    that fills most of its surroundings (little fat around it), on the heart's surface.
    With ``ostial_rca`` a rod starts in the aortic root's wall on its right-anterior side and
    runs 11 mm outward inside a soft-tissue sleeve (its vessel): an ostial RCA plaque with
    little fat around it.
    With ``free_wall_pericardium`` a calcification lies on the right ventricle's free wall, far
    toward the apex from the right atrioventricular groove, some 6 mm out from the muscle (the
    pericardium over thin fat), and the RCA's plaque in the groove lies about as far out; fat
    pads around both keep the lung away.
    With ``annular_band`` a band of calcium some 25 mm long runs around the heart in its muscle
    just under the surface on the right side (annular calcification, outside the mitral zone's
    angles), with little fat around it.
    With ``wide_calcium`` a plate 14 mm across and 2 mm thick lies flat in the epicardial fat
    on the right ventricle (a pericardial plate where the fat is thin) and a calcified ball
    12 mm wide sits against the back of the heart (a calcified lymph node): both where a
    coronary plaque could lie, both wider than a coronary artery.
    With ``chest_wall_cartilage`` a calcification lies in front of the heart, 5 mm from its
    muscle but outside the lungs' hull (calcified costal cartilage in the chest wall).
    """
    z = ORIGIN[2] + SLICE_MM * np.arange(N_SLICES)
    y = ORIGIN[1] + PIXEL_MM * np.arange(N_PIXELS)
    x = ORIGIN[0] + PIXEL_MM * np.arange(N_PIXELS)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    hu = np.full(zz.shape, -1000.0, dtype=np.float32)

    body = ((xx / 150.0) ** 2 + ((yy - 5.0) / 95.0) ** 2) <= 1.0
    hu[body] = -100.0  # fat
    muscle = body & ~(((xx / 138.0) ** 2 + ((yy - 5.0) / 83.0) ** 2) <= 1.0)
    hu[muscle] = 50.0
    for cx in (-52.0, 58.0):
        lung = ((xx - cx) / 40.0) ** 2 + ((yy - 15.0) / 62.0) ** 2 <= 1.0
        hu[lung] = -850.0

    # heart: an ellipsoid whose long axis points anterior, left and inferior
    centre = np.array([12.0, -5.0, 45.0])
    u = _unit([1.0, -0.8, -1.0])
    a_long, a_short = 50.0, 36.0
    rel = np.stack([xx - centre[0], yy - centre[1], zz - centre[2]], axis=-1)
    along = rel @ u
    radial2 = np.sum(rel * rel, axis=-1) - along**2
    shape = (along / a_long) ** 2 + radial2 / a_short**2
    fat_shell = shape <= (1.0 + 6.0 / a_short) ** 2
    hu[fat_shell] = -100.0
    heart = shape <= 1.0
    hu[heart] = 40.0

    # spine, descending aorta, sternum
    spine = (xx - 0.0) ** 2 + (yy - 68.0) ** 2 <= 17.0**2
    hu[spine] = 250.0
    hu[spine & ((xx**2 + (yy - 68.0) ** 2) >= 14.0**2)] = 700.0
    desc_c = (24.0, 45.0)
    fat_ring = (xx - desc_c[0]) ** 2 + (yy - desc_c[1]) ** 2 <= 15.0**2
    hu[fat_ring & ~spine] = -100.0
    desc = (xx - desc_c[0]) ** 2 + (yy - desc_c[1]) ** 2 <= 12.0**2
    hu[desc] = 40.0
    sternum = (np.abs(xx) <= 12.0) & (np.abs(yy + 82.0) <= 5.0)
    hu[sternum] = 400.0

    # ascending aorta: vertical tube from the base of the heart to the top
    root = centre - 46.0 * u
    asc_r = 14.0
    above = zz >= root[2]
    asc = above & ((xx - root[0]) ** 2 + (yy - root[1]) ** 2 <= asc_r**2)
    asc_fat = above & ((xx - root[0]) ** 2 + (yy - root[1]) ** 2 <= (asc_r + 4.0) ** 2)
    hu[asc_fat & ~heart] = -100.0
    hu[asc] = 40.0

    # cardiac frame of the construction: angles around the long axis from anterior toward left
    anterior = np.array([0.0, -1.0, 0.0]) + u[1] * u
    anterior = _unit(anterior)
    left = np.cross(u, anterior)
    if left[0] < 0:
        left = -left

    def surface(a: float, angle_deg: float, out_mm: float) -> tuple[float, float, float]:
        """Point at axial position ``a`` (mm from centre), angle from anterior toward left."""
        ang = np.deg2rad(angle_deg)
        direction = np.cos(ang) * anterior + np.sin(ang) * left
        radius = a_short * np.sqrt(max(0.0, 1.0 - (a / a_long) ** 2)) + out_mm
        p = centre + a * u + radius * direction
        return float(p[0]), float(p[1]), float(p[2])

    items: dict[str, tuple[tuple[float, float, float], float, float]] = {}
    expected: dict[str, Artery | ExclusionReason] = {}

    def put(
        name: str, p: tuple[float, float, float], radius: float, value: float, what: object
    ) -> None:
        items[name] = (p, radius, value)
        expected[name] = what  # type: ignore[assignment]

    if calcium:
        lm_dir = _unit([1.0, 0.4, 0.0])
        lm = root + (asc_r + 5.0) * lm_dir + np.array([0.0, 0.0, 4.0])
        put("LM", (float(lm[0]), float(lm[1]), float(lm[2])), 2.0, 500.0, Artery.LM)
        put("LAD", surface(5.0, 20.0, 2.5), 2.0, 600.0, Artery.LAD)
        put("LCX", surface(-26.0, 110.0, 2.5), 2.0, 600.0, Artery.LCX)
        put("RCA", surface(-26.0, -100.0, 2.5), 2.0, 600.0, Artery.RCA)
        put(
            "valve",
            (float(root[0]), float(root[1]), float(root[2])),
            2.5,
            700.0,
            ExclusionReason.AORTIC_VALVE,
        )
        put("mitral", surface(-26.0, 140.0, -9.0), 2.5, 700.0, ExclusionReason.MITRAL_ANNULUS)
        put("desc_wall", (desc_c[0] + 12.0, desc_c[1], 60.0), 2.0, 600.0, ExclusionReason.AORTA)
        put(
            "asc_wall",
            (float(root[0] - asc_r), float(root[1]), 105.0),
            2.0,
            600.0,
            ExclusionReason.AORTA,
        )
        put("pericardium", surface(15.0, 100.0, 5.5), 2.0, 500.0, ExclusionReason.PERICARDIUM)
        put("lung_nodule", (-60.0, 30.0, 60.0), 2.5, 500.0, ExclusionReason.OUTSIDE_HEART)
        put("rib", (-70.0, -70.0, 50.0), 4.0, 600.0, ExclusionReason.BONE)
        put("clip", (-20.0, -40.0, 96.0), 1.5, 3000.0, ExclusionReason.METAL)

    rods: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float, float]] = []
    if calcium and ostial_left_main:
        lm_dir = _unit([1.0, 0.4, 0.0])
        start = root + (asc_r - 2.0) * lm_dir + np.array([0.0, 0.0, 4.0])
        end = start + 11.0 * lm_dir
        mid = (start + end) / 2.0
        items["LM"] = ((float(mid[0]), float(mid[1]), float(mid[2])), 0.0, 0.0)
        rods.append((start, end, 2.0, 500.0))

    if calcium and ostial_rca:
        rca_dir = _unit([-0.5, -1.0, 0.0])
        start = root + (asc_r - 2.0) * rca_dir + np.array([0.0, 0.0, 4.0])
        end = start + 11.0 * rca_dir
        mid = (start + end) / 2.0
        axis = end - start
        t = np.clip((rel_to(start, xx, yy, zz) @ axis) / float(axis @ axis), 0.0, 1.0)
        nearest = start + t[..., None] * axis
        sleeve = np.sum((np.stack([xx, yy, zz], axis=-1) - nearest) ** 2, axis=-1) <= 3.5**2
        hu[sleeve & (hu < 0)] = 40.0
        items["RCA_ostial"] = ((float(mid[0]), float(mid[1]), float(mid[2])), 0.0, 0.0)
        expected["RCA_ostial"] = Artery.RCA
        rods.append((start, end, 2.0, 500.0))

    if calcium and bifurcation_lcx:
        start = np.asarray(surface(-26.0, 28.0, 2.5))
        end = np.asarray(surface(-26.0, 50.0, 2.5))
        mid = np.asarray(surface(-26.0, 39.0, 2.5))
        items["LCX_bifurcation"] = ((float(mid[0]), float(mid[1]), float(mid[2])), 0.0, 0.0)
        expected["LCX_bifurcation"] = Artery.LCX
        rods.append((start, end, 1.5, 500.0))

    if calcium and sleeved_lad:
        p = surface(5.0, 20.0, 2.5)
        sleeve = (xx - p[0]) ** 2 + (yy - p[1]) ** 2 + (zz - p[2]) ** 2 <= 4.5**2
        hu[sleeve & (hu < 0)] = 40.0
        items["LAD"] = (p, 2.5, 600.0)

    if calcium and free_wall_pericardium:
        put("free_wall", surface(10.0, -60.0, 5.4), 1.5, 500.0, ExclusionReason.PERICARDIUM)
        items["RCA"] = (surface(-26.0, -100.0, 5.0), 2.0, 600.0)
        for name in ("free_wall", "RCA"):
            # a pad of fat around each pushes the lung back: only the muscle is near
            c = items[name][0]
            pad = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2 <= 10.0**2
            hu[pad & (hu < -500.0)] = -100.0

    if calcium and annular_band:
        start = np.asarray(surface(-5.0, -85.0, -2.0))
        end = np.asarray(surface(-5.0, -45.0, -2.0))
        mid = (start + end) / 2.0
        items["annular_band"] = ((float(mid[0]), float(mid[1]), float(mid[2])), 0.0, 0.0)
        expected["annular_band"] = ExclusionReason.MITRAL_ANNULUS
        rods.append((start, end, 2.0, 600.0))

    plates: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float, float]] = []
    if calcium and wide_calcium:
        c = np.asarray(surface(25.0, -40.0, 3.0))
        normal = _unit(c - (centre + float((c - centre) @ u) * u))
        plates.append((c, normal, 7.0, 1.0))
        items["plate"] = ((float(c[0]), float(c[1]), float(c[2])), 0.0, 0.0)
        expected["plate"] = ExclusionReason.PERICARDIUM
        put("node", surface(-10.0, -170.0, 4.0), 6.0, 500.0, ExclusionReason.OUTSIDE_HEART)
    if calcium and chest_wall_cartilage:
        put("cartilage", surface(20.0, 0.0, 4.5), 2.0, 500.0, ExclusionReason.BONE)

    for c, normal, radius, half_thickness in plates:
        offset = rel_to(c, xx, yy, zz)
        across = offset @ normal
        in_plane = np.sum(offset * offset, axis=-1) - across**2
        plate = (np.abs(across) <= half_thickness) & (in_plane <= radius**2)
        hu[plate] = np.maximum(hu[plate], 500.0)
    for p, radius, value in items.values():
        ball = (xx - p[0]) ** 2 + (yy - p[1]) ** 2 + (zz - p[2]) ** 2 <= radius**2
        hu[ball] = np.maximum(hu[ball], value)
    for start, end, radius, value in rods:
        axis = end - start
        t = np.clip((rel_to(start, xx, yy, zz) @ axis) / float(axis @ axis), 0.0, 1.0)
        nearest = start + t[..., None] * axis
        rod = np.sum((np.stack([xx, yy, zz], axis=-1) - nearest) ** 2, axis=-1) <= radius**2
        hu[rod] = np.maximum(hu[rod], value)

    if noise_sd_hu > 0:
        rng = np.random.default_rng(seed)
        noise = ndimage.gaussian_filter(
            np.asarray(rng.standard_normal(hu.shape), dtype=np.float32), (0, 1, 1)
        )
        noise *= noise_sd_hu / float(noise.std())
        hu = hu + noise
    stored = np.rint(hu).astype(np.int16)
    origin = ORIGIN
    if flip_x:
        stored = stored[:, :, ::-1].copy()
    geometry = axial_geometry(N_SLICES, (PIXEL_MM, PIXEL_MM), SLICE_MM, origin_mm=origin)
    if flip_x:
        from scoring import VolumeGeometry

        positions = geometry.slice_positions_mm.copy()
        positions[:, 0] = ORIGIN[0] + PIXEL_MM * (N_PIXELS - 1)
        geometry = VolumeGeometry(
            pixel_spacing_mm=(PIXEL_MM, PIXEL_MM),
            row_direction=(-1.0, 0.0, 0.0),
            column_direction=(0.0, 1.0, 0.0),
            slice_positions_mm=positions,
            slice_thickness_mm=SLICE_MM,
            increment_mm=SLICE_MM,
        )
    return Chest(
        volume=CTVolume(hu=stored, geometry=geometry),
        expected=expected,
        centres_mm={name: item[0] for name, item in items.items()},
    )
