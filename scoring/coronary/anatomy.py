"""Find the thoracic anatomy that decides whether a calcification is coronary.

On the coarse canonical grid (:class:`~scoring.coronary.frame.CoarseGrid`, about 2 mm pixels,
axes superior / posterior / left) this module finds, in order:

1. **Air and lungs.** Air is below -400 HU; air bodies at an image edge that are pure air (mean
   below -920 HU) are outside the patient; the remaining large air bodies are the lungs.
2. **Thoracic cavity.** Per slice, the convex hull of the lungs (lungs of neighbouring slices
   included, so that the heart's lowest slices, below most of the lung, are still enclosed).
3. **Heart.** The largest soft-tissue body (between fat and bone in HU) inside the cavity, after an
   opening that cuts the thin bridges to the chest wall and the posterior mediastinum; its holes
   (calcium, valves) are filled. Its depth map (distance in mm from the nearest fat or lung) tells
   the epicardial surface, where coronary arteries run in fat, from the blood pool and myocardium.
4. **Aorta.** Round soft-tissue cross-sections (distance-transform maxima of 8-22 mm radius,
   i.e. 16-44 mm wide) linked from slice to slice into tubes. The descending aorta is the long
   tube beside the spine; the ascending aorta is the anterior tube right of the pulmonary trunk
   that ends, going down, in the heart: its lower end is the aortic root.
5. **Noise level.** The standard deviation of HU inside the heart's soft tissue (pixels far from
   its surface), used to tell noise from faint calcium.

Every size here is a design parameter of this detector (an anatomical order of magnitude, not a
clinical threshold from the reference); the module constants name them so a reviewer sees them.

References
----------
Hounsfield scale landmarks (air -1000, lung about -850, fat about -100, soft tissue and blood
30-60, bone above 150) and the position of the aorta, lungs and heart: any radiological anatomy
text; the detector's idea follows the anatomy listed in issue 3 of this project.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull, QhullError, cKDTree

from scoring.coronary.frame import CoarseGrid

#: Air (outside the patient, lungs, airways) is below this (HU).
AIR_HU = -400.0
#: Air bodies at the image edge with a mean below this are outside the patient (HU): air is
#: -1000 HU (about -960 to -980 on the coarse grid, whose blocks at the skin mix in tissue);
#: lung parenchyma is denser (about -850 HU; beyond -920 only in severe emphysema).
OUTSIDE_AIR_HU = -920.0
#: Fat lies below this and soft tissue (blood, myocardium, muscle) above it (HU).
FAT_TISSUE_HU = -30.0
#: Enclosed specks of fat-range HU in soft tissue up to this area (mm^2 in a slice) are noise.
NOISE_SPECK_MM2 = 16.0
#: Coarse blocks above this are bone or calcium rather than soft tissue (HU).
TISSUE_MAX_HU = 130.0
#: A lung is an air body of at least this volume (ml); smaller ones are airways or bowel gas.
MIN_LUNG_ML = 30.0
#: Lungs of slices within this distance (mm) are merged before the cavity hull is taken.
CAVITY_Z_WINDOW_MM = 20.0
#: Opening radius (mm) that separates the heart from structures touching it.
HEART_OPENING_MM = 4.0
#: Distances to the lung are measured to the lung within this distance (mm) of the heart's
#: bounding box: exact up to :data:`LUNG_DISTANCE_CAP_MM` for anything near the heart.
LUNG_WINDOW_MM = 45.0
#: Distances to the lung and to the heart are measured up to these caps (mm); the rules look no
#: farther (the epicardial fat and the pericardium lie within about 15 mm of the heart).
LUNG_DISTANCE_CAP_MM = 15.0
HEART_DISTANCE_CAP_MM = 25.0
#: The heart is followed at most this far (mm) above the aortic root (atria, appendages).
HEART_ABOVE_ROOT_MM = 30.0
#: Where the followed cross-section grows by more than this factor from one slice to the next,
#: it may have met another organ (liver, chest wall): it is cut at necks narrower than twice
#: the opening and only the parts continuing the previous slice's heart are kept. (The heart
#: itself widens fast below its base, so the growth alone does not stop it.)
HEART_GROWTH = 1.3
#: Going down, once the followed cross-section has fallen below this share of the widest one
#: (the heart narrows from there to the apex), a sudden growth is the liver or the diaphragm
#: under the heart: the heart may then extend at most HEART_APICAL_STEP_MM (mm) beyond the
#: previous slice's heart.
HEART_PAST_WIDEST = 0.85
#: ... once the widest section followed is at least this large (mm^2; an adult heart's widest
#: section is some 60-120 cm^2, the aortic root where the following starts about 10 cm^2).
HEART_MIN_WIDEST_MM2 = 3000.0
HEART_APICAL_STEP_MM = 6.0
#: Below the ascending aorta's lower end, the (eroded) soft tissue around its centre is at least
#: this many times the tube's cross-section: the aorta has entered the heart.
HEART_WIDER_THAN_TUBE = 1.5
#: The tracked ascending aorta ends where the soft tissue around its centre is at least this
#: many times its cross-section: it has entered the heart (whose sections are some ten times
#: the aorta's), not merely touched the pulmonary trunk or the caval vein beside it.
HEART_ENTRY_TIMES_TUBE = 4.0
#: Great vessels entering the heart from above at least this share of the widest one's radius
#: are as wide as the aorta: the superior caval vein (right), the aorta, the pulmonary trunk
#: (left). The aorta is the middle one of three, the right one of two.
GREAT_VESSEL_SHARE = 0.85
#: The ascending aorta is at least this wide in radius (mm); adults' is 12-18 mm.
ASCENDING_MIN_RADIUS_MM = 10.5
#: A fit of the aortic direction over this length (mm) of tracked aorta is trusted fully.
AORTA_FIT_MM = 20.0
#: The ascending aorta runs within this angle (degrees) of the body's head-foot axis.
AORTA_MAX_TILT_DEG = 35.0
#: The ascending aorta is looked for among tubes starting this close (mm) to the top slice.
TOP_SLICES_MM = 6.0
#: Aortic cross-sections: radius range (mm) of a round soft-tissue structure (16-44 mm wide).
AORTA_RADIUS_MM = (8.0, 22.0)
#: Largest in-plane shift (mm) of a tube centre between adjacent slices, per mm of z.
AORTA_STEP_MM_PER_MM = 1.0
#: Tracking bridges this many slices without a round cross-section (slices).
MAX_GAP_SLICES = 2
#: Dense spots up to this area (mm^2 in a slice) count as wall calcium, not bone.
SMALL_DENSE_MM2 = 60.0
#: The noise level is measured over at most about this many deep coarse blocks of the heart,
#: spread evenly over it.
NOISE_MAX_BLOCKS = 12000
#: A tube shorter than this (mm, along z) is not an aorta.
AORTA_MIN_LENGTH_MM = 6.0


@dataclass(frozen=True, slots=True)
class Tube:
    """A round structure tracked through slices: centres (coarse ``j, i``) and radii (mm)."""

    slices: npt.NDArray[np.int64]
    centres: npt.NDArray[np.float64]
    """``(n, 2)`` coarse row / column of the centre in each slice of ``slices``."""
    radii_mm: npt.NDArray[np.float64]

    @property
    def length(self) -> int:
        return int(self.slices.size)

    def at(self, z: int, reach: int = 2) -> tuple[float, float, float] | None:
        """``(row, column, radius_mm)`` in slice ``z`` (or the nearest tracked slice within
        ``reach`` slices, bridging slices where calcium dented the cross-section); ``None`` when
        the tube is not there."""
        gaps = np.abs(self.slices - z)
        k = int(np.argmin(gaps))
        if gaps[k] > reach:
            return None
        return float(self.centres[k, 0]), float(self.centres[k, 1]), float(self.radii_mm[k])

    def direction(
        self, n_last: int, spacing_mm: tuple[float, float, float]
    ) -> npt.NDArray[np.float64]:
        """Unit vector (canonical mm: left, posterior, superior) along the lowest ``n_last``
        centres, pointing down the tube."""
        k = min(n_last, self.length)
        sz, sy, sx = spacing_mm
        pts = np.stack(
            [self.centres[-k:, 1] * sx, self.centres[-k:, 0] * sy, self.slices[-k:] * sz], axis=1
        )
        if k < 2:
            return np.array([0.0, 0.0, -1.0])
        centre = pts.mean(axis=0)
        _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
        direction = vt[0]
        if direction[2] > 0:
            direction = -direction
        return np.asarray(direction / np.linalg.norm(direction), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class AnatomyMaps:
    """Masks and landmarks on the coarse canonical grid (internal to the detector)."""

    lungs: npt.NDArray[np.bool_]
    outside_air: npt.NDArray[np.bool_]
    cavity: npt.NDArray[np.bool_]
    heart: npt.NDArray[np.bool_]
    depth_mm: HeartDepth
    """Distance (mm) from a heart voxel to the nearest non-heart voxel; 0 outside."""
    heart_distance: SetDistance
    """Distance (mm) from a voxel outside the heart to the heart; 0 inside."""
    descending: Tube | None
    ascending: Tube | None
    root: tuple[float, float, float] | None
    """Lower end of the tracked ascending aorta, where it enters the heart's silhouette (the
    aortic valve and sinuses lie further down its axis), coarse ``(z, row, column)``."""
    root_radius_mm: float | None
    lung_distance: SetDistance
    """Distance (mm) from a voxel to the nearest lung voxel."""
    root_direction: npt.NDArray[np.float64] | None
    """Unit vector (canonical mm) down the ascending aorta at its lower end."""
    spine_centre: tuple[float, float] | None
    """Coarse ``(row, column)`` of the vertebral body's centre (median over slices)."""
    noise_sd_hu: float
    problems: tuple[str, ...]


def _disk(radius_px: int) -> npt.NDArray[np.bool_]:
    r = max(radius_px, 1)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return np.asarray(yy * yy + xx * xx <= r * r)


def _box(mask: npt.NDArray[np.bool_], grow: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    """Bounding box of a non-empty ``mask`` grown by ``grow`` voxels per axis (clipped)."""
    box = []
    inside = mask
    for axis in range(3):
        present = np.flatnonzero(inside.any(axis=tuple(a for a in range(3) if a != axis)))
        first, last = int(present[0]), int(present[-1])
        box.append(slice(max(first - grow[axis], 0), last + grow[axis] + 1))
        # the next axes' extents are found within this one's (a smaller array to reduce)
        cut = [slice(None)] * 3
        cut[axis] = slice(first, last + 1)
        inside = inside[tuple(cut)]
    return box[0], box[1], box[2]


def _opening_px(coarse: CoarseGrid) -> int:
    """Radius in coarse pixels of the in-plane opening (:data:`HEART_OPENING_MM`)."""
    return max(1, round(HEART_OPENING_MM / coarse.spacing_mm[1]))


_CROSS = np.array([[False, True, False], [True, True, True], [False, True, False]])


@functools.cache
def _row_runs(structure: bytes, n_rows: int, n_cols: int) -> tuple[tuple[int, int], ...]:
    """``(row offset, half-width)`` of every non-empty row of a centred 2-D boolean structure
    (given by its bytes and shape) whose rows are centred runs."""
    rows = np.frombuffer(structure, dtype=bool).reshape(n_rows, n_cols)
    runs = []
    for dy in range(-(n_rows // 2), n_rows // 2 + 1):
        run = np.flatnonzero(rows[dy + n_rows // 2])
        if run.size:
            runs.append((dy, int(run[-1]) - n_cols // 2))
    return tuple(runs)


def _in_plane(
    mask: npt.NDArray[np.bool_], structure: npt.NDArray[np.bool_], erode: bool
) -> npt.NDArray[np.bool_]:
    """Binary erosion or dilation of the last two axes of ``mask`` (one slice or a stack) by a
    symmetric 2-D ``structure`` whose rows are centred runs (a disk or a cross), pixels outside
    the image counting as background: what :func:`scipy.ndimage.binary_erosion` and
    :func:`~scipy.ndimage.binary_dilation` give with ``structure`` (as a structure of depth 1
    for a stack), with a few whole-array shifts instead of a pass over the structure per pixel.

    The structure is the union (for an erosion, the intersection) of its rows: each row is a
    run of ``2 * half + 1`` pixels, handled by shifting along the rows, and each row's result is
    then shifted into place along the columns.
    """
    height, width = mask.shape[-2:]
    if structure.shape == (3, 3) and np.array_equal(structure, _CROSS):
        # the 4-connected cross, the commonest structure: four shifts
        out = mask.copy()
        if erode:
            out[..., 1:, :] &= mask[..., :-1, :]
            out[..., :-1, :] &= mask[..., 1:, :]
            out[..., :, 1:] &= mask[..., :, :-1]
            out[..., :, :-1] &= mask[..., :, 1:]
            out[..., 0, :] = out[..., -1, :] = False
            out[..., :, 0] = out[..., :, -1] = False
        else:
            out[..., 1:, :] |= mask[..., :-1, :]
            out[..., :-1, :] |= mask[..., 1:, :]
            out[..., :, 1:] |= mask[..., :, :-1]
            out[..., :, :-1] |= mask[..., :, 1:]
        return out
    runs = _row_runs(structure.tobytes(), structure.shape[0], structure.shape[1])
    # along the rows: the run of every half-width, grown from the narrower one
    along = {0: mask}
    current = mask
    for half in range(1, max(h for _, h in runs) + 1):
        current = current.copy()
        if half < width:
            if erode:
                current[..., half:] &= mask[..., :-half]
                current[..., :-half] &= mask[..., half:]
                current[..., :half] = False
                current[..., -half:] = False
            else:
                current[..., half:] |= mask[..., :-half]
                current[..., :-half] |= mask[..., half:]
        elif erode:
            current[...] = False
        along[half] = current
    out = np.full(mask.shape, erode, dtype=bool)
    for dy, half in runs:
        row = along[half]
        if abs(dy) >= height:
            if erode:
                out[...] = False
            continue
        if erode:
            # out[y] needs row[y + dy]: beyond the image there is only background
            if dy > 0:
                out[..., : height - dy, :] &= row[..., dy:, :]
                out[..., height - dy :, :] = False
            elif dy < 0:
                out[..., -dy:, :] &= row[..., :dy, :]
                out[..., :-dy, :] = False
            else:
                out &= row
        elif dy > 0:
            out[..., dy:, :] |= row[..., : height - dy, :]
        elif dy < 0:
            out[..., :dy, :] |= row[..., -dy:, :]
        else:
            out |= row
    return out


def _per_slice(
    op: str, mask: npt.NDArray[np.bool_], structure: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """2-D binary morphology applied to every slice at once (3-D structure of depth 1)."""
    if op == "erode":
        return _in_plane(mask, structure, erode=True)
    if op == "dilate":
        return _in_plane(mask, structure, erode=False)
    if op == "fill":
        # Holes: background not connected (8-connected in the slice, as binary_fill_holes with
        # this in-plane structure would grow it) to the slice's border. One labelling of all
        # slices at once is much cheaper than growing the background from the border.
        plane = np.zeros((3, 3, 3), dtype=bool)
        plane[1] = True
        labels, n = ndimage.label(~mask, plane)
        if n == 0:
            return mask.copy()
        border = np.zeros(n + 1, dtype=bool)
        for edge in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
            border[edge] = True
        border[0] = True
        return np.asarray(mask | ~border[labels])
    raise ValueError(op)


def _lungs(coarse: CoarseGrid) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    hu = coarse.hu
    air = hu < AIR_HU
    labels, n = ndimage.label(air)
    if n == 0:
        return np.zeros_like(air), np.zeros_like(air)
    at_edge: set[int] = set()
    for edge in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
        at_edge |= set(np.unique(edge).tolist())
    # sizes and sums over the air voxels only, in raster order (the same sums per body)
    air_labels = labels[air]
    sizes = np.bincount(air_labels, minlength=n + 1)
    # Air at an image edge is outside the patient when it is pure air; lung parenchyma cut by
    # the field of view (on any side: a small field of view cuts both lungs) is denser (about
    # -850 HU). Its position alone does not tell: the field of view may be centred anywhere.
    mean_hu = np.bincount(air_labels, weights=hu[air], minlength=n + 1) / np.maximum(sizes, 1)
    outside_ids = {k for k in at_edge if k > 0 and mean_hu[k] < OUTSIDE_AIR_HU}
    voxel_ml = float(np.prod(coarse.spacing_mm)) / 1000.0
    keep = sizes * voxel_ml >= MIN_LUNG_ML
    keep[0] = False
    is_outside = np.zeros(n + 1, dtype=bool)
    is_outside[list(outside_ids)] = True
    keep &= ~is_outside
    return _members(labels, keep), _members(labels, is_outside)


def _members(
    labels: npt.NDArray[np.integer], chosen: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """``chosen[labels]``: by comparisons when few labels are chosen (the lungs, the air
    outside), which is cheaper than gathering from the table at every voxel."""
    ids = np.flatnonzero(chosen)
    if ids.size > 4:
        return np.asarray(chosen[labels])
    out = np.zeros(labels.shape, dtype=bool)
    for k in ids.tolist():
        out |= labels == k
    return out


def _fill_convex(
    vertices: npt.NDArray[np.float64], shape: tuple[int, ...]
) -> npt.NDArray[np.bool_]:
    """Rasterise a convex polygon (``(n, 2)`` row/column vertices in order) row by row."""
    out = np.zeros(shape, dtype=bool)
    start = vertices
    end = np.roll(vertices, -1, axis=0)
    r_lo, r_hi = math.ceil(vertices[:, 0].min()), math.floor(vertices[:, 0].max())
    rows = np.arange(max(r_lo, 0), min(r_hi, shape[0] - 1) + 1, dtype=np.float64)
    if rows.size == 0:
        return out
    dr = end[:, 0] - start[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rows[:, None] - start[None, :, 0]) / dr[None, :]
    crossing = (t >= 0) & (t <= 1) & (dr[None, :] != 0)
    cols = start[None, :, 1] + t * (end[:, 1] - start[:, 1])[None, :]
    lo = np.where(crossing, cols, np.inf).min(axis=1)
    hi = np.where(crossing, cols, -np.inf).max(axis=1)
    spans = lo <= hi
    first = np.maximum(np.ceil(lo[spans] - 0.5), 0.0)
    last = np.minimum(np.floor(hi[spans] + 0.5), shape[1] - 1)
    columns = np.arange(shape[1])
    out[rows[spans].astype(np.int64)] = (columns >= first[:, None]) & (columns <= last[:, None])
    return out


def _eroded_4(plane: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Binary erosion of a 2-D mask by the 4-connected cross, pixels outside the image counting
    as background (as :func:`scipy.ndimage.binary_erosion` with its default structure)."""
    out = plane.copy()
    out[1:] &= plane[:-1]
    out[:-1] &= plane[1:]
    out[:, 1:] &= plane[:, :-1]
    out[:, :-1] &= plane[:, 1:]
    out[0] = out[-1] = False
    out[:, 0] = out[:, -1] = False
    return out


def _cavity(lungs: npt.NDArray[np.bool_], coarse: CoarseGrid) -> npt.NDArray[np.bool_]:
    """Convex hull of the lungs, per slab of slices (lungs of neighbouring slices included)."""
    window = max(1, round(CAVITY_Z_WINDOW_MM / coarse.spacing_mm[0]))
    slab = max(1, window // 2)
    n_z = lungs.shape[0]
    cavity = np.zeros_like(lungs)
    for z0 in range(0, n_z, slab):
        # the lungs of every slice within the window of any slice of the slab (at the ends of
        # the scan, the window's slices that exist)
        plane = np.asarray(
            lungs[max(z0 - window, 0) : min(z0 + slab + window, n_z)].any(axis=0), dtype=bool
        )
        points = np.argwhere(plane & ~_eroded_4(plane)).astype(np.float64)
        if points.shape[0] < 8:
            continue
        try:
            hull = ConvexHull(points)
        except QhullError:
            continue
        cavity[z0 : z0 + slab] = _fill_convex(points[hull.vertices], plane.shape)
    return cavity


def _tissue(
    coarse: CoarseGrid, lungs: npt.NDArray[np.bool_], outside_air: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Soft tissue (blood, muscle) on the coarse grid, without the specks that noise punches
    into it: a few enclosed pixels below the fat/tissue boundary (strong noise, averaged over
    only a few correlated fine pixels) are taken as tissue, so that the heart does not fall
    apart when eroded."""
    hu = coarse.hu
    tissue = (hu > FAT_TISSUE_HU) & (hu < TISSUE_MAX_HU) & ~lungs & ~outside_air
    specks = ~tissue & (hu < TISSUE_MAX_HU) & ~lungs & ~outside_air
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1, 1, :] = in_plane[1, :, 1] = True
    labels, n = ndimage.label(specks, in_plane)
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        small = sizes * (coarse.spacing_mm[1] * coarse.spacing_mm[2]) <= NOISE_SPECK_MM2
        small[0] = False
        # only specks enclosed by tissue in their slice: none of their pixels is next to lung,
        # air outside or bone (the speck's own neighbours are speck or tissue)
        other = ~tissue & ~specks
        next_to_other = _in_plane(other, _disk(1), erode=False) & specks
        small[labels[next_to_other]] = False
        small[0] = False
        tissue |= small[labels]
    return np.asarray(tissue)


def _split_from(
    region: npt.NDArray[np.bool_], previous: npt.NDArray[np.bool_], disk: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """The part of ``region`` that continues ``previous``, cut off at necks narrower than
    ``disk`` (where the heart touches the liver or the chest wall)."""
    labels, n = ndimage.label(_in_plane(region, disk, erode=True))
    if n == 0:
        return region
    overlap = np.bincount(labels[previous], minlength=n + 1)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = (overlap >= 0.5 * np.maximum(sizes, 1)) | (overlap == overlap[1:].max())
    keep[0] = False
    if not keep.any():
        return region
    return np.asarray(_in_plane(keep[labels], disk, erode=False) & region)


def _heart(
    coarse: CoarseGrid,
    tissue: npt.NDArray[np.bool_],
    core: npt.NDArray[np.bool_],
    cavity: npt.NDArray[np.bool_],
    seed: tuple[int, float, float] | None,
) -> npt.NDArray[np.bool_]:
    """The heart, followed slice by slice from a seed at the aortic root.

    The heart's soft tissue, after an in-plane opening, is followed up and down from the seed;
    where the followed region would suddenly grow (it may have met the liver under the diaphragm
    or the chest wall), it is cut at its narrow necks and only the parts continuing the previous
    slice's heart are kept.
    """
    radius_px = _opening_px(coarse)
    disk = _disk(radius_px)
    n_z = core.shape[0]
    heart_core = np.zeros_like(core)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1, 1, :] = in_plane[1, :, 1] = True
    all_labels, n_labels = ndimage.label(core, in_plane)
    plane_labels = [(all_labels[z], int(all_labels[z].max())) for z in range(n_z)]
    z0 = -1
    start = np.zeros(core.shape[1:], dtype=bool)
    if seed is not None:
        z0 = int(np.clip(round(seed[0]), 0, n_z - 1))
        labels, n = plane_labels[z0]
        if n:
            r = int(np.clip(round(seed[1]), 0, core.shape[1] - 1))
            c = int(np.clip(round(seed[2]), 0, core.shape[2] - 1))
            window = labels[max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4]
            hits = window[window > 0]
            if hits.size:
                start = labels == int(np.bincount(hits).argmax())
    if not start.any():
        # no aortic root: the largest soft-tissue body between the lungs in the middle slice
        z0 = n_z // 2
        labels, n = ndimage.label(core[z0] & cavity[z0])
        if n == 0:
            return np.zeros_like(core)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        sizes[0] = 0
        start = labels == int(np.argmax(sizes))
    heart_core[z0] = start
    split_disk = _disk(max(2, round(2 * HEART_OPENING_MM / coarse.spacing_mm[1])))
    up_limit = z0 + max(1, round(HEART_ABOVE_ROOT_MM / coarse.spacing_mm[0]))
    shrink_disk = _disk(max(1, round(HEART_APICAL_STEP_MM / coarse.spacing_mm[1])))
    cross = _disk(1)
    for step, stop in ((-1, -1), (1, min(n_z, up_limit + 1))):
        previous = start
        widest = int(np.count_nonzero(start))
        pixel_mm2 = coarse.spacing_mm[1] * coarse.spacing_mm[2]
        for z in range(z0 + step, stop, step):
            labels, n = plane_labels[z]
            if n == 0:
                break
            touching = labels[_in_plane(previous, cross, erode=False)]
            touching = touching[touching > 0]
            if touching.size == 0:
                break
            chosen = np.zeros(n_labels + 1, dtype=bool)
            chosen[touching] = True
            current = chosen[labels]
            prev_area = int(np.count_nonzero(previous))
            if np.count_nonzero(current) > HEART_GROWTH * prev_area + 4 * radius_px**2:
                current = _split_from(current, previous, split_disk)
                if (
                    step < 0
                    and prev_area < HEART_PAST_WIDEST * widest
                    and widest * pixel_mm2 >= HEART_MIN_WIDEST_MM2
                ):
                    # below its widest section the heart narrows toward the apex: growth here
                    # is the liver or the diaphragm beneath it
                    current &= _in_plane(previous, shrink_disk, erode=False)
            if not current.any():
                break
            heart_core[z] = current
            previous = current
            widest = max(widest, int(np.count_nonzero(current)))
    # calcium inside the heart (valves, annulus) belongs to it: only fat and air bound it
    heart = np.zeros_like(heart_core)
    if not heart_core.any():
        return heart
    # in the core's bounding box grown beyond the dilation: its outer ring is all background,
    # so the holes found there are the holes of the whole slice
    window = _box(heart_core, (0, radius_px + 1, radius_px + 1))
    near = tissue[window] | (coarse.hu[window] >= TISSUE_MAX_HU)
    grown = _per_slice("dilate", heart_core[window], disk) & near
    heart[window] = _per_slice("fill", grown, disk)
    return heart | heart_core


def _noise_sd(canonical_hu: npt.NDArray[np.generic], factor: int, depth: HeartDepth) -> float:
    """Median over slices of the HU standard deviation inside the heart, away from its surface
    (blood and myocardium have nearly one attenuation without contrast)."""
    if depth.box is None:
        return float("nan")
    # the heart's box holds every deep voxel (listed in the grid's raster order)
    deep = depth.deeper_than(2 * HEART_OPENING_MM)[depth.box]
    if np.count_nonzero(deep) < 20:
        deep = depth.heart[depth.box]
    n_z, n_y, n_x = depth.heart.shape
    # the fine pixels of every deep coarse block, gathered at once: (blocks, factor, factor)
    blocks = canonical_hu[:, : n_y * factor, : n_x * factor].reshape(n_z, n_y, factor, n_x, factor)
    zs, js, is_ = np.nonzero(deep)
    # some ten thousand blocks (a few hundred thousand pixels) measure the SD as well as all
    step = max(1, zs.size // NOISE_MAX_BLOCKS)
    zs, js, is_ = zs[::step], js[::step], is_[::step]
    zs += depth.box[0].start
    js += depth.box[1].start
    is_ += depth.box[2].start
    pixels = np.asarray(blocks[zs, js, :, is_, :], dtype=np.float64).reshape(zs.size, -1)
    per_block = pixels.shape[1]
    count = np.bincount(zs, minlength=n_z) * per_block
    total = np.bincount(zs, weights=pixels.sum(axis=1), minlength=n_z)
    squares = np.bincount(zs, weights=(pixels * pixels).sum(axis=1), minlength=n_z)
    used = count >= 50
    if not used.any():
        return float("nan")
    mean = total[used] / count[used]
    variance = np.maximum(squares[used] / count[used] - mean * mean, 0.0)
    return float(np.median(np.sqrt(variance)))


def _max_5x5(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Maximum over the 5 x 5 in-plane neighbourhood, cut at the image's edge (what
    :func:`scipy.ndimage.maximum_filter` of size ``(1, 5, 5)`` gives: its reflection at the
    edge repeats pixels of the neighbourhood), by shifted maxima along each in-plane axis."""
    out = values
    for axis in (1, 2):
        spread = out.copy()
        for shift in (1, 2):
            head = [slice(None)] * 3
            tail = [slice(None)] * 3
            head[axis], tail[axis] = slice(shift, None), slice(None, -shift)
            np.maximum(spread[tuple(head)], out[tuple(tail)], out=spread[tuple(head)])
            np.maximum(spread[tuple(tail)], out[tuple(head)], out=spread[tuple(tail)])
        out = spread
    return out


def _maxima_3d(
    dist_mm: npt.NDArray[np.float32], lo: float, hi: float, where: npt.NDArray[np.bool_]
) -> dict[int, list[tuple[float, float, float]]]:
    """In-plane local maxima of per-slice distance maps within ``[lo, hi]`` mm, per slice, at
    ``where``."""
    peaks = (dist_mm >= lo) & (dist_mm <= hi) & where
    out: dict[int, list[tuple[float, float, float]]] = {}
    if not peaks.any():
        return out
    peaks &= dist_mm == _max_5x5(dist_mm)
    zs, rs, cs = np.nonzero(peaks)
    if zs.size == 0:
        return out
    # Connected pixels that each equal the maximum of their neighbourhood hold the same value:
    # a plateau's value is its maximum and its centroid its position. The peaks are few: their
    # plateaus (8-connected in the slice) are found from the list of their pixels, numbered by
    # their first pixel in raster order as scipy.ndimage.label numbers them.
    n_rows, n_cols = dist_mm.shape[1:]
    keys = (zs * n_rows + rs) * n_cols + cs
    pixel = np.arange(zs.size)
    links = [np.zeros(0, dtype=np.int64)] * 2
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        inside = (rs + dr < n_rows) & (cs + dc >= 0) & (cs + dc < n_cols)
        at = np.minimum(np.searchsorted(keys, keys + dr * n_cols + dc), zs.size - 1)
        linked = inside & (keys[at] == keys + dr * n_cols + dc)
        links = [np.concatenate([links[0], pixel[linked]]), np.concatenate([links[1], at[linked]])]
    graph = coo_matrix(
        (np.ones(links[0].size, dtype=np.int8), (links[0], links[1])), shape=(zs.size, zs.size)
    )
    n, ids = connected_components(graph, directed=False)
    counts = np.bincount(ids, minlength=n).astype(np.float64)
    rows = np.bincount(ids, weights=rs, minlength=n) / counts
    cols = np.bincount(ids, weights=cs, minlength=n) / counts
    planes = np.zeros(n, dtype=np.int64)
    planes[ids] = zs
    values = np.zeros(n, dtype=np.float64)
    values[ids] = dist_mm[zs, rs, cs]
    for z, r, c, value in zip(
        planes.tolist(), rows.tolist(), cols.tolist(), values.tolist(), strict=True
    ):
        out.setdefault(int(z), []).append((float(r), float(c), float(value)))
    return out


def _plane_distances(
    planes: npt.NDArray[np.bool_], spacing_mm: tuple[float, float]
) -> npt.NDArray[np.float32]:
    """The in-plane Euclidean distance transform of every plane of a stack (mm, float32): the
    second half of the planes on another thread (scipy's transform releases the GIL), the
    same values as one plane after the other."""

    def transform(stack: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        out = np.empty(stack.shape, dtype=np.float32)
        for k, plane in enumerate(stack):
            out[k] = ndimage.distance_transform_edt(plane, sampling=spacing_mm)
        return out

    half = planes.shape[0] // 2
    if half == 0:
        return transform(planes)
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(transform, planes[half:])
        first = transform(planes[:half])
        return np.concatenate([first, second.result()])


def _tubes(
    coarse: CoarseGrid,
    cavity: npt.NDArray[np.bool_],
    lungs: npt.NDArray[np.bool_],
    outside_air: npt.NDArray[np.bool_],
) -> list[Tube]:
    """Round soft-tissue cross-sections linked from the top slice downwards."""
    hu = coarse.hu
    sz, sy, sx = coarse.spacing_mm
    lo, hi = AORTA_RADIUS_MM
    # The aorta is blood in fat or lung: soft tissue, not bone, anywhere in the body; small dense
    # spots (calcium in its wall) are kept so that they do not dent the cross-section.
    dense = hu >= TISSUE_MAX_HU
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = True
    dense_labels, n_dense = ndimage.label(dense, structure=in_plane)
    dense_small = np.zeros_like(dense)
    if n_dense:
        # bone and calcium are a small part of the grid: sizes and lookups over their voxels
        where = np.nonzero(dense)
        labels_there = dense_labels[where]
        dense_sizes = np.bincount(labels_there, minlength=n_dense + 1)
        small = dense_sizes * sy * sx <= SMALL_DENSE_MM2
        small[0] = False
        dense_small[where] = small[labels_there]
    tissue = ((hu > FAT_TISSUE_HU) & ~dense | dense_small) & ~lungs & ~outside_air
    step_px = max(AORTA_STEP_MM_PER_MM * sz, 2.0 * sy) / sy + 1.0
    rows = np.flatnonzero(cavity.any(axis=(0, 2)))
    cols = np.flatnonzero(cavity.any(axis=(0, 1)))
    if rows.size == 0:
        return []
    # The aortas lie in the cavity: search its bounding box (with a margin for the tube's wall).
    grow = math.ceil(AORTA_RADIUS_MM[1] / sy)
    r0, c0 = max(int(rows[0]) - grow, 0), max(int(cols[0]) - grow, 0)
    r1, c1 = int(rows[-1]) + grow + 1, int(cols[-1]) + grow + 1
    open_tracks: list[dict[str, list[float]]] = []
    done: list[dict[str, list[float]]] = []
    # in-plane distance maps of every slice (slices infinitely far apart)
    dist_all = _plane_distances(tissue[:, r0:r1, c0:c1], (sy, sx))
    maxima_by_slice = _maxima_3d(dist_all, lo, hi, cavity[:, r0:r1, c0:c1])
    for z in range(hu.shape[0] - 1, -1, -1):
        found = [(r + r0, c + c0, rad) for r, c, rad in maxima_by_slice.get(z, [])]
        used: set[int] = set()
        still_open = []
        for track in open_tracks:
            best, best_d = -1, step_px
            for k, (r, c, rad) in enumerate(found):
                if k in used:
                    continue
                d = float(np.hypot(r - track["r"][-1], c - track["c"][-1]))
                if d <= best_d and abs(rad - track["rad"][-1]) <= 0.35 * track["rad"][-1] + sy:
                    best, best_d = k, d
            if best >= 0:
                used.add(best)
                r, c, rad = found[best]
                track["z"].append(z)
                track["r"].append(r)
                track["c"].append(c)
                track["rad"].append(rad)
                still_open.append(track)
            elif track["z"][-1] - z < MAX_GAP_SLICES:
                still_open.append(track)
            else:
                done.append(track)
        for k, (r, c, rad) in enumerate(found):
            if k not in used:
                still_open.append({"z": [z], "r": [r], "c": [c], "rad": [rad]})
        open_tracks = still_open
    done.extend(open_tracks)
    min_slices = max(2, round(AORTA_MIN_LENGTH_MM / sz))
    tubes = []
    for track in done:
        if len(track["z"]) >= min_slices:
            tubes.append(
                Tube(
                    slices=np.asarray(track["z"], dtype=np.int64),
                    centres=np.stack([track["r"], track["c"]], axis=1),
                    radii_mm=np.asarray(track["rad"], dtype=np.float64),
                )
            )
    return tubes


def _spine_centre(coarse: CoarseGrid, cavity: npt.NDArray[np.bool_]) -> tuple[float, float] | None:
    """Median centre of the largest posterior bony body over the slices."""
    hu = coarse.hu
    bone = hu > TISSUE_MAX_HU
    n_y = hu.shape[1]
    # every slice's bony bodies labelled at once (4-connected within the slice, as per slice)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1, 1, :] = in_plane[1, :, 1] = True
    labels, n = ndimage.label(bone, in_plane)
    if n == 0:
        return None
    # the labelled pixels are the bone pixels (listed faster from the boolean mask)
    zs, rs, cs = np.nonzero(bone)
    ids = labels[zs, rs, cs]
    sizes = np.bincount(ids, minlength=n + 1)
    rows = np.bincount(ids, weights=rs, minlength=n + 1) / np.maximum(sizes, 1)
    cols = np.bincount(ids, weights=cs, minlength=n + 1) / np.maximum(sizes, 1)
    plane = np.zeros(n + 1, dtype=np.int64)
    plane[ids] = zs
    centres = []
    for z in np.unique(zs).tolist():
        in_slice = np.flatnonzero(plane == z)
        in_slice = in_slice[in_slice > 0]
        # the largest body of the slice (the first in raster order among equals)
        k = int(in_slice[np.argmax(sizes[in_slice])])
        if sizes[k] < 10:
            continue
        if rows[k] > 0.4 * n_y:
            centres.append((float(rows[k]), float(cols[k])))
    if not centres:
        return None
    arr = np.asarray(centres)
    return float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))


def _pick_aortas(
    tubes: list[Tube],
    core: npt.NDArray[np.bool_],
    spine: tuple[float, float] | None,
    coarse: CoarseGrid,
) -> tuple[Tube | None, Tube | None]:
    """Choose the descending and the ascending aorta among the tubes."""
    if not tubes:
        return None, None
    n_z = core.shape[0]
    descending = None
    if spine is not None:
        # the descending aorta runs beside the vertebral body, on its left, and is the longest
        # tube there
        def score_desc(t: Tube) -> float:
            r, c = np.median(t.centres[:, 0]), np.median(t.centres[:, 1])
            distance = float(np.hypot(r - spine[0], c - spine[1])) * coarse.spacing_mm[1]
            return t.length * coarse.spacing_mm[0] - distance

        posterior = [
            t
            for t in tubes
            if np.median(t.centres[:, 0]) > spine[0] - 50.0 / coarse.spacing_mm[1]
            and np.median(t.centres[:, 1]) >= spine[1] - 5.0 / coarse.spacing_mm[2]
            and float(
                np.hypot(
                    np.median(t.centres[:, 0]) - spine[0], np.median(t.centres[:, 1]) - spine[1]
                )
            )
            * coarse.spacing_mm[1]
            < 60.0
        ]
        if posterior:
            descending = max(posterior, key=score_desc)
    rest = [t for t in tubes if t is not descending]
    ascending = None
    if rest:
        # The ascending aorta comes down from the upper slices and ends in the heart: below its
        # lower end the soft tissue around its centre is much wider than the tube. Of the great
        # vessels doing so (aorta, pulmonary trunk, caval vein) it is the widest right of the
        # pulmonary trunk.
        def ends_in_heart(t: Tube) -> bool:
            r, c = round(t.centres[-1, 0]), round(t.centres[-1, 1])
            tube_area = math.pi * float(np.median(t.radii_mm)) ** 2
            for z in range(int(t.slices[-1]) - 1, max(int(t.slices[-1]) - 4, -1), -1):
                area_mm2 = _body_area_mm2(core[z], r, c, coarse)
                if area_mm2 is not None and area_mm2 > HEART_WIDER_THAN_TUBE * tube_area:
                    return True
            return False

        # the scan starts above the aortic root, so the ascending aorta is cut by the top slices
        top = n_z - 1 - max(1, round(TOP_SLICES_MM / coarse.spacing_mm[0]))
        wide = [
            t
            for t in rest
            if t.slices[0] >= top and float(np.median(t.radii_mm)) >= ASCENDING_MIN_RADIUS_MM
        ]
        candidates = [t for t in wide if ends_in_heart(t)] or wide
        if candidates:
            widest = max(float(np.median(t.radii_mm)) for t in candidates)
            large = [
                t for t in candidates if float(np.median(t.radii_mm)) >= GREAT_VESSEL_SHARE * widest
            ]
            large.sort(key=lambda t: float(np.median(t.centres[:, 1])))
            # right to left: caval vein, aorta, pulmonary trunk; of two, the right one (the
            # caval vein is narrower than the aorta as a rule, the pulmonary trunk as wide)
            ascending = large[1] if len(large) >= 3 else large[0]
    return descending, ascending


def _until_heart(tube: Tube, core: npt.NDArray[np.bool_], coarse: CoarseGrid) -> Tube:
    """The ascending aorta down to where it enters the heart's silhouette.

    Below that level the round sections the tracker may still link (the outflow tract, an
    atrium) lie inside a soft-tissue body many times the aorta's section: the heart. The tube
    ends at the first slice (from the top) where the eroded soft tissue around its centre is at
    least :data:`HEART_ENTRY_TIMES_TUBE` times its cross-section (top slices excepted, where the
    aorta may touch the pulmonary trunk or the caval vein).
    """
    for k in range(1, tube.length):
        r, c = round(tube.centres[k, 0]), round(tube.centres[k, 1])
        area_mm2 = _body_area_mm2(core[int(tube.slices[k])], r, c, coarse)
        if area_mm2 is None:
            continue
        if area_mm2 > HEART_ENTRY_TIMES_TUBE * math.pi * float(tube.radii_mm[k]) ** 2:
            return Tube(
                slices=tube.slices[:k], centres=tube.centres[:k], radii_mm=tube.radii_mm[:k]
            )
    return tube


def _body_area_mm2(
    core_plane: npt.NDArray[np.bool_], r: int, c: int, coarse: CoarseGrid
) -> float | None:
    """Area (mm^2) of the eroded soft-tissue body around coarse ``(r, c)`` in one slice, or
    ``None`` when none lies within two pixels of it."""
    labels, _ = ndimage.label(core_plane)
    window = labels[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3]
    hits = window[window > 0]
    if hits.size == 0:
        return None
    pixels = np.count_nonzero(labels == np.bincount(hits).argmax())
    return float(pixels) * coarse.spacing_mm[1] * coarse.spacing_mm[2]


def _aorta_direction(tube: Tube, coarse: CoarseGrid) -> npt.NDArray[np.float64]:
    """Direction down the ascending aorta at its lower end.

    Fitted to the lowest tracked centres, weighted toward straight down when few slices were
    tracked (a centre quantised to the coarse grid makes a short fit unreliable), and tilted at
    most :data:`AORTA_MAX_TILT_DEG` from the body axis.
    """
    fitted = tube.direction(6, coarse.spacing_mm)
    down = np.array([0.0, 0.0, -1.0])
    extent_mm = (tube.length - 1) * coarse.spacing_mm[0]
    weight = min(1.0, extent_mm / AORTA_FIT_MM)
    direction = weight * fitted + (1.0 - weight) * down
    direction /= np.linalg.norm(direction)
    max_tilt = math.radians(AORTA_MAX_TILT_DEG)
    if math.acos(min(1.0, -float(direction[2]))) > max_tilt:
        horizontal = direction[:2] / np.linalg.norm(direction[:2])
        direction = np.array(
            [*(math.sin(max_tilt) * horizontal), -math.cos(max_tilt)], dtype=np.float64
        )
    return np.asarray(direction, dtype=np.float64)


def _face_neighbours(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Voxels with at least one of their six face neighbours in ``mask`` (3-D)."""
    out = np.zeros_like(mask)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        out[tuple(lo)] |= mask[tuple(hi)]
        out[tuple(hi)] |= mask[tuple(lo)]
    return out


class SetDistance:
    """Distance (mm) from any coarse voxel to the nearest voxel of a set, queried at points.

    Exactly the Euclidean distance transform's value at those points, without computing it over
    the whole grid: the voxel of the set nearest to a point outside it is always 6-adjacent to
    a voxel outside the set (a step from it toward the point along the largest coordinate
    difference comes closer, so it must leave the set), so a k-d tree of the set's boundary
    voxels answers exactly. Points inside the set are at distance 0.
    """

    def __init__(self, members: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]):
        self._members = members
        self._spacing = np.asarray(spacing_mm, dtype=np.float64)
        points = np.zeros((0, 3), dtype=np.float64)
        if members.any():
            # Only the set's bounding box grown by one voxel holds its members and their
            # neighbours; its raster order is the grid's, so the points (and the tree) are the
            # same as from the whole grid.
            window = _box(members, (1, 1, 1))
            sub = members[window]
            border = _face_neighbours(~sub)
            offset = np.array([s.start for s in window], dtype=np.int64)
            points = (np.argwhere(sub & border) + offset).astype(np.float64) * self._spacing
        # an unbalanced tree (split at the middle of each box) is built about twice as fast, and
        # a nearest-neighbour query is exact whatever the tree's shape
        self._tree = cKDTree(points, balanced_tree=False) if points.shape[0] else None
        self._lo = points.min(axis=0) if points.shape[0] else np.zeros(3)
        self._hi = points.max(axis=0) if points.shape[0] else np.zeros(3)

    def at(
        self,
        z: npt.NDArray[np.integer],
        j: npt.NDArray[np.integer],
        i: npt.NDArray[np.integer],
        limit_mm: float,
        where: npt.NDArray[np.bool_] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Distances (mm) at coarse voxels ``(z, j, i)``, capped at ``limit_mm``; only at the
        points ``where`` is true when given (the cap elsewhere)."""
        out = np.full(np.shape(z), limit_mm, dtype=np.float64)
        if self._tree is None:
            return out
        if where is not None:
            if where.any():
                out[where] = self.at(z[where], j[where], i[where], limit_mm)
            return out
        flat = np.ravel_multi_index((z, j, i), self._members.shape)
        unique, inverse = np.unique(flat, return_inverse=True)
        coords = np.stack(np.unravel_index(unique, self._members.shape), axis=1)
        mm = coords.astype(np.float64) * self._spacing
        # only points outside the set and nearer than the cap to its bounding box need the tree
        gap = np.maximum(np.maximum(self._lo - mm, mm - self._hi), 0.0)
        ask = (np.sqrt((gap * gap).sum(axis=1)) < limit_mm) & ~self._members[tuple(coords.T)]
        found = np.full(unique.size, limit_mm)
        found[self._members[tuple(coords.T)]] = 0.0
        if ask.any():
            hit, _ = self._tree.query(mm[ask], distance_upper_bound=limit_mm)
            found[ask] = np.minimum(hit, limit_mm)
        out[...] = found[inverse.reshape(-1)].reshape(out.shape)
        return out


def _grown_box(
    mask: npt.NDArray[np.bool_], coarse: CoarseGrid, margin_mm: float
) -> npt.NDArray[np.bool_]:
    """The bounding box of ``mask`` grown by ``margin_mm``, as a mask (empty if ``mask`` is)."""
    out = np.zeros_like(mask)
    if mask.any():
        sz, sy, sx = (math.ceil(margin_mm / spacing) for spacing in coarse.spacing_mm)
        out[_box(mask, (sz, sy, sx))] = True
    return out


def _edt_mm(
    offsets: npt.NDArray[np.integer], spacing_mm: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Lengths (mm) of integer voxel offsets ``(..., 3)``, with the operations and rounding of
    :func:`scipy.ndimage.distance_transform_edt` (each offset scaled by its axis' spacing,
    squared, summed in axis order, square root)."""
    scaled = offsets.astype(np.float64) * spacing_mm
    squared = scaled * scaled
    return np.asarray(np.sqrt((squared[..., 0] + squared[..., 1]) + squared[..., 2]))


class HeartDepth:
    """Depth (mm) of heart voxels below the heart's surface: the distance to the nearest voxel
    outside the heart (voxels beyond the grid's faces count as outside); 0 outside the heart.

    The values of the Euclidean distance transform of the heart (:func:`_edt_mm` of the offset
    to the nearest outside voxel, as float32) without computing it at every voxel: the depth is
    asked at candidate voxels (:meth:`at`) and compared with one depth everywhere
    (:meth:`deeper_than`).

    Notes
    -----
    The outside voxel nearest to a heart voxel is 6-adjacent to a heart voxel (see
    :class:`SetDistance`): a k-d tree of those voxels lists the nearest few, and the depth is the
    smallest :func:`_edt_mm` among them (ties between offsets of equal length, whose rounded
    lengths may differ in the last bit, are all among them; more are listed while the farthest
    listed is still as near as the nearest). The transform gives that same smallest value (checked
    on every heart voxel of the cached evaluation studies).
    """

    #: Nearest outside voxels listed per query at first.
    _NEIGHBOURS = 12

    def __init__(self, heart: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]):
        self._heart = heart
        self._spacing = np.asarray(spacing_mm, dtype=np.float64)
        self._tree: cKDTree | None = None
        self._outside = np.zeros((0, 3), dtype=np.int64)
        self._box: tuple[slice, slice, slice] | None = None
        if not heart.any():
            return
        self._box = _box(heart, (0, 0, 0))
        # the heart's box grown by one voxel, padded by one more (beyond the grid's faces)
        window = _box(heart, (1, 1, 1))
        padded = np.pad(heart[window], 1)
        touching = _face_neighbours(padded)
        offset = np.array([s.start - 1 for s in window], dtype=np.int64)
        self._outside = np.argwhere(touching & ~padded) + offset
        self._tree = cKDTree(self._outside * self._spacing, balanced_tree=False)

    @property
    def heart(self) -> npt.NDArray[np.bool_]:
        """The heart mask the depth is measured in."""
        return self._heart

    @property
    def box(self) -> tuple[slice, slice, slice] | None:
        """The heart's bounding box; ``None`` without a heart."""
        return self._box

    def at(
        self,
        z: npt.NDArray[np.integer],
        j: npt.NDArray[np.integer],
        i: npt.NDArray[np.integer],
    ) -> npt.NDArray[np.float32]:
        """Depths (mm) at coarse voxels ``(z, j, i)`` inside the grid; 0 outside the heart."""
        out = np.zeros(np.shape(z), dtype=np.float32)
        inside = self._heart[z, j, i]
        if self._tree is None or not inside.any():
            return out
        flat = np.ravel_multi_index((z[inside], j[inside], i[inside]), self._heart.shape)
        unique, inverse = np.unique(flat, return_inverse=True)
        points = np.stack(np.unravel_index(unique, self._heart.shape), axis=1).astype(np.int64)
        depth = np.zeros(unique.size, dtype=np.float64)
        todo = np.arange(unique.size)
        k = self._NEIGHBOURS
        while todo.size:
            k = min(k, self._outside.shape[0])
            listed, nearest = self._tree.query(points[todo] * self._spacing, k=k)
            listed = np.asarray(listed, dtype=np.float64).reshape(todo.size, -1)
            nearest = np.asarray(nearest, dtype=np.int64).reshape(todo.size, -1)
            lengths = _edt_mm(self._outside[nearest] - points[todo, None, :], self._spacing)
            depth[todo] = lengths.min(axis=1)
            # every outside voxel as near as the nearest must have been listed
            short = (listed[:, -1] <= listed[:, 0] * (1.0 + 1e-9)) & (k < self._outside.shape[0])
            todo = todo[short]
            k *= 4
        out[inside] = depth[inverse.reshape(-1)]
        return out

    def deeper_than(self, depth_mm: float) -> npt.NDArray[np.bool_]:
        """Heart voxels deeper than ``depth_mm``: those with no outside voxel at an offset whose
        length (:func:`_edt_mm`, as float32, as the depth is kept) is at most ``depth_mm``; an
        erosion of the heart by those offsets, slice offset by slice offset."""
        deep = np.zeros_like(self._heart)
        if self._box is None:
            return deep
        reach = [math.ceil(depth_mm / spacing) + 1 for spacing in self._spacing]
        grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), axis=-1)
        near = _edt_mm(grid, self._spacing).astype(np.float32) <= depth_mm
        # outside the heart's box there is no heart: the box (and the grid's faces) bounds it
        window = self._box
        heart = self._heart[window]
        n_z = heart.shape[0]
        kept = heart.copy()
        for dz in range(-reach[0], reach[0] + 1):
            layer = near[dz + reach[0]]
            if not layer.any():
                continue
            if abs(dz) >= n_z:
                kept[...] = False
                break
            eroded = _in_plane(heart, layer, erode=True)
            # kept[z] needs eroded[z + dz]; beyond the box there is no heart
            if dz > 0:
                kept[: n_z - dz] &= eroded[dz:]
                kept[n_z - dz :] = False
            elif dz < 0:
                kept[-dz:] &= eroded[:dz]
                kept[:-dz] = False
            else:
                kept &= eroded
        deep[window] = kept
        return deep


def find_anatomy(coarse: CoarseGrid, canonical_hu: npt.NDArray[np.generic]) -> AnatomyMaps:
    """Lungs, cavity, heart, aortas, spine and noise level on the coarse grid.

    Parameters
    ----------
    coarse
        Coarse canonical HU grid.
    canonical_hu
        The canonical full-resolution HU view (for the noise level).

    Returns
    -------
    AnatomyMaps
        The masks and landmarks; ``problems`` lists what could not be found.
    """
    problems: list[str] = []
    lungs, outside_air = _lungs(coarse)
    if not lungs.any():
        problems.append("no lungs found (no enclosed air body)")
        cavity = ~outside_air & (coarse.hu > AIR_HU)
    else:
        cavity = _cavity(lungs, coarse)
    # The aorta search (mostly scipy's distance transforms, which release the GIL) runs beside
    # the soft-tissue masks on a second core; both are pure functions of the same inputs.
    with ThreadPoolExecutor(max_workers=1) as pool:
        tubes_found = pool.submit(_tubes, coarse, cavity, lungs, outside_air)
        tissue = _tissue(coarse, lungs, outside_air)
        spine = _spine_centre(coarse, cavity)
        # the soft tissue opened in-plane: the bodies the aorta enters and the heart is
        # followed in
        core = _per_slice("erode", tissue, _disk(_opening_px(coarse)))
        tubes = tubes_found.result()
    descending, ascending = _pick_aortas(tubes, core, spine, coarse)
    if ascending is not None:
        ascending = _until_heart(ascending, core, coarse)
    root: tuple[float, float, float] | None = None
    root_radius: float | None = None
    root_direction: npt.NDArray[np.float64] | None = None
    seed: tuple[int, float, float] | None = None
    if ascending is None:
        problems.append("no ascending aorta found")
    else:
        # The tube is lost where the aorta enters the heart's silhouette; the root (valve and
        # sinuses) lies further down along the same axis, inside the heart.
        root_radius = float(np.median(ascending.radii_mm[-3:]))
        root_direction = _aorta_direction(ascending, coarse)
        root = (
            float(ascending.slices[-1]),
            float(ascending.centres[-1, 0]),
            float(ascending.centres[-1, 1]),
        )
        seed = (int(ascending.slices[-1]) - 1, root[1], root[2])
    if descending is None:
        problems.append("no descending aorta found")
    heart = _heart(coarse, tissue, core, cavity, seed)
    if not heart.any():
        problems.append("no heart found between the lungs")
    depth = HeartDepth(heart, coarse.spacing_mm)
    # the two distance trees are built on other threads (scipy releases the GIL) while the
    # noise is measured
    with ThreadPoolExecutor(max_workers=2) as pool:
        heart_distance = pool.submit(SetDistance, heart, coarse.spacing_mm)
        lung_distance = pool.submit(
            SetDistance, lungs & _grown_box(heart, coarse, LUNG_WINDOW_MM), coarse.spacing_mm
        )
        noise_sd = _noise_sd(canonical_hu, coarse.factor, depth)
        distances = heart_distance.result(), lung_distance.result()
    return AnatomyMaps(
        lungs=lungs,
        outside_air=outside_air,
        cavity=cavity,
        heart=heart,
        depth_mm=depth,
        heart_distance=distances[0],
        descending=descending,
        ascending=ascending,
        root=root,
        root_radius_mm=root_radius,
        spine_centre=spine,
        noise_sd_hu=noise_sd,
        lung_distance=distances[1],
        root_direction=root_direction,
        problems=tuple(problems),
    )
