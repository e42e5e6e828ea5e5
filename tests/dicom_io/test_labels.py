"""Reader label volumes (NumPy, NIfTI, DICOM SEG) aligned to a CT series."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from dicom_io.labels import artery_from_segment, read_label_map
from scoring import (
    Artery,
    CTVolume,
    ExclusionReason,
    LabelMapError,
    ScoringParameters,
    axial_geometry,
    find_candidates,
    labels_from_label_map,
    score_candidates,
)

SHAPE = (6, 16, 20)  # slices, rows, columns
SPACING = (0.5, 0.4)  # row, column spacing in mm
INCREMENT = 3.0
ORIGIN = (-4.0, -3.0, 100.0)


def _volume() -> CTVolume:
    hu = np.full(SHAPE, -50, dtype=np.int16)
    hu[1:3, 2:6, 2:6] = 400  # lesion 1
    hu[3:5, 9:13, 12:17] = 300  # lesion 2
    geometry = axial_geometry(SHAPE[0], SPACING, INCREMENT, origin_mm=ORIGIN)
    return CTVolume(hu=hu, geometry=geometry)


def _truth() -> npt.NDArray[np.uint8]:
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[1:3, 2:6, 2:6] = Artery.LAD.code
    labels[3:5, 9:13, 12:17] = Artery.RCA.code
    return labels


class TestArteryFromSegment:
    @pytest.mark.parametrize(
        ("label", "expected"),
        [
            ("LM", Artery.LM),
            ("Left main", Artery.LM),
            ("LAD", Artery.LAD),
            ("left anterior descending artery", Artery.LAD),
            ("LCX", Artery.LCX),
            ("Circumflex", Artery.LCX),
            ("RCA", Artery.RCA),
            ("Right coronary artery", Artery.RCA),
            ("Aorta", None),
            ("", None),
        ],
    )
    def test_names(self, label: str, expected: Artery | None) -> None:
        assert artery_from_segment(label) is expected

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            ("3227004", Artery.LM),
            ("59438005", Artery.LAD),
            ("57396003", Artery.LCX),
            ("13647002", Artery.RCA),
        ],
    )
    def test_snomed_codes_win_over_label(self, code: str, expected: Artery) -> None:
        assert artery_from_segment("Segment 1", code) is expected


class TestNumPy:
    def test_round_trip_and_rescore(self, tmp_path: Path) -> None:
        path = tmp_path / "labels.npy"
        np.save(path, _truth().astype(np.int32))
        volume = _volume()
        label_map = read_label_map(path, volume)
        assert label_map.dtype == np.uint8
        np.testing.assert_array_equal(label_map, _truth())
        candidates = find_candidates(volume, ScoringParameters())
        result = score_candidates(candidates, labels_from_label_map(candidates, label_map))
        assert result.agatston_by_artery[Artery.LAD] > 0
        assert result.agatston_by_artery[Artery.RCA] > 0
        assert result.agatston_by_artery[Artery.LCX] == 0
        assert result.agatston == pytest.approx(
            result.agatston_by_artery[Artery.LAD] + result.agatston_by_artery[Artery.RCA]
        )

    def test_unlabelled_candidate_is_excluded(self, tmp_path: Path) -> None:
        truth = _truth()
        truth[truth == Artery.RCA.code] = 0
        path = tmp_path / "labels.npy"
        np.save(path, truth)
        volume = _volume()
        candidates = find_candidates(volume, ScoringParameters())
        labels = labels_from_label_map(candidates, read_label_map(path, volume))
        reasons = sorted(str(label.excluded) for label in labels.values())
        assert reasons == ["None", str(ExclusionReason.NOT_LABELLED)]

    def test_wrong_shape(self, tmp_path: Path) -> None:
        path = tmp_path / "labels.npy"
        np.save(path, np.zeros((6, 16, 21), dtype=np.uint8))
        with pytest.raises(LabelMapError, match=r"shape \(6, 16, 21\) but the series is"):
            read_label_map(path, _volume())

    def test_values_that_are_not_artery_codes(self, tmp_path: Path) -> None:
        path = tmp_path / "labels.npy"
        bad = _truth()
        bad[0, 0, 0] = 7
        np.save(path, bad)
        with pytest.raises(LabelMapError, match="unexpected label values 7"):
            read_label_map(path, _volume())

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(LabelMapError, match="does not exist"):
            read_label_map(tmp_path / "nope.npy", _volume())

    def test_unknown_format(self, tmp_path: Path) -> None:
        path = tmp_path / "labels.txt"
        path.write_text("LAD")
        with pytest.raises(LabelMapError, match="unknown label format"):
            read_label_map(path, _volume())


def _nifti_affine_like_dcm2niix(volume: CTVolume) -> npt.NDArray[np.float64]:
    """RAS affine for data stored as (x flipped, y flipped, z): what converters usually write."""
    _, y, x = volume.shape
    row, col = volume.geometry.pixel_spacing_mm
    affine = np.eye(4)
    # array index i runs along -x_LPS-index, i.e. column (x - 1 - i); LPS->RAS flips x and y.
    affine[0, 0] = col  # RAS x = -LPS x; column x - 1 - i has LPS x = ox + (x-1-i)*col
    affine[1, 1] = row
    affine[2, 2] = INCREMENT
    affine[0, 3] = -(ORIGIN[0] + (x - 1) * col)
    affine[1, 3] = -(ORIGIN[1] + (y - 1) * row)
    affine[2, 3] = ORIGIN[2]
    return affine


class TestNIfTI:
    def test_flipped_axes_are_aligned(self, tmp_path: Path) -> None:
        volume = _volume()
        truth = _truth()
        # (z, y, x) -> (x, y, z) with x and y reversed, as dcm2niix stores axial CT in RAS
        data = np.transpose(truth, (2, 1, 0))[::-1, ::-1, :].astype(np.int16)
        path = tmp_path / "labels.nii.gz"
        nib.save(nib.Nifti1Image(data, _nifti_affine_like_dcm2niix(volume)), path)
        np.testing.assert_array_equal(read_label_map(path, volume), truth)

    def test_plain_lps_order(self, tmp_path: Path) -> None:
        volume = _volume()
        truth = _truth()
        data = np.transpose(truth, (2, 1, 0)).astype(np.uint8)
        row, col = SPACING
        affine = np.diag([-col, -row, INCREMENT, 1.0])
        affine[:3, 3] = [-ORIGIN[0], -ORIGIN[1], ORIGIN[2]]
        path = tmp_path / "labels.nii"
        nib.save(nib.Nifti1Image(data, affine), path)
        np.testing.assert_array_equal(read_label_map(path, volume), truth)

    def test_other_spacing_is_refused(self, tmp_path: Path) -> None:
        volume = _volume()
        data = np.transpose(_truth(), (2, 1, 0)).astype(np.uint8)
        affine = np.diag([-1.0, -1.0, INCREMENT, 1.0])
        path = tmp_path / "labels.nii"
        nib.save(nib.Nifti1Image(data, affine), path)
        with pytest.raises(LabelMapError, match="not the series' voxel grid"):
            read_label_map(path, volume)

    def test_no_orientation_is_refused(self, tmp_path: Path) -> None:
        image = nib.Nifti1Image(np.transpose(_truth(), (2, 1, 0)), None)
        image.header.set_qform(None, code=0)
        image.header.set_sform(None, code=0)
        path = tmp_path / "labels.nii"
        nib.save(image, path)
        with pytest.raises(LabelMapError, match="no orientation"):
            read_label_map(path, _volume())


def _ct_datasets(volume: CTVolume) -> list[Dataset]:
    """Single-frame CT instances of ``volume``, enough for highdicom to reference them."""
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    datasets = []
    for index in range(volume.shape[0]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "CT"
        ds.PatientID = "PHANTOM"
        ds.PatientName = "Phantom^Labels"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyDate = "20261126"
        ds.StudyTime = "090000"
        ds.StudyID = "1"
        ds.AccessionNumber = "A1"
        ds.ReferringPhysicianName = ""
        ds.SeriesNumber = 1
        ds.InstanceNumber = index + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in volume.geometry.slice_positions_mm[index]]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = list(SPACING)
        ds.SliceThickness = INCREMENT
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.PixelData = np.ascontiguousarray(volume.hu[index]).tobytes()
        datasets.append(ds)
    return datasets


def _write_seg(
    tmp_path: Path, volume: CTVolume, segments: list[tuple[str, int]], code: bool
) -> Path:
    """A binary DICOM SEG with one segment per ``(label, artery code in _truth())``."""
    sources = _ct_datasets(volume)
    truth = _truth()
    snomed = {1: "3227004", 2: "59438005", 3: "57396003", 4: "13647002"}
    descriptions = []
    masks = np.zeros((*SHAPE, len(segments)), dtype=bool)
    for number, (label, artery_code) in enumerate(segments, start=1):
        masks[..., number - 1] = truth == artery_code
        property_type = (
            hd.sr.CodedConcept(snomed[artery_code], "SCT", label) if code else codes.SCT.Tissue
        )
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=codes.SCT.Tissue,
                segmented_property_type=property_type,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=2,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="cac-fhir tests",
        manufacturer_model_name="labels",
        software_versions="0",
        device_serial_number="0",
    )
    path = tmp_path / "labels.dcm"
    seg.save_as(path)
    return path


class TestDICOMSEG:
    def test_segments_named_by_label(self, tmp_path: Path) -> None:
        volume = _volume()
        path = _write_seg(tmp_path, volume, [("LAD", 2), ("Right coronary", 4)], code=False)
        np.testing.assert_array_equal(read_label_map(path, volume), _truth())

    def test_segments_named_by_snomed_code(self, tmp_path: Path) -> None:
        volume = _volume()
        path = _write_seg(tmp_path, volume, [("Seg A", 2), ("Seg B", 4)], code=True)
        np.testing.assert_array_equal(read_label_map(path, volume), _truth())

    def test_no_artery_segment(self, tmp_path: Path) -> None:
        volume = _volume()
        path = _write_seg(tmp_path, volume, [("Aorta", 2)], code=False)
        with pytest.raises(LabelMapError, match="no segment names LM, LAD, LCX or RCA"):
            read_label_map(path, volume)

    def test_other_series_geometry_is_refused(self, tmp_path: Path) -> None:
        volume = _volume()
        path = _write_seg(tmp_path, volume, [("LAD", 2)], code=False)
        shifted = CTVolume(
            hu=volume.hu,
            geometry=axial_geometry(
                SHAPE[0], SPACING, INCREMENT, origin_mm=(ORIGIN[0], ORIGIN[1], ORIGIN[2] + 30.0)
            ),
        )
        with pytest.raises(LabelMapError, match="matches no slice of the series"):
            read_label_map(path, shifted)

    def test_ct_image_is_not_a_seg(self, tmp_path: Path) -> None:
        volume = _volume()
        path = tmp_path / "ct.dcm"
        _ct_datasets(volume)[0].save_as(path, enforce_file_format=True)
        with pytest.raises(LabelMapError, match="not a DICOM Segmentation"):
            read_label_map(path, volume)
        assert pydicom.dcmread(path).Modality == "CT"
