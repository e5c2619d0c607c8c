"""The ``UnitOfWork`` on memory, SQLite and PostgreSQL: uncommitted work is rolled back, the unit goes on after a
constraint violation and a rollback, and (SQL) a naive datetime never reaches a table.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from domain.errors import DuplicateCampaignName, DuplicateCodeHash
from domain.model import AuditFilter, CampaignFilter, CodeFilter
from tests.builders import Factory, make_audit_entry, make_campaign, make_code, store_campaign_with_code


def test_uncommitted_work_is_rolled_back(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        campaign = uow.campaigns.add(make_campaign())
        uow.promo_codes.add(make_code(campaign))
        uow.audit.add(make_audit_entry())
    with uow_factory() as uow:
        assert uow.campaigns.search(CampaignFilter(), 10, None) == []
        assert uow.campaigns.get_by_name("Spring sale") is None
        assert uow.promo_codes.search(CodeFilter(), 10, None) == []
        assert uow.promo_codes.existing_hashes(["a" * 64]) == set()
        assert uow.audit.search(AuditFilter(), 10, None) == []


def test_after_a_constraint_violation_and_rollback_the_unit_of_work_goes_on(uow_factory: Factory) -> None:
    campaign, _ = store_campaign_with_code(uow_factory)
    with uow_factory() as uow:
        with pytest.raises(DuplicateCodeHash):
            uow.promo_codes.add(make_code(campaign))
        uow.rollback()
        uow.promo_codes.add(make_code(campaign, "b" * 64))
        uow.commit()
        with pytest.raises(DuplicateCampaignName):
            uow.campaigns.add(make_campaign())
        uow.rollback()
        uow.campaigns.add(make_campaign("Another"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.promo_codes.existing_hashes(["a" * 64, "b" * 64]) == {"a" * 64, "b" * 64}
        assert uow.campaigns.get_by_name("Another") is not None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_naive_datetimes_never_reach_a_table(uow_factory: Factory) -> None:
    with uow_factory() as uow, pytest.raises(Exception, match="naive"):
        uow.campaigns.add(make_campaign(valid_from=datetime(2026, 1, 1)))
