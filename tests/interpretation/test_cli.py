"""Tests for ``cac interpret`` (cli/interpret.py), run through cli.main.main."""

from __future__ import annotations

import json

import pytest

from cli.main import main

REFERENCE = [
    "interpret",
    "--agatston",
    "0",
    "--age",
    "70",
    "--sex",
    "male",
    "--race",
    "hispanic",
    "--total-cholesterol",
    "190",
    "--hdl",
    "50",
    "--systolic-bp",
    "130",
    "--bp-meds",
]


class TestInterpretCommand:
    def test_text(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(REFERENCE) == 0
        out = capsys.readouterr().out
        assert "CAC-DRS A0 - risk very low" in out
        assert "3.06 % with CAC, 8.61 % without" in out
        assert "What does this scan show?" in out

    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main([*REFERENCE, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["chd_risk_10y"]["with_cac"] == 3.06
        assert data["chd_risk_10y"]["without_cac"] == 8.61
        assert data["chd_risk_10y"]["missing"] == []
        assert data["cac_drs"]["label"] == "CAC-DRS A0"

    def test_by_artery_prior_and_flags(self, capsys: pytest.CaptureFixture[str]) -> None:
        argv = [
            "interpret",
            "--agatston",
            "120",
            "--by-artery",
            "lad=100,RCA=20,LM=0",
            "--age",
            "62",
            "--sex",
            "female",
            "--race",
            "black",
            "--prior-agatston",
            "40",
            "--prior-date",
            "2021-11-26",
            "--scan-date",
            "2026-11-26",
            "--symptoms",
            "--prior-cad",
            "--pregnant",
            "--smoker",
            "--json",
        ]
        assert main(argv) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["cac_drs"]["label"] == "CAC-DRS A2/N2"
        assert data["mesa_percentile"]["value"] == 91
        assert data["progression"]["absolute_change"] == 80
        codes = {finding["code"] for finding in data["appropriateness"]}
        assert codes == {"symptoms", "known_cad", "pregnant"}
        assert data["chd_risk_10y"]["missing"] == ["total_cholesterol", "hdl", "systolic_bp"]

    def test_other_race(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main([*REFERENCE, "--race", "other", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["mesa_percentile"]["applicable"] is False
        assert data["chd_risk_10y"]["with_cac"] is None
        assert "outside the four MESA groups" in data["chd_risk_10y"]["reason"]

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--age", "50", "--sex", "male"], "--agatston is required"),
            (["--agatston", "10", "--sex", "male"], "--age is required"),
            (["--agatston", "10", "--age", "50"], "--sex is required"),
            (["--agatston", "ten", "--age", "50", "--sex", "male"], "--agatston must be a number"),
            (["--agatston", "-3", "--age", "50", "--sex", "male"], ">= 0"),
            (["--agatston", "10", "--age", "50", "--sex", "other"], "--sex must be female or male"),
            (
                ["--agatston", "10", "--age", "50", "--sex", "male", "--race", "asian"],
                "--race must be one of",
            ),
            (
                ["--agatston", "10", "--age", "50", "--sex", "male", "--by-artery", "PDA=3"],
                "unknown artery 'PDA'",
            ),
            (
                ["--agatston", "10", "--age", "50", "--sex", "male", "--by-artery", "LAD"],
                "must look like LAD=100",
            ),
            (
                ["--agatston", "10", "--age", "50", "--sex", "male", "--by-artery", "LAD=1,LAD=2"],
                "given twice",
            ),
            (
                ["--agatston", "10", "--age", "50", "--sex", "male", "--prior-agatston", "3"],
                "go together",
            ),
            (
                [
                    "--agatston",
                    "10",
                    "--age",
                    "50",
                    "--sex",
                    "male",
                    "--prior-agatston",
                    "3",
                    "--prior-date",
                    "26/11/2021",
                ],
                "--prior-date must be a date YYYY-MM-DD",
            ),
            (
                [
                    "--agatston",
                    "10",
                    "--age",
                    "50",
                    "--sex",
                    "male",
                    "--prior-agatston",
                    "3",
                    "--prior-date",
                    "2027-01-01",
                    "--scan-date",
                    "2026-11-26",
                ],
                "not dated before this scan",
            ),
            (["--agatston", "10", "--age", "500", "--sex", "male"], "at most 130"),
            (
                ["--agatston", "10", "--age", "50", "--sex", "male", "--locale", "fr"],
                "locale 'fr'",
            ),
        ],
    )
    def test_bad_input_is_one_line(
        self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["interpret", *argv]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert captured.err.startswith("cac: error: ")
        assert message in captured.err
