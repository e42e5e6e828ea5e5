"""Tests of :mod:`dicom_io.loader` on series written with :mod:`dicom_io.writer` and edited to
carry each defect."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, JPEG2000Lossless, JPEGLSLossless

from dicom_io.errors import (
    DICOMInputError,
    InconsistentSeriesError,
    MissingAttributeError,
    MissingPixelDataError,
    NoDICOMFilesError,
    NonAxialSeriesError,
    NonCTModalityError,
    PixelDecodeError,
    SeriesNotFoundError,
    SliceSpacingError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from dicom_io.loader import load_series, volume_from_datasets
from dicom_io.writer import WRITABLE_TRANSFER_SYNTAXES, series_datasets, write_datasets
from scoring.result import WarningCode
from scoring.volume import AcquisitionInfo, CTVolume, VolumeGeometry
from tests.dicom_io.conftest import make_volume

Edit = Callable[[list[Dataset]], None]


def _write(
    folder: Path, volume: CTVolume, edit: Edit | None = None, **options: object
) -> list[Path]:
    """Write ``volume``, after letting ``edit`` change the datasets."""
    datasets = series_datasets(volume, **options)  # type: ignore[arg-type]
    if edit is not None:
        edit(datasets)
    return write_datasets(datasets, folder)


def _tilted_volume(n_slices: int = 6, tilt_degrees: float = 20.0) -> CTVolume:
    """An axial stack tilted about x (like a gantry tilt), slices spaced along the normal."""
    angle = np.radians(tilt_degrees)
    row = (1.0, 0.0, 0.0)
    column = (0.0, float(np.cos(angle)), float(-np.sin(angle)))
    normal = np.cross(row, column)
    origin = np.array([-20.0, -30.0, 40.0])
    positions = origin + 2.5 * np.arange(n_slices)[:, None] * normal
    geometry = VolumeGeometry(
        pixel_spacing_mm=(0.7, 0.7),
        row_direction=row,
        column_direction=column,
        slice_positions_mm=positions,
        slice_thickness_mm=2.5,
        increment_mm=2.5,
    )
    hu = make_volume(n_slices=n_slices).hu
    return CTVolume(hu=hu, geometry=geometry, acquisition=AcquisitionInfo(kvp=120.0))


class TestLoadSeriesRoundTrip:
    @pytest.mark.parametrize("transfer_syntax", WRITABLE_TRANSFER_SYNTAXES)
    @pytest.mark.parametrize("signed", [True, False])
    def test_every_transfer_syntax_round_trips_exactly(
        self, tmp_path: Path, volume: CTVolume, transfer_syntax: str, signed: bool
    ) -> None:
        _write(tmp_path, volume, transfer_syntax=transfer_syntax, signed=signed)
        loaded = load_series(tmp_path)
        assert loaded.volume.hu.dtype == np.int16
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        np.testing.assert_allclose(
            loaded.volume.geometry.slice_positions_mm, volume.geometry.slice_positions_mm
        )
        assert loaded.warnings == ()

    def test_geometry_and_acquisition(self, tmp_path: Path, volume: CTVolume) -> None:
        paths = _write(tmp_path, volume)
        loaded = load_series(tmp_path)
        geometry = loaded.volume.geometry
        assert geometry.pixel_spacing_mm == (0.4, 0.5)
        assert geometry.row_direction == (1.0, 0.0, 0.0)
        assert geometry.column_direction == (0.0, 1.0, 0.0)
        assert geometry.increment_mm == pytest.approx(3.0)
        assert geometry.slice_thickness_mm == pytest.approx(3.0)
        info = loaded.volume.acquisition
        assert info.kvp == 120.0
        assert info.reconstruction_kernel == "Qr36\\3"
        assert info.mass_factor_patient == pytest.approx(0.75)
        assert info.mass_factor_device == pytest.approx((0.5, 0.75, 1.0))
        assert (info.manufacturer, info.model) == ("Phantom Works", "PW-1")
        assert info.series_description == "CaSc 3.0 Qr36"
        assert info.acquisition_datetime == datetime(2026, 11, 2, 8, 30, 15)
        assert info.patient_position == "HFS"
        first = dcmread(paths[0])
        assert info.study_instance_uid == first.StudyInstanceUID
        assert info.series_instance_uid == first.SeriesInstanceUID
        assert loaded.sop_instance_uids[0] == first.SOPInstanceUID
        assert loaded.files_read == len(paths)
        assert loaded.bytes_read == sum(p.stat().st_size for p in paths)

    def test_fractional_rescale_gives_float32(self, tmp_path: Path, volume: CTVolume) -> None:
        def halve(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.RescaleSlope = "0.5"
                ds.RescaleIntercept = "-10.25"

        _write(tmp_path, volume, halve)
        loaded = load_series(tmp_path)
        assert loaded.volume.hu.dtype == np.float32
        expected = volume.hu.astype(np.float32) * np.float32(0.5) - np.float32(10.25)
        np.testing.assert_array_equal(loaded.volume.hu, expected)

    def test_integral_slope_keeps_int16(self, tmp_path: Path) -> None:
        volume = make_volume(low_hu=-1000, high_hu=1000)

        def double(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.RescaleSlope = "2"

        _write(tmp_path, volume, double)
        loaded = load_series(tmp_path)
        assert loaded.volume.hu.dtype == np.int16
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu.astype(np.int32) * 2)

    @pytest.mark.parametrize("acquisition_keywords", [["AcquisitionDateTime"], []])
    def test_datetime_fallbacks(
        self, tmp_path: Path, volume: CTVolume, acquisition_keywords: list[str]
    ) -> None:
        def strip(datasets: list[Dataset]) -> None:
            for ds in datasets:
                del ds.AcquisitionDateTime
                if not acquisition_keywords:
                    del ds.AcquisitionDate, ds.AcquisitionTime, ds.SeriesDate, ds.SeriesTime
                    ds.StudyTime = "0702"

        _write(tmp_path, volume, strip)
        expected = (
            datetime(2026, 11, 2, 8, 30, 15)
            if acquisition_keywords
            else datetime(2026, 11, 2, 7, 2)
        )
        assert load_series(tmp_path).volume.acquisition.acquisition_datetime == expected

    def test_progress_is_reported_per_slice(self, tmp_path: Path, volume: CTVolume) -> None:
        _write(tmp_path, volume)
        calls: list[tuple[int, int]] = []
        load_series(tmp_path, progress=lambda done, total: calls.append((done, total)))
        assert calls == [(k, 5) for k in range(1, 6)]

    def test_list_of_files_and_nested_folders(self, tmp_path: Path, volume: CTVolume) -> None:
        paths = _write(tmp_path / "a" / "b", volume)
        np.testing.assert_array_equal(load_series(tmp_path).volume.hu, volume.hu)
        np.testing.assert_array_equal(load_series(paths).volume.hu, volume.hu)
        np.testing.assert_array_equal(load_series([str(p) for p in paths]).volume.hu, volume.hu)


class TestSliceOrder:
    def test_shuffled_files_and_misleading_names(self, tmp_path: Path, volume: CTVolume) -> None:
        datasets = series_datasets(volume)
        rng = np.random.default_rng(3)
        shuffled = [datasets[int(k)] for k in rng.permutation(len(datasets))]
        for number, ds in enumerate(shuffled, start=1):
            ds.InstanceNumber = number  # InstanceNumber no longer follows the position
        write_datasets(shuffled, tmp_path, file_prefix="slice")
        loaded = load_series(sorted(tmp_path.iterdir(), reverse=True))
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)

    def test_names_that_sort_wrong(self, tmp_path: Path) -> None:
        volume = make_volume(n_slices=11)
        datasets = series_datasets(volume)
        for index, ds in enumerate(datasets):
            # "10" sorts before "2": order must come from the positions, not the names.
            ds.save_as(tmp_path / f"{index + 1}", enforce_file_format=True)
        np.testing.assert_array_equal(load_series(tmp_path).volume.hu, volume.hu)

    def test_descending_positions_are_ordered_along_the_normal(self, tmp_path: Path) -> None:
        volume = make_volume(n_slices=4)
        flipped_geometry = VolumeGeometry(
            pixel_spacing_mm=(0.4, 0.5),
            row_direction=(1.0, 0.0, 0.0),
            column_direction=(0.0, -1.0, 0.0),  # normal (0, 0, -1): z falls along the stack
            slice_positions_mm=np.array([[0.0, 0.0, -3.0 * k] for k in range(4)]),
            slice_thickness_mm=3.0,
            increment_mm=3.0,
        )
        _write(tmp_path, CTVolume(hu=volume.hu, geometry=flipped_geometry))
        loaded = load_series(tmp_path)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        np.testing.assert_allclose(loaded.volume.geometry.slice_positions_mm[:, 2], [0, -3, -6, -9])

    def test_tilted_gantry_is_sorted_along_its_normal(self, tmp_path: Path) -> None:
        volume = _tilted_volume()
        datasets = series_datasets(volume)
        write_datasets(datasets[::-1], tmp_path)
        loaded = load_series(tmp_path)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        assert loaded.volume.geometry.increment_mm == pytest.approx(2.5)
        np.testing.assert_allclose(
            loaded.volume.geometry.slice_positions_mm, volume.geometry.slice_positions_mm, atol=1e-5
        )


class TestVolumeFromDatasets:
    @pytest.mark.parametrize("transfer_syntax", [JPEG2000Lossless, JPEGLSLossless])
    def test_datasets_in_memory(
        self, tmp_path: Path, volume: CTVolume, transfer_syntax: str
    ) -> None:
        paths = _write(tmp_path, volume, transfer_syntax=transfer_syntax)
        datasets = [dcmread(p) for p in reversed(paths)]
        loaded = volume_from_datasets(datasets)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        assert (loaded.files_read, loaded.bytes_read) == (0, 0)
        assert all(getattr(ds, "_pixel_array", None) is None for ds in datasets)

    def test_series_chosen_among_datasets(self, volume: CTVolume) -> None:
        thin = series_datasets(make_volume(seed=2), series_description="Thorax 1.0")
        for ds in thin:
            ds.SliceThickness = "1"
        scored = series_datasets(volume)
        loaded = volume_from_datasets(thin + scored)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        assert (
            "1 mm slices (outside 2.5-3 mm)" in loaded.selection.reasons[thin[0].SeriesInstanceUID]
        )

    def test_empty_and_wrong_items(self) -> None:
        with pytest.raises(NoDICOMFilesError, match="no datasets given"):
            volume_from_datasets([])
        with pytest.raises(DICOMInputError, match="item 1 is a str, not a pydicom Dataset"):
            volume_from_datasets(["IM1.dcm"])  # type: ignore[list-item]


class TestFlaggedAndDropped:
    def test_localizer_mixed_in_is_dropped_with_a_warning(
        self, tmp_path: Path, volume: CTVolume
    ) -> None:
        def add_scout(datasets: list[Dataset]) -> None:
            scout = series_datasets(make_volume(n_slices=1, seed=9))[0]
            scout.SeriesInstanceUID = datasets[0].SeriesInstanceUID
            scout.SOPInstanceUID = "1.2.826.0.1.3680043.99.1"
            scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
            scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
            datasets.append(scout)

        _write(tmp_path, volume, add_scout)
        loaded = load_series(tmp_path)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        (warning,) = loaded.warnings
        assert warning.code is WarningCode.SERIES
        assert warning.message == (
            "dropped 1 localizer image(s) mixed into the series: "
            "IM00006.dcm (SOPInstanceUID 1.2.826.0.1.3680043.99.1)"
        )

    def test_duplicate_copy_of_an_instance_is_ignored(
        self, tmp_path: Path, volume: CTVolume
    ) -> None:
        paths = _write(tmp_path, volume)
        shutil.copy(paths[2], tmp_path / "copy.dcm")
        loaded = load_series(tmp_path)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        assert [w.message for w in loaded.warnings] == [
            "ignored 1 duplicate copy(ies) of instances already read: copy.dcm"
        ]

    def test_non_dicom_files_are_skipped_with_a_warning(
        self, tmp_path: Path, volume: CTVolume
    ) -> None:
        _write(tmp_path, volume)
        (tmp_path / "notes.txt").write_text("not an image")
        loaded = load_series(tmp_path)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        (warning,) = loaded.warnings
        assert warning.message.startswith(
            "skipped 1 file(s) that are not readable DICOM: notes.txt (InvalidDicomError"
        )

    def test_spacing_between_slices_disagreeing_is_flagged(
        self, tmp_path: Path, volume: CTVolume
    ) -> None:
        def wrong(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.SpacingBetweenSlices = "5"

        _write(tmp_path, volume, wrong)
        (warning,) = load_series(tmp_path).warnings
        assert warning.message == (
            "(0018,0088) Spacing Between Slices says 5 mm but the slice positions are 3.00 mm "
            "apart; the positions are used"
        )


class TestErrors:
    def test_missing_path(self, tmp_path: Path) -> None:
        with pytest.raises(NoDICOMFilesError, match="nothing: no such file or folder"):
            load_series(tmp_path / "nothing")

    def test_only_non_dicom_files(self, tmp_path: Path) -> None:
        (tmp_path / "a.txt").write_text("hello")
        with pytest.raises(
            NoDICOMFilesError, match=r"none of the 1 file\(s\) is a readable DICOM instance: a.txt"
        ):
            load_series(tmp_path)

    def test_empty_folder(self, tmp_path: Path) -> None:
        with pytest.raises(NoDICOMFilesError, match="no files found"):
            load_series(tmp_path)

    def test_non_ct_modality(self, tmp_path: Path, volume: CTVolume) -> None:
        _write(tmp_path, volume, modality="MR")
        with pytest.raises(
            NonCTModalityError, match=r"IM00001.dcm \(SOPInstanceUID .*\) has modality MR, not CT"
        ):
            load_series(tmp_path)

    def test_non_axial_orientation(self, tmp_path: Path, volume: CTVolume) -> None:
        coronal = VolumeGeometry(
            pixel_spacing_mm=(0.4, 0.5),
            row_direction=(1.0, 0.0, 0.0),
            column_direction=(0.0, 0.0, -1.0),
            slice_positions_mm=np.array([[0.0, 3.0 * k, 0.0] for k in range(5)]),
            slice_thickness_mm=3.0,
            increment_mm=3.0,
        )
        _write(tmp_path, CTVolume(hu=volume.hu, geometry=coronal))
        with pytest.raises(NonAxialSeriesError, match="is coronal, not axial"):
            load_series(tmp_path)

    def test_orientation_varies(self, tmp_path: Path, volume: CTVolume) -> None:
        def turn(datasets: list[Dataset]) -> None:
            datasets[3].ImageOrientationPatient = [1, 0, 0, 0, 0.9848, -0.1736]

        _write(tmp_path, volume, turn)
        with pytest.raises(
            NonAxialSeriesError, match=r"IM00004.dcm .* all slices must lie in one orientation"
        ):
            load_series(tmp_path)

    def test_missing_slice(self, tmp_path: Path, volume: CTVolume) -> None:
        paths = _write(tmp_path, volume)
        paths[2].unlink()
        with pytest.raises(
            SliceSpacingError,
            match=r"missing slices between IM00002.dcm \(SOPInstanceUID [0-9.]+\) and "
            r"IM00004.dcm .*a step of 6.00 mm where the increment is 3.00 mm \(about 1 slice",
        ):
            load_series(tmp_path)

    def test_messages_name_files_below_the_folder_given(
        self, tmp_path: Path, volume: CTVolume
    ) -> None:
        paths = _write(tmp_path / "study" / "series2", volume)
        paths[1].unlink()
        with pytest.raises(SliceSpacingError, match=r"missing slices between series2/IM00001.dcm"):
            load_series(tmp_path / "study")

    def test_uneven_increment(self, tmp_path: Path, volume: CTVolume) -> None:
        def shift(datasets: list[Dataset]) -> None:
            datasets[2].ImagePositionPatient = [-50, -60, -93]

        _write(tmp_path, volume, shift)
        with pytest.raises(
            SliceSpacingError,
            match=r"uneven slice increment between IM00002.dcm .* and IM00003.dcm .*: 4.00 mm "
            r"where the others are 3.00 mm",
        ):
            load_series(tmp_path)

    def test_two_images_at_one_position(self, tmp_path: Path, volume: CTVolume) -> None:
        def collide(datasets: list[Dataset]) -> None:
            datasets[3].ImagePositionPatient = datasets[2].ImagePositionPatient

        _write(tmp_path, volume, collide)
        with pytest.raises(SliceSpacingError, match="two different images at the same position"):
            load_series(tmp_path)

    def test_varying_rows(self, tmp_path: Path, volume: CTVolume) -> None:
        def resize(datasets: list[Dataset]) -> None:
            datasets[1].Rows = 30

        _write(tmp_path, volume, resize)
        with pytest.raises(
            InconsistentSeriesError,
            match=r"IM00002.dcm \(SOPInstanceUID .*\) is 30 x 36 pixels but IM00001.dcm .* is "
            r"40 x 36",
        ):
            load_series(tmp_path)

    def test_varying_pixel_spacing(self, tmp_path: Path, volume: CTVolume) -> None:
        def respace(datasets: list[Dataset]) -> None:
            datasets[4].PixelSpacing = [0.45, 0.5]

        _write(tmp_path, volume, respace)
        with pytest.raises(
            InconsistentSeriesError, match=r"IM00005.dcm .* has pixel spacing \[0.45, 0.5\] mm"
        ):
            load_series(tmp_path)

    def test_missing_pixel_data(self, tmp_path: Path, volume: CTVolume) -> None:
        def strip(datasets: list[Dataset]) -> None:
            del datasets[1].PixelData

        paths = _write(tmp_path, volume, strip)
        uid = dcmread(paths[1]).SOPInstanceUID
        with pytest.raises(
            MissingPixelDataError, match=rf"IM00002.dcm \(SOPInstanceUID {uid}\): no \(7FE0,0010\)"
        ):
            load_series(tmp_path)

    def test_missing_position(self, tmp_path: Path, volume: CTVolume) -> None:
        def strip(datasets: list[Dataset]) -> None:
            del datasets[3].ImagePositionPatient

        _write(tmp_path, volume, strip)
        with pytest.raises(
            MissingAttributeError, match=r"IM00004.dcm .*\(0020,0032\) ImagePositionPatient"
        ):
            load_series(tmp_path)

    def test_unsupported_transfer_syntax(self, tmp_path: Path, volume: CTVolume) -> None:
        def relabel(datasets: list[Dataset]) -> None:
            datasets[0].file_meta.TransferSyntaxUID = MPEG2MPML

        _write(tmp_path, volume, relabel, transfer_syntax=JPEG2000Lossless)
        with pytest.raises(
            UnsupportedTransferSyntaxError,
            match=r"IM00001.dcm .*: transfer syntax MPEG2 Main Profile / Main Level .* cannot be "
            "decoded",
        ):
            load_series(tmp_path)

    def test_damaged_compressed_stream(self, tmp_path: Path, volume: CTVolume) -> None:
        def damage(datasets: list[Dataset]) -> None:
            datasets[2].PixelData = encapsulate([b"\xff\xd8\xff\xf7\x00\x0bgarbage"])

        _write(tmp_path, volume, damage, transfer_syntax=JPEGLSLossless)
        with pytest.raises(
            PixelDecodeError, match=r"IM00003.dcm .*: pixel data \(JPEG-LS Lossless.*cannot be"
        ):
            load_series(tmp_path)

    @pytest.mark.parametrize("in_memory", [False, True])
    def test_truncated_pixel_data(self, tmp_path: Path, volume: CTVolume, in_memory: bool) -> None:
        def truncate(datasets: list[Dataset]) -> None:
            datasets[2].PixelData = datasets[2].PixelData[: len(datasets[2].PixelData) // 2]

        paths = _write(tmp_path, volume, truncate)

        def load() -> object:
            if in_memory:
                return volume_from_datasets([dcmread(p) for p in paths])
            return load_series(tmp_path)

        with pytest.raises(
            PixelDecodeError, match=r"IM00003.dcm .*: pixel data \(Explicit VR Little Endian\)"
        ):
            load()

    def test_zero_pixel_spacing(self, tmp_path: Path, volume: CTVolume) -> None:
        def flatten(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.PixelSpacing = [0, 0.5]

        _write(tmp_path, volume, flatten)
        with pytest.raises(MissingAttributeError, match="PixelSpacing must be positive"):
            load_series(tmp_path)

    @pytest.mark.parametrize(
        ("tag", "vr", "raw", "message"),
        [
            (0x00200032, "DS", b"a\\b\\c ", r"\(0020,0032\) ImagePositionPatient is not numeric"),
            (0x00280030, "DS", b"0.5\\q ", r"\(0028,0030\) PixelSpacing is not numeric"),
            (0x00280008, "IS", b"xy", r"\(0028,0008\) NumberOfFrames is not an integer"),
        ],
    )
    def test_malformed_values(
        self, tmp_path: Path, volume: CTVolume, tag: int, vr: str, raw: bytes, message: str
    ) -> None:
        def spoil(datasets: list[Dataset]) -> None:
            datasets[2][tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)

        with warnings.catch_warnings():  # pydicom warns while writing the invalid value
            warnings.simplefilter("ignore", UserWarning)
            _write(tmp_path, volume, spoil)
        with pytest.raises(MissingAttributeError, match=rf"IM00003.dcm .*: {message}"):
            load_series(tmp_path)

    def test_multi_frame(self, tmp_path: Path, volume: CTVolume) -> None:
        def frames(datasets: list[Dataset]) -> None:
            datasets[0].NumberOfFrames = 2

        _write(tmp_path, volume, frames)
        with pytest.raises(UnsupportedImageError, match=r"multi-frame image \(2 frames\)"):
            load_series(tmp_path)

    def test_series_not_found(self, tmp_path: Path, volume: CTVolume) -> None:
        _write(tmp_path, volume, series_instance_uid="1.2.3.4")
        with pytest.raises(
            SeriesNotFoundError,
            match=r"series 9.9 is not among the 1 series read: 1.2.3.4 \(CT, #2, 'CaSc 3.0 Qr36'",
        ):
            load_series(tmp_path, series_instance_uid="9.9")

    def test_series_asked_for_is_read(self, tmp_path: Path, volume: CTVolume) -> None:
        other = make_volume(seed=5)
        _write(tmp_path / "a", volume, series_instance_uid="1.2.3.4")
        _write(tmp_path / "b", other, series_instance_uid="1.2.3.5", series_number=3)
        loaded = load_series(tmp_path, series_instance_uid="1.2.3.5")
        np.testing.assert_array_equal(loaded.volume.hu, other.hu)
        assert loaded.selection.reasons == {
            "1.2.3.5": "chosen: requested by its Series Instance UID",
            "1.2.3.4": "not chosen: another series was requested",
        }


class TestStorageVariants:
    def test_unsigned_12_bit_storage(self, tmp_path: Path) -> None:
        volume = make_volume(low_hu=-1024, high_hu=3071)

        def twelve_bits(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.BitsStored, ds.HighBit = 12, 11

        _write(tmp_path, volume, twelve_bits, signed=False)
        loaded = load_series(tmp_path)
        assert loaded.volume.hu.dtype == np.int16
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)

    def test_signed_12_bit_storage_is_sign_extended(self, tmp_path: Path) -> None:
        volume = make_volume(low_hu=-2048, high_hu=2047)

        def twelve_bits(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.BitsStored, ds.HighBit = 12, 11
                # two's complement in 12 bits, upper nibble left as zeros (as some scanners do)
                raw = np.frombuffer(ds.PixelData, dtype="<i2").astype(np.uint16) & 0x0FFF
                ds.PixelData = raw.astype("<u2").tobytes()

        _write(tmp_path, volume, twelve_bits, signed=True)
        np.testing.assert_array_equal(load_series(tmp_path).volume.hu, volume.hu)

    def test_values_beyond_int16_are_clipped_with_a_warning(self, tmp_path: Path) -> None:
        volume = make_volume(n_slices=2)

        def shift(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.RescaleIntercept = "31000"

        _write(tmp_path, volume, shift, signed=False)
        loaded = load_series(tmp_path)
        expected = np.minimum(volume.hu.astype(np.int32) + 1024 + 31000, 32767)
        np.testing.assert_array_equal(loaded.volume.hu, expected)
        assert loaded.volume.hu.dtype == np.int16
        (warning,) = loaded.warnings
        assert warning.message == (
            "2 slice(s) had values beyond the 16-bit HU range, clipped to -32768..32767: "
            "IM00001.dcm, IM00002.dcm"
        )

    def test_missing_rescale_is_flagged(self, tmp_path: Path, volume: CTVolume) -> None:
        def strip(datasets: list[Dataset]) -> None:
            del datasets[0].RescaleSlope, datasets[0].RescaleIntercept

        _write(tmp_path, volume, strip)
        loaded = load_series(tmp_path)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        (warning,) = loaded.warnings
        assert warning.message.startswith(
            "1 slice(s) have no Rescale Slope/Intercept; stored values were taken as HU: "
            "IM00001.dcm (SOPInstanceUID"
        )

    def test_lossy_compression_is_flagged(self, tmp_path: Path, volume: CTVolume) -> None:
        def lossy(datasets: list[Dataset]) -> None:
            datasets[1].LossyImageCompression = "01"

        _write(tmp_path, volume, lossy)
        (warning,) = load_series(tmp_path).warnings
        assert warning.message == ("1 slice(s) are lossy-compressed, which alters HU: IM00002.dcm")

    def test_missing_thickness_uses_the_increment(self, tmp_path: Path, volume: CTVolume) -> None:
        def strip(datasets: list[Dataset]) -> None:
            for ds in datasets:
                ds.SliceThickness = ""

        _write(tmp_path, volume, strip)
        loaded = load_series(tmp_path)
        assert loaded.volume.geometry.slice_thickness_mm == pytest.approx(3.0)
        (warning,) = loaded.warnings
        assert "no usable (0018,0050) Slice Thickness; the slice increment 3.00 mm" in (
            warning.message
        )


class TestSeveralSeries:
    def test_ct_chosen_over_mr_and_localizer_series(self, tmp_path: Path, volume: CTVolume) -> None:
        _write(tmp_path / "mr", make_volume(seed=4), modality="MR", series_description="T1")
        _write(
            tmp_path / "scout",
            make_volume(seed=6),
            series_description="Topogram",
            image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        )
        paths = _write(tmp_path / "ct", volume)
        loaded = load_series(tmp_path)
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        chosen_uid = dcmread(paths[0]).SeriesInstanceUID
        reasons = loaded.selection.reasons
        assert reasons[chosen_uid].startswith("chosen: CT, ORIGINAL, axial, 3 mm slices")
        assert sorted(r for uid, r in reasons.items() if uid != chosen_uid) == [
            "cannot be scored: it is a localizer (Image Type LOCALIZER)",
            "cannot be scored: modality MR is not CT",
        ]
        assert loaded.bytes_read == sum(p.stat().st_size for p in paths)
        assert loaded.files_read == 15

    def test_single_slice(self, tmp_path: Path) -> None:
        _write(tmp_path, make_volume(n_slices=1))
        with pytest.raises(DICOMInputError, match="it has 1 image, a volume needs at least 2"):
            load_series(tmp_path)

    def test_only_a_localizer_series(self, tmp_path: Path, volume: CTVolume) -> None:
        _write(tmp_path, volume, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
        with pytest.raises(DICOMInputError, match="holds only localizer images"):
            load_series(tmp_path)


class TestOrderProperty:
    @settings(max_examples=25, deadline=None)
    @given(
        order=st.permutations(range(6)),
        tilt_degrees=st.floats(min_value=-25, max_value=25),
    )
    def test_any_file_order_and_tilt_gives_the_same_volume(
        self, order: list[int], tilt_degrees: float
    ) -> None:
        volume = _tilted_volume(n_slices=6, tilt_degrees=tilt_degrees)
        datasets = series_datasets(volume)
        loaded = volume_from_datasets([datasets[k] for k in order])
        np.testing.assert_array_equal(loaded.volume.hu, volume.hu)
        assert loaded.volume.geometry.increment_mm == pytest.approx(2.5, abs=1e-4)
