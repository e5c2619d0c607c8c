"""SPEC 6: the brute-force guard. The hash rule pauses one abused code (its campaign and sibling codes stay
usable); the prefix rule pauses a whole campaign whose batch is being enumerated. Each automatic pause writes
one audit entry by ``job:run_promo_bruteforce_guard`` (no plaintext code in it) and raises one alert."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from adapters.memory import InMemoryNotifier, InMemoryUnitOfWorkFactory, ManualClock
from domain.alerts import AlertPolicy, RoutedAlert
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher, code_prefix, normalize_code
from domain.maintenance import MaintenanceService
from domain.model import (
    Attempt,
    AuditEntry,
    Campaign,
    CampaignStatus,
    PausedReason,
    PromoCode,
    PromoType,
    RedeemResult,
)
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService

GUARD = "job:run_promo_bruteforce_guard"
# A user who never failed: redeems by them show what the guard left usable.
BYSTANDER = 1


@pytest.fixture
def notifier() -> InMemoryNotifier:
    return InMemoryNotifier()


@pytest.fixture
def guard(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, notifier: InMemoryNotifier) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, PromoPolicy(), notifier)


@pytest.fixture
def codes(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> CodeService:
    return CodeService(uow_factory, clock, hasher)


def campaign(campaigns: CampaignService, codes: CodeService, name: str, *plaintexts: str
             ) -> tuple[Campaign, list[PromoCode]]:
    """A 10 % discount campaign with ``plaintexts`` as its codes (up to 10 redemptions per user)."""
    first, *more = plaintexts
    created, code = campaigns.create(CampaignSpec(name=name, promo_type=PromoType.PERCENT_DISCOUNT,
                                                  discount_percent=10, per_user_limit=10), actor="alice", code=first)
    assert created.id is not None and code is not None
    return created, [code] + [codes.add(created.id, p, actor="alice") for p in more]


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


def enumerate_prefix(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, prefix: str,
                     count: int) -> None:
    """``count`` distinct guessed codes starting with ``prefix``, each INVALID once: no single hash stands out."""
    for i in range(count):
        failures(uow_factory, clock, hasher, f"{prefix}ZZ{i:03d}", 1, 1, result=RedeemResult.INVALID)


def code_state(uow_factory: InMemoryUnitOfWorkFactory, code: PromoCode) -> tuple[CampaignStatus, PausedReason | None]:
    assert code.id is not None
    stored = uow_factory.store.codes[code.id]
    return stored.status, stored.paused_reason


def campaign_state(uow_factory: InMemoryUnitOfWorkFactory, c: Campaign) -> tuple[CampaignStatus, PausedReason | None]:
    assert c.id is not None
    stored = uow_factory.store.campaigns[c.id]
    return stored.status, stored.paused_reason


def guard_entries(uow_factory: InMemoryUnitOfWorkFactory) -> list[AuditEntry]:
    return [e for e in uow_factory.store.audit if e.actor == GUARD]


def redeem(redemptions: RedemptionService, code: str, key: str, user: int = BYSTANDER) -> RedeemResult:
    return redemptions.redeem(user, code, key).result


# --- hash rule: one code ------------------------------------------------------------------------------------


def test_twenty_failures_from_five_users_pause_only_that_code_and_alert_once(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    winter, [abused, sibling] = campaign(campaigns, codes, "guarded", "WINTER25", "WINTER26")
    _, [bystander] = campaign(campaigns, codes, "bystander", "SUMMER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)

    summary = guard.run_bruteforce_guard()

    assert summary.as_dict() == {"hash_candidates": 1, "prefix_candidates": 0, "paused": [abused.id],
                                 "paused_campaigns": [], "alerts_sent": 1, "alerts_failed": 0}
    assert code_state(uow_factory, abused) == (CampaignStatus.PAUSED, PausedReason.AUTO_BRUTEFORCE)
    assert code_state(uow_factory, sibling) == code_state(uow_factory, bystander) == (CampaignStatus.ACTIVE, None)
    assert campaign_state(uow_factory, winter) == (CampaignStatus.ACTIVE, None)
    # the abused code answers PAUSED; the rest of its campaign still redeems
    assert redeem(redemptions, "WINTER25", "a") is RedeemResult.PAUSED
    assert redeem(redemptions, "WINTER26", "b") is RedeemResult.ACCEPTED
    assert redeem(redemptions, "SUMMER25", "c") is RedeemResult.ACCEPTED

    [alert] = notifier.alerts
    assert (alert.event, alert.severity, alert.tier, alert.channels) == (
        "promo_campaign_auto_paused", "warning", "ops_l2", ("slack", "generic"))
    expected = {"promo_code_id": abused.id, "campaign_id": winter.id, "campaign_name": "guarded",
                "code_prefix": "WINT", "failures": 20, "distinct_users": 5, "rule": "hash"}
    assert alert.details == {"kind": "hash", "count": 1, "items_trimmed": 0,  # one alert per rule and run
                             "items": [{"dedup_key": alert.dedup_key, "summary": alert.summary, **expected}]}
    assert alert.occurred_at == clock.now() and "WINTER25" not in alert.summary
    [entry] = guard_entries(uow_factory)
    assert (entry.action, entry.target_type, entry.target_id, entry.at) == (
        "code.auto_paused", "promo_code", str(abused.id), clock.now())
    assert entry.details == expected and "WINTER25" not in repr(entry)

    # the attack goes on: the code is already paused, so no second pause, audit entry or alert
    failures(uow_factory, clock, hasher, "WINTER25", 30, 10)
    again = guard.run_bruteforce_guard()
    assert again.paused == [] and again.hash_candidates == 1
    assert len(notifier.alerts) == 1 and len(guard_entries(uow_factory)) == 1


@pytest.mark.parametrize(("count", "users", "ago"), [
    (19, 5, timedelta(minutes=1)),   # too few failures
    (20, 4, timedelta(minutes=1)),   # too few users
    (20, 5, timedelta(minutes=10, seconds=1)),  # outside the 10 minute window
])
def test_below_the_thresholds_nothing_is_paused(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier, count: int, users: int, ago: timedelta,
) -> None:
    _, [target] = campaign(campaigns, codes, "guarded", "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", count, users, ago=ago)
    assert guard.run_bruteforce_guard().paused == []
    assert code_state(uow_factory, target) == (CampaignStatus.ACTIVE, None)
    assert notifier.alerts == [] and guard_entries(uow_factory) == []


def test_accepted_and_rate_limited_attempts_do_not_count_as_failures(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher,
) -> None:
    campaign(campaigns, codes, "guarded", "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 19, 5)
    failures(uow_factory, clock, hasher, "WINTER25", 10, 10, result=RedeemResult.ACCEPTED)
    failures(uow_factory, clock, hasher, "WINTER25", 10, 10, result=RedeemResult.RATE_LIMITED)
    assert guard.run_bruteforce_guard().paused == []


def test_a_manually_resumed_code_under_renewed_attack_is_paused_and_alerted_again(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    _, [target] = campaign(campaigns, codes, "guarded", "WINTER25")
    assert target.id is not None
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    guard.run_bruteforce_guard()
    clock.advance(minutes=30)
    codes.set_status(target.id, CampaignStatus.ACTIVE, actor="alice")
    resumed = uow_factory.store.audit[-1]
    assert (resumed.actor, resumed.action, resumed.details["previous_paused_reason"]) == (
        "alice", "code.resumed", "AUTO_BRUTEFORCE")
    assert guard.run_bruteforce_guard().paused == []  # the old failures left the window
    failures(uow_factory, clock, hasher, "WINTER25", 25, 6)
    assert guard.run_bruteforce_guard().paused == [target.id]
    first, second = notifier.alerts
    assert first.dedup_key != second.dedup_key and second.details["items"][0]["failures"] == 25
    assert [e.details["failures"] for e in guard_entries(uow_factory)] == [20, 25]


def test_a_manually_paused_code_is_left_alone(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    _, [target] = campaign(campaigns, codes, "guarded", "WINTER25")
    assert target.id is not None
    codes.set_status(target.id, CampaignStatus.PAUSED, actor="alice")
    failures(uow_factory, clock, hasher, "WINTER25", 40, 8)
    assert guard.run_bruteforce_guard().paused == []
    assert code_state(uow_factory, target) == (CampaignStatus.PAUSED, PausedReason.MANUAL)
    assert notifier.alerts == [] and guard_entries(uow_factory) == []


def test_thresholds_are_configurable(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, codes: CodeService,
    hasher: CodeHasher,
) -> None:
    _, [target] = campaign(campaigns, codes, "guarded", "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 3, 2, ago=timedelta(minutes=50))
    strict = MaintenanceService(uow_factory, clock, PromoPolicy(guard_window_minutes=60, guard_min_failures=3,
                                                                guard_min_users=2))
    assert strict.run_bruteforce_guard().paused == [target.id]


# --- prefix rule: the whole campaign ---------------------------------------------------------------------------


def test_enumerating_a_prefix_pauses_the_active_campaigns_with_codes_of_that_prefix(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    giveaway, giveaway_codes = campaign(campaigns, codes, "giveaway", "SALEAAAA1", "SALEBBBB2", "SALECCCC3")
    second, _ = campaign(campaigns, codes, "second", "SALEDDDD4")
    manual, _ = campaign(campaigns, codes, "manual", "SALEEEEE5")
    other, _ = campaign(campaigns, codes, "other", "GIFTAAAA1")
    assert manual.id is not None and giveaway.id is not None and second.id is not None
    campaigns.set_status(manual.id, CampaignStatus.PAUSED, actor="alice")
    before = len(uow_factory.store.audit)
    enumerate_prefix(uow_factory, clock, hasher, "SALE", 50)

    summary = guard.run_bruteforce_guard()

    assert (summary.hash_candidates, summary.prefix_candidates) == (0, 1)
    assert summary.paused == [] and sorted(summary.paused_campaigns) == sorted([giveaway.id, second.id])
    paused = (CampaignStatus.PAUSED, PausedReason.AUTO_BRUTEFORCE)
    assert campaign_state(uow_factory, giveaway) == campaign_state(uow_factory, second) == paused
    assert campaign_state(uow_factory, manual) == (CampaignStatus.PAUSED, PausedReason.MANUAL)
    assert campaign_state(uow_factory, other) == (CampaignStatus.ACTIVE, None)
    # the codes keep their own status; every one of them answers PAUSED through its campaign
    assert {code_state(uow_factory, c) for c in giveaway_codes} == {(CampaignStatus.ACTIVE, None)}
    for i, plaintext in enumerate(["SALEAAAA1", "SALEBBBB2", "SALECCCC3", "SALEDDDD4"]):
        assert redeem(redemptions, plaintext, f"k{i}") is RedeemResult.PAUSED
    assert redeem(redemptions, "GIFTAAAA1", "gift") is RedeemResult.ACCEPTED

    [alert] = notifier.alerts  # two pauses of one rule in one run: one alert carrying both (no alert storms)
    assert (alert.details["kind"], alert.details["count"]) == ("prefix", 2)
    assert alert.summary.startswith("2 campaigns auto-paused by the brute-force guard (prefix rule); first: ")
    assert {(i["campaign_id"], i["rule"], i["code_prefix"], i["failures"]) for i in alert.details["items"]} == {
        (giveaway.id, "prefix", "SALE", 50), (second.id, "prefix", "SALE", 50)}
    assert all("promo_code_id" not in i for i in alert.details["items"])
    entries = guard_entries(uow_factory)
    assert len(uow_factory.store.audit) == before + 2 and len(entries) == 2
    assert sorted((e.action, e.target_type, e.target_id) for e in entries) == sorted(
        ("campaign.auto_paused", "campaign", str(c.id)) for c in (giveaway, second))
    assert not any(p in repr(e) for e in entries for p in ("SALEAAAA1", "SALEBBBB2", "SALECCCC3", "SALEDDDD4"))

    assert guard.run_bruteforce_guard().paused_campaigns == []  # paused already: no second pause or alert
    assert len(notifier.alerts) == 1 and len(guard_entries(uow_factory)) == 2


def test_49_invalid_attempts_on_a_prefix_pause_nothing(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher,
) -> None:
    campaign(campaigns, codes, "giveaway", "SALEAAAA1")
    enumerate_prefix(uow_factory, clock, hasher, "SALE", 49)
    failures(uow_factory, clock, hasher, "SALEQQ999", 5, 5, result=RedeemResult.EXPIRED)  # not INVALID
    summary = guard.run_bruteforce_guard()
    assert summary.paused == [] and summary.paused_campaigns == [] and guard_entries(uow_factory) == []


def test_both_rules_in_one_run_each_pause_is_one_entry_and_one_alert(
    guard: MaintenanceService, campaigns: CampaignService, codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    _, [abused] = campaign(campaigns, codes, "influencer", "WINTER25")
    giveaway, _ = campaign(campaigns, codes, "giveaway", "SALEAAAA1", "SALEBBBB2")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    enumerate_prefix(uow_factory, clock, hasher, "SALE", 50)
    summary = guard.run_bruteforce_guard()
    assert (summary.paused, summary.paused_campaigns, summary.alerts_sent) == ([abused.id], [giveaway.id], 2)
    assert sorted((e.action, e.target_id) for e in guard_entries(uow_factory)) == [
        ("campaign.auto_paused", str(giveaway.id)), ("code.auto_paused", str(abused.id))]
    assert sorted(a.details["kind"] for a in notifier.alerts) == ["hash", "prefix"]


# --- alert delivery never fails the job ------------------------------------------------------------------------


class ExplodingNotifier:
    def __init__(self) -> None:
        self.calls = 0

    def notify(self, alert: RoutedAlert) -> None:
        self.calls += 1
        raise ConnectionError("alert channel down")


def test_a_failing_notifier_is_counted_and_the_pause_and_its_audit_entry_stay_committed(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, codes: CodeService,
    hasher: CodeHasher,
) -> None:
    _, [target] = campaign(campaigns, codes, "guarded", "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    exploding = ExplodingNotifier()
    summary = MaintenanceService(uow_factory, clock, PromoPolicy(), exploding).run_bruteforce_guard()
    assert summary.paused == [target.id] and (summary.alerts_sent, summary.alerts_failed) == (0, 1)
    assert exploding.calls == 1
    assert code_state(uow_factory, target) == (CampaignStatus.PAUSED, PausedReason.AUTO_BRUTEFORCE)
    assert len(guard_entries(uow_factory)) == 1


def test_the_alert_is_raised_after_the_commit(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, codes: CodeService,
    hasher: CodeHasher,
) -> None:
    _, [target] = campaign(campaigns, codes, "guarded", "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    seen: list[tuple[CampaignStatus, int]] = []
    blocked: list[bool] = []

    class ReadingNotifier:
        def notify(self, alert: RoutedAlert) -> None:
            # Another thread could not read the code if the job still held its unit of work open.
            def read() -> None:
                with uow_factory() as uow:
                    c = uow.promo_codes.get(alert.details["items"][0]["promo_code_id"])
                    assert c is not None
                    seen.append((c.status, len(uow_factory.store.audit)))

            t = threading.Thread(target=read)
            t.start()
            t.join(timeout=2)
            blocked.append(t.is_alive())

    summary = MaintenanceService(uow_factory, clock, PromoPolicy(), ReadingNotifier()).run_bruteforce_guard()
    assert blocked == [False], "the notifier ran inside the job's unit of work"
    assert seen == [(CampaignStatus.PAUSED, len(uow_factory.store.audit))] and summary.paused == [target.id]


def test_the_routing_policy_decides_severity_and_channels(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, codes: CodeService,
    hasher: CodeHasher, notifier: InMemoryNotifier,
) -> None:
    campaign(campaigns, codes, "guarded", "WINTER25")
    failures(uow_factory, clock, hasher, "WINTER25", 20, 5)
    policy = AlertPolicy.from_json('{"promo_campaign_auto_paused": {"severity": "critical", "channels": '
                                   '["pagerduty"]}}', ["pagerduty", "slack"])
    MaintenanceService(uow_factory, clock, PromoPolicy(), notifier, policy).run_bruteforce_guard()
    [alert] = notifier.alerts
    assert (alert.severity, alert.channels, alert.tier) == ("critical", ("pagerduty",), "ops_l2")


def test_a_code_of_a_campaign_that_is_no_longer_active_is_not_paused_nor_paged(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, campaigns: CampaignService,
    codes: CodeService, guard: MaintenanceService, notifier: InMemoryNotifier,
) -> None:
    # A paused campaign answers PAUSED for all its codes: the failures on one of them are no leak to contain.
    paused, (code,) = campaign(campaigns, codes, "paused already", "GONE2026")
    assert paused.id is not None
    campaigns.set_status(paused.id, CampaignStatus.PAUSED, actor="alice")
    failures(uow_factory, clock, hasher, "GONE2026", 25, 6, result=RedeemResult.PAUSED)
    summary = guard.run_bruteforce_guard()
    assert summary.paused == [] and summary.hash_candidates == 1
    assert code_state(uow_factory, code) == (CampaignStatus.ACTIVE, None)
    assert notifier.alerts == [] and guard_entries(uow_factory) == []
