"""What the console shows before any test changes anything, put in through the domain services on the server's
database file (the same services the API and the bot use):

- the ``starpromo demo`` history (a few days of campaigns, codes, attempts and paid purchases), so the charts are
  not empty and the screenshots look like the demo;
- a "Spring sale" campaign whose code two users redeemed and paid with (one for the user page's refund and
  roll-back, one left as it is);
- Telegram's side of every paid purchase in the fake Bot API, plus three payments Telegram took that no purchase
  here knows: the reconciliation job turns those into three open payment reviews.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from domain.campaigns import CampaignSpec
from domain.model import PromoType, PurchaseStatus, RedeemResult
from entrypoints.cli.demo_history import seed_history
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.browser.server import ConsoleServer

ACTOR = "cli:browser-tests"
SPRING = "Spring sale"
SPRING_CODE = "SPRING-SALE-20"
BUYER, BYSTANDER = 424_242, 434_343
# Three payments Telegram took that no purchase here knows -> three open reviews: one the resolve test resolves, one
# the bad-input test sends junk to, one that stays open (the screenshot, the viewer's page).
GHOST_BUYERS = (616_161, 626_262, 636_363)


@attrs.frozen
class Seeded:
    spring_campaign_id: int
    buyer: int  # refunded by the refund test
    purchase_id: int
    redemption_id: int
    bystander: int  # the same kind of paid purchase, never changed: the user page of the screenshot and the viewer
    review_ids: tuple[int, ...]


def paid_with_code(container: Container, user: int, code: str) -> tuple[int, int]:
    """``user`` redeems ``code`` and pays for 30 days of premium with the discount: (purchase id, redemption id)."""
    outcome = container.redemption_service().redeem(user, code, f"browser-{user}")
    assert outcome.result is RedeemResult.ACCEPTED and outcome.redemption is not None, outcome
    redemption_id = outcome.redemption.id
    assert redemption_id is not None
    checkout = container.checkout_service()
    purchase = checkout.init(user, "PREMIUM_30D", redemption_id)
    assert purchase.id is not None
    checkout.mark_invoice_sent(purchase.id)
    checkout.precheckout(purchase.id, purchase.final_stars_amount)
    checkout.successful_payment(purchase.id, f"browser-charge-{purchase.id}", purchase.final_stars_amount)
    return purchase.id, redemption_id


def seed(server: ConsoleServer) -> Seeded:
    container = build_container(Settings.from_env(server.env))
    try:
        now = datetime.now(UTC)
        seed_history(container, now)

        spring, _ = container.campaign_service().create(
            CampaignSpec(name=SPRING, promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20,
                         max_total_uses=1000, per_user_limit=1, valid_until=now + timedelta(days=30)),
            actor=ACTOR, code=SPRING_CODE)
        assert spring.id is not None
        purchase_id, redemption_id = paid_with_code(container, BUYER, SPRING_CODE)
        paid_with_code(container, BYSTANDER, SPRING_CODE)

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
        return Seeded(spring.id, BUYER, purchase_id, redemption_id, BYSTANDER, review_ids)
    finally:
        container.sql_engines().dispose()
