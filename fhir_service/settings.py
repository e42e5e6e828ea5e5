"""Service configuration, read once from ``CAC_`` environment variables.

:meth:`Settings.from_env` is the only place that reads the environment; everything else receives a
frozen :class:`Settings`. Required values that are missing or malformed fail at start-up with a
:class:`~fhir_service.errors.SettingsError` naming the variable. Secrets come only from the
environment or from files it names (``CAC_EHR_PRIVATE_KEY_FILE``, ``CAC_JWKS_FILE``).

The workers import this module too (``fhir_service`` -> ``workers`` is the forbidden direction).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from fhir_service.errors import SettingsError

PREFIX = "CAC_"


class ReportStatus(StrEnum):
    """``DiagnosticReport.status`` the pipeline posts (HL7 FHIR R4 diagnostic-report-status)."""

    PRELIMINARY = "preliminary"
    FINAL = "final"


class ReportCategory(StrEnum):
    """Report category (US Core DiagnosticReport).

    LOINC LP29684-5 Radiology, LP29708-2 Cardiology (reference/fhir-dicom.md section 2).
    """

    RADIOLOGY = "radiology"
    CARDIOLOGY = "cardiology"


class AppropriatenessPolicy(StrEnum):
    """What the pipeline does with an order whose context makes the test inappropriate."""

    FLAG = "flag"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class OrderCode:
    """One accepted ``ServiceRequest.code`` coding (``system|code``)."""

    system: str
    code: str

    def __str__(self) -> str:
        return f"{self.system}|{self.code}"


#: Order codes accepted out of the box (reference/fhir-dicom.md section 2):
#: LOINC 79087-3 CT heart and coronary arteries for calcium scoring WO contrast; CPT 75571 CT heart
#: without contrast with quantitative evaluation of coronary calcium; SNOMED CT 426005005 cardiac
#: CT for calcium scoring (DICOM CID 3757).
DEFAULT_ORDER_CODES: tuple[OrderCode, ...] = (
    OrderCode("http://loinc.org", "79087-3"),
    OrderCode("http://www.ama-assn.org/go/cpt", "75571"),
    OrderCode("http://snomed.info/sct", "426005005"),
)

#: The SMART v2 ``system/`` scopes requested from the EHR when ``CAC_EHR_SCOPES`` is unset: the
#: one default for the notification reader (:mod:`fhir_service.ehr`) and the pipeline's EHR client
#: (``workers.ehr``), limited to what they do (reference/fhir-dicom.md section 5). Letters follow
#: SMART App Launch 2.0 (``c`` create, ``r`` read, ``s`` search, in ``cruds`` order); ``r`` is
#: kept beside every ``s``, as in the reference's example ``system/Observation.rs`` and SMART v1
#: ``read``. No Task scope: the Task lives in this service, never in the EHR.
DEFAULT_EHR_SCOPES: tuple[str, ...] = (
    # fhir_service.api: an id-only notification -> HTTPEHRReader.read("ServiceRequest/<id>")
    "system/ServiceRequest.r",
    # workers.job OrderJob.run: read(Patient, <order subject>)
    "system/Patient.r",
    # workers.job OrderJob._imaging_study: read_reference(ServiceRequest.supportingInfo)
    "system/ImagingStudy.r",
    # workers.job OrderJob._pacs_base: read_reference(ImagingStudy.endpoint)
    "system/Endpoint.r",
    # workers.context read_patient_context: searches by subject (patient for family history)
    "system/Condition.rs",
    "system/Procedure.rs",
    "system/MedicationRequest.rs",
    "system/FamilyMemberHistory.rs",
    # searched by read_patient_context / read_prior_scores (labs, vitals, smoking, pregnancy,
    # earlier scores); created by OrderJob._post_results (transaction Bundle, or one by one in
    # _post_sequentially after a search by identifier)
    "system/Observation.crs",
    # searched by identifier before scoring (OrderJob.run, already posted?) and in
    # _post_sequentially; created by _post_results
    "system/DiagnosticReport.crs",
    # the algorithm as a Device: created by _post_results, searched in _post_sequentially
    "system/Device.crs",
    # created by _post_results (the Provenance of the report and its Observations)
    "system/Provenance.c",
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(PREFIX + name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{PREFIX}{name} must be 1/0 (or true/false), got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{PREFIX}{name} must be >= {minimum}, got {value}")
    return value


def _str(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(PREFIX + name)
    if raw is None or raw.strip() == "":
        return None
    return raw.strip()


def _check_ehr_authentication(
    env: Mapping[str, str], token_url: str | None, key_file: Path | None
) -> None:
    """One way to authenticate to the EHR, configured completely: a static ``EHR_TOKEN``, or
    SMART Backend Services (token URL, client id and private key file together), not both; the
    service and the workers would otherwise each pick a different one."""
    smart = {
        f"{PREFIX}EHR_TOKEN_URL": token_url,
        f"{PREFIX}EHR_CLIENT_ID": _str(env, "EHR_CLIENT_ID"),
        f"{PREFIX}EHR_PRIVATE_KEY_FILE": key_file,
    }
    given = [name for name, value in smart.items() if value]
    if given and len(given) < len(smart):
        missing = [name for name in smart if name not in given]
        raise SettingsError(
            "SMART Backend Services needs "
            + ", ".join(smart)
            + " together: "
            + ", ".join(missing)
            + (" is" if len(missing) == 1 else " are")
            + " not set"
        )
    if given and _str(env, "EHR_TOKEN"):
        raise SettingsError(
            f"set either {PREFIX}EHR_TOKEN (a static token) or SMART Backend Services ("
            + ", ".join(smart)
            + "), not both"
        )


def _http_url(env: Mapping[str, str], name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{PREFIX}{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


E = TypeVar("E", bound=StrEnum)


def _enum(env: Mapping[str, str], name: str, kind: type[E], default: E) -> E:
    raw = _str(env, name)
    if raw is None:
        return default
    try:
        return kind(raw.lower())
    except ValueError:
        allowed = "|".join(member.value for member in kind)
        raise SettingsError(f"{PREFIX}{name} must be one of {allowed}, got {raw!r}") from None


def _order_codes(env: Mapping[str, str]) -> tuple[OrderCode, ...]:
    raw = _str(env, "ORDER_CODES")
    extra: list[OrderCode] = []
    for item in (raw or "").replace(",", " ").split():
        system, sep, code = item.rpartition("|")
        if not sep or not system or not code:
            raise SettingsError(
                f"{PREFIX}ORDER_CODES entries must be system|code separated by spaces or commas,"
                f" got {item!r}"
            )
        extra.append(OrderCode(system, code))
    return DEFAULT_ORDER_CODES + tuple(c for c in extra if c not in DEFAULT_ORDER_CODES)


@dataclass(frozen=True, slots=True)
class Settings:
    """Frozen service settings; build with :meth:`from_env`.

    Every attribute maps to ``CAC_<ATTRIBUTE_IN_UPPER_CASE>``; see ``docs/fhir_service.md``.
    """

    data_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    auth_disabled: bool = False
    jwks_file: Path | None = None
    jwks_url: str | None = None
    token_issuer: str | None = None
    token_audience: str | None = None
    order_codes: tuple[OrderCode, ...] = DEFAULT_ORDER_CODES
    pacs_allowlist: tuple[str, ...] = ()
    ehr_base_url: str | None = None
    ehr_token: str | None = field(default=None, repr=False)
    ehr_token_url: str | None = None
    ehr_client_id: str | None = None
    ehr_private_key_file: Path | None = None
    ehr_key_id: str | None = None
    ehr_scopes: str = " ".join(DEFAULT_EHR_SCOPES)
    ehr_timeout_s: float = 10.0
    public_base_url: str | None = None
    max_body_bytes: int = 1_048_576
    report_status: ReportStatus = ReportStatus.PRELIMINARY
    report_category: ReportCategory = ReportCategory.RADIOLOGY
    organization_reference: str | None = None
    appropriateness_policy: AppropriatenessPolicy = AppropriatenessPolicy.FLAG
    notification_secret: str | None = field(default=None, repr=False)
    dispatch_interval_s: float = 1.0
    auto_migrate: bool = True

    @property
    def sqlite_default(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default :data:`os.environ`).

        Raises
        ------
        SettingsError
            If a value is malformed, or authentication is on without its required settings
            (``CAC_JWKS_FILE`` or ``CAC_JWKS_URL``, ``CAC_TOKEN_ISSUER``, ``CAC_TOKEN_AUDIENCE``).
        """
        env = os.environ if environ is None else environ
        data_dir = Path(_str(env, "DATA_DIR") or "var")
        database_url = _str(env, "DATABASE_URL") or f"sqlite:///{data_dir / 'service.sqlite'}"
        if "://" not in database_url:
            raise SettingsError(
                f"{PREFIX}DATABASE_URL must be an SQLAlchemy URL such as"
                " postgresql+psycopg://user@host/db or sqlite:///path"
            )
        broker_url = _str(env, "BROKER_URL") or f"sqla+sqlite:///{data_dir / 'broker.sqlite'}"
        if "://" not in broker_url:
            raise SettingsError(
                f"{PREFIX}BROKER_URL must be a kombu URL such as redis://host:6379/0"
            )
        auth_disabled = _bool(env, "AUTH_DISABLED", False)
        jwks_file_raw = _str(env, "JWKS_FILE")
        jwks_file = Path(jwks_file_raw) if jwks_file_raw else None
        jwks_url = _str(env, "JWKS_URL")
        if jwks_url is not None:
            jwks_url = _http_url(env, "JWKS_URL", jwks_url)
        issuer = _str(env, "TOKEN_ISSUER")
        audience = _str(env, "TOKEN_AUDIENCE")
        if not auth_disabled:
            missing = []
            if jwks_file is None and jwks_url is None:
                missing.append(f"{PREFIX}JWKS_FILE or {PREFIX}JWKS_URL")
            if issuer is None:
                missing.append(f"{PREFIX}TOKEN_ISSUER")
            if audience is None:
                missing.append(f"{PREFIX}TOKEN_AUDIENCE")
            if missing:
                raise SettingsError(
                    "authentication is on but " + ", ".join(missing) + " is not set"
                    f" (set {PREFIX}AUTH_DISABLED=1 only for local trials)"
                )
            if jwks_file is not None and not jwks_file.is_file():
                raise SettingsError(f"{PREFIX}JWKS_FILE names no readable file: {jwks_file}")
        allowlist = tuple(
            _http_url(env, "PACS_ALLOWLIST", item)
            for item in (_str(env, "PACS_ALLOWLIST") or "").replace(",", " ").split()
        )
        ehr_base_url = _str(env, "EHR_BASE_URL")
        if ehr_base_url is not None:
            ehr_base_url = _http_url(env, "EHR_BASE_URL", ehr_base_url)
        ehr_token_url = _str(env, "EHR_TOKEN_URL")
        if ehr_token_url is not None:
            ehr_token_url = _http_url(env, "EHR_TOKEN_URL", ehr_token_url)
        key_file_raw = _str(env, "EHR_PRIVATE_KEY_FILE")
        key_file = Path(key_file_raw) if key_file_raw else None
        if key_file is not None and not key_file.is_file():
            raise SettingsError(f"{PREFIX}EHR_PRIVATE_KEY_FILE names no readable file: {key_file}")
        _check_ehr_authentication(env, ehr_token_url, key_file)
        public_base_url = _str(env, "PUBLIC_BASE_URL")
        if public_base_url is not None:
            public_base_url = _http_url(env, "PUBLIC_BASE_URL", public_base_url)
        defaults = cls()
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            broker_url=broker_url,
            auth_disabled=auth_disabled,
            jwks_file=jwks_file,
            jwks_url=jwks_url,
            token_issuer=issuer,
            token_audience=audience,
            order_codes=_order_codes(env),
            pacs_allowlist=allowlist,
            ehr_base_url=ehr_base_url,
            ehr_token=_str(env, "EHR_TOKEN"),
            ehr_token_url=ehr_token_url,
            ehr_client_id=_str(env, "EHR_CLIENT_ID"),
            ehr_private_key_file=key_file,
            ehr_key_id=_str(env, "EHR_KEY_ID"),
            ehr_scopes=_str(env, "EHR_SCOPES") or defaults.ehr_scopes,
            ehr_timeout_s=float(_int(env, "EHR_TIMEOUT_S", int(defaults.ehr_timeout_s))),
            public_base_url=public_base_url,
            max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes),
            report_status=_enum(env, "REPORT_STATUS", ReportStatus, defaults.report_status),
            report_category=_enum(env, "REPORT_CATEGORY", ReportCategory, defaults.report_category),
            organization_reference=_str(env, "ORGANIZATION_REFERENCE"),
            appropriateness_policy=_enum(
                env,
                "APPROPRIATENESS_POLICY",
                AppropriatenessPolicy,
                defaults.appropriateness_policy,
            ),
            notification_secret=_str(env, "NOTIFICATION_SECRET"),
            dispatch_interval_s=_int(env, "DISPATCH_INTERVAL_MS", 1000) / 1000.0,
            auto_migrate=_bool(env, "AUTO_MIGRATE", True),
        )
