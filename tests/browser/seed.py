"""What the console shows before any test changes anything, put in through the domain services on the server's
database file (the same services the API and the bot use):

- the ``starpromo demo`` history (a few days of campaigns, codes, attempts and paid purchases), so the charts are
  not empty and the screenshots look like the demo;
- a "Spring sale" campaign whose code one user redeemed and paid with (the user page's refund and roll-back);
- Telegram's side of every paid purchase in the fake Bot API, plus three payments Telegram took that no purchase
  here knows: the reconciliation job turns those into three open payment reviews.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from domain.campaigns import CampaignSpec
from domain.model import PromoType, PurchaseStatus, RedeemResult
from entrypoints.cli.demo_history import seed_history
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.browser.server import ConsoleServer

ACTOR = "cli:browser-tests"
SPRING = "Spring sale"
SPRING_CODE = "SPRING-SALE-20"
BUYER = 424_242
# Three payments Telegram took that no purchase here knows -> three open reviews: one the resolve test resolves, one
# the bad-input test sends junk to, one that stays open (the screenshot, the viewer's page).
GHOST_BUYERS = (616_161, 626_262, 636_363)


@attrs.frozen
class Seeded:
    spring_campaign_id: int
    buyer: int
    purchase_id: int
    redemption_id: int
    review_ids: tuple[int, ...]


def seed(server: ConsoleServer) -> Seeded:
    container = build_container(Settings.from_env(server.env))
    try:
        now = datetime.now(UTC)
        seed_history(container, now)

        spring, _ = container.campaign_service().create(
            CampaignSpec(name=SPRING, promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20,
                         max_total_uses=1000, per_user_limit=1, valid_until=now + timedelta(days=30)),
            actor=ACTOR, code=SPRING_CODE)
        spring_id = spring.id
        assert isinstance(spring_id, int)
        outcome = container.redemption_service().redeem(BUYER, SPRING_CODE, f"browser-{BUYER}")
        assert outcome.result is RedeemResult.ACCEPTED and outcome.redemption is not None, outcome
        redemption_id = outcome.redemption.id
        assert redemption_id is not None
        checkout = container.checkout_service()
        purchase = checkout.init(BUYER, "PREMIUM_30D", redemption_id)
        assert purchase.id is not None
        checkout.mark_invoice_sent(purchase.id)
        checkout.precheckout(purchase.id, purchase.final_stars_amount)
        checkout.successful_payment(purchase.id, f"browser-charge-{purchase.id}", purchase.final_stars_amount)

        # Telegram's side: every payment (and refund) made here, and three it took that nobody here knows.
        with container.uow_factory()() as uow:
            settled = uow.purchases.settled_between(now - timedelta(days=30), datetime.now(UTC) + timedelta(1))
        for p in settled:
            if p.telegram_payment_charge_id is None or p.paid_at is None:
                continue
            server.bot_api.add_payment(p.telegram_payment_charge_id, p.final_stars_amount, p.user_id,
                                       payload=f"purchase:{p.id}", date=p.paid_at)
            if p.status is PurchaseStatus.REFUNDED and p.refunded_at is not None:
                server.bot_api.add_refund(p.telegram_payment_charge_id, p.final_stars_amount, p.user_id,
                                          date=p.refunded_at)
        for n, user in enumerate(GHOST_BUYERS):
            server.bot_api.add_payment(f"browser-ghost-{n}", 150, user, payload=f"purchase:{990_000 + n}",
                                       date=now - timedelta(hours=2, minutes=n))
        container.reconciliation_service().reconcile()
        reviews = container.payment_review_service().list(open_only=True, limit=50)
        review_ids = tuple(r.id for r in reviews if r.id is not None)
        assert len(review_ids) == len(GHOST_BUYERS), reviews
        return Seeded(spring_id, BUYER, purchase.id, redemption_id, review_ids)
    finally:
        container.sql_engines().dispose()
