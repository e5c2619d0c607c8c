"""SPEC 4 and 13: random interleavings of redeem, two racing requests, pause/resume, time travel,
reservation expiry, checkout settlement, refund revocation and status rollover on the in-memory adapters.
After every step the invariants of SPEC 4 must hold, and every redeem answer must match an independent
oracle of the check order computed from the state the request read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.errors import InvalidTransition
from domain.model import (
    LIVE_REDEMPTION_STATUSES,
    CampaignStatus,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    Redemption,
    RedemptionStatus,
    TargetScope,
)
from domain.policy import PromoPolicy
from domain.redemption import RedemptionService

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
POLICY = PromoPolicy()
USERS = st.integers(min_value=1, max_value=4)
KEY_POOL = [f"k{i}" for i in range(8)]
MINUTES = st.sampled_from([1, 5, 14, 15, 16, 30, 59, 60, 61, 180, 1439, 1440, 1500])


@st.composite
def campaign_specs(draw: st.DrawFn) -> CampaignSpec:
    grant = draw(st.booleans())
    valid_until = draw(st.sampled_from([None, None, 30, 120, 1500]))
    starts_later = draw(st.sampled_from([0, 0, 0, 20]))
    return CampaignSpec(
        campaign_name="c",
        promo_type=PromoType.PREMIUM_GRANT if grant else PromoType.PERCENT_DISCOUNT,
        grant_plan_code="PREMIUM" if grant else None,
        grant_days=draw(st.integers(1, 90)) if grant else None,
        discount_percent=None if grant else draw(st.integers(1, 99)),
        target_scope=draw(st.sampled_from([TargetScope.ALL, TargetScope.ALL, TargetScope.FIRST_PURCHASE_ONLY])),
        valid_from=T0 + timedelta(minutes=starts_later),
        valid_until=None if valid_until is None else T0 + timedelta(minutes=valid_until),
        max_total_uses=draw(st.sampled_from([None, 1, 2, 3])),
    )


class _Override:
    """Delegates to a real in-memory repository except for the methods given."""

    def __init__(self, inner: Any, **methods: Callable[..., Any]) -> None:
        self._inner = inner
        self.__dict__.update(methods)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def spellings(code: str) -> list[str]:
    return [code, code.lower(), f" {code[:3]}-{code[3:].lower()} ", "\u2012".join(code)]


class RedeemMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        self.uow = InMemoryUnitOfWorkFactory()
        self.store = self.uow.store
        self.hasher = CodeHasher("stateful-pepper")
        self.campaigns = CampaignService(self.uow, self.clock, self.hasher)
        self.redemptions = RedemptionService(self.uow, self.clock, self.hasher, POLICY)
        self.ids: list[int] = []
        self.codes: list[str] = []
        # idempotency key -> (user, campaign id, redemption id) of the redemption it made
        self.by_key: dict[str, tuple[int, int, int]] = {}
        self.fresh = 0
        self.charges = 0

    # --- set-up -------------------------------------------------------------------------------------

    @initialize(specs=st.lists(campaign_specs(), min_size=2, max_size=4))
    def create_campaigns(self, specs: list[CampaignSpec]) -> None:
        for i, spec in enumerate(specs):
            code = f"CAMP{i}Z{i * 7}"
            created = self.campaigns.create(attrs.evolve(spec, campaign_name=f"c{i}"), code)
            assert created.id is not None
            self.ids.append(created.id)
            self.codes.append(code)

    # --- the oracle ---------------------------------------------------------------------------------------

    def expected_result(self, user_id: int, campaign_id: int | None, state: MemoryStore) -> RedeemResult:
        """The SPEC 4 check order (2-8) over ``state``, written independently of domain.redemption."""
        now = self.clock.now()
        campaign = None if campaign_id is None else state.campaigns[campaign_id]
        failures = [a.attempted_at for a in state.attempts
                    if a.user_id == user_id and now - POLICY.fail_window <= a.attempted_at
                    and a.result not in (RedeemResult.ACCEPTED, RedeemResult.RATE_LIMITED)]
        if len(failures) >= POLICY.fail_limit and now < max(failures) + POLICY.block:
            return RedeemResult.RATE_LIMITED
        if campaign is None:
            return RedeemResult.INVALID
        if campaign.status is CampaignStatus.PAUSED:
            return RedeemResult.PAUSED
        if campaign.status is CampaignStatus.EXPIRED or (campaign.valid_until and now >= campaign.valid_until):
            return RedeemResult.EXPIRED
        if now < campaign.valid_from:
            return RedeemResult.NOT_APPLICABLE
        if campaign.status is CampaignStatus.DEPLETED or (
            campaign.max_total_uses is not None and campaign.used_total >= campaign.max_total_uses
        ):
            return RedeemResult.DEPLETED
        if any(r.promo_code_id == campaign.id and r.user_id == user_id and r.status is not RedemptionStatus.EXPIRED
               for r in state.redemptions.values()):
            return RedeemResult.ALREADY_USED
        if campaign.target_scope is TargetScope.FIRST_PURCHASE_ONLY and any(
            p.user_id == user_id and p.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED)
            for p in state.purchases.values()
        ):
            return RedeemResult.NOT_APPLICABLE
        return RedeemResult.ACCEPTED

    def fresh_key(self) -> str:
        self.fresh += 1
        return f"fresh-{self.fresh}"

    # --- rules ------------------------------------------------------------------------------------------

    @rule(
        user_id=USERS,
        which=st.integers(0, 3),
        spelling=st.integers(0, 3),
        invalid=st.sampled_from([None, None, None, "NOSUCH99", "x!", "A" * 300]),
        key=st.one_of(st.sampled_from(KEY_POOL), st.none()),
    )
    def redeem(self, user_id: int, which: int, spelling: int, invalid: str | None, key: str | None) -> None:
        idx = which % len(self.ids)
        code = invalid if invalid else spellings(self.codes[idx])[spelling]
        self.redeem_and_check(user_id, code, None if invalid else self.ids[idx], key)

    @rule(user_id=USERS, which=st.integers(0, 3), key=st.one_of(st.sampled_from(KEY_POOL), st.none()))
    def redeem_valid_code(self, user_id: int, which: int, key: str | None) -> None:
        idx = which % len(self.ids)
        self.redeem_and_check(user_id, self.codes[idx], self.ids[idx], key)

    @rule(user_id=USERS, code=st.sampled_from(["NOSUCH99", "x!", "NOPE1234"]))
    def fail_a_few_times(self, user_id: int, code: str) -> None:
        """A user guessing codes: enough failures in a row to reach the throttle."""
        for _ in range(2):
            self.redeem_and_check(user_id, code, None, None)

    def redeem_and_check(self, user_id: int, code: str, campaign_id: int | None, key: str | None) -> None:
        key = key or self.fresh_key()
        campaign = None if campaign_id is None else self.store.campaigns[campaign_id]
        expected = self.expected_result(user_id, campaign_id, self.store)
        attempts_before = len(self.store.attempts)
        redemptions_before = dict(self.store.redemptions)
        campaigns_before = dict(self.store.campaigns)

        out = self.redemptions.redeem(user_id, code, key)

        if key in self.by_key:
            first_user, first_campaign, first_id = self.by_key[key]
            if first_user == user_id and campaign is not None and campaign.id == first_campaign:
                assert out.result is RedeemResult.ACCEPTED and out.replayed
                assert out.redemption is not None and out.redemption.id == first_id
                assert out.redemption == self.store.redemptions[first_id]
            else:
                assert out.result is RedeemResult.IDEMPOTENCY_KEY_REUSED and not out.replayed
            # Neither a replay nor a key reuse records or changes anything.
            assert len(self.store.attempts) == attempts_before
            assert self.store.redemptions == redemptions_before
            assert self.store.campaigns == campaigns_before
            return

        assert not out.replayed
        assert out.result is expected, (out.result, expected)
        assert len(self.store.attempts) == attempts_before + 1
        assert self.store.attempts[-1].result is out.result
        if out.result is RedeemResult.RATE_LIMITED:
            assert out.retry_after is not None and out.retry_after > self.clock.now()
        if out.result is not RedeemResult.ACCEPTED:
            assert self.store.redemptions == redemptions_before
            assert self.store.campaigns == campaigns_before
            return
        assert campaign is not None and campaign.id is not None
        r = out.redemption
        assert r is not None and r.id is not None and r.id not in redemptions_before
        assert (r.user_id, r.promo_code_id, r.idempotency_key) == (user_id, campaign.id, key)
        if campaign.promo_type is PromoType.PERCENT_DISCOUNT:
            assert r.status is RedemptionStatus.RESERVED
            assert r.reserved_until == self.clock.now() + POLICY.reservation_ttl
        else:
            assert r.status is RedemptionStatus.APPLIED
            assert any(e.promo_redemption_id == r.id for e in self.store.ledger)
        assert self.store.campaigns[campaign.id].used_total == campaign.used_total + 1
        self.by_key[key] = (user_id, campaign.id, r.id)

    @rule(first=USERS, second=USERS, which=st.integers(0, 3), same_key=st.booleans())
    def two_requests_race(self, first: int, second: int, which: int, same_key: bool) -> None:
        """Request B reads everything before request A commits and writes after it: only the conditional
        capacity claim and the unique constraints stand between B and a broken invariant."""
        idx = which % len(self.ids)
        cid, code = self.ids[idx], self.codes[idx]
        snapshot = MemoryStore()
        snapshot.campaigns = dict(self.store.campaigns)
        snapshot.code_hashes = dict(self.store.code_hashes)
        snapshot.redemptions = dict(self.store.redemptions)
        snapshot.attempts = list(self.store.attempts)
        snapshot.purchases = dict(self.store.purchases)
        key_a = self.fresh_key()
        key_b = key_a if same_key else self.fresh_key()

        self.redeem_and_check(first, code, cid, key_a)  # A

        made_by_a = self.by_key.get(key_a)
        expected = self.expected_result(second, cid, snapshot)
        if expected is RedeemResult.ACCEPTED:
            now_row = self.store.campaigns[cid]
            if now_row.status is not CampaignStatus.ACTIVE or now_row.capacity_used_up():
                expected = RedeemResult.DEPLETED  # lost the capacity claim (check 9)
            elif same_key and made_by_a is not None:
                # The unique key refuses B's insert; B starts over and sees A's redemption.
                expected = RedeemResult.ACCEPTED if first == second else RedeemResult.IDEMPOTENCY_KEY_REUSED
            elif made_by_a is not None and first == second:
                expected = RedeemResult.ALREADY_USED  # one live redemption per user and campaign
        units = {"n": 0}

        def reads_before_a_committed() -> InMemoryUnitOfWork:
            uow = InMemoryUnitOfWork(self.store)
            units["n"] += 1
            if units["n"] == 1:
                stale = InMemoryUnitOfWork(snapshot)
                uow.promo_codes = _Override(uow.promo_codes, get=stale.promo_codes.get,
                                            get_by_hashes=stale.promo_codes.get_by_hashes)
                uow.redemptions = _Override(uow.redemptions, get_live=stale.redemptions.get_live,
                                            get_by_idempotency_key=stale.redemptions.get_by_idempotency_key,
                                            redeem_snapshot=stale.redemptions.redeem_snapshot)
                uow.attempts = _Override(uow.attempts, failure_stats=stale.attempts.failure_stats)
                uow.purchases = _Override(uow.purchases, user_has_paid=stale.purchases.user_has_paid)
            return uow

        attempts_before = len(self.store.attempts)
        used_before = self.store.campaigns[cid].used_total
        out = RedemptionService(reads_before_a_committed, self.clock, self.hasher, POLICY).redeem(second, code, key_b)
        assert out.result is expected, (out.result, expected)
        replay_or_reuse = same_key and made_by_a is not None and expected is not RedeemResult.DEPLETED and (
            out.replayed or out.result is RedeemResult.IDEMPOTENCY_KEY_REUSED)
        if out.replayed:
            assert made_by_a is not None and out.redemption is not None and out.redemption.id == made_by_a[2]
        assert len(self.store.attempts) == attempts_before + (0 if replay_or_reuse else 1)
        if out.accepted and not out.replayed:
            assert out.redemption is not None and out.redemption.id is not None
            assert self.store.campaigns[cid].used_total == used_before + 1
            self.by_key[key_b] = (second, cid, out.redemption.id)
        else:
            assert self.store.campaigns[cid].used_total == used_before

    @rule(which=st.integers(0, 3), status=st.sampled_from([CampaignStatus.PAUSED, CampaignStatus.ACTIVE]))
    def admin_set_status(self, which: int, status: CampaignStatus) -> None:
        cid = self.ids[which % len(self.ids)]
        before = self.store.campaigns[cid]
        try:
            after = self.campaigns.set_status(cid, status)
        except InvalidTransition:
            assert before.status in (CampaignStatus.DEPLETED, CampaignStatus.EXPIRED) or (
                status is CampaignStatus.ACTIVE
                and (before.is_past_validity(self.clock.now()) or before.capacity_used_up())
            )
            assert self.store.campaigns[cid] == before
            return
        assert after.status is status
        assert after.used_total == before.used_total

    @rule(minutes=MINUTES, then_run_expiry=st.booleans())
    def time_travel(self, minutes: int, then_run_expiry: bool) -> None:
        self.clock.advance(minutes=minutes)
        if then_run_expiry:  # the job runs every minute in production
            self.run_reservation_expiry()

    @rule()
    def run_reservation_expiry(self) -> None:
        """What the expiry job does: due reservations -> EXPIRED, each gives its unit back once."""
        now = self.clock.now()
        with self.uow() as uow:
            for r in uow.redemptions.due_for_expiry(now, limit=3):
                assert r.id is not None
                if uow.redemptions.expire(r.id, now) is not None:
                    uow.promo_codes.release_capacity(r.promo_code_id, now)
            uow.commit()

    @rule()
    def run_status_rollover(self) -> None:
        now = self.clock.now()
        with self.uow() as uow:
            for c in uow.promo_codes.due_for_expiry(now, limit=10):
                assert c.id is not None
                uow.promo_codes.set_status(c.id, [CampaignStatus.ACTIVE, CampaignStatus.PAUSED],
                                           CampaignStatus.EXPIRED, None, now)
            for c in uow.promo_codes.due_for_depletion(limit=10):
                assert c.id is not None
                uow.promo_codes.set_status(c.id, [CampaignStatus.ACTIVE], CampaignStatus.DEPLETED, None, now)
            uow.commit()

    def _with_status(self, status: RedemptionStatus) -> list[Redemption]:
        return sorted((r for r in self.store.redemptions.values() if r.status is status), key=lambda r: r.id or 0)

    @precondition(lambda self: bool(self._with_status(RedemptionStatus.RESERVED)))
    @rule(pick=st.integers(0, 50))
    def pay_with_reservation(self, pick: int) -> None:
        """A checkout: bind the reservation to a purchase, then settle it (both conditional)."""
        reserved = self._with_status(RedemptionStatus.RESERVED)
        r = reserved[pick % len(reserved)]
        assert r.id is not None
        now = self.clock.now()
        self.charges += 1
        with self.uow() as uow:
            p = uow.purchases.add(Purchase(
                id=None, user_id=r.user_id, product_code="PREMIUM_30D", base_stars_amount=150,
                discount_stars_amount=0, final_stars_amount=150, promo_redemption_id=r.id,
                status=PurchaseStatus.INVOICE_SENT, telegram_payment_charge_id=None, created_at=now, updated_at=now,
            ))
            assert p.id is not None
            if uow.redemptions.bind_purchase(r.id, p.id, now) is None:
                assert r.reserved_until is not None and now >= r.reserved_until
                return  # too late: rolled back with the unit of work
            uow.purchases.set_status(p.id, [PurchaseStatus.INVOICE_SENT], PurchaseStatus.PAID, now, f"ch{self.charges}")
            assert uow.redemptions.apply(r.id, p.id, now) is not None
            uow.commit()

    @precondition(lambda self: bool(self._with_status(RedemptionStatus.APPLIED)))
    @rule(pick=st.integers(0, 50))
    def refund_rollback(self, pick: int) -> None:
        """A refund revokes the redemption; the unit is NOT given back (audit-conservative)."""
        applied = self._with_status(RedemptionStatus.APPLIED)
        r = applied[pick % len(applied)]
        assert r.id is not None
        with self.uow() as uow:
            assert uow.redemptions.revoke(r.id, self.clock.now()) is not None
            uow.commit()

    # --- invariants ------------------------------------------------------------------------------------------

    @invariant()
    def used_total_never_exceeds_max_total_uses(self) -> None:
        for c in self.store.campaigns.values():
            assert c.used_total >= 0
            if c.max_total_uses is not None:
                assert c.used_total <= c.max_total_uses, (c.used_total, c.max_total_uses)

    @invariant()
    def used_total_counts_reserved_applied_and_revoked_redemptions(self) -> None:
        for cid, c in self.store.campaigns.items():
            live = sum(1 for r in self.store.redemptions.values()
                       if r.promo_code_id == cid and r.status in LIVE_REDEMPTION_STATUSES)
            assert c.used_total == live, (cid, c.used_total, live)

    @invariant()
    def at_most_one_non_expired_redemption_per_campaign_and_user(self) -> None:
        seen: set[tuple[int, int]] = set()
        for r in self.store.redemptions.values():
            if r.status is not RedemptionStatus.EXPIRED:
                pair = (r.promo_code_id, r.user_id)
                assert pair not in seen, pair
                seen.add(pair)

    @invariant()
    def one_idempotency_key_makes_at_most_one_redemption(self) -> None:
        keys = [r.idempotency_key for r in self.store.redemptions.values()]
        assert len(keys) == len(set(keys))
        for key, (_, _, rid) in self.by_key.items():
            assert self.store.redemptions[rid].idempotency_key == key

    @invariant()
    def reservations_expire_only_after_reserved_until(self) -> None:
        for r in self.store.redemptions.values():
            if r.status is RedemptionStatus.EXPIRED:
                assert r.reserved_until is not None and r.updated_at >= r.reserved_until


RedeemMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestRedeemMachine = RedeemMachine.TestCase
