"""The maintenance jobs of SPEC 6 as domain services, and the manual refund rollback of SPEC 7.

Every job is idempotent: it finds its work with a query, then changes each row with a conditional
repository method that states the state it expects, so a row another writer (or a concurrent run of
the same job) already moved is skipped, never changed twice. Work is done in batches of
``policy.job_batch_size`` rows, one unit of work per batch, at most ``max_batches`` per run.
Alerts are raised only after the commit that made them true; a failing notifier is counted and
logged, never allowed to fail the job.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from domain import audit
from domain.alert_groups import AlertItem, by_kind, grouped_alert
from domain.alerts import PROMO_CAMPAIGN_AUTO_PAUSED, AlertPolicy, RoutedAlert, dedup_key
from domain.checkout import take_back_entitlement
from domain.errors import InvalidTransition, NoPromoRedemption, NotFound, PurchaseNotRefunded
from domain.model import (
    OPEN_PURCHASE_STATUSES,
    Campaign,
    CampaignStatus,
    PausedReason,
    PromoCode,
    Purchase,
    PurchaseStatus,
    RedemptionStatus,
)
from domain.policy import PromoPolicy

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.notifier import Notifier
    from ports.repositories import Redemptions, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("starpromo.maintenance")

DEFAULT_MAX_BATCHES = 1000
RULE_HASH = "hash"
RULE_PREFIX = "prefix"
GUARD_ACTOR = audit.job_actor("run_promo_bruteforce_guard")


class _Summary:
    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)  # type: ignore[arg-type]


@attrs.define
class ReservationExpirySummary(_Summary):
    scanned: int = 0
    expired: int = 0
    batches: int = 0


@attrs.define
class CampaignRolloverSummary(_Summary):
    expired: int = 0
    depleted: int = 0
    codes_expired: int = 0
    codes_depleted: int = 0
    batches: int = 0


@attrs.define
class BruteforceGuardSummary(_Summary):
    hash_candidates: int = 0
    prefix_candidates: int = 0
    # Codes paused by the hash rule, campaigns paused by the prefix rule (ids).
    paused: list[int] = attrs.field(factory=list)
    paused_campaigns: list[int] = attrs.field(factory=list)
    alerts_sent: int = 0
    alerts_failed: int = 0


@attrs.define
class RefundRollbackSummary(_Summary):
    scanned: int = 0
    revoked: int = 0
    entitlements_revoked: int = 0
    batches: int = 0


@attrs.define
class InvoiceExpirySummary(_Summary):
    scanned: int = 0
    failed: int = 0
    unbound: int = 0
    batches: int = 0


@attrs.frozen
class RefundRollbackResult:
    """The answer of ``POST /internal/promo/refund-rollback``."""

    purchase_id: int
    redemption_id: int
    status: RedemptionStatus
    replayed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"purchase_id": self.purchase_id, "redemption_id": self.redemption_id,
                "status": self.status.value, "replayed": self.replayed}


def expire_due_by_parts(redemptions: Redemptions, now: datetime, limit: int) -> tuple[int, list[tuple[int, int]]]:
    """``Redemptions.expire_due`` from ``due_for_expiry`` and ``expire_many`` (the reference): how many were due,
    and the ``(promo_code_id, campaign_id)`` of each reservation this call expired."""
    due = redemptions.due_for_expiry(now, limit)
    expired = redemptions.expire_many([r.id for r in due if r.id is not None], now)
    return len(due), [(r.promo_code_id, r.campaign_id) for r in expired]


def _applied_to(uow: UnitOfWork, purchase: Purchase) -> bool:
    """The purchase's promo redemption was applied by this very purchase's payment."""
    if purchase.promo_redemption_id is None:
        return False
    r = uow.redemptions.get(purchase.promo_redemption_id)
    return r is not None and r.applied_purchase_id == purchase.id


@attrs.frozen
class _Pause:
    """One automatic pause: a code (hash rule, ``code`` set) or a whole campaign (prefix rule)."""

    campaign: Campaign
    code: PromoCode | None
    rule: str
    failures: int
    distinct_users: int
    code_prefix: str


class MaintenanceService:
    """Reservation expiry, campaign rollover, brute-force guard, refund rollback, invoice expiry."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        policy: PromoPolicy | None = None,
        notifier: Notifier | None = None,
        alerts: AlertPolicy | None = None,
        max_batches: int = DEFAULT_MAX_BATCHES,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._policy = policy or PromoPolicy()
        self._notifier = notifier
        self._alerts = alerts or AlertPolicy.default()
        self._max_batches = max_batches

    def _batches(self, one_batch: Callable[[UnitOfWork, datetime, int], tuple[int, int]]) -> tuple[int, int, int]:
        """Run ``one_batch(uow, now, limit) -> (scanned, changed)`` until a short batch, a batch that
        changed nothing (only rows others are busy with are left) or ``max_batches``; commits each."""
        limit = self._policy.job_batch_size
        scanned = changed = batches = 0
        while batches < self._max_batches:
            with self._uow() as uow:
                seen, done = one_batch(uow, self._clock.now(), limit)
                uow.commit()
            batches += 1
            scanned += seen
            changed += done
            if seen < limit or done == 0:
                break
        return scanned, changed, batches

    # --- run_promo_reservation_expiry ----------------------------------------------------------------

    def expire_reservations(self) -> ReservationExpirySummary:
        """RESERVED, past ``reserved_until`` and not bound to a purchase -> EXPIRED; the unit goes back
        to the campaign in the same unit of work, exactly once (only the winning ``expire`` releases)."""

        def batch(uow: UnitOfWork, now: datetime, limit: int) -> tuple[int, int]:
            # The due reservations, locked skip-locked and expired conditionally (one bound or applied meanwhile
            # stays) in one step; only what it expired gives units back, one release per code and per campaign.
            due, expired = uow.redemptions.expire_due(now, limit)
            # Code rows, then campaign rows, each in id order (the order of every writer): no deadlock.
            uow.promo_codes.release_capacity_many(collections.Counter(code for code, _ in expired), now)
            uow.campaigns.release_capacity_many(collections.Counter(campaign for _, campaign in expired), now)
            return due, len(expired)

        scanned, expired, batches = self._batches(batch)
        return ReservationExpirySummary(scanned=scanned, expired=expired, batches=batches)

    # --- run_promo_campaign_status_rollover -------------------------------------------------------------

    def rollover_campaign_statuses(self) -> CampaignRolloverSummary:
        """Campaigns ACTIVE|PAUSED -> EXPIRED once ``valid_until`` has passed, their codes with them; a code
        ACTIVE -> DEPLETED at its own cap, a campaign ACTIVE -> DEPLETED at its budget, each once no reservation
        of it is still RESERVED (one could still expire and give a unit back)."""
        summary = CampaignRolloverSummary()

        def expire_batch(uow: UnitOfWork, now: datetime, limit: int) -> tuple[int, int]:
            due = uow.campaigns.due_for_expiry(now, limit)
            moved = 0
            for c in due:
                assert c.id is not None
                # The codes first: every writer takes code rows before campaign rows (no deadlock).
                codes = uow.promo_codes.expire_for_campaign(c.id, now)
                if uow.campaigns.set_status(c.id, [CampaignStatus.ACTIVE, CampaignStatus.PAUSED],
                                            CampaignStatus.EXPIRED, None, now) is not None:
                    moved += 1
                    summary.codes_expired += codes
            return len(due), moved

        def deplete_codes_batch(uow: UnitOfWork, now: datetime, limit: int) -> tuple[int, int]:
            due = uow.promo_codes.due_for_depletion(limit)
            moved = sum(1 for c in due if c.id is not None and uow.promo_codes.set_status(
                c.id, [CampaignStatus.ACTIVE], CampaignStatus.DEPLETED, None, now) is not None)
            return len(due), moved

        def deplete_batch(uow: UnitOfWork, now: datetime, limit: int) -> tuple[int, int]:
            due = uow.campaigns.due_for_depletion(limit)
            moved = sum(1 for c in due if c.id is not None and uow.campaigns.set_status(
                c.id, [CampaignStatus.ACTIVE], CampaignStatus.DEPLETED, None, now) is not None)
            return len(due), moved

        _, summary.expired, expire_batches = self._batches(expire_batch)
        _, summary.codes_depleted, code_batches = self._batches(deplete_codes_batch)
        _, summary.depleted, deplete_batches = self._batches(deplete_batch)
        summary.batches = expire_batches + code_batches + deplete_batches
        return summary

    # --- run_promo_bruteforce_guard ---------------------------------------------------------------------

    def run_bruteforce_guard(self) -> BruteforceGuardSummary:
        """Pause what is under attack (SPEC 6), each pause writing one audit entry by
        ``job:run_promo_bruteforce_guard``; a run raises one ``promo_campaign_auto_paused`` per rule for all its
        pauses of that rule (SPEC 8: no alert storms), carrying their count and each pause as an item.

        Hash rule: a hash with ``guard_min_failures`` failed attempts from ``guard_min_users`` distinct users
        inside the guard window that is an ACTIVE code's hash pauses that code -- when its campaign is ACTIVE too
        (a code of a depleted, expired or paused campaign answers no one anyway: no pause, no false page).
        Prefix rule: ``INVALID`` attempts sharing a prefix reach ``guard_prefix_min_failures``: the ACTIVE
        campaigns with codes of that ``code_prefix`` are being enumerated, and are paused whole. What is PAUSED
        already is left alone.
        """
        p = self._policy
        summary = BruteforceGuardSummary()
        paused: list[_Pause] = []
        with self._uow() as uow:
            now = self._clock.now()
            since = now - p.guard_window
            by_hash = {s.normalized_code_hash: s for s in
                       uow.attempts.hash_failures(since, p.guard_min_failures, p.guard_min_users)}
            summary.hash_candidates = len(by_hash)
            if by_hash:
                for code in uow.promo_codes.active_with_hashes(list(by_hash)):
                    stats = by_hash[code.code_hash]
                    assert code.id is not None
                    campaign = uow.campaigns.get(code.campaign_id)
                    if campaign is None or campaign.status is not CampaignStatus.ACTIVE:
                        continue  # its campaign answers for it already: nothing to contain, nothing to page
                    done = uow.promo_codes.set_status(code.id, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED,
                                                      PausedReason.AUTO_BRUTEFORCE, now)
                    if done is not None:
                        item = _Pause(campaign, done, RULE_HASH, stats.failures, stats.distinct_users,
                                      done.code_prefix)
                        self._audit_pause(uow, item, now)
                        paused.append(item)
            prefixes = uow.attempts.invalid_prefix_failures(since, p.guard_prefix_min_failures)
            summary.prefix_candidates = len(prefixes)
            for prefix in prefixes:
                for campaign in uow.campaigns.active_with_code_prefix(prefix.code_prefix):
                    assert campaign.id is not None
                    moved = uow.campaigns.set_status(campaign.id, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED,
                                                     PausedReason.AUTO_BRUTEFORCE, now)
                    if moved is not None:
                        item = _Pause(moved, None, RULE_PREFIX, prefix.failures, prefix.distinct_users,
                                      prefix.code_prefix)
                        self._audit_pause(uow, item, now)
                        paused.append(item)
            uow.commit()
        for item in paused:
            if item.code is not None:
                assert item.code.id is not None
                summary.paused.append(item.code.id)
            else:
                assert item.campaign.id is not None
                summary.paused_campaigns.append(item.campaign.id)
        for rule, items in by_kind(self._pause_item(item) for item in paused).items():
            if self._raise(self._pause_alert(rule, items, now)):
                summary.alerts_sent += 1
            else:
                summary.alerts_failed += 1
        return summary

    @staticmethod
    def _pause_details(item: _Pause) -> dict[str, Any]:
        details: dict[str, Any] = {"campaign_id": item.campaign.id, "campaign_name": item.campaign.name,
                                   "code_prefix": item.code_prefix, "failures": item.failures,
                                   "distinct_users": item.distinct_users, "rule": item.rule}
        if item.code is not None:
            details = {"promo_code_id": item.code.id, **details}
        return details

    def _audit_pause(self, uow: UnitOfWork, item: _Pause, now: datetime) -> None:
        details = self._pause_details(item)
        if item.code is not None:
            assert item.code.id is not None
            audit.record(uow, now, GUARD_ACTOR, audit.CODE_AUTO_PAUSED, audit.PROMO_CODE, item.code.id, details)
        else:
            assert item.campaign.id is not None
            audit.record(uow, now, GUARD_ACTOR, audit.CAMPAIGN_AUTO_PAUSED, audit.CAMPAIGN, item.campaign.id, details)

    def _pause_item(self, item: _Pause) -> AlertItem:
        """One pause as an item of its rule's alert; its key names what was paused and when (a pause occurs once)."""
        c = item.campaign
        details = self._pause_details(item)
        log.warning("auto-paused", extra={"event": PROMO_CAMPAIGN_AUTO_PAUSED, **details})
        window = self._policy.guard_window_minutes
        if item.code is not None:
            what = f"{item.failures} failed attempts from {item.distinct_users} users"
            summary = (f"Code {item.code.id} (prefix {item.code_prefix}) of campaign {c.id} ({c.name}) auto-paused: "
                       f"{what} in {window} min")
            key = dedup_key(PROMO_CAMPAIGN_AUTO_PAUSED, "code", item.code.id, item.code.updated_at.isoformat())
        else:
            summary = (f"Campaign {c.id} ({c.name}) auto-paused: {item.failures} invalid codes starting "
                       f"{item.code_prefix} in {window} min")
            key = dedup_key(PROMO_CAMPAIGN_AUTO_PAUSED, "campaign", c.id, c.updated_at.isoformat())
        return AlertItem(item.rule, key, summary, details)

    def _pause_alert(self, rule: str, items: list[AlertItem], now: datetime) -> RoutedAlert:
        """One alert for every pause of ``rule`` in this run (each pause happened at ``now``)."""
        headline = None
        if len(items) > 1:
            what = "codes" if rule == RULE_HASH else "campaigns"
            headline = (f"{len(items)} {what} auto-paused by the brute-force guard ({rule} rule); first: "
                        f"{items[0].summary}")
        return grouped_alert(self._alerts, PROMO_CAMPAIGN_AUTO_PAUSED, rule, items, now, headline)

    def _raise(self, alert: RoutedAlert) -> bool:
        if self._notifier is None:
            return True
        try:
            self._notifier.notify(alert)
        except Exception as exc:  # an alert channel must never fail the job that raised the alert
            log.error("alert notification failed", extra={"event": "alert_notify_failed",
                                                           "alert_event": alert.event, "dedup_key": alert.dedup_key,
                                                           "error_type": type(exc).__name__})
            return False
        return True

    # --- run_refund_promo_rollback ----------------------------------------------------------------------

    def rollback_refunded_promos(self) -> RefundRollbackSummary:
        """REFUNDED purchases whose promo redemption is not REVOKED -> REVOKED; ``used_total`` stays
        (audit-conservative), the purchase's entitlement days are taken back with a ledger entry."""
        summary = RefundRollbackSummary()

        def batch(uow: UnitOfWork, now: datetime, limit: int) -> tuple[int, int]:
            due = uow.purchases.refunded_needing_rollback(limit)
            revoked = 0
            for purchase in due:
                if not _applied_to(uow, purchase):
                    continue  # a payment flagged for review: its redemption is not this purchase's to revoke
                assert purchase.promo_redemption_id is not None
                r = uow.redemptions.revoke(purchase.promo_redemption_id, now)
                if r is None:
                    continue
                revoked += 1
                if take_back_entitlement(uow, purchase, now, r):
                    summary.entitlements_revoked += 1
            return len(due), revoked

        summary.scanned, summary.revoked, summary.batches = self._batches(batch)
        return summary

    def rollback_refund(self, purchase_id: int, *, actor: str) -> RefundRollbackResult:
        """Revoke one refunded purchase's promo redemption now (SPEC 7); a repeat is a replay (no new audit entry)."""
        now = self._clock.now()
        with self._uow() as uow:
            purchase = uow.purchases.get(purchase_id)
            if purchase is None:
                raise NotFound(f"purchase {purchase_id} not found")
            if purchase.status is not PurchaseStatus.REFUNDED:
                raise PurchaseNotRefunded(f"purchase is {purchase.status.value}, not REFUNDED",
                                          {"status": purchase.status.value})
            rid = purchase.promo_redemption_id
            current = uow.redemptions.get(rid) if rid is not None else None
            if rid is None or current is None:
                raise NoPromoRedemption("the purchase used no promo redemption")
            if current.status is RedemptionStatus.REVOKED:
                return RefundRollbackResult(purchase_id, rid, RedemptionStatus.REVOKED, replayed=True)
            if not _applied_to(uow, purchase):
                raise InvalidTransition("the promo redemption was not applied to this purchase",
                                        {"status": current.status.value})
            revoked = uow.redemptions.revoke(rid, now)
            if revoked is None:
                raise InvalidTransition(f"the promo redemption is {current.status.value}; it cannot be revoked",
                                        {"status": current.status.value})
            take_back_entitlement(uow, purchase, now, revoked)
            audit.record(uow, now, actor, audit.REFUND_ROLLED_BACK, audit.PURCHASE, purchase_id,
                         {"redemption_id": rid, "campaign_id": revoked.campaign_id})
            uow.commit()
        return RefundRollbackResult(purchase_id, rid, RedemptionStatus.REVOKED, replayed=False)

    # --- run_payment_invoice_expiry ---------------------------------------------------------------------

    def expire_stale_invoices(self) -> InvoiceExpirySummary:
        """CREATED/INVOICE_SENT purchases older than the invoice TTL -> FAILED; the reservation is
        unbound (it may then expire)."""
        summary = InvoiceExpirySummary()
        ttl = self._policy.invoice_ttl

        def batch(uow: UnitOfWork, now: datetime, limit: int) -> tuple[int, int]:
            due = uow.purchases.stale_open(now - ttl, limit)
            failed = 0
            for p in due:
                assert p.id is not None
                if uow.purchases.set_status(p.id, tuple(OPEN_PURCHASE_STATUSES), PurchaseStatus.FAILED,
                                            now) is None:
                    continue
                failed += 1
                if p.promo_redemption_id is not None:
                    uow.redemptions.unbind_purchase(p.promo_redemption_id, p.id, now)
                    summary.unbound += 1
            return len(due), failed

        summary.scanned, summary.failed, summary.batches = self._batches(batch)
        return summary

    # Names of the SPEC 6 table.
    campaign_rollover = rollover_campaign_statuses
    bruteforce_guard = run_bruteforce_guard
    refund_rollback = rollback_refunded_promos
    expire_invoices = expire_stale_invoices
