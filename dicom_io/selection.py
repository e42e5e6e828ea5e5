"""Choose the series to score among those of a study, from metadata only.

Pure on metadata: works on pydicom datasets read without pixels and on DICOM JSON (the QIDO-RS
results the PACS client receives, DICOM PS3.18 F.2), so the choice can be made before any pixel is
retrieved.

The rules follow the acquisition protocol of the Agatston score (Agatston AS et al., JACC 1990;
and the 2.5-3.0 mm slices of clinical.md section 1): an axial, ORIGINAL CT series that is not a
localizer is required; among those, 2.5-3.0 mm slices are preferred, then a series description
that names a calcium score, then the series with the most instances. Every series gets a sentence
saying why it was, or was not, chosen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import numpy as np
from pydicom.dataset import Dataset

from dicom_io.errors import NoSuitableSeriesError
from scoring.parameters import STANDARD_THICKNESS_RANGE_MM

#: Largest angle (degrees) between the slice normal and the patient's head-foot axis for which a
#: series still counts as axial. Not a clinical number: a tolerance wide enough for gantry-tilted
#: axial acquisitions and narrow enough to refuse oblique reformats.
MAX_AXIAL_TILT_DEGREES: Final[float] = 30.0

#: Series descriptions that name a calcium-score reconstruction (vendor names: Siemens "CaSc",
#: Philips "HeartBeat-CS", GE "SmartScore"; generic "calcium", "Ca Score", "CAC", "Agatston").
CALCIUM_DESCRIPTION_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    re.compile(r"(?<![a-z])ca[\s_-]?sc(?:ore|oring)?(?![a-z])", re.IGNORECASE),
    re.compile(r"calcium", re.IGNORECASE),
    re.compile(r"(?<![a-z])cac(?![a-z])", re.IGNORECASE),
    re.compile(r"agatston", re.IGNORECASE),
    re.compile(r"heart\s?beat[\s_-]*cs", re.IGNORECASE),
    re.compile(r"smart\s?score", re.IGNORECASE),
)


class Orientation(StrEnum):
    """Plane of the slices, from (0020,0037) Image Orientation (Patient)."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"
    OBLIQUE = "oblique"
    UNKNOWN = "unknown"


def orientation_of(image_orientation: Sequence[float] | None) -> Orientation:
    """Classify the plane of slices with the given (0020,0037) Image Orientation (Patient).

    Parameters
    ----------
    image_orientation
        Six direction cosines: the row direction then the column direction, in the patient
        coordinate system (x to the patient's left, y posterior, z head).

    Returns
    -------
    Orientation
        The plane whose normal is within :data:`MAX_AXIAL_TILT_DEGREES` of the slice normal
        (axial: z, coronal: y, sagittal: x), ``OBLIQUE`` otherwise, ``UNKNOWN`` when missing or
        malformed.
    """
    if image_orientation is None or len(image_orientation) != 6:
        return Orientation.UNKNOWN
    try:
        cosines = np.asarray([float(v) for v in image_orientation], dtype=np.float64)
    except (TypeError, ValueError):
        return Orientation.UNKNOWN
    normal = np.cross(cosines[:3], cosines[3:])
    length = float(np.linalg.norm(normal))
    if not np.isfinite(length) or length < 1e-6:
        return Orientation.UNKNOWN
    normal = np.abs(normal / length)
    axis = int(np.argmax(normal))
    if normal[axis] < np.cos(np.radians(MAX_AXIAL_TILT_DEGREES)):
        return Orientation.OBLIQUE
    return (Orientation.SAGITTAL, Orientation.CORONAL, Orientation.AXIAL)[axis]


def is_calcium_description(description: str | None) -> bool:
    """Whether a (0008,103E) Series Description names a calcium-score reconstruction."""
    return bool(description) and any(
        p.search(description or "") for p in CALCIUM_DESCRIPTION_PATTERNS
    )


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _int_or_none(value: Any) -> int | None:
    number = _float_or_none(value)
    return None if number is None else int(number)


def _strings(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split("\\"))
    return tuple(str(part).strip() for part in value)


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """What the selection needs to know about one series.

    Parameters
    ----------
    series_instance_uid
        (0020,000E) Series Instance UID.
    study_instance_uid
        (0020,000D) Study Instance UID.
    modality
        (0008,0060) Modality, e.g. ``CT``.
    series_description
        (0008,103E) Series Description (empty when absent).
    image_type
        (0008,0008) Image Type values, e.g. ``("ORIGINAL", "PRIMARY", "AXIAL")``.
    slice_thickness_mm
        (0018,0050) Slice Thickness.
    n_instances
        Images in the series ((0020,1209) Number of Series Related Instances in QIDO-RS results);
        ``None`` when unknown.
    orientation
        Plane of the slices from (0020,0037) Image Orientation (Patient).
    kvp
        (0018,0060) KVP.
    convolution_kernel
        (0018,1210) Convolution Kernel, values joined with ``\\``.
    series_number
        (0020,0011) Series Number.
    """

    series_instance_uid: str
    study_instance_uid: str | None = None
    modality: str | None = None
    series_description: str = ""
    image_type: tuple[str, ...] = ()
    slice_thickness_mm: float | None = None
    n_instances: int | None = None
    orientation: Orientation = Orientation.UNKNOWN
    kvp: float | None = None
    convolution_kernel: str | None = None
    series_number: int | None = None

    @classmethod
    def from_dataset(cls, ds: Dataset, n_instances: int | None = 1) -> SeriesSummary:
        """Summarise a series from one of its instances (read with or without pixels).

        Parameters
        ----------
        ds
            Any instance of the series.
        n_instances
            Number of images of the series, when the caller counted them.
        """
        kernel = _strings(ds.get("ConvolutionKernel"))
        return cls(
            series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
            study_instance_uid=str(ds.get("StudyInstanceUID", "")) or None,
            modality=str(ds.get("Modality", "")) or None,
            series_description=str(ds.get("SeriesDescription", "") or ""),
            image_type=tuple(v.upper() for v in _strings(ds.get("ImageType"))),
            slice_thickness_mm=_float_or_none(ds.get("SliceThickness")),
            n_instances=n_instances,
            orientation=orientation_of(ds.get("ImageOrientationPatient")),
            kvp=_float_or_none(ds.get("KVP")),
            convolution_kernel="\\".join(kernel) if kernel else None,
            series_number=_int_or_none(ds.get("SeriesNumber")),
        )

    @classmethod
    def from_dicom_json(
        cls, attributes: Mapping[str, Any], n_instances: int | None = None
    ) -> SeriesSummary:
        """Summarise a series from DICOM JSON (PS3.18 F.2), e.g. one QIDO-RS series result.

        Parameters
        ----------
        attributes
            Mapping of 8-hex-digit tags to ``{"vr": ..., "Value": [...]}``.
        n_instances
            Overrides (0020,1209) Number of Series Related Instances when given.

        Raises
        ------
        NoSuitableSeriesError
            When the mapping has no (0020,000E) Series Instance UID.
        """

        def values(tag: str) -> list[Any]:
            element = attributes.get(tag)
            if not isinstance(element, Mapping):
                return []
            found = element.get("Value")
            return list(found) if isinstance(found, list) else []

        def first(tag: str) -> Any:
            found = values(tag)
            if not found:
                return None
            value = found[0]
            if isinstance(value, Mapping):  # PN values are objects
                return value.get("Alphabetic")
            return value

        series_uid = first("0020000E")
        if not series_uid:
            raise NoSuitableSeriesError(
                "a DICOM JSON series result has no (0020,000E) Series Instance UID"
            )
        orientation_values = values("00200037")
        count = n_instances if n_instances is not None else _int_or_none(first("00201209"))
        kernel = tuple(str(v) for v in values("00181210"))
        return cls(
            series_instance_uid=str(series_uid),
            study_instance_uid=str(first("0020000D")) if first("0020000D") else None,
            modality=str(first("00080060")) if first("00080060") else None,
            series_description=str(first("0008103E") or ""),
            image_type=tuple(str(v).upper() for v in values("00080008")),
            slice_thickness_mm=_float_or_none(first("00180050")),
            n_instances=count,
            orientation=orientation_of(orientation_values)
            if orientation_values
            else (Orientation.UNKNOWN),
            kvp=_float_or_none(first("00180060")),
            convolution_kernel="\\".join(kernel) if kernel else None,
            series_number=_int_or_none(first("00200011")),
        )

    @property
    def is_localizer(self) -> bool:
        """Image Type value 3 is ``LOCALIZER`` (a scout or topogram), PS3.3 C.8.2.1.1.1."""
        return "LOCALIZER" in self.image_type

    @property
    def is_original(self) -> bool:
        """Image Type value 1 is ``ORIGINAL`` (not a reformat or other derived image)."""
        return bool(self.image_type) and self.image_type[0] == "ORIGINAL"

    @property
    def is_axial(self) -> bool | None:
        """``True``/``False`` from the orientation; from Image Type value 3 when it is unknown;
        ``None`` when neither tells."""
        if self.orientation is not Orientation.UNKNOWN:
            return self.orientation is Orientation.AXIAL
        if len(self.image_type) >= 3:
            return self.image_type[2] == "AXIAL"
        return None

    @property
    def has_standard_thickness(self) -> bool:
        """Slice thickness within 2.5-3.0 mm (clinical.md section 1)."""
        low, high = STANDARD_THICKNESS_RANGE_MM
        thickness = self.slice_thickness_mm
        return thickness is not None and low - 1e-6 <= thickness <= high + 1e-6

    @property
    def has_calcium_description(self) -> bool:
        return is_calcium_description(self.series_description)

    def describe(self) -> str:
        """Short identification for messages: UID, number, modality, description, count."""
        parts = [self.modality or "modality?"]
        if self.series_number is not None:
            parts.append(f"#{self.series_number}")
        parts.append(repr(self.series_description))
        if self.n_instances is not None:
            parts.append(f"{self.n_instances} instance{'s' if self.n_instances != 1 else ''}")
        return f"{self.series_instance_uid} ({', '.join(parts)})"

    def rejection(self) -> str | None:
        """Why this series cannot be scored at all, or ``None`` when it can."""
        problems: list[str] = []
        if (self.modality or "").upper() != "CT":
            problems.append(f"modality {self.modality or 'missing'} is not CT")
        if self.is_localizer:
            problems.append("it is a localizer (Image Type LOCALIZER)")
        if self.is_axial is False:
            problems.append(f"slices are {self.orientation.value}, not axial")
        if self.n_instances is not None and self.n_instances < 2:
            problems.append(
                f"it has {self.n_instances} image{'s' if self.n_instances != 1 else ''}, "
                "a volume needs at least 2"
            )
        return "; ".join(problems) if problems else None


@dataclass(frozen=True, slots=True)
class SeriesSelection:
    """The series chosen and, for every series considered, why it was or was not chosen.

    ``reasons`` maps each Series Instance UID (the chosen one included) to a sentence.
    """

    chosen: SeriesSummary
    reasons: dict[str, str] = field(default_factory=dict)
    considered: tuple[SeriesSummary, ...] = ()


def _thickness_text(summary: SeriesSummary) -> str:
    if summary.slice_thickness_mm is None:
        return "slice thickness unknown"
    low, high = STANDARD_THICKNESS_RANGE_MM
    where = "within" if summary.has_standard_thickness else "outside"
    return f"{summary.slice_thickness_mm:g} mm slices ({where} {low:g}-{high:g} mm)"


def _rank(summary: SeriesSummary) -> tuple[int, int, int, int, int]:
    """Larger is better: ORIGINAL, known axial, standard thickness, calcium description, count."""
    return (
        int(summary.is_original),
        int(summary.is_axial is True),
        int(summary.has_standard_thickness),
        int(summary.has_calcium_description),
        summary.n_instances or 0,
    )


def _tie_key(summary: SeriesSummary) -> tuple[int, str]:
    number = summary.series_number if summary.series_number is not None else 1 << 30
    return (number, summary.series_instance_uid)


def _why_chosen(summary: SeriesSummary) -> str:
    parts = [
        "CT",
        "ORIGINAL" if summary.is_original else "not ORIGINAL",
        "axial" if summary.is_axial else "orientation unknown",
        _thickness_text(summary),
        (
            f"calcium-score description {summary.series_description!r}"
            if summary.has_calcium_description
            else f"description {summary.series_description!r} does not name a calcium score"
        ),
    ]
    if summary.n_instances is not None:
        parts.append(f"{summary.n_instances} instances")
    return "chosen: " + ", ".join(parts)


def _why_not(summary: SeriesSummary, chosen: SeriesSummary) -> str:
    worse: list[str] = []
    if chosen.is_original and not summary.is_original:
        kind = summary.image_type[0] if summary.image_type else "no Image Type"
        worse.append(f"{kind} rather than ORIGINAL")
    if chosen.is_axial is True and summary.is_axial is not True:
        worse.append("orientation unknown")
    if chosen.has_standard_thickness and not summary.has_standard_thickness:
        worse.append(_thickness_text(summary))
    if chosen.has_calcium_description and not summary.has_calcium_description:
        worse.append(f"description {summary.series_description!r} does not name a calcium score")
    if not worse and (summary.n_instances or 0) < (chosen.n_instances or 0):
        worse.append(f"fewer instances ({summary.n_instances or 0} < {chosen.n_instances})")
    if not worse:
        worse.append("equally suitable; the lower series number (then UID) was taken")
    return f"not chosen, {chosen.series_instance_uid} is preferred: " + "; ".join(worse)


def select_series(summaries: Iterable[SeriesSummary]) -> SeriesSelection:
    """Choose the series to score.

    Parameters
    ----------
    summaries
        One summary per series of the study (order does not matter).

    Returns
    -------
    SeriesSelection
        The chosen series and a reason for every series.

    Raises
    ------
    NoSuitableSeriesError
        When no series is an axial, non-localizer CT series of at least two images, or when
        ``summaries`` is empty. The message lists every series and what is wrong with it.

    Notes
    -----
    Series that cannot be scored (not CT, localizer, not axial, fewer than two images) are
    rejected. The rest are ranked by: ORIGINAL image type; axial orientation known; slice
    thickness within 2.5-3.0 mm (clinical.md section 1); a series description naming a calcium
    score (:data:`CALCIUM_DESCRIPTION_PATTERNS`); most instances. Remaining ties go to the lowest
    series number, then the lowest UID, so the choice is deterministic.
    """
    found = tuple(summaries)
    if not found:
        raise NoSuitableSeriesError("no series to choose from: no DICOM instances were found")
    rejections = {s.series_instance_uid: s.rejection() for s in found}
    eligible = [s for s in found if rejections[s.series_instance_uid] is None]
    if not eligible:
        listing = "; ".join(f"{s.describe()}: {rejections[s.series_instance_uid]}" for s in found)
        raise NoSuitableSeriesError(
            f"none of the {len(found)} series found is an axial CT series that can be scored: "
            f"{listing}"
        )
    best_rank = max(_rank(s) for s in eligible)
    chosen = min((s for s in eligible if _rank(s) == best_rank), key=_tie_key)
    reasons: dict[str, str] = {}
    for summary in found:
        uid = summary.series_instance_uid
        rejection = rejections[uid]
        if summary is chosen:
            reasons[uid] = _why_chosen(summary)
        elif rejection is not None:
            reasons[uid] = f"cannot be scored: {rejection}"
        else:
            reasons[uid] = _why_not(summary, chosen)
    return SeriesSelection(chosen=chosen, reasons=reasons, considered=found)
