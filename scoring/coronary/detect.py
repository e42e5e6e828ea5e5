"""Decide for every calcified candidate whether it is coronary, and in which artery.

:func:`detect_coronary_calcium` finds the anatomy (:mod:`scoring.coronary.anatomy`) once, then
walks the candidates through explainable rules, in this order, recording the first that applies:

1. **metal**: peak at or above :data:`METAL_HU` (clips, wires, valves; a warning is raised);
2. **bone**: a large dense body (vertebra, sternum, rib) or any calcium in the chest wall;
3. **outside the heart**: in the lungs, the posterior mediastinum, or far from the heart surface;
4. **aorta**: on the wall of the tracked descending or ascending aorta;
5. **aortic valve / root**: inside the heart next to the aortic root;
6. **mitral annulus**: inside the heart, posterior and left of the aortic root, at the base;
7. **noise**: small, faint and single-slice, or deep in the blood pool / myocardium;
8. **pericardium**: on the heart's outer boundary against the lung, away from the base grooves;
9. **coronary**: everything left, on the epicardial surface near the heart, then given an artery
   from its position relative to the aortic root and the heart's long axis.

The artery of a coronary candidate comes from a cardiac frame: origin at the aortic root, ``u``
the heart's long axis (principal axis of the heart mask, pointing to the apex), ``n`` the normal
of the interventricular septal plane (toward the left ventricle: left and posterior, made
orthogonal to ``u``) and ``t`` the anterior direction in that plane. Near the root the left side
is the left main and the right side the RCA; further away the right of the septal plane is RCA
(right atrioventricular groove), the anterior septal/left region is LAD (anterior
interventricular groove), the posterior left region is LCX (left atrioventricular groove) and the
posterior septal region below the base is the RCA's posterior descending branch.

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

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from scoring.coronary.anatomy import AnatomyMaps, Tube, find_anatomy
from scoring.coronary.frame import CanonicalFrame, CoarseGrid
from scoring.parameters import Artery, ExclusionReason
from scoring.result import Candidate, CandidateSet, LesionLabel, ScoringWarning, WarningCode
from scoring.volume import CTVolume

#: Peak attenuation (HU) from which a candidate is taken for metal. Calcium and cortical bone stay
#: below about 2000 HU at 120 kVp; surgical steel saturates the scale (issue 3: "> ~2000-3000").
METAL_HU = 2500.0
#: A candidate with more volume than this (mm^3) and outside the heart's surface is bone.
BONE_VOLUME_MM3 = 1500.0
#: Coronary arteries run in the epicardial fat: at most this far (mm) from the heart's tissue.
EPICARDIAL_REACH_MM = 12.0
#: Deeper than this (mm) inside the heart's soft tissue is blood pool or myocardium, not surface.
DEEP_MM = 5.0
#: The coronary ostia lie at most this far (mm) above the lower end of the tracked aorta.
OSTIUM_ABOVE_ROOT_MM = 12.0
#: Aortic wall: within this distance (mm) of the tracked aortic wall radius.
AORTIC_WALL_MARGIN_MM = 5.0
#: Left main: within this distance (mm) of the aortic wall (its usual length is 5-15 mm).
LEFT_MAIN_REACH_MM = 12.0
#: The right of the septal plane by more than this (mm) is the right coronary territory.
SEPTAL_MARGIN_MM = 12.0
#: Noise: a faint, small candidate: peak below tissue + this many noise SDs and area below
#: :data:`NOISE_MAX_AREA_MM2`, in at most one slice per slice thickness.
NOISE_PEAK_SD = 4.5
NOISE_MAX_AREA_MM2 = 3.0
#: Soft tissue (blood, myocardium) attenuation used as the noise baseline (HU).
TISSUE_BASELINE_HU = 40.0
#: Pericardium: within this distance (mm) of the lung surface and away from the base by this much.
PERICARDIAL_LUNG_MM = 3.0
PERICARDIAL_BELOW_BASE_MM = 25.0


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
    """The cardiac frame in canonical mm (x left, y posterior, z superior)."""

    root: npt.NDArray[np.float64]
    root_radius_mm: float
    long_axis: npt.NDArray[np.float64]
    septal_normal: npt.NDArray[np.float64]
    anterior: npt.NDArray[np.float64]
    base_offset_mm: float
    aorta_direction: npt.NDArray[np.float64]
    """Unit vector down the ascending aorta at the root."""


def _canonical_mm(coarse: CoarseGrid, z: float, j: float, i: float) -> npt.NDArray[np.float64]:
    """Coarse (z, row, column) -> canonical mm vector (x left, y posterior, z superior)."""
    sz, sy, sx = coarse.spacing_mm
    return np.array([(i + 0.5) * sx, (j + 0.5) * sy, z * sz], dtype=np.float64)


def _cardiac_frame(maps: AnatomyMaps, coarse: CoarseGrid) -> _Frame | None:
    if maps.root is None or maps.root_radius_mm is None or not maps.heart.any():
        return None
    root = _canonical_mm(coarse, *maps.root)
    zz, jj, ii = np.nonzero(maps.heart)
    points = np.stack(
        [
            (ii + 0.5) * coarse.spacing_mm[2],
            (jj + 0.5) * coarse.spacing_mm[1],
            zz * coarse.spacing_mm[0],
        ],
        axis=1,
    )
    below = points[:, 2] <= root[2] + OSTIUM_ABOVE_ROOT_MM
    if np.count_nonzero(below) < 50:
        return None
    points = points[below]
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    axis = vt[0]
    # the apex lies anterior, left and inferior of the base
    if float(axis @ np.array([1.0, -1.0, -1.0])) < 0:
        axis = -axis
    septal = np.array([1.0, 1.0, 0.0]) / math.sqrt(2.0)
    septal = septal - (septal @ axis) * axis
    septal /= np.linalg.norm(septal)
    anterior = np.cross(axis, septal)
    if anterior[1] > 0:
        anterior = -anterior
    base_offset = float(np.min((points - root) @ axis))
    return _Frame(
        root=root,
        root_radius_mm=float(maps.root_radius_mm),
        long_axis=axis,
        septal_normal=septal,
        anterior=anterior,
        base_offset_mm=base_offset,
        aorta_direction=(
            maps.root_direction if maps.root_direction is not None else np.array([0.0, 0, -1])
        ),
    )


def _tube_wall_distance(tube: Tube | None, z: int, j: float, i: float, sy: float) -> float:
    """Distance (mm) of a point from the wall of a tracked tube in slice ``z``; inf if absent."""
    if tube is None:
        return math.inf
    hit = tube.at(z)
    if hit is None:
        return math.inf
    r, c, radius = hit
    return abs(float(np.hypot(j - r, i - c)) * sy - radius)


def _tube_centre_distance(tube: Tube | None, z: int, j: float, i: float, sy: float) -> float:
    if tube is None:
        return math.inf
    hit = tube.at(z)
    if hit is None:
        return math.inf
    return float(np.hypot(j - hit[0], i - hit[1])) * sy


def _artery(frame: _Frame, p: npt.NDArray[np.float64]) -> tuple[Artery, str]:
    d = p - frame.root
    s = float(d @ frame.septal_normal)
    t = float(d @ frame.anterior)
    a = float(d @ frame.long_axis)
    near_root = float(np.linalg.norm(d)) <= frame.root_radius_mm + LEFT_MAIN_REACH_MM
    where = f"{a:.0f} mm toward the apex, {s:+.0f} mm from the septal plane, {t:+.0f} mm anterior"
    if near_root:
        if s < 0:
            return Artery.RCA, f"right ostium region of the aortic root ({where})"
        return Artery.LM, f"left ostium region of the aortic root ({where})"
    if s < -SEPTAL_MARGIN_MM:
        return Artery.RCA, f"right atrioventricular groove ({where})"
    if t > 0:
        return Artery.LAD, f"anterior interventricular groove ({where})"
    if s < SEPTAL_MARGIN_MM and a > 0.5 * abs(frame.base_offset_mm) + 20.0:
        return Artery.RCA, f"posterior interventricular groove ({where})"
    return Artery.LCX, f"left atrioventricular groove ({where})"


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

    Notes
    -----
    Deterministic and free of trained parameters; every exclusion carries a ``detail`` naming the
    measurement that decided it.
    """
    frame_c = CanonicalFrame.of(volume)
    canonical = frame_c.view(volume.hu)
    coarse = CoarseGrid.of(canonical, frame_c)
    f = coarse.factor
    n_z = coarse.hu.shape[0]
    maps = find_anatomy(coarse, canonical)
    frame = _cardiac_frame(maps, coarse)
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
    geometry = volume.geometry
    slices_per_thickness = max(1, round(geometry.slice_thickness_mm / geometry.increment_mm))
    labels: dict[int, LesionLabel] = {}
    features: dict[int, dict[str, float]] = {}
    metal_ids: list[int] = []
    for cand in candidates.candidates:
        zc, yc, xc = frame_c.to_canonical(*cand.voxel_indices())
        zc = np.clip(zc, 0, n_z - 1)
        jj, ii = coarse.from_fine(yc, xc)
        feat = {
            "depth_mm": float(np.median(maps.depth_mm[zc, jj, ii])),
            "heart_distance_mm": float(np.median(maps.outside_distance_mm[zc, jj, ii])),
            "in_cavity": float(np.mean(maps.cavity[zc, jj, ii])),
            "in_lung": float(np.mean(maps.lungs[zc, jj, ii])),
            "outside_air": float(np.mean(maps.outside_air[zc, jj, ii])),
            "lung_distance_mm": float(np.median(maps.lung_distance_mm[zc, jj, ii])),
        }
        cz, cj, ci = float(np.mean(zc)), float(np.mean(jj)), float(np.mean(ii))
        p = np.array([float(np.mean(xc)) * (sx / f), float(np.mean(yc)) * (sy / f), cz * sz])
        label = _decide(
            cand, feat, maps, frame, p, (cz, cj, ci), coarse, sigma, slices_per_thickness
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
        anatomy=_anatomy_record(maps, frame, coarse, frame_c, volume),
        features=features,
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
    slices_per_thickness: int,
) -> LesionLabel:
    sz, sy, _ = coarse.spacing_mm
    cz, cj, ci = centre
    z_index = round(cz)
    if cand.peak_hu >= METAL_HU:
        return LesionLabel(
            excluded=ExclusionReason.METAL,
            detail=f"peak {cand.peak_hu:.0f} HU is metal (>= {METAL_HU:.0f} HU)",
        )
    near_heart = feat["heart_distance_mm"] <= EPICARDIAL_REACH_MM
    if cand.volume_mm3 >= BONE_VOLUME_MM3 and feat["depth_mm"] < DEEP_MM:
        return LesionLabel(
            excluded=ExclusionReason.BONE,
            detail=f"large dense body ({cand.volume_mm3:.0f} mm3): vertebra, sternum or rib",
        )
    if feat["in_cavity"] < 0.5 and feat["in_lung"] < 0.5:
        return LesionLabel(
            excluded=ExclusionReason.BONE,
            detail="in the chest wall or spine, outside the lungs' hull (rib, sternum, "
            "vertebra or costal cartilage)",
        )
    if feat["in_lung"] >= 0.5:
        return LesionLabel(excluded=ExclusionReason.OUTSIDE_HEART, detail="in the lung")
    desc_wall = _tube_wall_distance(maps.descending, z_index, cj, ci, sy)
    if desc_wall <= AORTIC_WALL_MARGIN_MM or (
        _tube_centre_distance(maps.descending, z_index, cj, ci, sy) < desc_wall
    ):
        return LesionLabel(
            excluded=ExclusionReason.AORTA,
            detail=f"wall of the descending aorta ({desc_wall:.1f} mm from the tracked wall)",
        )
    asc_wall = _tube_wall_distance(maps.ascending, z_index, cj, ci, sy)
    if asc_wall <= AORTIC_WALL_MARGIN_MM and (
        maps.root is None or cz > maps.root[0] + OSTIUM_ABOVE_ROOT_MM / sz
    ):
        return LesionLabel(
            excluded=ExclusionReason.AORTA,
            detail=f"wall of the ascending aorta ({asc_wall:.1f} mm from the tracked wall)",
        )
    if not near_heart:
        return LesionLabel(
            excluded=ExclusionReason.OUTSIDE_HEART,
            detail=f"{feat['heart_distance_mm']:.0f} mm from the heart's surface",
        )
    if frame is None:
        return LesionLabel(
            excluded=ExclusionReason.OUTSIDE_HEART,
            detail="the aortic root or the heart was not found, so coronary territories "
            "are unknown",
        )
    d = p - frame.root
    root_distance = float(np.linalg.norm(d))
    feat.update(
        {
            "root_distance_mm": root_distance,
            "axial_mm": float(d @ frame.long_axis),
            "septal_mm": float(d @ frame.septal_normal),
            "anterior_mm": float(d @ frame.anterior),
        }
    )
    if p[2] > frame.root[2] + OSTIUM_ABOVE_ROOT_MM:
        if asc_wall <= AORTIC_WALL_MARGIN_MM * 2:
            return LesionLabel(
                excluded=ExclusionReason.AORTA,
                detail=f"wall of the ascending aorta ({asc_wall:.1f} mm from the tracked wall)",
            )
        return LesionLabel(
            excluded=ExclusionReason.OUTSIDE_HEART,
            detail=f"{p[2] - frame.root[2]:.0f} mm above the aortic root, above the coronary ostia",
        )
    deep = feat["depth_mm"] > DEEP_MM
    # the root: the aorta's axis continued from the root centre, up to one radius either way
    along = float(d @ frame.aorta_direction)
    off_axis = float(np.linalg.norm(d - along * frame.aorta_direction))
    feat["root_off_axis_mm"] = off_axis
    in_root = abs(along) <= frame.root_radius_mm + AORTIC_WALL_MARGIN_MM and (
        off_axis <= frame.root_radius_mm
        or (deep and off_axis <= frame.root_radius_mm + AORTIC_WALL_MARGIN_MM)
    )
    if in_root:
        return LesionLabel(
            excluded=ExclusionReason.AORTIC_VALVE,
            detail=f"aortic valve or root: {off_axis:.0f} mm from the aortic axis, "
            f"{along:+.0f} mm along it from the root centre (root radius "
            f"{frame.root_radius_mm:.0f} mm)",
        )
    single_slice = cand.slice_range[1] - cand.slice_range[0] + 1 <= slices_per_thickness
    faint = cand.peak_hu < TISSUE_BASELINE_HU + NOISE_PEAK_SD * sigma
    if single_slice and faint and cand.max_area_mm2 < NOISE_MAX_AREA_MM2:
        return LesionLabel(
            excluded=ExclusionReason.NOISE,
            detail=f"small ({cand.max_area_mm2:.1f} mm2), faint (peak {cand.peak_hu:.0f} HU "
            f"with noise SD {sigma:.0f} HU) and in one slice",
        )
    if deep:
        if feat["septal_mm"] > 0 and feat["anterior_mm"] < 0:
            return LesionLabel(
                excluded=ExclusionReason.MITRAL_ANNULUS,
                detail=f"inside the left heart at the base, {feat['depth_mm']:.0f} mm under "
                "the epicardial surface, posterior-left of the aortic root",
            )
        return LesionLabel(
            excluded=ExclusionReason.NOISE,
            detail=f"inside the blood pool or myocardium ({feat['depth_mm']:.0f} mm under the "
            "epicardial surface), where no coronary artery runs",
        )
    if (
        feat["lung_distance_mm"] <= PERICARDIAL_LUNG_MM
        and feat["axial_mm"] - frame.base_offset_mm > PERICARDIAL_BELOW_BASE_MM
        and abs(feat["septal_mm"]) > SEPTAL_MARGIN_MM
    ):
        return LesionLabel(
            excluded=ExclusionReason.PERICARDIUM,
            detail=f"on the heart's outer boundary against the lung "
            f"({feat['lung_distance_mm']:.0f} mm), away from the atrioventricular and "
            "interventricular grooves",
        )
    artery, why = _artery(frame, p)
    return LesionLabel(artery=artery, detail=why)


def _anatomy_record(
    maps: AnatomyMaps,
    frame: _Frame | None,
    coarse: CoarseGrid,
    frame_c: CanonicalFrame,
    volume: CTVolume,
) -> CardiacAnatomy:
    f = coarse.factor
    half = (f - 1) / 2.0

    def to_mm(z: float, j: float, i: float) -> tuple[float, float, float]:
        return _location_mm(frame_c, volume, z, j * f + half, i * f + half)

    voxel_ml = float(np.prod(coarse.spacing_mm)) / 1000.0
    heart_centre = bounds = apex = None
    if maps.heart.any():
        zz, jj, ii = np.nonzero(maps.heart)
        heart_centre = to_mm(float(zz.mean()), float(jj.mean()), float(ii.mean()))
        lo = to_mm(float(zz.min()), float(jj.min()), float(ii.min()))
        hi = to_mm(float(zz.max()), float(jj.max()), float(ii.max()))
        bounds = (
            (min(lo[0], hi[0]), min(lo[1], hi[1]), min(lo[2], hi[2])),
            (max(lo[0], hi[0]), max(lo[1], hi[1]), max(lo[2], hi[2])),
        )
        if frame is not None:
            pts = np.stack(
                [
                    (ii + 0.5) * coarse.spacing_mm[2],
                    (jj + 0.5) * coarse.spacing_mm[1],
                    zz * coarse.spacing_mm[0],
                ],
                axis=1,
            )
            k = int(np.argmax((pts - frame.root) @ frame.long_axis))
            apex = to_mm(float(zz[k]), float(jj[k]), float(ii[k]))

    def tube_mm(tube: Tube | None) -> tuple[tuple[float, float, float], ...]:
        if tube is None:
            return ()
        return tuple(
            to_mm(float(z), float(c[0]), float(c[1]))
            for z, c in zip(tube.slices.tolist(), tube.centres, strict=True)
        )

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
        aortic_root_mm=to_mm(*maps.root) if maps.root is not None else None,
        aortic_root_radius_mm=maps.root_radius_mm,
        ascending_aorta_mm=tube_mm(maps.ascending),
        descending_aorta_mm=tube_mm(maps.descending),
        lung_volume_ml=float(np.count_nonzero(maps.lungs)) * voxel_ml,
        noise_sd_hu=maps.noise_sd_hu,
        long_axis=long_axis,
    )
