"""The bot on the in-memory adapters and a moved clock, its Bot API a fake over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest
from dependency_injector import providers

from adapters.memory import ManualClock
from domain.campaigns import CampaignSpec
from domain.model import PromoType, PurchaseStatus
from entrypoints.bot.intake import HOUSEKEEPING_EVERY, Intake, UpdateIntake
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.conftest import T0
from tests.fakes.bot_api import FakeBotApi, Updates

TOKEN = "4242:unit-bot-token"
USER = 5550001


@attrs.define
class Bot:
    container: Container
    api: FakeBotApi
    clock: ManualClock
    intake: UpdateIntake
    updates: Updates

    def take(self, update: object) -> Intake:
        return self.intake.take(update)

    def discount(self, code: str, percent: int) -> None:
        self.container.campaign_service().create(
            CampaignSpec(campaign_name=code, promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=percent), code)

    def offer_data(self, product: str) -> str:
        rows = self.api.last("sendMessage").json("reply_markup")["inline_keyboard"]
        return next(b["callback_data"] for row in rows for b in row if b["callback_data"].startswith(f"buy:{product}:"))


@pytest.fixture
def bot() -> Iterator[Bot]:
    with FakeBotApi(token=TOKEN) as api:
        settings = Settings(database_url="memory://", promo_secret_pepper="unit-pepper", telegram_bot_token=TOKEN,
                            telegram_webhook_secret="s", telegram_api_url=api.url)
        container = build_container(settings)
        clock = ManualClock(T0)
        container.clock.override(providers.Object(clock))
        yield Bot(container, api, clock, container.telegram_intake(), Updates())


def test_with_a_token_telegram_is_the_payment_gateway_and_the_bot_is_defined(bot: Bot) -> None:
    assert bot.container.payment_gateway.is_defined and bot.container.telegram_bot.is_defined
    bare = build_container(Settings(database_url="memory://", promo_secret_pepper="p"))
    assert not bare.payment_gateway.is_defined and not bare.telegram_bot.is_defined


def test_an_invoice_that_could_not_be_sent_is_sent_on_the_next_tap(bot: Bot) -> None:
    bot.discount("TAPTWICE", 20)
    bot.take(bot.updates.promo(USER, "TAPTWICE"))
    data = bot.offer_data("PREMIUM_30D")
    bot.api.fail("sendInvoice", "Too Many Requests: retry after 1", 429)
    bot.take(bot.updates.callback(USER, data))
    with bot.container.uow_factory()() as uow:
        purchase = uow.purchases.get_open(USER, "PREMIUM_30D")
    assert purchase is not None and purchase.status is PurchaseStatus.CREATED
    assert bot.api.last("answerCallbackQuery").params["text"] == (
        "Da ist etwas schiefgelaufen. Bitte versuche es in ein paar Minuten noch einmal.")

    bot.take(bot.updates.callback(USER, data))
    sent = bot.api.calls_to("sendInvoice")
    assert len(sent) == 2 and sent[-1].json("prices") == [{"label": "Premium 30 Tage", "amount": 120}]
    assert bot.container.checkout_service().get(purchase.id).status is PurchaseStatus.INVOICE_SENT


def test_a_reservation_past_its_time_asks_the_user_to_redeem_again(bot: Bot) -> None:
    bot.discount("LATE10", 10)
    bot.take(bot.updates.promo(USER, "LATE10"))
    data = bot.offer_data("PREMIUM_7D")
    bot.clock.advance(minutes=16)
    bot.take(bot.updates.callback(USER, data))
    assert bot.api.texts(USER)[-1] == ("Deine Reservierung ist abgelaufen. Sende /promo CODE erneut, "
                                       "um den Rabatt neu zu reservieren.")
    assert bot.api.calls_to("sendInvoice") == []


def test_a_payment_whose_reservation_was_lost_is_settled_and_flagged_and_the_user_told(bot: Bot) -> None:
    bot.discount("FLAGME15", 15)
    bot.take(bot.updates.promo(USER, "FLAGME15"))
    bot.take(bot.updates.callback(USER, bot.offer_data("PREMIUM_30D")))
    payload = bot.api.last("sendInvoice").params["payload"]
    purchase_id = int(payload.split(":")[1])
    # the invoice expired and the reservation with it, then Telegram still delivered the payment
    bot.clock.advance(minutes=45)
    bot.container.maintenance_service().expire_stale_invoices()
    bot.container.maintenance_service().expire_reservations()
    bot.take(bot.updates.successful_payment(USER, payload, 128, "late-charge"))
    purchase = bot.container.checkout_service().get(purchase_id)
    assert purchase.status is PurchaseStatus.PAID and purchase.review_reason == "PROMO_REDEMPTION_NOT_RESERVED"
    assert bot.api.texts(USER)[-1].startswith("Danke, deine Zahlung ist angekommen. Wir prüfen sie noch")


def test_a_payment_that_cannot_settle_is_logged_and_the_user_reassured(bot: Bot,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="starpromo.bot"):
        bot.take(bot.updates.successful_payment(USER, "purchase:424242", 50, "orphan-charge"))
    assert [r.__dict__.get("reason") for r in caplog.records if r.__dict__.get("event") == "payment_not_settled"] \
        == ["NOT_FOUND"]
    assert bot.api.texts(USER)[-1].startswith("Danke, deine Zahlung ist angekommen.")


def test_an_unreachable_bot_api_never_breaks_the_intake(bot: Bot) -> None:
    bot.api.fail("sendMessage", "Internal Server Error", 500, times=None)
    assert bot.take(bot.updates.promo(USER, None)) is Intake.PROCESSED


def test_old_update_ids_are_forgotten_but_recent_ones_stay_duplicates(bot: Bot) -> None:
    old = bot.updates.promo(USER, None, update_id=HOUSEKEEPING_EVERY * 10 + 1)
    assert bot.take(old) is Intake.PROCESSED
    bot.clock.advance(timedelta(days=3))
    recent = bot.updates.promo(USER, None, update_id=HOUSEKEEPING_EVERY * 10 + 2)
    assert bot.take(recent) is Intake.PROCESSED
    # the next id on a housekeeping boundary prunes ids older than the retention
    assert bot.take(bot.updates.promo(USER, None, update_id=HOUSEKEEPING_EVERY * 11)) is Intake.PROCESSED
    assert bot.take(recent) is Intake.DUPLICATE
    assert bot.take(old) is Intake.PROCESSED  # forgotten: Telegram never redelivers after 24 h


def test_a_malformed_bot_token_stops_start_up_naming_the_variable() -> None:
    from domain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="TELEGRAM_BOT_TOKEN"):
        build_container(Settings(database_url="memory://", promo_secret_pepper="p", telegram_bot_token="no colon"))
