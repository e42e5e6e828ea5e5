"""WSGI entry point for gunicorn: ``gunicorn -c deploy/gunicorn.conf.py fhir_service.wsgi:app``.

Settings come from ``CAC_`` environment variables. With several machines or workers set
``CAC_AUTO_MIGRATE=0`` here and run ``cac serve --migrate-only`` once per release instead.
"""

from __future__ import annotations

from fhir_service.app import create_app

app = create_app()
