"""Delivering the outbox (SPEC 9) on the in-memory adapters, a moved clock and the fake Bot API over real HTTP: a
reply is marked SENT with Telegram's message id only after Telegram's ok; a 429 comes again after ``retry_after``
and not before; a 5xx backs off; a 400 is FAILED for good (and sent again only when ops redeliver it); a chat's
replies go out in order, one at a time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from adapters.telegram import TelegramBotApi
from adapters.telegram.pacing import MessagePacer
from domain.outbox import SEND_MESSAGE, DeliveryPolicy, OutboxMessage, OutboxStatus
from entrypoints.bot.outbox import OutboxDelivery
from tests.conftest import T0
from tests.fakes.bot_api import FakeBotApi

TOKEN = "4242:outbox-token"


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def delivery(api: FakeBotApi, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> OutboxDelivery:
    return OutboxDelivery(uow_factory, TelegramBotApi(TOKEN, api.url), MessagePacer(30, chat_interval=0), clock)


def owe(uow_factory: InMemoryUnitOfWorkFactory, chat_id: int, text: str, clock: ManualClock) -> int:
    with uow_factory() as uow:
        stored = uow.telegram_outbox.add(OutboxMessage.owed(chat_id, f"test:{chat_id}:{text}", SEND_MESSAGE,
                                                            {"text": text}, clock.now()))
        uow.commit()
    assert stored is not None and stored.id is not None
    return stored.id


def row(uow_factory: InMemoryUnitOfWorkFactory, message_id: int) -> OutboxMessage:
    with uow_factory() as uow:
        return next(m for m in uow.telegram_outbox.list(None, 100) if m.id == message_id)


def test_a_reply_is_marked_sent_with_telegrams_message_id_after_the_ok(
        api: FakeBotApi, delivery: OutboxDelivery, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    message_id = owe(uow_factory, 7, "hallo", clock)
    assert delivery.drain().sent == 1
    sent = row(uow_factory, message_id)
    [call] = api.delivered
    assert (sent.status, sent.sent_at, call.params["text"]) == (OutboxStatus.SENT, T0, "hallo")
    assert sent.telegram_message_id is not None and sent.telegram_message_id >= 1000  # the fake's numbering
    assert delivery.drain().claimed == 0  # nothing is sent twice


def test_a_429_comes_again_after_retry_after_and_not_before(
        api: FakeBotApi, delivery: OutboxDelivery, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    message_id = owe(uow_factory, 7, "later", clock)
    api.fail("sendMessage", "Too Many Requests: retry after 5", 429, retry_after=5)
    assert delivery.drain().rate_limited == 1
    assert row(uow_factory, message_id).next_attempt_at == T0 + timedelta(seconds=5)
    clock.advance(seconds=4)
    assert delivery.drain().claimed == 0
    clock.advance(seconds=1)
    assert delivery.drain().sent == 1
    assert api.delivered_texts(7) == ["later"]


def test_a_5xx_backs_off_and_the_next_try_delivers(
        api: FakeBotApi, delivery: OutboxDelivery, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    message_id = owe(uow_factory, 7, "after the outage", clock)
    api.fail("sendMessage", "Bad Gateway", 502, times=2)
    assert delivery.drain().retried == 1
    first_backoff = DeliveryPolicy().first_backoff
    assert row(uow_factory, message_id).next_attempt_at == T0 + first_backoff
    clock.advance(first_backoff)
    assert delivery.drain().retried == 1
    assert row(uow_factory, message_id).next_attempt_at == clock.now() + 2 * first_backoff  # doubling
    clock.advance(2 * first_backoff)
    assert delivery.drain().sent == 1
    assert row(uow_factory, message_id).attempts == 3


def test_a_400_fails_for_good_is_logged_and_is_sent_again_only_when_redelivered(
        api: FakeBotApi, delivery: OutboxDelivery, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    message_id = owe(uow_factory, 7, "refused", clock)
    api.fail("sendMessage", "Bad Request: chat not found", 400)
    with caplog.at_level(logging.ERROR, logger="starpromo.bot.outbox"):
        assert delivery.drain().failed == 1
    assert [r.__dict__["error_code"] for r in caplog.records
            if r.__dict__.get("event") == "telegram_outbox_failed"] == [400]
    failed = row(uow_factory, message_id)
    assert (failed.status, failed.last_error) == (OutboxStatus.FAILED, "400: Bad Request: chat not found")
    clock.advance(timedelta(hours=1))
    assert delivery.drain().claimed == 0 and len(api.calls_to("sendMessage")) == 1  # never retried by itself
    with uow_factory() as uow:
        assert uow.telegram_outbox.redeliver([message_id], clock.now()) == 1
        uow.commit()
    assert delivery.drain().sent == 1
    assert api.delivered_texts(7) == ["refused"]


def test_a_chats_replies_go_out_in_order_behind_one_that_waits(
        api: FakeBotApi, delivery: OutboxDelivery, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    for text in ("first", "second", "third"):
        owe(uow_factory, 7, text, clock)
    owe(uow_factory, 8, "other chat", clock)
    api.fail("sendMessage", "Too Many Requests: retry after 2", 429, retry_after=2)
    delivery.drain()
    assert api.delivered_texts(7) == [] and api.delivered_texts(8) == ["other chat"]
    clock.advance(seconds=2)
    delivery.drain()
    assert api.delivered_texts(7) == ["first", "second", "third"]


def test_a_reply_nobody_could_send_for_a_day_fails_as_too_old(
        api: FakeBotApi, delivery: OutboxDelivery, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    message_id = owe(uow_factory, 7, "stale", clock)
    clock.advance(DeliveryPolicy().max_age)
    assert delivery.drain().failed == 1
    assert row(uow_factory, message_id).last_error == "too old to send"
    assert api.calls_to("sendMessage") == []


def test_invoices_go_out_with_their_stars_price(
        api: FakeBotApi, delivery: OutboxDelivery, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    with uow_factory() as uow:
        uow.telegram_outbox.add(OutboxMessage.owed(7, "test:invoice", "sendInvoice", {
            "title": "Premium 30 Tage", "description": "30 Tage Premium", "payload": "purchase:9",
            "label": "Premium 30 Tage", "amount": 120}, clock.now()))
        uow.commit()
    assert delivery.drain().sent == 1
    invoice = api.last("sendInvoice")
    assert (invoice.params["payload"], invoice.params["currency"], invoice.json("prices")) == (
        "purchase:9", "XTR", [{"label": "Premium 30 Tage", "amount": 120}])
