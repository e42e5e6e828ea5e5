"""The workers' own settings (``CAC_`` environment variables), beside the service's
:class:`fhir_service.settings.Settings` (database, broker, EHR, PACS allow-list, report policy).

Read once per process with :meth:`WorkerSettings.from_env`; malformed values fail at start-up with
:class:`~workers.errors.ConfigurationError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from workers.errors import ConfigurationError

PREFIX = "CAC_"


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(PREFIX + name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{PREFIX}{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{PREFIX}{name} must be >= {minimum:g}, got {value:g}")
    return value


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Limits and peers of the pipeline.

    Attributes map to ``CAC_<NAME>``: ``TASK_SOFT_TIME_LIMIT_S`` / ``TASK_TIME_LIMIT_S`` (a job
    running longer is stopped: soft raises inside the job, hard kills the child),
    ``MAX_RETRIES`` and ``RETRY_BACKOFF_S`` / ``RETRY_BACKOFF_MAX_S`` (transient failures:
    countdown ``min(max, base * 2**n)``), ``VISIBILITY_TIMEOUT_S`` (Redis re-delivers an
    unacknowledged job after this; must exceed the hard time limit), ``UNACKED_RESTORE_INTERVAL_S``
    (how often a worker sweeps for such jobs), ``PACS_USER`` /
    ``PACS_PASSWORD`` or ``PACS_TOKEN``, ``PACS_TIMEOUT_S``, ``PACS_MAX_BYTES``,
    ``ALGORITHM_NAME``, ``WORKER_CONCURRENCY``.
    """

    task_soft_time_limit_s: float = 540.0
    task_time_limit_s: float = 600.0
    max_retries: int = 8
    retry_backoff_s: float = 2.0
    retry_backoff_max_s: float = 300.0
    visibility_timeout_s: float = 3600.0
    unacked_restore_interval_s: float = 10.0
    pacs_user: str | None = None
    pacs_password: str | None = field(default=None, repr=False)
    pacs_token: str | None = field(default=None, repr=False)
    pacs_timeout_s: float = 60.0
    pacs_max_bytes: int = 2_000_000_000
    algorithm_name: str = "cac-fhir"
    worker_concurrency: int = 1

    def __post_init__(self) -> None:
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise ConfigurationError(
                f"{PREFIX}VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s:g}) must exceed "
                f"{PREFIX}TASK_TIME_LIMIT_S ({self.task_time_limit_s:g}), or Redis re-delivers "
                "jobs that are still running"
            )
        if self.task_soft_time_limit_s > self.task_time_limit_s:
            raise ConfigurationError(
                f"{PREFIX}TASK_SOFT_TIME_LIMIT_S must not exceed {PREFIX}TASK_TIME_LIMIT_S"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Read the settings from ``environ`` (default :data:`os.environ`).

        Raises
        ------
        ConfigurationError
            When a value is malformed or the limits are inconsistent.
        """
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            task_soft_time_limit_s=_number(
                env, "TASK_SOFT_TIME_LIMIT_S", d.task_soft_time_limit_s, 1
            ),
            task_time_limit_s=_number(env, "TASK_TIME_LIMIT_S", d.task_time_limit_s, 1),
            max_retries=int(_number(env, "MAX_RETRIES", d.max_retries)),
            retry_backoff_s=_number(env, "RETRY_BACKOFF_S", d.retry_backoff_s),
            retry_backoff_max_s=_number(env, "RETRY_BACKOFF_MAX_S", d.retry_backoff_max_s),
            visibility_timeout_s=_number(env, "VISIBILITY_TIMEOUT_S", d.visibility_timeout_s, 1),
            unacked_restore_interval_s=_number(
                env, "UNACKED_RESTORE_INTERVAL_S", d.unacked_restore_interval_s, 1
            ),
            pacs_user=env.get(PREFIX + "PACS_USER") or None,
            pacs_password=env.get(PREFIX + "PACS_PASSWORD") or None,
            pacs_token=env.get(PREFIX + "PACS_TOKEN") or None,
            pacs_timeout_s=_number(env, "PACS_TIMEOUT_S", d.pacs_timeout_s, 1),
            pacs_max_bytes=int(_number(env, "PACS_MAX_BYTES", d.pacs_max_bytes, 1)),
            algorithm_name=env.get(PREFIX + "ALGORITHM_NAME") or d.algorithm_name,
            worker_concurrency=int(_number(env, "WORKER_CONCURRENCY", d.worker_concurrency, 1)),
        )

    def retry_countdown_s(self, retries: int) -> float:
        """Exponential backoff: ``min(max, base * 2**retries)`` seconds."""
        return float(min(self.retry_backoff_max_s, self.retry_backoff_s * (2**retries)))
