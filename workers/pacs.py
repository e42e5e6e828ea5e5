"""The PACS client: find a study over DICOMweb, choose its calcium-score series, retrieve it.

:class:`PACSClient` is the port; :class:`DICOMwebPACS` implements it with ``dicomweb-client``:
QIDO-RS to find the study (by Study Instance UID, or by accession number and patient id) and list
its series, WADO-RS to retrieve one series instance by instance (streamed, so a size limit stops a
runaway download early). Instances are asked for *as stored* (``transfer-syntax=*``) and decoded
client-side by pydicom's pylibjpeg plugins, because servers such as Orthanc answer 500 when asked
to transcode JPEG 2000 (``/work/shared/reference/peers.md``).

Only allow-listed PACS bases are ever contacted: the Endpoint address comes from the order, and
following it blindly would be a server-side request forgery (``fhir-dicom.md`` section 4).

References
----------
DICOM PS3.18 Web Services: QIDO-RS (10.6), WADO-RS (10.4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from workers.errors import (
    PACSNotAllowedError,
    PACSPermanentError,
    PACSTransientError,
    StudyNotFoundError,
    StudyTooLargeError,
)

#: ``(0020,000D)`` Study Instance UID, ``(0020,000E)`` Series Instance UID,
#: ``(0020,1209)`` Number of Series Related Instances, ``(0008,0050)`` Accession Number.
TAG_STUDY_UID = "0020000D"
TAG_SERIES_UID = "0020000E"
TAG_SERIES_INSTANCES = "00201209"
TAG_ACCESSION = "00080050"
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
AS_STORED = (("application/dicom", "*"),)

ProgressCallback = Callable[[int, int], None]


def normalise_base(url: str) -> str:
    """Canonical form of a DICOMweb base for allow-list comparison (scheme, host, port, path)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PACSNotAllowedError(f"PACS address {url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}{parts.path.rstrip('/')}"


def check_allowed(url: str, allowed_bases: Sequence[str]) -> str:
    """Return ``url`` (without trailing slash) if it is one of ``allowed_bases``.

    Raises
    ------
    PACSNotAllowedError
        When it is not; the message names the address (never fetched).
    """
    wanted = normalise_base(url)
    if wanted not in {normalise_base(b) for b in allowed_bases}:
        raise PACSNotAllowedError(
            f"PACS address {url} is not in the allow-list (CAC_PACS_ALLOWED_BASES); not fetched"
        )
    return url.strip().rstrip("/")


def _value(attrs: dict[str, Any], tag: str) -> Any:
    values = (attrs.get(tag) or {}).get("Value") or []
    return values[0] if values else None


@dataclass(frozen=True, slots=True)
class RetrievedSeries:
    """The instances of one series as retrieved, with the bytes of pixel data they carried."""

    study_instance_uid: str
    series_instance_uid: str
    datasets: tuple[Dataset, ...]
    pixel_bytes: int


class PACSClient(Protocol):
    """What the pipeline needs from a PACS."""

    def find_study(
        self,
        *,
        study_instance_uid: str | None = None,
        accession_number: str | None = None,
        patient_id: str | None = None,
    ) -> str:
        """The Study Instance UID of the order's study (checked to exist)."""
        ...

    def list_series(self, study_instance_uid: str) -> list[dict[str, Any]]:
        """QIDO-RS series-level DICOM JSON of the study."""
        ...

    def retrieve_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        *,
        expected_instances: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> RetrievedSeries:
        """Every instance of the series, as stored."""
        ...


class DICOMwebPACS:
    """:class:`PACSClient` over DICOMweb (``dicomweb-client``).

    Parameters
    ----------
    base_url
        The DICOMweb base (QIDO/WADO root), e.g. ``https://pacs.example.org/dicom-web``.
    allowed_bases
        The allow-list; ``base_url`` must be one of them.
    auth
        ``(user, password)`` for HTTP basic auth, or ``None``.
    bearer_token
        A bearer token instead of basic auth.
    timeout_s
        ``(connect, read)`` seconds for every request.
    max_bytes
        Stop (permanently) when a series' pixel data exceeds this many bytes.
    """

    def __init__(
        self,
        base_url: str,
        allowed_bases: Sequence[str],
        *,
        auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        timeout_s: tuple[float, float] = (5.0, 60.0),
        max_bytes: int = 2_000_000_000,
    ) -> None:
        self.base_url = check_allowed(base_url, allowed_bases)
        session = requests.Session()
        if auth is not None:
            session.auth = auth
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else None
        self.max_bytes = max_bytes
        self._client = DICOMwebClient(
            self.base_url, session=session, headers=headers, timeout=timeout_s
        )
        # retries belong to the Celery task (bounded, with backoff), not to the HTTP client
        self._client.set_http_retry_params(retry=False)

    def _call(self, what: str, func: Callable[[], Any]) -> Any:
        try:
            return func()
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status in TRANSIENT_STATUSES:
                raise PACSTransientError(f"PACS {what}: HTTP {status}") from exc
            if status == 404:
                return None
            text = exc.response.reason if exc.response is not None else ""
            raise PACSPermanentError(f"PACS {what}: HTTP {status} {text}".rstrip()) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise PACSTransientError(
                f"PACS {what}: {type(exc).__name__} talking to {self.base_url}"
            ) from exc

    def find_study(
        self,
        *,
        study_instance_uid: str | None = None,
        accession_number: str | None = None,
        patient_id: str | None = None,
    ) -> str:
        filters: dict[str, str] = {}
        if study_instance_uid:
            filters["StudyInstanceUID"] = study_instance_uid
        elif accession_number:
            filters["AccessionNumber"] = accession_number
            if patient_id:
                filters["PatientID"] = patient_id
        else:
            raise StudyNotFoundError(
                "the order names no Study Instance UID and no accession number; cannot find images"
            )
        found = (
            self._call(
                "study search", lambda: self._client.search_for_studies(search_filters=filters)
            )
            or []
        )
        uids = sorted({str(_value(s, TAG_STUDY_UID)) for s in found if _value(s, TAG_STUDY_UID)})
        what = ", ".join(f"{k}={v}" for k, v in filters.items())
        if not uids:
            raise StudyNotFoundError(f"no study with {what} on the PACS {self.base_url}")
        if len(uids) > 1:
            raise StudyNotFoundError(f"{len(uids)} studies match {what}; the order must name one")
        return uids[0]

    def list_series(self, study_instance_uid: str) -> list[dict[str, Any]]:
        found = self._call(
            "series search",
            lambda: self._client.search_for_series(
                study_instance_uid=study_instance_uid,
                fields=["SeriesDescription", "NumberOfSeriesRelatedInstances", "Modality"],
            ),
        )
        return list(found or [])

    def retrieve_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        *,
        expected_instances: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> RetrievedSeries:
        datasets: list[Dataset] = []
        pixel_bytes = 0
        total = expected_instances or 0

        def stream() -> Iterator[Dataset]:
            return iter(
                self._client.iter_series(
                    study_instance_uid, series_instance_uid, media_types=AS_STORED
                )
            )

        iterator = self._call("retrieve", stream)
        if iterator is None:
            raise StudyNotFoundError(
                f"series {series_instance_uid} of study {study_instance_uid} not on the PACS"
            )
        while True:
            dataset = self._call("retrieve", lambda: next(iterator, None))
            if dataset is None:
                break
            datasets.append(dataset)
            pixel_bytes += len(getattr(dataset, "PixelData", b"") or b"")
            if pixel_bytes > self.max_bytes:
                raise StudyTooLargeError(
                    f"series {series_instance_uid} exceeds the size limit of "
                    f"{self.max_bytes} bytes after {len(datasets)} instances"
                )
            if progress is not None:
                progress(len(datasets), max(total, len(datasets)))
        if not datasets:
            raise StudyNotFoundError(
                f"series {series_instance_uid} of study {study_instance_uid} has no instances"
            )
        return RetrievedSeries(
            study_instance_uid, series_instance_uid, tuple(datasets), pixel_bytes
        )


def series_instance_count(attrs: dict[str, Any]) -> int | None:
    """``(0020,1209)`` Number of Series Related Instances from QIDO JSON, if present."""
    value = _value(attrs, TAG_SERIES_INSTANCES)
    return int(value) if value is not None else None


def series_uid(attrs: dict[str, Any]) -> str:
    """``(0020,000E)`` Series Instance UID from QIDO JSON."""
    return str(_value(attrs, TAG_SERIES_UID) or "")
