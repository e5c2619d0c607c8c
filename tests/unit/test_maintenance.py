"""SPEC 3 and 6: reservation expiry (the unit goes back to the code and its campaign, once), the status rollover
(a campaign expires with its codes; a code depletes at its cap, a campaign at its budget, each only once nothing
of it is RESERVED), stale-invoice expiry; admin transitions around them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.errors import InvalidTransition
from domain.maintenance import MaintenanceService
from domain.model import (
    Campaign,
    CampaignStatus,
    PausedReason,
    PromoCode,
    PromoType,
    PurchaseStatus,
    RedeemResult,
    Redemption,
    RedemptionStatus,
)
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.conftest import T0

ACTOR = "alice"


@pytest.fixture
def jobs(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, policy: PromoPolicy) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, policy)


def discount(campaigns: CampaignService, code: str = "SPRING20", budget: int | None = None,
             code_cap: int | None = None, valid_minutes: int | None = None, name: str | None = None
             ) -> tuple[Campaign, PromoCode]:
    """A 20 % campaign (one redemption per user) with its first code."""
    valid_until = None if valid_minutes is None else T0 + timedelta(minutes=valid_minutes)
    c, first = campaigns.create(CampaignSpec(name=name or f"spring {code}", promo_type=PromoType.PERCENT_DISCOUNT,
                                             discount_percent=20, max_total_uses=budget, valid_until=valid_until),
                                actor=ACTOR, code=code, code_max_total_uses=code_cap)
    assert first is not None
    return c, first


def grant(campaigns: CampaignService, code: str = "GIFT7DAYS", budget: int | None = None,
          code_cap: int | None = None) -> tuple[Campaign, PromoCode]:
    c, first = campaigns.create(CampaignSpec(name=f"gift {code}", promo_type=PromoType.PREMIUM_GRANT,
                                             grant_plan_code="PREMIUM", grant_days=7, max_total_uses=budget),
                                actor=ACTOR, code=code, code_max_total_uses=code_cap)
    assert first is not None
    return c, first


def state(uow_factory: InMemoryUnitOfWorkFactory, campaign: Campaign) -> Campaign:
    assert campaign.id is not None
    return uow_factory.store.campaigns[campaign.id]


def code_state(uow_factory: InMemoryUnitOfWorkFactory, code: PromoCode) -> PromoCode:
    assert code.id is not None
    return uow_factory.store.codes[code.id]


def used(uow_factory: InMemoryUnitOfWorkFactory, campaign: Campaign, *codes: PromoCode) -> tuple[int, ...]:
    """The campaign's ``used_total``, then each code's."""
    return (state(uow_factory, campaign).used_total, *(code_state(uow_factory, c).used_total for c in codes))


def statuses(uow_factory: InMemoryUnitOfWorkFactory) -> list[RedemptionStatus]:
    return [r.status for r in sorted(uow_factory.store.redemptions.values(), key=lambda r: r.id or 0)]


def reserve(redemptions: RedemptionService, user: int, code: str, key: str) -> Redemption:
    outcome = redemptions.redeem(user, code, key)
    assert outcome.accepted and outcome.redemption is not None, outcome.result
    return outcome.redemption


def pay(checkout: CheckoutService, r: Redemption, product: str = "PREMIUM_30D") -> None:
    assert r.id is not None
    p = checkout.init(r.user_id, product, r.id)
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    checkout.successful_payment(p.id, f"charge-{r.id}", p.final_stars_amount)


# --- run_promo_reservation_expiry -------------------------------------------------------------------------


def test_an_expired_reservation_gives_its_unit_back_to_the_code_and_the_campaign_exactly_once(
    jobs: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c, spring20 = discount(campaigns, budget=5)
    assert c.id is not None
    spring21 = codes.add(c.id, "SPRING21", max_total_uses=3, actor=ACTOR)
    reserve(redemptions, 1, "SPRING20", "a")
    reserve(redemptions, 2, "SPRING21", "b")
    clock.advance(minutes=10)
    reserve(redemptions, 3, "SPRING21", "c")  # reserved until T0 + 25 min
    assert used(uow_factory, c, spring20, spring21) == (3, 1, 2)
    clock.advance(minutes=4, seconds=59)
    assert jobs.expire_reservations().expired == 0
    clock.advance(seconds=1)  # T0 + 15 min: the first two are due
    assert jobs.expire_reservations().as_dict() == {"scanned": 2, "expired": 2, "batches": 1}
    assert statuses(uow_factory) == [RedemptionStatus.EXPIRED, RedemptionStatus.EXPIRED, RedemptionStatus.RESERVED]
    assert used(uow_factory, c, spring20, spring21) == (1, 0, 1)  # only user 3's unit is still taken
    clock.advance(minutes=1)
    assert jobs.expire_reservations().expired == 0  # a second run gives nothing back twice
    assert used(uow_factory, c, spring20, spring21) == (1, 0, 1)
    clock.advance(minutes=9)
    assert jobs.expire_reservations().expired == 1
    assert used(uow_factory, c, spring20, spring21) == (0, 0, 0)


def test_an_expired_reservation_lets_the_user_redeem_again(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
) -> None:
    discount(campaigns, code_cap=1)
    assert redemptions.redeem(1, "SPRING20", "a").accepted
    assert redemptions.redeem(2, "SPRING20", "b").result is RedeemResult.DEPLETED  # the single use is reserved
    clock.advance(minutes=15)
    jobs.expire_reservations()
    assert redemptions.redeem(1, "SPRING20", "c").accepted


def test_a_unit_given_back_to_the_budget_serves_another_code_of_the_campaign(
    jobs: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    clock: ManualClock,
) -> None:
    c, _ = discount(campaigns, budget=1)
    assert c.id is not None
    codes.add(c.id, "SPRING21", actor=ACTOR)
    reserve(redemptions, 1, "SPRING20", "a")
    assert redemptions.redeem(2, "SPRING21", "b").result is RedeemResult.DEPLETED  # the budget is reserved
    clock.advance(minutes=15)
    jobs.expire_reservations()
    assert redemptions.redeem(2, "SPRING21", "c").accepted


def test_a_reservation_bound_to_an_open_purchase_never_expires(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c, code = discount(campaigns)
    r = reserve(redemptions, 1, "SPRING20", "a")
    checkout.init(1, "PREMIUM_30D", r.id)
    clock.advance(minutes=29)
    assert jobs.expire_reservations().expired == 0
    assert statuses(uow_factory) == [RedemptionStatus.RESERVED]
    clock.advance(minutes=2)  # the invoice is now stale: unbound first, then free to expire
    assert jobs.expire_stale_invoices().unbound == 1
    assert jobs.expire_reservations().expired == 1
    assert statuses(uow_factory) == [RedemptionStatus.EXPIRED]
    assert used(uow_factory, c, code) == (0, 0)


def test_applied_and_granted_redemptions_are_never_expired(
    jobs: MaintenanceService, campaigns: CampaignService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    gift, gift_code = grant(campaigns)
    spring, spring_code = discount(campaigns)
    redemptions.redeem(1, "GIFT7DAYS", "g")
    pay(checkout, reserve(redemptions, 1, "SPRING20", "s"))
    clock.advance(days=2)
    assert jobs.expire_reservations().expired == 0
    assert statuses(uow_factory) == [RedemptionStatus.APPLIED, RedemptionStatus.APPLIED]
    assert used(uow_factory, gift, gift_code) == used(uow_factory, spring, spring_code) == (1, 1)


def test_expiry_works_in_bounded_batches(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService, codes: CodeService,
    redemptions: RedemptionService,
) -> None:
    c, first = discount(campaigns)
    assert c.id is not None
    second = codes.add(c.id, "SPRING21", actor=ACTOR)
    for user in range(1, 6):
        redemptions.redeem(user, "SPRING20" if user % 2 else "SPRING21", f"k{user}")
    clock.advance(minutes=16)
    small = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=2))
    assert small.expire_reservations().as_dict() == {"scanned": 5, "expired": 5, "batches": 3}
    assert used(uow_factory, c, first, second) == (0, 0, 0)
    capped = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=2), max_batches=1)
    for user in range(6, 11):
        redemptions.redeem(user, "SPRING20", f"k{user}")
    clock.advance(minutes=16)
    assert capped.expire_reservations().expired == 2  # the rest waits for the next run
    assert used(uow_factory, c, first, second) == (3, 3, 0)
    assert small.expire_reservations().expired == 3
    assert used(uow_factory, c, first, second) == (0, 0, 0)


# --- run_promo_campaign_status_rollover: expiry ------------------------------------------------------------


def test_rollover_expires_active_and_paused_campaigns_past_valid_until_with_all_their_codes(
    jobs: MaintenanceService, campaigns: CampaignService, codes: CodeService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    active, a1 = discount(campaigns, "ACTIVE01", valid_minutes=60)
    paused, p1 = discount(campaigns, "PAUSED01", valid_minutes=60)
    later, l1 = discount(campaigns, "LATER001", valid_minutes=61)
    forever, f1 = discount(campaigns, "FOREVER1")
    assert active.id is not None and paused.id is not None
    a2 = codes.add(active.id, "ACTIVE02", actor=ACTOR)
    a3 = codes.add(active.id, "ACTIVE03", actor=ACTOR)
    assert a3.id is not None
    codes.set_status(a3.id, CampaignStatus.PAUSED, actor=ACTOR)  # a code paused on its own expires too
    campaigns.set_status(paused.id, CampaignStatus.PAUSED, actor=ACTOR)
    clock.advance(minutes=59, seconds=59)
    assert jobs.rollover_campaign_statuses().expired == 0
    clock.advance(seconds=1)  # now >= valid_until
    assert jobs.rollover_campaign_statuses().as_dict() == {"expired": 2, "depleted": 0, "codes_expired": 4,
                                                           "codes_depleted": 0, "batches": 3}
    assert [state(uow_factory, c).status for c in (active, paused, later, forever)] == [
        CampaignStatus.EXPIRED, CampaignStatus.EXPIRED, CampaignStatus.ACTIVE, CampaignStatus.ACTIVE]
    assert [(code_state(uow_factory, c).status, code_state(uow_factory, c).paused_reason)
            for c in (a1, a2, a3, p1)] == [(CampaignStatus.EXPIRED, None)] * 4
    assert {code_state(uow_factory, c).status for c in (l1, f1)} == {CampaignStatus.ACTIVE}
    assert state(uow_factory, paused).paused_reason is None
    assert jobs.rollover_campaign_statuses().as_dict()["expired"] == 0


def test_a_depleted_code_stays_depleted_when_its_campaign_expires(
    jobs: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c, _ = discount(campaigns, "ONCEONLY", valid_minutes=60)
    assert c.id is not None
    once = codes.add(c.id, "SINGLE01", max_total_uses=1, actor=ACTOR)
    reserve(redemptions, 1, "SINGLE01", "a")
    with uow_factory() as uow:  # revoked (audit-conservative): the unit stays spent, nothing is RESERVED
        r = uow.redemptions.get_by_idempotency_key("a")
        assert r is not None and r.id is not None
        uow.redemptions.revoke(r.id, clock.now())
        uow.commit()
    assert jobs.rollover_campaign_statuses().codes_depleted == 1
    clock.advance(minutes=60)
    assert jobs.rollover_campaign_statuses().as_dict()["codes_expired"] == 1  # ONCEONLY; SINGLE01 is DEPLETED
    assert code_state(uow_factory, once).status is CampaignStatus.DEPLETED
    assert state(uow_factory, c).status is CampaignStatus.EXPIRED


# --- run_promo_campaign_status_rollover: depletion ---------------------------------------------------------


def test_a_code_at_its_cap_is_depleted_once_none_of_its_reservations_is_reserved(
    jobs: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c, capped = discount(campaigns, code_cap=2)
    assert c.id is not None
    free = codes.add(c.id, "SPRING21", actor=ACTOR)
    first = reserve(redemptions, 1, "SPRING20", "a")
    reserve(redemptions, 2, "SPRING20", "b")
    assert jobs.rollover_campaign_statuses().codes_depleted == 0  # two reservations may still expire
    pay(checkout, first)
    assert jobs.rollover_campaign_statuses().codes_depleted == 0  # user 2 still holds a reservation
    clock.advance(minutes=15)
    jobs.expire_reservations()  # user 2's unit comes back: the code is not at its cap any more
    assert jobs.rollover_campaign_statuses().codes_depleted == 0
    third = reserve(redemptions, 3, "SPRING20", "c")
    assert jobs.rollover_campaign_statuses().codes_depleted == 0
    pay(checkout, third)
    assert jobs.rollover_campaign_statuses().as_dict() == {"expired": 0, "depleted": 0, "codes_expired": 0,
                                                           "codes_depleted": 1, "batches": 3}
    assert code_state(uow_factory, capped).status is CampaignStatus.DEPLETED
    assert code_state(uow_factory, capped).paused_reason is None
    # only the code: its campaign and sibling stay ACTIVE, and the sibling still redeems
    assert state(uow_factory, c).status is code_state(uow_factory, free).status is CampaignStatus.ACTIVE
    assert redemptions.redeem(4, "SPRING20", "d").result is RedeemResult.DEPLETED
    assert redemptions.redeem(4, "SPRING21", "e").accepted
    assert jobs.rollover_campaign_statuses().codes_depleted == 0


def test_a_campaign_at_its_budget_is_depleted_once_none_of_its_codes_has_a_reservation(
    jobs: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c, x = discount(campaigns, budget=2)
    other, _ = discount(campaigns, "ELSEWHERE")
    assert c.id is not None
    y = codes.add(c.id, "SPRING21", actor=ACTOR)
    first = reserve(redemptions, 1, "SPRING20", "a")
    reserve(redemptions, 2, "SPRING21", "b")
    reserve(redemptions, 9, "ELSEWHERE", "z")  # another campaign's reservation does not hold this one back
    assert jobs.rollover_campaign_statuses().depleted == 0  # user 2's reservation (on the other code) may expire
    pay(checkout, first)
    assert jobs.rollover_campaign_statuses().depleted == 0
    clock.advance(minutes=15)
    jobs.expire_reservations()
    assert used(uow_factory, c, x, y) == (1, 1, 0)
    third = reserve(redemptions, 3, "SPRING21", "c")
    pay(checkout, third)
    reserve(redemptions, 9, "ELSEWHERE", "z2")  # RESERVED, but in another campaign
    assert jobs.rollover_campaign_statuses().as_dict() == {"expired": 0, "depleted": 1, "codes_expired": 0,
                                                           "codes_depleted": 0, "batches": 3}
    assert state(uow_factory, c).status is CampaignStatus.DEPLETED
    # the codes have no cap of their own: they stay ACTIVE and answer DEPLETED through their campaign
    assert {code_state(uow_factory, code).status for code in (x, y)} == {CampaignStatus.ACTIVE}
    assert redemptions.redeem(4, "SPRING20", "d").result is RedeemResult.DEPLETED
    assert state(uow_factory, other).status is CampaignStatus.ACTIVE
    assert jobs.rollover_campaign_statuses().depleted == 0


def test_paused_used_up_campaigns_and_codes_are_not_depleted(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService,
    codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    budget, _ = grant(campaigns, "GIFT7DAYS", budget=1)
    _, capped = grant(campaigns, "GIFTCAP1", code_cap=1)
    assert budget.id is not None and capped.id is not None
    redemptions.redeem(1, "GIFT7DAYS", "g")
    redemptions.redeem(1, "GIFTCAP1", "h")
    campaigns.set_status(budget.id, CampaignStatus.PAUSED, actor=ACTOR)
    codes.set_status(capped.id, CampaignStatus.PAUSED, actor=ACTOR)
    summary = jobs.rollover_campaign_statuses()
    assert (summary.depleted, summary.codes_depleted) == (0, 0)
    assert state(uow_factory, budget).status is code_state(uow_factory, capped).status is CampaignStatus.PAUSED


# --- admin transitions around the jobs ------------------------------------------------------------------------


def test_same_state_admin_request_is_a_no_op_without_an_audit_entry(
    campaigns: CampaignService, codes: CodeService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c, code = discount(campaigns)
    assert c.id is not None and code.id is not None
    clock.advance(minutes=5)
    entries = len(uow_factory.store.audit)
    assert campaigns.set_status(c.id, CampaignStatus.ACTIVE, actor=ACTOR) == c
    assert codes.set_status(code.id, CampaignStatus.ACTIVE, actor=ACTOR) == code
    assert len(uow_factory.store.audit) == entries
    paused = campaigns.set_status(c.id, CampaignStatus.PAUSED, actor=ACTOR)
    assert (paused.status, paused.paused_reason) == (CampaignStatus.PAUSED, PausedReason.MANUAL)
    clock.advance(minutes=5)
    assert campaigns.set_status(c.id, CampaignStatus.PAUSED, actor=ACTOR) == paused
    assert len(uow_factory.store.audit) == entries + 1


def test_depleted_and_expired_campaigns_and_codes_cannot_be_reactivated_or_paused(
    jobs: MaintenanceService, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    clock: ManualClock,
) -> None:
    gift, gift_code = grant(campaigns, budget=1)
    _, single = grant(campaigns, "GIFTCAP1", code_cap=1)
    old, old_code = discount(campaigns, valid_minutes=10)
    redemptions.redeem(1, "GIFT7DAYS", "g")
    redemptions.redeem(1, "GIFTCAP1", "h")
    clock.advance(minutes=10)
    jobs.rollover_campaign_statuses()
    for level, target_id, status in (("campaign", gift.id, "DEPLETED"), ("campaign", old.id, "EXPIRED"),
                                     ("code", single.id, "DEPLETED"), ("code", old_code.id, "EXPIRED")):
        assert target_id is not None
        for target in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
            with pytest.raises(InvalidTransition) as err:
                if level == "campaign":
                    campaigns.set_status(target_id, target, actor=ACTOR)
                else:
                    codes.set_status(target_id, target, actor=ACTOR)
            assert err.value.code == "INVALID_TRANSITION" and err.value.details["from"] == status
    assert gift_code.id is not None  # a code of a depleted campaign is ACTIVE itself: its own pause is allowed
    assert codes.set_status(gift_code.id, CampaignStatus.PAUSED, actor=ACTOR).status is CampaignStatus.PAUSED


# --- run_payment_invoice_expiry -----------------------------------------------------------------------------


def test_stale_invoices_fail_and_release_their_reservation(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    discount(campaigns)
    r = reserve(redemptions, 1, "SPRING20", "a")
    assert r.id is not None
    stale_created = checkout.init(1, "PREMIUM_30D", r.id)
    stale_sent = checkout.init(2, "PREMIUM_7D")
    paid = checkout.init(3, "PREMIUM_7D")
    assert stale_sent.id is not None and paid.id is not None and stale_created.id is not None
    checkout.mark_invoice_sent(stale_sent.id)
    checkout.successful_payment(paid.id, "ch", 50)
    clock.advance(minutes=20)
    fresh = checkout.init(4, "PREMIUM_7D")
    clock.advance(minutes=10)  # exactly 30 minutes old is not older than the TTL yet
    assert jobs.expire_stale_invoices().failed == 0
    clock.advance(seconds=1)
    assert jobs.expire_stale_invoices().as_dict() == {"scanned": 2, "failed": 2, "unbound": 1, "batches": 1}
    got = {p.id: p.status for p in uow_factory.store.purchases.values()}
    assert got == {stale_created.id: PurchaseStatus.FAILED, stale_sent.id: PurchaseStatus.FAILED,
                   paid.id: PurchaseStatus.PAID, fresh.id: PurchaseStatus.CREATED}
    assert uow_factory.store.redemptions[r.id].purchase_id is None
    assert jobs.expire_stale_invoices().failed == 0
    assert checkout.precheckout(stale_sent.id, 50).error_code == "PURCHASE_NOT_PAYABLE"
