"""Read a CT series (files or datasets in memory) into a :class:`~scoring.volume.CTVolume`.

The loader groups instances by (0020,000E) Series Instance UID, chooses the series to score
(:mod:`dicom_io.selection`), orders the slices by their position along the slice normal, checks
that they form one evenly spaced stack, and converts stored values to Hounsfield units with
(0028,1053) Rescale Slope and (0028,1052) Rescale Intercept (DICOM PS3.3 C.11.1.1.2, as pydicom's
``apply_modality_lut``).

Memory: headers are read first without pixels; the ``(z, y, x)`` array is allocated once and filled
slice by slice, so the peak is the volume plus one decoded slice and one file.

Decisions on imperfect series (each says which instance and what is wrong):

- localizer images (Image Type LOCALIZER) mixed into the series are dropped with a warning;
- files that are not DICOM or cannot be read are skipped with a warning, an error when nothing
  readable is left;
- the same SOP Instance UID twice (a file copied twice) keeps one copy with a warning; two
  different instances at one slice position are an error (two reconstructions mixed under one
  Series Instance UID cannot be told apart safely);
- missing slices (a step larger than 1.5 increments), uneven increments (beyond
  :data:`INCREMENT_TOLERANCE_FRACTION` of the increment, at least :data:`INCREMENT_TOLERANCE_MM`),
  non-axial or varying orientation, varying rows, columns or pixel spacing, a non-CT modality,
  missing pixel data and undecodable transfer syntaxes are errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    JPEG2000,
    UID,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
    MediaStorageDirectoryStorage,
)
from pydicom.valuerep import DA, DT, TM

from dicom_io.errors import (
    DICOMInputError,
    InconsistentSeriesError,
    MissingAttributeError,
    MissingPixelDataError,
    NoDICOMFilesError,
    NonAxialSeriesError,
    NonCTModalityError,
    NoSuitableSeriesError,
    PixelDecodeError,
    SeriesNotFoundError,
    SliceSpacingError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from dicom_io.selection import (
    Orientation,
    SeriesSelection,
    SeriesSummary,
    orientation_of,
    select_series,
)
from scoring.result import ScoringWarning, WarningCode
from scoring.volume import AcquisitionInfo, CTVolume, VolumeGeometry

#: Progress callback: ``(slices decoded so far, slices in the series)``.
ProgressCallback = Callable[[int, int], None]

#: Relative tolerance on slice increments: a step may differ from the median by this fraction.
INCREMENT_TOLERANCE_FRACTION: Final[float] = 0.1
#: Absolute floor of the increment tolerance (mm): covers positions rounded to 0.1 mm.
INCREMENT_TOLERANCE_MM: Final[float] = 0.1
#: A step larger than this many increments means slices are missing.
GAP_FACTOR: Final[float] = 1.5
#: Slices closer than this along the normal (mm) are at the same position.
DUPLICATE_POSITION_MM: Final[float] = 0.01
#: Direction cosines of (0020,0037) may differ by this much between slices of one series.
ORIENTATION_TOLERANCE: Final[float] = 1e-3
#: Pixel spacings may differ by this fraction between slices of one series.
SPACING_TOLERANCE_FRACTION: Final[float] = 1e-3

_LOSSY_SYNTAXES: Final[frozenset[str]] = frozenset(
    {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000}
)
_INT16_MIN: Final[int] = -32768
_INT16_MAX: Final[int] = 32767
_LISTED: Final[int] = 5


@dataclass(frozen=True, slots=True)
class LoadedSeries:
    """A CT series read into a volume, with what the reader noticed.

    Parameters
    ----------
    volume
        The ``(z, y, x)`` volume in HU (``int16`` for integral rescale, ``float32`` otherwise),
        slices ordered along the slice normal.
    warnings
        Problems that did not stop the loading (code ``WarningCode.SERIES``).
    selection
        The series chosen and why, and why every other series was not.
    files_read
        Distinct files examined (every file found, whatever its series); 0 for datasets in
        memory.
    bytes_read
        Total size of the files of the chosen series, which were read in full.
    sop_instance_uids
        (0008,0018) SOP Instance UID of every slice, in slice order.
    """

    volume: CTVolume
    warnings: tuple[ScoringWarning, ...]
    selection: SeriesSelection
    files_read: int = 0
    bytes_read: int = 0
    sop_instance_uids: tuple[str, ...] = ()


@dataclass(slots=True)
class _Instance:
    """One instance: its header (or whole dataset, for datasets in memory) and where it is."""

    name: str
    header: Dataset
    path: Path | None = None
    size: int = 0

    @property
    def sop_instance_uid(self) -> str:
        return str(self.header.get("SOPInstanceUID", "") or "?")

    @property
    def label(self) -> str:
        return f"{self.name} (SOPInstanceUID {self.sop_instance_uid})"

    @property
    def is_localizer(self) -> bool:
        image_type = self.header.get("ImageType")
        if image_type is None:
            return False
        values = [image_type] if isinstance(image_type, str) else list(image_type)
        return "LOCALIZER" in (str(v).strip().upper() for v in values)

    def dataset_with_pixels(self) -> Dataset:
        if self.path is None:
            return self.header
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return dcmread(self.path)
        except Exception as exc:  # any failure to parse is the file's fault, named below
            raise PixelDecodeError(f"{self.label}: cannot be read again: {exc}") from exc


def _series_warning(message: str) -> ScoringWarning:
    return ScoringWarning(code=WarningCode.SERIES, message=message)


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _collect_paths(source: Path | str | Sequence[Path | str]) -> list[tuple[Path, str]]:
    """Every file under ``source`` (folders searched recursively), in a stable order, with the
    name used in messages (the path below the folder given, or the file name)."""
    roots = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    if not roots:
        raise NoDICOMFilesError("no path given: pass a folder or the files of a series")
    paths: list[tuple[Path, str]] = []
    for root in roots:
        if root.is_dir():
            found = sorted(p for p in root.rglob("*") if p.is_file())
            paths.extend((p, p.relative_to(root).as_posix()) for p in found)
        elif root.is_file():
            paths.append((root, root.name))
        else:
            raise NoDICOMFilesError(f"{root}: no such file or folder")
    if not paths:
        raise NoDICOMFilesError(f"{_listing([str(r) for r in roots])}: no files found")
    return paths


def _read_headers(
    paths: Sequence[tuple[Path, str]],
) -> tuple[list[_Instance], list[ScoringWarning]]:
    """Read every header (no pixels); skip files that are not DICOM images, with a warning."""
    instances: list[_Instance] = []
    unreadable: list[str] = []
    for path, name in paths:
        try:
            # pydicom warns about non-conformant values that a reader cannot act on; what matters
            # for scoring is checked below with our own messages.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # not DICOM, truncated or damaged: skipped and reported
            unreadable.append(f"{name} ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        sop_class = header.get("SOPClassUID") or getattr(
            header.get("file_meta"), "MediaStorageSOPClassUID", None
        )
        if sop_class == MediaStorageDirectoryStorage:
            continue
        instances.append(_Instance(name=name, header=header, path=path, size=_size(path)))
    found: list[ScoringWarning] = []
    if unreadable and instances:
        found.append(
            _series_warning(
                f"skipped {len(unreadable)} file(s) that are not readable DICOM: "
                f"{_listing(unreadable)}"
            )
        )
    if not instances:
        detail = f": {_listing(unreadable)}" if unreadable else ""
        raise NoDICOMFilesError(
            f"none of the {len(paths)} file(s) is a readable DICOM instance{detail}"
        )
    return instances, found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _group(
    instances: Sequence[_Instance],
) -> tuple[dict[str, list[_Instance]], list[ScoringWarning]]:
    groups: dict[str, list[_Instance]] = {}
    orphans: list[str] = []
    for instance in instances:
        uid = str(instance.header.get("SeriesInstanceUID", "") or "")
        if not uid:
            orphans.append(instance.label)
            continue
        groups.setdefault(uid, []).append(instance)
    found: list[ScoringWarning] = []
    if orphans:
        if not groups:
            raise MissingAttributeError(
                f"no instance has a (0020,000E) Series Instance UID: {_listing(orphans)}"
            )
        found.append(
            _series_warning(
                f"skipped {len(orphans)} instance(s) without a Series Instance UID: "
                f"{_listing(orphans)}"
            )
        )
    return groups, found


def _summarise(instances: Sequence[_Instance]) -> SeriesSummary:
    images = [i for i in instances if not i.is_localizer]
    representative = (images or list(instances))[0]
    return SeriesSummary.from_dataset(
        representative.header, n_instances=len(images) if images else len(instances)
    )


def _require_scorable(summary: SeriesSummary, instances: Sequence[_Instance]) -> None:
    """Raise the specific error for a series that was asked for (or is the only one)."""
    first = instances[0].label
    if (summary.modality or "").upper() != "CT":
        raise NonCTModalityError(
            f"series {summary.series_instance_uid}: {first} has modality "
            f"{summary.modality or 'missing'}, not CT; calcium is scored on CT images only"
        )
    if summary.is_localizer:
        raise NoSuitableSeriesError(
            f"series {summary.series_instance_uid} holds only localizer images (e.g. {first}); "
            "choose the axial calcium-score series"
        )
    if summary.is_axial is False:
        raise NonAxialSeriesError(
            f"series {summary.series_instance_uid}: {first} is {summary.orientation.value}, not "
            "axial; score the original axial reconstruction"
        )


def _choose(
    groups: dict[str, list[_Instance]], series_instance_uid: str | None
) -> tuple[str, SeriesSelection]:
    summaries = {uid: _summarise(members) for uid, members in groups.items()}
    if series_instance_uid is not None:
        if series_instance_uid not in groups:
            raise SeriesNotFoundError(
                f"series {series_instance_uid} is not among the {len(groups)} series read: "
                + "; ".join(s.describe() for s in summaries.values())
            )
        chosen = summaries[series_instance_uid]
        _require_scorable(chosen, groups[series_instance_uid])
        reasons = {
            uid: "not chosen: another series was requested"
            for uid in summaries
            if uid != series_instance_uid
        }
        reasons[series_instance_uid] = "chosen: requested by its Series Instance UID"
        return series_instance_uid, SeriesSelection(
            chosen=chosen, reasons=reasons, considered=tuple(summaries.values())
        )
    if len(groups) == 1:
        (uid,) = groups
        _require_scorable(summaries[uid], groups[uid])
    selection = select_series(summaries.values())
    return selection.chosen.series_instance_uid, selection


def _floats(instance: _Instance, keyword: str, tag: str, count: int) -> list[float]:
    try:
        value = instance.header.get(keyword)
        numbers = [float(v) for v in value] if value is not None else []
    except (TypeError, ValueError) as exc:
        raise MissingAttributeError(
            f"{instance.label}: {tag} {keyword} is not numeric: {value!r}"
        ) from exc
    if len(numbers) != count or not all(np.isfinite(numbers)):
        raise MissingAttributeError(
            f"{instance.label}: {tag} {keyword} must hold {count} numbers, got {value!r}"
        )
    return numbers


def _integer(instance: _Instance, keyword: str, tag: str) -> int | None:
    """An integer attribute, ``None`` when absent or empty."""
    try:
        value = instance.header.get(keyword)
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError) as exc:
        raise MissingAttributeError(
            f"{instance.label}: {tag} {keyword} is not an integer ({exc})"
        ) from exc


def _check_image(instance: _Instance) -> tuple[int, int]:
    header = instance.header
    rows = _integer(instance, "Rows", "(0028,0010)")
    columns = _integer(instance, "Columns", "(0028,0011)")
    if not rows or not columns:
        raise MissingAttributeError(f"{instance.label}: no (0028,0010) Rows or (0028,0011) Columns")
    frames = _integer(instance, "NumberOfFrames", "(0028,0008)")
    if frames is not None and frames > 1:
        raise UnsupportedImageError(
            f"{instance.label}: multi-frame image ({frames} frames); export the series as "
            "single-frame CT Image Storage instances"
        )
    samples = _integer(instance, "SamplesPerPixel", "(0028,0002)")
    if samples is not None and samples != 1:
        raise UnsupportedImageError(
            f"{instance.label}: {samples} samples per pixel (colour); CT images are greyscale"
        )
    meta = getattr(header, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        raise MissingAttributeError(f"{instance.label}: no (0002,0010) Transfer Syntax UID")
    try:
        decoder = get_decoder(UID(syntax))
    except NotImplementedError as exc:
        raise UnsupportedTransferSyntaxError(
            f"{instance.label}: transfer syntax {UID(syntax).name} ({syntax}) cannot be decoded; "
            "ask the PACS for Explicit VR Little Endian"
        ) from exc
    if not decoder.is_available:
        missing = "; ".join(str(d) for d in decoder.missing_dependencies)
        raise UnsupportedTransferSyntaxError(
            f"{instance.label}: no decoder installed for {UID(syntax).name} ({syntax}); "
            f"install one of: {missing}"
        )
    return rows, columns


def _rescale(instance: _Instance) -> tuple[float, float, bool]:
    """``(slope, intercept, present)`` from (0028,1053) and (0028,1052)."""
    header = instance.header
    slope_value = header.get("RescaleSlope")
    intercept_value = header.get("RescaleIntercept")
    present = slope_value is not None and intercept_value is not None
    try:
        slope = float(slope_value) if slope_value not in (None, "") else 1.0
        intercept = float(intercept_value) if intercept_value not in (None, "") else 0.0
    except (TypeError, ValueError) as exc:
        raise MissingAttributeError(
            f"{instance.label}: Rescale Slope/Intercept are not numbers: "
            f"{slope_value!r}/{intercept_value!r}"
        ) from exc
    if slope == 0 or not np.isfinite(slope) or not np.isfinite(intercept):
        raise MissingAttributeError(
            f"{instance.label}: unusable (0028,1053) Rescale Slope {slope_value!r} or "
            f"(0028,1052) Rescale Intercept {intercept_value!r}"
        )
    return slope, intercept, present


def _parse_datetime(header: Dataset) -> datetime | None:
    """(0008,002A) Acquisition DateTime, else Acquisition, Series or Study Date and Time."""
    candidates: list[tuple[Any, Any]] = [
        (header.get("AcquisitionDateTime"), None),
        (header.get("AcquisitionDate"), header.get("AcquisitionTime")),
        (header.get("SeriesDate"), header.get("SeriesTime")),
        (header.get("StudyDate"), header.get("StudyTime")),
    ]
    for first, second in candidates:
        if not first:
            continue
        try:
            if second is None and len(str(first)) > 8:
                return datetime.fromisoformat(DT(str(first)).isoformat())
            day = DA(str(first))
            if second:
                moment = TM(str(second))
                return datetime.combine(day, moment)
            return datetime(day.year, day.month, day.day)
        except (TypeError, ValueError):
            continue
    return None


def _acquisition(header: Dataset) -> AcquisitionInfo:
    def text(keyword: str) -> str | None:
        value = header.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value.strip() or None
        return "\\".join(str(v).strip() for v in value) or None

    def number(keyword: str) -> float | None:
        value = header.get(keyword)
        try:
            return float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    device = header.get("CalciumScoringMassFactorDevice")  # (0018,9352)
    if device is not None:
        device_values = [device] if isinstance(device, float | int) else list(device)
        mass_factor_device = tuple(float(v) for v in device_values) or None
    else:
        mass_factor_device = None
    return AcquisitionInfo(
        kvp=number("KVP"),
        reconstruction_kernel=text("ConvolutionKernel"),
        mass_factor_patient=number("CalciumScoringMassFactorPatient"),  # (0018,9351)
        mass_factor_device=mass_factor_device,
        manufacturer=text("Manufacturer"),
        model=text("ManufacturerModelName"),
        study_instance_uid=text("StudyInstanceUID"),
        series_instance_uid=text("SeriesInstanceUID"),
        series_description=text("SeriesDescription"),
        acquisition_datetime=_parse_datetime(header),
        patient_position=text("PatientPosition"),
    )


def _order_slices(
    instances: list[_Instance], found: list[ScoringWarning]
) -> tuple[list[_Instance], npt.NDArray[np.float64], list[float], float]:
    """Check the grid and the stack; return the slices in order, their positions, the
    orientation and the increment."""
    reference = instances[0]
    rows, columns = _check_image(reference)
    spacing = _floats(reference, "PixelSpacing", "(0028,0030)", 2)
    if min(spacing) <= 0:
        raise MissingAttributeError(
            f"{reference.label}: (0028,0030) PixelSpacing must be positive, got {spacing}"
        )
    orientation = _floats(reference, "ImageOrientationPatient", "(0020,0037)", 6)
    for instance in instances[1:]:
        if _check_image(instance) != (rows, columns):
            raise InconsistentSeriesError(
                f"{instance.label} is {int(instance.header.Rows)} x {int(instance.header.Columns)}"
                f" pixels but {reference.label} is {rows} x {columns}; one series must have one "
                "size"
            )
        other_spacing = _floats(instance, "PixelSpacing", "(0028,0030)", 2)
        if not np.allclose(other_spacing, spacing, rtol=SPACING_TOLERANCE_FRACTION, atol=0):
            raise InconsistentSeriesError(
                f"{instance.label} has pixel spacing {other_spacing} mm but {reference.label} "
                f"has {spacing} mm; one series must have one pixel spacing"
            )
        other_orientation = _floats(instance, "ImageOrientationPatient", "(0020,0037)", 6)
        if not np.allclose(other_orientation, orientation, rtol=0, atol=ORIENTATION_TOLERANCE):
            raise NonAxialSeriesError(
                f"{instance.label} has Image Orientation (Patient) {other_orientation} but "
                f"{reference.label} has {orientation}; all slices must lie in one orientation"
            )
    plane = orientation_of(orientation)
    if plane is not Orientation.AXIAL:
        raise NonAxialSeriesError(
            f"{reference.label}: slices are {plane.value} (Image Orientation (Patient) "
            f"{orientation}), not axial; score the original axial reconstruction"
        )
    normal = np.cross(orientation[:3], orientation[3:])
    normal = normal / np.linalg.norm(normal)
    positions = np.array(
        [_floats(i, "ImagePositionPatient", "(0020,0032)", 3) for i in instances],
        dtype=np.float64,
    )
    distance = positions @ normal
    order = np.argsort(distance, kind="stable")
    ordered = [instances[int(k)] for k in order]
    positions = positions[order]
    distance = distance[order]

    # Duplicates: the same instance twice is harmless; two different images at one place are not.
    keep = [0]
    dropped: list[str] = []
    for k in range(1, len(ordered)):
        previous = ordered[keep[-1]]
        if abs(distance[k] - distance[keep[-1]]) < DUPLICATE_POSITION_MM:
            if ordered[k].sop_instance_uid == previous.sop_instance_uid:
                dropped.append(ordered[k].name)
                continue
            raise SliceSpacingError(
                f"{ordered[k].label} and {previous.label} are two different images at the same "
                f"position ({distance[k]:.2f} mm along the slice normal); the series mixes "
                "reconstructions: export each separately"
            )
        keep.append(k)
    if dropped:
        found.append(
            _series_warning(
                f"ignored {len(dropped)} duplicate copy(ies) of instances already read: "
                f"{_listing(dropped)}"
            )
        )
    ordered = [ordered[k] for k in keep]
    positions = positions[keep]
    distance = distance[keep]
    if len(ordered) < 2:
        raise SliceSpacingError(
            f"the series has {len(ordered)} distinct slice position(s) ({reference.label}); a "
            "volume needs at least 2"
        )
    steps = np.diff(distance)
    increment = float(np.median(steps))
    tolerance = max(INCREMENT_TOLERANCE_MM, INCREMENT_TOLERANCE_FRACTION * increment)
    for k, step in enumerate(steps):
        if step > GAP_FACTOR * increment:
            missing = round(step / increment) - 1
            raise SliceSpacingError(
                f"missing slices between {ordered[k].label} and {ordered[k + 1].label}: a step of "
                f"{step:.2f} mm where the increment is {increment:.2f} mm (about {missing} slice(s)"
                " missing); re-send the complete series"
            )
        if abs(step - increment) > tolerance:
            raise SliceSpacingError(
                f"uneven slice increment between {ordered[k].label} and {ordered[k + 1].label}: "
                f"{step:.2f} mm where the others are {increment:.2f} mm (tolerance "
                f"{tolerance:.2f} mm)"
            )
    return ordered, positions, orientation, increment


def _decode(dataset: Dataset, syntax: UID, instance: _Instance) -> npt.NDArray[Any]:
    """Decode the single frame of ``dataset`` (the decoders do not cache it on the dataset)."""
    decoder = get_decoder(syntax)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return decoder.as_array(dataset, index=0)[0]
    except Exception as exc:  # a damaged stream: name the instance, keep the cause
        raise PixelDecodeError(
            f"{instance.label}: pixel data ({syntax.name}) cannot be decoded: {exc}"
        ) from exc


def _build(
    instances: list[_Instance],
    selection: SeriesSelection,
    found: list[ScoringWarning],
    progress: ProgressCallback | None,
    files_read: int,
) -> LoadedSeries:
    localizers = [i for i in instances if i.is_localizer]
    images = [i for i in instances if not i.is_localizer]
    if localizers:
        found.append(
            _series_warning(
                f"dropped {len(localizers)} localizer image(s) mixed into the series: "
                f"{_listing([i.label for i in localizers])}"
            )
        )
    if not images:
        raise NoSuitableSeriesError(
            f"series {selection.chosen.series_instance_uid} holds only localizer images"
        )
    ordered, positions, orientation, increment = _order_slices(images, found)
    reference = ordered[0]
    rows, columns = int(reference.header.Rows), int(reference.header.Columns)
    spacing = _floats(reference, "PixelSpacing", "(0028,0030)", 2)

    rescales = [_rescale(i) for i in ordered]
    if not all(present for _, _, present in rescales):
        absent = [i.label for i, (_, _, p) in zip(ordered, rescales, strict=True) if not p]
        found.append(
            _series_warning(
                f"{len(absent)} slice(s) have no Rescale Slope/Intercept; stored values were "
                f"taken as HU: {_listing(absent)}"
            )
        )
    integral = all(float(s).is_integer() and float(b).is_integer() for s, b, _ in rescales)
    shape = (len(ordered), rows, columns)
    # int16 keeps the volume at its stored size; float32 only when the rescale is fractional.
    hu: npt.NDArray[np.int16] | npt.NDArray[np.float32] = (
        np.empty(shape, dtype=np.int16) if integral else np.empty(shape, dtype=np.float32)
    )

    lossy: list[str] = []
    clipped: list[str] = []
    bytes_read = 0
    for z, (instance, (slope, intercept, _)) in enumerate(zip(ordered, rescales, strict=True)):
        dataset = instance.dataset_with_pixels()
        if instance.path is not None:
            bytes_read += instance.size
        if "PixelData" not in dataset:
            raise MissingPixelDataError(f"{instance.label}: no (7FE0,0010) Pixel Data")
        syntax = UID(dataset.file_meta.TransferSyntaxUID)
        if syntax in _LOSSY_SYNTAXES or str(dataset.get("LossyImageCompression", "")) == "01":
            lossy.append(instance.name)
        stored = _decode(dataset, syntax, instance)
        if stored.shape != (rows, columns):
            raise PixelDecodeError(
                f"{instance.label}: decoded pixel data has shape {stored.shape}, expected "
                f"({rows}, {columns})"
            )
        if integral:
            values = stored.astype(np.int32)
            if slope != 1:
                values *= int(slope)
            if intercept:
                values += int(intercept)
            if values.min() < _INT16_MIN or values.max() > _INT16_MAX:
                clipped.append(instance.name)
                np.clip(values, _INT16_MIN, _INT16_MAX, out=values)
            hu[z] = values
        else:
            hu[z] = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        del dataset, stored
        if progress is not None:
            progress(z + 1, len(ordered))
    if lossy:
        found.append(
            _series_warning(
                f"{len(lossy)} slice(s) are lossy-compressed, which alters HU: {_listing(lossy)}"
            )
        )
    if clipped:
        found.append(
            _series_warning(
                f"{len(clipped)} slice(s) had values beyond the 16-bit HU range, clipped to "
                f"{_INT16_MIN}..{_INT16_MAX}: {_listing(clipped)}"
            )
        )

    thickness_value = reference.header.get("SliceThickness")
    try:
        thickness = float(thickness_value) if thickness_value not in (None, "") else None
    except (TypeError, ValueError):
        thickness = None
    if thickness is None or thickness <= 0:
        found.append(
            _series_warning(
                f"{reference.label}: no usable (0018,0050) Slice Thickness; the slice increment "
                f"{increment:.2f} mm is used instead"
            )
        )
        thickness = increment
    declared = reference.header.get("SpacingBetweenSlices")
    try:
        declared_mm = abs(float(declared)) if declared not in (None, "") else None
    except (TypeError, ValueError):
        declared_mm = None
    if declared_mm is not None and abs(declared_mm - increment) > max(
        INCREMENT_TOLERANCE_MM, INCREMENT_TOLERANCE_FRACTION * increment
    ):
        found.append(
            _series_warning(
                f"(0018,0088) Spacing Between Slices says {declared_mm:g} mm but the slice "
                f"positions are {increment:.2f} mm apart; the positions are used"
            )
        )

    geometry = VolumeGeometry(
        pixel_spacing_mm=(spacing[0], spacing[1]),
        row_direction=(orientation[0], orientation[1], orientation[2]),
        column_direction=(orientation[3], orientation[4], orientation[5]),
        slice_positions_mm=positions,
        slice_thickness_mm=thickness,
        increment_mm=increment,
    )
    volume = CTVolume(hu=hu, geometry=geometry, acquisition=_acquisition(reference.header))
    return LoadedSeries(
        volume=volume,
        warnings=tuple(found),
        selection=selection,
        files_read=files_read,
        bytes_read=bytes_read,
        sop_instance_uids=tuple(i.sop_instance_uid for i in ordered),
    )


@contextmanager
def _input_boundary() -> Iterator[None]:
    """Keep pydicom's warnings about non-conformant values quiet (the checks here say what
    matters, in our words) and turn a header value that still could not be interpreted into a
    :class:`DICOMInputError` rather than a traceback."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    except DICOMInputError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        raise DICOMInputError(
            f"the series has a value that cannot be interpreted: {type(exc).__name__}: {exc}"
        ) from exc


def load_series(
    source: Path | str | Sequence[Path | str],
    *,
    series_instance_uid: str | None = None,
    progress: ProgressCallback | None = None,
) -> LoadedSeries:
    """Read a CT series from a folder (searched recursively) or a list of files.

    Parameters
    ----------
    source
        A folder, a file, or a sequence of files and folders.
    series_instance_uid
        The series to read; when ``None`` the series is chosen by
        :func:`dicom_io.selection.select_series`.
    progress
        Called with ``(slices decoded, slices in the series)`` after each slice.

    Returns
    -------
    LoadedSeries
        The volume in HU with its geometry and acquisition details, the warnings and the selection.

    Raises
    ------
    DICOMInputError
        One of its subclasses, with a message naming the instance and the problem:
        :class:`~dicom_io.errors.NoDICOMFilesError`,
        :class:`~dicom_io.errors.NoSuitableSeriesError`,
        :class:`~dicom_io.errors.SeriesNotFoundError`,
        :class:`~dicom_io.errors.NonCTModalityError`,
        :class:`~dicom_io.errors.NonAxialSeriesError`,
        :class:`~dicom_io.errors.InconsistentSeriesError`,
        :class:`~dicom_io.errors.SliceSpacingError`,
        :class:`~dicom_io.errors.MissingAttributeError`,
        :class:`~dicom_io.errors.UnsupportedImageError`,
        :class:`~dicom_io.errors.MissingPixelDataError`,
        :class:`~dicom_io.errors.UnsupportedTransferSyntaxError`,
        :class:`~dicom_io.errors.PixelDecodeError`.
    """
    with _input_boundary():
        paths = _collect_paths(source)
        instances, found = _read_headers(paths)
        groups, more = _group(instances)
        found.extend(more)
        uid, selection = _choose(groups, series_instance_uid)
        return _build(groups[uid], selection, found, progress, files_read=len(paths))


def volume_from_datasets(
    datasets: Sequence[Dataset],
    *,
    series_instance_uid: str | None = None,
    progress: ProgressCallback | None = None,
) -> LoadedSeries:
    """Build the volume from instances already in memory (e.g. retrieved over WADO-RS).

    Parameters
    ----------
    datasets
        Complete instances (with ``file_meta`` and pixel data), of one or more series.
    series_instance_uid, progress
        As for :func:`load_series`.

    Returns
    -------
    LoadedSeries
        As :func:`load_series`, with ``files_read`` and ``bytes_read`` 0. The datasets are not
        modified (decoded pixels are not cached on them).

    Raises
    ------
    DICOMInputError
        As :func:`load_series`.
    """
    if not datasets:
        raise NoDICOMFilesError("no datasets given: the series retrieved holds no instances")
    instances: list[_Instance] = []
    for number, dataset in enumerate(datasets, start=1):
        if not isinstance(dataset, Dataset):
            raise DICOMInputError(
                f"item {number} is a {type(dataset).__name__}, not a pydicom Dataset"
            )
        filename = getattr(dataset, "filename", None)
        name = (
            Path(filename).name if isinstance(filename, str) and filename else f"dataset #{number}"
        )
        instances.append(_Instance(name=name, header=dataset))
    with _input_boundary():
        groups, found = _group(instances)
        uid, selection = _choose(groups, series_instance_uid)
        return _build(groups[uid], selection, found, progress, files_read=0)
