"""The caller's writes in the transaction of an outcome (``domain.outbox.OutcomeRecorder``, SPEC 9) on memory, SQLite
and PostgreSQL: the bot's reply is stored with the redemption, the failed attempt, the invoice's purchase, the
payment -- and when the transaction does not commit, neither is stored."""

from __future__ import annotations

from typing import Any

import pytest

from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService, Settlement
from domain.model import PromoType, Purchase, PurchaseStatus, RedeemResult
from domain.outbox import SEND_MESSAGE, OutboxMessage
from domain.redemption import RedeemOutcome, RedemptionService
from ports.repositories import UnitOfWork
from tests.builders import Factory
from tests.conftest import T0


class Reply:
    """Marks an update taken (``begin``) and owes one message saying the outcome (``record``)."""

    def __init__(self, update_id: int, fail_in_record: bool = False) -> None:
        self.update_id = update_id
        self.fail_in_record = fail_in_record
        self.recorded: list[Any] = []

    def begin(self, uow: UnitOfWork) -> None:
        assert uow.processed_updates.add(self.update_id, T0)

    def record(self, uow: UnitOfWork, outcome: Any) -> None:
        if self.fail_in_record:
            raise RuntimeError("the reply could not be written")
        self.recorded.append(outcome)
        uow.telegram_outbox.add(OutboxMessage.owed(1, f"update:{self.update_id}:{len(self.recorded)}", SEND_MESSAGE,
                                                   {"text": _say(outcome)}, T0))


def _say(outcome: Any) -> str:
    if isinstance(outcome, RedeemOutcome):
        return outcome.result.value
    if isinstance(outcome, Settlement):
        return f"paid {outcome.purchase.id}"
    assert isinstance(outcome, Purchase)
    return f"invoice {outcome.id}"


def stored(uow_factory: Factory) -> tuple[list[str], int, int, int]:
    """(replies owed, redemptions, attempts, updates taken)."""
    with uow_factory() as uow:
        texts = [str(m.payload["text"]) for m in uow.telegram_outbox.list(None, 100)]
        redemptions = len(uow.redemptions.for_user(1, 100))
        attempts = len(uow.attempts.for_user(1, 100))
        taken = sum(1 for update_id in range(1, 20) if uow.processed_updates.seen(update_id))
    return texts, redemptions, attempts, taken


@pytest.mark.parametrize("promo_type", [PromoType.PERCENT_DISCOUNT, PromoType.PREMIUM_GRANT])
def test_the_reply_is_stored_with_the_redemption_and_with_a_failed_attempt(
        uow_factory: Factory, campaigns: CampaignService, redemptions: RedemptionService, promo_type: PromoType,
) -> None:
    terms = {"discount_percent": 10} if promo_type is PromoType.PERCENT_DISCOUNT else {
        "grant_plan_code": "PREMIUM", "grant_days": 7}
    campaigns.create(CampaignSpec("launch", promo_type, **terms), actor="test", code="ONCE2026")
    first = Reply(1)
    assert redemptions.redeem(1, "ONCE2026", "tg:1:1", recorder=first).accepted
    assert [o.result for o in first.recorded] == [RedeemResult.ACCEPTED]
    assert redemptions.redeem(1, "ONCE2026", "tg:1:2", recorder=Reply(2)).result is RedeemResult.ALREADY_USED
    replay = Reply(3)
    assert redemptions.redeem(1, "ONCE2026", "tg:1:1", recorder=replay).replayed
    assert stored(uow_factory) == (["ACCEPTED", "ALREADY_USED", "ACCEPTED"], 1, 2, 3)


def test_a_reply_that_cannot_be_written_takes_the_redemption_with_it(
        uow_factory: Factory, campaigns: CampaignService, redemptions: RedemptionService) -> None:
    _, code = campaigns.create(CampaignSpec("launch", PromoType.PERCENT_DISCOUNT, discount_percent=10),
                               actor="test", code="LAUNCH2026")
    assert code is not None
    with pytest.raises(RuntimeError, match="could not be written"):
        redemptions.redeem(1, "LAUNCH2026", "tg:1:1", recorder=Reply(1, fail_in_record=True))
    assert stored(uow_factory) == ([], 0, 0, 0)
    with uow_factory() as uow:
        assert (uow.promo_codes.get(code.id or 0) or code).used_total == 0  # the claim went with it
    assert redemptions.redeem(1, "LAUNCH2026", "tg:1:1", recorder=Reply(1)).accepted  # handled again: works
    assert stored(uow_factory) == (["ACCEPTED"], 1, 1, 1)


def test_a_second_delivery_of_the_same_update_stops_at_begin_with_nothing_written(
        uow_factory: Factory, campaigns: CampaignService, redemptions: RedemptionService) -> None:
    campaigns.create(CampaignSpec("launch", PromoType.PERCENT_DISCOUNT, discount_percent=10), actor="test",
                     code="LAUNCH2026")
    assert redemptions.redeem(1, "LAUNCH2026", "tg:1:1", recorder=Reply(1)).accepted
    with pytest.raises(AssertionError):
        redemptions.redeem(1, "LAUNCH2026", "tg:1:1", recorder=Reply(1))
    assert stored(uow_factory) == (["ACCEPTED"], 1, 1, 1)


def test_the_invoice_is_stored_with_its_purchase_which_is_then_invoice_sent_and_a_repeat_stores_none(
        uow_factory: Factory, checkout: CheckoutService) -> None:
    invoice = Reply(4)
    purchase = checkout.init(1, "PREMIUM_30D", invoice=invoice)
    assert purchase.status is PurchaseStatus.INVOICE_SENT and invoice.recorded == [purchase]
    repeat = Reply(5)
    assert checkout.init(1, "PREMIUM_30D", invoice=repeat).id == purchase.id
    assert repeat.recorded == []
    paid = Reply(6)
    settled = checkout.successful_payment(purchase.id or 0, "charge-1", purchase.final_stars_amount, recorder=paid)
    assert not settled.replayed
    again = Reply(7)
    assert checkout.successful_payment(purchase.id or 0, "charge-1", purchase.final_stars_amount,
                                       recorder=again).replayed
    assert again.recorded == []
    assert stored(uow_factory)[0] == [f"invoice {purchase.id}", f"paid {purchase.id}"]
    assert stored(uow_factory)[3] == 2  # updates 4 and 6; the repeats wrote nothing
