"""The ``AuditLog`` port (``audit_log``) on memory, SQLite and PostgreSQL: entries read back, search and paging,
and an entry that rolls back with the change it records.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from domain.model import AuditFilter, CampaignStatus, PausedReason
from tests.builders import Factory, make_audit_entry, store_campaign
from tests.conftest import T0
from tests.contract.conftest import LATER


def test_an_audit_entry_reads_back_with_its_details_and_an_id(uow_factory: Factory) -> None:
    details = {"changes": {"max_total_uses": [None, 100], "name": ["a", "ü \"quoted\""]}, "codes": [1, 2],
               "note": None}
    with uow_factory() as uow:
        entry = uow.audit.add(make_audit_entry(at=T0.astimezone(timezone(timedelta(hours=-3))), details=details))
        uow.commit()
    assert entry.id is not None
    with uow_factory() as uow:
        [read] = uow.audit.search(AuditFilter(), 10, None)
    assert (read.id, read.at, read.actor, read.action, read.target_type, read.target_id, read.details) == (
        entry.id, T0, "api", "campaign.status", "campaign", "1", details)
    assert read.at.utcoffset() == timedelta(0)


def test_audit_search_lists_newest_first_filters_by_actor_action_and_target_and_pages_below_a_cursor(
        uow_factory: Factory) -> None:
    with uow_factory() as uow:
        added = [uow.audit.add(entry) for entry in [
            make_audit_entry("campaign.create", actor="cli:ops", target_id="1"),
            make_audit_entry("campaign.status", actor="job:run_promo_bruteforce_guard", target_id="1"),
            make_audit_entry("code.status", actor="job:run_promo_bruteforce_guard", target_type="promo_code",
                             target_id="10"),
            make_audit_entry("campaign.change", actor="alice", target_id="2"),
            make_audit_entry("campaign.status", actor="alice", target_id="1"),
        ]]
        uow.commit()
    first, guard_campaign, guard_code, change, status = (e.id for e in added)

    def found(flt: AuditFilter, limit: int = 10, before_id: int | None = None) -> list[int | None]:
        with uow_factory() as uow:
            return [e.id for e in uow.audit.search(flt, limit, before_id)]

    assert found(AuditFilter()) == [status, change, guard_code, guard_campaign, first]
    assert found(AuditFilter(), 2) == [status, change]
    assert found(AuditFilter(), 2, change) == [guard_code, guard_campaign]
    assert found(AuditFilter(), 10, first) == []
    assert found(AuditFilter(actor="job:run_promo_bruteforce_guard")) == [guard_code, guard_campaign]
    assert found(AuditFilter(action="campaign.status")) == [status, guard_campaign]
    assert found(AuditFilter(target_type="campaign", target_id="1")) == [status, guard_campaign, first]
    assert found(AuditFilter(target_type="promo_code")) == [guard_code]
    assert found(AuditFilter(actor="alice", action="campaign.status", target_id="1")) == [status]
    assert found(AuditFilter(actor="nobody")) == []


def test_an_audit_entry_rolls_back_with_the_change_it_records(uow_factory: Factory) -> None:
    c = store_campaign(uow_factory)
    with uow_factory() as uow:
        uow.campaigns.set_status(c.id or 0, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, PausedReason.MANUAL,
                                 LATER)
        uow.audit.add(make_audit_entry(target_id=str(c.id)))
        uow.rollback()
        kept = uow.audit.add(make_audit_entry("campaign.change", target_id=str(c.id)))
        uow.commit()
    with uow_factory() as uow:
        assert [e.id for e in uow.audit.search(AuditFilter(), 10, None)] == [kept.id]
        assert uow.campaigns.get(c.id or 0) == c
