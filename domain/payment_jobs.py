"""What the two payments jobs (reconciliation and recovery, SPEC 6, issue 10) share: the window they
look at, their wiring, and a review item recorded once with its alert.

Each difference or review becomes one ``payment_reviews`` row keyed by a stable ``dedup_key``; only the
run that inserted the row alerts about it, after the commit — so a difference is alerted once however
many runs see it. No alert storms (SPEC 8, issue 17): a run raises one alert per event and kind for
all the rows it inserted (``domain.alert_groups``), carrying their count and a bounded sample.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from domain.alert_groups import AlertItem, by_kind, grouped_alert
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


@attrs.frozen
class ReviewItem:
    """One difference or unsafe payment a human must look at: a ``payment_reviews`` row to be."""

    kind: str
    key: str  # the stable dedup_key of this very difference
    summary: str
    details: dict[str, Any]
    purchase_id: int | None = None  # a purchase that exists (the row links to it); an unknown id goes in details
    charge_id: str | None = None


# What a job says about a group of new items of one kind: its headline (None: the default) and extra details.
Describe = Callable[[str, Sequence[AlertItem]], tuple[str | None, Mapping[str, Any]]]


class ReviewAlerting:
    """Records a review row per difference, then raises one alert per kind for the rows that were new."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, notifier: Notifier | None,
                 alerts: AlertPolicy | None) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._notifier = notifier
        self._alerts = alerts or AlertPolicy.default()
        self.sent = 0
        self.failed = 0

    def record(self, event: str, items: Sequence[ReviewItem], context: Mapping[str, Any] | None = None,
               mark_purchase: bool = False, describe: Describe | None = None,
               alert_context: Mapping[str, Any] | None = None) -> set[str]:
        """Insert the review rows (and flag their purchases) in one transaction; a key already there is not
        new. Then raise one alert per kind of the new ones. ``context`` is kept with every row and sent once
        per alert, ``alert_context`` only sent once per alert. Returns the keys that were new."""
        if not items:
            return set()
        now = self._clock.now()
        extra = dict(context or {})
        by_key = {item.key: item for item in items}
        with self._uow() as uow:
            # Most runs see the differences earlier runs recorded: those are not sent again. The rest go in a few
            # statements (a race with another run is settled by the unique key: the row is new for one of them).
            for key in uow.payment_reviews.existing_keys(list(by_key)):
                del by_key[key]
            added = uow.payment_reviews.add_many([PaymentReview(
                id=None, dedup_key=item.key, event=event, kind=item.kind, purchase_id=item.purchase_id,
                telegram_payment_charge_id=item.charge_id, details={**item.details, **extra}, created_at=now)
                for item in by_key.values()])
            if mark_purchase:
                for review in added:
                    if review.purchase_id is not None:
                        uow.purchases.mark_review(review.purchase_id, review.kind, now)
            uow.commit()
        new = [(by_key[review.dedup_key], review.id) for review in added]
        new.sort(key=lambda pair: pair[1] or 0)  # in the order found
        groups = by_kind(AlertItem(item.kind, item.key, item.summary,
                                   {"review_id": review_id, "purchase_id": item.purchase_id,
                                    "telegram_payment_charge_id": item.charge_id, **item.details})
                         for item, review_id in new)
        for kind, group in groups.items():
            # One line per kind, not per row (the rows are the record): a storm of differences is no log storm.
            log.warning(group[0].summary if len(group) == 1 else f"{len(group)} new {kind} review items",
                        extra={"event": event, "kind": kind, "count": len(group),
                               "review_ids": [group[0].details["review_id"], group[-1].details["review_id"]],
                               "dedup_key": group[0].key, "purchase_id": group[0].details["purchase_id"]})
            headline, more = describe(kind, group) if describe is not None else (None, {})
            self._raise(grouped_alert(self._alerts, event, kind, group, now, headline,
                                      {**extra, **(alert_context or {}), **more}))
        return {item.key for item, _ in new}

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
