"""``cac phantom`` writes a series that loads back, with truth and label maps aligned to it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from dicom_io.loader import load_series
from phantom.chest import ChestPhantomConfig, chest_phantom

SMALL = ["--matrix-size", "256", "--pixel-spacing-mm", "0.8"]


class TestChest:
    def test_reference_study_round_trip(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "chest"
        assert main(["phantom", str(out), *SMALL]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith("wrote ")
        assert "truth Agatston" in line
        assert "\n" not in line
        expected = chest_phantom(ChestPhantomConfig(matrix_size=256, pixel_spacing_mm=0.8))
        loaded = load_series(out / "dicom")
        assert np.array_equal(loaded.volume.hu, expected.volume.hu)
        assert loaded.volume.acquisition.mass_factor_patient == pytest.approx(0.8)
        labels = np.load(out / "plaque_labels.npy")
        assert np.array_equal(labels, expected.plaque_labels)
        assert np.load(out / "distractor_labels.npy").shape == loaded.volume.shape
        truth = json.loads((out / "truth.json").read_text())
        assert truth["agatston"]["total"] == pytest.approx(expected.truth.agatston, abs=1e-3)
        assert truth["series_instance_uid"] == loaded.volume.acquisition.series_instance_uid

    def test_reader_labels_reproduce_the_truth(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "chest"
        assert main(["phantom", str(out), "--seed", "21", *SMALL]) == 0
        capsys.readouterr()
        labels = out / "plaque_labels.npy"
        assert main(["score", str(out / "dicom"), "--labels", str(labels), "--json"]) == 0
        scored = json.loads(capsys.readouterr().out)
        truth = json.loads((out / "truth.json").read_text())
        assert scored["agatston"]["by_artery"] == pytest.approx(
            truth["agatston"]["by_artery"], abs=0.01
        )

    @pytest.mark.parametrize("syntax", ["rle", "jpeg-ls", "jpeg2000", "jpeg-lossless"])
    def test_compressed_zero_calcium(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], syntax: str
    ) -> None:
        out = tmp_path / syntax
        args = ["phantom", str(out), "--seed", "2", "--zero-calcium", *SMALL]
        assert main([*args, "--transfer-syntax", syntax, "--thickness-mm", "3.0"]) == 0
        capsys.readouterr()
        loaded = load_series(out / "dicom")
        assert loaded.volume.geometry.slice_thickness_mm == 3.0
        assert not np.load(out / "plaque_labels.npy").any()
        assert json.loads((out / "truth.json").read_text())["agatston"]["total"] == 0.0


class TestQRM:
    def test_writes_insert_labels(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        out = tmp_path / "qrm"
        assert main(["phantom", str(out), "--kind", "qrm", "--matrix-size", "320"]) == 0
        assert "9 inserts" in capsys.readouterr().out
        loaded = load_series(out / "dicom")
        assert np.load(out / "insert_labels.npy").shape == loaded.volume.shape
        truth = json.loads((out / "truth.json").read_text())
        assert truth["roi"] == "whole"
        assert len(truth["inserts"]) == 9


class TestErrors:
    def test_refuses_a_non_empty_folder(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "keep.txt").write_text("x")
        assert main(["phantom", str(tmp_path), *SMALL]) == 2
        err = capsys.readouterr().err
        assert "not empty" in err
        assert "Traceback" not in err

    def test_bad_setting_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["phantom", str(tmp_path / "x"), "--thickness-mm", "9"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == "cac: error: slice_thickness_mm must be 0.5-5 mm, got 9.0"

    def test_chest_options_rejected_for_qrm(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["phantom", str(tmp_path / "q"), "--kind", "qrm", "--zero-calcium"]) == 2
        assert "--kind chest only" in capsys.readouterr().err
