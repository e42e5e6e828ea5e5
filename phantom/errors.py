"""Errors raised by the synthetic CT phantom generators."""

from __future__ import annotations


class PhantomError(Exception):
    """Base class of every error raised by :mod:`phantom`."""


class PhantomConfigError(PhantomError, ValueError):
    """Raised when a phantom configuration cannot describe a plausible study.

    For example a pixel spacing or slice thickness outside the simulated range, an increment
    larger than the slice thickness, a negative noise level or a plaque position outside 0-1. The
    message names the field and its allowed range; fix the value passed to the configuration (or
    to ``cac phantom``).
    """
