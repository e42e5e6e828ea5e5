"""Subscriptions-backport notifications (R4 Parameters and R4B SubscriptionStatus)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_service.errors import BusinessRuleError, InvalidResourceError, NotSupportedError
from fhir_service.mapping.notification import NotificationType, parse_notification


def bundle(status: dict[str, Any], *full_urls: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"resource": status}, *({"fullUrl": u} for u in full_urls)],
    }


def parameters(kind: str, *focus: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "type", "valueCode": kind}]
    params += [
        {
            "name": "notification-event",
            "part": [{"name": "focus", "valueReference": {"reference": f}}],
        }
        for f in focus
    ]
    return {"resourceType": "Parameters", "parameter": params}


class TestParseNotification:
    def test_r4_parameters_focus_and_full_urls(self) -> None:
        result = parse_notification(
            bundle(
                parameters("event-notification", "ServiceRequest/1"),
                "https://ehr.example.org/fhir/ServiceRequest/2/_history/3",
                "https://ehr.example.org/fhir/Patient/9",
            )
        )
        assert result.type is NotificationType.EVENT_NOTIFICATION
        assert result.service_request_references == (
            "ServiceRequest/1",
            "https://ehr.example.org/fhir/ServiceRequest/2/_history/3",
        )

    def test_r4b_subscription_status(self) -> None:
        status = {
            "resourceType": "SubscriptionStatus",
            "status": "active",
            "type": "event-notification",
            "subscription": {"reference": "Subscription/s"},
            "notificationEvent": [{"eventNumber": "1", "focus": {"reference": "ServiceRequest/5"}}],
        }
        result = parse_notification(bundle(status))
        assert result.subscription == "Subscription/s"
        assert result.service_request_references == ("ServiceRequest/5",)

    def test_handshake_needs_no_focus(self) -> None:
        assert (
            parse_notification(bundle(parameters("handshake"))).type is NotificationType.HANDSHAKE
        )

    def test_event_without_service_request_is_refused(self) -> None:
        with pytest.raises(BusinessRuleError):
            parse_notification(bundle(parameters("event-notification", "Patient/1")))

    def test_unknown_type(self) -> None:
        with pytest.raises(NotSupportedError):
            parse_notification(bundle(parameters("fire-alarm")))

    def test_not_a_history_bundle(self) -> None:
        notification = bundle(parameters("heartbeat"))
        notification["type"] = "collection"
        with pytest.raises(InvalidResourceError):
            parse_notification(notification)

    def test_first_entry_must_be_the_status(self) -> None:
        with pytest.raises(InvalidResourceError):
            parse_notification(bundle({"resourceType": "Patient"}))
