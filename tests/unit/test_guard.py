"""SPEC 6: the brute-force guard (hash rule and prefix-enumeration rule) and its alert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryNotifier, InMemoryUnitOfWorkFactory, ManualClock
from domain.alerts import AlertPolicy, RoutedAlert
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher, code_prefix, normalize_code
from domain.maintenance import MaintenanceService
from domain.model import Attempt, Campaign, CampaignStatus, PausedReason, PromoType, RedeemResult
from domain.policy import PromoPolicy


@pytest.fixture
def notifier() -> InMemoryNotifier:
    return InMemoryNotifier()


@pytest.fixture
def guard(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, notifier: InMemoryNotifier) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, PromoPolicy(), notifier)


def campaign(campaigns: CampaignService, code: str) -> Campaign:
    return campaigns.create(CampaignSpec(campaign_name="guarded", promo_type=PromoType.PERCENT_DISCOUNT,
                                         discount_percent=10), code)


def failures(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, code: str,
             count: int, users: int, result: RedeemResult = RedeemResult.ALREADY_USED,
             ago: timedelta = timedelta(minutes=1)) -> None:
    normalized = normalize_code(code)
    with uow_factory() as uow:
        for i in range(count):
            uow.attempts.add(Attempt(user_id=1000 + i % users, normalized_code_hash=hasher.hash(normalized),
                                     code_prefix=code_prefix(normalized), result=result,
                                     attempted_at=clock.now() - ago))
        uow.commit()


def status(uow_factory: InMemoryUnitOfWorkFactory, c: Campaign) -> tuple[CampaignStatus, PausedReason | None]:
    assert c.id is not None
    stored = uow_factory.store.campaigns[c.id]
    return stored.status, stored.paused_reason


# --- hash rule ------------------------------------------------------------------------------------------


def test_twenty_failures_from_five_users_pause_the_campaign_and_alert_once(
    guard: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    target = campaign(campaigns, "WINTER25")
    bystander = campaign(campaigns, "SUMMER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    summary = guard.run_bruteforce_guard()
    assert summary.as_dict() == {"hash_candidates": 1, "prefix_candidates": 0, "paused": [target.id],
                                 "alerts_sent": 1, "alerts_failed": 0}
    assert status(uow_factory, target) == (CampaignStatus.PAUSED, PausedReason.AUTO_BRUTEFORCE)
    assert status(uow_factory, bystander) == (CampaignStatus.ACTIVE, None)
    [alert] = notifier.alerts
    assert (alert.event, alert.severity, alert.tier, alert.channels) == (
        "promo_campaign_auto_paused", "warning", "ops_l2", ("slack", "generic"))
    assert alert.details == {"promo_code_id": target.id, "code_prefix": "WINT", "failures": 20,
                             "distinct_users": 5, "rule": "hash"}
    assert alert.occurred_at == clock.now() and "WINTER25" not in alert.summary
    # the attack goes on: the campaign is already paused, so no second alert
    failures(uow_factory, clock, hasher, "WINTER25", 30, 10)
    again = guard.run_bruteforce_guard()
    assert again.paused == [] and again.hash_candidates == 1
    assert len(notifier.alerts) == 1


@pytest.mark.parametrize(("count", "users", "ago"), [
    (19, 5, timedelta(minutes=1)),   # too few failures
    (20, 4, timedelta(minutes=1)),   # too few users
    (20, 5, timedelta(minutes=10, seconds=1)),  # outside the 10 minute window
])
def test_below_the_thresholds_nothing_is_paused(
    guard: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier, count: int, users: int, ago: timedelta,
) -> None:
    target = campaign(campaigns, "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", count, users, ago=ago)
    assert guard.run_bruteforce_guard().paused == []
    assert status(uow_factory, target) == (CampaignStatus.ACTIVE, None)
    assert notifier.alerts == []


def test_accepted_attempts_do_not_count_as_failures(
    guard: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher,
) -> None:
    campaign(campaigns, "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 19, 5)
    failures(uow_factory, clock, hasher, "WINTER25", 10, 10, result=RedeemResult.ACCEPTED)
    failures(uow_factory, clock, hasher, "WINTER25", 10, 10, result=RedeemResult.RATE_LIMITED)
    assert guard.run_bruteforce_guard().paused == []


def test_a_manually_resumed_campaign_under_renewed_attack_is_paused_and_alerted_again(
    guard: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    target = campaign(campaigns, "WINTER25")
    assert target.id is not None
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    guard.run_bruteforce_guard()
    clock.advance(minutes=30)
    campaigns.set_status(target.id, CampaignStatus.ACTIVE)
    assert guard.run_bruteforce_guard().paused == []  # the old failures left the window
    failures(uow_factory, clock, hasher, "WINTER25", 25, 6)
    assert guard.run_bruteforce_guard().paused == [target.id]
    first, second = notifier.alerts
    assert first.dedup_key != second.dedup_key and second.details["failures"] == 25


def test_a_manually_paused_campaign_is_left_alone(
    guard: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    target = campaign(campaigns, "WINTER25")
    assert target.id is not None
    campaigns.set_status(target.id, CampaignStatus.PAUSED)
    failures(uow_factory, clock, hasher, "WINTER25", 40, 8)
    assert guard.run_bruteforce_guard().paused == []
    assert status(uow_factory, target) == (CampaignStatus.PAUSED, PausedReason.MANUAL)
    assert notifier.alerts == []


def test_thresholds_are_configurable(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, hasher: CodeHasher,
) -> None:
    target = campaign(campaigns, "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 3, 2, ago=timedelta(minutes=50))
    strict = MaintenanceService(uow_factory, clock, PromoPolicy(guard_window_minutes=60, guard_min_failures=3,
                                                                guard_min_users=2))
    assert strict.run_bruteforce_guard().paused == [target.id]


# --- prefix rule --------------------------------------------------------------------------------------------


def test_enumerating_a_prefix_pauses_the_active_campaigns_of_that_prefix(
    guard: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    a = campaign(campaigns, "SALEAAAA1")
    b = campaign(campaigns, "SALEBBBB2")
    manual = campaign(campaigns, "SALECCCC3")
    other = campaign(campaigns, "GIFTAAAA1")
    assert manual.id is not None
    campaigns.set_status(manual.id, CampaignStatus.PAUSED)
    for i in range(50):  # distinct guessed codes: no single hash stands out
        failures(uow_factory, clock, hasher, f"SALEZZ{i:03d}", 1, 1, result=RedeemResult.INVALID)
    summary = guard.run_bruteforce_guard()
    assert (summary.hash_candidates, summary.prefix_candidates) == (0, 1)
    assert sorted(summary.paused) == sorted([a.id, b.id])
    assert status(uow_factory, a) == status(uow_factory, b) == (CampaignStatus.PAUSED, PausedReason.AUTO_BRUTEFORCE)
    assert status(uow_factory, manual) == (CampaignStatus.PAUSED, PausedReason.MANUAL)
    assert status(uow_factory, other) == (CampaignStatus.ACTIVE, None)
    assert {(x.details["rule"], x.details["code_prefix"], x.details["failures"]) for x in notifier.alerts} == {
        ("prefix", "SALE", 50)}
    assert len(notifier.alerts) == 2
    assert guard.run_bruteforce_guard().paused == [] and len(notifier.alerts) == 2


def test_49_invalid_attempts_on_a_prefix_pause_nothing(
    guard: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher,
) -> None:
    campaign(campaigns, "SALEAAAA1")
    for i in range(49):
        failures(uow_factory, clock, hasher, f"SALEZZ{i:03d}", 1, 1, result=RedeemResult.INVALID)
    failures(uow_factory, clock, hasher, "SALEQQ999", 5, 5, result=RedeemResult.EXPIRED)  # not INVALID
    assert guard.run_bruteforce_guard().paused == []


# --- alert delivery never fails the job ------------------------------------------------------------------------


class ExplodingNotifier:
    def __init__(self) -> None:
        self.calls = 0

    def notify(self, alert: RoutedAlert) -> None:
        self.calls += 1
        raise ConnectionError("alert channel down")


def test_a_failing_notifier_is_counted_and_the_pause_stays_committed(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, hasher: CodeHasher,
) -> None:
    target = campaign(campaigns, "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    exploding = ExplodingNotifier()
    summary = MaintenanceService(uow_factory, clock, PromoPolicy(), exploding).run_bruteforce_guard()
    assert summary.paused == [target.id] and (summary.alerts_sent, summary.alerts_failed) == (0, 1)
    assert exploding.calls == 1
    assert status(uow_factory, target) == (CampaignStatus.PAUSED, PausedReason.AUTO_BRUTEFORCE)


def test_the_alert_is_raised_after_the_commit(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, hasher: CodeHasher,
) -> None:
    target = campaign(campaigns, "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    seen: list[CampaignStatus] = []

    class ReadingNotifier:
        def notify(self, alert: RoutedAlert) -> None:
            # Another thread could not read the campaign if the job still held its unit of work open.
            import threading

            def read() -> None:
                with uow_factory() as uow:
                    c = uow.promo_codes.get(alert.details["promo_code_id"])
                    assert c is not None
                    seen.append(c.status)

            t = threading.Thread(target=read)
            t.start()
            t.join(timeout=2)
            blocked.append(t.is_alive())

    blocked: list[bool] = []
    summary = MaintenanceService(uow_factory, clock, PromoPolicy(), ReadingNotifier()).run_bruteforce_guard()
    assert blocked == [False], "the notifier ran inside the job's unit of work"
    assert seen == [CampaignStatus.PAUSED] and summary.paused == [target.id]


def test_the_routing_policy_decides_severity_and_channels(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, hasher: CodeHasher,
    notifier: InMemoryNotifier,
) -> None:
    campaign(campaigns, "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    policy = AlertPolicy.from_json('{"promo_campaign_auto_paused": {"severity": "critical", "channels": '
                                   '["pagerduty"]}}', ["pagerduty", "slack"])
    MaintenanceService(uow_factory, clock, PromoPolicy(), notifier, policy).run_bruteforce_guard()
    [alert] = notifier.alerts
    assert (alert.severity, alert.channels, alert.tier) == ("critical", ("pagerduty",), "ops_l2")
