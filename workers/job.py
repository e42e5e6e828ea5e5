"""The job behind ``cac.process_order``: one order from Task id to posted results, step by step.

1. claim the Task (``in-progress``) and read the order the service stored;
2. ``fetching patient context``: Patient, risk factors, history, pregnancy, prior scores (EHR);
3. appropriateness: findings go into the report; with ``CAC_APPROPRIATENESS_POLICY=reject`` a
   finding of severity *stop* ends the Task ``rejected`` with the reason instead;
4. find the study on the allow-listed PACS, choose the calcium series (and say why not the
   others), and stop early if the EHR already holds this order's report (a re-delivered job);
5. ``fetching images n/N``: WADO-RS retrieve, decode, build the volume;
6. ``scoring``: candidates, automatic coronary detection, Agatston/volume/mass (the same calls as
   ``cac score --roi auto``), interpretation;
7. ``posting results``: one transaction Bundle (sequential fallback), Task ``completed`` with
   ``output`` -> the DiagnosticReport.

Every step is idempotent: a job run twice (re-delivery after a crash) posts nothing twice
(conditional creates on stable identifiers and the early report check).
"""

from __future__ import annotations

import datetime
import html
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.endpoint import Endpoint
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from dicom_io.errors import DICOMInputError
from dicom_io.errors import NoSuitableSeriesError as DICOMNoSuitableSeries
from dicom_io.loader import volume_from_datasets
from dicom_io.selection import SeriesSummary, select_series
from fhir_service.mapping.device import build_device
from fhir_service.mapping.diagnostic_report import (
    PresentedForm,
    ReportCategoryCode,
    build_diagnostic_report,
)
from fhir_service.mapping.observation import (
    RESULT_IDENTIFIER_SYSTEM,
    InterpretationFigures,
    ResultContext,
    build_interpretation_observations,
    build_score_observations,
    result_identifier,
)
from fhir_service.mapping.provenance import build_provenance
from fhir_service.mapping.results_bundle import (
    BundleEntryPlan,
    CreatedResource,
    build_transaction,
    identifier_query,
    new_full_url,
    parse_transaction_response,
    resolve_references,
)
from fhir_service.mapping.task import TaskStatus
from fhir_service.settings import AppropriatenessPolicy, ReportCategory, Settings
from fhir_service.storage import TaskStore
from interpretation.appropriateness import Severity, appropriateness
from interpretation.context import PatientContext
from interpretation.interpret import Interpretation, interpret
from reports.bundle import ReportArtefacts, render_report_bundle
from reports.errors import ReportError
from reports.store import ReportRecord, ReportStore
from reports.study import StudyIdentification
from scoring import (
    CandidateSet,
    CTVolume,
    ScoreResult,
    ScoringParameters,
    find_candidates,
    score_candidates,
)
from scoring.coronary import detect_coronary_calcium
from workers.context import read_patient_context
from workers.ehr import EHRClient, parse_resource
from workers.errors import (
    EHRPermanentError,
    ImageDecodeError,
    NoSuitableSeriesError,
    OrderError,
    OrderRejectedError,
    PACSNotAllowedError,
)
from workers.pacs import PACSClient, check_allowed, series_instance_count

log = logging.getLogger(__name__)

DICOM_UID_SYSTEM = "urn:dicom:uid"
ACCESSION_TYPE = "ACSN"
WADO_RS = "dicom-wado-rs"
#: Statuses with which an EHR says it does not take transaction Bundles.
NO_TRANSACTION_STATUSES = frozenset({405, 501})


class BusinessStatus:
    """``Task.businessStatus`` codes written at each step (the service's local CodeSystem)."""

    CONTEXT = "fetching-patient-context"
    FINDING_STUDY = "finding-study"
    SCORING = "scoring"
    POSTING = "posting-results"
    DONE = "awaiting-review"

    @staticmethod
    def fetching(n: int, total: int) -> str:
        return f"fetching-images {n}/{total}"


@dataclass(slots=True)
class JobTimings:
    """Seconds spent in each step (for the benchmark and the logs)."""

    steps: dict[str, float] = field(default_factory=dict)
    _open: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step; a step inside another is counted only in the inner one."""
        start = time.perf_counter()
        self._open.append(name)
        try:
            yield
        finally:
            self._open.pop()
            elapsed = time.perf_counter() - start
            self.steps[name] = self.steps.get(name, 0.0) + elapsed
            if self._open:
                parent = self._open[-1]
                self.steps[parent] = self.steps.get(parent, 0.0) - elapsed


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What the job did: final Task status, the report reference, the timings."""

    status: TaskStatus
    diagnostic_report: str | None
    reason: str = ""
    timings: Mapping[str, float] = field(default_factory=dict)
    created: bool = False


@dataclass(slots=True)
class JobDeps:
    """The clients and settings one worker process builds once."""

    settings: Settings
    ehr: EHRClient
    store: TaskStore
    pacs_factory: Callable[[str], PACSClient]
    algorithm_name: str
    algorithm_version: str
    parameters: ScoringParameters = field(default_factory=ScoringParameters)


def _reference_id(reference: str, resource_type: str) -> str:
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    raise OrderError(f"expected a {resource_type} reference, got {reference!r}")


def study_identifiers(study: ImagingStudy | None) -> tuple[str | None, str | None]:
    """``(Study Instance UID, accession number)`` from ``ImagingStudy.identifier``."""
    if study is None:
        return None, None
    uid = accession = None
    for ident in study.identifier or []:
        value = str(ident.value or "")
        if ident.system == DICOM_UID_SYSTEM and value:
            uid = value.removeprefix("urn:oid:")
        codes = {
            str(c.code) for c in (ident.type.coding if ident.type and ident.type.coding else [])
        }
        if ACCESSION_TYPE in codes and value:
            accession = value
    return uid, accession


def acquisition_time(volume_acq: Any, study: ImagingStudy | None) -> datetime.datetime:
    """The series' acquisition date/time, else ``ImagingStudy.started``, else now (UTC)."""
    when = getattr(volume_acq, "acquisition_datetime", None)
    if when is None and study is not None and study.started is not None:
        when = study.started
    if when is None:
        when = datetime.datetime.now(datetime.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when


class OrderJob:
    """One run of one order (``run``); create one per message."""

    def __init__(self, task_id: str, deps: JobDeps) -> None:
        self.task_id = task_id
        self.deps = deps
        self.timings = JobTimings()
        self._last_progress = 0.0

    # -- Task updates ---------------------------------------------------------------------------
    def _business(self, code: str) -> None:
        with self.timings.step("task"):
            self.deps.store.transition(self.task_id, TaskStatus.IN_PROGRESS, business_status=code)

    def run(self) -> JobOutcome:
        """Process the order.

        Raises
        ------
        workers.errors.TransientError
            For the caller to retry later (the Task stays ``in-progress``).
        workers.errors.PermanentError
            For the caller to end the Task ``failed`` (``rejected`` for
            :class:`OrderRejectedError`) with the reason.
        """
        store, ehr, settings = self.deps.store, self.deps.ehr, self.deps.settings
        record = store.get(self.task_id)
        if record.status in (
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.REJECTED,
            TaskStatus.CANCELLED,
            TaskStatus.ENTERED_IN_ERROR,
        ):
            report = next(
                (r for r in record.output_references if r.startswith("DiagnosticReport/")), None
            )
            return JobOutcome(record.status, report, "already finished")
        # the context is read before claiming: an order the policy rejects ends ``rejected``,
        # which the Task state machine allows from ``accepted`` but not from ``in-progress``.
        # A Task already ``in-progress`` is taken over: its message came back because the worker
        # running it died (acks_late); posting is idempotent, so a rare double run of a live job
        # (visibility timeout exceeded) creates no second report.
        started = record.status is TaskStatus.IN_PROGRESS
        with self.timings.step("task"):
            store.transition(self.task_id, record.status, business_status=BusinessStatus.CONTEXT)
            order = store.order_for(self.task_id)
        service_request = order.service_request
        if not service_request.get("id"):
            raise OrderError("the order's ServiceRequest has no id; results cannot refer to it")
        sr_ref = f"ServiceRequest/{service_request['id']}"

        with self.timings.step("context"):
            patient_id = _reference_id(order.patient_reference, "Patient")
            patient = ehr.read(Patient, patient_id)
            study = self._imaging_study(order.imaging_study, service_request)
            study_uid, accession = study_identifiers(study)
            study_uid = study_uid or order.study_instance_uid
            accession = accession or order.accession_number
            scan_date = (
                study.started.date()
                if study is not None and study.started
                else datetime.date.today()
            )
            context, _sources = read_patient_context(ehr, patient, service_request, scan_date)
            findings = appropriateness(context)
            stops = [f for f in findings if f.severity is Severity.STOP]
            if stops and settings.appropriateness_policy is AppropriatenessPolicy.REJECT:
                raise OrderRejectedError(
                    "order rejected by the appropriateness policy: "
                    + " ".join(f.message for f in stops)
                )
            base = self._pacs_base(study, order.endpoints)
        if started:
            self._business(BusinessStatus.FINDING_STUDY)
        else:
            with self.timings.step("task"):
                claimed = store.claim(
                    self.task_id, redelivered=False, business_status=BusinessStatus.FINDING_STUDY
                )
            if not claimed:
                return JobOutcome(store.get(self.task_id).status, None, "claimed by another worker")

        with self.timings.step("fetch"):
            pacs = self.deps.pacs_factory(base)
            study_uid = pacs.find_study(
                study_instance_uid=study_uid,
                accession_number=accession,
                patient_id=self._patient_identifier(patient),
            )
            series = pacs.list_series(study_uid)
            try:
                summaries = [SeriesSummary.from_dicom_json(s) for s in series]
                selection = select_series(summaries)
            except DICOMNoSuitableSeries as exc:
                raise NoSuitableSeriesError(str(exc)) from exc
            chosen = selection.chosen
            identifier = result_identifier(
                str(service_request["id"]), chosen.series_instance_uid, self.deps.algorithm_version
            )
            with self.timings.step("dedupe"):
                existing = ehr.search(
                    DiagnosticReport,
                    {"identifier": f"{RESULT_IDENTIFIER_SYSTEM}|{identifier}/report"},
                )
            if existing:
                report_ref = f"DiagnosticReport/{existing[0].id}"
                store.transition(
                    self.task_id,
                    TaskStatus.COMPLETED,
                    business_status=BusinessStatus.DONE,
                    output=[report_ref],
                )
                return JobOutcome(
                    TaskStatus.COMPLETED, report_ref, "already posted", dict(self.timings.steps)
                )
            expected = (
                next(
                    (
                        series_instance_count(s)
                        for s in series
                        if SeriesSummary.from_dicom_json(s).series_instance_uid
                        == chosen.series_instance_uid
                    ),
                    None,
                )
                or chosen.n_instances
                or 0
            )
            self._business(BusinessStatus.fetching(0, expected))
            retrieved = pacs.retrieve_series(
                study_uid,
                chosen.series_instance_uid,
                expected_instances=expected,
                progress=self._progress,
            )

        self._business(BusinessStatus.SCORING)
        with self.timings.step("load"):
            try:
                loaded = volume_from_datasets(
                    retrieved.datasets, series_instance_uid=chosen.series_instance_uid
                )
            except DICOMInputError as exc:
                raise ImageDecodeError(f"series {chosen.series_instance_uid}: {exc}") from exc
            except (ValueError, AttributeError, KeyError, TypeError) as exc:
                raise ImageDecodeError(
                    f"series {chosen.series_instance_uid} cannot be decoded: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        with self.timings.step("score"):
            volume = loaded.volume
            candidates = find_candidates(volume, self.deps.parameters)
            labelling = detect_coronary_calcium(volume, candidates)
            score = score_candidates(
                candidates, labelling.labels, roi="auto", extra_warnings=labelling.warnings
            )
            warnings = [w.message for w in (*loaded.warnings, *score.warnings)]
            reasons = [f"{uid}: {why}" for uid, why in selection.reasons.items()]

        self._business(BusinessStatus.POSTING)
        with self.timings.step("post"):
            effective = acquisition_time(volume.acquisition, study)
            report_ref, created = self._post_results(
                score=score,
                context=context,
                findings=[f.message for f in findings],
                identifier=identifier,
                sr_ref=sr_ref,
                subject=f"Patient/{patient_id}",
                study=study,
                study_uid=study_uid,
                series_uid=chosen.series_instance_uid,
                effective=effective,
                notes=warnings + reasons,
                volume=volume,
                candidates=candidates,
                patient=patient,
                accession=accession,
            )
        with self.timings.step("task"):
            store.transition(
                self.task_id,
                TaskStatus.COMPLETED,
                business_status=BusinessStatus.DONE,
                output=[report_ref],
            )
        return JobOutcome(TaskStatus.COMPLETED, report_ref, "", dict(self.timings.steps), created)

    # -- helpers --------------------------------------------------------------------------------
    def _progress(self, n: int, total: int) -> None:
        now = time.monotonic()
        if n == total or now - self._last_progress > 0.5:
            self._last_progress = now
            self._business(BusinessStatus.fetching(n, total))

    def _imaging_study(
        self, inline: dict[str, Any] | None, service_request: Mapping[str, Any]
    ) -> ImagingStudy | None:
        if inline:
            return ImagingStudy.model_validate(inline)
        for info in service_request.get("supportingInfo", []) or []:
            ref = str(info.get("reference", ""))
            if ref.startswith("ImagingStudy/") or "/ImagingStudy/" in ref:
                resource = self.deps.ehr.read_reference(ref)
                if isinstance(resource, ImagingStudy):
                    return resource
        return None

    def _pacs_base(self, study: ImagingStudy | None, inline_endpoints: list[dict[str, Any]]) -> str:
        allowed = self.deps.settings.pacs_allowlist
        endpoints: list[Endpoint] = [Endpoint.model_validate(e) for e in inline_endpoints]
        if study is not None and not endpoints:
            for ref in study.endpoint or []:
                if ref.reference:
                    resource: Resource = self.deps.ehr.read_reference(str(ref.reference))
                    if isinstance(resource, Endpoint):
                        endpoints.append(resource)
        for endpoint in endpoints:
            codes = {str(c.code) for c in [endpoint.connectionType] if c is not None}
            if WADO_RS in codes and endpoint.address:
                return check_allowed(str(endpoint.address), allowed)
        if len(allowed) == 1:
            return allowed[0]
        raise PACSNotAllowedError(
            "the order names no DICOMweb (dicom-wado-rs) Endpoint and no single PACS is configured "
            "(CAC_PACS_ALLOWLIST)"
        )

    @staticmethod
    def _patient_identifier(patient: Patient) -> str | None:
        for ident in patient.identifier or []:
            if ident.value:
                return str(ident.value)
        return None

    def _figures(
        self, score: ScoreResult, context: PatientContext, scan_date: datetime.date
    ) -> tuple[Interpretation, InterpretationFigures, str, str, str, str]:
        """The interpretation (:func:`interpretation.interpret`, as ``cac interpret``), and the
        figures, guidance, patient summary and risk category the results carry."""
        result = interpret(
            score.agatston,
            context,
            by_artery=score.agatston_by_artery if score.roi != "whole" else None,
            scan_date=scan_date,
        )
        pct, risk = result.mesa_percentile, result.chd_risk_10y
        figures = InterpretationFigures(
            cac_drs_category=result.cac_drs.category,
            cac_drs_label=result.cac_drs.label,
            cac_drs_vessels=result.cac_drs.vessels,
            mesa_percentile=pct.value if pct.applicable else None,
            mesa_note=pct.reason,
            arterial_age_years=result.arterial_age.years,
            chd_risk_10y_pct=risk.with_cac_pct if risk.applicable else None,
            chd_risk_note=risk.reason,
        )
        guidance_text = " ".join(item.text for item in result.clinician_guidance)
        return (
            result,
            figures,
            guidance_text,
            result.patient_summary,
            result.risk_category.value,
            result.risk_category.text,
        )

    def _post_results(
        self,
        *,
        score: ScoreResult,
        context: PatientContext,
        findings: list[str],
        identifier: str,
        sr_ref: str,
        subject: str,
        study: ImagingStudy | None,
        study_uid: str,
        series_uid: str,
        effective: datetime.datetime,
        notes: list[str],
        volume: CTVolume,
        candidates: CandidateSet,
        patient: Patient,
        accession: str | None,
    ) -> tuple[str, bool]:
        settings = self.deps.settings
        issued = datetime.datetime.now(datetime.UTC)
        device_url = new_full_url()
        ctx = ResultContext(
            service_request=sr_ref,
            subject=subject,
            imaging_study=f"ImagingStudy/{study.id}" if study is not None and study.id else None,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            effective=effective,
            issued=issued,
            identifier=identifier,
            status=settings.report_status.value,
            device=device_url,
        )
        with self.timings.step("interpret"):
            interpretation, figures, guidance, summary, risk_code, risk_text = self._figures(
                score, context, effective.date()
            )
        observations = {
            **build_score_observations(score, ctx),
            **build_interpretation_observations(figures, ctx),
        }
        obs_urls = {key: new_full_url() for key in observations}
        conclusion = (
            f"Agatston {score.agatston:.0f}; {figures.cac_drs_label}; risk {risk_text}. {guidance}"
        ).strip()
        if findings:
            conclusion += " Appropriateness: " + " ".join(findings)
        with self.timings.step("render"):
            artefacts = self._render(
                volume, candidates, score, interpretation, context, patient, ctx, accession
            )
        clinician_html = (
            artefacts.clinician_html
            if artefacts is not None
            else self._clinician_html(score, figures, conclusion, notes)
        )
        forms = [
            PresentedForm(
                "text/html",
                clinician_html.encode(),
                "Coronary artery calcium score: clinician report",
            ),
            PresentedForm(
                "text/plain", summary.encode(), "Your heart scan result (patient summary)"
            ),
        ]
        if artefacts is not None:
            forms.append(
                PresentedForm(
                    "application/pdf",
                    artefacts.clinician_pdf,
                    "Coronary artery calcium score: clinician report (PDF)",
                )
            )
            # the patient page, self-contained, for a patient portal to show as it is (issue 7)
            forms.append(
                PresentedForm(
                    "text/html",
                    artefacts.patient_html.encode(),
                    "Your heart scan result (patient page)",
                )
            )
        category = (
            ReportCategoryCode.CARDIOLOGY
            if settings.report_category is ReportCategory.CARDIOLOGY
            else ReportCategoryCode.RADIOLOGY
        )
        report = build_diagnostic_report(
            ctx,
            results=list(obs_urls.values()),
            category=category,
            conclusion=conclusion,
            risk_category_code=risk_code,
            risk_category_display=risk_text,
            calcium_found=score.agatston > 0,
            presented_forms=forms,
        )
        report_url = new_full_url()
        device = build_device(self.deps.algorithm_name, self.deps.algorithm_version)
        provenance = build_provenance(
            [report_url, *obs_urls.values()],
            device_url,
            issued,
            organization=settings.organization_reference,
            imaging_study=ctx.imaging_study,
        )
        plan = [BundleEntryPlan("device", device_url, device, identifier_query(device))]
        plan += [
            BundleEntryPlan(key, obs_urls[key], obs, identifier_query(obs))
            for key, obs in observations.items()
        ]
        plan.append(BundleEntryPlan("report", report_url, report, identifier_query(report)))
        plan.append(BundleEntryPlan("provenance", new_full_url(), provenance, None))
        with self.timings.step("build"):
            bundle = build_transaction(plan)
        try:
            response = self.deps.ehr.transaction(bundle)
            try:
                created = parse_transaction_response(plan, response)
            except ValueError as exc:
                raise EHRPermanentError(
                    f"EHR transaction response unreadable: {exc}", status=200
                ) from exc
        except EHRPermanentError as exc:
            if exc.status not in NO_TRANSACTION_STATUSES:
                raise
            log.info("EHR refused the transaction (%s); posting one by one", exc.status)
            created = self._post_sequentially(plan)
        report_created = created["report"]
        if artefacts is not None:
            self._keep_pages(artefacts, ctx.subject, report_created.reference)
        return report_created.reference, report_created.created

    def _keep_pages(self, artefacts: ReportArtefacts, subject: str, report_ref: str) -> None:
        """Keep the rendered pages where the service serves them (``/pages/...``, by signed link
        or authenticated request), under the Task id. The report itself is already in the EHR,
        so a failure here is logged, not fatal."""
        store = ReportStore(self.deps.settings.data_dir / "reports")
        record = ReportRecord(patient_reference=subject, diagnostic_report=report_ref)
        try:
            store.save(self.task_id, artefacts, record)
        except ReportError as exc:
            log.warning("order %s: report pages not kept for the service: %s", self.task_id, exc)

    def _post_sequentially(self, plan: list[BundleEntryPlan]) -> dict[str, CreatedResource]:
        """Create the entries one by one in order, searching first (conditional create by hand)."""
        resolved: dict[str, str] = {}
        out: dict[str, CreatedResource] = {}
        for entry in plan:
            model = type(entry.resource)
            if entry.if_none_exist:
                key, _, value = entry.if_none_exist.partition("=")
                found = self.deps.ehr.search(model, {key: value})
                if found:
                    rid = str(found[0].id)
                    out[entry.key] = CreatedResource(model.get_resource_type(), rid, False)
                    resolved[entry.full_url] = out[entry.key].reference
                    continue
            payload = resolve_references(
                entry.resource.model_dump(mode="json", exclude_none=True), resolved
            )
            stored = self.deps.ehr.create(parse_resource(payload))
            out[entry.key] = CreatedResource(model.get_resource_type(), str(stored.id), True)
            resolved[entry.full_url] = out[entry.key].reference
        return out

    def _render(
        self,
        volume: CTVolume,
        candidates: CandidateSet,
        score: ScoreResult,
        interpretation: Interpretation,
        context: PatientContext,
        patient: Patient,
        ctx: ResultContext,
        accession: str | None,
    ) -> ReportArtefacts | None:
        """The clinician report (HTML with key images, and PDF) from :mod:`reports`; ``None``
        (and the plain HTML table instead) when the renderer refuses its inputs."""
        name = patient.name[0] if patient.name else None
        parts = [str(p) for p in ([*(name.given or []), name.family] if name else []) if p]
        identification = StudyIdentification(
            patient_name=" ".join(parts) or None,
            patient_id=self._patient_identifier(patient),
            birth_date=patient.birthDate,
            sex=patient.gender,
            study_instance_uid=ctx.study_instance_uid,
            series_instance_uid=ctx.series_instance_uid,
            accession_number=accession,
            study_date=ctx.effective.date(),
        )
        try:
            return render_report_bundle(
                volume,
                candidates,
                score,
                interpretation,
                context,
                identification,
                algorithm=f"{self.deps.algorithm_name} {self.deps.algorithm_version}",
                generated_at=ctx.issued,
            )
        except ReportError as exc:
            log.warning("order %s: clinician report not rendered: %s", self.task_id, exc)
            return None

    @staticmethod
    def _clinician_html(
        score: ScoreResult, figures: InterpretationFigures, conclusion: str, notes: list[str]
    ) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(a))}</td><td>{v:.1f}</td></tr>"
            for a, v in score.agatston_by_artery.items()
        )
        note_items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Coronary artery calcium score</title></head><body>"
            "<h1>Coronary artery calcium score</h1>"
            f"<p><strong>Agatston {score.agatston:.1f}</strong>, "
            f"volume {score.volume_mm3:.1f} mm&sup3;, "
            f"mass {score.mass_mg:.1f} mg{'' if score.mass_calibrated else ' (uncalibrated)'}; "
            f"{html.escape(figures.cac_drs_label)}</p>"
            f"<table><tr><th>Artery</th><th>Agatston</th></tr>{rows}</table>"
            f"<p>{html.escape(conclusion)}</p><ul>{note_items}</ul>"
            "<p>Preliminary result of an automated algorithm; to be reviewed by a physician.</p>"
            "</body></html>"
        )
