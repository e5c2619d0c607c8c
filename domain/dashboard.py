"""Promo metrics for ops (SPEC 7 ``GET /internal/promo/dashboard``).

Denominators (also in docs/decisions.md):
- ``acceptance_rate`` = ``attempts_accepted / attempts_total``; every attempt row of the window counts,
  ``RATE_LIMITED`` included (idempotent replays and key reuse write no attempt row).
- ``reservation_apply_rate`` = ``reservations_applied / reservations_total``: discount reservations
  created in the window, and those of them that reached a paid purchase (APPLIED, or REVOKED later).
- ``failure_rate`` = ``sum(by_result) / attempts_total`` (every non-accepted attempt).
- ``candidate_abusive_hashes`` uses the guard's own window and thresholds (SPEC 6), ending now: what
  the guard would act on at this moment. ``paused_campaigns_total``: PAUSED campaigns; ``paused_codes_total``:
  codes PAUSED on their own (their campaign may be active); ``paused_campaigns_recent``: PAUSED campaigns and
  PAUSED codes whose last change lies inside the dashboard window.
- ``series``: one entry per hour the window touches (the first and last partial), zeros included.
- ``payments`` (issue 10): purchases paid in the window (by ``paid_at``; refunded later or not), refunded in
  it (by ``refunded_at``), and FAILED with their last change in it, each with its ``final_stars_amount`` sum;
  ``open_review_items`` and ``purchases_in_review`` are what waits for a human now, whatever the window.
  ``other_movements`` (issue 17): the Star transactions dated in the window that are no purchase payment nor its
  refund (withdrawals, ads, paid broadcasts, gifts, affiliate commissions, paid media, subscriptions, ...), per
  kind and direction with their count and exact Stars, as the reconciliation job recorded them (so up to its
  last run).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.errors import ValidationError
from domain.model import RedeemResult
from domain.policy import PromoPolicy
from domain.star_transactions import movements_document

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.repositories import UnitOfWork, UnitOfWorkFactory

MIN_WINDOW_HOURS = 1
MAX_WINDOW_HOURS = 720
DEFAULT_WINDOW_HOURS = 24
NON_ACCEPTED_RESULTS: tuple[RedeemResult, ...] = tuple(r for r in RedeemResult if r is not RedeemResult.ACCEPTED)
# How long after an hour ends its attempts are folded into the hourly rollup (``Attempts.roll_up``): an attempt's
# row carries the time of its redeem and is written in that redeem's transaction, well within this.
ROLLUP_GRACE = timedelta(minutes=5)


def iso(moment: datetime) -> str:
    """UTC, ISO 8601 with ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def validate_window_hours(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_WINDOW_HOURS <= value <= MAX_WINDOW_HOURS:
        raise ValidationError.single("window_hours", f"must be an integer {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}")
    return value


class DashboardService:
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, policy: PromoPolicy | None = None) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._policy = policy or PromoPolicy()

    def metrics(self, window_hours: int = DEFAULT_WINDOW_HOURS) -> dict[str, Any]:
        """The SPEC 7 dashboard document for the trailing ``window_hours`` (1..720)."""
        hours = validate_window_hours(window_hours)
        p = self._policy
        until = self._clock.now()
        since = until - timedelta(hours=hours)
        # Repositories count [since, end); the window is [since, until], so what happens "now" counts.
        end = until + timedelta(microseconds=1)
        with self._uow() as uow:
            roll_up_attempts(uow, since, until)
            counts = uow.attempts.counts_by_result(since, end)
            reservations_total = uow.redemptions.count_created(since, end, reservations_only=True)
            reservations_applied = uow.redemptions.count_applied_reservations(since, end)
            candidates = uow.attempts.hash_failures(until - p.guard_window, p.guard_min_failures, p.guard_min_users)
            paused_campaigns = uow.campaigns.count_paused()
            paused_codes = uow.promo_codes.count_paused()
            paused_recent = uow.campaigns.count_paused(since) + uow.promo_codes.count_paused(since)
            series = hourly_series(uow, since, end)
            payments = uow.purchases.totals(since, end)
            open_reviews = uow.payment_reviews.count_open()
            in_review = uow.purchases.count_in_review()
            movements = uow.star_movements.totals(since, end)
        attempts_total = sum(counts.values())
        accepted = counts.get(RedeemResult.ACCEPTED, 0)
        by_result = {r.value: counts.get(r, 0) for r in NON_ACCEPTED_RESULTS}
        return {
            "window": {"from": iso(since), "to": iso(until), "hours": hours},
            "conversion": {
                "attempts_total": attempts_total,
                "attempts_accepted": accepted,
                "acceptance_rate": rate(accepted, attempts_total),
                "reservations_total": reservations_total,
                "reservations_applied": reservations_applied,
                "reservation_apply_rate": rate(reservations_applied, reservations_total),
            },
            "failures": {
                "by_result": by_result,
                "failure_rate": rate(sum(by_result.values()), attempts_total),
            },
            "guard": {
                "candidate_abusive_hashes": [
                    {"normalized_code_hash": c.normalized_code_hash, "failures": c.failures,
                     "distinct_users": c.distinct_users, "last_seen": iso(c.last_seen)}
                    for c in candidates
                ],
                "paused_campaigns_total": paused_campaigns,
                "paused_codes_total": paused_codes,
                "paused_campaigns_recent": paused_recent,
            },
            "payments": {
                "paid_count": payments.paid_count,
                "paid_stars": payments.paid_stars,
                "refunded_count": payments.refunded_count,
                "refunded_stars": payments.refunded_stars,
                "failed_count": payments.failed_count,
                "failed_stars": payments.failed_stars,
                "open_review_items": open_reviews,
                "purchases_in_review": in_review,
                "other_movements": movements_document(movements),
            },
            "series": series,
        }


def roll_up_attempts(uow: UnitOfWork, since: datetime, now: datetime) -> None:
    """Bring the hourly rollup of attempts up to date for a window from ``since`` (its complete hours that ended
    ``ROLLUP_GRACE`` before ``now``), committed at once so that later reads find it; the unit of work goes on in a
    new transaction."""
    if uow.attempts.roll_up(since, now - ROLLUP_GRACE):
        uow.commit()


def hour_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_series(uow: UnitOfWork, since: datetime, end: datetime, campaign_id: int | None = None
                  ) -> list[dict[str, Any]]:
    """One entry per hour the window ``[since, end)`` touches, oldest first, zeros included: ``hour`` (its start),
    ``attempts``, ``accepted``, ``applied`` (grants and paid discounts), ``stars_revenue`` (final Stars of the
    purchases paid in it). The first and last hours are partial, so the entries add up to the window's totals."""
    attempts = {hour_start(h): (n, ok) for h, n, ok in uow.attempts.hourly(since, end, campaign_id)}
    applied = {hour_start(c.hour): c.value for c in uow.redemptions.hourly_applied(since, end, campaign_id)}
    revenue = {hour_start(c.hour): c.value for c in uow.purchases.hourly_revenue(since, end, campaign_id)}
    out: list[dict[str, Any]] = []
    hour = hour_start(since)
    while hour < end:
        n, ok = attempts.get(hour, (0, 0))
        out.append({"hour": iso(hour), "attempts": n, "accepted": ok, "applied": applied.get(hour, 0),
                    "stars_revenue": revenue.get(hour, 0)})
        hour += timedelta(hours=1)
    return out
