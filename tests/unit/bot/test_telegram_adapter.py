"""The telebot adapter against the fake Bot API over real HTTP (TELEGRAM_API_URL honoured)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.telegram import Button, TelegramApiError, TelegramBotApi, TelegramPaymentGateway
from adapters.telegram.client import DEFAULT_RETRY, RetryPolicy
from domain.errors import PaymentRefundError
from domain.model import StarTransaction
from tests.fakes.bot_api import FakeBotApi, free_port_url

TOKEN = "123456:TEST-token"


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def client(api: FakeBotApi) -> TelegramBotApi:
    return TelegramBotApi(TOKEN, api.url)


def test_calls_go_to_the_configured_base_with_the_token_in_the_path(api: FakeBotApi, client: TelegramBotApi) -> None:
    client.send_message(42, "Hallo")
    call = api.last("sendMessage")
    assert call.token == TOKEN
    assert call.params["chat_id"] == "42" and call.params["text"] == "Hallo"


def test_message_with_buttons_carries_the_callback_data(api: FakeBotApi, client: TelegramBotApi) -> None:
    client.send_message(42, "Rabatt", [[Button("Premium 30 Tage · 120 ⭐", "buy:PREMIUM_30D:7")]])
    markup = api.last("sendMessage").json("reply_markup")
    assert markup == {"inline_keyboard": [[{"text": "Premium 30 Tage · 120 ⭐", "callback_data": "buy:PREMIUM_30D:7"}]]}


def test_invoice_is_in_stars_with_one_price_and_an_empty_provider_token(api: FakeBotApi,
                                                                         client: TelegramBotApi) -> None:
    client.send_invoice(42, "Premium 30 days", "30 days of premium", "purchase:9", "Premium 30 days", 120)
    call = api.last("sendInvoice")
    assert call.params["currency"] == "XTR"
    assert call.params["provider_token"] == ""
    assert call.params["payload"] == "purchase:9"
    assert call.json("prices") == [{"label": "Premium 30 days", "amount": 120}]


def test_refund_sends_user_and_charge_id(api: FakeBotApi, client: TelegramBotApi) -> None:
    api.add_payment("ch-1", 120, 42, "purchase:9")
    TelegramPaymentGateway(client).refund_star_payment(42, "ch-1")
    call = api.last("refundStarPayment")
    assert call.params == {"user_id": "42", "telegram_payment_charge_id": "ch-1"}


def test_a_second_refund_is_refused_with_telegrams_description(api: FakeBotApi, client: TelegramBotApi) -> None:
    gateway = TelegramPaymentGateway(client)
    gateway.refund_star_payment(42, "ch-1")
    with pytest.raises(PaymentRefundError) as err:
        gateway.refund_star_payment(42, "ch-1")
    assert "CHARGE_ALREADY_REFUNDED" in err.value.message


def test_refund_when_telegram_is_down_is_a_refund_error_after_the_retries(api: FakeBotApi,
                                                                            client: TelegramBotApi) -> None:
    api.fail("refundStarPayment", raw_body=b"<html>bad gateway</html>", http_status=502, times=None)
    with pytest.raises(PaymentRefundError) as err:
        TelegramPaymentGateway(client).refund_star_payment(42, "ch-1")
    assert "502" in err.value.message
    assert TOKEN not in err.value.message
    assert len(api.calls_to("refundStarPayment")) == DEFAULT_RETRY.attempts


# --- flood control and retries (SPEC 9) ---------------------------------------------------------------------


def test_a_429_is_waited_out_for_retry_after_and_the_call_then_succeeds(api: FakeBotApi,
                                                                         client: TelegramBotApi) -> None:
    api.fail("sendMessage", "Too Many Requests: retry after 1", 429, retry_after=1)
    client.send_message(42, "once")
    first, second = api.calls_to("sendMessage")
    assert second.at - first.at >= 1.0  # Telegram's retry_after, honoured
    assert api.delivered_texts(42) == ["once"]


def test_a_5xx_is_retried_with_backoff_and_a_passing_second_try_is_the_answer(api: FakeBotApi,
                                                                              client: TelegramBotApi) -> None:
    api.fail("getMe", "Bad Gateway", 502)
    assert client.get_me()["username"] == "starpromo_test_bot"
    assert len(api.calls_to("getMe")) == 2


def test_a_400_is_never_retried(api: FakeBotApi, client: TelegramBotApi) -> None:
    api.fail("sendMessage", "Bad Request: chat not found", 400, times=None)
    with pytest.raises(TelegramApiError) as err:
        client.send_message(42, "x")
    assert err.value.error_code == 400 and not err.value.transient
    assert len(api.calls_to("sendMessage")) == 1


def test_a_caller_that_reschedules_gets_the_429_at_once_with_its_retry_after(api: FakeBotApi,
                                                                             client: TelegramBotApi) -> None:
    api.fail("sendMessage", "Too Many Requests: retry after 7", 429, retry_after=7)
    with pytest.raises(TelegramApiError) as err:
        client.send_message(42, "x", retry=RetryPolicy(wait_on_429=False))
    assert (err.value.error_code, err.value.retry_after) == (429, 7)
    assert len(api.calls_to("sendMessage")) == 1


def test_no_call_waits_longer_than_its_policy_allows(api: FakeBotApi, client: TelegramBotApi) -> None:
    api.fail("sendMessage", "Too Many Requests: retry after 30", 429, retry_after=30)
    with pytest.raises(TelegramApiError) as err:
        client.send_message(42, "x", retry=RetryPolicy(max_wait=5))
    assert err.value.retry_after == 30
    assert len(api.calls_to("sendMessage")) == 1


def test_unreachable_bot_api_is_a_telegram_api_error() -> None:
    client = TelegramBotApi(TOKEN, free_port_url())
    with pytest.raises(TelegramApiError) as err:
        client.send_message(1, "x")
    assert "unreachable" in err.value.description
    assert TOKEN not in str(err.value)


def test_star_transactions_map_payments_and_refunds_and_page_with_offset(api: FakeBotApi,
                                                                          client: TelegramBotApi) -> None:
    t = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    api.add_payment("ch-1", 150, 42, "purchase:1", t)
    api.add_payment("ch-2", 120, 43, "purchase:2", t)
    api.add_refund("ch-1", 150, 42, t)
    api.star_transactions.append({"id": "wd-1", "amount": 500, "date": int(t.timestamp()),
                                  "receiver": {"type": "fragment"}})
    gateway = TelegramPaymentGateway(client)
    first = gateway.get_star_transactions(0, 2)
    rest = gateway.get_star_transactions(2, 100)
    assert first == [
        StarTransaction(id="ch-1", amount=150, date=t, user_id=42, outgoing=True, payload=None),
        StarTransaction(id="ch-2", amount=120, date=t, user_id=43, outgoing=False, payload="purchase:2"),
    ]
    assert rest == [
        StarTransaction(id="ch-1", amount=150, date=t, user_id=42, outgoing=False, payload="purchase:1"),
        StarTransaction(id="wd-1", amount=500, date=t, user_id=None, outgoing=True, payload=None, partner="fragment",
                        transaction_type=None),
    ]
    assert [c.params.get("offset") for c in api.calls_to("getStarTransactions")] == [None, "2"]


def test_a_refund_appears_as_an_outgoing_transaction(api: FakeBotApi, client: TelegramBotApi) -> None:
    api.add_payment("ch-1", 150, 42, "purchase:1")
    gateway = TelegramPaymentGateway(client)
    gateway.refund_star_payment(42, "ch-1")
    txs = gateway.get_star_transactions(0, 10)
    assert [(t.id, t.outgoing, t.amount, t.user_id) for t in txs] == [("ch-1", True, 150, 42),
                                                                     ("ch-1", False, 150, 42)]


def test_bot_api_error_keeps_code_and_description(api: FakeBotApi, client: TelegramBotApi) -> None:
    api.fail("sendMessage", "Forbidden: bot was blocked by the user", 403)
    with pytest.raises(TelegramApiError) as err:
        client.send_message(42, "x")
    assert (err.value.error_code, err.value.description) == (403, "Forbidden: bot was blocked by the user")
    client.send_message(42, "y")  # only the next call failed
    assert api.texts(42) == ["x", "y"]
