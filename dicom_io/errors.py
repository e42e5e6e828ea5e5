"""Errors raised at the DICOM edge.

Every exception says, in its docstring, when it is raised and what fixes the cause. Messages name
the instance (file name and SOP Instance UID) and the problem, so that the command-line tool and the
workers can show them as one readable line.
"""

from __future__ import annotations


class DICOMIOError(Exception):
    """Base class of every error raised by :mod:`dicom_io`."""


class DICOMInputError(DICOMIOError):
    """Base class of the errors raised while reading a CT series.

    Raised (as one of its subclasses) when the files or datasets handed to the loader cannot be
    turned into a CT volume. The message says which instance and what is wrong; fix the series on
    the PACS or export it again.
    """


class NoDICOMFilesError(DICOMInputError, FileNotFoundError):
    """Raised when a path does not exist or holds no readable DICOM instance.

    Point the loader at the folder (searched recursively) or the files of the exported series; the
    message lists how many files were skipped and why.
    """


class NoSuitableSeriesError(DICOMInputError):
    """Raised when none of the series found is an axial CT series that can be scored.

    The message lists every series found and why it was rejected (modality, localizer, orientation,
    ...). Export the calcium-score series (axial, ORIGINAL, 2.5-3 mm) of the study.
    """


class SeriesNotFoundError(DICOMInputError):
    """Raised when the Series Instance UID asked for is not among the instances read.

    The message lists the series UIDs that were found; pass one of them, or none to let the loader
    choose.
    """


class NonCTModalityError(DICOMInputError):
    """Raised when the series asked for is not CT ((0008,0060) Modality is not ``CT``).

    Calcium scores are defined on CT Hounsfield units only; choose the CT series of the study.
    """


class NonAxialSeriesError(DICOMInputError):
    """Raised when the slices of the series are not axial (or not all in one orientation).

    (0020,0037) Image Orientation (Patient) must be one plane for every slice, with the slice
    normal within a few degrees of the patient's head-foot axis. Score the original axial
    reconstruction, not a coronal or sagittal reformat.
    """


class InconsistentSeriesError(DICOMInputError):
    """Raised when the instances of one series do not share rows, columns or pixel spacing.

    A volume needs one grid. The message names the first instance that differs; usually two
    reconstructions were stored under one Series Instance UID: export them separately.
    """


class SliceSpacingError(DICOMInputError):
    """Raised when the slice positions do not form an evenly spaced stack.

    Covers missing slices (gaps), uneven increments beyond the tolerance and two different images
    at one position. The message names the instances on either side of the problem. Re-send the
    complete series from the scanner or PACS.
    """


class MissingAttributeError(DICOMInputError):
    """Raised when an instance lacks an attribute the volume cannot be built without.

    For example (0020,0032) Image Position (Patient), (0020,0037) Image Orientation (Patient),
    (0028,0030) Pixel Spacing, Rows or Columns, or a dataset without a Transfer Syntax UID. The
    message names the instance and the attribute; export the series with full headers (an
    anonymiser may have removed them).
    """


class UnsupportedImageError(DICOMInputError):
    """Raised when an instance is an image the loader does not handle.

    Multi-frame (enhanced CT) instances and colour images are refused; export the series as
    single-frame CT Image Storage instances (classic CT).
    """


class MissingPixelDataError(DICOMInputError):
    """Raised when an instance of the series carries no (7FE0,0010) Pixel Data.

    Often a header-only export or a truncated transfer. Re-send the series with its images.
    """


class UnsupportedTransferSyntaxError(DICOMInputError):
    """Raised when an instance is encoded in a transfer syntax no installed decoder handles.

    The message names the syntax. Ask the PACS for Explicit VR Little Endian (the DICOMweb
    default), or install the decoder plugin (pylibjpeg-libjpeg, pyjpegls, pylibjpeg-openjpeg,
    pylibjpeg-rle, python-gdcm).
    """


class PixelDecodeError(DICOMInputError):
    """Raised when the pixel data of an instance cannot be decoded or has the wrong shape.

    The file is likely damaged (truncated transfer, wrong length). Re-send the instance.
    """


class DICOMWriteError(DICOMIOError, ValueError):
    """Raised when a volume cannot be written as a DICOM series with the options given.

    For example Hounsfield units outside the range the chosen storage can hold, or a transfer
    syntax the writer does not encode. The message names the argument; change it.
    """
