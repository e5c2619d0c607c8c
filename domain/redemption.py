"""Redeeming a promo code (SPEC 4): the check order, idempotency, capacity, grants and reservations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from domain import entitlements
from domain.codes import MAX_RAW_CODE_LENGTH, CodeHasher, code_prefix, normalize_code, parse_code
from domain.errors import DuplicateIdempotencyKey, LiveRedemptionExists, UserSlotTaken, ValidationError
from domain.model import (
    Attempt,
    Campaign,
    CampaignStatus,
    LedgerSource,
    PromoCode,
    PromoType,
    RedeemResult,
    RedeemSnapshot,
    Redemption,
    RedemptionStatus,
    TargetScope,
)
from domain.policy import PromoPolicy
from domain.throttling import block_ends

if TYPE_CHECKING:
    from domain.outbox import OutcomeRecorder
    from ports.clock import Clock
    from ports.repositories import Attempts, Campaigns, PromoCodes, Redemptions, UnitOfWork, UnitOfWorkFactory

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_:.\-]{1,128}$")
MAX_USER_ID = 2**63 - 1
# Lost races for a campaign slot one redeem may retry (each loss is another redeem of the user committing).
MAX_SLOT_RACES = 1000 + 3


@attrs.frozen
class RedeemOutcome:
    """What a redeem call decided. ``redemption``, ``code`` and ``campaign`` are set for ACCEPTED (and replays)."""

    result: RedeemResult
    replayed: bool = False
    redemption: Redemption | None = None
    code: PromoCode | None = None
    campaign: Campaign | None = None
    retry_after: datetime | None = None

    @property
    def accepted(self) -> bool:
        return self.result is RedeemResult.ACCEPTED


@attrs.frozen
class _Decision:
    outcome: RedeemOutcome
    attempt: Attempt | None
    committed: bool = False  # the accepted redemption's transaction committed (with the recorder's writes)


class _RetryFromTheTop(Exception):
    """A racing request with the same idempotency key won; start over to replay it."""


class _SlotTaken(Exception):
    """A racing redeem of the same user took the campaign slot this one chose; read again and choose the next."""


def free_slot(held: Sequence[int], per_user_limit: int) -> int | None:
    """The lowest of the slots 1..per_user_limit not in ``held`` -- None when the user holds ``per_user_limit``
    live redemptions or more (a limit lowered later revokes nothing, so more than the limit is possible)."""
    if len(held) >= per_user_limit:
        return None
    taken = set(held)
    return next((slot for slot in range(1, per_user_limit + 1) if slot not in taken), None)


def validate_redeem_input(user_id: object, code: object, idempotency_key: object) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 1 <= user_id <= MAX_USER_ID:
        errors.append({"field": "user_id", "message": "must be a positive 64-bit integer"})
    if not isinstance(code, str):
        errors.append({"field": "code", "message": "must be a string"})
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        errors.append({"field": "idempotency_key", "message": "must be 1..128 characters of [A-Za-z0-9_:.-]"})
    return errors


class RedemptionService:
    """``redeem(user_id, code, idempotency_key)`` with the exact SPEC 4 check order."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        hasher: CodeHasher,
        policy: PromoPolicy | None = None,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._hasher = hasher
        self._policy = policy or PromoPolicy()

    def redeem(self, user_id: int, code: str, idempotency_key: str,
               recorder: OutcomeRecorder[RedeemOutcome] | None = None) -> RedeemOutcome:
        """Redeem, or answer why not. With ``recorder``, its writes (the bot's reply) join the transaction that
        records the outcome: the redemption's, the failed attempt's, or for a replay one of their own."""
        errors = validate_redeem_input(user_id, code, idempotency_key)
        if errors:
            raise ValidationError(errors)
        normalized = parse_code(code)
        hashes = self._hasher.lookup_hashes(normalized) if normalized is not None else ()
        # The attempt row carries the hash of whatever the input normalizes to, malformed or not
        # (SPEC 4); input too long to normalize (or normalizing to nothing) is recorded without one.
        seen = normalize_code(code) if len(code) <= MAX_RAW_CODE_LENGTH else ""
        attempt_hash = self._hasher.hash(seen) if seen else None
        attempt_prefix = code_prefix(seen) if seen else None
        key_races = 0
        slot_races = 0
        while True:
            try:
                decision = self._decide(user_id, hashes, idempotency_key, attempt_hash, attempt_prefix, recorder)
            except _RetryFromTheTop:
                key_races += 1
                if key_races >= 3:
                    raise RuntimeError("idempotency key kept racing; giving up") from None  # pragma: no cover
                continue
            except _SlotTaken:
                # Each lost slot race means another redeem of this user committed: at most per_user_limit of
                # them can, so this ends (bounded anyway, for a limit lowered meanwhile).
                slot_races += 1
                if slot_races > MAX_SLOT_RACES:
                    raise RuntimeError("campaign slots kept racing; giving up") from None  # pragma: no cover
                continue
            if decision.attempt is not None and not decision.outcome.accepted:
                # Failed attempts get their own short transaction: the redemption's was rolled back.
                with self._uow() as uow:
                    if recorder is not None:
                        recorder.begin(uow)
                    uow.attempts.add(decision.attempt)
                    if recorder is not None:
                        recorder.record(uow, decision.outcome)
                    uow.commit()
            elif recorder is not None and not decision.committed:
                # A replay (or a reused key) changes nothing: the recorder's writes are a transaction of their own.
                with self._uow() as uow:
                    recorder.begin(uow)
                    recorder.record(uow, decision.outcome)
                    uow.commit()
            return decision.outcome

    def _decide(
        self, user_id: int, hashes: tuple[str, ...], key: str, attempt_hash: str | None, prefix: str | None,
        recorder: OutcomeRecorder[RedeemOutcome] | None = None,
    ) -> _Decision:
        now = self._clock.now()
        campaign_id: int | None = None

        def failed(result: RedeemResult, retry_after: datetime | None = None) -> _Decision:
            attempt = Attempt(user_id=user_id, normalized_code_hash=attempt_hash, code_prefix=prefix,
                              result=result, attempted_at=now, campaign_id=campaign_id)
            return _Decision(RedeemOutcome(result=result, retry_after=retry_after), attempt)

        with self._uow() as uow:
            if recorder is not None:
                # First: its write also keeps the accepted path's statements in this one transaction.
                recorder.begin(uow)
            # The reads of checks 1-7 at once (one round trip on PostgreSQL); each is consulted in order.
            snap = uow.redemptions.redeem_snapshot(key, user_id, hashes, now - self._policy.fail_window)
            # 1. idempotency
            if snap.by_key is not None:
                return self._replay_or_reuse(uow, snap.by_key, user_id, hashes)
            # The attempt names the code's campaign whenever the code exists (SPEC 4): a throttled one too.
            campaign_id = snap.campaign.id if snap.code is not None and snap.campaign is not None else None
            # 2. throttling
            until = block_ends(snap.failures, snap.latest_failure, now, self._policy)
            if until is not None:
                return failed(RedeemResult.RATE_LIMITED, until)
            # 3. malformed or unknown
            code, campaign = snap.code, snap.campaign
            if code is None or code.id is None or campaign is None or campaign.id is None:
                return failed(RedeemResult.INVALID)
            # 4-6. the code's state and its campaign's: either one decides
            if CampaignStatus.PAUSED in (code.status, campaign.status):
                return failed(RedeemResult.PAUSED)
            if (CampaignStatus.EXPIRED in (code.status, campaign.status) or campaign.is_past_validity(now)
                    or code.is_past_validity(now)):
                return failed(RedeemResult.EXPIRED)
            if now < campaign.valid_from:
                return failed(RedeemResult.NOT_APPLICABLE)
            if (CampaignStatus.DEPLETED in (code.status, campaign.status) or code.capacity_used_up()
                    or campaign.capacity_used_up()):
                return failed(RedeemResult.DEPLETED)
            # 7. one live redemption per user and code; at most per_user_limit per user and campaign
            live = snap.live
            if live is not None:
                if live.idempotency_key == key:
                    # The same request committed after check 1 read: answer as its replay.
                    raise _RetryFromTheTop()
                return failed(RedeemResult.ALREADY_USED)
            slot = free_slot(snap.held_slots, campaign.per_user_limit)
            if slot is None:
                return failed(RedeemResult.ALREADY_USED)
            # 8. first purchase only
            if campaign.target_scope is TargetScope.FIRST_PURCHASE_ONLY and uow.purchases.user_has_paid(user_id):
                return failed(RedeemResult.NOT_APPLICABLE)
            # 10. grant or reserve, then 9. the atomic claim from the code's cap and the campaign's budget, in one
            # transaction: the outcome is the SPEC order's (a lost claim rolls the redemption back and answers
            # DEPLETED), but the code and campaign rows -- the rows redeems contend for -- stay locked only from the
            # claim to the commit (one round trip) instead of across the inserts as well. The user's allowance is
            # claimed by the insert itself: the redemption takes campaign slot ``slot``, unique while live.
            accepted = Attempt(user_id=user_id, normalized_code_hash=attempt_hash, code_prefix=prefix,
                               result=RedeemResult.ACCEPTED, attempted_at=now, campaign_id=campaign_id)
            try:
                created = self._create(uow, code, campaign, user_id, key, slot, now, accepted, recorder)
            except DuplicateIdempotencyKey:
                # A racing request with this key committed first: in the serial order this request comes
                # after it, so check 1 decides -- its replay, or IDEMPOTENCY_KEY_REUSED.
                uow.rollback()
                raise _RetryFromTheTop() from None
            except (LiveRedemptionExists, UserSlotTaken) as lost:
                # A racing request of this user won (the database decided, and its row is committed
                # now). When that request carried this very key, this one is its replay.
                uow.rollback()
                winner = uow.redemptions.get_by_idempotency_key(key)
                if winner is not None:
                    return self._replay_or_reuse(uow, winner, user_id, hashes)
                if self._claim_would_fail(uow, code.id, now):
                    return failed(RedeemResult.DEPLETED)  # check 6 comes before check 7
                if isinstance(lost, UserSlotTaken):
                    raise _SlotTaken() from None  # another slot may be free: check 7 again with fresh reads
                return failed(RedeemResult.ALREADY_USED)
            if created is None:
                uow.rollback()
                return failed(RedeemResult.DEPLETED)
            uow.commit()
        redemption, claimed_code, claimed_campaign = created
        outcome = RedeemOutcome(RedeemResult.ACCEPTED, False, redemption, claimed_code, claimed_campaign)
        return _Decision(outcome, None, committed=True)

    @staticmethod
    def _claim_would_fail(uow: UnitOfWork, promo_code_id: int, now: datetime) -> bool:
        """After losing a race on an insert (and rolling back): would the claim (check 9) fail now? Asked of the
        claim itself, then rolled back, so the answer is the claim's own condition."""
        claimed = uow.promo_codes.claim_capacity(promo_code_id, now)
        uow.rollback()
        return claimed is None

    def _create(self, uow: UnitOfWork, code: PromoCode, campaign: Campaign, user_id: int, key: str, slot: int,
                now: datetime, accepted: Attempt, recorder: OutcomeRecorder[RedeemOutcome] | None = None,
                ) -> tuple[Redemption, PromoCode, Campaign] | None:
        """The redemption (and for a grant its entitlement), the ACCEPTED attempt, the recorder's writes, then the
        claim: the redemption with the claimed code and campaign, or None when the claim failed (the caller rolls
        back, the recorder's writes with it).

        The recorder writes BEFORE the claim, from the code and campaign as read (its reply needs the new
        redemption's id, not the counters): the code and campaign rows, the ones every redeem of a launch burst
        waits for, are then locked from the claim to the commit only, as without a recorder."""
        assert code.id is not None and campaign.id is not None
        if campaign.promo_type is PromoType.PREMIUM_GRANT:
            redemption = uow.redemptions.add(Redemption(
                id=None, promo_code_id=code.id, campaign_id=campaign.id, user_id=user_id, idempotency_key=key,
                status=RedemptionStatus.APPLIED, discount_percent=None, discount_stars=None, reserved_until=None,
                purchase_id=None, applied_purchase_id=None, created_at=now, updated_at=now, user_slot=slot,
            ))
            assert campaign.grant_plan_code is not None and campaign.grant_days is not None
            entitlements.grant(uow, user_id, campaign.grant_plan_code, campaign.grant_days, now,
                               LedgerSource.PROMO_GRANT, promo_redemption_id=redemption.id)
            uow.attempts.add(accepted)
        else:
            reservation = Redemption(
                id=None, promo_code_id=code.id, campaign_id=campaign.id, user_id=user_id, idempotency_key=key,
                status=RedemptionStatus.RESERVED, discount_percent=campaign.discount_percent,
                discount_stars=campaign.discount_stars, reserved_until=now + self._policy.reservation_ttl,
                purchase_id=None, applied_purchase_id=None, created_at=now, updated_at=now, user_slot=slot,
            )
            if recorder is None:
                # The three writes at once (one statement on PostgreSQL).
                return uow.redemptions.add_and_claim(reservation, accepted, now)
            redemption = uow.redemptions.add(reservation)
            uow.attempts.add(accepted)
        if recorder is not None:
            recorder.record(uow, RedeemOutcome(RedeemResult.ACCEPTED, False, redemption, code, campaign))
        claimed = uow.promo_codes.claim_capacity(code.id, now)
        return (redemption, *claimed) if claimed is not None else None

    @staticmethod
    def _replay_or_reuse(
        uow: UnitOfWork, existing: Redemption, user_id: int, hashes: tuple[str, ...]
    ) -> _Decision:
        code = uow.promo_codes.get(existing.promo_code_id)
        if existing.user_id == user_id and code is not None and code.code_hash in hashes:
            campaign = uow.campaigns.get(code.campaign_id)
            return _Decision(RedeemOutcome(RedeemResult.ACCEPTED, True, existing, code, campaign), None)
        return _Decision(RedeemOutcome(RedeemResult.IDEMPOTENCY_KEY_REUSED), None)


def snapshot_by_parts(redemptions: Redemptions, attempts: Attempts, promo_codes: PromoCodes, campaigns: Campaigns,
                      idempotency_key: str, user_id: int, code_hashes: Sequence[str], failures_since: datetime
                      ) -> RedeemSnapshot:
    """``Redemptions.redeem_snapshot`` from the single-purpose reads: the reference an adapter's one-statement
    version must agree with, and the implementation of the adapters that have no faster way."""
    failures, latest = attempts.failure_stats(user_id, failures_since)
    code = promo_codes.get_by_hashes(code_hashes) if code_hashes else None
    campaign = campaigns.get(code.campaign_id) if code is not None else None
    live = redemptions.get_live(code.id, user_id) if code is not None and code.id is not None else None
    held = redemptions.held_slots(code.campaign_id, user_id) if code is not None else ()
    return RedeemSnapshot(redemptions.get_by_idempotency_key(idempotency_key), failures, latest, code, campaign,
                          live, held)


def add_and_claim_by_parts(
    redemptions: Redemptions, attempts: Attempts, promo_codes: PromoCodes, redemption: Redemption, attempt: Attempt,
    now: datetime,
) -> tuple[Redemption, PromoCode, Campaign] | None:
    """``Redemptions.add_and_claim`` from the single-purpose writes, in that order (the reference): None when
    the claim failed, leaving the rollback of the other two to the caller."""
    stored = redemptions.add(redemption)
    attempts.add(attempt)
    claimed = promo_codes.claim_capacity(redemption.promo_code_id, now)
    return (stored, *claimed) if claimed is not None else None
