"""What the two payments jobs (reconciliation and recovery, SPEC 6, issue 10) share: the window they
look at, their wiring, and a review item recorded once with its alert.

Each difference or review becomes one ``payment_reviews`` row keyed by a stable ``dedup_key``; the
alert is raised only by the run that inserted the row, after the commit — so a difference raises
exactly one alert however many runs see it, and the same key goes to PagerDuty as ``dedup_key``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from domain.alerts import AlertPolicy, RoutedAlert
from domain.checkout import CheckoutService
from domain.errors import ValidationError
from domain.model import PaymentReview
from domain.policy import PromoPolicy

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.notifier import Notifier
    from ports.payments import PaymentGateway
    from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.payments")

MIN_WINDOW_HOURS = 1
MAX_WINDOW_HOURS = 720


def validate_window_hours(value: object, field: str = "window_hours") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_WINDOW_HOURS <= value <= MAX_WINDOW_HOURS:
        raise ValidationError.single(field, f"must be an integer {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}")
    return value


class ReviewAlerting:
    """Records a review row per difference and raises its alert once (after the commit)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, notifier: Notifier | None,
                 alerts: AlertPolicy | None) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._notifier = notifier
        self._alerts = alerts or AlertPolicy.default()
        self.sent = 0
        self.failed = 0

    def record(self, event: str, kind: str, key: str, summary: str, details: dict[str, Any],
               purchase_id: int | None, charge_id: str | None, mark_purchase: bool = False) -> bool:
        """Insert the review row (and flag the purchase); raise the alert when the row is new."""
        now = self._clock.now()
        with self._uow() as uow:
            # Only link a purchase that exists: an unknown purchase id lives in the details.
            linked = purchase_id if purchase_id is not None and uow.purchases.get(purchase_id) else None
            review = uow.payment_reviews.add(PaymentReview(
                id=None, dedup_key=key, event=event, kind=kind, purchase_id=linked,
                telegram_payment_charge_id=charge_id, details=details, created_at=now))
            if review is None:
                return False
            if mark_purchase and linked is not None:
                uow.purchases.mark_review(linked, kind, now)
            uow.commit()
        log.warning(summary, extra={"event": event, "kind": kind, "review_id": review.id, "dedup_key": key,
                                    "purchase_id": linked})
        self._raise(self._alerts.route(event, summary, {"kind": kind, "review_id": review.id, **details}, now,
                                       dedup=key))
        return True

    def _raise(self, alert: RoutedAlert) -> None:
        if self._notifier is None:
            self.sent += 1
            return
        try:
            self._notifier.notify(alert)
        except Exception as exc:  # an alert channel must never fail the job that raised the alert
            self.failed += 1
            log.error("alert notification failed", extra={"event": "alert_notify_failed", "alert_event": alert.event,
                                                           "dedup_key": alert.dedup_key,
                                                           "error_type": type(exc).__name__})
            return
        self.sent += 1


class PaymentsJob:
    """What both payments jobs work with: the tables, the clock, Telegram, checkout, and alerting."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, gateway: PaymentGateway,
                 checkout: CheckoutService, notifier: Notifier | None = None, alerts: AlertPolicy | None = None,
                 policy: PromoPolicy | None = None) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._gateway = gateway
        self._checkout = checkout
        self._notifier = notifier
        self._alerts = alerts
        self._policy = policy or PromoPolicy()
