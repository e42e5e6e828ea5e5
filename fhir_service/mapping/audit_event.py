"""Build FHIR ``AuditEvent``s following IHE Basic Audit Log Patterns (BALP).

Patterns: RESTful create (action ``C``), read (``R``) and query/search (``E``) of patient data, and
refusals (outcome ``4`` minor failure, ``8`` serious failure). The client is the requesting agent
(``who`` its token subject / client id), this service the observer and destination; the patient is
an entity with role ``1`` (patient), the touched resource an entity with role ``4`` (domain
resource), a search its query (base64 in ``entity.query``). IHE ITI BALP (2022),
https://profiles.ihe.net/ITI/BALP/.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent

from fhir_service.mapping.task import reference_json

DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
AUDIT_ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SECURITY_SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"


class AuditAction(StrEnum):
    """``AuditEvent.action`` (FHIR R4 audit-event-action)."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class AuditOutcome(StrEnum):
    """``AuditEvent.outcome`` (FHIR R4 audit-event-outcome)."""

    SUCCESS = "0"
    MINOR_FAILURE = "4"
    SERIOUS_FAILURE = "8"
    MAJOR_FAILURE = "12"


#: restful-interaction subtype per action (BALP RESTful patterns).
_SUBTYPE = {
    AuditAction.CREATE: "create",
    AuditAction.READ: "read",
    AuditAction.UPDATE: "update",
    AuditAction.DELETE: "delete",
    AuditAction.EXECUTE: "search-type",
}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened, who asked and what it touched.

    Attributes
    ----------
    client
        Token ``sub``/``client_id`` of the caller, or None when authentication is off or failed.
    client_address
        Network address of the caller.
    resources
        Literal references of the resources touched (``Task/..``, ``ServiceRequest/..``).
    patients
        Stored patient references (``Patient/..`` or ``identifier:system|value``).
    query
        The search query string, for searches.
    outcome_description
        Why a request was refused (never patient data).
    """

    action: AuditAction
    outcome: AuditOutcome
    recorded: datetime
    observer: str
    client: str | None = None
    client_address: str | None = None
    resources: Sequence[str] = field(default_factory=tuple)
    patients: Sequence[str] = field(default_factory=tuple)
    query: str | None = None
    outcome_description: str | None = None
    purpose: str | None = None


def build_audit_event(record: AuditRecord, event_id: str) -> AuditEvent:
    """Build the BALP ``AuditEvent`` for ``record``."""
    return AuditEvent.model_validate(_audit_data(record, event_id))


def audit_event_json(record: AuditRecord, event_id: str) -> str:
    """FHIR JSON of :func:`build_audit_event`: validated with the R4B model, written as built."""
    data = _audit_data(record, event_id)
    AuditEvent.model_validate(data)
    return json.dumps(data, separators=(",", ":"))


def _audit_data(record: AuditRecord, event_id: str) -> dict[str, Any]:
    client_agent: dict[str, Any] = {
        "type": {"coding": [{"system": DCM_SYSTEM, "code": "110153", "display": "Source Role ID"}]},
        "who": {"display": record.client or "anonymous"},
        "requestor": True,
    }
    if record.client_address:
        client_agent["network"] = {"address": record.client_address, "type": "2"}
    server_agent: dict[str, Any] = {
        "type": {
            "coding": [{"system": DCM_SYSTEM, "code": "110152", "display": "Destination Role ID"}]
        },
        "who": {"display": record.observer},
        "requestor": False,
    }
    entities: list[dict[str, Any]] = []
    for patient in record.patients:
        entities.append(
            {
                "what": reference_json(patient),
                "type": {"system": AUDIT_ENTITY_TYPE_SYSTEM, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient"},
            }
        )
    for resource in record.resources:
        entities.append(
            {
                "what": {"reference": resource},
                "type": {
                    "system": AUDIT_ENTITY_TYPE_SYSTEM,
                    "code": "2",
                    "display": "System Object",
                },
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "4", "display": "Domain Resource"},
            }
        )
    if record.query is not None:
        entities.append(
            {
                "type": {
                    "system": AUDIT_ENTITY_TYPE_SYSTEM,
                    "code": "2",
                    "display": "System Object",
                },
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "24", "display": "Query"},
                "query": base64.b64encode(record.query.encode()).decode(),
            }
        )
    data: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": AUDIT_EVENT_TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": RESTFUL_INTERACTION_SYSTEM, "code": _SUBTYPE[record.action]}],
        "action": record.action.value,
        "recorded": record.recorded.isoformat(),
        "outcome": record.outcome.value,
        "agent": [client_agent, server_agent],
        "source": {
            "observer": {"display": record.observer},
            "type": [
                {
                    "system": SECURITY_SOURCE_TYPE_SYSTEM,
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if record.outcome_description:
        data["outcomeDesc"] = record.outcome_description
    if entities:
        data["entity"] = entities
    return data
