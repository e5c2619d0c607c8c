"""SPEC 4: what a redeem checks before the code's state — input validation, RATE_LIMITED (check 2), INVALID
(check 3) — and the attempts every call writes (one, except a replay or a key reuse; never a plaintext code)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adapters.memory import ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.errors import ValidationError
from domain.model import RedeemResult
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.unit.promo_setup import GRANT, PAUSED, add_codes, create, force_campaign
from tests.unit.redeem_setup import HASH, attempts, fail_times

# --- RATE_LIMITED (check 2) ---------------------------------------------------------------------------


def test_blocked_user_gets_rate_limited_even_for_a_valid_code(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26")
    fail_times(redemptions, clock, 1, 5, timedelta(minutes=1))
    latest = clock.now() - timedelta(minutes=1)
    out = redemptions.redeem(1, "SPRING26", "k")
    assert out.result is RedeemResult.RATE_LIMITED
    assert out.retry_after == latest + timedelta(minutes=60)
    assert out.redemption is None
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    last = attempts(store)[-1]
    assert (last.result, last.normalized_code_hash, last.code_prefix, last.campaign_id) == (
        RedeemResult.RATE_LIMITED, HASH("SPRING26"), "SPRI", campaign.id)
    # Another user is not affected.
    assert redemptions.redeem(2, "SPRING26", "k2").accepted


# --- INVALID (check 3) ----------------------------------------------------------------------------------


def test_unknown_code_is_invalid_and_its_attempt_carries_the_hash(
    redemptions: RedemptionService, store: MemoryStore, clock: ManualClock
) -> None:
    out = redemptions.redeem(1, "no-such-code", "k")
    assert out == RedeemOutcome(RedeemResult.INVALID)
    [a] = attempts(store)
    assert a.user_id == 1 and a.result is RedeemResult.INVALID and a.attempted_at == clock.now()
    assert a.normalized_code_hash == HASH("NOSUCHCODE") and a.code_prefix == "NOSU"
    assert a.campaign_id is None


@pytest.mark.parametrize(("raw", "normalized"), [("ab", "AB"), ("ABCD!", "ABCD!"), ("A" * 40, "A" * 40)])
def test_malformed_code_is_invalid_and_its_attempt_carries_the_hash_of_the_normalized_input(
    redemptions: RedemptionService, store: MemoryStore, raw: str, normalized: str
) -> None:
    assert redemptions.redeem(1, raw, "k").result is RedeemResult.INVALID
    [a] = attempts(store)
    assert a.normalized_code_hash == HASH(normalized) and a.code_prefix == normalized[:4]
    assert a.campaign_id is None


@pytest.mark.parametrize("raw", ["A" * 257, "ABCD" + " " * 300, "", "  --  "])
def test_input_that_does_not_normalize_is_invalid_with_a_null_hash(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, raw: str
) -> None:
    create(campaigns, "ABCD")  # even a too-long input that would normalize to a real code
    assert redemptions.redeem(1, raw, "k").result is RedeemResult.INVALID
    [a] = attempts(store)
    assert a.normalized_code_hash is None and a.code_prefix is None and a.result is RedeemResult.INVALID
    assert a.campaign_id is None


# --- attempts ------------------------------------------------------------------------------------------------


def test_every_call_except_replay_and_key_reuse_writes_exactly_one_attempt(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    create(campaigns, "SPRING26", max_total_uses=2)
    paused, _ = create(campaigns, "PAUSED1")
    force_campaign(store, paused, PAUSED)
    calls: list[tuple[int, str, str, RedeemResult, int]] = [
        (1, "SPRING26", "a", RedeemResult.ACCEPTED, 1),
        (1, "SPRING26", "a", RedeemResult.ACCEPTED, 0),  # replay
        (2, "SPRING26", "a", RedeemResult.IDEMPOTENCY_KEY_REUSED, 0),
        (1, "SPRING26", "b", RedeemResult.ALREADY_USED, 1),
        (2, "PAUSED1", "c", RedeemResult.PAUSED, 1),
        (2, "NOPE", "d", RedeemResult.INVALID, 1),
        (3, "SPRING26", "e", RedeemResult.ACCEPTED, 1),
        (4, "SPRING26", "f", RedeemResult.DEPLETED, 1),
    ]
    for user_id, code, key, expected, written in calls:
        before = len(attempts(store))
        assert redemptions.redeem(user_id, code, key).result is expected
        assert len(attempts(store)) - before == written, (code, key, expected)
    assert [a.result for a in attempts(store)] == [
        RedeemResult.ACCEPTED, RedeemResult.ALREADY_USED, RedeemResult.PAUSED, RedeemResult.INVALID,
        RedeemResult.ACCEPTED, RedeemResult.DEPLETED,
    ]
    assert all(a.attempted_at == clock.now() for a in attempts(store))


def test_attempts_on_an_existing_code_carry_its_campaign_id(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    store: MemoryStore,
) -> None:
    spring, _ = create(campaigns, "SPRING26", per_user_limit=1)
    add_codes(codes, spring, "SPRING27")
    gift, _ = create(campaigns, "GIFT30", GRANT)
    assert redemptions.redeem(1, "SPRING26", "k1").accepted
    assert redemptions.redeem(1, "SPRING27", "k2").result is RedeemResult.ALREADY_USED
    assert redemptions.redeem(1, "gift-30", "k3").accepted
    assert redemptions.redeem(1, "NOSUCH99", "k4").result is RedeemResult.INVALID
    assert [(a.result, a.campaign_id) for a in attempts(store)] == [
        (RedeemResult.ACCEPTED, spring.id), (RedeemResult.ALREADY_USED, spring.id),
        (RedeemResult.ACCEPTED, gift.id), (RedeemResult.INVALID, None),
    ]


def test_no_stored_row_holds_the_plaintext_code(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "SECRETCODE77", GRANT, name="secrets")
    add_codes(codes, campaign, "SECRETCODE79")
    redemptions.redeem(1, "secret-code-77", "k1")
    redemptions.redeem(1, "SECRETCODE77", "k2")
    redemptions.redeem(2, "SECRETCODE78", "k3")
    redemptions.redeem(3, "SECRETCODE79", "k4")
    dump = repr((store.campaigns, store.codes, store.code_hashes, store.redemptions, store.attempts,
                 store.entitlements, store.ledger, store.audit))
    assert "SECRETCODE7" not in dump.upper().replace("-", "")


# --- input validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "code", "key", "fields"),
    [
        (0, "ABCD", "k", {"user_id"}),
        (-1, "ABCD", "k", {"user_id"}),
        (2**63, "ABCD", "k", {"user_id"}),
        (True, "ABCD", "k", {"user_id"}),
        ("5", "ABCD", "k", {"user_id"}),
        (1, None, "k", {"code"}),
        (1, 1234, "k", {"code"}),
        (1, "ABCD", "", {"idempotency_key"}),
        (1, "ABCD", "k" * 129, {"idempotency_key"}),
        (1, "ABCD", "has space", {"idempotency_key"}),
        (1, "ABCD", "ümlaut", {"idempotency_key"}),
        (1, "ABCD", "k\n", {"idempotency_key"}),
        (1, "ABCD", None, {"idempotency_key"}),
        (0, None, "", {"user_id", "code", "idempotency_key"}),
    ],
)
def test_bad_input_is_a_validation_error_naming_each_field_and_records_nothing(
    redemptions: RedemptionService, store: MemoryStore, user_id: Any, code: Any, key: Any, fields: set[str]
) -> None:
    with pytest.raises(ValidationError) as exc:
        redemptions.redeem(user_id, code, key)
    assert {e["field"] for e in exc.value.errors} == fields
    assert store.attempts == []


@pytest.mark.parametrize("key", ["k" * 128, "tg:123456:789", "A-z_0.9:x", "-"])
def test_idempotency_keys_of_the_allowed_alphabet_are_fine(
    campaigns: CampaignService, redemptions: RedemptionService, key: str
) -> None:
    create(campaigns, "SPRING26")
    assert redemptions.redeem(2**63 - 1, "SPRING26", key).accepted
