"""``cac interpret``: interpret an Agatston score for a patient in one line of shell.

Example::

    cac interpret --agatston 120 --by-artery LAD=100,RCA=20 --age 62 --sex female --race black

prints the CAC-DRS category, MESA percentile, arterial age, MESA 10-year CHD risk (when the risk
factors are given), progression against a prior score, appropriateness findings, guidance for the
referring clinician and the patient's summary; ``--json`` prints one JSON object instead.

Yes/no flags (``--smoker``, ``--diabetes``...) mean *yes* when given and *no* when absent: the
command line is the clinician's full statement. The numeric risk factors, race and prior score
are unknown when absent, and the 10-year risk then lists what is missing instead of guessing.
:func:`add_patient_arguments` and :func:`context_from_args` are shared with ``cac score``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
from typing import Any

from cli.main import CLIError
from interpretation import (
    SUPPORTED_LOCALES,
    InterpretationError,
    MesaRace,
    PatientContext,
    PriorScore,
    Sex,
    interpret,
)
from scoring.parameters import ARTERIES, Artery

_RACE_CHOICES = (*(race.value for race in MesaRace), "other")
_DEFAULT_SYMPTOMS = "chest pain or breathlessness"


def register(subparsers: Any) -> None:
    """Add the ``interpret`` sub-command to the ``cac`` parser."""
    parser = subparsers.add_parser(
        "interpret",
        help="interpret a score: CAC-DRS, MESA percentile, risk, guidance",
        description="Interpret an Agatston score for a patient: CAC-DRS, MESA percentile, "
        "arterial age, 10-year CHD risk, progression, appropriateness, guidance for the "
        "referring clinician and the patient's summary. Yes/no flags mean yes when given, no "
        "when absent; absent numbers are unknown.",
    )
    parser.add_argument("--agatston", metavar="N", help="total Agatston score (required)")
    parser.add_argument(
        "--by-artery",
        metavar="LM=N,LAD=N,LCX=N,RCA=N",
        help="Agatston score per artery, for the CAC-DRS vessel count N",
    )
    add_patient_arguments(parser, required=True)
    parser.add_argument("--scan-date", metavar="YYYY-MM-DD", help="date of this scan (today)")
    parser.add_argument("--profile", help="how this scan was scored, compared with --prior-profile")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def add_patient_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Add the patient options (age, sex, race, risk factors, prior score, history).

    With ``required`` False (``cac score``), age and sex are optional and the interpretation is
    printed only when both are given.
    """
    needed = " (required)" if required else ""
    group = parser.add_argument_group("patient")
    group.add_argument("--age", metavar="YEARS", help=f"age at the scan in years{needed}")
    group.add_argument("--sex", metavar="female|male", help=f"sex{needed}")
    group.add_argument("--race", metavar="|".join(_RACE_CHOICES), help="MESA race/ethnicity")
    group.add_argument("--total-cholesterol", metavar="MG_DL", help="total cholesterol, mg/dL")
    group.add_argument("--hdl", metavar="MG_DL", help="HDL cholesterol, mg/dL")
    group.add_argument("--systolic-bp", metavar="MMHG", help="systolic blood pressure, mmHg")
    group.add_argument("--bp-meds", action="store_true", help="on blood-pressure medication")
    group.add_argument("--lipid-meds", action="store_true", help="on lipid-lowering medication")
    group.add_argument("--smoker", action="store_true", help="current smoker")
    group.add_argument("--diabetes", action="store_true", help="has diabetes")
    group.add_argument(
        "--family-history", action="store_true", help="family history of heart attack"
    )
    group.add_argument("--prior-agatston", metavar="N", help="an earlier Agatston score")
    group.add_argument("--prior-date", metavar="YYYY-MM-DD", help="date of the earlier score")
    group.add_argument("--prior-profile", help="how the earlier scan was scored")
    group.add_argument(
        "--symptoms",
        nargs="?",
        const=_DEFAULT_SYMPTOMS,
        metavar="TEXT",
        help=f"symptoms are present (optionally which; default: {_DEFAULT_SYMPTOMS})",
    )
    group.add_argument(
        "--prior-cad",
        action="store_true",
        help="known coronary disease (heart attack, bypass, stent)",
    )
    group.add_argument("--pregnant", action="store_true", help="pregnant")
    group.add_argument("--trying-to-conceive", action="store_true", help="trying to conceive")
    group.add_argument(
        "--locale", default="en", metavar="|".join(SUPPORTED_LOCALES), help="summary language"
    )


def _number(value: str | None, option: str, *, required: bool = False) -> float | None:
    if value is None:
        if required:
            raise CLIError(f"{option} is required")
        return None
    try:
        number = float(value)
    except ValueError:
        raise CLIError(f"{option} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise CLIError(f"{option} must be a finite number >= 0, got {value!r}")
    return number


def _date(value: str, option: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CLIError(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


def parse_by_artery(value: str) -> dict[Artery, float]:
    """Parse ``LM=0,LAD=100,...`` into per-artery scores.

    Raises
    ------
    CLIError
        If an item is not ``ARTERY=N``, names an unknown artery, repeats one, or has a bad number.
    """
    scores: dict[Artery, float] = {}
    names = ", ".join(a.value for a in ARTERIES)
    for item in value.split(","):
        key, sep, number = item.strip().partition("=")
        if not sep:
            raise CLIError(f"--by-artery items must look like LAD=100, got {item.strip()!r}")
        try:
            artery = Artery(key.strip().upper())
        except ValueError:
            raise CLIError(f"--by-artery: unknown artery {key.strip()!r}; use {names}") from None
        if artery in scores:
            raise CLIError(f"--by-artery: {artery.value} is given twice")
        score = _number(number.strip(), f"--by-artery {artery.value}")
        assert score is not None
        scores[artery] = score
    return scores


def context_from_args(args: argparse.Namespace, *, required: bool) -> PatientContext | None:
    """Build the patient context from the options of :func:`add_patient_arguments`.

    Returns ``None`` when ``required`` is False and age or sex is missing.

    Raises
    ------
    CLIError
        For a missing required option or a value that cannot be read.
    """
    if not required and (args.age is None or args.sex is None):
        return None
    age = _number(args.age, "--age", required=True)
    if args.sex is None:
        raise CLIError("--sex is required (female or male)")
    try:
        sex = Sex(args.sex.lower())
    except ValueError:
        raise CLIError(f"--sex must be female or male, got {args.sex!r}") from None
    race: MesaRace | None = None
    race_detail: str | None = None
    if args.race is not None:
        choice = args.race.lower()
        if choice not in _RACE_CHOICES:
            raise CLIError(f"--race must be one of {', '.join(_RACE_CHOICES)}, got {args.race!r}")
        if choice == "other":
            race_detail = "other (outside the four MESA groups)"
        else:
            race = MesaRace(choice)
    if (args.prior_agatston is None) != (args.prior_date is None):
        raise CLIError("--prior-agatston and --prior-date go together; give both or neither")
    prior_scores: tuple[PriorScore, ...] = ()
    if args.prior_agatston is not None:
        prior_value = _number(args.prior_agatston, "--prior-agatston")
        assert prior_value is not None
        prior_scores = (
            PriorScore(
                date=_date(args.prior_date, "--prior-date"),
                agatston=prior_value,
                profile=args.prior_profile,
            ),
        )
    try:
        return PatientContext(
            age_years=age,
            sex=sex,
            race=race,
            race_detail=race_detail,
            total_cholesterol_mg_dl=_number(args.total_cholesterol, "--total-cholesterol"),
            hdl_mg_dl=_number(args.hdl, "--hdl"),
            systolic_bp_mmhg=_number(args.systolic_bp, "--systolic-bp"),
            on_bp_medication=args.bp_meds,
            on_lipid_medication=args.lipid_meds,
            current_smoker=args.smoker,
            diabetes=args.diabetes,
            family_history=args.family_history,
            symptoms=() if args.symptoms is None else (args.symptoms,),
            prior_cad=args.prior_cad,
            pregnant=args.pregnant,
            trying_to_conceive=args.trying_to_conceive,
            prior_scores=prior_scores,
        )
    except InterpretationError as exc:
        raise CLIError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Handle ``cac interpret``: print the interpretation as text or one JSON object."""
    agatston = _number(args.agatston, "--agatston", required=True)
    assert agatston is not None
    context = context_from_args(args, required=True)
    assert context is not None
    by_artery = None if args.by_artery is None else parse_by_artery(args.by_artery)
    scan_date = (
        datetime.date.today() if args.scan_date is None else _date(args.scan_date, "--scan-date")
    )
    for prior in context.prior_scores:
        if prior.date >= scan_date:
            raise CLIError(
                f"the prior scan ({prior.date.isoformat()}) is not dated before this scan "
                f"({scan_date.isoformat()}); check --prior-date and --scan-date"
            )
    try:
        result = interpret(
            agatston,
            context,
            by_artery=by_artery,
            scan_date=scan_date,
            scoring_profile=args.profile,
            locale=args.locale,
        )
    except InterpretationError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(json.dumps(result.to_json_dict(), indent=2))
    else:
        print(result.render_text(), end="")
    return 0
