"""A few days of realistic history for ``starpromo demo`` (SPEC 10), so the console's charts are not empty.

Everything goes through the domain services on a clock moved through the past days: a launch giveaway of
single-use codes posted on day two (a burst, then a tail), a daily rhythm, typos and reused codes refused,
discounts that turn into paid Stars purchases (or not), a few refunds, and one leaked-code burst that the
brute-force guard pauses. Runs once per database (the giveaway campaign marks it); plaintext codes exist only
in memory while it runs.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from adapters.memory.clock import ManualClock
from domain.batch import BatchService
from domain.campaigns import CampaignSpec
from domain.checkout import CheckoutService
from domain.code_files import CodeTerms, GeneratedRow, ReportRow
from domain.codes import CodeHasher
from domain.errors import DomainError
from domain.maintenance import MaintenanceService
from domain.model import Campaign, CampaignFilter, CampaignStatus, PromoType, RedeemResult
from domain.redemption import RedemptionService

if TYPE_CHECKING:
    from entrypoints.container import Container

HISTORY_CAMPAIGN = "demo: launch giveaway"
LEAKED_CAMPAIGN = "demo: leaked partner code"
HISTORY_ACTOR = "cli:demo"
DAYS = 3
GIVEAWAY_CODES = 400


class _KeepCodes:
    """A report sink keeping the generated codes in memory for the simulation (never written anywhere)."""

    def __init__(self) -> None:
        self.codes: list[str] = []

    def write(self, rows: Sequence[ReportRow]) -> None:
        self.codes.extend(r["code"] for r in rows)

    def write_generated(self, shared: ReportRow, rows: Sequence[GeneratedRow]) -> None:
        self.codes.extend(r[1] for r in rows)

    def close(self) -> None:
        return None


@attrs.frozen
class HistorySummary:
    attempts: int
    accepted: int
    paid: int
    auto_paused: bool


def _hourly_load(hour_index: int, launch_hour: int) -> int:
    """Attempts in one hour: a daily rhythm (quiet at night UTC) plus the launch burst and its tail."""
    of_day = hour_index % 24
    rhythm = 4 + 6 * max(0.0, math.sin((of_day - 6) / 24 * 2 * math.pi))
    since_launch = hour_index - launch_hour
    burst = 60 * math.exp(-since_launch / 4) if since_launch >= 0 else 0.0
    return int(rhythm + burst)


def _campaign_named(container: Container, name: str) -> Campaign | None:
    page = container.campaign_service().list_campaigns(CampaignFilter(name_contains=name), limit=10)
    return next((v.campaign for v in page.items if v.campaign.name == name), None)


def seed_history(container: Container, now: datetime, *, seed: int = 7) -> HistorySummary | None:
    """Simulate the ``DAYS`` before ``now``; None when this database already has the history."""
    if _campaign_named(container, HISTORY_CAMPAIGN) is not None:
        return None
    rng = random.Random(seed)
    start = (now - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    clock = ManualClock(start)
    uow_factory, policy, hasher = container.uow_factory(), container.policy(), container.hasher()
    assert isinstance(hasher, CodeHasher)
    products = container.products()
    batch = BatchService(uow_factory, clock, hasher, products.codes)
    redeem = RedemptionService(uow_factory, clock, hasher, policy)
    checkout = CheckoutService(uow_factory, clock, products, policy)
    maintenance = MaintenanceService(uow_factory, clock, policy, container.notifier(), container.alert_policy())

    giveaway = _KeepCodes()
    terms = CodeTerms(CampaignSpec(HISTORY_CAMPAIGN, PromoType.PERCENT_DISCOUNT, discount_percent=30,
                                   max_total_uses=GIVEAWAY_CODES, per_user_limit=1), 1, frozenset())
    batch.generate(terms, GIVEAWAY_CODES, giveaway, actor=HISTORY_ACTOR, prefix="LAUNCH")
    leaked = _KeepCodes()
    batch.generate(CodeTerms(CampaignSpec(LEAKED_CAMPAIGN, PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM",
                                          grant_days=7), None, frozenset()),
                   1, leaked, actor=HISTORY_ACTOR, prefix="PARTNER")

    product_codes = list(products.codes)
    hours = DAYS * 24
    launch_hour = 24 + 17  # day two, 17:00 UTC
    leak_hour = 24 * 2 + 10
    unused = list(giveaway.codes)
    rng.shuffle(unused)
    used: list[str] = []
    attempts = accepted = paid = 0
    user = 100_000
    for h in range(hours - 1):
        hour_start = start + timedelta(hours=h)
        for _ in range(_hourly_load(h, launch_hour)):
            clock.set(hour_start + timedelta(seconds=rng.randrange(3600)))
            user += 1
            roll = rng.random()
            if roll < 0.72 and unused and h >= launch_hour:
                code = unused.pop()
                used.append(code)
            elif roll < 0.82 and used:
                code = rng.choice(used)  # a code someone already used
            else:
                code = "LAUNCH" + "".join(rng.choice("ABCDEFGHJKMNPQRSTVWXYZ23456789") for _ in range(6))  # a typo
            attempts += 1
            try:
                outcome = redeem.redeem(user, code, f"demo-{user}")
            except DomainError:
                continue
            if outcome.result is not RedeemResult.ACCEPTED or outcome.redemption is None:
                continue
            accepted += 1
            if rng.random() < 0.65:  # most reservations turn into a purchase within minutes
                clock.set(clock.now() + timedelta(minutes=rng.randrange(1, 9)))
                try:
                    purchase = checkout.init(user, rng.choice(product_codes), outcome.redemption.id)
                    assert purchase.id is not None
                    checkout.mark_invoice_sent(purchase.id)
                    checkout.precheckout(purchase.id, purchase.final_stars_amount)
                    checkout.successful_payment(purchase.id, f"demo-charge-{purchase.id}", purchase.final_stars_amount)
                    paid += 1
                except DomainError:
                    continue
        if h == leak_hour and leaked.codes:
            # A partner's code leaks and bots hammer near-misses of it: the guard pauses the campaign.
            base = leaked.codes[0]
            for i in range(80):
                clock.set(hour_start + timedelta(minutes=30, seconds=i * 5))
                with contextlib.suppress(DomainError):
                    redeem.redeem(200_000 + i % 12, base[:-1] + "23456789ABCDEFGHJ"[i % 17], f"leak-{i}")
                attempts += 1
            clock.set(hour_start + timedelta(minutes=38))
            maintenance.run_bruteforce_guard()
        if h % 6 == 5:
            clock.set(hour_start + timedelta(minutes=59))
            maintenance.expire_reservations()
            maintenance.run_bruteforce_guard()
            maintenance.rollover_campaign_statuses()
    leaked_campaign = _campaign_named(container, LEAKED_CAMPAIGN)
    paused = leaked_campaign is not None and leaked_campaign.status is CampaignStatus.PAUSED
    return HistorySummary(attempts, accepted, paid, paused)
