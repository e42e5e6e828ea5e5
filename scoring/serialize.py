"""JSON-ready records of scores and volumes (plain dicts of str, int, float, bool, list, None).

The command-line tool prints these, the workers keep them beside the FHIR results; the shape is
the one documented for ``cac score --json``.
"""

from __future__ import annotations

from typing import Any

from scoring.parameters import ARTERIES
from scoring.result import ScoreResult
from scoring.volume import CTVolume


def _round(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


def score_to_dict(result: ScoreResult) -> dict[str, Any]:
    """The score as ``{"agatston": {...}, "volume_mm3": {...}, "mass_mg": {...}, "lesions": ...}``.

    Per-artery keys are the wire codes LM, LAD, LCX, RCA; lesions carry ``artery`` ``null`` when
    the whole volume was scored.
    """
    return {
        "agatston": {
            "total": _round(result.agatston),
            "by_artery": {a.value: _round(result.agatston_by_artery[a]) for a in ARTERIES},
        },
        "volume_mm3": {
            "total": _round(result.volume_mm3),
            "by_artery": {a.value: _round(result.volume_mm3_by_artery[a]) for a in ARTERIES},
        },
        "mass_mg": {
            "total": _round(result.mass_mg),
            "by_artery": {a.value: _round(result.mass_mg_by_artery[a]) for a in ARTERIES},
            "calibrated": result.mass_calibrated,
            "factor_mg_per_mm3_hu": result.mass_factor_mg_per_mm3_hu,
            "factor_source": result.mass_factor_source,
        },
        "lesion_count": {
            "total": result.lesion_count,
            "by_artery": {a.value: result.lesion_count_by_artery[a] for a in ARTERIES},
        },
        "roi": result.roi,
        "lesions": [
            {
                "lesion_id": les.lesion_id,
                "artery": les.artery.value if les.artery else None,
                "agatston": _round(les.agatston),
                "volume_mm3": _round(les.volume_mm3),
                "mass_mg": _round(les.mass_mg),
                "peak_hu": _round(les.peak_hu, 1),
                "mean_hu": _round(les.mean_hu, 1),
                "area_mm2": _round(les.area_mm2),
                "max_area_mm2": _round(les.max_area_mm2),
                "slice_range": list(les.slice_range),
                "voxel_count": les.voxel_count,
                "centroid_mm": [_round(c, 2) for c in les.centroid_mm],
                "detail": les.detail,
            }
            for les in result.lesions
        ],
        "excluded": [
            {
                "lesion_id": exc.lesion_id,
                "reason": exc.reason.value,
                "detail": exc.detail,
                "agatston": _round(exc.agatston),
                "volume_mm3": _round(exc.volume_mm3),
                "peak_hu": _round(exc.peak_hu, 1),
                "slice_range": list(exc.slice_range),
                "centroid_mm": [_round(c, 2) for c in exc.centroid_mm],
            }
            for exc in result.excluded
        ],
        "ignored_small_components": result.ignored_small_components,
        "parameters": result.parameters.as_dict(),
        "warnings": [{"code": w.code.value, "message": w.message} for w in result.warnings],
    }


def series_to_dict(volume: CTVolume) -> dict[str, Any]:
    """What identifies the scored series and how it was reconstructed."""
    acq = volume.acquisition
    geometry = volume.geometry
    return {
        "study_instance_uid": acq.study_instance_uid,
        "series_instance_uid": acq.series_instance_uid,
        "series_description": acq.series_description,
        "slices": volume.shape[0],
        "rows": volume.shape[1],
        "columns": volume.shape[2],
        "slice_thickness_mm": _round(geometry.slice_thickness_mm),
        "increment_mm": _round(geometry.increment_mm),
        "pixel_spacing_mm": [_round(s, 4) for s in geometry.pixel_spacing_mm],
        "kvp": acq.kvp,
        "reconstruction_kernel": acq.reconstruction_kernel,
        "manufacturer": acq.manufacturer,
        "acquisition_datetime": (
            acq.acquisition_datetime.isoformat() if acq.acquisition_datetime else None
        ),
    }
