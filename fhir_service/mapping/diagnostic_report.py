"""Build the calcium-score ``DiagnosticReport``, pure.

``code`` LOINC 79087-3 (CT heart and coronary arteries for calcium scoring WO contrast); category
LOINC LP29684-5 Radiology or LP29708-2 Cardiology (US Core DiagnosticReport for Report and Note;
some EHRs accept only Cardiology); ``conclusion`` = the category and the clinician guidance;
``conclusionCode`` = the risk category in the project's CodeSystem (and SNOMED CT 445512009
calcification of coronary artery when calcium was found; that code is marked unverified in
``fhir-dicom.md`` section 2); ``presentedForm`` = any number of :class:`PresentedForm` attachments
(clinician report HTML, patient summary, later a PDF).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from fhir_service.mapping.observation import (
    AI_SECURITY_CODE,
    AI_SECURITY_SYSTEM,
    CAC_CODE_SYSTEM,
    LOINC,
    RESULT_IDENTIFIER_SYSTEM,
    SNOMED,
    ResultContext,
)

#: LOINC 79087-3 CT Heart and Coronary arteries for calcium scoring WO contrast.
REPORT_CODE = (LOINC, "79087-3", "CT Heart and Coronary arteries for calcium scoring WO contrast")
#: SNOMED CT 445512009 calcification of coronary artery (unverified, fhir-dicom.md section 2).
CORONARY_CALCIFICATION = (SNOMED, "445512009", "Calcification of coronary artery")
RISK_CATEGORY_SYSTEM = f"{CAC_CODE_SYSTEM}-risk-category"


class ReportCategoryCode(StrEnum):
    """US Core DiagnosticReport category (LOINC part codes); values are the codes."""

    RADIOLOGY = "LP29684-5"
    CARDIOLOGY = "LP29708-2"

    @property
    def display(self) -> str:
        return "Radiology" if self is ReportCategoryCode.RADIOLOGY else "Cardiology"


@dataclass(frozen=True, slots=True)
class PresentedForm:
    """One human-readable rendering of the report (``DiagnosticReport.presentedForm``)."""

    content_type: str
    data: bytes
    title: str
    language: str = "en"

    def as_attachment(self) -> dict[str, Any]:
        return {
            "contentType": self.content_type,
            "language": self.language,
            "data": base64.b64encode(self.data).decode("ascii"),
            "title": self.title,
            "size": len(self.data),
        }


def build_diagnostic_report(
    ctx: ResultContext,
    *,
    results: Sequence[str],
    category: ReportCategoryCode,
    conclusion: str,
    risk_category_code: str,
    risk_category_display: str,
    calcium_found: bool,
    presented_forms: Sequence[PresentedForm] = (),
) -> DiagnosticReport:
    """The DiagnosticReport of one order.

    Parameters
    ----------
    ctx
        The order, patient, study, times, identifier and status.
    results
        References (or ``urn:uuid:``) of the result Observations.
    category
        Radiology or Cardiology (``CAC_REPORT_CATEGORY``).
    conclusion
        Category and clinician guidance, plain text.
    risk_category_code, risk_category_display
        The risk category (e.g. ``moderate``), coded in :data:`RISK_CATEGORY_SYSTEM`.
    calcium_found
        Adds SNOMED CT 445512009 to ``conclusionCode`` when true.
    presented_forms
        Renderings, in order (clinician HTML first).
    """
    conclusion_codes: list[dict[str, Any]] = [
        {
            "coding": [
                {
                    "system": RISK_CATEGORY_SYSTEM,
                    "code": risk_category_code,
                    "display": risk_category_display,
                }
            ],
            "text": risk_category_display,
        }
    ]
    if calcium_found:
        system, code, display = CORONARY_CALCIFICATION
        conclusion_codes.append({"coding": [{"system": system, "code": code, "display": display}]})
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "meta": {"security": [{"system": AI_SECURITY_SYSTEM, "code": AI_SECURITY_CODE}]},
        "identifier": [{"system": RESULT_IDENTIFIER_SYSTEM, "value": f"{ctx.identifier}/report"}],
        "basedOn": [{"reference": ctx.service_request}],
        "status": ctx.status,
        "category": [
            {"coding": [{"system": LOINC, "code": category.value, "display": category.display}]}
        ],
        "code": {
            "coding": [
                {"system": REPORT_CODE[0], "code": REPORT_CODE[1], "display": REPORT_CODE[2]}
            ],
            "text": "Coronary artery calcium score",
        },
        "subject": {"reference": ctx.subject},
        "effectiveDateTime": ctx.effective.isoformat(),
        "issued": ctx.issued.isoformat(),
        "result": [{"reference": r} for r in results],
        "conclusion": conclusion,
        "conclusionCode": conclusion_codes,
    }
    if ctx.imaging_study:
        resource["imagingStudy"] = [{"reference": ctx.imaging_study}]
    if presented_forms:
        resource["presentedForm"] = [form.as_attachment() for form in presented_forms]
    return DiagnosticReport.model_validate(resource)
