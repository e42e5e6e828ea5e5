"""Pure FHIR <-> domain mapping with the ``fhir.resources`` R4B models.

R4 payloads are parsed with the R4B models, chosen here and only here (reference/fhir-dicom.md
section 1: there is no plain R4 package, and the R5 models silently drop renamed fields). No Flask,
Celery, HTTP client or database import is allowed in this package (import-linter contract).

Order side (this package's owner: the FHIR service): :mod:`.service_request`, :mod:`.transaction`,
:mod:`.notification`, :mod:`.task`, :mod:`.operation_outcome`, :mod:`.capability_statement`,
:mod:`.audit_event`. Result side (the pipeline): observation, diagnostic_report, device,
provenance, bundle.
"""

from __future__ import annotations

#: The one place the FHIR release is chosen: R4B models for R4 (4.0.1) payloads.
FHIR_MODELS_PACKAGE = "fhir.resources.R4B"
#: FHIR version announced in the CapabilityStatement (HL7 FHIR R4).
FHIR_VERSION = "4.0.1"
#: Media type of every request and response body (HL7 FHIR R4 http.html#mime-type).
FHIR_JSON = "application/fhir+json"
