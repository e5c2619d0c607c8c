"""``PromoCodes.get_many`` on memory, SQLite and PostgreSQL: the codes of many ids in one query (the support view of a
user lists the code of each of up to 50 redemptions)."""

from __future__ import annotations

from tests.builders import Factory, make_code, store_campaign_with_code, store_code


def test_get_many_returns_the_stored_codes_by_id_and_leaves_out_unknown_ids(uow_factory: Factory) -> None:
    campaign, first = store_campaign_with_code(uow_factory, code_hash="a" * 64)
    second = store_code(uow_factory, make_code(campaign, "b" * 64, code_prefix="BBBB"))
    assert first.id is not None and second.id is not None
    with uow_factory() as uow:
        found = uow.promo_codes.get_many([second.id, first.id, second.id, second.id + 1000])
        assert found == {first.id: uow.promo_codes.get(first.id), second.id: uow.promo_codes.get(second.id)}
        assert found[second.id].code_prefix == "BBBB"
        assert uow.promo_codes.get_many([]) == {}
