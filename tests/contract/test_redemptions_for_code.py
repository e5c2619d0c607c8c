"""``Redemptions.for_code`` on memory, SQLite and PostgreSQL: one code's redemptions, newest first, paged by id (the
ops console's code page)."""

from __future__ import annotations

from domain.model import RedemptionStatus
from tests.builders import Factory, make_campaign, make_code, make_redemption, store_campaign_with_code, store_code
from tests.contract.conftest import ids


def test_a_codes_redemptions_come_newest_first_and_page_below_an_id(uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=5), "a" * 64)
    other = store_code(uow_factory, make_code(campaign, "b" * 64, code_prefix="OTHR"))
    assert code.id is not None and other.id is not None
    with uow_factory() as uow:
        mine = [uow.redemptions.add(make_redemption(code, user_id=u, key=f"k{u}")) for u in (1, 2, 3)]
        uow.redemptions.add(make_redemption(other, user_id=1, key="o1", user_slot=2))
        expired = uow.redemptions.add(make_redemption(code, user_id=9, key="k9", status=RedemptionStatus.EXPIRED))
        uow.commit()
    newest_first = [*ids([expired]), *reversed(ids(mine))]
    with uow_factory() as uow:
        assert ids(uow.redemptions.for_code(code.id, 10)) == newest_first
        assert ids(uow.redemptions.for_code(code.id, 2)) == newest_first[:2]
        assert ids(uow.redemptions.for_code(code.id, 10, before_id=newest_first[1])) == newest_first[2:]
        assert uow.redemptions.for_code(code.id, 0) == []
        assert [r.user_id for r in uow.redemptions.for_code(other.id, 10)] == [1]
        assert uow.redemptions.for_code(other.id + 1000, 10) == []
