"""Parse an incoming calcium-score order (FHIR ``ServiceRequest``) into an :class:`OrderIntake`.

Structure and types are checked with the R4B models; the rules of this service (status, intent,
code, subject, a way to find the images, endpoint allow-list) are checked here, because
``fhir.resources`` validates no bindings or invariants (reference/fhir-dicom.md section 1). Every
refusal is a :class:`~fhir_service.errors.RequestError` with the FHIRPath-style location of the
offending element.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from fhir_service.errors import (
    BusinessRuleError,
    InvalidResourceError,
    NotSupportedError,
    RequestError,
)

#: ``ImagingStudy.identifier.system`` of a Study Instance UID (FHIR R4 imagingstudy.html).
DICOM_UID_SYSTEM = "urn:dicom:uid"
#: HL7 v2 table 0203 identifier types; ``ACSN`` is the accession number, ``PLAC`` the placer id.
V2_0203_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
#: ``Endpoint.connectionType`` of a DICOMweb WADO-RS base URL (FHIR endpoint-connection-type).
WADO_RS_CONNECTION = "dicom-wado-rs"

#: Element paths are reported with this many schema errors at most.
MAX_REPORTED_ERRORS = 10


class RequestStatus(StrEnum):
    """``ServiceRequest.status`` values this service acts on (FHIR R4 request-status)."""

    ACTIVE = "active"
    REVOKED = "revoked"
    ENTERED_IN_ERROR = "entered-in-error"


#: Intents that are orders (FHIR R4 request-intent: original-order is a child of order).
ORDER_INTENTS = frozenset({"order", "original-order"})


@dataclass(frozen=True, slots=True)
class OrderIntake:
    """An order that passed every rule, ready to be stored.

    Attributes
    ----------
    order_key
        Identity of the placer's order: ``identifier:<system>|<value>`` (placer order number) or
        ``id:<ServiceRequest.id>``. The same key posted twice is the same order.
    version_key
        ``versionId:<meta.versionId>``, else ``sha256:<digest of the resource>``.
    request_status
        ``ServiceRequest.status``: active, revoked or entered-in-error.
    patient_reference
        ``Patient/<id>`` or ``identifier:<system>|<value>``.
    focus_reference, focus_identifier
        How the Task points at the ServiceRequest (``ServiceRequest/<id>``; placer identifier).
    endpoints_json
        JSON list of the inline DICOMweb ``Endpoint`` resources (all allow-listed), or None.
    """

    order_key: str
    version_key: str
    request_status: RequestStatus
    service_request_json: str
    patient_reference: str
    focus_reference: str | None
    focus_identifier: tuple[str, str] | None
    study_instance_uid: str | None
    accession_number: str | None
    imaging_study_reference: str | None
    patient_json: str | None = None
    imaging_study_json: str | None = None
    endpoints_json: str | None = None
    requester: str | None = None


def pydantic_locations(exc: ValidationError, prefix: str) -> tuple[tuple[str, str | None], ...]:
    """``(message, FHIRPath location)`` pairs for a pydantic error of a FHIR model.

    ``('identifier', 1, 'value')`` under prefix ``ServiceRequest`` becomes
    ``ServiceRequest.identifier[1].value``.
    """
    issues: list[tuple[str, str | None]] = []
    for err in exc.errors()[:MAX_REPORTED_ERRORS]:
        path = prefix
        for part in err.get("loc", ()):
            if isinstance(part, int):
                path += f"[{part}]"
            elif part and not str(part).startswith("function-"):
                path += f".{part}"
        message = str(err.get("msg", "invalid value"))
        issues.append((f"{message} (at {path})", path))
    return tuple(issues)


M = TypeVar("M", bound=FHIRAbstractModel)


def validate_model(model: type[M], data: Mapping[str, Any], location: str) -> M:
    """Validate ``data`` with the R4B ``model``; translate every failure to a located 400.

    Raises
    ------
    InvalidResourceError
        On a schema violation (one issue per element, FHIRPath locations under ``location``).
        ``fhir.resources`` raises plain ``KeyError``/``TypeError`` for some malformed input
        (e.g. an unknown ``resourceType`` in ``contained``); those become one structure issue.
    """
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        issues = pydantic_locations(exc, location)
        if not issues:
            raise InvalidResourceError(f"{location} is not a valid resource", location) from None
        first, *more = issues
        raise InvalidResourceError(first[0], first[1], tuple(more)) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError):
        raise InvalidResourceError(
            f"{location} is not valid FHIR R4 JSON (an element has an unknown resource type or"
            " a value of the wrong shape)",
            location,
        ) from None


def check_resource_type(data: object, expected: str, location: str) -> Mapping[str, Any]:
    """Return ``data`` if it is a JSON object whose ``resourceType`` is ``expected``.

    Raises
    ------
    InvalidResourceError
        Not a JSON object, or another resource type.
    """
    if not isinstance(data, Mapping):
        raise InvalidResourceError(
            f"expected a JSON object ({expected} resource)", location or None
        )
    found = data.get("resourceType")
    if found != expected:
        raise InvalidResourceError(
            f"expected resourceType {expected!r}, got {found!r}",
            # a top-level body of the wrong type has no meaningful "ServiceRequest." prefix
            f"{location}.resourceType" if location and location != expected else "resourceType",
        )
    return data


@dataclass(frozen=True, slots=True)
class InlineResource:
    """A resource that came with the order (transaction entry or contained), with its location."""

    resource: Mapping[str, Any]
    location: str


def _identifier_type_code(identifier: Mapping[str, Any]) -> str | None:
    type_ = identifier.get("type") or {}
    for coding in type_.get("coding") or ():
        if coding.get("system") == V2_0203_SYSTEM and coding.get("code"):
            return str(coding["code"])
    return None


def _study_uid(identifier: Mapping[str, Any]) -> str | None:
    if identifier.get("system") != DICOM_UID_SYSTEM or not identifier.get("value"):
        return None
    return str(identifier["value"]).removeprefix("urn:oid:")


def _placer_identifier(identifiers: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The placer's order number: the PLAC-typed identifier, else the first that is no study id."""
    usable = [
        i
        for i in identifiers
        if i.get("value") and _study_uid(i) is None and _identifier_type_code(i) != "ACSN"
    ]
    for ident in usable:
        if _identifier_type_code(ident) == "PLAC":
            return str(ident.get("system") or ""), str(ident["value"])
    if usable:
        return str(usable[0].get("system") or ""), str(usable[0]["value"])
    return None


def canonical_digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of the resource as canonical JSON (sorted keys, no whitespace), minus ``meta``."""
    body = {k: v for k, v in data.items() if k != "meta"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def endpoint_allowed(address: str, allowlist: Sequence[str]) -> bool:
    """Whether ``address`` lies under one of the allow-listed DICOMweb base URLs.

    Scheme, host and port must match exactly and the path must equal the allowed path or continue
    it after a ``/``. Addresses with credentials, a query or a fragment are never allowed (they
    could smuggle another host past a naive prefix check).
    """
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.username or parts.password or parts.query or parts.fragment:
        return False
    default_port = 443 if parts.scheme == "https" else 80
    path = parts.path.rstrip("/")
    for allowed in allowlist:
        base = urlsplit(allowed)
        if (
            base.scheme == parts.scheme
            and (base.hostname or "").lower() == parts.hostname.lower()
            and (base.port or (443 if base.scheme == "https" else 80)) == (port or default_port)
        ):
            base_path = base.path.rstrip("/")
            if path == base_path or path.startswith(base_path + "/"):
                return True
    return False


class _Resolver:
    """Resolve references inside an order: contained ``#id``, bundle ``fullUrl``s, relative ids."""

    def __init__(
        self,
        contained: Sequence[Mapping[str, Any]],
        location: str,
        context: Mapping[str, InlineResource],
    ) -> None:
        self._context = dict(context)
        for index, resource in enumerate(contained):
            if isinstance(resource, Mapping) and resource.get("id"):
                self._context["#" + str(resource["id"])] = InlineResource(
                    resource, f"{location}.contained[{index}]"
                )

    def resolve(self, reference: str | None) -> InlineResource | None:
        if not reference:
            return None
        return self._context.get(reference)


def _patient_reference(
    sr: Mapping[str, Any], resolver: _Resolver
) -> tuple[str, InlineResource | None]:
    subject = sr.get("subject") or {}
    ref = subject.get("reference")
    if subject.get("type") not in (None, "Patient"):
        raise BusinessRuleError(
            "the subject of a calcium-score order must be a Patient", "ServiceRequest.subject.type"
        )
    inline = resolver.resolve(ref)
    if inline is not None:
        if inline.resource.get("resourceType") != "Patient":
            raise BusinessRuleError(
                "ServiceRequest.subject must reference a Patient",
                "ServiceRequest.subject.reference",
            )
        if inline.resource.get("id") and not str(ref).startswith("#"):
            return f"Patient/{inline.resource['id']}", inline
        for ident in inline.resource.get("identifier") or ():
            if ident.get("value"):
                return f"identifier:{ident.get('system') or ''}|{ident['value']}", inline
        raise BusinessRuleError(
            "the inline Patient needs an id or an identifier so results can be filed",
            f"{inline.location}.identifier",
        )
    if ref:
        parts = str(ref).rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
            return f"Patient/{parts[-1]}", None
        raise BusinessRuleError(
            f"ServiceRequest.subject must reference a Patient (Patient/<id>), got {ref!r}",
            "ServiceRequest.subject.reference",
        )
    ident = subject.get("identifier") or {}
    if ident.get("value"):
        return f"identifier:{ident.get('system') or ''}|{ident['value']}", None
    raise BusinessRuleError(
        "ServiceRequest.subject is required: a reference to the Patient (Patient/<id>) or a"
        " patient identifier",
        "ServiceRequest.subject",
    )


def parse_service_request(
    data: object,
    *,
    accepted_codes: Collection[tuple[str, str]],
    pacs_allowlist: Sequence[str],
    context: Mapping[str, InlineResource] | None = None,
    location: str = "ServiceRequest",
) -> OrderIntake:
    """Check an incoming calcium-score order and extract what the service stores.

    Parameters
    ----------
    data
        Decoded JSON of the ServiceRequest.
    accepted_codes
        ``(system, code)`` pairs accepted in ``ServiceRequest.code`` (settings ``order_codes``).
    pacs_allowlist
        DICOMweb base URLs that inline Endpoint addresses must lie under (SSRF protection).
    context
        Resources that came with the order, by ``fullUrl`` (a transaction Bundle).
    location
        FHIRPath prefix for error locations (``Bundle.entry[0].resource`` inside a Bundle).

    Returns
    -------
    OrderIntake

    Raises
    ------
    InvalidResourceError
        Not a ServiceRequest, or a schema violation (HTTP 400).
    BusinessRuleError
        Wrong status or intent, no subject, no way to find the images, an endpoint outside the
        allow-list, no identifier or id (HTTP 422).
    NotSupportedError
        No coding of ``ServiceRequest.code`` is an accepted calcium-score order code (HTTP 422).
    """
    sr = check_resource_type(data, "ServiceRequest", location)
    model = validate_model(ServiceRequest, sr, location)
    try:
        return _parse_checked(model, sr, accepted_codes, pacs_allowlist, context or {}, location)
    except RequestError as exc:
        if (
            location != "ServiceRequest"
            and exc.location
            and exc.location.startswith("ServiceRequest")
        ):
            exc.location = location + exc.location.removeprefix("ServiceRequest")
        raise


def _parse_checked(
    model: ServiceRequest,
    sr: Mapping[str, Any],
    accepted_codes: Collection[tuple[str, str]],
    pacs_allowlist: Sequence[str],
    context: Mapping[str, InlineResource],
    location: str,
) -> OrderIntake:
    try:
        status = RequestStatus(str(model.status))
    except ValueError:
        raise BusinessRuleError(
            f"ServiceRequest.status must be active (or revoked to cancel), got {model.status!r}",
            "ServiceRequest.status",
        ) from None
    if model.intent not in ORDER_INTENTS:
        raise BusinessRuleError(
            f"ServiceRequest.intent must be 'order', got {model.intent!r}", "ServiceRequest.intent"
        )
    codings = (sr.get("code") or {}).get("coding") or ()
    if not codings:
        raise BusinessRuleError(
            "ServiceRequest.code is required: a coding for CT calcium scoring (LOINC 79087-3,"
            " CPT 75571 or SNOMED CT 426005005)",
            "ServiceRequest.code",
        )
    if not any((c.get("system"), c.get("code")) in accepted_codes for c in codings):
        offered = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings)
        accepted = ", ".join(f"{s}|{c}" for s, c in accepted_codes)
        raise NotSupportedError(
            f"this service performs coronary calcium scoring only; ServiceRequest.code {offered}"
            f" is none of the accepted codes ({accepted})",
            "ServiceRequest.code.coding",
        )
    resolver = _Resolver(sr.get("contained") or (), location, context)
    patient_reference, patient_inline = _patient_reference(sr, resolver)

    identifiers = sr.get("identifier") or ()
    placer = _placer_identifier(identifiers)
    sr_id = sr.get("id")
    if placer is not None:
        order_key = f"identifier:{placer[0]}|{placer[1]}"
    elif sr_id:
        order_key = f"id:{sr_id}"
    else:
        raise BusinessRuleError(
            "the order needs a placer identifier (ServiceRequest.identifier) or an id, so that a"
            " repeated post is recognised and not run twice",
            "ServiceRequest.identifier",
        )
    version_id = (sr.get("meta") or {}).get("versionId")
    version_key = f"versionId:{version_id}" if version_id else f"sha256:{canonical_digest(sr)}"

    study_uid = next((u for u in map(_study_uid, identifiers) if u), None)
    accession = next(
        (
            str(i["value"])
            for i in identifiers
            if _identifier_type_code(i) == "ACSN" and i.get("value")
        ),
        None,
    )
    imaging_ref: str | None = None
    imaging_inline: InlineResource | None = None
    for index, info in enumerate(sr.get("supportingInfo") or ()):
        ref = info.get("reference")
        inline = resolver.resolve(ref)
        if inline is not None and inline.resource.get("resourceType") == "ImagingStudy":
            imaging_inline, imaging_ref = inline, ref
            break
        if inline is None and (
            info.get("type") == "ImagingStudy"
            or str(ref or "").split("/")[-2:-1] == ["ImagingStudy"]
        ):
            if ref and "/" in str(ref):
                imaging_ref = str(ref)
                break
            raise BusinessRuleError(
                "ServiceRequest.supportingInfo names an ImagingStudy without a resolvable"
                " reference",
                f"ServiceRequest.supportingInfo[{index}].reference",
            )
    endpoints: list[Mapping[str, Any]] = []
    if imaging_inline is not None:
        study = imaging_inline.resource
        validate_model(ImagingStudy, study, imaging_inline.location)
        for ident in study.get("identifier") or ():
            study_uid = study_uid or _study_uid(ident)
            if _identifier_type_code(ident) == "ACSN" and ident.get("value"):
                accession = accession or str(ident["value"])
        study_resolver = _Resolver(study.get("contained") or (), imaging_inline.location, context)
        for endpoint_ref in study.get("endpoint") or ():
            endpoint = study_resolver.resolve(endpoint_ref.get("reference")) or resolver.resolve(
                endpoint_ref.get("reference")
            )
            if endpoint is None:
                continue
            address = endpoint.resource.get("address")
            if not isinstance(address, str) or not endpoint_allowed(address, pacs_allowlist):
                raise BusinessRuleError(
                    "the Endpoint address is not under an allow-listed DICOMweb base URL"
                    " (CAC_PACS_ALLOWLIST); the service fetches images only from configured PACS",
                    f"{endpoint.location}.address",
                )
            endpoints.append(endpoint.resource)
        if study_uid is None and accession is None and not study.get("id"):
            raise BusinessRuleError(
                "the ImagingStudy needs an identifier (urn:dicom:uid Study Instance UID or an"
                " ACSN accession number)",
                f"{imaging_inline.location}.identifier",
            )
        if imaging_ref is not None and imaging_ref.startswith("urn:") and study.get("id"):
            imaging_ref = f"ImagingStudy/{study['id']}"
        elif imaging_ref is not None and imaging_ref.startswith(("#", "urn:")):
            imaging_ref = None
    if study_uid is None and accession is None and imaging_ref is None and imaging_inline is None:
        raise BusinessRuleError(
            "the order gives no way to find the CT images: add supportingInfo referencing the"
            " ImagingStudy, or an identifier with system urn:dicom:uid (Study Instance UID) or"
            " type ACSN (accession number)",
            "ServiceRequest.supportingInfo",
        )
    focus_reference = f"ServiceRequest/{sr_id}" if sr_id else None
    requester = (sr.get("requester") or {}).get("reference")
    return OrderIntake(
        order_key=order_key,
        version_key=version_key,
        request_status=status,
        service_request_json=json.dumps(sr, separators=(",", ":")),
        patient_reference=patient_reference,
        focus_reference=focus_reference,
        focus_identifier=placer,
        study_instance_uid=study_uid,
        accession_number=accession,
        imaging_study_reference=imaging_ref,
        patient_json=json.dumps(patient_inline.resource) if patient_inline else None,
        imaging_study_json=json.dumps(imaging_inline.resource) if imaging_inline else None,
        endpoints_json=json.dumps(endpoints) if endpoints else None,
        requester=str(requester) if requester else None,
    )
