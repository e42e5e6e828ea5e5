"""``cac score``: score a CT series from a folder or a list of DICOM files.

Reads the series (``dicom_io``), finds the calcified candidates and scores them (``scoring``),
automatically restricted to coronary calcium with ``--roi auto`` (the default), every candidate
with ``--roi whole`` (calcium phantoms), or a reader's label map with ``--labels``. Prints a table,
or one JSON object with ``--json``. With ``--age`` and ``--sex`` it also prints the clinical
interpretation.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from cli.interpret import add_patient_arguments, context_from_args
from cli.main import CLIError
from cli.progress import ProgressBar
from dicom_io.errors import DICOMIOError
from interpretation.cac_drs import CACDRS, cac_drs
from interpretation.errors import InterpretationError
from scoring import (
    ARTERIES,
    CTVolume,
    ScoreResult,
    ScoringError,
    ScoringParameters,
    find_candidates,
    labels_from_label_map,
    score_candidates,
)
from scoring.serialize import score_to_dict, series_to_dict


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a CT series (folder or files) and print Agatston, volume, mass",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="folder or files")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--roi",
        choices=("auto", "whole"),
        default="auto",
        help="auto: coronary calcium only (default); whole: every candidate (phantoms)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="a reader's artery label map (DICOM SEG, NIfTI or .npy) instead of automatic labels",
    )
    parser.add_argument("--series-uid", help="score this SeriesInstanceUID of the folder")
    defaults = ScoringParameters()
    scoring_group = parser.add_argument_group("scoring parameters (defaults: clinical profile)")
    scoring_group.add_argument("--threshold-hu", type=float, default=defaults.threshold_hu)
    scoring_group.add_argument(
        "--exclusive-threshold", action="store_true", help="count HU > threshold, not >="
    )
    scoring_group.add_argument(
        "--connectivity", type=int, choices=(4, 8), default=int(defaults.connectivity)
    )
    scoring_group.add_argument("--min-area-mm2", type=float, default=defaults.min_area_mm2)
    scoring_group.add_argument(
        "--mass-factor",
        type=float,
        metavar="MG_PER_MM3_HU",
        help="calcium mass calibration factor c_HA (default: from DICOM, else uncalibrated)",
    )
    scoring_group.add_argument(
        "--volume-method", choices=("voxel", "isotropic"), default=str(defaults.volume_method)
    )
    scoring_group.add_argument(
        "--no-normalise-increment",
        action="store_true",
        help="do not scale Agatston by increment / 3 mm",
    )
    add_patient_arguments(parser, required=False)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def parameters_from_args(args: argparse.Namespace) -> ScoringParameters:
    try:
        return ScoringParameters(
            threshold_hu=args.threshold_hu,
            threshold_inclusive=not args.exclusive_threshold,
            connectivity=args.connectivity,
            min_area_mm2=args.min_area_mm2,
            mass_factor_mg_per_mm3_hu=args.mass_factor,
            volume_method=args.volume_method,
            normalise_increment=not args.no_normalise_increment,
        )
    except ScoringError as exc:
        raise CLIError(str(exc)) from exc


def score_series(
    volume: CTVolume, params: ScoringParameters, roi: str, labels_path: Path | None
) -> ScoreResult:
    """Score a loaded volume the way the command line asks (auto, whole or reader labels)."""
    candidates = find_candidates(volume, params)
    if labels_path is not None:
        from dicom_io.labels import read_label_map

        label_map = read_label_map(labels_path, volume)
        return score_candidates(
            candidates, labels_from_label_map(candidates, label_map), roi="labels"
        )
    if roi == "whole":
        return score_candidates(candidates, None, roi="whole")
    from scoring.coronary import detect_coronary_calcium

    labelling = detect_coronary_calcium(volume, candidates)
    return score_candidates(
        candidates, labelling.labels, roi="auto", extra_warnings=labelling.warnings
    )


def run(args: argparse.Namespace) -> int:
    from dicom_io.loader import load_series

    for path in args.paths:
        if not path.exists():
            raise CLIError(f"{path}: no such file or folder")
    params = parameters_from_args(args)
    source: Path | list[Path] = args.paths[0] if len(args.paths) == 1 else list(args.paths)
    show_progress = not args.no_progress and not args.json and sys.stderr.isatty()
    bar = ProgressBar("Reading", sys.stderr) if show_progress else None
    try:
        loaded = load_series(
            source, series_instance_uid=args.series_uid, progress=bar.update if bar else None
        )
    except DICOMIOError as exc:
        raise CLIError(str(exc)) from exc
    finally:
        if bar:
            bar.close()
    try:
        result = score_series(loaded.volume, params, args.roi, args.labels)
    except (ScoringError, DICOMIOError) as exc:
        raise CLIError(str(exc)) from exc
    category = cac_drs(result.agatston, _by_artery(result))
    interpretation = _interpret(args, result, loaded.volume)
    series_warnings = [{"code": w.code.value, "message": w.message} for w in loaded.warnings]
    if args.json:
        record: dict[str, Any] = score_to_dict(result)
        record["warnings"] = series_warnings + record["warnings"]
        record["cac_drs"] = {
            "category": category.category,
            "vessels": category.vessels,
            "label": category.label,
        }
        record["series"] = series_to_dict(loaded.volume)
        record["series"]["selection"] = loaded.selection.reasons
        if interpretation is not None:
            record["interpretation"] = interpretation.to_json_dict()
        json.dump(record, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_table(loaded.volume, result, category, [w.message for w in loaded.warnings], sys.stdout)
    if interpretation is not None:
        sys.stdout.write("\n" + interpretation.render_text() + "\n")
    return 0


def _by_artery(result: ScoreResult) -> dict[Any, float] | None:
    if result.roi == "whole":
        return None
    return dict(result.agatston_by_artery)


def _interpret(args: argparse.Namespace, result: ScoreResult, volume: CTVolume) -> Any:
    """The interpretation when the patient's age and sex were given (else ``None``).

    The scan date is the acquisition date recorded in the images, today when they carry none;
    the scoring profile recorded for progression comparisons is the parameters used.
    """
    context = context_from_args(args, required=False)
    if context is None:
        if args.age is not None or args.sex is not None:
            raise CLIError("give both --age and --sex to print the interpretation")
        return None
    from interpretation import interpret

    acquired = volume.acquisition.acquisition_datetime
    scan_date = acquired.date() if acquired else datetime.date.today()
    for prior in context.prior_scores:
        if prior.date >= scan_date:
            raise CLIError(
                f"the prior scan ({prior.date.isoformat()}) is not dated before this scan "
                f"({scan_date.isoformat()})"
            )
    profile = ", ".join(f"{k}={v}" for k, v in result.parameters.as_dict().items())
    try:
        return interpret(
            result.agatston,
            context,
            by_artery=_by_artery(result),
            scan_date=scan_date,
            scoring_profile=profile,
        )
    except InterpretationError as exc:
        raise CLIError(str(exc)) from exc


def print_table(
    volume: CTVolume,
    result: ScoreResult,
    category: CACDRS,
    series_warnings: list[str],
    out: TextIO,
) -> None:
    """The human-readable report of ``cac score``."""
    series = series_to_dict(volume)
    spacing = series["pixel_spacing_mm"]
    kvp = f"{series['kvp']:g} kVp" if series["kvp"] is not None else "kVp unknown"
    kernel = series["reconstruction_kernel"]
    out.write(
        f"Series   {series['series_instance_uid'] or '(no UID)'}"
        f"{'  ' + series['series_description'] if series['series_description'] else ''}\n"
        f"         {series['slices']} slices, {series['slice_thickness_mm']:g} mm thick every "
        f"{series['increment_mm']:g} mm, pixels {spacing[0]:g} x {spacing[1]:g} mm, {kvp}"
        f"{', kernel ' + kernel if kernel else ''}\n"
    )
    roi_text = {
        "auto": "coronary calcium, detected automatically",
        "whole": "every calcified candidate in the volume (no artery labels)",
        "labels": "coronary calcium labelled by a reader",
    }[result.roi]
    out.write(f"Scored   {roi_text}\n\n")
    header = f"{'Artery':<8}{'Agatston':>10}{'Volume mm3':>12}{'Mass mg':>10}{'Lesions':>9}\n"
    out.write(header)
    if result.roi != "whole":
        for artery in ARTERIES:
            out.write(
                f"{artery.value:<8}{result.agatston_by_artery[artery]:>10.1f}"
                f"{result.volume_mm3_by_artery[artery]:>12.1f}"
                f"{result.mass_mg_by_artery[artery]:>10.1f}"
                f"{result.lesion_count_by_artery[artery]:>9d}\n"
            )
    out.write(
        f"{'Total':<8}{result.agatston:>10.1f}{result.volume_mm3:>12.1f}{result.mass_mg:>10.1f}"
        f"{result.lesion_count:>9d}\n\n"
    )
    mass_note = "" if result.mass_calibrated else "  (mass uncalibrated)"
    risk = category.risk_category.value.replace("_", " ")
    out.write(f"{category.label}: {risk} risk{mass_note}\n")
    if result.excluded:
        counts: dict[str, int] = {}
        for exc in result.excluded:
            counts[exc.reason.value] = counts.get(exc.reason.value, 0) + 1
        listed = ", ".join(
            f"{reason.replace('_', ' ')} {n}" for reason, n in sorted(counts.items())
        )
        out.write(f"Not scored as coronary: {len(result.excluded)} candidates ({listed})\n")
    messages = series_warnings + [w.message for w in result.warnings]
    if messages:
        out.write("Warnings:\n")
        for message in messages:
            out.write(f"  - {message}\n")
