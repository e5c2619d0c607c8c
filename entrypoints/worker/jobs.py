"""The maintenance jobs of SPEC 6, by name. RQ runs them by import path (``entrypoints.worker.jobs.NAME``);
``starpromo jobs run NAME`` and the in-process timer call ``run_job(NAME)``.

Each run builds (or reuses, per process) the container, runs one domain service, logs ONE JSON line
``{"event": "job_finished", "job": NAME, ...counts, "duration_ms"}`` and returns that summary. Every line logged
during the run carries ``job`` (and, under RQ, ``job_id``: see adapters.rq.queue.JobIdWorker), and the run is
counted in ``starpromo_job_runs_total{job,outcome}`` / ``starpromo_job_duration_seconds{job}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from adapters.jsonlog import log_context, log_event
from adapters.rq.schedule import PeriodicJob
from entrypoints.container import Container
from entrypoints.worker.process import process_container

log = logging.getLogger("starpromo.worker")

Runner = Callable[[Container], Any]


def _reservation_expiry(c: Container) -> Any:
    return c.maintenance_service().expire_reservations()


def _campaign_status_rollover(c: Container) -> Any:
    return c.maintenance_service().rollover_campaign_statuses()


def _bruteforce_guard(c: Container) -> Any:
    return c.maintenance_service().run_bruteforce_guard()


def _refund_promo_rollback(c: Container) -> Any:
    return c.maintenance_service().rollback_refunded_promos()


def _payment_invoice_expiry(c: Container) -> Any:
    return c.maintenance_service().expire_stale_invoices()


# Without TELEGRAM_BOT_TOKEN there is no Telegram to compare with: the payments jobs say so and do nothing.
NO_GATEWAY = {"skipped": True, "reason": "TELEGRAM_BOT_TOKEN is not set: no Telegram Star transactions to read"}


def _payments_reconciliation(c: Container) -> Any:
    if not c.payment_gateway.is_defined:
        return NO_GATEWAY
    return c.reconciliation_service().reconcile()


def _payment_recovery(c: Container) -> Any:
    if not c.payment_gateway.is_defined:
        return NO_GATEWAY
    return c.recovery_service().recover()


# Without TELEGRAM_BOT_TOKEN there is no bot and so no reply owed.
NO_BOT = {"skipped": True, "reason": "TELEGRAM_BOT_TOKEN is not set: no Telegram bot, no replies to deliver"}
# One sweep delivers for at most this long (the next one starts a minute after this one did).
OUTBOX_SWEEP_SECONDS = 30.0


def _telegram_outbox(c: Container) -> Any:
    """Deliver the replies the bot owes (SPEC 9): what is due, paced, for up to OUTBOX_SWEEP_SECONDS; then forget
    week-old SENT rows. Reports the counts and the backlog left."""
    if not c.telegram_bot.is_defined:
        return NO_BOT
    delivery = c.telegram_outbox_delivery()
    counts = delivery.drain(OUTBOX_SWEEP_SECONDS, wait_for_due=True)
    removed = delivery.housekeeping()
    with c.uow_factory()() as uow:
        backlog = uow.telegram_outbox.summary(c.clock().now())
    return {**counts.as_dict(), "sent_rows_removed": removed, **backlog.as_dict(c.clock().now())}


# name -> (runner, every N minutes) — the SPEC 6 table.
JOBS: dict[str, tuple[Runner, int]] = {
    "run_promo_reservation_expiry": (_reservation_expiry, 1),
    "run_promo_campaign_status_rollover": (_campaign_status_rollover, 10),
    "run_promo_bruteforce_guard": (_bruteforce_guard, 1),
    "run_refund_promo_rollback": (_refund_promo_rollback, 5),
    "run_payment_invoice_expiry": (_payment_invoice_expiry, 5),
    "run_payments_reconciliation": (_payments_reconciliation, 15),
    "run_payment_recovery": (_payment_recovery, 5),
    "run_telegram_outbox": (_telegram_outbox, 1),
}


def periodic_jobs() -> tuple[PeriodicJob, ...]:
    """The schedule: every job of ``JOBS`` at its SPEC 6 cadence, run by import path."""
    return tuple(PeriodicJob(name, f"{__name__}:{name}", every) for name, (_, every) in JOBS.items())


class UnknownJob(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown job {self.name!r}; known jobs: {', '.join(JOBS)}"


def _as_dict(summary: Any) -> dict[str, Any]:
    if summary is None:
        return {}
    if isinstance(summary, Mapping):
        return dict(summary)
    return dict(summary.as_dict())


def run_job(name: str, container: Container | None = None) -> dict[str, Any]:
    """Run job ``name`` once now; returns ``{"job", ...counts, "duration_ms"}``."""
    if name not in JOBS:
        raise UnknownJob(name)
    runner, _ = JOBS[name]
    c = container if container is not None else process_container()
    metrics = c.metrics()
    started = time.monotonic()
    with log_context(job=name):
        try:
            counts = _as_dict(runner(c))
        except Exception as exc:
            metrics.job_finished(name, "error", time.monotonic() - started)
            log.exception("job failed", extra={"event": "job_failed", "job": name, "error_type": type(exc).__name__,
                                               "duration_ms": int((time.monotonic() - started) * 1000)})
            raise
        metrics.job_finished(name, "skipped" if counts.get("skipped") is True else "ok", time.monotonic() - started)
        summary = {"job": name, **{k: v for k, v in counts.items() if k not in ("job", "event")},
                   "duration_ms": int((time.monotonic() - started) * 1000)}
        log_event(log, "job_finished", **summary)
    return summary


def run_promo_reservation_expiry() -> dict[str, Any]:
    return run_job("run_promo_reservation_expiry")


def run_promo_campaign_status_rollover() -> dict[str, Any]:
    return run_job("run_promo_campaign_status_rollover")


def run_promo_bruteforce_guard() -> dict[str, Any]:
    return run_job("run_promo_bruteforce_guard")


def run_refund_promo_rollback() -> dict[str, Any]:
    return run_job("run_refund_promo_rollback")


def run_payment_invoice_expiry() -> dict[str, Any]:
    return run_job("run_payment_invoice_expiry")


def run_payments_reconciliation() -> dict[str, Any]:
    return run_job("run_payments_reconciliation")


def run_payment_recovery() -> dict[str, Any]:
    return run_job("run_payment_recovery")


def run_telegram_outbox() -> dict[str, Any]:
    return run_job("run_telegram_outbox")
