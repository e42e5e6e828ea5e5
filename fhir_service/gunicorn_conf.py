"""Gunicorn settings for the API process (used by ``cac serve`` and ``deploy/gunicorn.conf.py``).

The access log omits query strings: a search such as ``patient:identifier=<MRN>`` would otherwise
write a patient identifier to the log.
"""

from __future__ import annotations

import os

#: One process per core; each runs THREADS request threads whose orders share one commit
#: (fhir_service.storage.GroupCommitOrderStore), so the fsync of a durable commit is amortised.
DEFAULT_WORKERS = os.cpu_count() or 1
THREADS = 8
#: Path only (``%(U)s``), no query string, no user agent: no PHI in access logs.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'

OPTIONS: dict[str, object] = {
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
