"""The bot on the in-memory adapters and a moved clock, its Bot API a fake over real HTTP."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from dependency_injector import providers

from adapters.memory import ManualClock
from adapters.telegram.pacing import MessagePacer
from domain.campaigns import CampaignSpec
from domain.model import PromoType, PurchaseStatus
from domain.products import MAX_DESCRIPTION
from entrypoints.bot.intake import HOUSEKEEPING_EVERY, Intake, UpdateIntake
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.conftest import T0
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.telegram_updates import Updates

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
            CampaignSpec(name=code, promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=percent), actor="alice",
            code=code)

    def stars_discount(self, code: str, stars: int) -> None:
        self.container.campaign_service().create(
            CampaignSpec(name=code, promo_type=PromoType.STARS_DISCOUNT, discount_stars=stars), actor="alice",
            code=code)

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of the last message's inline keyboard, row by row."""
        rows = self.api.last("sendMessage").json("reply_markup")["inline_keyboard"]
        return [(b["text"], b["callback_data"]) for row in rows for b in row]

    def offer_data(self, product: str) -> str:
        return next(data for _, data in self.buttons() if data.startswith(f"buy:{product}:"))


@contextlib.contextmanager
def bot_of(**settings_changes: Any) -> Iterator[Bot]:
    with FakeBotApi(token=TOKEN) as api:
        settings = Settings(database_url="memory://", promo_secret_pepper="unit-pepper", telegram_bot_token=TOKEN,
                            telegram_webhook_secret="s", telegram_api_url=api.url, **settings_changes)
        container = build_container(settings)
        clock = ManualClock(T0)
        container.clock.override(providers.Object(clock))
        # Replies go out right after each update's commit; no per-chat second between them here (the pacing
        # itself has its own tests): these tests talk to one chat in quick succession.
        container.telegram_pacer.override(providers.Object(MessagePacer(30, chat_interval=0)))
        yield Bot(container, api, clock, container.telegram_intake(), Updates())


@pytest.fixture
def bot() -> Iterator[Bot]:
    with bot_of() as running:
        yield running


def test_with_a_token_telegram_is_the_payment_gateway_and_the_bot_is_defined(bot: Bot) -> None:
    assert bot.container.payment_gateway.is_defined and bot.container.telegram_bot.is_defined
    bare = build_container(Settings(database_url="memory://", promo_secret_pepper="p"))
    assert not bare.payment_gateway.is_defined and not bare.telegram_bot.is_defined


def test_an_invoice_refused_with_429_is_sent_after_retry_after_and_a_second_tap_sends_no_other(bot: Bot) -> None:
    bot.discount("TAPTWICE", 20)
    bot.take(bot.updates.promo(USER, "TAPTWICE"))
    data = bot.offer_data("PREMIUM_30D")
    bot.api.fail("sendInvoice", "Too Many Requests: retry after 3", 429, retry_after=3)
    bot.take(bot.updates.callback(USER, data))
    with bot.container.uow_factory()() as uow:
        purchase = uow.purchases.get_open(USER, "PREMIUM_30D")
        [owed] = uow.telegram_outbox.list("PENDING", 10)
    # The invoice is owed (written with the purchase), so the purchase is INVOICE_SENT and the tap answered so.
    assert purchase is not None and purchase.status is PurchaseStatus.INVOICE_SENT
    assert owed.method == "sendInvoice" and owed.next_attempt_at == T0 + timedelta(seconds=3)
    assert bot.api.last("answerCallbackQuery").params["text"] == "Rechnung gesendet."
    bot.take(bot.updates.callback(USER, data))  # impatient: no second purchase, no second invoice
    assert bot.api.last("answerCallbackQuery").params["text"].startswith("Die Rechnung dafür ist schon unterwegs")
    assert bot.container.checkout_service().get(purchase.id).status is PurchaseStatus.INVOICE_SENT

    bot.clock.advance(seconds=2)
    assert bot.container.telegram_outbox_delivery().drain().claimed == 0  # not before retry_after
    bot.clock.advance(seconds=1)
    assert bot.container.telegram_outbox_delivery().drain().sent == 1
    assert [c.json("prices") for c in bot.api.delivered if c.method == "sendInvoice"] == [
        [{"label": "Premium 30 Tage", "amount": 120}]]
    with bot.container.uow_factory()() as uow:
        sent = next(m for m in uow.telegram_outbox.list("SENT", 10) if m.id == owed.id)
    assert sent.id == owed.id and sent.telegram_message_id is not None


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


def test_an_unreachable_bot_api_never_breaks_the_intake_and_the_reply_stays_owed(bot: Bot) -> None:
    bot.api.fail("sendMessage", "Internal Server Error", 500, times=None)
    assert bot.take(bot.updates.promo(USER, None)) is Intake.PROCESSED
    with bot.container.uow_factory()() as uow:
        assert uow.telegram_outbox.backlog() == 1
    bot.api.clear_failures()
    bot.clock.advance(minutes=1)
    bot.container.telegram_outbox_delivery().drain()
    assert bot.api.delivered_texts(USER) == ["Sende deinen Promo-Code so: /promo DEINCODE (zum Beispiel /promo "
                                             "SOMMER20)."]


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


# --- the discount answer: the price on each button is the invoice's amount -------------------------------------

# (the discount, then per plan: name, discounted price, base price) in German and in English
OFFERS = {
    ("percent", "de"): ("20 %", [("Premium 7 Tage", 40, 50), ("Premium 30 Tage", 120, 150),
                                ("Premium 90 Tage", 280, 350), ("Premium 365 Tage", 800, 1000)]),
    ("stars", "de"): ("100 ⭐", [("Premium 7 Tage", 1, 50), ("Premium 30 Tage", 50, 150),
                                ("Premium 90 Tage", 250, 350), ("Premium 365 Tage", 900, 1000)]),
    ("percent", "en"): ("20%", [("Premium 7 days", 40, 50), ("Premium 30 days", 120, 150),
                               ("Premium 90 days", 280, 350), ("Premium 365 days", 800, 1000)]),
    ("stars", "en"): ("100 ⭐", [("Premium 7 days", 1, 50), ("Premium 30 days", 50, 150),
                                ("Premium 90 days", 250, 350), ("Premium 365 days", 900, 1000)]),
}
OFFER_TEXT = {
    "de": "Code angenommen: {discount} Rabatt, reserviert bis 01.03.2026, 12:15 Uhr UTC. "
          "Wähle dein Paket, um mit Telegram Stars zu bezahlen:",
    "en": "Code accepted: {discount} off, reserved until 2026-03-01 12:15 UTC. Choose your plan to pay with "
          "Telegram Stars:",
}
BUTTON = {"de": "{name} · {final} ⭐ statt {base} ⭐", "en": "{name} · {final} ⭐ instead of {base} ⭐"}


@pytest.mark.parametrize(("kind", "lang"), list(OFFERS))
def test_each_discount_button_shows_the_discounted_price_and_leads_to_an_invoice_of_exactly_that_amount(
    bot: Bot, kind: str, lang: str,
) -> None:
    if kind == "stars":
        bot.stars_discount("STARS100", 100)  # 100 Stars off; a 50-Star plan still costs 1
    else:
        bot.discount("STARS100", 20)
    bot.take(bot.updates.promo(USER, "STARS100", language_code=lang))
    discount, plans = OFFERS[(kind, lang)]
    assert bot.api.texts(USER)[-1] == OFFER_TEXT[lang].format(discount=discount)
    with bot.container.uow_factory()() as uow:
        [reservation] = uow.redemptions.for_user(USER, 10)
    products = ("PREMIUM_7D", "PREMIUM_30D", "PREMIUM_90D", "PREMIUM_365D")
    assert bot.buttons() == [(BUTTON[lang].format(name=name, final=final, base=base),
                              f"buy:{product}:{reservation.id}")
                             for product, (name, final, base) in zip(products, plans, strict=True)]
    for (_, data), (name, final, _) in zip(bot.buttons(), plans, strict=True):
        bot.take(bot.updates.callback(USER, data, language_code=lang))
        invoice = bot.api.last("sendInvoice")
        assert invoice.json("prices") == [{"label": name, "amount": final}]
        assert (invoice.params["currency"], invoice.params.get("provider_token", "")) == ("XTR", "")
        purchase = bot.container.checkout_service().get(int(invoice.params["payload"].removeprefix("purchase:")))
        assert (purchase.final_stars_amount, purchase.status) == (final, PurchaseStatus.INVOICE_SENT)
    assert len(bot.api.calls_to("sendInvoice")) == 4


@pytest.mark.parametrize("lang", ["de", "en"])
def test_a_100_star_discount_on_a_50_star_plan_is_paid_with_one_star(bot: Bot, lang: str) -> None:
    bot.stars_discount("STARS100", 100)
    bot.take(bot.updates.promo(USER, "STARS100", language_code=lang))
    bot.take(bot.updates.callback(USER, bot.offer_data("PREMIUM_7D"), language_code=lang))
    payload = bot.api.last("sendInvoice").params["payload"]
    assert bot.api.last("sendInvoice").params["description"] == {
        "de": "Premium 7 Tage mit Promo-Rabatt: 1 ⭐ statt 50 ⭐.",
        "en": "Premium 7 days with a promo discount: 1 ⭐ instead of 50 ⭐."}[lang]
    bot.take(bot.updates.pre_checkout(USER, payload, 50, language_code=lang))  # the base price is refused
    assert bot.api.last("answerPreCheckoutQuery").params["ok"] in ("False", "false")
    bot.take(bot.updates.pre_checkout(USER, payload, 1, language_code=lang))
    assert bot.api.last("answerPreCheckoutQuery").params["ok"] in ("True", "true")
    bot.take(bot.updates.successful_payment(USER, payload, 1, "stars-charge", language_code=lang))
    purchase = bot.container.checkout_service().get(int(payload.removeprefix("purchase:")))
    assert (purchase.status, purchase.base_stars_amount, purchase.discount_stars_amount,
            purchase.final_stars_amount) == (PurchaseStatus.PAID, 50, 49, 1)
    assert purchase.review_reason is None
    assert bot.api.texts(USER)[-1] == {
        "de": "Danke! 1 ⭐ erhalten. Premium 7 Tage ist jetzt aktiv (7 Tage).",
        "en": "Thank you! 1 ⭐ received. Premium 7 days is now active (7 days)."}[lang]
    with bot.container.uow_factory()() as uow:
        [redemption] = uow.redemptions.for_user(USER, 10)
    assert (redemption.status.value, redemption.applied_purchase_id) == ("APPLIED", purchase.id)


def test_a_products_own_description_heads_the_invoice_and_a_long_one_is_cut_so_the_price_line_stays_whole(
        tmp_path: Path) -> None:
    products = tmp_path / "products.json"
    products.write_text(json.dumps([
        {"code": "PREMIUM_30D", "title": "Premium 30", "stars": 150, "days": 30,
         "description": "Ad-free, priority support."},
        {"code": "PREMIUM_365D", "title": "Premium 365", "stars": 1000, "days": 365,
         "description": "Y" * MAX_DESCRIPTION},
    ]))
    with bot_of(products_file=str(products)) as bot:
        bot.discount("TWENTY", 20)
        bot.take(bot.updates.promo(USER, "TWENTY", language_code="en"))
        bot.take(bot.updates.callback(USER, bot.offer_data("PREMIUM_30D"), language_code="en"))
        assert bot.api.last("sendInvoice").params["description"] == (
            "Ad-free, priority support.\nPremium 30 with a promo discount: 120 ⭐ instead of 150 ⭐.")
        bot.take(bot.updates.callback(USER, bot.offer_data("PREMIUM_365D"), language_code="en"))
        description = bot.api.last("sendInvoice").params["description"]
    own, price = description.split("\n")
    assert len(description) == MAX_DESCRIPTION  # Telegram's limit, filled and not passed (the fake refuses more)
    assert price == "Premium 365 with a promo discount: 800 ⭐ instead of 1000 ⭐."
    assert own.startswith("YYYY") and own.endswith("Y\u2026")
