"""One call that interprets a score for a patient, and its JSON and terminal forms."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interpretation.appropriateness import AppropriatenessFinding, appropriateness
from interpretation.arterial_age import ArterialAge, arterial_age
from interpretation.cac_drs import CACDRS, RiskCategory, cac_drs
from interpretation.chd_risk import CHDRisk, chd_risk_10y
from interpretation.context import PatientContext, check_agatston
from interpretation.guidance import GuidanceItem, clinician_guidance
from interpretation.mesa import MesaPercentile, mesa_percentile
from interpretation.progression import Progression, progression
from interpretation.summary import format_score, patient_summary
from scoring.parameters import Artery


@dataclass(frozen=True, slots=True)
class Interpretation:
    """Everything the service says about one score for one patient.

    Attributes
    ----------
    agatston
        The total Agatston score interpreted.
    cac_drs, mesa_percentile, arterial_age, chd_risk_10y
        See :func:`~interpretation.cac_drs.cac_drs`, :func:`~interpretation.mesa.mesa_percentile`,
        :func:`~interpretation.arterial_age.arterial_age`,
        :func:`~interpretation.chd_risk.chd_risk_10y`.
    progression
        Change against the latest prior score, or ``None`` without one.
    appropriateness
        Findings about whether the test suits this patient, most severe first.
    risk_category
        The CAC-DRS risk level.
    clinician_guidance
        Decision support for the referring clinician, each item with its source.
    patient_summary
        Plain-language text for the patient.
    """

    agatston: float
    cac_drs: CACDRS
    mesa_percentile: MesaPercentile
    arterial_age: ArterialAge
    chd_risk_10y: CHDRisk
    progression: Progression | None
    appropriateness: tuple[AppropriatenessFinding, ...]
    risk_category: RiskCategory
    clinician_guidance: tuple[GuidanceItem, ...]
    patient_summary: str

    def to_json_dict(self) -> dict[str, Any]:
        """The interpretation as JSON-ready data, with the keys of issue 4 item 9.

        Returns
        -------
        dict
            Keys ``cac_drs``, ``mesa_percentile``, ``arterial_age``, ``chd_risk_10y``
            (``with_cac``, ``without_cac``, ``missing``, ...), ``progression`` (``None`` without a
            prior score), ``appropriateness``, ``risk_category``, ``clinician_guidance``,
            ``patient_summary``. Percentages are in %, scores in Agatston units.
        """
        drs = self.cac_drs
        pct = self.mesa_percentile
        age = self.arterial_age
        risk = self.chd_risk_10y
        prog = self.progression
        return {
            "cac_drs": {
                "category": drs.category,
                "vessels": drs.vessels,
                "label": drs.label,
            },
            "mesa_percentile": {
                "value": pct.value,
                "applicable": pct.applicable,
                "reason": pct.reason,
                "p_nonzero_pct": pct.p_nonzero_pct,
                "age_years_used": pct.age_years_used,
            },
            "arterial_age": {
                "years": age.years,
                "over_84": age.over_84,
                "under_45": age.under_45,
                "text": age.text,
                "caveats": list(age.caveats),
            },
            "chd_risk_10y": {
                "with_cac": risk.with_cac_pct,
                "without_cac": risk.without_cac_pct,
                "missing": list(risk.missing),
                "applicable": risk.applicable,
                "reason": risk.reason,
            },
            "progression": None
            if prog is None
            else {
                "prior_agatston": prog.prior_agatston,
                "prior_date": prog.prior_date.isoformat(),
                "absolute_change": round(prog.absolute_change, 2),
                "annualised_change_per_year": None
                if prog.annualised_change_per_year is None
                else round(prog.annualised_change_per_year, 2),
                "years": round(prog.years, 2),
                "hokanson_significant": prog.hokanson_significant,
                "sevrukov_bound": round(prog.sevrukov_bound, 2),
                "beyond_repeatability": prog.beyond_repeatability,
                "warnings": list(prog.warnings),
            },
            "appropriateness": [
                {"code": f.code.value, "severity": f.severity.value, "message": f.message}
                for f in self.appropriateness
            ],
            "risk_category": self.risk_category.value,
            "clinician_guidance": [
                {"topic": g.topic.value, "text": g.text, "source": g.source}
                for g in self.clinician_guidance
            ],
            "patient_summary": self.patient_summary,
        }

    def render_text(self) -> str:
        """The interpretation for a terminal: the clinician's view, then the patient's summary."""
        drs = self.cac_drs
        pct = self.mesa_percentile
        age = self.arterial_age
        risk = self.chd_risk_10y
        lines = [
            f"Agatston score:      {format_score(self.agatston)} ({self.agatston:.1f})",
            f"CAC-DRS:             {drs.label} - risk {self.risk_category.text}",
            "MESA percentile:     "
            + (f"{pct.value} ({pct.reason})" if pct.applicable else f"n/a - {pct.reason}"),
            f"Arterial age:        {age.text}",
        ]
        if risk.applicable:
            lines.append(
                f"10-year CHD risk:    {risk.with_cac_pct:.2f} % with CAC, "
                f"{risk.without_cac_pct:.2f} % without (MESA, McClelland JACC 2015)"
            )
        else:
            lines.append(f"10-year CHD risk:    {risk.reason}")
        prog = self.progression
        if prog is not None:
            rate = (
                ""
                if prog.annualised_change_per_year is None
                else f", {prog.annualised_change_per_year:+.1f} AU/yr"
            )
            lines.append(
                f"Progression:         {prog.absolute_change:+.1f} AU since "
                f"{prog.prior_date.isoformat()}{rate}; square-root rule "
                f"{'significant' if prog.hokanson_significant else 'not significant'}; "
                f"{'beyond' if prog.beyond_repeatability else 'within'} repeatability "
                f"(+/- {prog.sevrukov_bound:.1f} AU)"
            )
            lines.extend(f"  ! {w}" for w in prog.warnings)
        lines.append("")
        lines.append("Appropriateness:")
        if self.appropriateness:
            lines.extend(f"  [{f.severity.value}] {f.message}" for f in self.appropriateness)
        else:
            lines.append("  nothing speaks against the test for this patient")
        lines.append("")
        lines.append("For the referring clinician (decision support):")
        lines.extend(f"  - {g.text} [{g.source}]" for g in self.clinician_guidance)
        lines.append("")
        lines.append("Caveats:")
        lines.extend(f"  - {c}" for c in age.caveats)
        lines.append("")
        lines.append("For the patient:")
        lines.append("")
        lines.append(self.patient_summary.rstrip())
        return "\n".join(lines) + "\n"


def interpret(
    agatston: float,
    context: PatientContext,
    *,
    by_artery: Mapping[Artery, float] | None = None,
    scan_date: datetime.date | None = None,
    scoring_profile: str | None = None,
    locale: str = "en",
) -> Interpretation:
    """Interpret a total Agatston score for a patient.

    Parameters
    ----------
    agatston
        Total Agatston score (>= 0).
    context
        What is known about the patient; unknown values are reported, never guessed.
    by_artery
        Agatston score per artery, for the CAC-DRS vessel modifier N.
    scan_date
        Date of this scan; needed to compare with ``context.prior_scores`` (the latest one
        before this date is used). Without it no progression is computed.
    scoring_profile
        How this scan was scored, compared with the prior score's profile.
    locale
        Language of the patient's summary.

    Returns
    -------
    Interpretation

    Raises
    ------
    InvalidInputError
        If a score is negative or not finite, an artery unknown, or a prior dated after the scan.
    UnsupportedLocaleError
        If the patient's summary has no templates for ``locale``.
    """
    score = check_agatston(agatston)
    drs = cac_drs(score, by_artery)
    percentile = mesa_percentile(score, context.age_years, context.sex, context.race)
    prior = None if scan_date is None else context.latest_prior(before=scan_date)
    change = (
        None
        if prior is None or scan_date is None
        else progression(score, scan_date, prior, profile_now=scoring_profile)
    )
    return Interpretation(
        agatston=score,
        cac_drs=drs,
        mesa_percentile=percentile,
        arterial_age=arterial_age(score, diabetes=context.diabetes),
        chd_risk_10y=chd_risk_10y(context, score),
        progression=change,
        appropriateness=appropriateness(context),
        risk_category=drs.risk_category,
        clinician_guidance=clinician_guidance(
            score, context, percentile=percentile, progression=change
        ),
        patient_summary=patient_summary(score, context, progression=change, locale=locale),
    )
