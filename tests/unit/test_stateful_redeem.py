"""SPEC 4 and 13: random interleavings of redeem (and two racing requests), expiry (the clock moves, the expiry job
runs), pause/resume of codes and of campaigns, budget, per-user-limit, validity and name changes, checkout
settlement, refund revocation and the status rollover, over several campaigns with several codes each, on the
in-memory adapters.

After every step the invariants of SPEC 4 hold at both levels, and every redeem answer matches an independent
oracle of the check order computed from the state the request read. Every admin change writes exactly one audit
row, a refused one or a no-op none.

Why this file stays whole (about 670 lines, past the house limit): it is one hypothesis state machine. The oracle,
the rules and the invariants read and write one model (the store, the clock, the plaintexts handed out, the audit
rows expected) and are only meaningful together: each rule's answer is checked against the oracle on the state the
request read, and the invariants check what any sequence of rules may have left. Spread over mixins or modules, a
reader would have to put the machine together again to know what a step is checked against; the sections inside
the class (set-up, oracle, redeem, admin, changes, time and jobs, invariants) are its seams."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain import audit
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.errors import InvalidChange, InvalidTransition, ValidationError
from domain.maintenance import MaintenanceService
from domain.model import (
    LIVE_REDEMPTION_STATUSES,
    Campaign,
    CampaignChanges,
    CampaignStatus,
    PausedReason,
    PromoCode,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    Redemption,
    RedemptionStatus,
    TargetScope,
)
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.unit.redeem_setup import Override

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
POLICY = PromoPolicy()
ACTOR = "ops:stateful"
USERS = st.integers(min_value=1, max_value=4)
KEY_POOL = [f"k{i}" for i in range(8)]
MINUTES = st.sampled_from([1, 5, 8, 14, 15, 16, 30, 59, 60, 61, 180, 1439, 1440, 1500])
PICK = st.integers(0, 7)  # an index, taken modulo the number of campaigns or codes
MAX_CODES_PER_CAMPAIGN = 4
ACTIVE, PAUSED, EXPIRED, DEPLETED = (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.EXPIRED,
                                     CampaignStatus.DEPLETED)


@st.composite
def campaign_specs(draw: st.DrawFn) -> CampaignSpec:
    kind = draw(st.sampled_from(list(PromoType)))
    valid_until = draw(st.sampled_from([None, None, 30, 120, 1500]))
    starts_later = draw(st.sampled_from([0, 0, 0, 20]))
    return CampaignSpec(
        name="c",
        promo_type=kind,
        grant_plan_code="PREMIUM" if kind is PromoType.PREMIUM_GRANT else None,
        grant_days=draw(st.integers(1, 90)) if kind is PromoType.PREMIUM_GRANT else None,
        discount_percent=draw(st.integers(1, 99)) if kind is PromoType.PERCENT_DISCOUNT else None,
        discount_stars=draw(st.integers(1, 500)) if kind is PromoType.STARS_DISCOUNT else None,
        target_scope=draw(st.sampled_from([TargetScope.ALL, TargetScope.ALL, TargetScope.FIRST_PURCHASE_ONLY])),
        valid_from=T0 + timedelta(minutes=starts_later),
        valid_until=None if valid_until is None else T0 + timedelta(minutes=valid_until),
        max_total_uses=draw(st.sampled_from([None, None, 2, 3, 5])),
        per_user_limit=draw(st.sampled_from([1, 1, 2, 3])),
    )


CODE_CAPS = st.sampled_from([None, None, 1, 2])


def spellings(code: str) -> list[str]:
    return [code, code.lower(), f" {code[:3]}-{code[3:].lower()} ", "\u2012".join(code)]


def copy_of(store: MemoryStore) -> MemoryStore:
    """What a request reading now sees, kept while others write on."""
    snapshot = MemoryStore()
    snapshot.campaigns = dict(store.campaigns)
    snapshot.campaign_names = dict(store.campaign_names)
    snapshot.codes = dict(store.codes)
    snapshot.code_hashes = dict(store.code_hashes)
    snapshot.redemptions = dict(store.redemptions)
    snapshot.attempts = list(store.attempts)
    snapshot.purchases = dict(store.purchases)
    return snapshot


def is_live(r: Redemption) -> bool:
    return r.status is not RedemptionStatus.EXPIRED


def claimable(code: PromoCode, campaign: Campaign) -> bool:
    """Check 9: a unit can be taken from the code's cap and the campaign's budget together."""
    return (code.status is ACTIVE and not code.capacity_used_up()
            and campaign.status is ACTIVE and not campaign.capacity_used_up())


class RedeemMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        self.uow = InMemoryUnitOfWorkFactory()
        self.store = self.uow.store
        self.hasher = CodeHasher("stateful-pepper")
        self.campaigns = CampaignService(self.uow, self.clock, self.hasher)
        self.codes = CodeService(self.uow, self.clock, self.hasher)
        self.redemptions = RedemptionService(self.uow, self.clock, self.hasher, POLICY)
        self.jobs = MaintenanceService(self.uow, self.clock, PromoPolicy(job_batch_size=3))
        self.campaign_ids: list[int] = []
        # Per campaign (same order): its codes as typed, and their ids.
        self.plain: list[list[str]] = []
        self.code_ids: list[list[int]] = []
        # idempotency key -> (user, code id, redemption id) of the redemption it made
        self.by_key: dict[str, tuple[int, int, int]] = {}
        # (campaign id, user) -> live redemptions the user held above the campaign's per_user_limit when the limit
        # was lowered (they are kept: SPEC 3), shrinking as they run out
        self.above_limit: dict[tuple[int, int], int] = {}
        self.fresh = 0
        self.charges = 0
        self.renames = 0

    # --- set-up -------------------------------------------------------------------------------------

    @initialize(specs=st.lists(campaign_specs(), min_size=2, max_size=3),
                caps=st.lists(st.lists(CODE_CAPS, min_size=1, max_size=3), min_size=3, max_size=3))
    def create_campaigns(self, specs: list[CampaignSpec], caps: list[list[int | None]]) -> None:
        for i, spec in enumerate(specs):
            first = f"C{i}K0X{i * 7}"
            campaign, code = self.campaigns.create(attrs.evolve(spec, name=f"c{i}"), actor=ACTOR, code=first,
                                                   code_max_total_uses=caps[i][0])
            assert campaign.id is not None and code is not None and code.id is not None
            self.campaign_ids.append(campaign.id)
            self.plain.append([first])
            self.code_ids.append([code.id])
            for cap in caps[i][1:]:
                self.add_a_code(i, cap)

    # --- helpers ------------------------------------------------------------------------------------------

    def add_a_code(self, idx: int, cap: int | None) -> None:
        plain = f"C{idx}K{len(self.plain[idx])}X{idx * 7}"
        code = self.codes.add(self.campaign_ids[idx], plain, cap, actor=ACTOR)
        assert code.id is not None
        self.plain[idx].append(plain)
        self.code_ids[idx].append(code.id)

    def pick_code(self, which: int, code: int) -> tuple[int, int, str]:
        """(campaign id, code id, typed code) of the picked code."""
        idx = which % len(self.campaign_ids)
        j = code % len(self.code_ids[idx])
        return self.campaign_ids[idx], self.code_ids[idx][j], self.plain[idx][j]

    def fresh_key(self) -> str:
        self.fresh += 1
        return f"fresh-{self.fresh}"

    def live_in_campaign(self, state: MemoryStore, campaign_id: int, user_id: int) -> list[Redemption]:
        return [r for r in state.redemptions.values()
                if r.campaign_id == campaign_id and r.user_id == user_id and is_live(r)]

    def lowest_free_place(self, code_id: int, user_id: int) -> int | None:
        """The ``user_slot`` a redemption of the code by the user takes now: the lowest of 1..per_user_limit free."""
        campaign = self.store.campaigns[self.store.codes[code_id].campaign_id]
        taken = {r.user_slot for r in self.live_in_campaign(self.store, campaign.id or 0, user_id)}
        return min(set(range(1, campaign.per_user_limit + 1)) - taken, default=None)

    def audit_rows(self) -> int:
        return len(self.store.audit)

    # --- the oracle ---------------------------------------------------------------------------------------

    def expected_result(self, user_id: int, code_id: int | None, state: MemoryStore) -> RedeemResult:
        """The SPEC 4 check order (2-8) over ``state`` at both levels, written independently of domain.redemption."""
        now = self.clock.now()
        failures = [a.attempted_at for a in state.attempts
                    if a.user_id == user_id and now - POLICY.fail_window <= a.attempted_at
                    and a.result not in (RedeemResult.ACCEPTED, RedeemResult.RATE_LIMITED)]
        if len(failures) >= POLICY.fail_limit and now < max(failures) + POLICY.block:
            return RedeemResult.RATE_LIMITED
        if code_id is None:
            return RedeemResult.INVALID
        code = state.codes[code_id]
        campaign = state.campaigns[code.campaign_id]
        statuses = (code.status, campaign.status)
        if PAUSED in statuses:
            return RedeemResult.PAUSED
        if EXPIRED in statuses or (campaign.valid_until is not None and now >= campaign.valid_until):
            return RedeemResult.EXPIRED
        if now < campaign.valid_from:
            return RedeemResult.NOT_APPLICABLE
        if DEPLETED in statuses or any(
            row.max_total_uses is not None and row.used_total >= row.max_total_uses for row in (code, campaign)
        ):
            return RedeemResult.DEPLETED
        held = self.live_in_campaign(state, campaign.id or 0, user_id)
        if any(r.promo_code_id == code_id for r in held) or len(held) >= campaign.per_user_limit:
            return RedeemResult.ALREADY_USED
        if campaign.target_scope is TargetScope.FIRST_PURCHASE_ONLY and any(
            p.user_id == user_id and p.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED)
            for p in state.purchases.values()
        ):
            return RedeemResult.NOT_APPLICABLE
        return RedeemResult.ACCEPTED

    # --- redeem ---------------------------------------------------------------------------------------------

    @rule(
        user_id=USERS,
        which=PICK,
        code=PICK,
        spelling=st.integers(0, 3),
        invalid=st.sampled_from([None, None, None, None, None, "NOSUCH99", "x!", "A" * 300]),
        key=st.one_of(st.sampled_from(KEY_POOL), st.none()),
    )
    def redeem(self, user_id: int, which: int, code: int, spelling: int, invalid: str | None,
               key: str | None) -> None:
        _, code_id, plain = self.pick_code(which, code)
        typed = invalid if invalid else spellings(plain)[spelling]
        self.redeem_and_check(user_id, typed, None if invalid else code_id, key)

    @rule(user_id=USERS, which=PICK, code=PICK, key=st.one_of(st.sampled_from(KEY_POOL), st.none()))
    def redeem_valid_code(self, user_id: int, which: int, code: int, key: str | None) -> None:
        _, code_id, plain = self.pick_code(which, code)
        self.redeem_and_check(user_id, plain, code_id, key)

    @rule(user_id=USERS, code=st.sampled_from(["NOSUCH99", "x!", "NOPE1234"]))
    def fail_a_few_times(self, user_id: int, code: str) -> None:
        """A user guessing codes: enough failures in a row to reach the throttle."""
        for _ in range(2):
            self.redeem_and_check(user_id, code, None, None)

    @rule(user_id=USERS, which=PICK, minutes_apart=st.sampled_from([0, 0, 8]))
    def user_tries_every_code_of_a_campaign(self, user_id: int, which: int, minutes_apart: int) -> None:
        """A collector: the user's places in the campaign fill up, then check 7 answers ALREADY_USED. Minutes apart,
        the reservations run out one by one (the earliest place first)."""
        idx = which % len(self.campaign_ids)
        for code_id, plain in zip(self.code_ids[idx], self.plain[idx], strict=True):
            self.redeem_and_check(user_id, plain, code_id, None)
            self.clock.advance(minutes=minutes_apart)

    def redeem_and_check(self, user_id: int, typed: str, code_id: int | None, key: str | None) -> None:
        key = key or self.fresh_key()
        expected = self.expected_result(user_id, code_id, self.store)
        before = copy_of(self.store)
        free = None if code_id is None else self.lowest_free_place(code_id, user_id)

        out = self.redemptions.redeem(user_id, typed, key)

        if key in self.by_key:
            first_user, first_code, first_id = self.by_key[key]
            if first_user == user_id and code_id == first_code:
                assert out.result is RedeemResult.ACCEPTED and out.replayed
                assert out.redemption is not None and out.redemption.id == first_id
                assert out.redemption == self.store.redemptions[first_id]
            else:
                assert out.result is RedeemResult.IDEMPOTENCY_KEY_REUSED and not out.replayed
            # Neither a replay nor a key reuse records or changes anything.
            assert self.store.attempts == before.attempts
            assert (self.store.redemptions, self.store.codes, self.store.campaigns) == (
                before.redemptions, before.codes, before.campaigns)
            return

        assert not out.replayed
        assert out.result is expected, (out.result, expected)
        assert len(self.store.attempts) == len(before.attempts) + 1
        attempt = self.store.attempts[-1]
        assert attempt.result is out.result and attempt.user_id == user_id
        assert attempt.campaign_id == (None if code_id is None else self.store.codes[code_id].campaign_id)
        if out.result is RedeemResult.RATE_LIMITED:
            assert out.retry_after is not None and out.retry_after > self.clock.now()
        if out.result is not RedeemResult.ACCEPTED:
            assert (self.store.redemptions, self.store.codes, self.store.campaigns) == (
                before.redemptions, before.codes, before.campaigns)
            return
        assert code_id is not None
        self.check_new_redemption(out.redemption, before, user_id, code_id, key, free)

    def check_new_redemption(self, r: Redemption | None, before: MemoryStore, user_id: int, code_id: int, key: str,
                             slot: int | None) -> None:
        """An accepted redeem made one redemption, in the user's lowest free place, and took one unit from the
        code and one from its campaign."""
        code = before.codes[code_id]
        campaign = before.campaigns[code.campaign_id]
        assert r is not None and r.id is not None and r.id not in before.redemptions
        assert (r.user_id, r.promo_code_id, r.campaign_id, r.idempotency_key) == (user_id, code_id, campaign.id, key)
        if slot is not None:
            assert r.user_slot == slot
        if campaign.promo_type.is_discount:
            assert r.status is RedemptionStatus.RESERVED
            assert r.reserved_until == self.clock.now() + POLICY.reservation_ttl
            assert (r.discount_percent, r.discount_stars) == (campaign.discount_percent, campaign.discount_stars)
        else:
            assert r.status is RedemptionStatus.APPLIED
            assert any(e.promo_redemption_id == r.id for e in self.store.ledger)
        assert self.store.codes[code_id].used_total == code.used_total + 1
        assert self.store.campaigns[code.campaign_id].used_total == campaign.used_total + 1
        self.by_key[key] = (user_id, code_id, r.id)

    @rule(first=USERS, other_user=st.one_of(st.none(), USERS), which=PICK, code_a=PICK, code_b=PICK,
          same_key=st.booleans(),
          meanwhile=st.sampled_from(["redeem", "redeem", "redeem", "pause the code", "pause the campaign"]))
    def two_requests_race(self, first: int, other_user: int | None, which: int, code_a: int, code_b: int,
                          same_key: bool, meanwhile: str) -> None:
        """Request B (on a code of a campaign) reads everything before A commits and writes after it; A is a
        redeem of a code of the same campaign, or an admin pausing B's code or its campaign. Only the conditional
        claim at both levels (both ACTIVE, both below their limits) and the unique constraints (the key, the live
        redemption of a code, the user's place in the campaign) stand between B and a broken invariant."""
        second = first if other_user is None else other_user  # the same user racing themself, often
        cid, id_a, plain_a = self.pick_code(which, code_a)
        _, id_b, plain_b = self.pick_code(which, code_b)
        snapshot = copy_of(self.store)
        key_a = self.fresh_key()
        key_b = key_a if same_key else self.fresh_key()

        if meanwhile == "redeem":  # A
            self.redeem_and_check(first, plain_a, id_a, key_a)
        elif meanwhile == "pause the code":
            self.set_status("code", which, code_b, PAUSED)
        else:
            self.set_status("campaign", which, code_b, PAUSED)
        assert self.store.codes[id_b].campaign_id == cid

        made_by_a = self.by_key.get(key_a)
        expected = self.expected_result(second, id_b, snapshot)
        retried = False
        if expected is RedeemResult.ACCEPTED:
            code_now = self.store.codes[id_b]
            if same_key and made_by_a is not None:
                # The unique key refuses B's insert; B starts over and answers as A's twin (check 1), whatever A
                # left of the capacity.
                replay = first == second and id_a == id_b
                expected = RedeemResult.ACCEPTED if replay else RedeemResult.IDEMPOTENCY_KEY_REUSED
            elif not claimable(code_now, self.store.campaigns[code_now.campaign_id]):
                expected = RedeemResult.DEPLETED  # lost the claim (check 9), or check 6 before check 7
            elif made_by_a is not None and first == second and id_a == id_b:
                expected = RedeemResult.ALREADY_USED  # one live redemption per code and user
            elif made_by_a is not None and first == second:
                # A took the place in the campaign B chose: B reads again and decides on what it sees now.
                retried = True
                expected = self.expected_result(second, id_b, self.store)
        units = {"n": 0}

        def reads_before_a_committed() -> InMemoryUnitOfWork:
            uow = InMemoryUnitOfWork(self.store)
            units["n"] += 1
            if units["n"] == 1:
                stale = InMemoryUnitOfWork(snapshot)
                uow.redemptions = Override(uow.redemptions, redeem_snapshot=stale.redemptions.redeem_snapshot)
                uow.purchases = Override(uow.purchases, user_has_paid=stale.purchases.user_has_paid)
            return uow

        before = copy_of(self.store)
        free_now = self.lowest_free_place(id_b, second)
        racing = RedemptionService(reads_before_a_committed, self.clock, self.hasher, POLICY)
        out = racing.redeem(second, plain_b, key_b)
        assert out.result is expected, (out.result, expected, retried)
        replay_or_reuse = out.replayed or out.result is RedeemResult.IDEMPOTENCY_KEY_REUSED
        if out.replayed:
            assert made_by_a is not None and out.redemption is not None and out.redemption.id == made_by_a[2]
        assert len(self.store.attempts) == len(before.attempts) + (0 if replay_or_reuse else 1)
        if out.accepted and not out.replayed:
            self.check_new_redemption(out.redemption, before, second, id_b, key_b, free_now)
        else:
            assert (self.store.redemptions, self.store.codes, self.store.campaigns) == (
                before.redemptions, before.codes, before.campaigns)

    # --- admin: pause and resume, at both levels ----------------------------------------------------------

    @rule(level=st.sampled_from(["campaign", "code"]), which=PICK, code=PICK,
          status=st.sampled_from([PAUSED, ACTIVE]))
    def set_status(self, level: str, which: int, code: int, status: CampaignStatus) -> None:
        cid, code_id, _ = self.pick_code(which, code)
        if level == "campaign":
            self.check_transition(self.store.campaigns[cid],
                                  lambda: self.campaigns.set_status(cid, status, actor=ACTOR, reason="stateful"),
                                  status, audit.CAMPAIGN_PAUSED if status is PAUSED else audit.CAMPAIGN_RESUMED)
        else:
            self.check_transition(self.store.codes[code_id],
                                  lambda: self.codes.set_status(code_id, status, actor=ACTOR),
                                  status, audit.CODE_PAUSED if status is PAUSED else audit.CODE_RESUMED)

    def check_transition(self, row: Campaign | PromoCode, act: Callable[[], Campaign | PromoCode],
                         status: CampaignStatus, action: str) -> None:
        """SPEC 3 at either level: ACTIVE <-> PAUSED only, same state a no-op, no resume past valid_until or with
        the capacity used up; one audit row for a change, none otherwise."""
        before = copy_of(self.store)
        rows = self.audit_rows()
        refused = row.status in (DEPLETED, EXPIRED) or (
            status is ACTIVE and row.status is PAUSED
            and (row.is_past_validity(self.clock.now()) or row.capacity_used_up()))
        try:
            after = act()
        except InvalidTransition:
            assert refused
            assert (self.store.codes, self.store.campaigns, self.audit_rows()) == (before.codes, before.campaigns, rows)
            return
        assert not refused
        if row.status is status:
            assert after == row and self.audit_rows() == rows
            return
        assert after.status is status and after.used_total == row.used_total
        assert after.paused_reason is (None if status is ACTIVE else PausedReason.MANUAL)
        [entry] = self.store.audit[rows:]
        assert (entry.actor, entry.action, entry.target_id) == (ACTOR, action, str(row.id))

    # --- admin: changes of a campaign --------------------------------------------------------------------------

    @rule(which=PICK, other=PICK, change=st.sampled_from(["budget", "limit", "valid_until", "name"]),
          budget=st.sampled_from(["none", "below", "used", "used", "one more", "three more"]),
          limit=st.integers(1, 3), minutes=st.sampled_from([None, -10, 0, 30, 120, 1500]), clash=st.booleans(),
          busiest=st.booleans())
    def change_campaign(self, which: int, other: int, change: str, budget: str, limit: int, minutes: int | None,
                        clash: bool, busiest: bool) -> None:
        """Budget, per-user limit, validity or name of a campaign (through CampaignService.change). ``busiest``: the
        campaign with the most units used, where a budget below them and a limit below what a user holds are
        likeliest."""
        cid = self.campaign_ids[which % len(self.campaign_ids)]
        if busiest:
            cid = max(self.campaign_ids, key=lambda i: (self.store.campaigns[i].used_total, -i))
        if change == "budget":
            self.change_budget(cid, budget)
        elif change == "limit":
            self.change_per_user_limit(cid, limit)
        elif change == "valid_until":
            self.change_valid_until(cid, minutes)
        else:
            self.rename(cid, self.campaign_ids[other % len(self.campaign_ids)], clash)

    def crowded_campaigns(self) -> list[tuple[int, int]]:
        """(campaign id, the most live redemptions a user holds in it) where a user holds any."""
        held = Counter((r.campaign_id, r.user_id) for r in self.store.redemptions.values() if is_live(r))
        most: dict[int, int] = {}
        for (cid, _), n in held.items():
            most[cid] = max(n, most.get(cid, 0))
        return sorted(most.items())

    @precondition(lambda self: bool(self.crowded_campaigns()))
    @rule(pick=PICK, below=st.integers(0, 1))
    def lower_the_limit_to_what_a_user_holds_or_below(self, pick: int, below: int) -> None:
        cid, most = self.crowded_campaigns()[pick % len(self.crowded_campaigns())]
        self.change_per_user_limit(cid, max(1, most - below))

    def change_budget(self, cid: int, budget: str) -> None:
        used = self.store.campaigns[cid].used_total
        new = {"none": None, "below": used - 1, "used": used, "one more": used + 1, "three more": used + 3}[budget]
        if new is not None and new < 1:
            new = 1  # below 1 is no budget at all (a ValidationError of its own): ask for the smallest one
        refused = new is not None and new < used
        self.check_change(cid, CampaignChanges(max_total_uses=new), refused, "max_total_uses")

    def change_per_user_limit(self, cid: int, limit: int) -> None:
        held = Counter(r.user_id for r in self.store.redemptions.values() if r.campaign_id == cid and is_live(r))
        self.check_change(cid, CampaignChanges(per_user_limit=limit), False, "per_user_limit")
        # Lowering the limit revokes nothing: what users hold above it stays (and is checked for below).
        for user_id, n in held.items():
            if n > limit:
                self.above_limit[(cid, user_id)] = max(n, self.above_limit.get((cid, user_id), 0))

    def change_valid_until(self, cid: int, minutes: int | None) -> None:
        campaign = self.store.campaigns[cid]
        until = None if minutes is None else self.clock.now() + timedelta(minutes=minutes)
        refused = campaign.status is EXPIRED or (until is not None and (
            until <= self.clock.now() or until <= campaign.valid_from))
        self.check_change(cid, CampaignChanges(valid_until=until), refused, "valid_until")

    def rename(self, cid: int, oid: int, clash: bool) -> None:
        self.renames += 1
        name = self.store.campaigns[oid].name if clash else f"renamed {self.renames}"
        self.check_change(cid, CampaignChanges(name=name), clash and oid != cid, "name")

    def check_change(self, cid: int, changes: CampaignChanges, refused: bool, field: str) -> None:
        before = copy_of(self.store)
        rows = self.audit_rows()
        try:
            after = self.campaigns.change(cid, changes, actor=ACTOR)
        except (InvalidChange, ValidationError) as exc:
            assert refused, exc
            assert isinstance(exc, InvalidChange) and exc.details["field"] == field
            # Nothing changed, at neither level, and no audit row.
            assert (self.store.codes, self.store.campaigns, self.audit_rows()) == (before.codes, before.campaigns, rows)
            return
        assert not refused
        for name, value in changes.changed().items():
            assert getattr(after, name) == value
        assert after.used_total == before.campaigns[cid].used_total and after.status is before.campaigns[cid].status
        [entry] = self.store.audit[rows:]
        assert (entry.actor, entry.action, entry.target_id) == (ACTOR, audit.CAMPAIGN_CHANGED, str(cid))
        # Nothing but the campaign and the copies on its codes changed.
        assert self.store.redemptions == before.redemptions
        assert {i: c for i, c in self.store.campaigns.items() if i != cid} == {
            i: c for i, c in before.campaigns.items() if i != cid}

    @precondition(lambda self: any(len(ids) < MAX_CODES_PER_CAMPAIGN for ids in self.code_ids))
    @rule(which=PICK, cap=CODE_CAPS)
    def add_code(self, which: int, cap: int | None) -> None:
        idx = which % len(self.campaign_ids)
        if len(self.code_ids[idx]) >= MAX_CODES_PER_CAMPAIGN:
            return
        if self.store.campaigns[self.campaign_ids[idx]].status is EXPIRED:
            rows = self.audit_rows()
            try:
                self.codes.add(self.campaign_ids[idx], f"C{idx}K{len(self.plain[idx])}X{idx * 7}", cap, actor=ACTOR)
            except InvalidTransition:
                assert self.audit_rows() == rows
                return
            raise AssertionError("a code was added to an expired campaign")
        self.add_a_code(idx, cap)

    # --- time and the jobs -------------------------------------------------------------------------------------

    @rule(minutes=MINUTES, then_run_expiry=st.booleans())
    def time_travel(self, minutes: int, then_run_expiry: bool) -> None:
        self.clock.advance(minutes=minutes)
        if then_run_expiry:  # the job runs every minute in production
            self.run_reservation_expiry()

    def run_reservation_expiry(self) -> None:
        """Due reservations -> EXPIRED, each giving its unit back to its code and its campaign once."""
        now = self.clock.now()
        due = {i for i, r in self.store.redemptions.items() if r.status is RedemptionStatus.RESERVED
               and r.purchase_id is None and r.reserved_until is not None and r.reserved_until <= now}
        summary = self.jobs.expire_reservations()
        assert summary.expired == len(due)
        assert all(self.store.redemptions[i].status is RedemptionStatus.EXPIRED for i in due)

    @rule()
    def run_status_rollover(self) -> None:
        now = self.clock.now()
        before = copy_of(self.store)
        self.jobs.rollover_campaign_statuses()
        reserving = {r.promo_code_id for r in before.redemptions.values() if r.status is RedemptionStatus.RESERVED}
        for cid, was in before.campaigns.items():
            c = self.store.campaigns[cid]
            if was.status in (ACTIVE, PAUSED) and was.is_past_validity(now):
                assert c.status is EXPIRED
                assert all(code.status in (EXPIRED, DEPLETED) for code in self.store.codes.values()
                           if code.campaign_id == cid)
            elif was.status is ACTIVE and was.capacity_used_up() and not any(
                    before.codes[i].campaign_id == cid for i in reserving):
                assert c.status is DEPLETED
            else:
                assert c.status is was.status
        for code_id, was_code in before.codes.items():
            owner = before.campaigns[was_code.campaign_id]
            expired_with_its_campaign = owner.status in (ACTIVE, PAUSED) and owner.is_past_validity(now)
            if (was_code.status is ACTIVE and was_code.capacity_used_up() and code_id not in reserving
                    and not expired_with_its_campaign):
                assert self.store.codes[code_id].status is DEPLETED

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
        """A refund revokes the redemption; the unit is NOT given back (audit-conservative), nor the user's place."""
        applied = self._with_status(RedemptionStatus.APPLIED)
        r = applied[pick % len(applied)]
        assert r.id is not None
        with self.uow() as uow:
            assert uow.redemptions.revoke(r.id, self.clock.now()) is not None
            uow.commit()

    # --- invariants ------------------------------------------------------------------------------------------

    @invariant()
    def used_total_counts_reserved_applied_and_revoked_redemptions_at_both_levels(self) -> None:
        live = [r for r in self.store.redemptions.values() if r.status in LIVE_REDEMPTION_STATUSES]
        by_code = Counter(r.promo_code_id for r in live)
        by_campaign = Counter(r.campaign_id for r in live)
        for code_id, code in self.store.codes.items():
            assert code.used_total == by_code[code_id], (code_id, code.used_total, by_code[code_id])
        for cid, campaign in self.store.campaigns.items():
            assert campaign.used_total == by_campaign[cid], (cid, campaign.used_total, by_campaign[cid])
            assert campaign.used_total == sum(c.used_total for c in self.store.codes.values() if c.campaign_id == cid)

    @invariant()
    def used_total_never_exceeds_the_cap_or_the_budget(self) -> None:
        rows: list[PromoCode | Campaign] = [*self.store.codes.values(), *self.store.campaigns.values()]
        for row in rows:
            assert row.used_total >= 0
            if row.max_total_uses is not None:
                assert row.used_total <= row.max_total_uses, row

    @invariant()
    def at_most_one_live_redemption_per_code_and_user(self) -> None:
        pairs = [(r.promo_code_id, r.user_id) for r in self.store.redemptions.values() if is_live(r)]
        assert len(pairs) == len(set(pairs)), Counter(pairs).most_common(1)

    @invariant()
    def at_most_per_user_limit_live_per_campaign_and_user_but_what_a_lowered_limit_left(self) -> None:
        held = Counter((r.campaign_id, r.user_id) for r in self.store.redemptions.values() if is_live(r))
        places = [(r.campaign_id, r.user_id, r.user_slot) for r in self.store.redemptions.values() if is_live(r)]
        assert len(places) == len(set(places))  # one live redemption per place
        for (cid, user_id), n in held.items():
            limit = self.store.campaigns[cid].per_user_limit
            kept = self.above_limit.get((cid, user_id), 0)
            assert n <= max(limit, kept), (cid, user_id, n, limit, kept)
        # What was kept above a lowered limit only shrinks: a user above the limit takes no more.
        for pair, kept in list(self.above_limit.items()):
            self.above_limit[pair] = min(kept, held[pair])

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

    @invariant()
    def every_code_carries_its_campaigns_fields_and_statuses_are_consistent(self) -> None:
        for code in self.store.codes.values():
            campaign = self.store.campaigns[code.campaign_id]
            assert (code.campaign_name, code.promo_type, code.target_scope, code.valid_from, code.valid_until) == (
                campaign.name, campaign.promo_type, campaign.target_scope, campaign.valid_from, campaign.valid_until)
            if campaign.status is EXPIRED:
                assert code.status in (EXPIRED, DEPLETED)
        rows: list[PromoCode | Campaign] = [*self.store.codes.values(), *self.store.campaigns.values()]
        for row in rows:
            assert (row.paused_reason is not None) == (row.status is PAUSED)

    @invariant()
    def the_audit_never_holds_a_plaintext_code(self) -> None:
        dump = repr(self.store.audit)
        assert not any(plain in dump for codes in self.plain for plain in codes)


RedeemMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestRedeemMachine = RedeemMachine.TestCase
