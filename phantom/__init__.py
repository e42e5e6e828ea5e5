"""Synthetic CT studies with known calcium, for trying the tool, tests and benchmarks.

- :func:`phantom.chest.chest_phantom`: an anthropomorphic, non-contrast, ECG-gated cardiac CT
  with a coronary tree, plaques, bone and non-coronary calcifications, and per-artery truth.
- :func:`phantom.qrm.qrm_phantom`: a QRM-like calcification insert phantom.
- :func:`phantom.suite.evaluation_suite`: seeded chest configurations spread across every
  variation, for the detection benchmark.
- :func:`phantom.independent.independent_phantom` and
  :func:`phantom.independent.independent_suite`: a second cardiac CT generator written
  independently of the detector and of :mod:`phantom.chest`, to test that detection generalises.
- :func:`phantom.blind.blind_phantom` and :func:`phantom.blind.blind_suite`: a third cardiac CT
  generator (:class:`phantom.blind.BlindConfig`) written blind to the detector and to both other
  generators, as a held-out test of generalisation.

The generators are pure numpy/scipy (no file I/O) and deterministic; truth is scored by
:mod:`scoring` on the final image. ``cac phantom`` (:mod:`cli.phantom`) writes them as DICOM.
Arrays are ``(z, y, x)`` in LPS patient coordinates.
"""

from phantom.blind import BlindConfig, blind_phantom, blind_suite
from phantom.chest import ChestPhantomConfig, PlaqueSpec, chest_landmarks, chest_phantom
from phantom.errors import PhantomConfigError, PhantomError
from phantom.independent import IndependentConfig, independent_phantom, independent_suite
from phantom.qrm import QRMPhantomConfig, qrm_inserts, qrm_phantom
from phantom.study import Distractor, PhantomStudy, PhantomTruth, TruthLesion, TruthObject
from phantom.suite import evaluation_suite

__all__ = [
    "BlindConfig",
    "ChestPhantomConfig",
    "Distractor",
    "IndependentConfig",
    "PhantomConfigError",
    "PhantomError",
    "PhantomStudy",
    "PhantomTruth",
    "PlaqueSpec",
    "QRMPhantomConfig",
    "TruthLesion",
    "TruthObject",
    "blind_phantom",
    "blind_suite",
    "chest_landmarks",
    "chest_phantom",
    "evaluation_suite",
    "independent_phantom",
    "independent_suite",
    "qrm_inserts",
    "qrm_phantom",
]
