"""The service's ``CapabilityStatement`` (``GET /fhir/metadata``): exactly what it supports.

FHIR R4 capabilitystatement.html; security per SMART App Launch (``SMART-on-FHIR`` service code
from http://terminology.hl7.org/CodeSystem/restful-security-service).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from fhir_service.mapping import FHIR_JSON, FHIR_VERSION

#: Search parameters of ``GET /fhir/Task`` (FHIR R4 Task search parameters) and paging.
TASK_SEARCH_PARAMETERS: tuple[tuple[str, str, str], ...] = (
    ("focus", "reference", "ServiceRequest/<id>, or focus:identifier=<system>|<value>"),
    ("status", "token", "Task.status; several values separated by commas"),
    ("patient", "reference", "Patient/<id>, or patient:identifier=<system>|<value>"),
    ("_count", "number", "page size, 1..100 (default 50)"),
    ("_offset", "number", "index of the first match (paging; follow Bundle.link next)"),
)


def build_capability_statement(
    *,
    base_url: str,
    software_version: str,
    order_codes: Sequence[str],
    auth_enabled: bool,
    token_issuer: str | None,
    released: datetime,
) -> CapabilityStatement:
    """The CapabilityStatement of this deployment.

    Parameters
    ----------
    base_url
        Public FHIR base URL (``.../fhir``).
    order_codes
        Accepted ``ServiceRequest.code`` codings as ``system|code``.
    auth_enabled
        False only when ``CAC_AUTH_DISABLED=1``; then the statement says so.
    token_issuer
        The accepted token issuer, named in the security description.
    """
    if auth_enabled:
        security = {
            "cors": False,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "description": (
                "OAuth2 bearer JWT (SMART Backend Services) from the issuer "
                f"{token_issuer}, signed RS256, RS384 or ES384 and checked against its JWKS"
                " (iss, aud, exp, nbf). Scopes: system/ServiceRequest.c (or .write) to place"
                " orders and post notifications; system/Task.r (or .read) to read a Task;"
                " system/Task.s (or .read) to search Tasks. 401 with WWW-Authenticate when the"
                " token is missing or invalid, 403 when a scope is missing."
            ),
        }
    else:
        security = {
            "cors": False,
            "description": "AUTHENTICATION DISABLED (CAC_AUTH_DISABLED=1): local trials only.",
        }
    codes = ", ".join(order_codes)
    data = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": released.isoformat(),
        "kind": "instance",
        "software": {"name": "cac-fhir", "version": software_version},
        "implementation": {
            "description": "Coronary artery calcium (CAC) scoring service",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Place a CT calcium-score order with POST ServiceRequest (or POST a"
                    " transaction Bundle carrying the ServiceRequest with its Patient,"
                    " ImagingStudy and Endpoint, or POST an id-only Subscriptions-backport"
                    " notification Bundle to the base URL). Follow it with GET Task/<id> (the"
                    " Location of the 201 answer). Accepted order codes: "
                    f"{codes}. Endpoint addresses must lie under an allow-listed DICOMweb base."
                ),
                "security": security,
                "resource": [
                    {
                        "type": "ServiceRequest",
                        "documentation": (
                            "create only: answers 201 with the Task that tracks the order;"
                            " the same identifier and version again answers 200 with the same"
                            " Task; status revoked cancels it."
                        ),
                        "interaction": [{"code": "create"}],
                        "conditionalCreate": False,
                        "supportedProfile": [],
                    },
                    {
                        "type": "Task",
                        "documentation": "one Task per order; status and businessStatus follow it",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "versioning": "versioned",
                        "readHistory": False,
                        "searchParam": [
                            {"name": name, "type": kind, "documentation": doc}
                            for name, kind, doc in TASK_SEARCH_PARAMETERS
                        ],
                    },
                ],
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": (
                            "a transaction Bundle with one ServiceRequest and its context, or a"
                            " history Bundle that is an id-only subscription notification"
                        ),
                    }
                ],
            }
        ],
    }
    return CapabilityStatement.model_validate(data)
