"""Set-up shared by the checkout tests: the buyers, and a reservation of a fresh discount campaign's code made through
the real campaign and redemption services."""

from __future__ import annotations

from itertools import count

from adapters.memory import InMemoryUnitOfWorkFactory
from domain.campaigns import CampaignService, CampaignSpec
from domain.model import PromoType, Redemption
from domain.redemption import RedemptionService

USER = 4242
OTHER = 777
ACTOR = "alice"
REFUNDED = "purchase.refunded"
_keys = count(1)


def reserve(campaigns: CampaignService, redemptions: RedemptionService, percent: int = 20,
            products: tuple[str, ...] = (), user_id: int = USER, code: str | None = None) -> Redemption:
    """A reservation of a fresh ``percent`` % campaign's code."""
    code = code or f"SAVE{percent}X{next(_keys)}"
    campaigns.create(CampaignSpec(name=f"discount {code}", promo_type=PromoType.PERCENT_DISCOUNT,
                                  discount_percent=percent, applicable_products=products), actor=ACTOR, code=code)
    outcome = redemptions.redeem(user_id, code, f"key-{next(_keys)}")
    assert outcome.accepted and outcome.redemption is not None
    return outcome.redemption


def reserve_stars(campaigns: CampaignService, redemptions: RedemptionService, stars: int,
                  user_id: int = USER) -> Redemption:
    """A reservation of a fresh campaign taking ``stars`` Stars off the base price."""
    code = f"STARS{stars}X{next(_keys)}"
    campaigns.create(CampaignSpec(name=f"stars {code}", promo_type=PromoType.STARS_DISCOUNT, discount_stars=stars),
                     actor=ACTOR, code=code)
    outcome = redemptions.redeem(user_id, code, f"key-{next(_keys)}")
    assert outcome.accepted and outcome.redemption is not None
    return outcome.redemption


def redemption(uow_factory: InMemoryUnitOfWorkFactory, redemption_id: int | None) -> Redemption:
    assert redemption_id is not None
    r = uow_factory.store.redemptions[redemption_id]
    return r
