"""The DICOMweb PACS client: allow-list (pure), and find / list / retrieve against the real Orthanc,
including a JPEG 2000 series retrieved as stored and decoded client-side."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless

from dicom_io.loader import volume_from_datasets
from dicom_io.writer import write_series
from phantom.chest import ChestPhantomConfig, chest_phantom
from tests.peers.servers import OrthancServer
from workers.errors import PACSNotAllowedError, StudyNotFoundError, StudyTooLargeError
from workers.pacs import DICOMwebPACS, check_allowed, normalise_base, series_uid


class TestAllowList:
    def test_default_ports_and_trailing_slashes_compare_equal(self) -> None:
        assert normalise_base("http://PACS.example.org/dicom-web/") == normalise_base(
            "http://pacs.example.org:80/dicom-web"
        )

    def test_allowed_base_is_returned_without_trailing_slash(self) -> None:
        allowed = ["https://pacs.example.org/dicom-web"]
        assert check_allowed("https://pacs.example.org/dicom-web/", allowed) == (
            "https://pacs.example.org/dicom-web"
        )

    @pytest.mark.parametrize(
        "address",
        [
            "http://169.254.169.254/latest",
            "https://pacs.example.org:8443/dicom-web",
            "https://pacs.example.org/other",
            "http://pacs.example.org/dicom-web",
        ],
    )
    def test_other_addresses_are_refused(self, address: str) -> None:
        with pytest.raises(PACSNotAllowedError, match="not in the allow-list"):
            check_allowed(address, ["https://pacs.example.org/dicom-web"])

    def test_non_http_address_is_refused(self) -> None:
        with pytest.raises(PACSNotAllowedError, match="not an http"):
            check_allowed("file:///etc/passwd", ["https://pacs.example.org/dicom-web"])

    def test_client_refuses_a_base_outside_the_allow_list(self) -> None:
        with pytest.raises(PACSNotAllowedError):
            DICOMwebPACS("http://10.0.0.1/dicom-web", ["http://127.0.0.1:8042/dicom-web"])


@pytest.fixture(scope="module")
def jpeg2000_study(
    orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    folder: Path = tmp_path_factory.mktemp("j2k")
    phantom = chest_phantom(ChestPhantomConfig.random(41, matrix_size=128, pixel_spacing_mm=1.0))
    accession = f"A{uuid.uuid4().hex[:12]}"
    patient_id = f"P{uuid.uuid4().hex[:8]}"
    paths = write_series(
        phantom.volume,
        folder,
        transfer_syntax=JPEG2000Lossless,
        study_instance_uid=f"2.25.{uuid.uuid4().int}",
        series_instance_uid=f"2.25.{uuid.uuid4().int}",
        accession_number=accession,
        patient_id=patient_id,
    )
    orthanc.upload_files(paths)
    return {"phantom": phantom, "accession": accession, "patient_id": patient_id, "n": len(paths)}


@pytest.mark.integration
class TestDICOMwebPACS:
    def client(self, orthanc: OrthancServer, **kwargs: int) -> DICOMwebPACS:
        return DICOMwebPACS(
            orthanc.dicomweb_url, [orthanc.dicomweb_url], auth=orthanc.auth, **kwargs
        )

    def test_find_by_accession_and_patient_then_retrieve_jpeg2000_as_stored(
        self, orthanc: OrthancServer, jpeg2000_study: dict[str, object]
    ) -> None:
        pacs = self.client(orthanc)
        study_uid = pacs.find_study(
            accession_number=str(jpeg2000_study["accession"]),
            patient_id=str(jpeg2000_study["patient_id"]),
        )
        (series,) = pacs.list_series(study_uid)
        progress: list[tuple[int, int]] = []
        retrieved = pacs.retrieve_series(
            study_uid,
            series_uid(series),
            expected_instances=int(jpeg2000_study["n"]),  # type: ignore[call-overload]
            progress=lambda n, total: progress.append((n, total)),
        )
        assert len(retrieved.datasets) == jpeg2000_study["n"]
        assert {ds.file_meta.TransferSyntaxUID for ds in retrieved.datasets} == {JPEG2000Lossless}
        assert progress[-1] == (jpeg2000_study["n"], jpeg2000_study["n"])
        loaded = volume_from_datasets(retrieved.datasets)
        np.testing.assert_array_equal(loaded.volume.hu, jpeg2000_study["phantom"].volume.hu)  # type: ignore[attr-defined]

    def test_unknown_study_uid(self, orthanc: OrthancServer) -> None:
        with pytest.raises(StudyNotFoundError, match="no study with StudyInstanceUID"):
            self.client(orthanc).find_study(study_instance_uid=f"2.25.{uuid.uuid4().int}")

    def test_no_identifier_at_all(self, orthanc: OrthancServer) -> None:
        with pytest.raises(StudyNotFoundError, match="names no Study Instance UID"):
            self.client(orthanc).find_study()

    def test_size_limit_stops_the_download(
        self, orthanc: OrthancServer, jpeg2000_study: dict[str, object]
    ) -> None:
        pacs = self.client(orthanc, max_bytes=50_000)
        study_uid = pacs.find_study(accession_number=str(jpeg2000_study["accession"]))
        (series,) = pacs.list_series(study_uid)
        with pytest.raises(StudyTooLargeError, match="size limit of 50000 bytes"):
            pacs.retrieve_series(study_uid, series_uid(series))
