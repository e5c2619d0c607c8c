"""SPEC 3, 4, 5, 6, 7 and 13: random interleavings of redeem, pause/resume of campaigns and of single codes, budget,
per-user limit and validity changes, time travel, checkout (with and without a reservation, percent and Stars
discounts), invoice, pre-checkout, payment (and replays), refunds and every maintenance job, on the in-memory
adapters, over campaigns with several codes.

After every step the SPEC 4 invariants hold at both levels (a code's ``used_total`` is the number of its live
redemptions and within its cap; a campaign's is that number over all its codes and within its budget, also after
expiry and refund rollback), plus the settlement rules (a PAID purchase's redemption is APPLIED by it or the
payment is flagged; a refunded one ends REVOKED after the rollback job; a bound reservation never expires; every
payment credits once), the status rules of SPEC 3 at both levels, and the audit rule of SPEC 7: exactly one entry
per change a person or the guard made, none for a replay or a no-op, never a plaintext code.

Why this file stays whole (about 600 lines, past the house limit): it is one hypothesis state machine. Its rules
and invariants share one model (the store, the clock, the expected audit counts, the plaintexts handed out) and only
mean something together: an invariant checks what every rule may have done, and a rule is there so that the
invariants meet that state. Split into mixins or modules, a reader would have to assemble the machine again to see
which rules an invariant is checked against; its sections (rules by area, then invariants by SPEC) are the seams."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.memory import InMemoryNotifier, InMemoryPaymentGateway, InMemoryUnitOfWorkFactory, ManualClock
from domain import audit
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.errors import (
    CheckoutError,
    InvalidChange,
    InvalidPurchaseState,
    InvalidTransition,
    NoPromoRedemption,
    PurchaseNotRefunded,
)
from domain.maintenance import MaintenanceService
from domain.model import (
    LIVE_REDEMPTION_STATUSES,
    Campaign,
    CampaignChanges,
    CampaignStatus,
    LedgerSource,
    PausedReason,
    PromoCode,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedemptionStatus,
    TargetScope,
)
from domain.policy import PromoPolicy
from domain.products import DEFAULT_PRODUCTS
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
PERSON = "ops:alice"
GUARD = "job:run_promo_bruteforce_guard"
# Small guard thresholds so the guard actually fires inside 30 steps; small batches so jobs loop.
POLICY = PromoPolicy(guard_min_failures=3, guard_min_users=2, guard_prefix_min_failures=4, job_batch_size=2)
USERS = st.integers(min_value=1, max_value=4)
PRODUCTS = st.sampled_from([p.code for p in DEFAULT_PRODUCTS])
MINUTES = st.sampled_from([1, 5, 14, 15, 16, 29, 31, 60, 180, 1440])
KEYS = st.sampled_from([f"k{i}" for i in range(10)])
PICK = st.integers(0, 20)
LEVELS = st.sampled_from(["campaign", "code"])
ADMIN_STATUSES = st.sampled_from([CampaignStatus.ACTIVE, CampaignStatus.PAUSED])
KEEP = "keep"


@st.composite
def campaign_specs(draw: st.DrawFn) -> CampaignSpec:
    kind = draw(st.sampled_from(list(PromoType)))
    grant = kind is PromoType.PREMIUM_GRANT
    return CampaignSpec(
        name="ops",
        promo_type=kind,
        grant_plan_code="PREMIUM" if grant else None,
        grant_days=draw(st.integers(1, 30)) if grant else None,
        discount_percent=draw(st.sampled_from([1, 20, 50, 99])) if kind is PromoType.PERCENT_DISCOUNT else None,
        discount_stars=draw(st.sampled_from([1, 40, 100, 1000])) if kind is PromoType.STARS_DISCOUNT else None,
        applicable_products=() if grant else draw(st.sampled_from([(), (), ("PREMIUM_30D",),
                                                                   ("PREMIUM_7D", "PREMIUM_365D")])),
        target_scope=draw(st.sampled_from([TargetScope.ALL, TargetScope.ALL, TargetScope.FIRST_PURCHASE_ONLY])),
        valid_from=T0,
        valid_until=draw(st.sampled_from([None, None, T0 + timedelta(minutes=90), T0 + timedelta(days=2)])),
        max_total_uses=draw(st.sampled_from([None, None, 1, 2, 3, 5])),
        per_user_limit=draw(st.sampled_from([1, 1, 2, 3])),
    )


# Each campaign's codes: their own caps (None: only the campaign's budget applies).
CODE_CAPS = st.lists(st.sampled_from([None, None, 1, 2]), min_size=1, max_size=3)


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
        self.codes = CodeService(self.uow, self.clock, self.hasher)
        self.redemptions = RedemptionService(self.uow, self.clock, self.hasher, POLICY)
        self.checkout = CheckoutService(self.uow, self.clock, policy=POLICY)
        self.jobs = MaintenanceService(self.uow, self.clock, POLICY, self.notifier)
        self.campaign_ids: list[int] = []
        self.code_ids: list[int] = []
        self.plaintexts: list[str] = []  # by position in code_ids
        self.charges: dict[int, str] = {}  # purchase id -> the charge id that paid it
        # The audit entries the steps so far must have written, by action.
        self.audited: Counter[str] = Counter()
        # The highest per_user_limit each campaign ever had: lowering it revokes nothing.
        self.max_limit: dict[int, int] = {}
        self.fresh = 0

    @initialize(specs=st.lists(st.tuples(campaign_specs(), CODE_CAPS), min_size=2, max_size=4))
    def create_campaigns(self, specs: list[tuple[CampaignSpec, list[int | None]]]) -> None:
        for i, (spec, caps) in enumerate(specs):
            first_cap, *more_caps = caps
            campaign, first = self.campaigns.create(attrs.evolve(spec, name=f"ops{i}"), actor=PERSON,
                                                    code=f"OPS{i}CODE0", code_max_total_uses=first_cap)
            assert campaign.id is not None and first is not None and first.id is not None
            self.campaign_ids.append(campaign.id)
            self.max_limit[campaign.id] = campaign.per_user_limit
            self.code_ids.append(first.id)
            self.plaintexts.append(f"OPS{i}CODE0")
            for j, cap in enumerate(more_caps, start=1):
                code = self.codes.add(campaign.id, f"OPS{i}CODE{j}", cap, actor=PERSON)
                assert code.id is not None
                self.code_ids.append(code.id)
                self.plaintexts.append(f"OPS{i}CODE{j}")
            self.audited[audit.CAMPAIGN_CREATED] += 1
            self.audited[audit.CODE_CREATED] += len(caps)

    # --- helpers -----------------------------------------------------------------------------------------

    def purchase(self, index: int, status: PurchaseStatus | None = None) -> Purchase | None:
        """Any purchase, or one in ``status`` (when there is one: the rules that need it are rare otherwise)."""
        purchases = sorted(self.store.purchases.values(), key=lambda p: p.id or 0)
        chosen = [p for p in purchases if p.status is status] or purchases
        return chosen[index % len(chosen)] if chosen else None

    def live_in_campaign(self, campaign_id: int, user_id: int) -> int:
        return sum(1 for r in self.store.redemptions.values() if r.campaign_id == campaign_id
                   and r.user_id == user_id and r.status is not RedemptionStatus.EXPIRED)

    # --- redeem, admin, changes, time -------------------------------------------------------------------------

    @rule(user=USERS, which=PICK, key=KEYS)
    def redeem(self, user: int, which: int, key: str) -> None:
        outcome = self.redemptions.redeem(user, self.plaintexts[which % len(self.plaintexts)], key)
        event(f"redeem: {outcome.result.value}" + (" (replayed)" if outcome.replayed else ""))
        if outcome.accepted and not outcome.replayed:
            assert outcome.redemption is not None and outcome.campaign is not None
            campaign = self.store.campaigns[outcome.redemption.campaign_id]
            # SPEC 4 check 7 and 9: a new redemption never takes the user past the limit in force
            assert self.live_in_campaign(campaign.id or 0, user) <= campaign.per_user_limit
            assert 1 <= outcome.redemption.user_slot <= campaign.per_user_limit

    @rule(user=USERS, guess=st.sampled_from(["OPS0ZZZZ", "OPS1YYYY", "OPS0XXXX", "NOPE1234"]),
          times=st.integers(1, 4))
    def redeem_wrong_codes(self, user: int, guess: str, times: int) -> None:
        """Guesses (the prefix rule's food: ``OPS0`` is campaign 0's prefix)."""
        for i in range(times):
            self.redemptions.redeem(user, f"{guess}{i}", f"guess{self.fresh}")
            self.fresh += 1

    @rule(which=PICK, users=st.integers(2, 4))
    def hammer_a_code(self, which: int, users: int) -> None:
        """Several users redeem one code twice each: what is not accepted fails on its hash (the hash rule's food)."""
        code = self.plaintexts[which % len(self.plaintexts)]
        for user in range(1, users + 1):
            for _ in range(2):
                self.redemptions.redeem(user, code, f"hammer{self.fresh}")
                self.fresh += 1

    @rule(level=LEVELS, pick=PICK, status=ADMIN_STATUSES)
    def admin_status(self, level: str, pick: int, status: CampaignStatus) -> None:
        table: dict[int, Any]
        if level == "campaign":
            target_id, table = self.campaign_ids[pick % len(self.campaign_ids)], self.store.campaigns
        else:
            target_id, table = self.code_ids[pick % len(self.code_ids)], self.store.codes
        before = table[target_id]
        try:
            after: Any = (self.campaigns.set_status(target_id, status, actor=PERSON) if level == "campaign"
                          else self.codes.set_status(target_id, status, actor=PERSON))
        except InvalidTransition:
            assert before.status in (CampaignStatus.DEPLETED, CampaignStatus.EXPIRED) or (
                status is CampaignStatus.ACTIVE and (before.is_past_validity(self.clock.now())
                                                     or before.capacity_used_up()))
            assert table[target_id] == before
            return
        assert after.status is status
        if before.status is status:
            assert after == before  # same-state request: a no-op, and no audit entry
            return
        event(f"admin: {level} -> {status.value}")
        paused = status is CampaignStatus.PAUSED
        if level == "campaign":
            self.audited[audit.CAMPAIGN_PAUSED if paused else audit.CAMPAIGN_RESUMED] += 1
        else:
            self.audited[audit.CODE_PAUSED if paused else audit.CODE_RESUMED] += 1

    @rule(pick=PICK, budget=st.sampled_from([KEEP, None, 1, 2, 3, 4, 6]), limit=st.sampled_from([KEEP, 1, 2, 3]),
          until=st.sampled_from([KEEP, 30, 120, 4320]))
    def change_campaign(self, pick: int, budget: int | str | None, limit: int | str, until: int | str) -> None:
        """Budget (None: unlimited), per-user limit and ``valid_until`` (minutes from now), each kept or changed."""
        cid = self.campaign_ids[pick % len(self.campaign_ids)]
        before = self.store.campaigns[cid]
        given: dict[str, Any] = {}
        if budget != KEEP:
            given["max_total_uses"] = budget
        if isinstance(limit, int):
            given["per_user_limit"] = limit
        if isinstance(until, int):
            given["valid_until"] = self.clock.now() + timedelta(minutes=until)
        if not given:
            return
        try:
            after = self.campaigns.change(cid, CampaignChanges(**given), actor=PERSON)
        except InvalidChange:
            assert (isinstance(budget, int) and budget < before.used_total) or (
                "valid_until" in given and before.status is CampaignStatus.EXPIRED)
            assert self.store.campaigns[cid] == before
            return
        event("campaign changed")
        self.audited[audit.CAMPAIGN_CHANGED] += 1
        assert (after.status, after.used_total) == (before.status, before.used_total)  # no change moves a status
        assert all(getattr(after, field) == value for field, value in given.items())
        if isinstance(limit, int):
            self.max_limit[cid] = max(self.max_limit[cid], limit)

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

    @rule(user=USERS, product=PRODUCTS, mode=st.sampled_from(["none", "own", "own", "any"]), pick=PICK)
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
            base = p.base_stars_amount
            if r.discount_stars is not None:
                event("checkout with a Stars discount")
                assert p.discount_stars_amount == min(r.discount_stars, base - 1)
            else:
                assert r.discount_percent is not None
                assert p.discount_stars_amount == min(base - 1, base * r.discount_percent // 100)
        return p

    @rule(user=USERS, which=PICK, product=PRODUCTS, pay=st.booleans())
    def redeem_and_buy(self, user: int, which: int, product: str, pay: bool) -> None:
        """The bot's happy path in one step: redeem, checkout with the reservation, invoice, (pay)."""
        outcome = self.redemptions.redeem(user, self.plaintexts[which % len(self.plaintexts)], f"buy{self.fresh}")
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

    @rule(pick=PICK)
    def invoice_sent(self, pick: int) -> None:
        p = self.purchase(pick)
        if p is None or p.id is None:
            return
        try:
            self.checkout.mark_invoice_sent(p.id)
        except InvalidPurchaseState:
            assert p.status not in (PurchaseStatus.CREATED, PurchaseStatus.INVOICE_SENT)

    @rule(pick=PICK, right_amount=st.booleans())
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

    @rule(pick=PICK, after_precheckout=st.booleans())
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

    @rule(pick=PICK)
    def replay_payment(self, pick: int) -> None:
        if not self.charges:
            return
        pid = sorted(self.charges)[pick % len(self.charges)]
        before = (dict(self.store.purchases), list(self.store.ledger), dict(self.store.redemptions))
        p = self.store.purchases[pid]
        settled = self.checkout.successful_payment(pid, self.charges[pid], p.final_stars_amount)
        assert settled.replayed and settled.purchase == p
        assert before == (dict(self.store.purchases), list(self.store.ledger), dict(self.store.redemptions))

    @rule(pick=PICK, how=st.sampled_from(["gateway", "marked by a person", "marked by telegram"]),
          paid=st.booleans())
    def refund(self, pick: int, how: str, paid: bool) -> None:
        p = self.purchase(pick, PurchaseStatus.PAID if paid else None)
        if p is None or p.id is None:
            return
        try:
            if how == "gateway":
                refunded = self.checkout.refund(p.id, self.gateway, actor=PERSON)
            elif how == "marked by a person":
                refunded = self.checkout.mark_refunded(p.id, actor=PERSON)
            else:
                refunded = self.checkout.mark_refunded(p.id)
        except InvalidPurchaseState:
            assert p.status not in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED)
            return
        assert refunded.status is PurchaseStatus.REFUNDED
        if p.status is PurchaseStatus.PAID:
            event("refunded" + (" with a promo" if p.promo_redemption_id else ""))
            if how != "marked by telegram":
                self.audited[audit.PURCHASE_REFUNDED] += 1

    @rule(pick=PICK, refunded=st.booleans())
    def manual_refund_rollback(self, pick: int, refunded: bool) -> None:
        p = self.purchase(pick, PurchaseStatus.REFUNDED if refunded else None)
        if p is None or p.id is None:
            return
        try:
            result = self.jobs.rollback_refund(p.id, actor=PERSON)
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
        if not result.replayed:
            event("manual rollback revoked")
            self.audited[audit.REFUND_ROLLED_BACK] += 1

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
        summary = self.jobs.rollover_campaign_statuses()
        if summary.codes_depleted or summary.depleted or summary.expired:
            event("rollover moved something")
        now = self.clock.now()
        reserved = [r for r in self.store.redemptions.values() if r.status is RedemptionStatus.RESERVED]
        by_code = Counter(r.promo_code_id for r in reserved)
        by_campaign = Counter(r.campaign_id for r in reserved)
        for cid, c in self.store.campaigns.items():
            if c.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
                assert not c.is_past_validity(now)
            if c.status is CampaignStatus.ACTIVE:
                assert not (c.capacity_used_up() and by_campaign[cid] == 0)
        for code_id, code in self.store.codes.items():
            if code.status is CampaignStatus.ACTIVE:
                assert not (code.capacity_used_up() and by_code[code_id] == 0)

    @rule()
    def guard_job(self) -> None:
        codes_before = {i: c.status for i, c in self.store.codes.items()}
        campaigns_before = {i: c.status for i, c in self.store.campaigns.items()}
        alerts_before = len(self.notifier.alerts)
        summary = self.jobs.run_bruteforce_guard()
        pauses = len(summary.paused) + len(summary.paused_campaigns)
        if summary.paused:
            event("guard paused a code")
        if summary.paused_campaigns:
            event("guard paused a campaign")
        # One alert per rule and run (SPEC 8), carrying every pause of that rule as an item.
        kinds = int(bool(summary.paused)) + int(bool(summary.paused_campaigns))
        assert len(self.notifier.alerts) - alerts_before == kinds == summary.alerts_sent
        assert sum(a.details["count"] for a in self.notifier.alerts[alerts_before:]) == pauses
        for code_id in summary.paused:  # only ACTIVE codes are paused, hence alerted, once per pause
            assert codes_before[code_id] is CampaignStatus.ACTIVE
            assert self.store.codes[code_id].paused_reason is PausedReason.AUTO_BRUTEFORCE
        for cid in summary.paused_campaigns:
            assert campaigns_before[cid] is CampaignStatus.ACTIVE
            assert self.store.campaigns[cid].paused_reason is PausedReason.AUTO_BRUTEFORCE
        self.audited[audit.CODE_AUTO_PAUSED] += len(summary.paused)
        self.audited[audit.CAMPAIGN_AUTO_PAUSED] += len(summary.paused_campaigns)
        # One dedup_key per pause occurrence (what was paused, and when). The test clock can resume and pause the
        # same thing again at the very same instant — a real clock cannot — so compare occurrences.
        items = [(i, a.occurred_at) for a in self.notifier.alerts for i in a.details["items"]]
        occurrences = {(i.get("promo_code_id"), i["campaign_id"], at) for i, at in items}
        assert len({i["dedup_key"] for i, _ in items}) == len(occurrences)

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

    # --- invariants: SPEC 4 at both levels ------------------------------------------------------------------

    @invariant()
    def capacity_accounting_of_every_code(self) -> None:
        live = Counter(r.promo_code_id for r in self.store.redemptions.values()
                       if r.status in LIVE_REDEMPTION_STATUSES)
        for code_id, code in self.store.codes.items():
            assert code.max_total_uses is None or code.used_total <= code.max_total_uses
            assert code.used_total == live[code_id], (code_id, code.used_total, live[code_id])

    @invariant()
    def capacity_accounting_of_every_campaign(self) -> None:
        live = Counter(r.campaign_id for r in self.store.redemptions.values()
                       if r.status in LIVE_REDEMPTION_STATUSES)
        of_codes: Counter[int] = Counter()
        for code in self.store.codes.values():
            of_codes[code.campaign_id] += code.used_total
        for cid, c in self.store.campaigns.items():
            assert c.max_total_uses is None or c.used_total <= c.max_total_uses
            assert c.used_total == live[cid] == of_codes[cid], (cid, c.used_total, live[cid], of_codes[cid])

    @invariant()
    def a_redemption_belongs_to_its_codes_campaign(self) -> None:
        for r in self.store.redemptions.values():
            assert self.store.codes[r.promo_code_id].campaign_id == r.campaign_id

    @invariant()
    def one_live_redemption_per_code_and_user(self) -> None:
        live = Counter((r.promo_code_id, r.user_id) for r in self.store.redemptions.values()
                       if r.status is not RedemptionStatus.EXPIRED)
        assert all(n == 1 for n in live.values())

    @invariant()
    def per_user_limit_per_campaign(self) -> None:
        live = [r for r in self.store.redemptions.values() if r.status is not RedemptionStatus.EXPIRED]
        slots = Counter((r.campaign_id, r.user_id, r.user_slot) for r in live)
        assert all(n == 1 for n in slots.values())
        held = Counter((r.campaign_id, r.user_id) for r in live)
        for (cid, _), n in held.items():  # lowering the limit later revokes nothing: the highest limit bounds
            assert n <= self.max_limit[cid]
        assert all(1 <= r.user_slot <= self.max_limit[r.campaign_id] for r in live)

    @invariant()
    def one_redemption_per_key(self) -> None:
        keys = Counter(r.idempotency_key for r in self.store.redemptions.values())
        assert all(n == 1 for n in keys.values())

    # --- invariants: SPEC 3 statuses ------------------------------------------------------------------------

    @invariant()
    def paused_reason_only_while_paused(self) -> None:
        rows: list[Campaign | PromoCode] = [*self.store.campaigns.values(), *self.store.codes.values()]
        for row in rows:
            assert (row.paused_reason is not None) == (row.status is CampaignStatus.PAUSED), row

    @invariant()
    def codes_expire_with_their_campaign_and_keep_its_copies(self) -> None:
        for code in self.store.codes.values():
            c = self.store.campaigns[code.campaign_id]
            if code.status is CampaignStatus.EXPIRED:
                assert c.status is CampaignStatus.EXPIRED
            if c.status is CampaignStatus.EXPIRED:
                assert code.status in (CampaignStatus.EXPIRED, CampaignStatus.DEPLETED)
            assert (code.campaign_name, code.promo_type, code.target_scope, code.valid_from, code.valid_until) == (
                c.name, c.promo_type, c.target_scope, c.valid_from, c.valid_until)

    # --- invariants: SPEC 5 settlement ----------------------------------------------------------------------

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

    # --- invariants: SPEC 7 audit ---------------------------------------------------------------------------

    @invariant()
    def one_audit_entry_per_change_and_none_for_replays(self) -> None:
        assert Counter(e.action for e in self.store.audit) == +self.audited

    @invariant()
    def audit_entries_name_who_and_never_a_plaintext_code(self) -> None:
        for e in self.store.audit:
            automatic = e.action in (audit.CODE_AUTO_PAUSED, audit.CAMPAIGN_AUTO_PAUSED)
            assert e.actor == (GUARD if automatic else PERSON), e
            text = repr(e.details)
            assert not any(p in text for p in self.plaintexts), e


OpsMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
TestOpsMachine = OpsMachine.TestCase
