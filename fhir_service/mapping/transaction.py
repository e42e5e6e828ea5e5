"""Parse a ``transaction`` Bundle carrying one order with its Patient, ImagingStudy and Endpoint.

EHRs often push the order with its context in one Bundle (reference/fhir-dicom.md section 3).
Entries reference each other by ``fullUrl`` (``urn:uuid:...``) or ``Type/id``; the ServiceRequest
is checked by :func:`~fhir_service.mapping.service_request.parse_service_request` with the other
entries as its context.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from fhir_service.errors import BusinessRuleError, InvalidResourceError, NotSupportedError
from fhir_service.mapping.service_request import (
    InlineResource,
    OrderIntake,
    check_resource_type,
    parse_service_request,
    validate_model,
)


@dataclass(frozen=True, slots=True)
class TransactionIntake:
    """The order found in a transaction Bundle and where its entry is."""

    order: OrderIntake
    order_entry_index: int
    entry_count: int


def bundle_context(entries: Sequence[Mapping[str, Any]]) -> dict[str, InlineResource]:
    """Index Bundle entries by ``fullUrl`` and by ``Type/id`` for reference resolution."""
    context: dict[str, InlineResource] = {}
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, Mapping):
            continue
        inline = InlineResource(resource, f"Bundle.entry[{index}].resource")
        if entry.get("fullUrl"):
            context[str(entry["fullUrl"])] = inline
        if resource.get("id") and resource.get("resourceType"):
            context[f"{resource['resourceType']}/{resource['id']}"] = inline
    return context


def parse_transaction_bundle(
    data: object,
    *,
    accepted_codes: Collection[tuple[str, str]],
    pacs_allowlist: Sequence[str],
) -> TransactionIntake:
    """Check a transaction Bundle and extract its one order.

    Raises
    ------
    InvalidResourceError
        Not a Bundle, a schema violation, or an entry without a resource or request (HTTP 400).
    NotSupportedError
        A Bundle type other than transaction, or more than one ServiceRequest (HTTP 422).
    BusinessRuleError
        No ServiceRequest, or the order breaks a rule (see ``parse_service_request``).
    """
    bundle = check_resource_type(data, "Bundle", "Bundle")
    validate_model(Bundle, bundle, "Bundle")
    if bundle.get("type") != "transaction":
        raise NotSupportedError(
            f"Bundle.type must be 'transaction' for an order, got {bundle.get('type')!r}",
            "Bundle.type",
        )
    entries: Sequence[Mapping[str, Any]] = bundle.get("entry") or ()
    order_indexes: list[int] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, Mapping):
            raise InvalidResourceError(
                "every transaction entry needs a resource", f"Bundle.entry[{index}].resource"
            )
        request = entry.get("request") or {}
        if request.get("method") not in ("POST", "PUT"):
            raise InvalidResourceError(
                "every transaction entry needs request.method POST or PUT",
                f"Bundle.entry[{index}].request.method",
            )
        if resource.get("resourceType") == "ServiceRequest":
            order_indexes.append(index)
    if not order_indexes:
        raise BusinessRuleError(
            "the transaction Bundle carries no ServiceRequest (the order)", "Bundle.entry"
        )
    if len(order_indexes) > 1:
        raise NotSupportedError(
            "one order (ServiceRequest) per transaction Bundle; post the others separately",
            f"Bundle.entry[{order_indexes[1]}].resource",
        )
    index = order_indexes[0]
    order = parse_service_request(
        entries[index]["resource"],
        accepted_codes=accepted_codes,
        pacs_allowlist=pacs_allowlist,
        context=bundle_context(entries),
        location=f"Bundle.entry[{index}].resource",
    )
    return TransactionIntake(order=order, order_entry_index=index, entry_count=len(entries))
