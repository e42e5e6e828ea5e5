"""Parse a Subscriptions R5 Backport IG rest-hook notification (``id-only`` payload).

The notification is a ``history`` Bundle whose first entry is the subscription status (a
``Parameters`` resource with the backport-subscription-status-r4 profile on R4, a
``SubscriptionStatus`` on R4B) naming the event focus; with ``id-only`` the following entries
carry only ``fullUrl``. A notification is a hint: the service then reads the ServiceRequest from
the EHR itself (reference/fhir-dicom.md section 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from fhir_service.errors import BusinessRuleError, InvalidResourceError, NotSupportedError
from fhir_service.mapping.service_request import check_resource_type, validate_model


class NotificationType(StrEnum):
    """Backport ``notification-type`` codes (subscription-notification-type)."""

    HANDSHAKE = "handshake"
    HEARTBEAT = "heartbeat"
    EVENT_NOTIFICATION = "event-notification"
    QUERY_STATUS = "query-status"
    QUERY_EVENT = "query-event"


@dataclass(frozen=True, slots=True)
class NotificationIntake:
    """What a notification asks for: its type and the ServiceRequests to read."""

    type: NotificationType
    subscription: str | None
    service_request_references: tuple[str, ...]


def _is_service_request(reference: str) -> bool:
    parts = reference.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return len(parts) >= 2 and parts[-2] == "ServiceRequest" and bool(parts[-1])


def _status_parameters(status: Mapping[str, Any]) -> tuple[str | None, str | None, list[str]]:
    kind: str | None = None
    subscription: str | None = None
    focus: list[str] = []
    for param in status.get("parameter") or ():
        name = param.get("name")
        if name == "type":
            kind = param.get("valueCode")
        elif name == "subscription":
            subscription = (param.get("valueReference") or {}).get("reference")
        elif name == "notification-event":
            for part in param.get("part") or ():
                if part.get("name") == "focus":
                    ref = (part.get("valueReference") or {}).get("reference")
                    if ref:
                        focus.append(str(ref))
    return kind, subscription, focus


def _status_resource(status: Mapping[str, Any]) -> tuple[str | None, str | None, list[str]]:
    kind = status.get("type")
    subscription = (status.get("subscription") or {}).get("reference")
    focus = [
        str(ev["focus"]["reference"])
        for ev in status.get("notificationEvent") or ()
        if (ev.get("focus") or {}).get("reference")
    ]
    return kind, subscription, focus


def parse_notification(data: object) -> NotificationIntake:
    """Check a rest-hook notification Bundle and list the ServiceRequests it points at.

    Raises
    ------
    InvalidResourceError
        Not a history Bundle with a subscription status first (HTTP 400).
    NotSupportedError
        An unknown notification type (HTTP 422).
    BusinessRuleError
        An event notification that names no ServiceRequest (HTTP 422).
    """
    bundle = check_resource_type(data, "Bundle", "Bundle")
    validate_model(Bundle, bundle, "Bundle")
    entries: Sequence[Mapping[str, Any]] = bundle.get("entry") or ()
    status = entries[0].get("resource") if entries else None
    if bundle.get("type") != "history" or not isinstance(status, Mapping):
        raise InvalidResourceError(
            "a subscription notification is a history Bundle whose first entry is the"
            " subscription status",
            "Bundle.entry[0].resource",
        )
    if status.get("resourceType") == "Parameters":
        kind, subscription, focus = _status_parameters(status)
    elif status.get("resourceType") == "SubscriptionStatus":
        kind, subscription, focus = _status_resource(status)
    else:
        raise InvalidResourceError(
            "the first entry of a notification must be the subscription status (Parameters or"
            " SubscriptionStatus)",
            "Bundle.entry[0].resource.resourceType",
        )
    try:
        notification_type = NotificationType(str(kind))
    except ValueError:
        raise NotSupportedError(
            f"unknown subscription notification type {kind!r}",
            "Bundle.entry[0].resource.parameter.where(name='type').valueCode",
        ) from None
    focus.extend(str(e["fullUrl"]) for e in entries[1:] if e.get("fullUrl"))
    references = tuple(dict.fromkeys(r for r in focus if _is_service_request(r)))
    if notification_type is NotificationType.EVENT_NOTIFICATION and not references:
        raise BusinessRuleError(
            "the event notification names no ServiceRequest (notification-event focus or entry"
            " fullUrl); this service subscribes to calcium-score orders only",
            "Bundle.entry[0].resource",
        )
    return NotificationIntake(notification_type, subscription, references)
