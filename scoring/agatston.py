"""The calcium score engine: Agatston, volume and mass, per lesion, per artery and in total.

Pure numpy/scipy: a :class:`~scoring.volume.CTVolume` in, frozen dataclasses out. Arrays are
indexed ``(z, y, x)``.

The method, step by step (Agatston 1990; clinical.md sections 1-2):

1. Candidate pixels are those at or above ``threshold_hu`` (130 HU), slice by slice.
2. In each slice, candidate pixels form 2-D connected components (8-connectivity by default).
3. Components smaller than ``min_area_mm2`` are ignored. Area = pixel count x row spacing x
   column spacing, so non-square pixels are handled.
4. Each component is weighted by its peak HU: 130-199 -> 1, 200-299 -> 2, 300-399 -> 3,
   >= 400 -> 4; its score is area x weight, multiplied by ``increment / 3 mm`` so that thinner or
   overlapping reconstructions stay comparable with the 3 mm definition.
5. Components that overlap in-plane in adjacent slices are joined into one candidate lesion (the
   row of the per-lesion table and the unit the artery labels apply to).
6. Volume = voxels of the lesion x voxel volume (voxel depth = slice increment, Callister 1998);
   mass = c_HA x mean HU x volume (McCollough 2007).

References
----------
Agatston AS et al. JACC 1990;15(4):827-832.
Callister TQ et al. Radiology 1998;208:807-814.
McCollough CH et al. Radiology 2007;243:527-538.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

from scoring.errors import InvalidParameterError, LabelMapError
from scoring.parameters import (
    ARTERIES,
    REFERENCE_KVP,
    REFERENCE_SLICE_MM,
    STANDARD_THICKNESS_RANGE_MM,
    UNCALIBRATED_MASS_FACTOR_MG_PER_MM3_HU,
    Artery,
    Connectivity,
    ExclusionReason,
    ScoringParameters,
    VolumeMethod,
)
from scoring.result import (
    Candidate,
    CandidateSet,
    Component2D,
    ExcludedCandidate,
    Lesion,
    LesionLabel,
    ScoreResult,
    ScoringWarning,
    WarningCode,
)
from scoring.volume import CTVolume

# Lower edges of the Agatston density weights 2, 3 and 4 (Agatston 1990): peak HU 130-199 -> 1,
# 200-299 -> 2, 300-399 -> 3, >= 400 -> 4.
_WEIGHT_EDGES_HU = np.array([200.0, 300.0, 400.0])

# DICOM (0018,9351)/(0018,9352) carry mg HA per cm^3 per HU (about 0.75-0.93 on real scanners,
# clinical.md section 2); a value this small must already be per mm^3.
_FACTOR_PER_CM3_MIN = 0.05

_AREA_TOLERANCE = 1e-9


def agatston_weight(peak_hu: float) -> int:
    """Agatston density weight of a 2-D lesion from its peak HU.

    130-199 HU -> 1, 200-299 -> 2, 300-399 -> 3, >= 400 -> 4 (Agatston 1990). Peaks below 130 HU,
    possible only with a lowered threshold, get weight 1.
    """
    return 1 + int(np.searchsorted(_WEIGHT_EDGES_HU, peak_hu, side="right"))


def _threshold(
    block: npt.NDArray[np.int16] | npt.NDArray[np.float32],
    threshold_hu: float,
    inclusive: bool,
    out: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Candidate pixels of a block of slices, written into ``out`` (reused from block to block,
    which spares fresh pages for every mask). Integer images are compared with an integer bound
    (same pixels as the float comparison, without converting the block to float)."""
    if np.issubdtype(block.dtype, np.integer):
        bound = math.ceil(threshold_hu) if inclusive else math.floor(threshold_hu) + 1
        return np.greater_equal(block, bound, out=out)
    if inclusive:
        return np.greater_equal(block, threshold_hu, out=out)
    return np.greater(block, threshold_hu, out=out)


@dataclass(frozen=True, slots=True)
class _MassFactor:
    value: float
    calibrated: bool
    source: str


def _mass_factor(volume: CTVolume, params: ScoringParameters) -> _MassFactor:
    if params.mass_factor_mg_per_mm3_hu is not None:
        return _MassFactor(params.mass_factor_mg_per_mm3_hu, True, "parameter")
    dicom_factor = volume.acquisition.mass_factor_patient
    if dicom_factor is not None and dicom_factor > 0:
        per_mm3 = dicom_factor / 1000.0 if dicom_factor >= _FACTOR_PER_CM3_MIN else dicom_factor
        return _MassFactor(per_mm3, True, "DICOM (0018,9351) Calcium Scoring Mass Factor Patient")
    return _MassFactor(
        UNCALIBRATED_MASS_FACTOR_MG_PER_MM3_HU, False, "uncalibrated default (no calibration)"
    )


def _acquisition_warnings(volume: CTVolume, mass: _MassFactor) -> list[ScoringWarning]:
    warnings: list[ScoringWarning] = []
    kvp = volume.acquisition.kvp
    if kvp is None:
        warnings.append(
            ScoringWarning(
                WarningCode.KVP_UNKNOWN,
                "The tube voltage (kVp) is not recorded; the Agatston method is defined at "
                "120 kVp, so check the protocol before relying on the score.",
            )
        )
    elif abs(kvp - REFERENCE_KVP) > 0.5:
        warnings.append(
            ScoringWarning(
                WarningCode.NON_STANDARD_KVP,
                f"Acquired at {kvp:g} kVp, scored with the standard 130 HU threshold: the Agatston "
                "method is defined at 120 kVp, so this score is non-standard and may not be "
                "comparable with reference values.",
            )
        )
    geometry = volume.geometry
    low, high = STANDARD_THICKNESS_RANGE_MM
    if not low - 1e-6 <= geometry.slice_thickness_mm <= high + 1e-6:
        warnings.append(
            ScoringWarning(
                WarningCode.NON_STANDARD_THICKNESS,
                f"Slice thickness {geometry.slice_thickness_mm:g} mm is outside the standard "
                f"{low:g}-{high:g} mm; the score was normalised by increment/3 mm but may differ "
                "from a standard 3 mm reconstruction.",
            )
        )
    if geometry.increment_mm < geometry.slice_thickness_mm - 0.01:
        warnings.append(
            ScoringWarning(
                WarningCode.OVERLAPPING_SLICES,
                f"Overlapping reconstruction (increment {geometry.increment_mm:g} mm < thickness "
                f"{geometry.slice_thickness_mm:g} mm): Agatston scaled by increment/3 mm, volume "
                "counted with the increment as voxel depth.",
            )
        )
    if not mass.calibrated:
        warnings.append(
            ScoringWarning(
                WarningCode.MASS_UNCALIBRATED,
                "Mass score is uncalibrated: no calibration factor was given and the images carry "
                f"none, so a typical factor ({mass.value * 1000:.2f} mg HA/cm^3 per HU) was used.",
            )
        )
    return warnings


# Candidate pixels are gathered this many voxels at a time, so that the boolean mask never
# covers the whole volume (8 slices of a 512 x 512 series).
_SLAB_VOXELS = 1 << 21


@dataclass(frozen=True, slots=True)
class _Runs:
    """Horizontal runs of candidate pixels (maximal stretches of one image row), in raster order
    of the volume; ``values`` holds the candidate pixels' HU in that same order."""

    values: npt.NDArray[np.number]
    pixel_start: npt.NDArray[np.int64]
    """Index in ``values`` of each run's first pixel."""
    length: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    """Row of the run across the whole volume: ``z * n_rows + y``."""
    first_col: npt.NDArray[np.int64]


def _candidate_runs(
    hu: npt.NDArray[np.int16] | npt.NDArray[np.float32],
    threshold_hu: float,
    inclusive: bool,
) -> _Runs:
    """Runs of pixels at or above the threshold, found slab by slab from the thresholded mask."""
    n_slices, n_rows, n_cols = hu.shape
    slab = max(1, _SLAB_VOXELS // max(1, n_rows * n_cols))
    buffer = np.empty((min(slab, n_slices), n_rows, n_cols), dtype=bool)
    values: list[npt.NDArray[np.number]] = []
    firsts: list[npt.NDArray[np.int64]] = []
    starts: list[npt.NDArray[np.int64]] = []
    n_pixels = 0
    for z0 in range(0, n_slices, slab):
        block = hu[z0 : z0 + slab]
        mask = _threshold(block, threshold_hu, inclusive, buffer[: block.shape[0]])
        flat = np.flatnonzero(mask)
        if flat.size == 0:
            continue
        values.append(block.reshape(-1)[flat])
        is_start = np.empty(flat.size, dtype=bool)
        is_start[0] = True
        np.not_equal(np.diff(flat), 1, out=is_start[1:])
        # a run never carries on from the last column of one row into the first of the next
        by_row = mask.reshape(-1, n_cols)
        wraps = np.flatnonzero(by_row[:-1, -1] & by_row[1:, 0])
        is_start[np.searchsorted(flat, (wraps + 1) * n_cols)] = True
        run_starts = np.flatnonzero(is_start)
        firsts.append(flat[run_starts] + z0 * n_rows * n_cols)
        starts.append(run_starts + n_pixels)
        n_pixels += flat.size
    if not values:
        empty = np.zeros(0, dtype=np.int64)
        return _Runs(np.zeros(0, dtype=hu.dtype), empty, empty, empty, empty)
    pixel_start = np.concatenate(starts)
    first = np.concatenate(firsts)
    row = first // n_cols
    return _Runs(
        values=np.concatenate(values),
        pixel_start=pixel_start,
        length=np.diff(pixel_start, append=n_pixels),
        row=row,
        first_col=first - row * n_cols,
    )


def _overlapping_runs(
    row: npt.NDArray[np.int64],
    first_col: npt.NDArray[np.int64],
    last_col: npt.NDArray[np.int64],
    valid: npt.NDArray[np.bool_],
    row_step: int,
    reach: int,
    n_cols: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs ``(i, j)`` of runs where run ``j`` lies on row ``row[i] - row_step`` and its columns
    come within ``reach`` of run ``i``'s (``reach`` 1: touching diagonally counts).

    The runs must be in raster order (sorted by row, then column); only runs ``i`` flagged
    ``valid`` are paired. Each run's partners are found by two binary searches on keys that
    place every row in its own interval (width ``n_cols + 2 * reach + 1``), so no pixel is
    visited.
    """
    width = n_cols + 2 * reach + 1
    offset = reach
    start_key = row * width + first_col + offset
    end_key = row * width + last_col + offset
    target_row = (row - row_step) * width + offset
    low = np.searchsorted(end_key, target_row + first_col - reach, side="left")
    high = np.searchsorted(start_key, target_row + last_col + reach, side="right")
    count = np.where(valid, np.maximum(high - low, 0), 0)
    total = int(count.sum())
    i = np.repeat(np.arange(row.size, dtype=np.int64), count)
    # j runs from low[i] upward: low repeated plus a position within each group
    group_start = np.cumsum(count) - count
    j = np.repeat(low - group_start, count) + np.arange(total, dtype=np.int64)
    return i, j


def _connected(
    n_nodes: int, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], int]:
    """Connected components of a graph, numbered in order of their lowest node."""
    if first.size == 0:
        return np.arange(n_nodes, dtype=np.int64), n_nodes
    graph = csr_array(
        (np.ones(first.size, dtype=np.int8), (first.astype(np.int32), second.astype(np.int32))),
        shape=(n_nodes, n_nodes),
    )
    n_components, labels = connected_components(graph, directed=True, connection="weak")
    lowest = np.full(n_components, n_nodes, dtype=np.int64)
    np.minimum.at(lowest, labels, np.arange(n_nodes, dtype=np.int64))
    rank = np.empty(n_components, dtype=np.int64)
    rank[np.argsort(lowest)] = np.arange(n_components, dtype=np.int64)
    return rank[labels], int(n_components)


def _peaks_and_sums(
    runs: _Runs,
    run_order: npt.NDArray[np.int64],
    first_run: npt.NDArray[np.int64],
    first_pixel: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Peak and sum of HU of each component, whose runs are ``runs[run_order]`` from
    ``first_run`` on (and whose pixels, in that order, start at ``first_pixel``).

    Integer HU are reduced per run and then per component (the sums are exact integers, so
    the order of addition does not matter); float HU are gathered pixel by pixel in raster order
    of each component and summed in that order.
    """
    if first_run.size == 0:
        return np.zeros(0), np.zeros(0)
    if np.issubdtype(runs.values.dtype, np.integer):
        run_peak = np.maximum.reduceat(runs.values, runs.pixel_start)[run_order]
        run_sum = np.add.reduceat(runs.values, runs.pixel_start, dtype=np.int64)[run_order]
        peaks = np.maximum.reduceat(run_peak, first_run).astype(np.float64)
        sums = np.add.reduceat(run_sum, first_run).astype(np.float64)
        return peaks, sums
    length = runs.length[run_order]
    out_start = np.cumsum(length) - length
    position = np.arange(out_start[-1] + length[-1], dtype=np.int64)
    source = np.repeat(runs.pixel_start[run_order] - out_start, length) + position
    values = runs.values[source].astype(np.float64)
    return np.maximum.reduceat(values, first_pixel), np.add.reduceat(values, first_pixel)


def _sum_by(
    label: npt.NDArray[np.int64], value: npt.NDArray[np.int64], n_labels: int
) -> npt.NDArray[np.float64]:
    """Sum of integer ``value`` per ``label``, as floats (exact below 2**53)."""
    return np.asarray(np.bincount(label, weights=value, minlength=n_labels), dtype=np.float64)


def _pixel_indices(
    row: npt.NDArray[np.int64], first_col: npt.NDArray[np.int64], length: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """In-slice row and column of every pixel of the given runs, run after run.

    Columns are a running sum of steps: +1 along a run, a jump to the next run's first column
    at its start (built in place, without a second pixel-sized array).
    """
    rows = np.repeat(row.astype(np.int32), length)
    if rows.size == 0:
        return rows, rows.copy()
    out_start = np.cumsum(length) - length
    cols = np.ones(rows.size, dtype=np.int32)
    cols[out_start[0]] = first_col[0]
    cols[out_start[1:]] = first_col[1:] - (first_col[:-1] + length[:-1] - 1)
    np.cumsum(cols, out=cols)
    return rows, cols


def find_candidates(volume: CTVolume, params: ScoringParameters | None = None) -> CandidateSet:
    """Every calcified candidate lesion of a volume, with its Agatston, volume and mass.

    Parameters
    ----------
    volume
        The CT volume in HU, ``(z, y, x)``.
    params
        Scoring parameters; the common clinical profile when omitted.

    Returns
    -------
    CandidateSet
        Candidates in order of their first slice, ``lesion_id`` from 1, plus the count of 2-D
        components ignored for being under the minimum area, the mass factor used and the
        acquisition warnings.

    Notes
    -----
    Connected components are found on runs (maximal horizontal stretches of candidate pixels)
    rather than pixels: runs on adjacent rows of a slice that touch (diagonally too with
    8-connectivity) belong to one 2-D component, and runs of kept components on the same row of
    adjacent slices that share a column join their components into one candidate. The result is
    the same as labelling each slice with ``scipy.ndimage.label`` (components numbered in raster
    order of their first pixel), for a fraction of the time.
    """
    params = params or ScoringParameters()
    geometry = volume.geometry
    n_slices, n_rows, n_cols = volume.shape
    pixel_area = geometry.pixel_area_mm2
    increment_factor = (
        geometry.increment_mm / REFERENCE_SLICE_MM if params.normalise_increment else 1.0
    )
    mass = _mass_factor(volume, params)
    runs = _candidate_runs(volume.hu, params.threshold_hu, params.threshold_inclusive)
    last_col = runs.first_col + runs.length - 1
    reach = 1 if params.connectivity == Connectivity.EIGHT else 0

    # 2-D components: runs of one slice on adjacent rows whose columns touch
    pairs = _overlapping_runs(
        runs.row, runs.first_col, last_col, runs.row % n_rows > 0, 1, reach, n_cols
    )
    component, n_components = _connected(runs.row.size, *pairs)
    counts = np.bincount(component, weights=runs.length, minlength=n_components).astype(np.int64)
    keep = counts * pixel_area >= params.min_area_mm2 - _AREA_TOLERANCE
    n_kept = int(np.count_nonzero(keep))
    ignored = n_components - n_kept

    # runs of kept components; their component ids renumbered 0 .. n_kept - 1
    kept_id = np.cumsum(keep) - 1
    kept_runs = np.flatnonzero(keep[component])
    run_component = kept_id[component[kept_runs]]
    row = runs.row[kept_runs]
    first_col = runs.first_col[kept_runs]
    length = runs.length[kept_runs]

    # 3-D candidates: kept components on adjacent slices sharing an in-plane pixel
    first, second = _overlapping_runs(
        row, first_col, last_col[kept_runs], row >= n_rows, n_rows, 0, n_cols
    )
    group, _ = _connected(n_kept, run_component[first], run_component[second])

    # every component's runs together, each in raster order (a stable sort of the runs; a
    # stable sort of 16-bit keys is a radix sort)
    keys = run_component.astype(np.uint16) if n_kept < 65536 else run_component
    order = np.argsort(keys, kind="stable")
    by_component = kept_runs[order]
    run_component = run_component[order]
    row = row[order]
    first_col = first_col[order]
    length = length[order]
    first_run = np.searchsorted(run_component, np.arange(n_kept))
    sizes = counts[keep]
    starts = np.cumsum(sizes) - sizes
    peaks, sums = _peaks_and_sums(runs, by_component, first_run, starts)
    weights = 1 + np.searchsorted(_WEIGHT_EDGES_HU, peaks, side="right")
    areas = sizes * pixel_area
    table = _ComponentTable(
        slices=row[first_run] // n_rows,
        sizes=sizes,
        areas=areas,
        peaks=peaks,
        sums=sums,
        agatston=areas * weights * increment_factor,
        # centroid sums per component, exact integers, from the runs
        row_sums=_sum_by(run_component, (row % n_rows) * length, n_kept),
        col_sums=_sum_by(run_component, (2 * first_col + length - 1) * length // 2, n_kept),
    )
    rows, cols = _pixel_indices(row % n_rows, first_col, length)
    # positional arguments in field order: keyword calls of the frozen dataclass cost a third more
    components = [
        Component2D(z, rows[start:end], cols[start:end], area, peak, total, weight, score)
        for z, start, end, area, peak, total, weight, score in zip(
            table.slices.tolist(),
            starts.tolist(),
            (starts + sizes).tolist(),
            areas.tolist(),
            peaks.tolist(),
            sums.tolist(),
            weights.tolist(),
            table.agatston.tolist(),
            strict=True,
        )
    ]

    # candidates in order of their first component (first slice, then raster order)
    members = np.argsort(group, kind="stable")
    first_member = np.flatnonzero(np.diff(group[members], prepend=-1))
    candidates = _make_candidates(members, first_member, components, table, volume, params, mass)
    return CandidateSet(
        candidates=candidates,
        shape=(n_slices, n_rows, n_cols),
        parameters=params,
        ignored_small_components=ignored,
        mass_factor_mg_per_mm3_hu=mass.value,
        mass_calibrated=mass.calibrated,
        mass_factor_source=mass.source,
        warnings=tuple(_acquisition_warnings(volume, mass)),
    )


@dataclass(frozen=True, slots=True)
class _ComponentTable:
    """The kept 2-D components of a volume as arrays, one entry per component in order of
    ``Component2D`` (slice, then raster order of the first pixel)."""

    slices: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    areas: npt.NDArray[np.floating[Any]]
    peaks: npt.NDArray[np.float64]
    sums: npt.NDArray[np.float64]
    agatston: npt.NDArray[np.floating[Any]]
    row_sums: npt.NDArray[np.float64]
    col_sums: npt.NDArray[np.float64]


def _make_candidates(
    members: npt.NDArray[np.int64],
    first_member: npt.NDArray[np.int64],
    components: Sequence[Component2D],
    table: _ComponentTable,
    volume: CTVolume,
    params: ScoringParameters,
    mass: _MassFactor,
) -> tuple[Candidate, ...]:
    """Build candidates from groups of components: ``members`` lists component indices group
    after group, each group from ``first_member`` on.

    Sums over the components of a candidate are exactly rounded (``math.fsum``); a candidate of
    one component takes its component's numbers as they are.
    """
    if members.size == 0:
        return ()
    geometry = volume.geometry

    def per_candidate(ufunc: np.ufunc, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(ufunc.reduceat(values[members], first_member))

    voxel_count = per_candidate(np.add, table.sizes)
    # integer and integral-float sums below are exact, so the means are correctly rounded
    z_mean = per_candidate(np.add, table.slices * table.sizes) / voxel_count
    y_mean = per_candidate(np.add, table.row_sums) / voxel_count
    x_mean = per_candidate(np.add, table.col_sums) / voxel_count
    centroids = geometry.to_patient_mm(z_mean, y_mean, x_mean).reshape(-1, 3)
    area = per_candidate(np.add, table.areas)
    agatston = per_candidate(np.add, table.agatston)
    sum_hu = per_candidate(np.add, table.sums)
    n_members = np.diff(first_member, append=members.size)
    member_list = members.tolist()
    bounds = [*first_member.tolist(), members.size]
    for k in np.flatnonzero(n_members > 1).tolist():
        # the sum of several floats, exactly rounded as before (numpy's is not)
        group = member_list[bounds[k] : bounds[k + 1]]
        area[k] = math.fsum(table.areas[group].tolist())
        agatston[k] = math.fsum(table.agatston[group].tolist())
        sum_hu[k] = math.fsum(table.sums[group].tolist())
    mean_hu = sum_hu / voxel_count
    voxel_volume = voxel_count * geometry.voxel_volume_mm3
    # mass from the acquired voxels whatever the volume method: c_HA x mean HU x volume
    # (McCollough 2007) = c_HA x sum of HU x voxel volume
    mass_mg = mass.value * mean_hu * voxel_volume
    ordered = [components[i] for i in member_list]
    ranges = list(pairwise(bounds))
    if params.volume_method == VolumeMethod.ISOTROPIC:
        volume_mm3 = [_isotropic_volume(ordered[s:e], volume, params) for s, e in ranges]
    else:
        volume_mm3 = voxel_volume.tolist()
    # positional arguments in field order (lesion_id, components, slice_range, area_mm2,
    # max_area_mm2, peak_hu, mean_hu, agatston, volume_mm3, mass_mg, voxel_count,
    # centroid_index, centroid_mm): keyword calls cost a third more
    candidates = [
        Candidate(
            lesion_id,
            tuple(ordered[start:end]),
            slice_range,
            area_mm2,
            max_area,
            peak,
            mean,
            score,
            volume_value,
            mass_value,
            count,
            index,
            tuple(centroid),
        )
        for (
            lesion_id,
            (start, end),
            slice_range,
            area_mm2,
            max_area,
            peak,
            mean,
            score,
            volume_value,
            mass_value,
            count,
            index,
            centroid,
        ) in zip(
            range(1, len(ranges) + 1),
            ranges,
            zip(
                per_candidate(np.minimum, table.slices).tolist(),
                per_candidate(np.maximum, table.slices).tolist(),
                strict=True,
            ),
            area.tolist(),
            per_candidate(np.maximum, table.areas).tolist(),
            per_candidate(np.maximum, table.peaks).tolist(),
            mean_hu.tolist(),
            agatston.tolist(),
            volume_mm3,
            mass_mg.tolist(),
            voxel_count.tolist(),
            zip(z_mean.tolist(), y_mean.tolist(), x_mean.tolist(), strict=True),
            centroids.tolist(),
            strict=True,
        )
    ]
    return tuple(candidates)


def _isotropic_volume(
    members: Sequence[Component2D], volume: CTVolume, params: ScoringParameters
) -> float:
    """Volume after resampling the lesion's box to isotropic voxels of the in-plane spacing.

    Linear interpolation of HU, re-thresholded, restricted to the (nearest-neighbour resampled)
    lesion footprint grown by one voxel so that interpolation at its rim is kept.
    """
    geometry = volume.geometry
    zs = np.concatenate([np.full(c.rows.size, c.slice_index) for c in members])
    ys = np.concatenate([c.rows for c in members])
    xs = np.concatenate([c.cols for c in members])
    lo = np.maximum([zs.min() - 1, ys.min() - 1, xs.min() - 1], 0)
    hi = np.minimum([zs.max() + 2, ys.max() + 2, xs.max() + 2], volume.shape)
    box = volume.hu[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float32)
    footprint = np.zeros(box.shape, dtype=bool)
    footprint[zs - lo[0], ys - lo[1], xs - lo[2]] = True
    footprint = ndimage.binary_dilation(footprint)
    iso = min(geometry.pixel_spacing_mm)
    zoom = (
        geometry.increment_mm / iso,
        geometry.pixel_spacing_mm[0] / iso,
        geometry.pixel_spacing_mm[1] / iso,
    )
    resampled = ndimage.zoom(box, zoom, order=1, mode="nearest", grid_mode=True)
    region = (
        ndimage.zoom(
            footprint.astype(np.uint8), zoom, order=0, mode="grid-constant", grid_mode=True
        )
        > 0
    )
    if params.threshold_inclusive:
        above = resampled >= params.threshold_hu
    else:
        above = resampled > params.threshold_hu
    return float(np.count_nonzero(above & region)) * iso**3


def labels_from_mask(
    candidates: CandidateSet, mask: npt.NDArray[np.bool_]
) -> dict[int, LesionLabel]:
    """Score the candidates lying (by majority of their voxels) inside a region of interest.

    Raises
    ------
    LabelMapError
        When ``mask`` does not have the volume's shape.
    """
    if mask.shape != candidates.shape:
        raise LabelMapError(
            f"region-of-interest mask has shape {mask.shape}, the volume {candidates.shape}"
        )
    labels: dict[int, LesionLabel] = {}
    for cand in candidates.candidates:
        inside = np.count_nonzero(mask[cand.voxel_indices()])
        if 2 * inside >= cand.voxel_count:
            labels[cand.lesion_id] = LesionLabel()
        else:
            labels[cand.lesion_id] = LesionLabel(
                excluded=ExclusionReason.OUTSIDE_ROI,
                detail=f"{cand.voxel_count - inside} of {cand.voxel_count} voxels outside the ROI",
            )
    return labels


def labels_from_label_map(
    candidates: CandidateSet, label_map: npt.NDArray[np.integer]
) -> dict[int, LesionLabel]:
    """Artery of each candidate from a reader's label map (1=LM, 2=LAD, 3=LCX, 4=RCA, 0=none).

    Each candidate takes the artery most of its voxels carry (ties go to the first in the order
    LM, LAD, LCX, RCA); a candidate with no labelled voxel is excluded as not labelled.

    Raises
    ------
    LabelMapError
        When the label map's shape differs from the volume's.
    """
    if label_map.shape != candidates.shape:
        raise LabelMapError(
            f"label map has shape {label_map.shape} but the series is {candidates.shape} "
            "(slices, rows, columns): export it from the same series"
        )
    labels: dict[int, LesionLabel] = {}
    for cand in candidates.candidates:
        values = np.asarray(label_map[cand.voxel_indices()]).astype(np.int64)
        votes = np.bincount(values[(values >= 1) & (values <= len(ARTERIES))], minlength=5)
        if votes[1:].sum() == 0:
            labels[cand.lesion_id] = LesionLabel(
                excluded=ExclusionReason.NOT_LABELLED, detail="no voxel carries an artery label"
            )
            continue
        code = int(np.argmax(votes[1:])) + 1
        labels[cand.lesion_id] = LesionLabel(
            artery=Artery.from_code(code),
            detail=f"reader label on {int(votes[code])} of {cand.voxel_count} voxels",
        )
    return labels


def score_candidates(
    candidates: CandidateSet,
    labels: Mapping[int, LesionLabel] | None = None,
    *,
    roi: str = "whole",
    extra_warnings: Sequence[ScoringWarning] = (),
) -> ScoreResult:
    """Totals, per-artery parts and the lesion table from candidates and decisions about them.

    Parameters
    ----------
    candidates
        From :func:`find_candidates`.
    labels
        ``lesion_id -> LesionLabel``. ``None`` scores every candidate (``--roi whole``, what a
        physicist does on a phantom). With labels, a candidate missing from them is excluded.
    roi
        How the candidates were chosen (``whole``, ``mask``, ``auto``, ``labels``), recorded.
    extra_warnings
        Warnings from the labelling step (e.g. metal), appended to the acquisition warnings.
    """
    if roi not in {"whole", "mask", "auto", "labels"}:
        raise InvalidParameterError(f"roi must be whole, mask, auto or labels, got {roi!r}")
    lesions: list[Lesion] = []
    excluded: list[ExcludedCandidate] = []
    for cand in candidates.candidates:
        if labels is None:
            label = LesionLabel()
        else:
            label = labels.get(
                cand.lesion_id,
                LesionLabel(excluded=ExclusionReason.NOT_LABELLED, detail="no decision recorded"),
            )
        if label.excluded is not None:
            excluded.append(
                ExcludedCandidate(
                    lesion_id=cand.lesion_id,
                    reason=label.excluded,
                    detail=label.detail,
                    slice_range=cand.slice_range,
                    peak_hu=cand.peak_hu,
                    agatston=cand.agatston,
                    volume_mm3=cand.volume_mm3,
                    centroid_mm=cand.centroid_mm,
                )
            )
            continue
        lesions.append(
            Lesion(
                lesion_id=cand.lesion_id,
                artery=label.artery,
                slice_range=cand.slice_range,
                area_mm2=cand.area_mm2,
                max_area_mm2=cand.max_area_mm2,
                peak_hu=cand.peak_hu,
                mean_hu=cand.mean_hu,
                agatston=cand.agatston,
                volume_mm3=cand.volume_mm3,
                mass_mg=cand.mass_mg,
                centroid_mm=cand.centroid_mm,
                voxel_count=cand.voxel_count,
                detail=label.detail,
            )
        )

    def by_artery(attribute: str) -> dict[Artery, float]:
        return {
            artery: math.fsum(getattr(les, attribute) for les in lesions if les.artery == artery)
            for artery in ARTERIES
        }

    return ScoreResult(
        agatston=math.fsum(les.agatston for les in lesions),
        volume_mm3=math.fsum(les.volume_mm3 for les in lesions),
        mass_mg=math.fsum(les.mass_mg for les in lesions),
        agatston_by_artery=by_artery("agatston"),
        volume_mm3_by_artery=by_artery("volume_mm3"),
        mass_mg_by_artery=by_artery("mass_mg"),
        lesion_count_by_artery={
            artery: sum(1 for les in lesions if les.artery == artery) for artery in ARTERIES
        },
        lesions=tuple(lesions),
        excluded=tuple(excluded),
        ignored_small_components=candidates.ignored_small_components,
        mass_calibrated=candidates.mass_calibrated,
        mass_factor_mg_per_mm3_hu=candidates.mass_factor_mg_per_mm3_hu,
        mass_factor_source=candidates.mass_factor_source,
        roi=roi,
        parameters=candidates.parameters,
        warnings=candidates.warnings + tuple(extra_warnings),
    )


def score_volume(
    volume: CTVolume,
    params: ScoringParameters | None = None,
    *,
    roi_mask: npt.NDArray[np.bool_] | None = None,
) -> ScoreResult:
    """Score every candidate of a volume, or those inside ``roi_mask`` (majority of voxels)."""
    candidates = find_candidates(volume, params)
    if roi_mask is None:
        return score_candidates(candidates, None, roi="whole")
    return score_candidates(candidates, labels_from_mask(candidates, roi_mask), roi="mask")
