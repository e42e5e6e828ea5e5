"""The DICOM edge: CT series to :class:`~scoring.volume.CTVolume` and back.

``dicom_io`` reads single-frame CT instances (files or datasets already in memory), chooses the
series to score, checks its geometry and hands :mod:`scoring` a volume in Hounsfield units; it also
writes volumes as DICOM series for the phantom generator and the tests.
"""

from dicom_io.loader import LoadedSeries, load_series, volume_from_datasets
from dicom_io.selection import SeriesSelection, SeriesSummary, select_series
from dicom_io.writer import (
    WRITABLE_TRANSFER_SYNTAXES,
    series_datasets,
    write_datasets,
    write_series,
)

__all__ = [
    "WRITABLE_TRANSFER_SYNTAXES",
    "LoadedSeries",
    "SeriesSelection",
    "SeriesSummary",
    "load_series",
    "select_series",
    "series_datasets",
    "volume_from_datasets",
    "write_datasets",
    "write_series",
]
