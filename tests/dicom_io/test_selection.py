"""Tests of :mod:`dicom_io.selection`: summaries from datasets and DICOM JSON, and the choice."""

from __future__ import annotations

import pytest

from dicom_io.errors import NoSuitableSeriesError
from dicom_io.selection import (
    Orientation,
    SeriesSummary,
    is_calcium_description,
    orientation_of,
    select_series,
)
from dicom_io.writer import series_datasets
from tests.dicom_io.conftest import make_volume


def _summary(uid: str, **fields: object) -> SeriesSummary:
    defaults: dict[str, object] = {
        "modality": "CT",
        "series_description": "CaSc 3.0",
        "image_type": ("ORIGINAL", "PRIMARY", "AXIAL"),
        "slice_thickness_mm": 3.0,
        "n_instances": 40,
        "orientation": Orientation.AXIAL,
    }
    defaults.update(fields)
    return SeriesSummary(series_instance_uid=uid, **defaults)  # type: ignore[arg-type]


class TestOrientationOf:
    @pytest.mark.parametrize(
        ("cosines", "expected"),
        [
            ([1, 0, 0, 0, 1, 0], Orientation.AXIAL),
            ([1, 0, 0, 0, -1, 0], Orientation.AXIAL),
            ([1, 0, 0, 0, 0.9397, -0.3420], Orientation.AXIAL),  # 20 degree gantry tilt
            ([1, 0, 0, 0, 0, -1], Orientation.CORONAL),
            ([0, 1, 0, 0, 0, -1], Orientation.SAGITTAL),
            ([1, 0, 0, 0, 0.7071, -0.7071], Orientation.OBLIQUE),
            ([1, 0, 0], Orientation.UNKNOWN),
            (None, Orientation.UNKNOWN),
            ([1, 0, 0, 1, 0, 0], Orientation.UNKNOWN),
        ],
    )
    def test_planes(self, cosines: list[float] | None, expected: Orientation) -> None:
        assert orientation_of(cosines) is expected


class TestIsCalciumDescription:
    @pytest.mark.parametrize(
        "description",
        [
            "CaSc 3.0 Qr36",
            "Calcium Score",
            "Ca Score 3mm",
            "CAC 3.0",
            "Agatston",
            "HeartBeat-CS",
            "SmartScore 2.5",
            "cardiac_CaScoring",
        ],
    )
    def test_names_a_calcium_score(self, description: str) -> None:
        assert is_calcium_description(description)

    @pytest.mark.parametrize("description", ["Thorax 1.0 Br40", "Cascade", "", "Topogram"])
    def test_does_not(self, description: str) -> None:
        assert not is_calcium_description(description)


class TestSeriesSummary:
    def test_from_dataset(self) -> None:
        ds = series_datasets(make_volume(n_slices=2), series_number=4)[0]
        summary = SeriesSummary.from_dataset(ds, n_instances=2)
        assert summary == SeriesSummary(
            series_instance_uid=ds.SeriesInstanceUID,
            study_instance_uid=ds.StudyInstanceUID,
            modality="CT",
            series_description="CaSc 3.0 Qr36",
            image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
            slice_thickness_mm=3.0,
            n_instances=2,
            orientation=Orientation.AXIAL,
            kvp=120.0,
            convolution_kernel="Qr36\\3",
            series_number=4,
        )

    def test_from_qido_rs_series_result(self) -> None:
        result = {
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
            "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
            "00080060": {"vr": "CS", "Value": ["CT"]},
            "0008103E": {"vr": "LO", "Value": ["HeartBeat-CS 3mm"]},
            "00200011": {"vr": "IS", "Value": [3]},
            "00201209": {"vr": "IS", "Value": [48]},
            "00180050": {"vr": "DS", "Value": ["3.0"]},
            "00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]},
            "00200037": {"vr": "DS", "Value": [1, 0, 0, 0, 1, 0]},
            "00180060": {"vr": "DS", "Value": [120]},
            "00181210": {"vr": "SH", "Value": ["B", "3"]},
        }
        summary = SeriesSummary.from_dicom_json(result)
        assert summary == SeriesSummary(
            series_instance_uid="1.2.3.4",
            study_instance_uid="1.2.3",
            modality="CT",
            series_description="HeartBeat-CS 3mm",
            image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
            slice_thickness_mm=3.0,
            n_instances=48,
            orientation=Orientation.AXIAL,
            kvp=120.0,
            convolution_kernel="B\\3",
            series_number=3,
        )

    def test_from_sparse_qido_rs_result(self) -> None:
        summary = SeriesSummary.from_dicom_json(
            {"0020000E": {"vr": "UI", "Value": ["9.8"]}, "00080060": {"vr": "CS", "Value": ["CT"]}}
        )
        assert (summary.n_instances, summary.orientation, summary.is_axial) == (
            None,
            Orientation.UNKNOWN,
            None,
        )
        assert summary.rejection() is None

    def test_from_dicom_json_without_uid(self) -> None:
        with pytest.raises(NoSuitableSeriesError, match=r"no \(0020,000E\) Series Instance UID"):
            SeriesSummary.from_dicom_json({"00080060": {"vr": "CS", "Value": ["CT"]}})


class TestSelectSeries:
    def test_calcium_series_preferred_and_every_reason_given(self) -> None:
        summaries = [
            _summary("1", modality="SR", series_description="Dose Report", n_instances=1),
            _summary(
                "2", series_description="Topogram", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")
            ),
            _summary("3", series_description="Thorax 3.0", n_instances=90),
            _summary("4", series_description="CaSc 3.0", n_instances=40),
            _summary("5", series_description="CaSc 0.6", slice_thickness_mm=0.6, n_instances=200),
            _summary("6", series_description="CaSc cor", orientation=Orientation.CORONAL),
            _summary("7", series_description="CaSc MPR", image_type=("DERIVED", "SECONDARY")),
        ]
        selection = select_series(summaries)
        assert selection.chosen.series_instance_uid == "4"
        assert selection.reasons == {
            "1": "cannot be scored: modality SR is not CT; it has 1 image, a volume needs at "
            "least 2",
            "2": "cannot be scored: it is a localizer (Image Type LOCALIZER)",
            "3": "not chosen, 4 is preferred: description 'Thorax 3.0' does not name a calcium "
            "score",
            "4": "chosen: CT, ORIGINAL, axial, 3 mm slices (within 2.5-3 mm), calcium-score "
            "description 'CaSc 3.0', 40 instances",
            "5": "not chosen, 4 is preferred: 0.6 mm slices (outside 2.5-3 mm)",
            "6": "cannot be scored: slices are coronal, not axial",
            "7": "not chosen, 4 is preferred: DERIVED rather than ORIGINAL",
        }

    def test_most_instances_break_a_tie(self) -> None:
        selection = select_series([_summary("a", n_instances=30), _summary("b", n_instances=45)])
        assert selection.chosen.series_instance_uid == "b"
        assert selection.reasons["a"] == "not chosen, b is preferred: fewer instances (30 < 45)"

    def test_equal_series_go_to_the_lower_series_number(self) -> None:
        selection = select_series([_summary("a", series_number=5), _summary("b", series_number=2)])
        assert selection.chosen.series_instance_uid == "b"
        assert "equally suitable" in selection.reasons["a"]

    def test_order_does_not_matter(self) -> None:
        summaries = [_summary(str(k), n_instances=10 + k) for k in range(5)]
        forward, backward = select_series(summaries), select_series(reversed(summaries))
        assert forward.chosen == backward.chosen
        assert forward.reasons == backward.reasons
        assert select_series(reversed(summaries)).chosen.series_instance_uid == "4"

    def test_thickness_outranks_description(self) -> None:
        selection = select_series(
            [
                _summary("thin", series_description="CaSc 1.0", slice_thickness_mm=1.0),
                _summary("std", series_description="Heart 3.0"),
            ]
        )
        assert selection.chosen.series_instance_uid == "std"

    def test_nothing_suitable_lists_what_was_found(self) -> None:
        with pytest.raises(
            NoSuitableSeriesError,
            match=r"none of the 2 series found is an axial CT series that can be scored: "
            r"m \(MR, 'T1', 40 instances\): modality MR is not CT; "
            r"s \(CT, 'Sag', 40 instances\): slices are sagittal, not axial",
        ):
            select_series(
                [
                    _summary("m", modality="MR", series_description="T1"),
                    _summary("s", series_description="Sag", orientation=Orientation.SAGITTAL),
                ]
            )

    def test_empty(self) -> None:
        with pytest.raises(NoSuitableSeriesError, match="no series to choose from"):
            select_series([])
