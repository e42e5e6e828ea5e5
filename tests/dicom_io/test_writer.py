"""Tests of :mod:`dicom_io.writer`: what each written instance carries, read back with pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless

from dicom_io.errors import DICOMWriteError
from dicom_io.writer import WRITABLE_TRANSFER_SYNTAXES, series_datasets, write_series
from scoring.volume import CTVolume
from tests.dicom_io.conftest import make_volume


def _hu_of(path: Path) -> np.ndarray:
    ds = dcmread(path)
    return ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)


class TestWriteSeries:
    @pytest.mark.parametrize("transfer_syntax", WRITABLE_TRANSFER_SYNTAXES)
    @pytest.mark.parametrize("signed", [True, False])
    def test_pixels_round_trip_exactly(
        self, tmp_path: Path, volume: CTVolume, transfer_syntax: str, signed: bool
    ) -> None:
        paths = write_series(volume, tmp_path, transfer_syntax=transfer_syntax, signed=signed)
        assert len(paths) == volume.shape[0]
        for index, path in enumerate(paths):
            assert dcmread(path).file_meta.TransferSyntaxUID == transfer_syntax
            np.testing.assert_array_equal(_hu_of(path), volume.hu[index])

    def test_storage_and_rescale(self, volume: CTVolume) -> None:
        signed = series_datasets(volume, signed=True)[0]
        unsigned = series_datasets(volume, signed=False)[0]
        assert (signed.PixelRepresentation, float(signed.RescaleIntercept)) == (1, 0.0)
        assert (unsigned.PixelRepresentation, float(unsigned.RescaleIntercept)) == (0, -1024.0)
        raw = np.frombuffer(unsigned.PixelData, dtype="<u2").reshape(volume.shape[1:])
        np.testing.assert_array_equal(raw.astype(np.int32) - 1024, volume.hu[0])

    def test_header_carries_geometry_and_acquisition(self, tmp_path: Path) -> None:
        volume = make_volume(n_slices=3)
        paths = write_series(volume, tmp_path, series_number=7, accession_number="A1")
        ds = dcmread(paths[2])
        assert ds.SOPClassUID == CTImageStorage
        assert [float(v) for v in ds.ImagePositionPatient] == [-50.0, -60.0, -94.0]
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [0.4, 0.5]
        assert float(ds.SliceThickness) == 3.0
        assert float(ds.SpacingBetweenSlices) == 3.0
        assert float(ds.KVP) == 120.0
        assert list(ds.ConvolutionKernel) == ["Qr36", "3"]
        assert ds.Manufacturer == "Phantom Works"
        assert ds.ManufacturerModelName == "PW-1"
        assert ds.CalciumScoringMassFactorPatient == pytest.approx(0.75)
        assert list(ds.CalciumScoringMassFactorDevice) == pytest.approx([0.5, 0.75, 1.0])
        assert ds.AcquisitionDateTime == "20261102083015.000000"
        assert ds.PatientPosition == "HFS"
        assert ds.InstanceNumber == 3
        assert ds.SeriesNumber == 7
        assert ds.AccessionNumber == "A1"
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
        assert ds.FrameOfReferenceUID

    def test_uids_are_deterministic_and_distinct(self, tmp_path: Path, volume: CTVolume) -> None:
        first = series_datasets(volume)
        again = series_datasets(volume)
        other = series_datasets(make_volume(seed=1))
        assert [d.SOPInstanceUID for d in first] == [d.SOPInstanceUID for d in again]
        assert len({d.SOPInstanceUID for d in first}) == len(first)
        assert first[0].SeriesInstanceUID != other[0].SeriesInstanceUID
        assert first[0].StudyInstanceUID != other[0].StudyInstanceUID

    def test_given_uids_are_used(self, volume: CTVolume) -> None:
        ds = series_datasets(volume, study_instance_uid="1.2.3", series_instance_uid="1.2.3.4")[0]
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == ("1.2.3", "1.2.3.4")

    def test_file_names_use_the_prefix(self, tmp_path: Path, volume: CTVolume) -> None:
        paths = write_series(volume, tmp_path / "new", file_prefix="CT")
        assert [p.name for p in paths[:2]] == ["CT00001.dcm", "CT00002.dcm"]

    def test_float_volume_is_rounded(self, volume: CTVolume) -> None:
        floating = CTVolume(
            hu=volume.hu.astype(np.float32) + np.float32(0.25), geometry=volume.geometry
        )
        ds = series_datasets(floating)[0]
        np.testing.assert_array_equal(ds.pixel_array, volume.hu[0])


class TestWriteSeriesErrors:
    def test_unsigned_storage_cannot_hold_very_low_hu(self) -> None:
        volume = make_volume(low_hu=-2048, high_hu=-1500)
        with pytest.raises(DICOMWriteError, match="pass signed=True"):
            series_datasets(volume, signed=False)

    def test_unknown_transfer_syntax(self, volume: CTVolume) -> None:
        with pytest.raises(DICOMWriteError, match=r"transfer_syntax '1\.2\.3' is not writable"):
            series_datasets(volume, transfer_syntax="1.2.3")

    def test_jpeg2000_needs_32_pixels_a_side(self) -> None:
        with pytest.raises(DICOMWriteError, match="JPEG 2000 needs at least 32 rows and columns"):
            series_datasets(make_volume(rows=20), transfer_syntax=JPEG2000Lossless)

    def test_non_finite_float(self, volume: CTVolume) -> None:
        hu = volume.hu.astype(np.float32)
        hu[0, 0, 0] = np.nan
        with pytest.raises(DICOMWriteError, match="NaN"):
            series_datasets(CTVolume(hu=hu, geometry=volume.geometry))

    def test_default_syntax_is_explicit_little_endian(self, volume: CTVolume) -> None:
        assert series_datasets(volume)[0].file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
