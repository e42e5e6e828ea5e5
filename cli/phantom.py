"""``cac phantom``: write a synthetic CT series with known calcium, and its truth.

Examples::

    cac phantom /tmp/chest                      # anthropomorphic cardiac CT, seed 0
    cac phantom /tmp/qrm --kind qrm             # QRM-like calcification insert phantom
    cac phantom /tmp/zero --seed 7 --zero-calcium --transfer-syntax jpeg2000

OUTDIR receives:

- ``dicom/``: the series, one single-frame CT instance per slice (``cac score OUTDIR/dicom``);
- ``truth.json``: the truth score (total and per artery Agatston, volume, mass), every truth lesion
  with its centroid (mm), and every object placed;
- ``plaque_labels.npy`` (chest): ``uint8 (z, y, x)`` artery codes 1=LM 2=LAD 3=LCX 4=RCA of the
  true plaque regions, aligned with the series (a reader label map for ``cac score --labels``),
  and ``distractor_labels.npy`` (codes of :class:`phantom.study.Distractor`);
- ``insert_labels.npy`` (qrm): the nine inserts' regions, 1-9 in ``truth.json`` object order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from cli.main import CLIError
from dicom_io.errors import DICOMIOError
from dicom_io.writer import write_series
from phantom.chest import ChestPhantomConfig, chest_phantom
from phantom.errors import PhantomError
from phantom.qrm import QRMPhantomConfig, qrm_phantom
from phantom.study import PhantomStudy
from scoring import ARTERIES

#: ``--transfer-syntax`` choices and their UIDs (all lossless).
TRANSFER_SYNTAXES: dict[str, str] = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
    "jpeg2000": JPEG2000Lossless,
    "jpeg-lossless": JPEGLosslessSV1,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``phantom`` sub-command to the ``cac`` parser."""
    parser = subparsers.add_parser(
        "phantom",
        help="write a synthetic CT series with known calcium",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "outdir", type=Path, metavar="OUTDIR", help="folder to write (new or empty)"
    )
    parser.add_argument(
        "--kind",
        choices=("chest", "qrm"),
        default="chest",
        help="chest: anthropomorphic cardiac CT (default); qrm: calcification insert phantom",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="draw a random plausible study from this seed (default: the reference chest study "
        "with two plaques, or seed 0 for --kind qrm, --zero-calcium, --heavy-distractors)",
    )
    parser.add_argument(
        "--transfer-syntax",
        choices=tuple(TRANSFER_SYNTAXES),
        default="explicit",
        help="how the pixels are stored (all lossless; default explicit VR little endian)",
    )
    parser.add_argument(
        "--zero-calcium", action="store_true", help="chest: no coronary calcium at all"
    )
    parser.add_argument(
        "--heavy-distractors",
        action="store_true",
        help="chest: many non-coronary calcifications and metal, little coronary calcium",
    )
    scan = parser.add_argument_group("scan settings (default: drawn from the seed for chest)")
    scan.add_argument("--thickness-mm", type=float, help="slice thickness, e.g. 2.5 or 3.0")
    scan.add_argument("--increment-mm", type=float, help="slice increment (< thickness overlaps)")
    scan.add_argument("--pixel-spacing-mm", type=float, help="pixel spacing, 0.33-0.5 mm typical")
    scan.add_argument("--noise-sd-hu", type=float, help="image noise SD (10-35 HU typical)")
    scan.add_argument("--matrix-size", type=int, help="rows = columns (default 512)")
    parser.add_argument(
        "--unsigned", action="store_true", help="store HU + 1024 unsigned (rescale -1024)"
    )
    parser.add_argument(
        "--force", action="store_true", help="write even when OUTDIR already holds files"
    )
    parser.set_defaults(handler=run)


def _scan_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.thickness_mm is not None:
        overrides["slice_thickness_mm"] = args.thickness_mm
        overrides["increment_mm"] = args.thickness_mm
    if args.increment_mm is not None:
        overrides["increment_mm"] = args.increment_mm
    if args.pixel_spacing_mm is not None:
        overrides["pixel_spacing_mm"] = args.pixel_spacing_mm
    if args.noise_sd_hu is not None:
        overrides["noise_sd_hu"] = args.noise_sd_hu
    if args.matrix_size is not None:
        overrides["matrix_size"] = args.matrix_size
    return overrides


def _generate(args: argparse.Namespace) -> PhantomStudy:
    overrides = _scan_overrides(args)
    seed = 0 if args.seed is None else args.seed
    if args.kind == "qrm":
        if args.zero_calcium or args.heavy_distractors:
            raise CLIError("--zero-calcium and --heavy-distractors apply to --kind chest only")
        return qrm_phantom(QRMPhantomConfig(seed=seed, **overrides))
    if args.seed is None and not (args.zero_calcium or args.heavy_distractors):
        # What a new user sees first: the reference study, calcium in the LAD and the RCA.
        return chest_phantom(ChestPhantomConfig(**overrides))
    config = ChestPhantomConfig.random(
        seed,
        zero_calcium=args.zero_calcium,
        heavy_distractors=args.heavy_distractors,
        **overrides,
    )
    return chest_phantom(config)


def _check_outdir(outdir: Path, force: bool) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise CLIError(f"{outdir} exists and is not a folder")
    if outdir.is_dir() and any(outdir.iterdir()) and not force:
        raise CLIError(
            f"{outdir} is not empty; choose a new folder or pass --force to write into it"
        )


def run(args: argparse.Namespace) -> int:
    """Generate the study, write the series, the truth and the label maps; print one line."""
    outdir: Path = args.outdir
    _check_outdir(outdir, args.force)
    try:
        study = _generate(args)
    except PhantomError as exc:
        raise CLIError(str(exc)) from exc
    acquisition = study.volume.acquisition
    series_dir = outdir / "dicom"
    try:
        files = write_series(
            study.volume,
            series_dir,
            transfer_syntax=TRANSFER_SYNTAXES[args.transfer_syntax],
            study_instance_uid=acquisition.study_instance_uid,
            series_instance_uid=acquisition.series_instance_uid,
            series_description=acquisition.series_description or "Calcium score phantom",
            patient_id=f"PHANTOM-{args.kind.upper()}-{study.config.seed}",
            patient_name=f"Phantom^{args.kind.capitalize()}^Seed{study.config.seed}",
            signed=not args.unsigned,
        )
        truth = study.truth.to_json_dict()
        truth["kind"] = args.kind
        truth["seed"] = study.config.seed
        truth["config"] = repr(study.config)
        truth["series_instance_uid"] = acquisition.series_instance_uid
        (outdir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
        written = ["truth.json"]
        if args.kind == "chest":
            np.save(outdir / "plaque_labels.npy", study.plaque_labels)
            np.save(outdir / "distractor_labels.npy", study.distractor_labels)
            written += ["plaque_labels.npy", "distractor_labels.npy"]
        elif study.insert_labels is not None:
            np.save(outdir / "insert_labels.npy", study.insert_labels)
            written.append("insert_labels.npy")
    except DICOMIOError as exc:
        raise CLIError(str(exc)) from exc
    except OSError as exc:
        raise CLIError(f"cannot write to {outdir}: {exc.strerror or exc}") from exc
    t = study.truth
    if args.kind == "chest":
        parts = ", ".join(f"{a} {t.agatston_by_artery.get(a, 0.0):.1f}" for a in ARTERIES)
        summary = f"truth Agatston {t.agatston:.1f} ({parts})"
    else:
        whole = t.extra.get("whole_volume", {}).get("agatston")
        summary = f"truth Agatston {t.agatston:.1f} over the 9 inserts"
        if whole is not None:
            summary += f" ({whole:.1f} over the whole volume, calibration rod included)"
    geometry = study.volume.geometry
    print(
        f"wrote {len(files)} slices ({args.kind} phantom seed {study.config.seed}, "
        f"{geometry.slice_thickness_mm:g}/{geometry.increment_mm:g} mm, "
        f"{geometry.pixel_spacing_mm[0]:.3g} mm pixels) to {series_dir}, {summary}; "
        f"{', '.join(written)} in {outdir}; score it with: cac score {series_dir}"
    )
    return 0
