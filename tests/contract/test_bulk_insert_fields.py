"""``PromoCodes.add_many`` stores every field exactly as ``add`` does (PostgreSQL streams the rows
with a hand-formatted text ``COPY``: escaping, NULLs and timestamps must survive it)."""

from __future__ import annotations

from datetime import timedelta, timezone

import attrs

from domain.model import CampaignStatus, PausedReason, TargetScope
from tests.builders import Factory, make_code, make_grant_campaign, make_stars_campaign, store_campaign
from tests.conftest import T0

AWKWARD_NAME = "tab\there\\back slash\nnew line\r% 'quote' \"dq\" ünïcode \\N"


def test_add_many_round_trips_every_field_like_add(uow_factory: Factory) -> None:
    awkward_campaign = store_campaign(uow_factory, make_stars_campaign(
        AWKWARD_NAME, valid_until=None, target_scope=TargetScope.FIRST_PURCHASE_ONLY,
        valid_from=T0.astimezone(timezone(timedelta(hours=5)))))
    grant_campaign = store_campaign(uow_factory, make_grant_campaign(valid_until=T0 + timedelta(days=3)))
    awkward = make_code(
        awkward_campaign, "1" * 64, code_prefix="TAB1", max_total_uses=None, used_total=0,
        status=CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL,
        updated_at=T0.astimezone(timezone(timedelta(hours=-7, minutes=-30))),
    )
    capped = make_code(grant_campaign, "2" * 64, code_prefix="GIFT", max_total_uses=1, used_total=1,
                       status=CampaignStatus.DEPLETED)
    plain = make_code(grant_campaign, "3" * 64)
    with uow_factory() as uow:
        ids = uow.promo_codes.add_many([awkward, capped, plain])
        uow.commit()
    with uow_factory() as uow:
        for given, new_id in zip([awkward, capped, plain], ids, strict=True):
            stored = uow.promo_codes.get(new_id)
            assert stored == attrs.evolve(given, id=new_id)
    assert awkward.campaign_name == AWKWARD_NAME and awkward.valid_until is None
