"""SPEC 4, 5, 6 and 13: random interleavings of redeem, pause/resume, time travel, checkout (with and without
a reservation), invoice, pre-checkout, payment (and replays), refunds and every maintenance job, on the
in-memory adapters. After every step the SPEC 4 invariants hold, plus the settlement rules: a PAID purchase's
redemption is APPLIED by it (or the payment is flagged for review), a refunded one ends REVOKED after the
rollback job, a reservation bound to an open purchase is never EXPIRED, and every payment credits once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.memory import InMemoryNotifier, InMemoryPaymentGateway, InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.errors import CheckoutError, InvalidPurchaseState, InvalidTransition, NoPromoRedemption, PurchaseNotRefunded
from domain.maintenance import MaintenanceService
from domain.model import (
    LIVE_REDEMPTION_STATUSES,
    CampaignStatus,
    LedgerSource,
    PausedReason,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedemptionStatus,
    TargetScope,
)
from domain.policy import PromoPolicy
from domain.products import DEFAULT_PRODUCTS
from domain.redemption import RedemptionService

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
# Small guard thresholds so the guard actually fires inside 30 steps; small batches so jobs loop.
POLICY = PromoPolicy(guard_min_failures=3, guard_min_users=2, guard_prefix_min_failures=4, job_batch_size=2)
USERS = st.integers(min_value=1, max_value=4)
PRODUCTS = st.sampled_from([p.code for p in DEFAULT_PRODUCTS])
MINUTES = st.sampled_from([1, 5, 14, 15, 16, 29, 31, 60, 180, 1440])
KEYS = st.sampled_from([f"k{i}" for i in range(10)])


@st.composite
def campaign_specs(draw: st.DrawFn) -> CampaignSpec:
    grant = draw(st.booleans())
    return CampaignSpec(
        campaign_name="ops",
        promo_type=PromoType.PREMIUM_GRANT if grant else PromoType.PERCENT_DISCOUNT,
        grant_plan_code="PREMIUM" if grant else None,
        grant_days=draw(st.integers(1, 30)) if grant else None,
        discount_percent=None if grant else draw(st.sampled_from([1, 20, 50, 99])),
        applicable_products=() if grant else draw(st.sampled_from([(), (), ("PREMIUM_30D",),
                                                                   ("PREMIUM_7D", "PREMIUM_365D")])),
        target_scope=draw(st.sampled_from([TargetScope.ALL, TargetScope.ALL, TargetScope.FIRST_PURCHASE_ONLY])),
        valid_from=T0,
        valid_until=draw(st.sampled_from([None, None, T0 + timedelta(minutes=90), T0 + timedelta(days=2)])),
        max_total_uses=draw(st.sampled_from([None, 1, 2, 3])),
    )


class OpsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        self.uow = InMemoryUnitOfWorkFactory()
        self.store = self.uow.store
        self.hasher = CodeHasher("ops-pepper")
        self.notifier = InMemoryNotifier()
        self.gateway = InMemoryPaymentGateway()
        self.campaigns = CampaignService(self.uow, self.clock, self.hasher)
        self.redemptions = RedemptionService(self.uow, self.clock, self.hasher, POLICY)
        self.checkout = CheckoutService(self.uow, self.clock, policy=POLICY)
        self.jobs = MaintenanceService(self.uow, self.clock, POLICY, self.notifier)
        self.ids: list[int] = []
        self.codes: list[str] = []
        self.charges: dict[int, str] = {}  # purchase id -> the charge id that paid it
        self.fresh = 0

    @initialize(specs=st.lists(campaign_specs(), min_size=2, max_size=4))
    def create_campaigns(self, specs: list[CampaignSpec]) -> None:
        for i, spec in enumerate(specs):
            code = f"OPS{i}CODE{i * 3}"
            created = self.campaigns.create(attrs.evolve(spec, campaign_name=f"ops{i}"), code)
            assert created.id is not None
            self.ids.append(created.id)
            self.codes.append(code)

    # --- helpers -----------------------------------------------------------------------------------------

    def purchase(self, index: int) -> Purchase | None:
        purchases = sorted(self.store.purchases.values(), key=lambda p: p.id or 0)
        return purchases[index % len(purchases)] if purchases else None

    # --- redeem, admin, time --------------------------------------------------------------------------------

    @rule(user=USERS, which=st.integers(0, 3), key=KEYS)
    def redeem(self, user: int, which: int, key: str) -> None:
        self.redemptions.redeem(user, self.codes[which % len(self.codes)], key)

    @rule(user=USERS, guess=st.sampled_from(["OPS0ZZZZ", "OPS1YYYY", "OPS0XXXX", "NOPE1234"]))
    def redeem_a_wrong_code(self, user: int, guess: str) -> None:
        self.redemptions.redeem(user, guess, f"guess{self.fresh}")
        self.fresh += 1

    @rule(which=st.integers(0, 3), status=st.sampled_from([CampaignStatus.ACTIVE, CampaignStatus.PAUSED]))
    def admin_status(self, which: int, status: CampaignStatus) -> None:
        target = status
        cid = self.ids[which % len(self.ids)]
        before = self.store.campaigns[cid]
        try:
            after = self.campaigns.set_status(cid, target)
        except InvalidTransition:
            assert before.status in (CampaignStatus.DEPLETED, CampaignStatus.EXPIRED) or (
                target is CampaignStatus.ACTIVE and (before.is_past_validity(self.clock.now())
                                                     or before.capacity_used_up()))
            assert self.store.campaigns[cid] == before
            return
        if before.status is target:
            assert after == before  # same-state request: no-op
        assert after.status is target

    @rule(minutes=MINUTES)
    def time_travel(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    # --- checkout -------------------------------------------------------------------------------------------

    def reservation_for(self, user: int, mode: str, pick: int) -> int | None:
        """``own``: one of the user's RESERVED discounts; ``any``: any redemption (mostly refusals)."""
        if mode == "own":
            own = sorted(rid for rid, r in self.store.redemptions.items()
                         if r.user_id == user and r.status is RedemptionStatus.RESERVED)
            return own[pick % len(own)] if own else None
        if mode == "any" and self.store.redemptions:
            rids = sorted(self.store.redemptions)
            return rids[pick % len(rids)]
        return None

    @rule(user=USERS, product=PRODUCTS, mode=st.sampled_from(["none", "own", "own", "any"]),
          pick=st.integers(0, 20))
    def checkout_init(self, user: int, product: str, mode: str, pick: int) -> None:
        self.init(user, product, self.reservation_for(user, mode, pick))

    def init(self, user: int, product: str, rid: int | None) -> Purchase | None:
        try:
            p = self.checkout.init(user, product, rid)
        except CheckoutError as exc:
            assert exc.code in ("PROMO_NOT_FOUND", "PROMO_NOT_RESERVED", "PROMO_RESERVATION_EXPIRED",
                                "PROMO_NOT_APPLICABLE", "PROMO_IN_USE"), exc.code
            return None
        assert p.is_open and p.user_id == user and p.product_code == product
        event("checkout with a reservation" if p.promo_redemption_id else "checkout at full price")
        assert 1 <= p.final_stars_amount <= p.base_stars_amount
        assert p.final_stars_amount + p.discount_stars_amount == p.base_stars_amount
        if p.promo_redemption_id is not None:
            r = self.store.redemptions[p.promo_redemption_id]
            assert r.discount_percent is not None
            assert p.discount_stars_amount == max(0, min(p.base_stars_amount - 1,
                                                         p.base_stars_amount * r.discount_percent // 100))
        return p

    @rule(user=USERS, which=st.integers(0, 3), product=PRODUCTS, pay=st.booleans())
    def redeem_and_buy(self, user: int, which: int, product: str, pay: bool) -> None:
        """The bot's happy path in one step: redeem, checkout with the reservation, invoice, (pay)."""
        outcome = self.redemptions.redeem(user, self.codes[which % len(self.codes)], f"buy{self.fresh}")
        self.fresh += 1
        if not outcome.accepted or outcome.redemption is None:
            return
        if outcome.redemption.status is not RedemptionStatus.RESERVED:
            return
        p = self.init(user, product, outcome.redemption.id)
        if p is None or p.id is None:
            return
        self.checkout.mark_invoice_sent(p.id)
        if pay:
            self.settle(self.store.purchases[p.id], after_precheckout=True)

    @rule(pick=st.integers(0, 20))
    def invoice_sent(self, pick: int) -> None:
        p = self.purchase(pick)
        if p is None or p.id is None:
            return
        try:
            self.checkout.mark_invoice_sent(p.id)
        except InvalidPurchaseState:
            assert p.status not in (PurchaseStatus.CREATED, PurchaseStatus.INVOICE_SENT)

    @rule(pick=st.integers(0, 20), right_amount=st.booleans())
    def precheckout(self, pick: int, right_amount: bool) -> None:
        p = self.purchase(pick)
        if p is None or p.id is None:
            return
        answer = self.checkout.precheckout(p.id, p.final_stars_amount if right_amount else p.final_stars_amount + 1)
        if answer.ok:
            assert right_amount and p.status is PurchaseStatus.INVOICE_SENT
            if p.promo_redemption_id is not None:
                r = self.store.redemptions[p.promo_redemption_id]
                assert r.status is RedemptionStatus.RESERVED and r.purchase_id == p.id

    @rule(pick=st.integers(0, 20), after_precheckout=st.booleans())
    def pay(self, pick: int, after_precheckout: bool) -> None:
        """Telegram pays after an ok pre-checkout; without one this models a payment racing invoice expiry."""
        p = self.purchase(pick)
        if p is not None:
            self.settle(p, after_precheckout)

    def settle(self, p: Purchase, after_precheckout: bool) -> None:
        assert p.id is not None
        if after_precheckout and not self.checkout.precheckout(p.id, p.final_stars_amount).ok:
            return
        charge = f"charge-{self.fresh}"
        self.fresh += 1
        ledger_before = len(self.store.ledger)
        try:
            settled = self.checkout.successful_payment(p.id, charge, p.final_stars_amount)
        except CheckoutError as exc:
            assert exc.code == "ALREADY_PAID" and p.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED)
            assert len(self.store.ledger) == ledger_before
            return
        assert not settled.replayed and settled.purchase.status is PurchaseStatus.PAID
        event("payment settled" + (" with a promo" if p.promo_redemption_id else "")
              + (" (flagged for review)" if settled.purchase.review_reason else ""))
        self.charges[p.id] = charge

    @rule(pick=st.integers(0, 20))
    def replay_payment(self, pick: int) -> None:
        if not self.charges:
            return
        pid = sorted(self.charges)[pick % len(self.charges)]
        before = (dict(self.store.purchases), list(self.store.ledger), dict(self.store.redemptions))
        p = self.store.purchases[pid]
        settled = self.checkout.successful_payment(pid, self.charges[pid], p.final_stars_amount)
        assert settled.replayed and settled.purchase == p
        assert before == (dict(self.store.purchases), list(self.store.ledger), dict(self.store.redemptions))

    @rule(pick=st.integers(0, 20), through_gateway=st.booleans())
    def refund(self, pick: int, through_gateway: bool) -> None:
        p = self.purchase(pick)
        if p is None or p.id is None:
            return
        try:
            if through_gateway:
                refunded = self.checkout.refund(p.id, self.gateway)
            else:
                refunded = self.checkout.mark_refunded(p.id)
        except InvalidPurchaseState:
            assert p.status not in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED)
            return
        assert refunded.status is PurchaseStatus.REFUNDED
        event("refunded" + (" with a promo" if p.promo_redemption_id else ""))

    @rule(pick=st.integers(0, 20))
    def manual_refund_rollback(self, pick: int) -> None:
        p = self.purchase(pick)
        if p is None or p.id is None:
            return
        try:
            result = self.jobs.rollback_refund(p.id)
        except PurchaseNotRefunded:
            assert p.status is not PurchaseStatus.REFUNDED
            return
        except NoPromoRedemption:
            assert p.promo_redemption_id is None
            return
        except InvalidTransition:
            assert p.promo_redemption_id is not None
            assert self.store.redemptions[p.promo_redemption_id].applied_purchase_id != p.id
            return
        assert self.store.redemptions[result.redemption_id].status is RedemptionStatus.REVOKED

    # --- jobs -----------------------------------------------------------------------------------------------

    @rule()
    def reservation_expiry_job(self) -> None:
        if self.jobs.expire_reservations().expired:
            event("reservation expired")
        now = self.clock.now()
        for r in self.store.redemptions.values():
            if r.status is RedemptionStatus.RESERVED and r.purchase_id is None:
                assert r.reserved_until is not None and r.reserved_until > now

    @rule()
    def rollover_job(self) -> None:
        self.jobs.rollover_campaign_statuses()
        now = self.clock.now()
        reserved = Counter(r.promo_code_id for r in self.store.redemptions.values()
                           if r.status is RedemptionStatus.RESERVED)
        for c in self.store.campaigns.values():
            if c.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
                assert not c.is_past_validity(now)
            if c.status is CampaignStatus.ACTIVE:
                assert not (c.capacity_used_up() and reserved[c.id] == 0)

    @rule()
    def guard_job(self) -> None:
        before = {cid: c.status for cid, c in self.store.campaigns.items()}
        alerts_before = len(self.notifier.alerts)
        summary = self.jobs.run_bruteforce_guard()
        if summary.paused:
            event("guard paused a campaign")
        assert len(self.notifier.alerts) - alerts_before == len(summary.paused) == summary.alerts_sent
        for cid in summary.paused:  # only ACTIVE campaigns are paused, hence alerted, once per pause
            assert before[cid] is CampaignStatus.ACTIVE
            assert self.store.campaigns[cid].paused_reason is PausedReason.AUTO_BRUTEFORCE
        # One dedup_key per pause occurrence (campaign, moment of the pause). The test clock can resume and
        # pause a campaign again at the very same instant — a real clock cannot — so compare occurrences.
        occurrences = {(a.details["promo_code_id"], a.occurred_at) for a in self.notifier.alerts}
        assert len({a.dedup_key for a in self.notifier.alerts}) == len(occurrences)

    @rule()
    def invoice_expiry_job(self) -> None:
        self.jobs.expire_stale_invoices()
        cutoff = self.clock.now() - POLICY.invoice_ttl
        assert not [p for p in self.store.purchases.values() if p.is_open and p.created_at < cutoff]

    @rule()
    def refund_rollback_job(self) -> None:
        if self.jobs.rollback_refunded_promos().revoked:
            event("rollback job revoked")
        for p in self.store.purchases.values():
            if p.status is PurchaseStatus.REFUNDED and p.promo_redemption_id is not None:
                r = self.store.redemptions[p.promo_redemption_id]
                if r.applied_purchase_id == p.id:
                    assert r.status is RedemptionStatus.REVOKED
                else:
                    assert p.review_reason is not None

    # --- invariants -------------------------------------------------------------------------------------------

    @invariant()
    def capacity_accounting(self) -> None:
        for cid in self.ids:
            c = self.store.campaigns[cid]
            live = sum(1 for r in self.store.redemptions.values()
                       if r.promo_code_id == cid and r.status in LIVE_REDEMPTION_STATUSES)
            assert c.max_total_uses is None or c.used_total <= c.max_total_uses
            assert c.used_total == live, (c.used_total, live)

    @invariant()
    def one_live_redemption_per_campaign_and_user(self) -> None:
        live = Counter((r.promo_code_id, r.user_id) for r in self.store.redemptions.values()
                       if r.status is not RedemptionStatus.EXPIRED)
        assert all(n == 1 for n in live.values())

    @invariant()
    def one_redemption_per_key(self) -> None:
        keys = Counter(r.idempotency_key for r in self.store.redemptions.values())
        assert all(n == 1 for n in keys.values())

    @invariant()
    def one_open_purchase_per_user_and_product(self) -> None:
        open_ = Counter((p.user_id, p.product_code) for p in self.store.purchases.values() if p.is_open)
        assert all(n == 1 for n in open_.values())

    @invariant()
    def paid_purchase_applied_its_redemption_or_is_flagged(self) -> None:
        for p in self.store.purchases.values():
            if p.status is PurchaseStatus.PAID and p.promo_redemption_id is not None:
                r = self.store.redemptions[p.promo_redemption_id]
                ok = r.status is RedemptionStatus.APPLIED and r.applied_purchase_id == p.id
                assert ok or p.review_reason is not None, (p, r)

    @invariant()
    def bound_reservation_never_expires(self) -> None:
        for p in self.store.purchases.values():
            if p.is_open and p.promo_redemption_id is not None:
                r = self.store.redemptions[p.promo_redemption_id]
                assert r.status is not RedemptionStatus.EXPIRED
                if r.status is RedemptionStatus.RESERVED:
                    assert r.purchase_id == p.id
        for r in self.store.redemptions.values():
            if r.status is RedemptionStatus.EXPIRED:
                assert r.purchase_id is None

    @invariant()
    def every_payment_credits_once_and_every_refund_takes_back_once(self) -> None:
        credited = Counter(e.purchase_id for e in self.store.ledger if e.source is LedgerSource.PURCHASE)
        taken = Counter(e.purchase_id for e in self.store.ledger if e.source is LedgerSource.REFUND_REVOKE)
        settled = {p.id for p in self.store.purchases.values()
                   if p.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED)}
        assert set(credited) == settled and all(n == 1 for n in credited.values())
        refunded = {p.id for p in self.store.purchases.values() if p.status is PurchaseStatus.REFUNDED}
        assert set(taken) == refunded and all(n == 1 for n in taken.values())
        charges = Counter(p.telegram_payment_charge_id for p in self.store.purchases.values()
                          if p.telegram_payment_charge_id is not None)
        assert all(n == 1 for n in charges.values())

    @invariant()
    def refunds_went_through_the_gateway_at_most_once(self) -> None:
        assert len(set(self.gateway.refunds)) == len(self.gateway.refunds)


OpsMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
TestOpsMachine = OpsMachine.TestCase
