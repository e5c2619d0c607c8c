"""Racing redeems on PostgreSQL: many users on one capped code, a giveaway of single-use codes under a budget,
one user on many codes (the per-user limit) or many keys, one key racing itself or raced by two users."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from domain.campaigns import CampaignService
from domain.maintenance import MaintenanceService
from domain.model import PromoType, RedeemResult
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.integration.pg_races.races import (
    ACCEPTED,
    ALREADY_USED,
    DEPLETED,
    assert_books_balance,
    make_campaign,
    numbered,
    race,
    redeeming,
    results,
    scalar,
    used,
)

# --- many racing redeems on one capped code -----------------------------------------------------------------


@pytest.mark.parametrize("cap_on", ["code", "campaign"])
def test_160_users_racing_for_25_uses_of_one_code_get_exactly_25_accepted_and_the_rest_depleted(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    cap_on: str,
) -> None:
    """The 25 units are the code's own cap, or its campaign's budget: the same exact count either way."""
    hot = make_campaign(campaigns, codes, "hot", ["HOTCODE25"], promo_type=PromoType.PREMIUM_GRANT,
                        code_cap=25 if cap_on == "code" else None, budget=25 if cap_on == "campaign" else None)
    outcomes = race([redeeming(redemptions, u, "HOTCODE25", f"race-{u}") for u in range(1, 161)])
    assert results(outcomes) == {ACCEPTED: 25, DEPLETED: 135}
    assert used(engines, hot) == (25, 25)
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'APPLIED'") == 25
    assert scalar(engines, "SELECT count(*) FROM entitlements") == 25
    assert scalar(engines, "SELECT count(*) FROM entitlement_ledger") == 25
    assert scalar(engines, "SELECT count(*) FROM promo_attempts") == 160
    assert scalar(engines, "SELECT count(*) FROM promo_attempts WHERE result = 'DEPLETED' AND campaign_id = :id",
                  id=hot.id) == 135
    assert_books_balance(engines)


# --- a giveaway: single-use codes of one campaign with a budget ------------------------------------------------


@pytest.mark.parametrize("promo_type", [PromoType.PERCENT_DISCOUNT, PromoType.PREMIUM_GRANT])
def test_50_users_racing_50_single_use_codes_of_a_campaign_with_budget_10_get_exactly_10_accepted(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    jobs: MaintenanceService, clock: ManualClock, promo_type: PromoType,
) -> None:
    plaintexts = numbered("GIVE", 50)
    giveaway = make_campaign(campaigns, codes, "giveaway", plaintexts, promo_type=promo_type, budget=10, code_cap=1)
    outcomes = race([redeeming(redemptions, 1000 + u, plaintexts[u], f"give-{u}") for u in range(50)])
    assert results(outcomes) == {ACCEPTED: 10, DEPLETED: 40}
    assert used(engines, giveaway) == (10, 10)
    assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE used_total = 1") == 10
    assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE used_total = 0") == 40
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 10
    # Each acceptance is the winning user's own code.
    winners = {o.redemption.user_id: o.code.id for o in outcomes
               if o.accepted and o.redemption is not None and o.code is not None}
    assert len(winners) == 10 and len(set(winners.values())) == 10
    assert_books_balance(engines)

    jobs.rollover_campaign_statuses()
    if promo_type is PromoType.PREMIUM_GRANT:
        # Nothing RESERVED is left to give a unit back: the budget is spent, and so is each used code's cap.
        assert scalar(engines, "SELECT count(*) FROM promo_campaigns WHERE status = 'DEPLETED'") == 1
        assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE status = 'DEPLETED'") == 10
    else:
        # Reservations may still expire and give their units back: nothing is DEPLETED yet ...
        assert scalar(engines, "SELECT count(*) FROM promo_campaigns WHERE status = 'DEPLETED'") == 0
        clock.advance(minutes=16)
        assert jobs.expire_reservations().expired == 10
        # ... and once they did, the budget and the caps are free again.
        assert used(engines, giveaway) == (0, 0)
        again = race([redeeming(redemptions, 2000 + u, plaintexts[u], f"give2-{u}") for u in range(50)])
        assert results(again) == {ACCEPTED: 10, DEPLETED: 40}
        assert used(engines, giveaway) == (10, 10)
    assert_books_balance(engines)


# --- one user, many codes of one campaign: the per-user limit ------------------------------------------------


@pytest.mark.parametrize("promo_type", [PromoType.PERCENT_DISCOUNT, PromoType.PREMIUM_GRANT])
@pytest.mark.parametrize("limit", [1, 3])
def test_one_user_racing_20_codes_of_a_campaign_gets_exactly_its_per_user_limit(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    jobs: MaintenanceService, clock: ManualClock, limit: int, promo_type: PromoType,
) -> None:
    plaintexts = numbered("MINE", 20)
    mine = make_campaign(campaigns, codes, f"per user {limit}", plaintexts, promo_type=promo_type,
                         per_user_limit=limit)
    outcomes = race([redeeming(redemptions, 7, plaintexts[i], f"mine-{i}") for i in range(20)])
    assert results(outcomes) == {ACCEPTED: limit, ALREADY_USED: 20 - limit}
    assert used(engines, mine) == (limit, limit)
    held = sa.text("SELECT user_slot FROM promo_redemptions WHERE user_id = 7 AND status <> 'EXPIRED' "
                   "ORDER BY user_slot")
    with engines.engine.connect() as conn:
        assert [int(s) for s, in conn.execute(held)] == list(range(1, limit + 1))
    assert scalar(engines, "SELECT count(DISTINCT promo_code_id) FROM promo_redemptions") == limit
    if promo_type is PromoType.PREMIUM_GRANT:
        assert scalar(engines, "SELECT count(*) FROM entitlement_ledger WHERE user_id = 7") == limit
    assert_books_balance(engines)

    # Another user is not limited by this one's slots.
    assert redemptions.redeem(8, plaintexts[0], "other-user").accepted

    if promo_type is PromoType.PERCENT_DISCOUNT:
        # Expired reservations free the user's slots: the same race again gets exactly the limit again.
        clock.advance(minutes=16)
        jobs.expire_reservations()
        again = race([redeeming(redemptions, 7, plaintexts[i], f"mine-again-{i}") for i in range(20)])
        assert results(again) == {ACCEPTED: limit, ALREADY_USED: 20 - limit}
        assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE user_id = 7 AND status = 'RESERVED'"
                      ) == limit
    assert_books_balance(engines)


# --- one user, many keys, one code ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3])
def test_one_user_racing_20_keys_on_one_code_gets_exactly_one_acceptance(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    limit: int,
) -> None:
    """One live redemption per user and code, whatever the campaign's per-user limit allows across its codes."""
    one = make_campaign(campaigns, codes, "one user", ["ONEUSER20"], per_user_limit=limit)
    outcomes = race([redeeming(redemptions, 7, "ONEUSER20", f"key-{k}") for k in range(20)])
    assert results(outcomes) == {ACCEPTED: 1, ALREADY_USED: 19}
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert used(engines, one) == (1, 1)
    assert_books_balance(engines)


# --- one key racing itself --------------------------------------------------------------------------------------


def test_one_key_racing_itself_20_times_makes_one_redemption_and_identical_answers(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
) -> None:
    same = make_campaign(campaigns, codes, "same key", ["SAMEKEY20"], budget=5, code_cap=3)
    outcomes: list[RedeemOutcome] = race([redeeming(redemptions, 9, "SAMEKEY20", "tg:9:100")] * 20)
    assert results(outcomes) == {ACCEPTED: 20}
    assert sum(1 for o in outcomes if not o.replayed) == 1
    answers = {(o.redemption.id, o.redemption.status, o.redemption.reserved_until, o.redemption.user_slot)
               for o in outcomes if o.redemption is not None}
    assert len(answers) == 1
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert scalar(engines, "SELECT count(*) FROM promo_attempts") == 1  # replays write no attempt
    assert used(engines, same) == (1, 1)
    assert_books_balance(engines)


def test_one_key_raced_by_two_users_belongs_to_one_of_them_and_the_other_gets_key_reused(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
) -> None:
    shared = make_campaign(campaigns, codes, "shared key", ["SHAREKEY1"])
    outcomes = race([redeeming(redemptions, u, "SHAREKEY1", "tg:shared:1") for u in (11, 12) * 10])
    by_user = {u: {o.result for o, v in zip(outcomes, (11, 12) * 10, strict=True) if v == u} for u in (11, 12)}
    assert sorted(map(sorted, by_user.values())) == [[ACCEPTED], [RedeemResult.IDEMPOTENCY_KEY_REUSED]]
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert used(engines, shared) == (1, 1)
    assert_books_balance(engines)
