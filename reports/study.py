"""Who and what a report is about: the identification printed at the top of every report."""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StudyIdentification:
    """Patient and study identification for the report header.

    Every field is optional: a value the EHR or the PACS did not give is ``None`` and printed as
    "not recorded". Names follow the DICOM attributes they usually come from.

    Parameters
    ----------
    patient_name
        The patient's name as it should be printed, e.g. ``"Jane Doe"`` ((0010,0010) Patient's
        Name, or the FHIR ``Patient.name``).
    patient_id
        The medical record number ((0010,0020) Patient ID, or a ``Patient.identifier``).
    birth_date
        (0010,0030) Patient's Birth Date.
    sex
        The sex as recorded, in words (``"female"``, ``"male"``...).
    study_instance_uid, series_instance_uid
        (0020,000D) and (0020,000E).
    accession_number
        (0008,0050) Accession Number.
    study_date
        (0008,0020) Study Date.
    referring_physician
        (0008,0090) Referring Physician's Name, or the ``ServiceRequest.requester`` display.
    institution
        (0008,0080) Institution Name.
    order_reference
        The FHIR ``ServiceRequest`` reference the report answers, e.g. ``"ServiceRequest/123"``.
    """

    patient_name: str | None = None
    patient_id: str | None = None
    birth_date: datetime.date | None = None
    sex: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    accession_number: str | None = None
    study_date: datetime.date | None = None
    referring_physician: str | None = None
    institution: str | None = None
    order_reference: str | None = None
