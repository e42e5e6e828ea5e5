"""The pipeline: Celery workers that take an order's Task id, fetch the study from the PACS,
score it, interpret it and post FHIR results to the EHR.

- :mod:`workers.celery_app`: ``create_celery(settings)`` and the task ``cac.process_order``;
- :mod:`workers.job`: the job, step by step, with ``Task.businessStatus`` at each step;
- :mod:`workers.ehr`: the EHR client (FHIR R4, SMART Backend Services or a static token);
- :mod:`workers.pacs`: the PACS client (DICOMweb, allow-listed bases only);
- :mod:`workers.context`: the patient's context read from the EHR;
- :mod:`workers.runtime`: per-process clients; :mod:`workers.embedded`: the worker of
  ``cac serve``; :mod:`workers.config`: limits and PACS credentials; :mod:`workers.errors`.

The FHIR results mapping itself is pure and lives in :mod:`fhir_service.mapping` (observation,
diagnostic_report, device, provenance, results_bundle), importable by the web layer too.
"""
