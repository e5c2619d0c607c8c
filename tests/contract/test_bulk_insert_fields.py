"""``PromoCodes.add_many`` stores every field exactly as ``add`` does (PostgreSQL streams the rows
with a hand-formatted text ``COPY``: escaping, NULLs, JSON and timestamps must survive it)."""

from __future__ import annotations

from datetime import timedelta, timezone

import attrs

from domain.model import CampaignStatus, PausedReason, PromoType
from tests.conftest import T0
from tests.contract.test_repositories import Factory, campaign


def test_add_many_round_trips_every_field_like_add(uow_factory: Factory) -> None:
    awkward = campaign(
        "1" * 64, campaign_name="tab\there\\back slash\nnew line\r% 'quote' \"dq\" ünïcode \\N",
        applicable_products=("PREMIUM_7D", "A\\B\tC"), valid_until=None, max_total_uses=None,
        status=CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL, used_total=0,
        valid_from=T0.astimezone(timezone(timedelta(hours=5))),
    )
    grant = campaign("2" * 64, promo_type=PromoType.PREMIUM_GRANT, discount_percent=None, grant_plan_code="PLAN",
                     grant_days=30, applicable_products=())
    plain = campaign("3" * 64)
    with uow_factory() as uow:
        ids = uow.promo_codes.add_many([awkward, grant, plain])
        uow.commit()
    with uow_factory() as uow:
        for given, new_id in zip([awkward, grant, plain], ids, strict=True):
            stored = uow.promo_codes.get(new_id)
            assert stored == attrs.evolve(given, id=new_id)
