"""Errors raised by the pure interpretation package.

Every exception here says, in its docstring, when it is raised and what fixes the cause. The
command-line tool and the FHIR layer translate them into their own messages; nothing here ever
reaches a user as a traceback.
"""

from __future__ import annotations


class InterpretationError(Exception):
    """Base class of every error raised by :mod:`interpretation`."""


class InvalidInputError(InterpretationError, ValueError):
    """Raised when a score, date or patient value cannot be interpreted.

    For example a negative or non-finite Agatston score, a negative age, a prior scan dated after
    the current one, or a per-artery score for an unknown artery. The message names the argument
    and the allowed values; fix the value passed in (on the command line, or in the EHR data the
    context was built from).
    """


class UnsupportedLocaleError(InterpretationError, ValueError):
    """Raised when the patient's summary is asked for in a language that has no templates.

    Only the locales listed in :data:`interpretation.summary.SUPPORTED_LOCALES` ship. Ask for one
    of those, or add ``interpretation/templates/<locale>/`` with a translation of every template.
    """


class ReferenceDataError(InterpretationError, RuntimeError):
    """Raised when the shipped MESA reference table is missing or malformed.

    This means the installed package is damaged (the data file ``interpretation/data/
    mesa_cac_percentiles.csv`` was edited or not packaged). Reinstall the package; do not edit the
    file by hand, it is a copy of the official calculator's figures.
    """
