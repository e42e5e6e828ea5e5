"""Build ``OperationOutcome`` resources for every refusal and error (FHIR R4 operationoutcome.html).

Issue codes come from http://hl7.org/fhir/R4/valueset-issue-type.html; the location is the
FHIRPath-style path of the offending element (``OperationOutcome.issue.expression``; R4 also keeps
the deprecated ``location``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fhir.resources.R4B.operationoutcome import OperationOutcome


def build_operation_outcome(
    issues: Sequence[tuple[str, str | None]],
    code: str,
    *,
    severity: str = "error",
) -> OperationOutcome:
    """One ``OperationOutcome`` with an issue per ``(message, location)``.

    Parameters
    ----------
    issues
        Human-readable message and FHIRPath location (or None) of each problem.
    code
        FHIR issue type code (``invalid``, ``structure``, ``not-found``, ...).
    severity
        ``fatal`` | ``error`` | ``warning`` | ``information``.
    """
    built = []
    for message, location in issues or (("request refused", None),):
        issue: dict[str, object] = {"severity": severity, "code": code, "diagnostics": message}
        if location:
            issue["expression"] = [location]
        built.append(issue)
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": built})
