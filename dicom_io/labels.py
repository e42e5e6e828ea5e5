"""Read a reader's artery labels (DICOM SEG, NIfTI or NumPy) aligned to a CT series.

A clinician who corrects the automatic labelling exports a label volume from a viewer; this module
turns it into the ``(z, y, x)`` ``uint8`` artery-code map that
:func:`scoring.labels_from_label_map` consumes (0 = not coronary, 1 = LM, 2 = LAD, 3 = LCX,
4 = RCA, the codes of :class:`scoring.Artery`). Nothing is resampled: a label volume that does not
lie on the series' voxel grid is refused with a message naming the mismatch.

Formats
-------
``.npy``
    A ``(z, y, x)`` integer array of artery codes with exactly the series' shape.
``.nii`` / ``.nii.gz``
    An integer label image of artery codes. Its affine (RAS) is used to find how its axes map
    onto the series' slices, rows and columns (any permutation and flips, as converters such as
    dcm2niix produce), so it must have been written from the same series.
``.dcm`` (or any other file starting with the DICOM preamble)
    A DICOM Segmentation (SOP class 1.2.840.10008.5.1.4.1.1.66.4). Segments are recognised by
    (0062,0005) Segment Label, or by their (0062,000F) Segmented Property Type Code: SNOMED CT
    3227004 left main, 59438005 left anterior descending, 57396003 circumflex, 13647002 right
    coronary artery (DICOM CID 3016, see ``fhir-dicom.md``). Segments naming none of the four
    arteries are ignored. Each frame is placed on the series slice whose position along the slice
    normal matches its (0020,0032) Image Position (Patient).

References
----------
DICOM PS3.3 C.8.20 Segmentation IOD; A.51 Segmentation IOD Module Table.
NIfTI-1 data format (qform/sform, RAS+ world coordinates), nifti.nimh.nih.gov.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.errors import LabelMapError
from scoring.parameters import Artery
from scoring.volume import CTVolume, VolumeGeometry

__all__ = ["artery_from_segment", "read_label_map"]

#: SNOMED CT codes of the four scored arteries (DICOM CID 3016; fhir-dicom.md section 2).
SNOMED_ARTERY_CODES: dict[str, Artery] = {
    "3227004": Artery.LM,
    "59438005": Artery.LAD,
    "57396003": Artery.LCX,
    "13647002": Artery.RCA,
}

# Segment label words, matched on the lower-cased label with punctuation turned into spaces. The
# more specific names come first so that "left main" is not read as "left ...".
_NAME_PATTERNS: tuple[tuple[re.Pattern[str], Artery], ...] = (
    (re.compile(r"\b(lm|lmca|left main)\b"), Artery.LM),
    (re.compile(r"\b(lad|left anterior descending)\b"), Artery.LAD),
    (re.compile(r"\b(lcx|cx|circumflex)\b"), Artery.LCX),
    (re.compile(r"\b(rca|right coronary)\b"), Artery.RCA),
)

# A DICOM SEG frame belongs to a series slice when its position along the slice normal lies
# within this fraction of the slice increment; in-plane origins must agree within half a pixel.
_SLICE_TOLERANCE_FRACTION = 0.25
_ORIENTATION_TOLERANCE = 1e-3

_SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"


def artery_from_segment(label: str | None, property_code: str | None = None) -> Artery | None:
    """The artery a segment names, from its SNOMED code or its label; ``None`` if none.

    Parameters
    ----------
    label
        (0062,0005) Segment Label, e.g. ``"LAD"``, ``"Left main"``, ``"right coronary artery"``.
    property_code
        (0008,0100) Code Value of the (0062,000F) Segmented Property Type Code Sequence.

    Returns
    -------
    Artery or None
        The artery, or ``None`` for a segment that names none of LM, LAD, LCX, RCA.
    """
    if property_code is not None and property_code.strip() in SNOMED_ARTERY_CODES:
        return SNOMED_ARTERY_CODES[property_code.strip()]
    if not label:
        return None
    words = re.sub(r"[^a-z0-9]+", " ", label.lower()).strip()
    for pattern, artery in _NAME_PATTERNS:
        if pattern.search(words):
            return artery
    return None


def read_label_map(path: str | Path, volume: CTVolume) -> npt.NDArray[np.uint8]:
    """Read a reader's artery label volume aligned to ``volume``.

    Parameters
    ----------
    path
        A ``.npy`` array, a NIfTI image (``.nii``, ``.nii.gz``) or a DICOM Segmentation file.
    volume
        The CT series the labels were drawn on (only its shape and geometry are used).

    Returns
    -------
    numpy.ndarray
        ``(z, y, x)`` ``uint8`` map of artery codes (0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA) with the
        shape of ``volume``.

    Raises
    ------
    LabelMapError
        When the file is missing or unreadable, is of an unknown format, carries values that are
        not artery codes, names no artery, or does not lie on the series' voxel grid (the message
        names the mismatch: shape, orientation, pixel spacing, slice positions).
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise LabelMapError(f"label file {str(file_path)!r} does not exist or is not a file")
    name = file_path.name.lower()
    if name.endswith(".npy"):
        return _read_npy(file_path, volume.shape)
    if name.endswith((".nii", ".nii.gz")):
        return _read_nifti(file_path, volume)
    if name.endswith(".dcm") or _has_dicom_preamble(file_path):
        return _read_seg(file_path, volume)
    raise LabelMapError(
        f"{file_path.name}: unknown label format; use a DICOM SEG (.dcm), NIfTI (.nii, .nii.gz) "
        "or NumPy (.npy) label volume"
    )


def _has_dicom_preamble(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def _as_codes(values: npt.NDArray[Any], source: str) -> npt.NDArray[np.uint8]:
    """Check that ``values`` holds only artery codes 0-4 and return them as ``uint8``."""
    if values.dtype == np.bool_ or not (
        np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    ):
        raise LabelMapError(
            f"{source}: label values must be integers 0-4 (1=LM 2=LAD 3=LCX 4=RCA), "
            f"got dtype {values.dtype}"
        )
    if np.issubdtype(values.dtype, np.floating) and (
        not np.all(np.isfinite(values)) or np.any(values != np.round(values))
    ):
        raise LabelMapError(
            f"{source}: label values must be whole numbers 0-4 (1=LM 2=LAD 3=LCX 4=RCA)"
        )
    unexpected = np.setdiff1d(np.unique(values), np.arange(5))
    if unexpected.size:
        shown = ", ".join(str(v) for v in unexpected[:5].tolist())
        raise LabelMapError(
            f"{source}: unexpected label values {shown}; only 0 (none), 1=LM, 2=LAD, 3=LCX, "
            "4=RCA are artery codes"
        )
    return np.ascontiguousarray(values, dtype=np.uint8)


def _check_shape(shape: Sequence[int], expected: tuple[int, int, int], source: str) -> None:
    if tuple(shape) != expected:
        raise LabelMapError(
            f"{source}: label volume has shape {tuple(shape)} but the series is {expected} "
            "(slices, rows, columns); export the labels from the same series"
        )


def _read_npy(path: Path, shape: tuple[int, int, int]) -> npt.NDArray[np.uint8]:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise LabelMapError(f"{path.name}: not a readable NumPy array ({exc})") from exc
    if values.ndim != 3:
        raise LabelMapError(
            f"{path.name}: label array must be 3-D (slices, rows, columns), got {values.ndim}-D"
        )
    _check_shape(values.shape, shape, path.name)
    return _as_codes(values, path.name)


# --------------------------------------------------------------------------------------- NIfTI


def _voxel_to_lps(geometry: VolumeGeometry) -> npt.NDArray[np.float64]:
    """4x4 affine from ``(x, y, z)`` = (column, row, slice) indices to LPS patient mm."""
    positions = geometry.slice_positions_mm
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(geometry.row_direction) * geometry.pixel_spacing_mm[1]
    affine[:3, 1] = np.asarray(geometry.column_direction) * geometry.pixel_spacing_mm[0]
    if positions.shape[0] > 1:
        affine[:3, 2] = (positions[-1] - positions[0]) / (positions.shape[0] - 1)
    else:
        affine[:3, 2] = geometry.slice_normal * geometry.increment_mm
    affine[:3, 3] = positions[0]
    return affine


def _read_nifti(path: Path, volume: CTVolume) -> npt.NDArray[np.uint8]:
    import nibabel as nib

    try:
        image: Any = nib.load(str(path))
        header = image.header
        values = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for a broken file
        raise LabelMapError(f"{path.name}: not a readable NIfTI image ({exc})") from exc
    if int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        raise LabelMapError(
            f"{path.name}: the NIfTI image has no orientation (qform_code = sform_code = 0), so it "
            "cannot be aligned to the series; write it with its affine"
        )
    values = np.squeeze(values)
    if values.ndim != 3:
        raise LabelMapError(f"{path.name}: label image must be 3-D, got {values.ndim}-D")
    # voxel (x, y, z) of the series -> LPS -> RAS -> NIfTI (i, j, k)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    series_to_nifti = np.linalg.inv(np.asarray(image.affine, dtype=float)) @ (
        lps_to_ras @ _voxel_to_lps(volume.geometry)
    )
    linear = series_to_nifti[:3, :3]
    permutation = np.rint(linear).astype(np.int64)
    if not np.allclose(linear, permutation, atol=0.02) or sorted(
        np.abs(permutation).sum(axis=0).tolist()
    ) != [1, 1, 1]:
        raise LabelMapError(
            f"{path.name}: the NIfTI grid is not the series' voxel grid (its axes, pixel spacing "
            "or slice spacing differ); export the labels from the same series without resampling"
        )
    offset = series_to_nifti[:3, 3]
    if not np.allclose(offset, np.rint(offset), atol=0.1):
        raise LabelMapError(
            f"{path.name}: the NIfTI image is shifted by a fraction of a voxel against the series"
        )
    # Series axis a (x, y, z) runs along NIfTI axis nifti_axis[a] with sign signs[a].
    nifti_axis = np.argmax(np.abs(permutation), axis=0)
    signs = permutation[nifti_axis, np.arange(3)]
    z, y, x = volume.shape
    series_xyz = (x, y, z)
    start = np.rint(offset).astype(np.int64)
    index: list[npt.NDArray[np.int64]] = [np.zeros(1, dtype=np.int64)] * 3
    for axis in range(3):
        index[nifti_axis[axis]] = start[nifti_axis[axis]] + signs[axis] * np.arange(
            series_xyz[axis]
        )
    for axis_index, size in zip(index, values.shape, strict=True):
        if axis_index.min() < 0 or axis_index.max() >= size:
            raise LabelMapError(
                f"{path.name}: the NIfTI image (shape {values.shape}) does not cover the series "
                f"({z} slices of {y} x {x}); export the labels from the same series"
            )
    picked = values[np.ix_(index[0], index[1], index[2])]
    # picked is indexed in NIfTI axis order; reorder to the series' (x, y, z), then to (z, y, x).
    order = [int(nifti_axis[a]) for a in range(3)]
    xyz = np.transpose(picked, order)
    return _as_codes(np.ascontiguousarray(np.transpose(xyz, (2, 1, 0))), path.name)


# ------------------------------------------------------------------------------------ DICOM SEG


def _float_list(value: Any) -> list[float]:
    return [float(v) for v in value]


def _read_seg(path: Path, volume: CTVolume) -> npt.NDArray[np.uint8]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise LabelMapError(f"{path.name}: not a readable DICOM file ({exc})") from exc
    if str(dataset.get("SOPClassUID", "")) != _SEG_SOP_CLASS_UID:
        raise LabelMapError(
            f"{path.name}: not a DICOM Segmentation (SOP Class UID "
            f"{dataset.get('SOPClassUID', 'missing')}); export the labels as DICOM SEG"
        )
    segment_artery: dict[int, Artery] = {}
    for item in dataset.get("SegmentSequence", []):
        code = None
        if "SegmentedPropertyTypeCodeSequence" in item and item.SegmentedPropertyTypeCodeSequence:
            code = str(item.SegmentedPropertyTypeCodeSequence[0].get("CodeValue", ""))
        artery = artery_from_segment(str(item.get("SegmentLabel", "")), code)
        if artery is not None:
            segment_artery[int(item.SegmentNumber)] = artery
    if not segment_artery:
        labels = [str(item.get("SegmentLabel", "")) for item in dataset.get("SegmentSequence", [])]
        raise LabelMapError(
            f"{path.name}: no segment names LM, LAD, LCX or RCA (segments: {labels}); label them "
            "by name or with SNOMED CT 3227004/59438005/57396003/13647002"
        )
    geometry = volume.geometry
    _, rows, cols = volume.shape
    if int(dataset.Rows) != rows or int(dataset.Columns) != cols:
        raise LabelMapError(
            f"{path.name}: SEG frames are {dataset.Rows} x {dataset.Columns} pixels but the series "
            f"slices are {rows} x {cols}"
        )
    shared = dataset.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence", [])
    try:
        pixels = np.asarray(dataset.pixel_array)
    except Exception as exc:  # pydicom raises several types for undecodable pixel data
        raise LabelMapError(f"{path.name}: cannot decode the SEG pixel data ({exc})") from exc
    if pixels.ndim == 2:
        pixels = pixels[None]
    if len(per_frame) != pixels.shape[0]:
        raise LabelMapError(
            f"{path.name}: {pixels.shape[0]} frames but {len(per_frame)} per-frame descriptions"
        )
    fractional = str(dataset.get("SegmentationType", "BINARY")).upper() == "FRACTIONAL"
    max_fraction = float(dataset.get("MaximumFractionalValue", 255) or 255)

    def group_item(frame: Any, name: str) -> Any:
        for source in (frame, shared):
            if source is not None and name in source and len(source[name].value):
                return source[name].value[0]
        return None

    normal = geometry.slice_normal
    slice_depths = geometry.slice_positions_mm @ normal
    row_dir = np.asarray(geometry.row_direction)
    col_dir = np.asarray(geometry.column_direction)
    tolerance_mm = _SLICE_TOLERANCE_FRACTION * geometry.increment_mm
    out = np.zeros(volume.shape, dtype=np.uint8)
    for frame_index, frame in enumerate(per_frame):
        identification = group_item(frame, "SegmentIdentificationSequence")
        if identification is None:
            raise LabelMapError(f"{path.name}: frame {frame_index + 1} names no segment")
        artery = segment_artery.get(int(identification.ReferencedSegmentNumber))
        if artery is None:
            continue
        orientation = group_item(frame, "PlaneOrientationSequence")
        if orientation is not None:
            iop = np.asarray(_float_list(orientation.ImageOrientationPatient))
            if not (
                np.allclose(iop[:3], row_dir, atol=_ORIENTATION_TOLERANCE)
                and np.allclose(iop[3:], col_dir, atol=_ORIENTATION_TOLERANCE)
            ):
                raise LabelMapError(
                    f"{path.name}: SEG orientation {iop.round(4).tolist()} differs from the "
                    f"series' {[*row_dir.round(4).tolist(), *col_dir.round(4).tolist()]}"
                )
        measures = group_item(frame, "PixelMeasuresSequence")
        if measures is not None and "PixelSpacing" in measures:
            spacing = _float_list(measures.PixelSpacing)
            if not np.allclose(spacing, geometry.pixel_spacing_mm, rtol=1e-3):
                raise LabelMapError(
                    f"{path.name}: SEG pixel spacing {spacing} mm differs from the series' "
                    f"{list(geometry.pixel_spacing_mm)} mm"
                )
        position = group_item(frame, "PlanePositionSequence")
        if position is None:
            raise LabelMapError(f"{path.name}: frame {frame_index + 1} has no position")
        ipp = np.asarray(_float_list(position.ImagePositionPatient))
        gaps = np.abs(slice_depths - float(ipp @ normal))
        slice_index = int(np.argmin(gaps))
        if gaps[slice_index] > tolerance_mm:
            raise LabelMapError(
                f"{path.name}: SEG frame {frame_index + 1} at {float(ipp @ normal):.2f} mm along "
                "the slice normal matches no slice of the series"
            )
        shift = ipp - geometry.slice_positions_mm[slice_index]
        if (
            abs(float(shift @ row_dir)) > geometry.pixel_spacing_mm[1] / 2
            or abs(float(shift @ col_dir)) > geometry.pixel_spacing_mm[0] / 2
        ):
            raise LabelMapError(
                f"{path.name}: SEG frame {frame_index + 1} is shifted in-plane by "
                f"{shift.round(2).tolist()} mm against series slice {slice_index}"
            )
        frame_pixels = pixels[frame_index]
        inside = frame_pixels >= 0.5 * max_fraction if fractional else frame_pixels > 0
        # Where segments overlap, the later segment in the file wins.
        out[slice_index][inside] = artery.code
    return out
