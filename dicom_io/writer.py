"""Write a :class:`~scoring.volume.CTVolume` as a series of single-frame CT Image Storage files.

Used by the phantom generator, by tests that need DICOM with a known answer, and by anyone who wants
to push a volume to a PACS. Each slice becomes one instance of the CT Image IOD (DICOM PS3.3 A.3)
in the transfer syntax asked for; every compressed syntax is lossless, so reading the series back
gives the same Hounsfield units exactly.

UIDs not given are derived deterministically from the volume's contents and the options (a
``2.25.`` UID from a hash, PS3.5 B.2), so writing the same volume twice gives the same instances.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final, cast

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from dicom_io.errors import DICOMWriteError
from scoring.volume import CTVolume

#: Transfer syntaxes :func:`write_series` can write (all lossless).
WRITABLE_TRANSFER_SYNTAXES: Final[tuple[str, ...]] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
    JPEGLosslessSV1,
)

#: Offset added to HU for unsigned storage, the common CT convention (stored = HU + 1024, with
#: (0028,1052) Rescale Intercept -1024).
UNSIGNED_OFFSET_HU: Final[int] = 1024

_INT16_MIN: Final[int] = -32768
_INT16_MAX: Final[int] = 32767
_UINT16_MAX: Final[int] = 65535
_JPEG2000_MIN_SIDE: Final[int] = 32


def _derived_uid(*parts: object) -> UID:
    """A deterministic ``2.25.`` UID from the string form of ``parts`` (PS3.5 B.2).

    The integer is a name-based UUID (version 5 layout) of the parts, so it is stable across runs;
    pydicom's ``generate_uid(prefix=None)`` ignores its entropy sources.
    """
    name = "\x1f".join(repr(p) for p in parts)
    return UID(f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}")


def _volume_digest(volume: CTVolume) -> str:
    """Hash of the voxel values and the geometry, the seed of the derived UIDs."""
    digest = hashlib.sha256()
    digest.update(str(volume.hu.dtype).encode())
    digest.update(repr(volume.hu.shape).encode())
    digest.update(np.ascontiguousarray(volume.hu).tobytes())
    geometry = volume.geometry
    digest.update(geometry.slice_positions_mm.tobytes())
    digest.update(
        repr(
            (
                geometry.pixel_spacing_mm,
                geometry.row_direction,
                geometry.column_direction,
                geometry.slice_thickness_mm,
                geometry.increment_mm,
            )
        ).encode()
    )
    return digest.hexdigest()


def _stored_values(
    volume: CTVolume, signed: bool
) -> tuple[npt.NDArray[np.int16] | npt.NDArray[np.uint16], int]:
    """The stored pixel values of the whole volume and the Rescale Intercept that undoes them.

    Float volumes are rounded to the nearest integer HU, as a scanner stores them.
    """
    hu = volume.hu
    if np.issubdtype(hu.dtype, np.floating):
        if not np.all(np.isfinite(hu)):
            raise DICOMWriteError("volume.hu holds NaN or infinite values; DICOM stores integers")
        values = np.rint(hu)
    else:
        values = hu
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    if signed:
        if low < _INT16_MIN or high > _INT16_MAX:
            raise DICOMWriteError(
                f"volume.hu spans {low:g} to {high:g} HU, outside the signed 16-bit range "
                f"{_INT16_MIN} to {_INT16_MAX}"
            )
        return np.asarray(values, dtype=np.int16), 0
    if low + UNSIGNED_OFFSET_HU < 0 or high + UNSIGNED_OFFSET_HU > _UINT16_MAX:
        raise DICOMWriteError(
            f"volume.hu spans {low:g} to {high:g} HU; unsigned storage (HU + "
            f"{UNSIGNED_OFFSET_HU}) holds only {-UNSIGNED_OFFSET_HU} to "
            f"{_UINT16_MAX - UNSIGNED_OFFSET_HU} HU: pass signed=True"
        )
    stored = np.asarray(values, dtype=np.int32) + UNSIGNED_OFFSET_HU
    return stored.astype(np.uint16), -UNSIGNED_OFFSET_HU


def _decimal_string(value: float, decimals: int) -> str:
    """A DS value (at most 16 characters, PS3.5 6.2) without trailing zeros or ``-0``."""
    text = f"{float(value) + 0.0:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _da_tm(moment: datetime) -> tuple[str, str, str]:
    """DICOM DA, TM and DT strings of a moment (PS3.5 6.2)."""
    return (
        moment.strftime("%Y%m%d"),
        moment.strftime("%H%M%S.%f"),
        moment.strftime("%Y%m%d%H%M%S.%f"),
    )


def _encode_jpeg_lossless_sv1(
    frame: npt.NDArray[np.int16] | npt.NDArray[np.uint16], signed: bool
) -> bytes:
    """Encode one frame as JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14
    SV1) with GDCM; pydicom 3 has no encoder for this syntax.
    """
    import gdcm  # native library, loaded only when this syntax is asked for

    writer = gdcm.ImageWriter()  # keeps the image alive while it is converted
    image = writer.GetImage()
    image.SetNumberOfDimensions(2)
    rows, columns = frame.shape
    image.SetDimensions((columns, rows, 1))
    image.SetPhotometricInterpretation(
        gdcm.PhotometricInterpretation(gdcm.PhotometricInterpretation.MONOCHROME2)
    )
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.ImplicitVRLittleEndian))
    image.SetPixelFormat(gdcm.PixelFormat(1, 16, 16, 15, 1 if signed else 0))
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetByteStringValue(
        np.ascontiguousarray(frame).astype(frame.dtype.newbyteorder("<")).tobytes()
    )
    image.SetDataElement(element)
    converter = gdcm.ImageChangeTransferSyntax()
    converter.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(JPEGLosslessSV1)))
    converter.SetInput(image)
    if not converter.Change():
        raise DICOMWriteError("GDCM could not encode the frame as JPEG Lossless SV1")
    fragments = converter.GetOutput().GetDataElement().GetSequenceOfFragments()
    if fragments is None or fragments.GetNumberOfFragments() != 1:
        raise DICOMWriteError("GDCM returned an unexpected JPEG Lossless fragment layout")
    buffer = fragments.GetFragment(0).GetByteValue().GetBuffer()
    return cast(bytes, buffer.encode("utf-8", "surrogateescape"))


def _set_pixel_data(
    ds: Dataset,
    frame: npt.NDArray[np.int16] | npt.NDArray[np.uint16],
    transfer_syntax: UID,
    signed: bool,
) -> None:
    """Store ``frame`` in ``ds`` encoded in ``transfer_syntax``."""
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    if transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        ds.PixelData = np.ascontiguousarray(frame).astype(frame.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW"
    elif transfer_syntax == JPEGLosslessSV1:
        ds.PixelData = encapsulate([_encode_jpeg_lossless_sv1(frame, signed)])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.compress(transfer_syntax, frame, generate_instance_uid=False)


def series_datasets(
    volume: CTVolume,
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    series_description: str = "CaSc 3.0 Qr36",
    series_number: int = 2,
    patient_id: str = "PHANTOM",
    patient_name: str = "Phantom^Cardiac",
    patient_birth_date: str | None = None,
    patient_sex: str | None = None,
    accession_number: str | None = None,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    modality: str = "CT",
    signed: bool = True,
) -> list[Dataset]:
    """Build one single-frame CT Image Storage dataset per slice of ``volume``.

    The arguments are those of :func:`write_series` (without the folder); tests use this to edit
    instances before saving them with :func:`write_datasets`.

    Returns
    -------
    list of pydicom.dataset.Dataset
        One dataset per slice, in slice order, with ``file_meta`` set.

    Raises
    ------
    DICOMWriteError
        When the transfer syntax is not writable or the HU do not fit the storage.
    """
    syntax = UID(transfer_syntax)
    if syntax not in WRITABLE_TRANSFER_SYNTAXES:
        names = ", ".join(f"{UID(s).name} ({s})" for s in WRITABLE_TRANSFER_SYNTAXES)
        raise DICOMWriteError(
            f"transfer_syntax {transfer_syntax!r} is not writable; use one of {names}"
        )
    if not image_type or any(not part for part in image_type):
        raise DICOMWriteError(f"image_type must be non-empty values, got {image_type!r}")
    _, rows, columns = volume.shape
    if syntax == JPEG2000Lossless and min(rows, columns) < _JPEG2000_MIN_SIDE:
        # pylibjpeg-openjpeg always uses 6 wavelet resolutions, which need 2**5 pixels a side.
        raise DICOMWriteError(
            f"JPEG 2000 needs at least {_JPEG2000_MIN_SIDE} rows and columns; the volume has "
            f"{rows} x {columns}: choose another transfer_syntax"
        )
    stored, intercept = _stored_values(volume, signed)
    geometry = volume.geometry
    acquisition = volume.acquisition

    digest = _volume_digest(volume)
    study_uid = study_instance_uid or _derived_uid("study", digest, patient_id)
    series_uid = series_instance_uid or _derived_uid(
        "series",
        digest,
        study_uid,
        series_number,
        series_description,
        image_type,
        modality,
        signed,
        str(syntax),
    )
    frame_of_reference_uid = _derived_uid("frame-of-reference", study_uid)

    normal = geometry.slice_normal
    orientation = [float(v) for v in (*geometry.row_direction, *geometry.column_direction)]
    moments = _da_tm(acquisition.acquisition_datetime) if acquisition.acquisition_datetime else None

    datasets: list[Dataset] = []
    for index in range(stored.shape[0]):
        sop_uid = _derived_uid("instance", series_uid, index)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = syntax
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = list(image_type)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = moments[0] if moments else ""
        ds.StudyTime = moments[1] if moments else ""
        ds.SeriesDate = ds.StudyDate
        ds.SeriesTime = ds.StudyTime
        ds.AcquisitionDate = ds.StudyDate
        ds.AcquisitionTime = ds.StudyTime
        if moments:
            ds.AcquisitionDateTime = moments[2]
        ds.AccessionNumber = accession_number or ""
        ds.Modality = modality
        ds.Manufacturer = acquisition.manufacturer or ""
        if acquisition.model:
            ds.ManufacturerModelName = acquisition.model
        ds.ReferringPhysicianName = ""
        ds.SeriesDescription = series_description
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = patient_birth_date or ""
        ds.PatientSex = patient_sex or ""
        ds.SliceThickness = f"{geometry.slice_thickness_mm:.6g}"
        ds.SpacingBetweenSlices = f"{geometry.increment_mm:.6g}"
        if acquisition.kvp is not None:
            ds.KVP = f"{acquisition.kvp:.6g}"
        else:
            ds.KVP = ""
        if acquisition.reconstruction_kernel:
            ds.ConvolutionKernel = acquisition.reconstruction_kernel.split("\\")
        ds.PatientPosition = acquisition.patient_position or ""
        if acquisition.mass_factor_patient is not None:
            # (0018,9351) Calcium Scoring Mass Factor Patient
            ds.CalciumScoringMassFactorPatient = float(acquisition.mass_factor_patient)
        if acquisition.mass_factor_device is not None:
            # (0018,9352) Calcium Scoring Mass Factor Device, one value per energy level
            ds.CalciumScoringMassFactorDevice = [float(v) for v in acquisition.mass_factor_device]
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = series_number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = index + 1
        position = geometry.slice_positions_mm[index]
        ds.ImagePositionPatient = [_decimal_string(v, 6) for v in position]
        ds.ImageOrientationPatient = [_decimal_string(v, 8) for v in orientation]
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _decimal_string(float(np.dot(position, normal)), 6)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = int(stored.shape[1])
        ds.Columns = int(stored.shape[2])
        ds.PixelSpacing = [f"{float(v):.6g}" for v in geometry.pixel_spacing_mm]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleIntercept = str(intercept)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        _set_pixel_data(ds, stored[index], syntax, signed)
        datasets.append(ds)
    return datasets


def write_datasets(
    datasets: Sequence[Dataset], out_dir: Path, *, file_prefix: str = "IM"
) -> list[Path]:
    """Save datasets as DICOM Part 10 files ``<file_prefix><n>.dcm`` (n from 1, five digits).

    Parameters
    ----------
    datasets
        Datasets with ``file_meta`` (as built by :func:`series_datasets`).
    out_dir
        Folder to write into; created when missing.
    file_prefix
        Start of every file name.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``datasets``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for number, ds in enumerate(datasets, start=1):
        path = out_dir / f"{file_prefix}{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_series(
    volume: CTVolume,
    out_dir: Path,
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    series_description: str = "CaSc 3.0 Qr36",
    series_number: int = 2,
    patient_id: str = "PHANTOM",
    patient_name: str = "Phantom^Cardiac",
    patient_birth_date: str | None = None,
    patient_sex: str | None = None,
    accession_number: str | None = None,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    modality: str = "CT",
    signed: bool = True,
    file_prefix: str = "IM",
) -> list[Path]:
    """Write ``volume`` as one single-frame CT Image Storage file per slice.

    Parameters
    ----------
    volume
        The ``(z, y, x)`` volume in HU with its geometry and acquisition details. Float volumes are
        rounded to whole HU.
    out_dir
        Folder to write into (created when missing).
    transfer_syntax
        One of :data:`WRITABLE_TRANSFER_SYNTAXES`: Explicit or Implicit VR Little Endian, RLE
        Lossless, JPEG-LS Lossless, JPEG 2000 Lossless or JPEG Lossless SV1 (Process 14, selection
        value 1).
    study_instance_uid, series_instance_uid
        UIDs to use; derived deterministically from the volume and the options when ``None``.
    series_description, series_number, patient_id, patient_name, patient_birth_date, patient_sex,
    accession_number, image_type, modality
        Written to the attributes of the same names; ``None`` leaves a type 2 attribute empty.
    signed
        ``True``: (0028,0103) Pixel Representation 1, stored value = HU, (0028,1052) Rescale
        Intercept 0. ``False``: unsigned, stored value = HU + 1024, Rescale Intercept -1024.
    file_prefix
        Start of every file name (``IM00001.dcm``, ``IM00002.dcm``, ...).

    Returns
    -------
    list of pathlib.Path
        The files written, in slice order.

    Raises
    ------
    DICOMWriteError
        When the transfer syntax is not writable or the HU do not fit the storage chosen.

    Notes
    -----
    Written per slice: (0020,0032) Image Position (Patient) from
    ``volume.geometry.slice_positions_mm``, (0020,0037) Image Orientation (Patient), (0028,0030)
    Pixel Spacing, (0018,0050) Slice Thickness, (0018,0088) Spacing Between Slices, (0018,0060)
    KVP, (0018,1210) Convolution Kernel, (0008,0070) Manufacturer, (0018,9351)/(0018,9352) Calcium
    Scoring Mass Factor Patient/Device when known, acquisition date and time, Frame of Reference
    UID and Instance Number.
    """
    datasets = series_datasets(
        volume,
        transfer_syntax=transfer_syntax,
        study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid,
        series_description=series_description,
        series_number=series_number,
        patient_id=patient_id,
        patient_name=patient_name,
        patient_birth_date=patient_birth_date,
        patient_sex=patient_sex,
        accession_number=accession_number,
        image_type=image_type,
        modality=modality,
        signed=signed,
    )
    return write_datasets(datasets, out_dir, file_prefix=file_prefix)
