"""Assemble the results as ONE transaction ``Bundle`` and read the EHR's answer, pure.

Every entry has a ``urn:uuid:`` ``fullUrl`` and references between entries use exactly those
(the server rewrites them to the ids it assigns). Each entry is a conditional create
(``request.ifNoneExist = identifier=system|value``) on a stable identifier (ServiceRequest +
series UID + algorithm version, see :func:`~fhir_service.mapping.observation.result_identifier`),
so a re-post after a lost answer creates nothing new. The Provenance has no identifier in R4; it is
posted only with a report that is new (the pipeline checks for an existing report first).

For EHRs that refuse transactions the pipeline posts the same entries one by one, in order, with
:func:`resolve_references` replacing each ``urn:uuid`` by the id its target received.

References
----------
HL7 FHIR R4 http.html#transaction, bundle.html#references (urn:uuid resolution),
http.html#ccreate (conditional create).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource


@dataclass(frozen=True, slots=True)
class BundleEntryPlan:
    """One resource to create: its key, ``urn:uuid`` full URL and conditional-create query."""

    key: str
    full_url: str
    resource: Resource
    if_none_exist: str | None


@dataclass(frozen=True, slots=True)
class CreatedResource:
    """Where the server put one entry: ``(resource type, id)`` and whether it was new."""

    resource_type: str
    resource_id: str
    created: bool

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


def new_full_url() -> str:
    """A fresh ``urn:uuid:`` full URL."""
    return f"urn:uuid:{uuid.uuid4()}"


def identifier_query(resource: Resource) -> str | None:
    """``identifier=system|value`` of the resource's first identifier, or ``None``."""
    identifiers = getattr(resource, "identifier", None) or []
    if not identifiers:
        return None
    first = identifiers[0]
    return f"identifier={first.system}|{first.value}"


def build_transaction(entries: Sequence[BundleEntryPlan]) -> Bundle:
    """The transaction Bundle (``POST`` each entry, conditional where it has an identifier)."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        request: dict[str, Any] = {"method": "POST", "url": entry.resource.get_resource_type()}
        if entry.if_none_exist:
            request["ifNoneExist"] = entry.if_none_exist
        out.append(
            {
                "fullUrl": entry.full_url,
                "resource": entry.resource.model_dump(mode="json", exclude_none=True),
                "request": request,
            }
        )
    return Bundle.model_validate({"resourceType": "Bundle", "type": "transaction", "entry": out})


def parse_status(status: str) -> int:
    """The HTTP code of ``Bundle.entry.response.status`` (``"201"``, ``"201 Created"``...).

    Raises
    ------
    ValueError
        When the status does not start with a 3-digit code.
    """
    head = status.strip().split(" ", 1)[0]
    if len(head) != 3 or not head.isdigit():
        raise ValueError(f"transaction response status {status!r} is not an HTTP status")
    return int(head)


def parse_location(location: str) -> tuple[str, str]:
    """``(type, id)`` from a response location: relative (``Observation/1``), absolute
    (``https://ehr/fhir/Observation/1``), with or without ``/_history/v``.

    Raises
    ------
    ValueError
        When no ``Type/id`` pair can be found.
    """
    path = location.split("?", 1)[0].rstrip("/")
    parts = [p for p in path.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        raise ValueError(f"cannot read a Type/id from location {location!r}")
    return parts[-2], parts[-1]


def parse_transaction_response(
    entries: Sequence[BundleEntryPlan], response: Bundle
) -> dict[str, CreatedResource]:
    """Map each planned entry's key to where the server put it.

    Entries of a transaction-response are in the request's order (FHIR R4 http.html#transaction).
    ``201`` means created; ``200`` means a conditional create found an existing resource.

    Raises
    ------
    ValueError
        When the response has another number of entries, a failed entry, or no location.
    """
    answers = response.entry or []
    if len(answers) != len(entries):
        raise ValueError(
            f"transaction response has {len(answers)} entries for {len(entries)} requests"
        )
    out: dict[str, CreatedResource] = {}
    for planned, answer in zip(entries, answers, strict=True):
        if answer.response is None:
            raise ValueError(f"transaction response entry for {planned.key} has no response")
        status = parse_status(str(answer.response.status))
        if status >= 300:
            raise ValueError(f"transaction entry {planned.key} answered {answer.response.status}")
        location = answer.response.location
        if location:
            rtype, rid = parse_location(str(location))
        elif answer.resource is not None and answer.resource.id:
            rtype, rid = answer.resource.get_resource_type(), str(answer.resource.id)
        else:
            raise ValueError(f"transaction entry {planned.key} has no location")
        out[planned.key] = CreatedResource(rtype, rid, created=status == 201)
    return out


def resolve_references(payload: Any, resolved: Mapping[str, str]) -> Any:
    """Replace every ``reference`` equal to a key of ``resolved`` (a ``urn:uuid``) by its value,
    in JSON ``payload`` (returns a new structure)."""
    if isinstance(payload, dict):
        out = {k: resolve_references(v, resolved) for k, v in payload.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in resolved:
            out["reference"] = resolved[ref]
        return out
    if isinstance(payload, list):
        return [resolve_references(v, resolved) for v in payload]
    return payload
