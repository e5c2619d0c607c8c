"""A code's row with its campaign by id, and its redemptions newest first in pages (the ops console's code page)."""

from __future__ import annotations

import pytest

from domain.campaigns import CampaignService
from domain.errors import NotFound, ValidationError
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.unit.promo_setup import create, field_errors


def test_a_codes_redemptions_come_newest_first_in_pages(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService
) -> None:
    campaign, code = create(campaigns, "PAGED1", per_user_limit=1)
    other_campaign, other = create(campaigns, "OTHER1")
    assert code.id is not None and other.id is not None
    made = []
    for user in (1, 2, 3):
        outcome = redemptions.redeem(user, "PAGED1", f"key-{user}")
        assert outcome.redemption is not None
        made.append(outcome.redemption.id)
    assert redemptions.redeem(1, "OTHER1", "key-other").accepted

    first = codes.redemptions(code.id, 2)
    assert [r.id for r in first.items] == made[:0:-1] and first.next_cursor == made[1]
    rest = codes.redemptions(code.id, 2, first.next_cursor)
    assert [r.id for r in rest.items] == made[:1] and rest.next_cursor is None
    assert [r.user_id for r in codes.redemptions(other.id).items] == [1]

    found = codes.get_with_campaign(code.id)
    assert (found.code, found.campaign) == (codes.get(code.id), campaigns.get(campaign.id or 0).campaign)
    assert codes.get_with_campaign(other.id).campaign.id == other_campaign.id


def test_paging_input_is_checked_and_an_unknown_code_is_not_found(
    campaigns: CampaignService, codes: CodeService
) -> None:
    _, code = create(campaigns, "CHECK1")
    assert code.id is not None
    for limit in (0, 201, True):
        with pytest.raises(ValidationError) as bad:
            codes.redemptions(code.id, limit)
        assert field_errors(bad) == {"limit"}
    for cursor in (0, -1, False):
        with pytest.raises(ValidationError) as bad:
            codes.redemptions(code.id, 10, cursor)
        assert field_errors(bad) == {"cursor"}
    with pytest.raises(NotFound):
        codes.redemptions(code.id + 99)
    with pytest.raises(NotFound):
        codes.get_with_campaign(code.id + 99)
