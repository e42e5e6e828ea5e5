"""Errors raised by the pure scoring package.

Every exception here says, in its docstring, when it is raised and what fixes the cause. Callers at
the edges (the command-line tool, the workers) translate them into their own messages.
"""

from __future__ import annotations


class ScoringError(Exception):
    """Base class of every error raised by :mod:`scoring`."""


class InvalidVolumeError(ScoringError, ValueError):
    """Raised when the CT volume handed to the scoring engine cannot be scored.

    For example an array that is not three-dimensional, a geometry whose number of slices differs
    from the array's, or a non-positive pixel spacing. Fix the series-to-volume step that built the
    volume; the scoring engine never guesses geometry.
    """


class InvalidParameterError(ScoringError, ValueError):
    """Raised when a scoring parameter is out of its allowed range.

    The message names the parameter and the allowed values. Fix the value passed on the command
    line or in the configuration.
    """


class LabelMapError(ScoringError, ValueError):
    """Raised when an artery label map does not fit the volume it should label.

    For example a label map of another shape, or one that names no known artery. Export the label
    map from the same series (same rows, columns and slices) with segments named LM, LAD, LCX, RCA.
    """
