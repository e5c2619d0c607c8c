"""``ReportService.campaign_stats`` on memory, SQLite and PostgreSQL: the grant days a campaign gave in the window
are its grants created in it (APPLIED, or REVOKED later) times its ``grant_days`` — the figure
``Redemptions.given_in_campaign`` gives, now read from the redemptions counted by status."""

from __future__ import annotations

from datetime import timedelta

from adapters.memory.clock import ManualClock
from domain.model import RedemptionStatus
from domain.reports import ReportService
from tests.builders import (
    Factory,
    make_campaign,
    make_grant_campaign,
    make_grant_redemption,
    make_redemption,
    store_campaign_with_code,
)
from tests.conftest import T0


def test_grant_days_given_count_applied_and_revoked_grants_created_in_the_window(uow_factory: Factory) -> None:
    gift, code = store_campaign_with_code(uow_factory, make_grant_campaign(per_user_limit=9), "a" * 64)
    sale, sale_code = store_campaign_with_code(uow_factory, make_campaign("Sale", per_user_limit=9), "b" * 64)
    assert gift.id is not None and sale.id is not None
    with uow_factory() as uow:
        for user, status, hours_ago in [(1, RedemptionStatus.APPLIED, 1), (2, RedemptionStatus.REVOKED, 2),
                                         (3, RedemptionStatus.EXPIRED, 1), (4, RedemptionStatus.APPLIED, 30)]:
            at = T0 - timedelta(hours=hours_ago)
            uow.redemptions.add(make_grant_redemption(code, user, f"g{user}", status=status, created_at=at,
                                                      updated_at=at))
        uow.redemptions.add(make_redemption(sale_code, 5, "s5", status=RedemptionStatus.APPLIED,
                                            created_at=T0 - timedelta(hours=1)))
        uow.commit()
    reports = ReportService(uow_factory, ManualClock(T0))
    with uow_factory() as uow:
        _, expected = uow.redemptions.given_in_campaign(gift.id, T0 - timedelta(hours=24))
    assert expected == 60
    assert reports.campaign_stats(gift.id, 24)["grant_days_given"] == expected
    assert reports.campaign_stats(gift.id, 1)["grant_days_given"] == 30
    assert reports.campaign_stats(gift.id, 48)["grant_days_given"] == 90
    assert reports.campaign_stats(sale.id, 24)["grant_days_given"] == 0
