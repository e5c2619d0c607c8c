"""A container on one family with Telegram pointed at the fake Bot API and alerts at a local receiver, and what the
payments tests check its alerts against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dependency_injector import providers

from adapters.memory import ManualClock
from adapters.sql.engine import POOL_SESSION
from domain.campaigns import CampaignSpec
from domain.model import PromoType, Purchase
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import run_job
from tests.conftest import PEPPER, T0
from tests.fakes.bot_api import FakeBotApi
from tests.integration.receivers import Receiver, receiving

RECONCILE = "run_payments_reconciliation"
RECOVER = "run_payment_recovery"
DIFF_EVENT = "payments_reconciliation_diff_detected"
REVIEW_EVENT = "payments_recovery_review_required"


class World:
    """A container on one family with Telegram pointed at the fake Bot API and alerts at a receiver."""

    def __init__(self, container: Container, clock: ManualClock, bot_api: FakeBotApi, alerts: Receiver) -> None:
        self.c = container
        self.clock = clock
        self.bot_api = bot_api
        self.alerts = alerts
        self._users = iter(range(800_000_001, 900_000_000))

    def user(self) -> int:
        return next(self._users)

    def discount_reservation(self, user_id: int, code: str, percent: int = 20) -> int:
        """A campaign of one code (named after it) and ``user_id``'s reservation of that code."""
        self.c.campaign_service().create(
            CampaignSpec(name=f"spring {code}", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=percent,
                         max_total_uses=10),
            actor="test", code=code)
        out = self.c.redemption_service().redeem(user_id, code, f"k-{user_id}-{code}")
        assert out.redemption is not None and out.redemption.id is not None
        return out.redemption.id

    def invoice(self, user_id: int, product: str = "PREMIUM_30D", redemption_id: int | None = None) -> Purchase:
        checkout = self.c.checkout_service()
        p = checkout.init(user_id, product, redemption_id)
        assert p.id is not None
        return checkout.mark_invoice_sent(p.id)

    def pay(self, purchase: Purchase, charge: str, telegram: bool = True, amount: int | None = None) -> Purchase:
        """Telegram takes the money (a transaction in getStarTransactions) and the webhook settles it."""
        assert purchase.id is not None
        if telegram:
            self.telegram_payment(purchase, charge, amount)
        return self.c.checkout_service().successful_payment(purchase.id, charge, purchase.final_stars_amount).purchase

    def telegram_payment(self, purchase: Purchase, charge: str, amount: int | None = None,
                         payload: str | None = None) -> None:
        self.bot_api.add_payment(charge, purchase.final_stars_amount if amount is None else amount, purchase.user_id,
                                 payload=payload or f"purchase:{purchase.id}", date=self.clock.now())

    def paid(self, product: str = "PREMIUM_30D", charge: str | None = None, telegram: bool = True) -> Purchase:
        user = self.user()
        return self.pay(self.invoice(user, product), charge or f"ch-{user}", telegram)

    def purchase(self, purchase_id: int | None) -> Purchase:
        assert purchase_id is not None
        return self.c.checkout_service().get(purchase_id)

    def run(self, job: str) -> dict[str, Any]:
        return run_job(job, self.c)

    def later(self, minutes: int = 20) -> None:
        self.clock.advance(minutes=minutes)


@contextmanager
def make_world(url: str, bot_api: FakeBotApi, database_pool_mode: str = POOL_SESSION,
               **alert_settings: Any) -> Iterator[World]:
    """``alert_settings``: more ``ops_alert_*`` settings (Slack, PagerDuty receivers) beside the generic one."""
    with receiving() as alerts:
        container = build_container(Settings(database_url=url, database_pool_mode=database_pool_mode,
                                             promo_secret_pepper=PEPPER, telegram_bot_token="1:test",
                                             telegram_api_url=bot_api.url, ops_alert_webhook_url=alerts.url,
                                             **alert_settings))
        clock = ManualClock(T0)
        container.clock.override(providers.Object(clock))
        with bot_api._lock:
            bot_api.star_transactions.clear()
        bot_api.reset_calls()
        bot_api.refunded_charges.clear()
        bot_api.clock = clock.now
        try:
            yield World(container, clock, bot_api, alerts)
        finally:
            bot_api.clock = None
            if container.settings().adapter_family == "sql":
                container.sql_engines().dispose()


def only_alert(world: World, event: str) -> dict[str, Any]:
    bodies = world.alerts.bodies
    assert len(bodies) == 1, bodies
    alert = bodies[0]
    assert alert["event"] == event
    assert alert["tier"] == "ops_l1"
    assert alert["severity"] == ("critical" if event == DIFF_EVENT else "error")
    assert len(alert["dedup_key"]) == 64
    return dict(alert)


def only_item(world: World, event: str) -> dict[str, Any]:
    """The one alert's one difference: the group's details (count 1) with the item's own fields on top."""
    alert = only_alert(world, event)
    details = dict(alert["details"])
    items = details.pop("items")
    assert (details["count"], len(items), details["items_trimmed"]) == (1, 1, 0), details
    assert items[0]["dedup_key"] == alert["dedup_key"]  # a single difference keeps its own key
    return {**details, **items[0]}
