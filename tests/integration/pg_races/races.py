"""The race harness (every call at once, each on its own thread) and the books checked in SQL after a race."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa

from adapters.sql.engine import EngineHolder
from domain.campaigns import CampaignService, CampaignSpec
from domain.model import Campaign, PromoType, RedeemResult
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.sql import live_units_mismatch

T = TypeVar("T")
# The largest race (50 users on 50 codes, test_redeem_races.py) runs every caller on its own connection at once.
MAX_THREADS = 50
ACTOR = "test:race"
ACCEPTED, DEPLETED, ALREADY_USED = RedeemResult.ACCEPTED, RedeemResult.DEPLETED, RedeemResult.ALREADY_USED


def race(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call at once, each on its own thread (up to ``MAX_THREADS``): the threads wait at one gate that
    opens when all are queued. An exception in any call fails the race."""
    gate = threading.Event()

    def go(call: Callable[[], T]) -> T:
        gate.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(min(len(calls), MAX_THREADS)) as pool:
        futures = [pool.submit(go, call) for call in calls]
        gate.set()
        return [f.result(timeout=120) for f in futures]


def redeeming(service: RedemptionService, user_id: int, code: str, key: str) -> Callable[[], RedeemOutcome]:
    return lambda: service.redeem(user_id, code, key)


def results(outcomes: list[RedeemOutcome]) -> Counter[RedeemResult]:
    return Counter(o.result for o in outcomes)


def scalar(engines: EngineHolder, sql: str, **params: object) -> int:
    with engines.engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one() or 0)


def used(engines: EngineHolder, campaign: Campaign) -> tuple[int, int]:
    """(the campaign's ``used_total``, the sum of its codes' ``used_total``), read in SQL."""
    return (scalar(engines, "SELECT used_total FROM promo_campaigns WHERE id = :id", id=campaign.id),
            scalar(engines, "SELECT sum(used_total) FROM promo_codes WHERE campaign_id = :id", id=campaign.id))


def users_over_their_limit(engines: EngineHolder) -> int:
    """(campaign, user) pairs holding more live redemptions than the campaign's ``per_user_limit``, or two live
    redemptions of one code: both impossible while no limit is lowered."""
    return scalar(engines, """
        SELECT count(*) FROM (
            SELECT r.campaign_id, r.user_id, count(*) AS live, count(DISTINCT r.promo_code_id) AS codes,
                   count(DISTINCT r.user_slot) AS slots
            FROM promo_redemptions r WHERE r.status <> 'EXPIRED' GROUP BY r.campaign_id, r.user_id
        ) held JOIN promo_campaigns k ON k.id = held.campaign_id
        WHERE held.live > k.per_user_limit OR held.codes <> held.live OR held.slots <> held.live""")


def assert_books_balance(engines: EngineHolder) -> None:
    """SPEC 4 at both levels, in SQL: every code's and every campaign's ``used_total`` equals its RESERVED +
    APPLIED + REVOKED redemptions and stays within its cap / budget; no user above a per-user limit; the codes
    counted by status (``promo_code_counts``) equal to the codes, each purchase filed under its redemption's
    campaign."""
    assert live_units_mismatch(engines) == []
    assert users_over_their_limit(engines) == 0


def make_campaign(campaigns: CampaignService, codes: CodeService, name: str, plaintexts: list[str], *,
                  promo_type: PromoType = PromoType.PERCENT_DISCOUNT, budget: int | None = None,
                  per_user_limit: int = 1, code_cap: int | None = None, **terms: Any) -> Campaign:
    """A campaign with the given codes (each with its own cap ``code_cap``), made through the services."""
    kinds: dict[PromoType, dict[str, Any]] = {PromoType.PERCENT_DISCOUNT: {"discount_percent": 25},
                            PromoType.STARS_DISCOUNT: {"discount_stars": 40},
                            PromoType.PREMIUM_GRANT: {"grant_plan_code": "PREMIUM", "grant_days": 7}}
    kind = kinds[promo_type]
    spec = CampaignSpec(name=name, promo_type=promo_type, max_total_uses=budget, per_user_limit=per_user_limit,
                        **{**kind, **terms})
    campaign, _ = campaigns.create(spec, actor=ACTOR, code=plaintexts[0], code_max_total_uses=code_cap)
    assert campaign.id is not None
    for plaintext in plaintexts[1:]:
        codes.add(campaign.id, plaintext, code_cap, actor=ACTOR)
    return campaign


def numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]
