"""Gunicorn configuration of the API process in production.

    CAC_AUTO_MIGRATE=0 gunicorn -c deploy/gunicorn.conf.py fhir_service.wsgi:app

Run ``cac serve --migrate-only`` once per release first, and the outbox dispatcher
(``python -m fhir_service.outbox``) as its own service. Environment: see deploy/README.md.
"""

import os

from fhir_service.gunicorn_conf import DEFAULT_WORKERS, OPTIONS

globals().update(OPTIONS)
bind = os.environ.get("CAC_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("CAC_WEB_CONCURRENCY", DEFAULT_WORKERS))
