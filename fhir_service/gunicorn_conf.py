"""Gunicorn settings for the API process (used by ``cac serve`` and ``deploy/gunicorn.conf.py``).

The access log omits query strings: a search such as ``patient:identifier=<MRN>`` would otherwise
write a patient identifier to the log.
"""

from __future__ import annotations

import os
import re
from typing import Any

from gunicorn.glogging import Logger

#: One process per core; each runs THREADS request threads whose orders share one commit
#: (fhir_service.storage.GroupCommitOrderStore), so the fsync of a durable commit is amortised.
DEFAULT_WORKERS = os.cpu_count() or 1
THREADS = 8
#: Path only (``%(U)s``), no query string, no user agent: no PHI in access logs.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'

#: The signed link of a patient page or clinician report is a credential: never log it.
_PAGE_TOKEN = re.compile(r"(/pages/(?:patient|clinician)/)[^/?]+")


def redact_path(path: str) -> str:
    """The request path with page-link tokens replaced by ``<token>``."""
    return _PAGE_TOKEN.sub(r"\1<token>", path)


class RedactingLogger(Logger):  # type: ignore[misc]
    """Gunicorn's logger, with the tokens of signed page links removed from access lines."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_path(atoms[key])
        return atoms


OPTIONS: dict[str, object] = {
    "logger_class": "fhir_service.gunicorn_conf.RedactingLogger",
    "worker_class": "gthread",
    "threads": THREADS,
    "timeout": 30,
    "graceful_timeout": 20,
    "keepalive": 5,
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "access_log_format": ACCESS_LOG_FORMAT,
    "accesslog": "-",
    "errorlog": "-",
    "forwarded_allow_ips": "127.0.0.1",
    # several services may share a host: no control socket in the home folder
    "control_socket_disable": True,
}
