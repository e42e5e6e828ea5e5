"""Build the ``Provenance`` of posted results, pure: author = the algorithm Device, on behalf of
the configured Organization (FHIR R4 Provenance; ``fhir-dicom.md`` section 3)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from fhir.resources.R4B.provenance import Provenance

PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def build_provenance(
    targets: Sequence[str],
    device: str,
    recorded: datetime.datetime,
    *,
    organization: str | None = None,
    imaging_study: str | None = None,
) -> Provenance:
    """Provenance of ``targets`` (references or ``urn:uuid:`` full URLs).

    Parameters
    ----------
    targets
        Every resource the results Bundle creates (report and observations).
    device
        Reference to the algorithm Device (the author).
    recorded
        When the results were made.
    organization
        ``Organization/...`` the algorithm acts for (``CAC_ORGANIZATION_REFERENCE``), if any.
    imaging_study
        The ImagingStudy the results were derived from (an entity with role ``source``).
    """
    agent: dict[str, object] = {
        "type": {"coding": [{"system": PROVENANCE_PARTICIPANT, "code": "author"}]},
        "who": {"reference": device},
    }
    if organization:
        agent["onBehalfOf"] = {"reference": organization}
    resource: dict[str, object] = {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets],
        "recorded": recorded.isoformat(),
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "CREATE"}]},
        "agent": [agent],
    }
    if imaging_study:
        resource["entity"] = [{"role": "source", "what": {"reference": imaging_study}}]
    return Provenance.model_validate(resource)
