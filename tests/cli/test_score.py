"""``cac score`` end to end on DICOM series written by the tests (known answers by construction)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from dicom_io.writer import write_series
from scoring import AcquisitionInfo, Artery, CTVolume, axial_geometry


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """Two lesions: 100 px x 0.16 mm^2 at 400 HU on two slices; 16 px x 0.16 mm^2 at 250 HU."""
    hu = np.full((8, 96, 96), 30, dtype=np.int16)
    hu[3:5, 40:50, 40:50] = 400
    hu[6, 70:74, 70:74] = 250
    volume = CTVolume(
        hu,
        axial_geometry(8, (0.4, 0.4), 3.0),
        AcquisitionInfo(kvp=120.0, mass_factor_patient=0.8),
    )
    out = tmp_path / "series"
    write_series(volume, out)
    return out


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["score", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


class TestScoreWhole:
    def test_known_answer(self, series: Path, capsys: pytest.CaptureFixture[str]) -> None:
        record = run_json(capsys, str(series), "--roi", "whole")
        agatston = record["agatston"]
        assert isinstance(agatston, dict)
        # 2 slices x 16 mm^2 x 4 + 2.56 mm^2 x 2
        assert agatston["total"] == pytest.approx(2 * 16 * 4 + 2.56 * 2, abs=1e-3)
        mass = record["mass_mg"]
        assert isinstance(mass, dict)
        assert mass["calibrated"] is True
        assert mass["total"] == pytest.approx(
            0.0008 * (400 * 200 + 250 * 16) * 0.16 * 3.0, rel=1e-4
        )
        assert record["cac_drs"] == {"category": 2, "vessels": None, "label": "CAC-DRS A2"}
        series_record = record["series"]
        assert isinstance(series_record, dict)
        assert series_record["slices"] == 8
        assert series_record["kvp"] == 120.0
        assert series_record["pixel_spacing_mm"] == [0.4, 0.4]
        lesions = record["lesions"]
        assert isinstance(lesions, list)
        assert [les["artery"] for les in lesions] == [None, None]

    def test_table(self, series: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["score", str(series), "--roi", "whole"]) == 0
        out = capsys.readouterr().out
        assert "Total" in out
        assert "CAC-DRS A2: moderately increased risk" in out

    def test_parameters_are_recorded(
        self, series: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        record = run_json(
            capsys, str(series), "--roi", "whole", "--threshold-hu", "300", "--min-area-mm2", "3"
        )
        assert record["parameters"] == {
            "threshold_hu": 300.0,
            "threshold_inclusive": True,
            "connectivity": 8,
            "min_area_mm2": 3.0,
            "mass_factor_mg_per_mm3_hu": None,
            "volume_method": "voxel",
            "normalise_increment": True,
        }
        agatston = record["agatston"]
        assert isinstance(agatston, dict)
        assert agatston["total"] == pytest.approx(2 * 16 * 4, abs=1e-3)


class TestScoreWithReaderLabels:
    def test_npy_label_map(
        self, series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        labels = np.zeros((8, 96, 96), dtype=np.uint8)
        labels[3:5, 40:50, 40:50] = Artery.LAD.code
        path = tmp_path / "labels.npy"
        np.save(path, labels)
        record = run_json(capsys, str(series), "--labels", str(path))
        agatston = record["agatston"]
        assert isinstance(agatston, dict)
        assert agatston["by_artery"]["LAD"] == pytest.approx(128.0, abs=1e-3)
        assert agatston["total"] == pytest.approx(128.0, abs=1e-3)
        excluded = record["excluded"]
        assert isinstance(excluded, list)
        assert [e["reason"] for e in excluded] == ["not_labelled"]
        assert record["cac_drs"]["label"] == "CAC-DRS A2/N1"  # type: ignore[index]


class TestScoreErrors:
    def test_missing_path_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["score", str(tmp_path / "nowhere")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "no such file or folder" in err

    def test_folder_without_dicom_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "notes.txt").write_text("not an image")
        assert main(["score", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("cac: error: ")
        assert err.count("\n") == 1

    def test_bad_parameter_is_one_line(
        self, series: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["score", str(series), "--min-area-mm2", "-1"]) == 2
        assert "min_area_mm2" in capsys.readouterr().err

    def test_label_map_of_another_series_is_refused(
        self, series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "labels.npy"
        np.save(path, np.zeros((4, 96, 96), dtype=np.uint8))
        assert main(["score", str(series), "--labels", str(path)]) == 2
        assert capsys.readouterr().err.startswith("cac: error: ")
