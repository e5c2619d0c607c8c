"""The PostgreSQL fast path of redeem (adapters/sql/redeem_pg.py) against its reference.

``Redemptions.redeem_snapshot`` and ``add_and_claim`` are ONE statement each on PostgreSQL; the reference is
``domain.redemption.snapshot_by_parts`` / ``add_and_claim_by_parts`` over the single-purpose SQL methods. On the
same data both must give the same answer and leave the same rows behind, case by case. And both keep "both or
neither" when the campaign's last unit goes to a racing claim after the code row was taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from domain.errors import LiveRedemptionExists, UserSlotTaken
from domain.model import (
    Attempt,
    CampaignStatus,
    PausedReason,
    RedeemResult,
    RedeemSnapshot,
    Redemption,
    RedemptionStatus,
)
from domain.redemption import add_and_claim_by_parts, snapshot_by_parts
from tests.builders import make_attempt, make_campaign, make_code, make_redemption
from tests.conftest import T0
from tests.sql import truncate_all

CURRENT, PREVIOUS, UNKNOWN = "c" * 64, "p" * 64, "u" * 64
USER, OTHER_USER = 7, 8
NOW = T0 + timedelta(minutes=5)
SINCE = T0 - timedelta(hours=24)


@pytest.fixture
def engines(_pg: EngineHolder) -> EngineHolder:
    return _pg


@contextmanager
def statements_sent(engines: EngineHolder) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block (transaction control aside)."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sa.event.listen(engines.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engines.engine, "before_cursor_execute", record)


def fresh(engines: EngineHolder) -> SqlUnitOfWorkFactory:
    truncate_all(engines)
    return SqlUnitOfWorkFactory(engines)


# -- redeem_snapshot ---------------------------------------------------------------------------------------

@dataclass
class SnapshotCall:
    idempotency_key: str
    code_hashes: tuple[str, ...]


def _unknown_code(uow: SqlUnitOfWork) -> SnapshotCall:
    campaign = uow.campaigns.add(make_campaign())
    uow.promo_codes.add(make_code(campaign, CURRENT))
    return SnapshotCall("k-new", (UNKNOWN,))


def _stored_under_the_previous_pepper(uow: SqlUnitOfWork) -> SnapshotCall:
    campaign = uow.campaigns.add(make_campaign())
    uow.promo_codes.add(make_code(campaign, PREVIOUS))
    return SnapshotCall("k-new", (CURRENT, PREVIOUS))


def _both_hashes_stored_the_first_given_wins(uow: SqlUnitOfWork) -> SnapshotCall:
    first = uow.campaigns.add(make_campaign("first"))
    second = uow.campaigns.add(make_campaign("second"))
    uow.promo_codes.add(make_code(second, PREVIOUS))
    uow.promo_codes.add(make_code(first, CURRENT))
    return SnapshotCall("k-new", (CURRENT, PREVIOUS))


def _live_redemption_and_failures(uow: SqlUnitOfWork) -> SnapshotCall:
    campaign = uow.campaigns.add(make_campaign())
    code = uow.promo_codes.add(make_code(campaign, CURRENT))
    uow.redemptions.add(make_redemption(code, USER, "k-old", status=RedemptionStatus.EXPIRED))
    uow.redemptions.add(make_redemption(code, USER, "k-live", user_slot=2))
    uow.redemptions.add(make_redemption(code, OTHER_USER, "k-other"))
    for minutes, result in ((1, RedeemResult.INVALID), (2, RedeemResult.ACCEPTED), (3, RedeemResult.DEPLETED)):
        uow.attempts.add(make_attempt(USER, result, T0 + timedelta(minutes=minutes)))
    uow.attempts.add(make_attempt(USER, RedeemResult.INVALID, SINCE - timedelta(minutes=1)))  # before the window
    uow.attempts.add(make_attempt(OTHER_USER, RedeemResult.INVALID, T0))
    return SnapshotCall("k-new", (CURRENT,))


def _held_slots_across_the_campaigns_codes(uow: SqlUnitOfWork) -> SnapshotCall:
    campaign = uow.campaigns.add(make_campaign(per_user_limit=5))
    elsewhere = uow.campaigns.add(make_campaign("elsewhere"))
    asked = uow.promo_codes.add(make_code(campaign, CURRENT))
    sibling = uow.promo_codes.add(make_code(campaign, "s" * 64))
    third = uow.promo_codes.add(make_code(campaign, "t" * 64))
    foreign = uow.promo_codes.add(make_code(elsewhere, "f" * 64))
    uow.redemptions.add(make_redemption(sibling, USER, "k1", user_slot=3))
    uow.redemptions.add(make_redemption(third, USER, "k2", user_slot=1, status=RedemptionStatus.APPLIED))
    uow.redemptions.add(make_redemption(asked, USER, "k3", user_slot=2, status=RedemptionStatus.EXPIRED))
    uow.redemptions.add(make_redemption(foreign, USER, "k4", user_slot=4))
    uow.redemptions.add(make_redemption(asked, OTHER_USER, "k5", user_slot=5))
    return SnapshotCall("k-new", (CURRENT,))


def _the_key_is_taken(uow: SqlUnitOfWork) -> SnapshotCall:
    campaign = uow.campaigns.add(make_campaign())
    code = uow.promo_codes.add(make_code(campaign, CURRENT))
    uow.redemptions.add(make_redemption(code, OTHER_USER, "k-taken"))
    return SnapshotCall("k-taken", (CURRENT,))


def _no_hashes(uow: SqlUnitOfWork) -> SnapshotCall:
    uow.attempts.add(make_attempt(USER, RedeemResult.INVALID, T0))
    return SnapshotCall("k-new", ())


SNAPSHOT_CASES: dict[str, tuple[Callable[[SqlUnitOfWork], SnapshotCall], Callable[[RedeemSnapshot], bool]]] = {
    "unknown code": (_unknown_code, lambda s: s.code is None and s.campaign is None and s.held_slots == ()),
    "code stored under the previous pepper": (
        _stored_under_the_previous_pepper, lambda s: s.code is not None and s.code.code_hash == PREVIOUS),
    "both hashes stored: the first given wins": (
        _both_hashes_stored_the_first_given_wins,
        lambda s: s.code is not None and s.code.code_hash == CURRENT and s.campaign is not None
        and s.campaign.name == "first"),
    "live redemption and failures": (
        _live_redemption_and_failures,
        lambda s: s.live is not None and s.live.idempotency_key == "k-live" and s.failures == 2
        and s.latest_failure == T0 + timedelta(minutes=3) and s.held_slots == (2,)),
    "held slots across the campaign's codes": (
        _held_slots_across_the_campaigns_codes, lambda s: s.live is None and s.held_slots == (1, 3)),
    "the key is taken": (
        _the_key_is_taken, lambda s: s.by_key is not None and s.by_key.user_id == OTHER_USER),
    "no hashes (malformed code)": (_no_hashes, lambda s: s.code is None and s.failures == 1),
}


@pytest.mark.parametrize("case", SNAPSHOT_CASES)
def test_the_one_statement_snapshot_answers_as_the_single_reads(engines: EngineHolder, case: str) -> None:
    build, is_the_case = SNAPSHOT_CASES[case]
    factory = fresh(engines)
    with factory() as uow:
        call = build(uow)
        uow.commit()

    with factory() as uow, statements_sent(engines) as sent:
        fast = uow.redemptions.redeem_snapshot(call.idempotency_key, USER, call.code_hashes, SINCE)
    with factory() as uow:
        reference = snapshot_by_parts(uow.redemptions, uow.attempts, uow.promo_codes, uow.campaigns,
                                      call.idempotency_key, USER, call.code_hashes, SINCE)

    assert fast == reference
    assert is_the_case(fast)
    assert len(sent) == 1


# -- add_and_claim -----------------------------------------------------------------------------------------

@dataclass
class ClaimCall:
    redemption: Redemption
    attempt: Attempt


def _prepare(uow: SqlUnitOfWork, user_slot: int = 1, campaign_changes: dict[str, Any] | None = None,
             code_changes: dict[str, Any] | None = None) -> ClaimCall:
    campaign = uow.campaigns.add(make_campaign(**(campaign_changes or {})))
    code = uow.promo_codes.add(make_code(campaign, CURRENT, **(code_changes or {})))
    redemption = make_redemption(code, USER, "k-new", user_slot=user_slot, created_at=NOW, updated_at=NOW,
                                 reserved_until=NOW + timedelta(minutes=15))
    attempt = make_attempt(USER, RedeemResult.ACCEPTED, NOW, CURRENT, "CCCC", campaign.id)
    return ClaimCall(redemption, attempt)


def _success(uow: SqlUnitOfWork) -> ClaimCall:
    return _prepare(uow, campaign_changes={"max_total_uses": 5, "used_total": 4},
                    code_changes={"max_total_uses": 3, "used_total": 2})


def _budget_full(uow: SqlUnitOfWork) -> ClaimCall:
    return _prepare(uow, campaign_changes={"max_total_uses": 4, "used_total": 4})


def _code_cap_full(uow: SqlUnitOfWork) -> ClaimCall:
    return _prepare(uow, code_changes={"max_total_uses": 1, "used_total": 1})


def _campaign_paused(uow: SqlUnitOfWork) -> ClaimCall:
    return _prepare(uow, campaign_changes={"status": CampaignStatus.PAUSED, "paused_reason": PausedReason.MANUAL})


def _code_paused(uow: SqlUnitOfWork) -> ClaimCall:
    return _prepare(uow, code_changes={"status": CampaignStatus.PAUSED, "paused_reason": PausedReason.MANUAL})


def _slot_taken(uow: SqlUnitOfWork) -> ClaimCall:
    call = _prepare(uow, campaign_changes={"per_user_limit": 2})
    sibling = uow.promo_codes.add(make_code(uow.campaigns.get_by_name("Spring sale") or pytest.fail(), "s" * 64))
    uow.redemptions.add(make_redemption(sibling, USER, "k-sibling", user_slot=1))
    return call


def _live_redemption_of_the_code(uow: SqlUnitOfWork) -> ClaimCall:
    call = _prepare(uow, user_slot=2, campaign_changes={"per_user_limit": 2})
    code = uow.promo_codes.get(call.redemption.promo_code_id)
    assert code is not None
    uow.redemptions.add(make_redemption(code, USER, "k-held", user_slot=1))
    return call


CLAIM_CASES: dict[str, tuple[Callable[[SqlUnitOfWork], ClaimCall], str]] = {
    "success": (_success, "claimed"),
    "campaign budget full": (_budget_full, "None"),
    "code cap full": (_code_cap_full, "None"),
    "campaign paused": (_campaign_paused, "None"),
    "code paused": (_code_paused, "None"),
    "the user's slot is taken": (_slot_taken, UserSlotTaken.__name__),
    "the user holds the code": (_live_redemption_of_the_code, LiveRedemptionExists.__name__),
}


def state(engines: EngineHolder) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the call may have written, by id."""
    with engines.engine.connect() as conn:
        return {table: [tuple(row) for row in conn.execute(sa.text(f"SELECT {columns} FROM {table} ORDER BY id"))]
                for table, columns in (
                    ("promo_campaigns", "id, used_total, updated_at"),
                    ("promo_codes", "id, used_total, updated_at"),
                    ("promo_redemptions", "id, promo_code_id, campaign_id, user_id, idempotency_key, status, "
                                          "user_slot, created_at"),
                    ("promo_attempts", "id, user_id, normalized_code_hash, result, campaign_id, attempted_at"),
                )}


@dataclass
class Claimed:
    outcome: str  # "claimed", "None" or the domain error's name
    result: Any
    rows_after: dict[str, list[tuple[Any, ...]]]


def claim_on_fresh_data(engines: EngineHolder, build: Callable[[SqlUnitOfWork], ClaimCall],
                        claim: Callable[[SqlUnitOfWork, ClaimCall], Any]) -> tuple[Claimed, list[str]]:
    """What ``claim`` does on the data ``build`` makes, committed as the domain does (on success; rolled back on
    None or an error), and the statements the claim itself sent."""
    factory = fresh(engines)
    with factory() as uow:
        call = build(uow)
        uow.commit()
    outcome, result = "claimed", None
    with factory() as uow, statements_sent(engines) as sent:
        try:
            result = claim(uow, call)
        except (UserSlotTaken, LiveRedemptionExists) as exc:
            outcome = type(exc).__name__
        if result is None:
            uow.rollback()
            outcome = "None" if outcome == "claimed" else outcome
        else:
            uow.commit()
    return Claimed(outcome, result, state(engines)), sent


@pytest.mark.parametrize("case", CLAIM_CASES)
def test_the_one_statement_add_and_claim_answers_and_writes_as_the_single_writes(engines: EngineHolder,
                                                                                  case: str) -> None:
    build, expected = CLAIM_CASES[case]
    fast, sent = claim_on_fresh_data(
        engines, build, lambda uow, call: uow.redemptions.add_and_claim(call.redemption, call.attempt, NOW))
    reference, _ = claim_on_fresh_data(
        engines, build, lambda uow, call: add_and_claim_by_parts(uow.redemptions, uow.attempts, uow.promo_codes,
                                                                 call.redemption, call.attempt, NOW))

    assert fast == reference
    assert fast.outcome == expected
    assert len(sent) == 1 and "UPDATE promo_campaigns" in sent[0]
    if expected == "claimed":
        redemption, code, campaign = fast.result
        assert (redemption.idempotency_key, redemption.status, redemption.user_slot) == \
            ("k-new", RedemptionStatus.RESERVED, 1)
        assert (code.used_total, campaign.used_total) == (3, 5)
        assert len(fast.rows_after["promo_attempts"]) == 1
    else:
        assert fast.rows_after["promo_attempts"] == [] and len(fast.rows_after["promo_redemptions"]) <= 1


# -- losing the campaign's last unit to a racing claim --------------------------------------------------------

def _wait_until_blocked(engines: EngineHolder, seconds: float = 10.0) -> None:
    """Until another session of this database waits for a row lock."""
    deadline = time.monotonic() + seconds
    with engines.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    pytest.fail("the racing claim never waited for the campaign row")


CLAIMS: dict[str, Callable[[SqlUnitOfWork, Redemption, Attempt], Any]] = {
    "claim_capacity": lambda uow, redemption, attempt: uow.promo_codes.claim_capacity(redemption.promo_code_id, NOW),
    "add_and_claim": lambda uow, redemption, attempt: uow.redemptions.add_and_claim(redemption, attempt, NOW),
}


@pytest.mark.parametrize("claim", CLAIMS)
def test_a_claim_losing_the_campaigns_last_unit_to_a_racing_claim_takes_nothing_from_its_code(
        engines: EngineHolder, claim: str) -> None:
    factory = fresh(engines)
    with factory() as uow:
        campaign = uow.campaigns.add(make_campaign(max_total_uses=1))
        first = uow.promo_codes.add(make_code(campaign, CURRENT))
        second = uow.promo_codes.add(make_code(campaign, PREVIOUS))
        uow.commit()
    assert first.id is not None and second.id is not None
    racing = make_redemption(second, OTHER_USER, "k-racing", created_at=NOW, updated_at=NOW)
    racing_attempt = make_attempt(OTHER_USER, RedeemResult.ACCEPTED, NOW, PREVIOUS, "PPPP", campaign.id)
    answers: list[Any] = []

    with factory() as winner:
        assert winner.promo_codes.claim_capacity(first.id, NOW) is not None  # holds the campaign row until commit

        def lose() -> None:
            with factory() as loser:
                answers.append(CLAIMS[claim](loser, racing, racing_attempt))
                # Neither, seen from inside the losing unit of work too (before any rollback).
                seen = loser.promo_codes.get(racing.promo_code_id)
                answers.append(seen.used_total if seen is not None else None)
                loser.rollback()

        thread = threading.Thread(target=lose)
        thread.start()
        _wait_until_blocked(engines)
        winner.commit()
        thread.join(timeout=30)

    assert answers == [None, 0]
    with factory() as uow:
        code, budget = uow.promo_codes.get(second.id), uow.campaigns.get(campaign.id or 0)
        assert code is not None and budget is not None
        assert (code.used_total, budget.used_total) == (0, 1)
        assert uow.redemptions.get_by_idempotency_key("k-racing") is None
