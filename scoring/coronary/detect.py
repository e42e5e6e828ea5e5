"""Decide for every calcified candidate whether it is coronary, and in which artery.

:func:`detect_coronary_calcium` finds the anatomy (:mod:`scoring.coronary.anatomy`) once, then
walks the candidates through explainable rules, in this order, recording the first that applies:

1. **metal**: peak at or above :data:`METAL_HU` (clips, wires; a warning is raised);
2. **bone**: a large dense body (vertebra, sternum, rib), or calcium outside the lungs' hull
   (chest wall, spine);
3. **outside the heart**: in the lung, or farther than :data:`EPICARDIAL_REACH_MM` from the heart;
4. **aorta**: on the wall of the tracked descending or ascending aorta, on the root's wall just
   below where the aorta enters the heart, or beside it above the coronary ostia;
5. **aortic valve / root**: inside blood or muscle (deep in the heart, or with little fat around
   it) close to the aortic axis continued down into the heart;
6. **noise**: a peak within :data:`NOISE_PEAK_SD` (:data:`NOISE_SMALL_PEAK_SD` for the smallest)
   noise SDs of its surroundings (noise SD measured
   in the heart), when small or not surrounded by fat (a real plaque sits in fat at -100 HU);
7. **mitral annulus**: inside blood or muscle at the base of the left heart; anywhere else inside
   blood or muscle: **noise** (no coronary artery runs there);
8. **coronary ostia**: just outside the aortic root: left side LM, right side RCA;
9. **pericardium**: on the outer boundary of the epicardial fat (far from the heart's muscle, or
   against the lung);
10. **coronary**: everything left (in epicardial fat on the heart), given an artery by its angle
    around the heart's long axis and its distance from the base (see :func:`_artery`), unless it
    is wider across its course than a coronary artery can be
    (:data:`CORONARY_MAX_WIDTH_SD_MM`): then a pericardial plate or a calcified lymph node.

The cardiac frame: origin on the aortic axis at the root, ``u`` the heart's long axis (from
that origin to the apex, the heart's most anterior, left and inferior part),
angles around ``u`` measured from the anterior direction (0) toward the patient's left (+90) and
posterior (180). The territories' angles (:func:`_territory_angle`) turn about the axis from the
heart's centre to the apex with the aortic root, so that a heart rotated about its long axis
keeps its territories. The atrioventricular grooves ring the base; the anterior interventricular
groove (LAD) lies just left of anterior, the right atrioventricular groove (RCA) right of it, the
left one (LCX) left and posterior, the posterior interventricular groove (RCA's posterior
descending branch in right-dominant hearts) posterior and toward the apex.

References
----------
Wolterink JM et al. An evaluation of automatic coronary artery calcium scoring methods with
cardiac CT using the orCaScore framework. Med Phys 2016 (the exclusion classes and metrics).
Coronary anatomy (ostia in the aortic sinuses, RCA in the right and LCX in the left
atrioventricular groove, LAD in the anterior interventricular groove): standard anatomy texts, as
summarised in issue 3 of this project. The numeric margins below are design parameters of this
detector (orders of magnitude of adult cardiac anatomy), not clinical thresholds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from scoring.coronary.anatomy import (
    HEART_DISTANCE_CAP_MM,
    LUNG_DISTANCE_CAP_MM,
    AnatomyMaps,
    Tube,
    find_anatomy,
)
from scoring.coronary.frame import CanonicalFrame, CoarseGrid
from scoring.errors import InvalidVolumeError
from scoring.parameters import Artery, ExclusionReason
from scoring.result import Candidate, CandidateSet, LesionLabel, ScoringWarning, WarningCode
from scoring.volume import CTVolume

#: Peak attenuation (HU) from which a candidate is taken for metal. Calcium and cortical bone stay
#: below about 2000 HU at 120 kVp; surgical steel saturates the scale (issue 3: "> ~2000-3000").
METAL_HU = 2000.0
#: A candidate with more volume than this (mm^3) and not deep in the heart is bone.
BONE_VOLUME_MM3 = 1500.0
#: Coronary arteries run in the epicardial fat: at most this far (mm) from the heart's tissue.
EPICARDIAL_REACH_MM = 12.0
#: A coronary artery is at most about 5 mm wide (the left main, 4-5 mm; the others taper from
#: 3-4 mm), so a calcification of one is at most that wide across its course, blur included.
#: Calcium whose voxels spread across their main direction with a standard deviation above this
#: (mm; a uniform disc 10 mm wide has 2.5 mm, the 5 mm left main filled with calcium about
#: 1.3 mm) is a plate (pericardium, aortic wall), a calcified lymph node or bone, not coronary.
CORONARY_MAX_WIDTH_SD_MM = 2.2
#: ... a plate when its thinnest spread is at most this share of its width (a sheet), else a
#: compact mass (a calcified lymph node).
PLATE_THICKNESS_SHARE = 0.5
#: Deeper than this (mm) inside the heart's soft tissue is blood pool or myocardium, not surface.
DEEP_MM = 5.0
#: The coronary ostia lie at most this far (mm) above the lower end of the tracked aorta. Where
#: fat rather than the atria and the outflow tract surrounds the root, the tube is followed
#: down past the sinuses (to the valve), and the ostia lie some 15-25 mm above its end.
OSTIUM_ABOVE_EXIT_MM = 25.0
#: The aortic root (sinuses, valve) spans up to this many aortic radii down the aortic axis
#: from where the tracked aorta enters the heart's silhouette.
ROOT_LENGTH_RADII = 4.5
#: The coronary ostia and the calcium of the root's wall lie down to this many radii below
#: where the aorta enters the heart.
ROOT_WALL_RADII = 2.0
#: At the ostia, calcium with at least this share of fat around it lies outside the aortic wall,
#: in a coronary artery's wall (the aortic wall has blood on its inner side).
OSTIAL_FAT_MIN = 0.45
#: ... and on the left side of the root (angles around the long axis, as for the territories),
#: where the left main leaves it.
LEFT_OSTIUM_DEG = (0.0, 90.0)
LEFT_OSTIAL_FAT_MIN = 0.35
#: The left main leaves the left coronary sinus and runs outward, away from the aortic lumen, for
#: about 5-15 mm (issue 3), while calcium of the aortic wall stays within the wall's thickness (a
#: few mm) on the circumference. At the root, on the left side, calcium in contact with fat that
#: spans at least this far (mm) radially from the aortic axis and reaches outside the aortic
#: radius, or lies wholly outside that radius, is the left main's, not the aortic wall's.
LEFT_MAIN_RADIAL_SPAN_MM = 6.0
#: The left and right coronary sinuses meet (commissure) about anteriorly; a candidate leaving
#: the root in contact with fat counts as the left main's when its outermost point bears at
#: least this angle around the long axis (left of anterior).
LEFT_MAIN_BEARING_MIN_DEG = 0.0
#: Calcium on the root's wall that runs outward (LEFT_MAIN_RADIAL_SPAN_MM or more radially)
#: to at least this far (mm) outside the wall is a coronary artery's first part even when its
#: own vessel, not fat, surrounds it; wall calcium stays within the wall's few millimetres.
OSTIUM_OUTWARD_MM = 4.5
#: ... and, below where the aorta enters the heart, when not deep in the heart's tissue and
#: still with this share of fat around it (its vessel runs into the epicardial fat; valve and
#: annulus calcium lie in blood and muscle).
OSTIAL_VESSEL_FAT_MIN = 0.1
#: Such calcium (a large plaque running 6 mm or more outward) is the left main's when its
#: outermost point bears at least this angle around the long axis: the left main runs to the
#: left, the RCA forward out of the anterior sinus before it turns right.
OSTIUM_SPLIT_DEG = 30.0
#: A coronary ostium and the artery's first millimetres are about as wide as the artery (left
#: main 4-5 mm): calcium hugging the root's wall (reaching at most AORTIC_WALL_MARGIN_MM
#: outside it) that spreads farther than this (mm) around the circumference is the aortic wall's.
OSTIUM_WIDTH_MM = 5.0
#: The coronary ostia open from the right (anterior) and left coronary sinuses; the
#: non-coronary sinus lies posterior and to the right. Only calcium bearing at most this angle
#: (around the long axis, 0 anterior) from anterior can be at an ostium.
OSTIUM_MAX_BEARING_DEG = 135.0
#: Without an ascending aorta, the frame's origin is the centre of the heart's top slab this
#: thick (mm).
BASE_SLAB_MM = 15.0
#: The apex of the heart points anterior, left and inferior (standard anatomy): the heart's
#: farthest part along this direction (canonical: left, posterior, superior) from the base, and
#: the heart within this depth (mm) of it, is its apex.
APEX_DIRECTION = np.array([1.0, -1.0, -1.0]) / math.sqrt(3.0)
APEX_DEPTH_MM = 5.0
#: Origin of the cardiac frame: this many aortic radii down the aortic axis from that point.
FRAME_ORIGIN_RADII = 1.5
#: Aortic wall: within this distance (mm) of the tracked aortic wall.
AORTIC_WALL_MARGIN_MM = 3.5
#: Deep calcium within this distance (mm) outside the aortic radius is in the valve or root.
VALVE_MARGIN_MM = 8.0
#: Left main: up to this far (mm) outside the aortic wall. Its length is 5-15 mm, so beyond
#: about its median length calcium is more often the first part of the LAD or the LCX.
LEFT_MAIN_REACH_MM = 10.0
#: The mitral annulus lies at the base of the left ventricle, behind the aortic root, from the
#: lateral wall round to the back of the heart near the crux: calcium inside the muscle there
#: (angles from MITRAL_LATERAL_DEG on the left to MITRAL_POSTERIOR_DEG on the right of
#: posterior). Further forward on the left run the left main and the proximal LAD.
MITRAL_LATERAL_DEG = 90.0
MITRAL_POSTERIOR_DEG = 150.0
#: Calcium with little fat around it lies in the blood or muscle when it is deep in the heart's
#: soft tissue or within this distance (mm, mean over its voxels) of it; farther out it lies on
#: the surface, where a large coronary plaque's own vessel fills its surroundings.
INSIDE_HEART_MM = 1.0
#: ... and such a plaque lies against the muscle, as its vessel does: within this distance (mm).
LOW_FAT_PLAQUE_MM = 4.0
#: The mitral annulus lies on the left side of the heart within this distance (mm) toward the
#: apex from the aortic root.
MITRAL_REACH_MM = 40.0
#: Calcium in the muscle at the base whose length along its principal axis has a standard
#: deviation of at least this (mm; a band some 17 mm long) is annular calcification: a coronary
#: plaque that long would lie in the atrioventricular groove's fat, not in the muscle.
ANNULAR_BAND_SD_MM = 5.0
#: Coronary territories by angle around the heart's long axis (0 = anterior, +90 = the patient's
#: left, 180 = posterior, negative = right) and by distance toward the apex from the aortic root:
#: the atrioventricular grooves ring the base within AV_GROOVE_BAND_MM of the root's level;
#: the anterior interventricular groove (LAD) lies just left of anterior, the right
#: atrioventricular groove (RCA) right of it, the left one (LCX) left and posterior, and the
#: posterior interventricular groove (RCA's posterior descending branch in right-dominant
#: hearts, most people) posterior. Design parameters of this detector from that anatomy.
AV_GROOVE_BAND_MM = 15.0
#: The territories' angles turn with the heart about its long axis (the axis from its centre to
#: its apex): their zero lies this many degrees to the patient's right of the aortic root's
#: bearing around that axis. A design parameter of this detector: the three phantom generators
#: of this project put the root 10-100 degrees left of anterior around that axis (medians 20,
#: 70 and 65), and their coronary trees turn with it.
AORTIC_ROOT_BEARING_DEG = 25.0
#: The root's bearing is used only when the root lies at least this far (mm) off that axis.
ROOT_OFF_AXIS_MIN_MM = 5.0
RCA_LAD_BOUNDARY_DEG = -10.0
LAD_LCX_BASE_DEG = 55.0
LAD_LCX_APICAL_DEG = 90.0
POSTERIOR_GROOVE_DEG = 150.0
#: Near the bifurcation of the left main (at the base, up to this many degrees short of
#: LAD_LCX_BASE_DEG) the direction a calcification runs tells the two apart: the LCX runs around
#: the base in the left atrioventricular groove, the LAD down the anterior interventricular
#: groove toward the apex. A candidate that runs around the long axis at least
#: RUN_DOMINANCE times more than along it, and is long enough to have a direction (standard
#: deviation along its run of at least RUN_MIN_SD_MM, RUN_MIN_ELONGATION times its width), is LCX.
BIFURCATION_BAND_DEG = 25.0
#: Beyond this distance (mm) toward the apex from the root, the LAD's diagonal branches reach
#: round the anterolateral wall to LAD_LCX_DISTAL_DEG; the obtuse marginals (LCX) lie beyond.
APICAL_FROM_MM = 40.0
#: At the level of the aortic root (above the frame's origin on the long axis) the only coronary
#: artery in front is the RCA leaving the right (anterior) sinus: the left main runs to the left,
#: and the LAD descends from its bifurcation. Anterior calcium there short of this angle is RCA.
ROOT_LEVEL_LEFT_DEG = 30.0
LAD_LCX_DISTAL_DEG = 120.0
RUN_DOMINANCE = 2.0
RUN_MIN_SD_MM = 0.8
RUN_MIN_ELONGATION = 1.2
#: At the base, the crux (where the RCA ends in right-dominant hearts) lies beyond this angle.
CRUX_DEG = 165.0
#: At the back of the base the crux lies near the heart's middle: calcium there more than this
#: (mm) to the patient's left of the heart's centre is in the left atrioventricular groove (LCX),
#: within POSTERIOR_BASE_MM toward the apex (farther, the posterior interventricular groove).
CRUX_LEFT_MM = 15.0
POSTERIOR_BASE_MM = 30.0
#: In front, the LAD and the left main run to the left of the aortic root and the RCA to its
#: right: calcium at least this far (mm) to the patient's right of the root is the RCA's.
RIGHT_OF_ROOT_MM = 5.0
#: Noise: a small candidate (largest slice area below :data:`NOISE_MAX_AREA_MM2`) whose peak is
#: less than this many noise SDs above its surroundings.
NOISE_PEAK_SD = 5.0
NOISE_MAX_AREA_MM2 = 4.0
#: The smallest candidates (largest slice area below NOISE_SMALL_AREA_MM2, a pixel or two above
#: the 1 mm2 minimum) need NOISE_SMALL_PEAK_SD noise SDs: the heart holds about a million
#: noise samples, whose largest values reach about 5 SDs by chance alone (Gaussian tail).
NOISE_SMALL_AREA_MM2 = 2.0
NOISE_SMALL_PEAK_SD = 6.0
#: ... or, whatever its size, when less than this fraction of its surroundings is fat.
NOISE_FAT_MAX = 0.3
#: At most about this many voxels of a candidate are sampled for its anatomy features.
MAX_FEATURE_VOXELS = 400
#: Distances beyond this (mm) are all "far" (the maps are infinite away from the heart).
FAR_MM = 200.0
#: Soft tissue (blood, myocardium) attenuation: the noise baseline when nothing surrounds (HU).
TISSUE_BASELINE_HU = 40.0
#: Width (mm) of the ring of pixels examined around a candidate.
RING_MM = 2.5
#: Ring pixels below this are fat (HU; fat is about -100, blood and muscle 30-60).
FAT_RING_HU = -30.0
#: A candidate with less than this fraction of fat around it lies inside blood or muscle.
FAT_CONTACT_MIN = 0.25
#: Pericardium: the outer boundary of the epicardial fat. A candidate at least this far (mm)
#: from the heart's muscle, or at least CORONARY_HEART_MM from it and within
#: PERICARDIAL_LUNG_MM of the lung, is pericardial; coronary arteries lie on the muscle.
PERICARDIAL_HEART_MM = 6.5
CORONARY_HEART_MM = 5.5
PERICARDIAL_LUNG_MM = 3.0
#: The RCA runs in the right atrioventricular groove, whose fat is deep; farther than this (mm)
#: toward the apex on the right side of the heart only its marginal branches run, on the right
#: ventricle's free wall under thin fat: there CORONARY_HEART_MM from the muscle is already
#: the pericardium.
RIGHT_GROOVE_REACH_MM = 25.0


@dataclass(frozen=True, slots=True)
class CardiacAnatomy:
    """What the detector found, for reviewers and key images (patient coordinates, LPS, mm).

    Every landmark is ``None`` when it was not found (and a detection warning says so).
    """

    heart_centre_mm: tuple[float, float, float] | None
    heart_bounds_mm: tuple[tuple[float, float, float], tuple[float, float, float]] | None
    """Opposite corners of the heart's bounding box (min and max x, y, z)."""
    heart_volume_ml: float
    apex_mm: tuple[float, float, float] | None
    aortic_root_mm: tuple[float, float, float] | None
    aortic_root_radius_mm: float | None
    ascending_aorta_mm: tuple[tuple[float, float, float], ...]
    """Centre of the ascending aorta in each slice where it was tracked, top to bottom."""
    descending_aorta_mm: tuple[tuple[float, float, float], ...]
    lung_volume_ml: float
    noise_sd_hu: float
    long_axis: tuple[float, float, float] | None
    """Unit vector from base to apex (patient LPS)."""


@dataclass(frozen=True, slots=True)
class CoronaryLabelling:
    """The automatic decision for every candidate, the warnings and the anatomy behind it.

    ``labels`` has one entry per candidate ``lesion_id``: an artery, or an exclusion with a short
    reason a reviewer can read. Pass it to :func:`scoring.score_candidates` with ``roi="auto"``.
    """

    labels: dict[int, LesionLabel]
    warnings: tuple[ScoringWarning, ...] = ()
    anatomy: CardiacAnatomy | None = None
    features: dict[int, dict[str, float]] = field(default_factory=dict)
    """Per candidate, the measurements the rules used (depth, distances, frame coordinates)."""


@dataclass(frozen=True, slots=True)
class _Frame:
    """The aortic axis and the cardiac frame in canonical mm (x left, y posterior, z superior)."""

    exit: npt.NDArray[np.float64]
    """Where the tracked ascending aorta enters the heart's silhouette."""
    aorta_direction: npt.NDArray[np.float64]
    """Unit vector down the ascending aorta there."""
    aorta_radius_mm: float
    origin: npt.NDArray[np.float64]
    """Origin of the cardiac frame: on the aortic axis, at the root."""
    long_axis: npt.NDArray[np.float64]
    left: npt.NDArray[np.float64]
    """Unit vector orthogonal to the long axis toward the patient's left."""
    anterior: npt.NDArray[np.float64]
    """Unit vector orthogonal to the long axis toward the front."""
    base_offset_mm: float
    """Smallest long-axis coordinate of the heart (its base), relative to ``origin``."""
    heart_centre: npt.NDArray[np.float64]
    """Centre of the heart's soft tissue."""
    territory_axis: npt.NDArray[np.float64]
    """Unit vector from the heart's centre to its apex: the axis the territories turn about."""
    territory_anterior: npt.NDArray[np.float64]
    """Unit vector orthogonal to ``territory_axis`` toward the front."""
    territory_left: npt.NDArray[np.float64]
    """Unit vector orthogonal to ``territory_axis`` toward the patient's left."""
    root_bearing_deg: float
    """Bearing of the aortic root around ``territory_axis`` (0 anterior, +90 left); the
    territories turn with it (:func:`_territory_angle`)."""


def _canonical_mm(
    coarse: CoarseGrid, z: npt.ArrayLike, j: npt.ArrayLike, i: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Coarse (z, row, column) -> canonical mm (x left, y posterior, z superior) of the block
    centre, measured from the centre of the first fine pixel; ``(..., 3)``."""
    sz, sy, sx = coarse.spacing_mm
    f = coarse.factor
    half = (f - 1) / 2.0
    zz, jj, ii = (np.asarray(a, dtype=np.float64) for a in (z, j, i))
    return np.stack([(ii * f + half) * sx / f, (jj * f + half) * sy / f, zz * sz], axis=-1)


@dataclass(frozen=True, slots=True)
class _HeartVoxels:
    """The heart's coarse voxels (raster order) and their canonical mm, listed once for the
    cardiac frame and the anatomy record."""

    z: npt.NDArray[np.intp]
    j: npt.NDArray[np.intp]
    i: npt.NDArray[np.intp]
    mm: npt.NDArray[np.float64]

    @classmethod
    def of(cls, maps: AnatomyMaps, coarse: CoarseGrid) -> _HeartVoxels:
        zz, jj, ii = np.nonzero(maps.heart)
        return cls(zz, jj, ii, _canonical_mm(coarse, zz, jj, ii))


def _cardiac_frame(maps: AnatomyMaps, coarse: CoarseGrid, heart: _HeartVoxels) -> _Frame | None:
    if heart.z.size == 0:
        return None
    points = heart.mm
    heart_centre = points.mean(axis=0)
    if maps.root is None or maps.root_radius_mm is None or maps.root_direction is None:
        # No ascending aorta: the frame's origin is the middle of the heart's top (its base,
        # where the root lies), and the aortic zones are switched off (radius 0).
        top = points[:, 2] >= points[:, 2].max() - BASE_SLAB_MM
        exit_point = points[top].mean(axis=0)
        direction = np.array([0.0, 0.0, -1.0])
        radius = 0.0
        origin = exit_point
    else:
        exit_point = _canonical_mm(coarse, *maps.root)
        direction = np.asarray(maps.root_direction, dtype=np.float64)
        radius = float(maps.root_radius_mm)
        origin = exit_point + FRAME_ORIGIN_RADII * radius * direction
    below = points[:, 2] <= exit_point[2]
    if np.count_nonzero(below) < 50:
        return None
    points = points[below]
    # The long axis runs from the base (the frame's origin, at the aortic root) to the apex,
    # the heart's most anterior, left and inferior part (the mean of the heart within
    # APEX_DEPTH_MM of its farthest point that way). Not the principal axis of the whole heart:
    # the atria and the right heart make that lie too flat in hearts that are not ellipsoids.
    reach = (points - origin) @ APEX_DIRECTION
    apex = points[reach >= reach.max() - APEX_DEPTH_MM].mean(axis=0)
    axis = apex - origin
    if float(np.linalg.norm(axis)) < 1e-6:
        return None
    axis /= np.linalg.norm(axis)
    # Angles around the long axis are measured from the anterior direction made orthogonal to
    # it, toward the patient's left.
    anterior, left = _anterior_left(axis)
    # The territories turn about the axis from the heart's centre to the apex, their reference
    # taken from the aortic root's bearing around it: a heart rotated about its long axis
    # carries its grooves and its root round together.
    territory_axis = apex - heart_centre
    root_bearing = AORTIC_ROOT_BEARING_DEG
    if float(np.linalg.norm(territory_axis)) < 1e-6:
        territory_axis = axis
    territory_axis = territory_axis / np.linalg.norm(territory_axis)
    territory_anterior, territory_left = _anterior_left(territory_axis)
    to_root = exit_point - heart_centre
    to_root = to_root - float(to_root @ territory_axis) * territory_axis
    if radius > 0 and float(np.linalg.norm(to_root)) >= ROOT_OFF_AXIS_MIN_MM:
        root_bearing = math.degrees(
            math.atan2(float(to_root @ territory_left), float(to_root @ territory_anterior))
        )
    return _Frame(
        exit=exit_point,
        aorta_direction=direction,
        aorta_radius_mm=radius,
        origin=origin,
        long_axis=axis,
        left=left,
        anterior=anterior,
        base_offset_mm=float(np.min((points - origin) @ axis)),
        heart_centre=heart_centre,
        territory_axis=territory_axis,
        territory_anterior=territory_anterior,
        territory_left=territory_left,
        root_bearing_deg=root_bearing,
    )


def _anterior_left(
    axis: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The patient's anterior direction made orthogonal to ``axis`` (unit), and the unit vector
    orthogonal to both toward the patient's left."""
    anterior = np.array([0.0, -1.0, 0.0]) - (-axis[1]) * axis
    if float(np.linalg.norm(anterior)) < 1e-6:
        # an axis running straight front to back: take the superior direction instead
        anterior = np.array([0.0, 0.0, 1.0]) - axis[2] * axis
    anterior /= np.linalg.norm(anterior)
    left = np.cross(axis, anterior)
    if left[0] < 0:
        left = -left
    return anterior, left


def _territory_angle(frame: _Frame, p: npt.NDArray[np.float64]) -> float:
    """Angle (deg) of a point around the heart's axis from its centre to the apex, measured from
    a reference that turns with the heart: the aortic root's bearing less
    :data:`AORTIC_ROOT_BEARING_DEG` (0 there, +90 toward the patient's left, 180 posterior)."""
    v = p - frame.heart_centre
    bearing = math.degrees(
        math.atan2(float(v @ frame.territory_left), float(v @ frame.territory_anterior))
    )
    turned = bearing - frame.root_bearing_deg + AORTIC_ROOT_BEARING_DEG
    return (turned + 180.0) % 360.0 - 180.0


class _TubeSlices:
    """:meth:`Tube.at` of one tracked tube (or none), found once per slice: many candidates
    share a slice."""

    def __init__(self, tube: Tube | None) -> None:
        self._tube = tube
        self._at: dict[int, tuple[float, float, float] | None] = {}

    def at(self, z: int) -> tuple[float, float, float] | None:
        if z not in self._at:
            self._at[z] = self._tube.at(z) if self._tube is not None else None
        return self._at[z]


def _tube_wall_distance(tube: _TubeSlices, z: int, j: float, i: float, sy: float) -> float:
    """Distance (mm) of a point from the wall of a tracked tube in slice ``z``; inf if absent."""
    hit = tube.at(z)
    if hit is None:
        return math.inf
    r, c, radius = hit
    return abs(float(np.hypot(j - r, i - c)) * sy - radius)


def _tube_centre_distance(tube: _TubeSlices, z: int, j: float, i: float, sy: float) -> float:
    hit = tube.at(z)
    if hit is None:
        return math.inf
    return float(np.hypot(j - hit[0], i - hit[1])) * sy


def _angle_deg(frame: _Frame, v: npt.NDArray[np.float64]) -> float:
    """Angle of ``v`` around the long axis: 0 anterior, +90 the patient's left, 180 posterior."""
    return math.degrees(math.atan2(float(v @ frame.left), float(v @ frame.anterior)))


def _artery(
    frame: _Frame, p: npt.NDArray[np.float64], feat: dict[str, float]
) -> tuple[Artery, str]:
    """Artery of a coronary candidate at canonical position ``p`` (mm), and why.

    Posterior (beyond :data:`POSTERIOR_GROOVE_DEG`): the crux and posterior interventricular
    groove (RCA), or the end of the LCX when still at the base on the left short of
    :data:`CRUX_DEG`. Right of :data:`RCA_LAD_BOUNDARY_DEG`: RCA. At the base and left of
    :data:`LAD_LCX_BASE_DEG`, or a little short of it when running around the base (see
    :data:`BIFURCATION_BAND_DEG`): LCX. Else up to :data:`LAD_LCX_APICAL_DEG` (up to
    :data:`LAD_LCX_DISTAL_DEG` from :data:`APICAL_FROM_MM` toward the apex): LAD (with its
    diagonal territory); beyond: LCX territory (lateral wall).
    """
    d = p - frame.origin
    a = float(d @ frame.long_axis)
    theta = _territory_angle(frame, p)
    at_base = a <= AV_GROOVE_BAND_MM
    where = f"{a:.0f} mm toward the apex, {theta:+.0f} deg around the long axis"
    if abs(theta) >= POSTERIOR_GROOVE_DEG:
        left_of_centre = float(p[0] - frame.heart_centre[0])
        if a <= POSTERIOR_BASE_MM and left_of_centre >= CRUX_LEFT_MM:
            return Artery.LCX, (
                f"left atrioventricular groove, posterior, {left_of_centre:.0f} mm left of the "
                f"heart's centre ({where})"
            )
        if not at_base or theta < 0 or theta >= CRUX_DEG:
            return Artery.RCA, f"posterior interventricular groove / crux ({where})"
        return Artery.LCX, f"left atrioventricular groove, posterior ({where})"
    if theta < RCA_LAD_BOUNDARY_DEG or (a < 0.0 and theta < ROOT_LEVEL_LEFT_DEG):
        return Artery.RCA, f"right atrioventricular groove ({where})"
    right_of_root = float(frame.origin[0] - p[0])
    if theta < LAD_LCX_BASE_DEG and right_of_root >= RIGHT_OF_ROOT_MM:
        return Artery.RCA, (
            f"right atrioventricular groove, {right_of_root:.0f} mm to the right of the aortic "
            f"root ({where})"
        )
    if at_base and theta > LAD_LCX_BASE_DEG:
        return Artery.LCX, f"left atrioventricular groove ({where})"
    if (
        at_base
        and theta > LAD_LCX_BASE_DEG - BIFURCATION_BAND_DEG
        and feat.get("run_sd_mm", 0.0) >= RUN_MIN_SD_MM
        and feat.get("run_elongation", 0.0) >= RUN_MIN_ELONGATION
        and feat.get("run_around_long_axis", 0.0)
        >= RUN_DOMINANCE * feat.get("run_along_long_axis", 1.0)
    ):
        return Artery.LCX, f"left atrioventricular groove, runs around the base ({where})"
    lateral_limit = LAD_LCX_APICAL_DEG if a < APICAL_FROM_MM else LAD_LCX_DISTAL_DEG
    if theta <= lateral_limit:
        return Artery.LAD, f"anterior interventricular groove ({where})"
    return Artery.LCX, f"left lateral wall, circumflex territory ({where})"


#: Candidates with up to this many (pixel, ring offset) pairs have their rings listed pixel by
#: pixel; larger ones are dilated in windows (the same rings, at a cost that grows with the area).
RING_PAIRS_LISTED = 40_000


@functools.cache
def _ring_disk(spacing_mm: tuple[float, float]) -> npt.NDArray[np.bool_]:
    """In-plane disk of radius :data:`RING_MM` for pixels of ``spacing_mm`` (rows, columns)."""
    reach = max(1, math.ceil(RING_MM / min(spacing_mm)))
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    disk = np.asarray((yy * spacing_mm[0]) ** 2 + (xx * spacing_mm[1]) ** 2 <= RING_MM**2)
    disk.setflags(write=False)
    return disk


def _surroundings(
    hu: npt.NDArray[np.generic], cand: Candidate, spacing_mm: tuple[float, float], threshold: float
) -> tuple[float, float]:
    """Median HU and fat fraction of the ring of pixels around a candidate, slice by slice.

    The ring is the candidate dilated by :data:`RING_MM` in-plane, less the candidate and any other
    pixel at or above the threshold. A coronary plaque sits in a vessel wall in epicardial fat; a
    noise blob or a valve or annulus calcification is surrounded by blood and muscle.

    Notes
    -----
    Each 2-D component has its own ring (rings of components sharing a slice may overlap and then
    count twice). The median and the fat share do not depend on the order in which the ring's
    pixels are gathered, so all components are handled at once: small candidates (most of
    them) by listing every pixel plus every disk offset, larger ones by dilating a stack of
    windows, one per component.
    """
    comps = cand.components
    if not comps:
        return TISSUE_BASELINE_HU, 0.0
    n_rows, n_cols = hu.shape[1:]
    disk = _ring_disk((float(spacing_mm[0]), float(spacing_mm[1])))
    reach = disk.shape[0] // 2
    lengths = np.array([c.rows.size for c in comps])
    rows = np.concatenate([c.rows for c in comps]).astype(np.int64)
    cols = np.concatenate([c.cols for c in comps]).astype(np.int64)
    layer = np.repeat(np.arange(len(comps)), lengths)
    slices = np.array([c.slice_index for c in comps], dtype=np.int64)
    if rows.size * np.count_nonzero(disk) <= RING_PAIRS_LISTED:
        dy, dx = np.nonzero(disk)
        ring_r = rows[:, None] + (dy - reach)[None, :]
        ring_c = cols[:, None] + (dx - reach)[None, :]
        in_image = (ring_r >= 0) & (ring_r < n_rows) & (ring_c >= 0) & (ring_c < n_cols)
        keys = np.unique(((layer[:, None] * n_rows + ring_r) * n_cols + ring_c)[in_image])
        # the candidate's own pixels are among the keys (the disk holds its centre)
        beside = np.ones(keys.size, dtype=bool)
        beside[np.searchsorted(keys, (layer * n_rows + rows) * n_cols + cols)] = False
        keys = keys[beside]
        ring_layer, in_layer = np.divmod(keys, n_rows * n_cols)
        ring_rows, ring_cols = np.divmod(in_layer, n_cols)
        values = np.asarray(hu[slices[ring_layer], ring_rows, ring_cols], dtype=np.float32)
        ring_hu = values[values < threshold]
    else:
        ring_hu = _ring_in_windows(hu, disk, slices, layer, rows, cols, threshold)
    if ring_hu.size == 0:
        return TISSUE_BASELINE_HU, 0.0
    return float(np.median(ring_hu)), float(np.mean(ring_hu < FAT_RING_HU))


def _ring_in_windows(
    hu: npt.NDArray[np.generic],
    disk: npt.NDArray[np.bool_],
    slices: npt.NDArray[np.int64],
    layer: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    threshold: float,
) -> npt.NDArray[np.float32]:
    """The ring pixels' HU (see :func:`_surroundings`), each component dilated in its own layer
    of a stack of windows of a common size, anchored at its bounding box less the reach."""
    n_rows, n_cols = hu.shape[1:]
    reach = disk.shape[0] // 2
    n_layers = slices.size
    starts = np.flatnonzero(np.r_[True, layer[1:] != layer[:-1]])
    row0 = np.minimum.reduceat(rows, starts) - reach
    col0 = np.minimum.reduceat(cols, starts) - reach
    height = int((np.maximum.reduceat(rows, starts) - row0).max()) + reach + 1
    width = int((np.maximum.reduceat(cols, starts) - col0).max()) + reach + 1
    mask = np.zeros((n_layers, height, width), dtype=bool)
    mask[layer, rows - row0[layer], cols - col0[layer]] = True
    # the disk is a stack of centred row runs: dilate along rows by each run's half-width
    # (cumulative sums), then shift the runs into place
    summed = np.zeros((n_layers, height, width + 1), dtype=np.int32)
    np.cumsum(mask, axis=2, out=summed[:, :, 1:])
    grown = np.zeros_like(mask)
    along_row: dict[int, npt.NDArray[np.bool_]] = {}
    for dy in range(-reach, reach + 1):
        run = np.flatnonzero(disk[dy + reach])
        if run.size == 0:
            continue
        half = int(run[-1]) - reach
        if half not in along_row:
            hi = np.minimum(np.arange(width) + half + 1, width)
            lo = np.maximum(np.arange(width) - half, 0)
            along_row[half] = summed[:, :, hi] > summed[:, :, lo]
        spread = along_row[half]
        if dy >= 0:
            grown[:, dy:, :] |= spread[:, : height - dy, :]
        else:
            grown[:, :dy, :] |= spread[:, -dy:, :]
    r_index = row0[:, None] + np.arange(height)[None, :]
    c_index = col0[:, None] + np.arange(width)[None, :]
    inside = ((r_index >= 0) & (r_index < n_rows))[:, :, None] & (
        (c_index >= 0) & (c_index < n_cols)
    )[:, None, :]
    window = np.asarray(
        hu[
            slices[:, None, None],
            np.clip(r_index, 0, n_rows - 1)[:, :, None],
            np.clip(c_index, 0, n_cols - 1)[:, None, :],
        ],
        dtype=np.float32,
    )
    ring = grown & ~mask & inside & (window < threshold)
    return np.asarray(window[ring], dtype=np.float32)


def _lazy_surroundings(
    hu: npt.NDArray[np.generic], cand: Candidate, spacing_mm: tuple[float, float], threshold: float
) -> Callable[[], tuple[float, float]]:
    """:func:`_surroundings` of a candidate, measured on the first call only (most candidates
    are decided before their surroundings matter)."""
    memo: list[tuple[float, float]] = []

    def surroundings() -> tuple[float, float]:
        if not memo:
            memo.append(_surroundings(hu, cand, spacing_mm, threshold))
        return memo[0]

    return surroundings


def _location_mm(
    frame_c: CanonicalFrame, volume: CTVolume, zc: float, yc: float, xc: float
) -> tuple[float, float, float]:
    zs, ys, xs = frame_c.to_stored(zc, yc, xc)
    point = volume.geometry.to_patient_mm(zs, ys, xs)
    return float(point[0]), float(point[1]), float(point[2])


def detect_coronary_calcium(volume: CTVolume, candidates: CandidateSet) -> CoronaryLabelling:
    """Label every candidate as coronary (with its artery) or excluded (with the reason).

    Parameters
    ----------
    volume
        The non-contrast cardiac CT in HU, ``(z, y, x)``, that ``candidates`` were found in.
    candidates
        The calcified candidates of :func:`scoring.find_candidates`.

    Returns
    -------
    CoronaryLabelling
        One :class:`~scoring.result.LesionLabel` per candidate, warnings (metal, detection
        problems) and the anatomy found. Pass ``labels`` to :func:`scoring.score_candidates`
        with ``roi="auto"``.

    Raises
    ------
    InvalidVolumeError
        When ``candidates`` were found in a volume of another shape.

    Notes
    -----
    Deterministic and free of trained parameters; every exclusion carries a ``detail`` naming the
    measurement that decided it.
    """
    if candidates.shape != volume.shape:
        raise InvalidVolumeError(
            f"the candidates were found in a volume of shape {candidates.shape}, not in this one "
            f"{volume.shape}: pass the volume given to find_candidates"
        )
    frame_c = CanonicalFrame.of(volume)
    canonical = frame_c.view(volume.hu)
    coarse = CoarseGrid.of(canonical, frame_c)
    f = coarse.factor
    maps = find_anatomy(coarse, canonical)
    heart = _HeartVoxels.of(maps, coarse)
    frame = _cardiac_frame(maps, coarse, heart)
    warnings: list[ScoringWarning] = []
    if not frame_c.axial:
        warnings.append(
            ScoringWarning(
                WarningCode.DETECTION,
                "the series is not axial; automatic coronary labelling assumes axial slices: "
                "review every lesion",
            )
        )
    for problem in maps.problems:
        warnings.append(
            ScoringWarning(
                WarningCode.DETECTION,
                f"automatic coronary detection: {problem}; review the labels or supply reader "
                "labels",
            )
        )
    sz, sy, sx = coarse.spacing_mm
    sigma = maps.noise_sd_hu if math.isfinite(maps.noise_sd_hu) else 20.0
    pixel_spacing = volume.geometry.pixel_spacing_mm
    threshold = candidates.parameters.threshold_hu
    labels: dict[int, LesionLabel] = {}
    features: dict[int, dict[str, float]] = {}
    metal_ids: list[int] = []
    bulk = _bulk_features(candidates, frame_c, coarse, maps, frame)
    # the features as Python floats, column by column (one conversion per feature, not one per
    # candidate and feature)
    columns = {name: np.asarray(values, dtype=np.float64).tolist() for name, values in bulk.items()}
    names = [name for name in bulk if name[0] != "_"]
    tubes = (_TubeSlices(maps.descending), _TubeSlices(maps.ascending))
    named = [columns[name] for name in names]
    for k, cand in enumerate(candidates.candidates):
        feat = dict(zip(names, [column[k] for column in named], strict=True))
        cz, cj, ci = columns["_z"][k], columns["_j"][k], columns["_i"][k]
        p = np.array([columns["_x_fine"][k] * (sx / f), columns["_y_fine"][k] * (sy / f), cz * sz])
        label = _wider_than_a_coronary(
            _decide(
                cand,
                feat,
                maps,
                frame,
                p,
                (cz, cj, ci),
                coarse,
                sigma,
                _lazy_surroundings(volume.hu, cand, pixel_spacing, threshold),
                np.array([bulk["_run_x"][k], bulk["_run_y"][k], bulk["_run_z"][k]])
                if "_run_x" in bulk
                else None,
                tubes,
            ),
            feat,
        )
        if label.excluded is ExclusionReason.METAL:
            metal_ids.append(cand.lesion_id)
        labels[cand.lesion_id] = label
        features[cand.lesion_id] = feat
    if metal_ids:
        warnings.append(
            ScoringWarning(
                WarningCode.METAL,
                f"metal in the image ({len(metal_ids)} object(s) at or above {METAL_HU:.0f} HU, "
                f"candidates {', '.join(str(i) for i in metal_ids[:10])}): streaks may raise or "
                "hide calcium nearby; review the lesions around it",
            )
        )
    return CoronaryLabelling(
        labels=labels,
        warnings=tuple(warnings),
        anatomy=_anatomy_record(maps, frame, coarse, frame_c, volume, heart),
        features=features,
    )


def _bulk_features(
    candidates: CandidateSet,
    frame_c: CanonicalFrame,
    coarse: CoarseGrid,
    maps: AnatomyMaps,
    frame: _Frame | None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Per candidate, the mean of each anatomy map over its voxels, its centroid and, with an
    aortic root, how far its voxels reach from the aortic axis (innermost and outermost).

    Names starting with ``_`` are coordinates: coarse ``_z, _j, _i`` and fine ``_y_fine,
    _x_fine`` (canonical).
    """
    n = len(candidates.candidates)
    if n == 0:
        return {}
    # A few hundred voxels describe a candidate's place as well as all of a vertebra's: every
    # step-th voxel of the candidate, in the order of Candidate.voxel_indices (component by
    # component), taken from each component without listing all of the candidate's voxels.
    planes: list[int] = []
    rows: list[npt.NDArray[np.int32]] = []
    cols: list[npt.NDArray[np.int32]] = []
    counts = np.zeros(n, dtype=np.float64)
    for k, cand in enumerate(candidates.candidates):
        step = max(1, sum(comp.rows.size for comp in cand.components) // MAX_FEATURE_VOXELS)
        offset = 0
        for comp in cand.components:
            first = -offset % step
            rows.append(comp.rows[first::step])
            cols.append(comp.cols[first::step])
            planes.append(comp.slice_index)
            offset += comp.rows.size
        counts[k] = -(-offset // step)
    per_comp = np.array([part.size for part in rows], dtype=np.int64)
    ids = np.repeat(np.arange(n), counts.astype(np.int64))
    zc, yc, xc = frame_c.to_canonical(
        np.repeat(np.array(planes, dtype=np.int32), per_comp),
        np.concatenate(rows),
        np.concatenate(cols),
    )
    zc = np.clip(zc, 0, coarse.hu.shape[0] - 1)
    jj, ii = coarse.from_fine(yc, xc)

    def mean(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.bincount(ids, weights=np.asarray(values, np.float64), minlength=n) / counts

    # the distance maps are asked once per sampled coarse voxel (candidates share voxels); each
    # answer depends on its voxel only
    voxel, inverse = np.unique(
        np.ravel_multi_index((zc, jj, ii), maps.heart.shape), return_inverse=True
    )
    inverse = inverse.reshape(-1)
    vz, vj, vi = np.unravel_index(voxel, maps.heart.shape)
    near_heart = maps.heart_distance.at(vz, vj, vi, HEART_DISTANCE_CAP_MM)
    heart_distance = near_heart[inverse]
    reach: dict[str, npt.NDArray[np.float64]] = {}
    # the shape of each candidate: principal axes of its voxels (mm), the first the direction
    # in which it runs
    sz, sy, sx = coarse.spacing_mm
    f = coarse.factor
    pts = np.stack([xc * (sx / f), yc * (sy / f), zc * sz], axis=-1)
    # per-candidate sums by bincount: the same additions, in the same order, as np.add.at
    centre = np.zeros((n, 3))
    for a in range(3):
        centre[:, a] = np.bincount(ids, weights=pts[:, a], minlength=n)
    centre /= counts[:, None]
    dev = pts - centre[ids]
    cov = np.zeros((n, 3, 3))
    for a in range(3):
        for b in range(a, 3):
            cov[:, a, b] = np.bincount(ids, weights=dev[:, a] * dev[:, b], minlength=n)
            cov[:, b, a] = cov[:, a, b]
    cov /= counts[:, None, None]
    eigval, eigvec = np.linalg.eigh(cov)
    sd = np.sqrt(np.maximum(eigval, 0.0))
    run = eigvec[:, :, 2]
    reach["_run_x"], reach["_run_y"], reach["_run_z"] = run[:, 0], run[:, 1], run[:, 2]
    # length along the run against width across it (standard deviations)
    reach["run_elongation"] = sd[:, 2] / np.maximum(sd[:, 1], 1e-3)
    reach["run_sd_mm"] = sd[:, 2]
    reach["width_sd_mm"] = sd[:, 1]
    reach["thickness_sd_mm"] = sd[:, 0]
    if frame is not None and frame.aorta_radius_mm > 0:
        sz, sy, sx = coarse.spacing_mm
        f = coarse.factor
        points = np.stack([xc * (sx / f), yc * (sy / f), zc * sz], axis=-1) - frame.exit
        along = points @ frame.aorta_direction
        off_axis = np.linalg.norm(points - along[:, None] * frame.aorta_direction, axis=1)
        # every candidate has voxels, listed candidate by candidate: reduce over each run
        starts = np.cumsum(counts.astype(np.int64)) - counts.astype(np.int64)
        outer = np.maximum(np.maximum.reduceat(off_axis, starts), 0.0)
        inner = np.minimum.reduceat(off_axis, starts)
        # the span across the candidate around the aortic circumference, at its mean bearing
        radial = points - along[:, None] * frame.aorta_direction
        bearing = np.zeros((n, 3))
        for a in range(3):
            bearing[:, a] = np.bincount(ids, weights=radial[:, a], minlength=n)
        tangent = np.cross(frame.aorta_direction, bearing)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
        across = np.einsum("ij,ij->i", points, tangent[ids])
        hi = np.maximum.reduceat(across, starts)
        lo = np.minimum.reduceat(across, starts)
        # the bearing (around the long axis) of each candidate's outermost voxel
        last = np.lexsort((off_axis, ids))[np.cumsum(counts.astype(np.int64)) - 1]
        tip = radial[last]
        reach |= {
            "aorta_tip_bearing_deg": np.degrees(np.arctan2(tip @ frame.left, tip @ frame.anterior)),
            "aorta_off_axis_max_mm": outer,
            "aorta_off_axis_min_mm": inner,
            "aorta_circumferential_mm": hi - lo,
            "aorta_radius_mm": np.full(n, frame.aorta_radius_mm),
        }

    return reach | {
        "depth_mm": mean(np.minimum(maps.depth_mm.at(vz, vj, vi)[inverse], FAR_MM)),
        "heart_distance_mm": mean(heart_distance),
        # the lung matters only near the heart (pericardium): measured there, capped elsewhere
        "lung_distance_mm": mean(
            maps.lung_distance.at(
                vz, vj, vi, LUNG_DISTANCE_CAP_MM, where=near_heart < HEART_DISTANCE_CAP_MM
            )[inverse]
        ),
        "in_cavity": mean(maps.cavity[zc, jj, ii]),
        "in_lung": mean(maps.lungs[zc, jj, ii]),
        "outside_air": mean(maps.outside_air[zc, jj, ii]),
        "_z": mean(zc),
        "_j": mean(jj),
        "_i": mean(ii),
        "_y_fine": mean(yc),
        "_x_fine": mean(xc),
    }


def _mm_at_most(value: float, cap: float) -> str:
    """A capped distance for a detail line: ``"23 mm"``, or ``"60 mm or more"`` at the cap."""
    return f"{cap:.0f} mm or more" if value >= cap else f"{value:.0f} mm"


def _ostial_fat_min(frame: _Frame, p: npt.NDArray[np.float64]) -> float:
    """Share of fat around a calcification at the aortic root above which it is taken for the
    wall of a coronary ostium rather than of the aorta: lower on the left coronary sinus side,
    where the left main leaves the root."""
    from_exit = p - frame.exit
    radial = from_exit - float(from_exit @ frame.aorta_direction) * frame.aorta_direction
    theta = _angle_deg(frame, radial)
    if LEFT_OSTIUM_DEG[0] <= theta <= LEFT_OSTIUM_DEG[1]:
        return LEFT_OSTIAL_FAT_MIN
    return OSTIAL_FAT_MIN


def _leaving_ostium(frame: _Frame, feat: dict[str, float]) -> LesionLabel | None:
    """A calcification at the aortic root that runs outward from it on the side of a coronary
    sinus (not toward the non-coronary sinus, posterior): the first part of the left main
    (bearing at least :data:`OSTIUM_SPLIT_DEG`) or of the RCA; ``None`` otherwise."""
    bearing = feat.get("aorta_tip_bearing_deg", 180.0)
    if not _runs_outward(frame, feat) or abs(bearing) > OSTIUM_MAX_BEARING_DEG:
        return None
    artery = Artery.LM if bearing >= OSTIUM_SPLIT_DEG else Artery.RCA
    side = "left" if artery is Artery.LM else "right"
    return LesionLabel(
        artery=artery,
        detail=f"leaves the aortic root on its {side} side: runs "
        f"{feat['aorta_off_axis_max_mm'] - feat['aorta_off_axis_min_mm']:.0f} mm outward, to "
        f"{feat['aorta_off_axis_max_mm'] - frame.aorta_radius_mm:.0f} mm outside the aortic "
        "wall (wall and valve calcium stay within the root)",
    )


def _runs_outward(frame: _Frame, feat: dict[str, float]) -> bool:
    """Whether a calcification at the aortic root runs outward from it, as a coronary artery
    leaving its sinus does: from the wall (starting within :data:`AORTIC_WALL_MARGIN_MM` of
    it) :data:`LEFT_MAIN_RADIAL_SPAN_MM` or more radially, to at least
    :data:`OSTIUM_OUTWARD_MM` outside it, rather than lying in the wall."""
    radius = frame.aorta_radius_mm
    inner = feat.get("aorta_off_axis_min_mm", math.inf)
    outer = feat.get("aorta_off_axis_max_mm", -math.inf)
    return (
        radius > 0
        and outer - inner >= LEFT_MAIN_RADIAL_SPAN_MM
        and outer - radius >= OSTIUM_OUTWARD_MM
        and inner - radius <= AORTIC_WALL_MARGIN_MM
    )


def _leaves_left_sinus(frame: _Frame, feat: dict[str, float], fat_fraction: float) -> bool:
    """Whether a calcification at the aortic root runs outward to the left, in fat, as the left
    main does (see :data:`LEFT_MAIN_RADIAL_SPAN_MM`): its outermost point lies on the root's
    left side (bearing around the long axis from about anterior to posterior)."""
    bearing = feat.get("aorta_tip_bearing_deg", -180.0)
    if bearing < LEFT_MAIN_BEARING_MIN_DEG or fat_fraction < FAT_CONTACT_MIN:
        return False
    radius = frame.aorta_radius_mm
    inner = feat.get("aorta_off_axis_min_mm", math.inf)
    outer = feat.get("aorta_off_axis_max_mm", -math.inf)
    if outer - inner >= LEFT_MAIN_RADIAL_SPAN_MM and outer > radius:
        return True
    return inner > radius and fat_fraction >= LEFT_OSTIAL_FAT_MIN


def _wider_than_a_coronary(label: LesionLabel, feat: dict[str, float]) -> LesionLabel:
    """``label``, or an exclusion when it names an artery for calcium wider across its course
    than a coronary artery can be (:data:`CORONARY_MAX_WIDTH_SD_MM`): a pericardial plate when
    flat, a calcified lymph node or mass when compact."""
    width = feat.get("width_sd_mm", 0.0)
    if label.artery is None or width <= CORONARY_MAX_WIDTH_SD_MM:
        return label
    plate = feat.get("thickness_sd_mm", 0.0) <= PLATE_THICKNESS_SHARE * width
    what = "a plate (pericardium)" if plate else "a compact mass (a calcified lymph node)"
    return LesionLabel(
        excluded=ExclusionReason.PERICARDIUM if plate else ExclusionReason.OUTSIDE_HEART,
        detail=f"too wide for a coronary artery: spreads {width:.1f} mm (SD) across its course "
        f"(a coronary calcification at most about {CORONARY_MAX_WIDTH_SD_MM:.1f} mm); "
        f"{what}, though placed like the {label.artery.value}",
    )


def _decide(
    cand: Candidate,
    feat: dict[str, float],
    maps: AnatomyMaps,
    frame: _Frame | None,
    p: npt.NDArray[np.float64],
    centre: tuple[float, float, float],
    coarse: CoarseGrid,
    sigma: float,
    surroundings: Callable[[], tuple[float, float]],
    run: npt.NDArray[np.float64] | None,
    tubes: tuple[_TubeSlices, _TubeSlices],
) -> LesionLabel:
    descending, ascending = tubes
    sy = coarse.spacing_mm[1]
    _, cj, ci = centre
    z_index = round(centre[0])
    if cand.peak_hu >= METAL_HU:
        return LesionLabel(
            excluded=ExclusionReason.METAL,
            detail=f"peak {cand.peak_hu:.0f} HU is metal (>= {METAL_HU:.0f} HU)",
        )
    deep = feat["depth_mm"] > DEEP_MM
    if cand.volume_mm3 >= BONE_VOLUME_MM3 and not deep:
        return LesionLabel(
            excluded=ExclusionReason.BONE,
            detail=f"large dense body ({cand.volume_mm3:.0f} mm3): vertebra, sternum or rib",
        )
    if feat["in_lung"] >= 0.5:
        return LesionLabel(excluded=ExclusionReason.OUTSIDE_HEART, detail="in the lung")
    if feat["in_cavity"] < 0.5:
        # The heart lies between the lungs: even where it touches the chest wall its coronary
        # arteries lie within the lungs' hull; a heart mask that follows the chest wall's
        # muscle must not bring the ribs beside it in.
        return LesionLabel(
            excluded=ExclusionReason.BONE,
            detail="in the chest wall or spine, outside the lungs' hull (rib, sternum, "
            "vertebra or costal cartilage)",
        )
    desc_wall = _tube_wall_distance(descending, z_index, cj, ci, sy)
    if desc_wall <= AORTIC_WALL_MARGIN_MM or (
        _tube_centre_distance(descending, z_index, cj, ci, sy) < desc_wall
    ):
        return LesionLabel(
            excluded=ExclusionReason.AORTA,
            detail=f"wall of the descending aorta ({desc_wall:.1f} mm from the tracked wall)",
        )
    asc_wall = _tube_wall_distance(ascending, z_index, cj, ci, sy)
    near_ostia = (
        frame is not None
        and frame.aorta_radius_mm > 0
        and float((p - frame.exit) @ frame.aorta_direction) >= -OSTIUM_ABOVE_EXIT_MM
    )
    if asc_wall <= AORTIC_WALL_MARGIN_MM and not (
        frame is not None and near_ostia and surroundings()[1] >= _ostial_fat_min(frame, p)
    ):
        ostial = _leaving_ostium(frame, feat) if frame is not None and near_ostia else None
        if ostial is not None:
            return ostial
        return LesionLabel(
            excluded=ExclusionReason.AORTA,
            detail=f"wall of the ascending aorta ({asc_wall:.1f} mm from the tracked wall)",
        )
    if feat["heart_distance_mm"] > EPICARDIAL_REACH_MM:
        return LesionLabel(
            excluded=ExclusionReason.OUTSIDE_HEART,
            detail=f"{_mm_at_most(feat['heart_distance_mm'], HEART_DISTANCE_CAP_MM)} from the "
            "heart's surface",
        )
    if frame is None:
        return LesionLabel(
            excluded=ExclusionReason.OUTSIDE_HEART,
            detail="the aortic root or the heart was not found, so coronary territories "
            "are unknown",
        )
    # position along and around the aortic axis, from where the aorta enters the heart
    from_exit = p - frame.exit
    along = float(from_exit @ frame.aorta_direction)
    radial = from_exit - along * frame.aorta_direction
    off_axis = float(np.linalg.norm(radial))
    d = p - frame.origin
    feat.update(
        {
            "aorta_along_mm": along,
            "aorta_off_axis_mm": off_axis,
            "axial_mm": float(d @ frame.long_axis),
            "angle_deg": _angle_deg(frame, d),
        }
    )
    radius = frame.aorta_radius_mm
    has_aorta = radius > 0
    if has_aorta and along < -OSTIUM_ABOVE_EXIT_MM and off_axis <= radius + LEFT_MAIN_REACH_MM:
        return LesionLabel(
            excluded=ExclusionReason.AORTA,
            detail=f"beside the ascending aorta {-along:.0f} mm above where it enters the heart, "
            "above the coronary ostia",
        )
    ring_hu, fat_fraction = surroundings()
    feat["ring_hu"] = ring_hu
    feat["fat_fraction"] = fat_fraction
    inside_tissue = deep or fat_fraction < FAT_CONTACT_MIN
    in_ostial_span = has_aorta and -OSTIUM_ABOVE_EXIT_MM <= along <= ROOT_WALL_RADII * radius
    if (
        in_ostial_span
        and off_axis <= radius + LEFT_MAIN_REACH_MM
        and _leaves_left_sinus(frame, feat, fat_fraction)
    ):
        return LesionLabel(
            artery=Artery.LM,
            detail=f"left main: runs outward from the left side of the aortic root, "
            f"{feat['aorta_off_axis_min_mm'] - radius:+.0f} to "
            f"{feat['aorta_off_axis_max_mm'] - radius:+.0f} mm from the aortic wall, in fat "
            f"({100 * fat_fraction:.0f} % around it)",
        )
    in_root_span = has_aorta and -radius <= along <= ROOT_LENGTH_RADII * radius
    if in_ostial_span and inside_tissue and not deep and fat_fraction >= OSTIAL_VESSEL_FAT_MIN:
        ostial = _leaving_ostium(frame, feat)
        if ostial is not None:
            return ostial
    if in_root_span and inside_tissue and off_axis <= radius + VALVE_MARGIN_MM:
        return LesionLabel(
            excluded=ExclusionReason.AORTIC_VALVE,
            detail=f"aortic valve or root: {off_axis:.0f} mm from the aortic axis (radius "
            f"{radius:.0f} mm), {along:.0f} mm down it from where the aorta enters the heart",
        )
    if (
        in_ostial_span
        and off_axis <= radius + AORTIC_WALL_MARGIN_MM
        and fat_fraction < _ostial_fat_min(frame, p)
    ):
        return LesionLabel(
            excluded=ExclusionReason.AORTA,
            detail=f"wall of the aortic root ({off_axis - radius:+.0f} mm from the wall)",
        )
    if sigma > 0:
        feat["peak_sd"] = (cand.peak_hu - ring_hu) / sigma
    small = cand.max_area_mm2 < NOISE_SMALL_AREA_MM2
    peak_sd = NOISE_SMALL_PEAK_SD if small else NOISE_PEAK_SD
    if cand.peak_hu < ring_hu + peak_sd * sigma and (
        cand.max_area_mm2 < NOISE_MAX_AREA_MM2 or fat_fraction < NOISE_FAT_MAX
    ):
        return LesionLabel(
            excluded=ExclusionReason.NOISE,
            detail=f"faint ({cand.max_area_mm2:.1f} mm2 at most): peak {cand.peak_hu:.0f} HU "
            f"is within {peak_sd:.0f} noise SDs ({sigma:.0f} HU) of its surroundings "
            f"({ring_hu:.0f} HU)",
        )
    if inside_tissue:
        theta = feat["angle_deg"]
        mitral_side = theta >= MITRAL_LATERAL_DEG or abs(theta) >= MITRAL_POSTERIOR_DEG
        if mitral_side and feat["axial_mm"] <= MITRAL_REACH_MM:
            return LesionLabel(
                excluded=ExclusionReason.MITRAL_ANNULUS,
                detail=f"in the muscle of the left atrioventricular junction (fat around it "
                f"{100 * fat_fraction:.0f} %, {feat['depth_mm']:.0f} mm deep): mitral annulus",
            )
        band_sd = feat.get("run_sd_mm", 0.0)
        if band_sd >= ANNULAR_BAND_SD_MM and feat["axial_mm"] <= MITRAL_REACH_MM:
            return LesionLabel(
                excluded=ExclusionReason.MITRAL_ANNULUS,
                detail=f"a band of calcium some {math.sqrt(12.0) * band_sd:.0f} mm long in the "
                f"muscle at the base (fat around it {100 * fat_fraction:.0f} %): annular "
                "calcification; a coronary plaque that long lies in the groove's fat",
            )
        if deep or not INSIDE_HEART_MM <= feat["heart_distance_mm"] < LOW_FAT_PLAQUE_MM:
            return LesionLabel(
                excluded=ExclusionReason.NOISE,
                detail=f"inside the blood pool or myocardium (fat around it "
                f"{100 * fat_fraction:.0f} %, {feat['depth_mm']:.0f} mm deep), where no "
                "coronary artery runs",
            )
        # On the heart's surface with little fat around it: a large plaque whose own vessel
        # (lumen, wall) and the muscle beneath fill its surroundings; judged as coronary below.
    if (
        in_ostial_span
        and feat.get("aorta_off_axis_max_mm", math.inf) <= radius + AORTIC_WALL_MARGIN_MM
        and feat.get("aorta_circumferential_mm", 0.0) > OSTIUM_WIDTH_MM
    ):
        return LesionLabel(
            excluded=ExclusionReason.AORTA,
            detail=f"wall of the aortic root: spreads {feat['aorta_circumferential_mm']:.0f} mm "
            f"around it (a coronary ostium is at most {OSTIUM_WIDTH_MM:.0f} mm wide) without "
            f"leaving the wall",
        )
    bearing = _angle_deg(frame, radial)
    if (
        in_ostial_span
        and off_axis <= radius + LEFT_MAIN_REACH_MM
        and abs(bearing) <= OSTIUM_MAX_BEARING_DEG
    ):
        # at the root, outside its wall: the first millimetres of the coronary arteries
        if bearing >= 0:
            return LesionLabel(
                artery=Artery.LM,
                detail=f"left coronary ostium region, {off_axis - radius:.0f} mm outside the "
                "aortic wall",
            )
        return LesionLabel(
            artery=Artery.RCA,
            detail=f"right coronary ostium region, {off_axis - radius:.0f} mm outside the "
            "aortic wall",
        )
    heart_distance = feat["heart_distance_mm"]
    where = (
        f"{heart_distance:.0f} mm from the heart's muscle, "
        f"{feat['lung_distance_mm']:.0f} mm from the lung"
    )
    if heart_distance >= PERICARDIAL_HEART_MM or (
        heart_distance >= CORONARY_HEART_MM and feat["lung_distance_mm"] <= PERICARDIAL_LUNG_MM
    ):
        return LesionLabel(
            excluded=ExclusionReason.PERICARDIUM,
            detail=f"on the outer boundary of the epicardial fat ({where}), where the "
            "pericardium lies; coronary arteries run on the muscle",
        )
    if (
        heart_distance >= CORONARY_HEART_MM
        and -POSTERIOR_GROOVE_DEG < feat["angle_deg"] < RCA_LAD_BOUNDARY_DEG
        and feat["axial_mm"] > RIGHT_GROOVE_REACH_MM
    ):
        return LesionLabel(
            excluded=ExclusionReason.PERICARDIUM,
            detail=f"on the right ventricle's free wall {feat['axial_mm']:.0f} mm toward the "
            f"apex, beyond the right atrioventricular groove, yet {where}: the pericardium "
            "(the fat under it is thin there)",
        )
    if run is not None:
        radial_u = d - float(d @ frame.long_axis) * frame.long_axis
        around = np.cross(frame.long_axis, radial_u)
        around /= max(float(np.linalg.norm(around)), 1e-9)
        feat["run_along_long_axis"] = abs(float(run @ frame.long_axis))
        feat["run_around_long_axis"] = abs(float(run @ around))
    artery, why = _artery(frame, p, feat)
    return LesionLabel(artery=artery, detail=why)


def _anatomy_record(
    maps: AnatomyMaps,
    frame: _Frame | None,
    coarse: CoarseGrid,
    frame_c: CanonicalFrame,
    volume: CTVolume,
    heart: _HeartVoxels,
) -> CardiacAnatomy:
    f = coarse.factor
    half = (f - 1) / 2.0

    def to_mm(z: float, j: float, i: float) -> tuple[float, float, float]:
        return _location_mm(frame_c, volume, z, j * f + half, i * f + half)

    voxel_ml = float(np.prod(coarse.spacing_mm)) / 1000.0
    heart_centre = bounds = apex = None
    if heart.z.size:
        zz, jj, ii = heart.z, heart.j, heart.i
        heart_centre = to_mm(float(zz.mean()), float(jj.mean()), float(ii.mean()))
        lo = to_mm(float(zz.min()), float(jj.min()), float(ii.min()))
        hi = to_mm(float(zz.max()), float(jj.max()), float(ii.max()))
        bounds = (
            (min(lo[0], hi[0]), min(lo[1], hi[1]), min(lo[2], hi[2])),
            (max(lo[0], hi[0]), max(lo[1], hi[1]), max(lo[2], hi[2])),
        )
        if frame is not None:
            k = int(np.argmax((heart.mm - frame.origin) @ frame.long_axis))
            apex = to_mm(float(zz[k]), float(jj[k]), float(ii[k]))

    def tube_mm(tube: Tube | None) -> tuple[tuple[float, float, float], ...]:
        if tube is None:
            return ()
        return tuple(
            to_mm(float(z), float(c[0]), float(c[1]))
            for z, c in zip(tube.slices.tolist(), tube.centres, strict=True)
        )

    root_mm = None
    if frame is not None and frame.aorta_radius_mm > 0:
        sz, sy, sx = coarse.spacing_mm
        o = frame.origin
        root_mm = _location_mm(frame_c, volume, o[2] / sz, o[1] * f / sy, o[0] * f / sx)
    long_axis = None
    if frame is not None:
        # canonical axes run along +L, +P, +S: the frame's vectors are already in LPS
        long_axis = (
            float(frame.long_axis[0]),
            float(frame.long_axis[1]),
            float(frame.long_axis[2]),
        )
    return CardiacAnatomy(
        heart_centre_mm=heart_centre,
        heart_bounds_mm=bounds,
        heart_volume_ml=float(np.count_nonzero(maps.heart)) * voxel_ml,
        apex_mm=apex,
        aortic_root_mm=root_mm,
        aortic_root_radius_mm=maps.root_radius_mm,
        ascending_aorta_mm=tube_mm(maps.ascending),
        descending_aorta_mm=tube_mm(maps.descending),
        lung_volume_ml=float(np.count_nonzero(maps.lungs)) * voxel_ml,
        noise_sd_hu=maps.noise_sd_hu,
        long_axis=long_axis,
    )
