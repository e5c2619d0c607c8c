"""The bot's handlers (SPEC 9): ``/promo``, buy buttons, Stars invoices, pre-checkout, payments, refunds.

``PromoBot.dispatch`` routes an update to its handler in the caller's thread (webhook request, RQ job or polling
loop). Handlers owe their replies on the update's ``Turn`` (entrypoints/bot/turn.py): they reach Telegram through
``telegram_outbox``, written in the transaction of the change they report. A failure is logged with the update's
ids and answered with the catalog's ``error`` text, so one poison update cannot stall the bot; a database outage
leaves the update unmarked, to be handled again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable
from typing import Any

import attrs
from telebot import types, util

from adapters.jsonlog import log_event
from adapters.telegram import Button, TelegramApiError, TelegramBotApi
from domain.checkout import CheckoutService, Settlement, discounted_price
from domain.errors import CheckoutError, InvalidPurchaseState, NotFound, StorageUnavailable, ValidationError
from domain.model import (
    Campaign,
    Product,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    Redemption,
    RedemptionStatus,
)
from domain.products import DEFAULT_PRODUCTS, MAX_DESCRIPTION
from domain.redemption import RedeemOutcome, RedemptionService
from entrypoints.bot import messages
from entrypoints.bot.messages import language_of
from entrypoints.bot.turn import Turn, UpdateAlreadyTaken
from ports.clock import Clock
from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.bot")

CALLBACK_DATA_MAX_BYTES = 64
PURCHASE_PAYLOAD = re.compile(r"^purchase:([1-9][0-9]{0,18})$")
BUY_DATA = re.compile(r"^buy:([A-Z0-9_]{1,32})(?::([1-9][0-9]{0,18}))?$")
PROMO_OPEN = "promo:open"
_DEFAULT_TITLES = {(p.code, p.title) for p in DEFAULT_PRODUCTS}


def invoice_description(own: str | None, price: str) -> str:
    """An invoice's description: the product's own (from the products file) above the price line, cut with an
    ellipsis where both would not fit Telegram's 255 characters (the price line, which says the discount, stays
    whole); the price line alone without one."""
    if not own:
        return price
    room = MAX_DESCRIPTION - len(price) - 1
    if room < 2:
        return price
    text = own if len(own) <= room else own[:room - 1].rstrip() + "\u2026"
    return f"{text}\n{price}"


@attrs.frozen
class BuyRequest:
    product_code: str
    redemption_id: int | None


def buy_callback_data(product_code: str, redemption_id: int | None) -> str:
    """``buy:<product>[:<redemption_id>]``; a ValueError when it would exceed Telegram's 64 bytes."""
    data = f"buy:{product_code}" + (f":{redemption_id}" if redemption_id is not None else "")
    if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
        raise ValueError(f"callback_data over {CALLBACK_DATA_MAX_BYTES} bytes: {data!r}")
    return data


def parse_buy(data: str) -> BuyRequest | None:
    m = BUY_DATA.fullmatch(data)
    if m is None:
        return None
    return BuyRequest(m.group(1), int(m.group(2)) if m.group(2) else None)


def parse_purchase_payload(payload: object) -> int | None:
    """The purchase id of an invoice payload ``purchase:<id>``; None for anything else."""
    if not isinstance(payload, str):
        return None
    m = PURCHASE_PAYLOAD.fullmatch(payload)
    return int(m.group(1)) if m else None


def promo_argument(text: str | None) -> str:
    """What follows ``/promo`` (or ``/promo@bot``); empty when nothing does."""
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


class PromoBot:
    """Turns Telegram updates into redeem/checkout calls and answers in the user's language.

    Replies are not sent here: each is owed on the update's :class:`Turn` and written to ``telegram_outbox`` in
    the transaction of the change it reports (see ``entrypoints.bot.turn``); the outbox delivery sends them.
    Only ``answerCallbackQuery`` and ``answerPreCheckoutQuery`` go to Telegram at once (they are no messages,
    and a pre-checkout query must be answered within 10 s)."""

    def __init__(self, api: TelegramBotApi, redemptions: RedemptionService, checkout: CheckoutService,
                 clock: Clock, uow_factory: UnitOfWorkFactory) -> None:
        self.api = api
        self._redemptions = redemptions
        self._checkout = checkout
        self._clock = clock
        self._uow = uow_factory

    def dispatch(self, update: types.Update, update_id: int | None = None) -> Turn:
        """Handle ``update`` (an update of no kind handled here is only marked taken); its turn, finished.

        Raises ``UpdateAlreadyTaken`` for a second delivery and ``StorageUnavailable`` when the database
        is away (nothing of the update was kept: it is handled again). Any other failure is logged and
        answered with the catalog's ``error`` text, so one poison update cannot stall the bot."""
        turn = Turn(update_id, self._clock)
        obj: Any = None
        try:
            handler, obj = self._route(update)
            if handler is not None:
                handler(obj, turn)
        except (UpdateAlreadyTaken, StorageUnavailable):
            raise
        except Exception as exc:
            user = getattr(obj, "from_user", None)
            log_event(log, "telegram_handler_failed", level=logging.ERROR, update_id=update_id,
                      user_id=getattr(user, "id", None), error=type(exc).__name__, message=str(exc)[:300])
            # Whatever the failed handler recorded was most likely rolled back with it: answer with the error
            # text in a transaction of its own. Had it committed after all, the update is marked, and that
            # transaction stops at the mark (a duplicate): the reply already owed stands.
            turn.reset()
            self._tell_error(obj, turn)
            with contextlib.suppress(UpdateAlreadyTaken):
                turn.finish(self._uow)
            return turn
        turn.finish(self._uow)
        return turn

    def _route(self, update: types.Update) -> tuple[Callable[[Any, Turn], None] | None, Any]:
        message = update.message
        if message is not None:
            # telebot sets no content_type for a refund's service message: it is recognised by its field.
            if message.refunded_payment is not None:
                return self.on_refunded_payment, message
            if message.successful_payment is not None:
                return self.on_successful_payment, message
            if message.content_type == "text" and util.extract_command(message.text or "") == "promo":
                return self.on_promo, message
            return None, message
        if update.callback_query is not None:
            return self.on_callback, update.callback_query
        if update.pre_checkout_query is not None:
            return self.on_pre_checkout, update.pre_checkout_query
        return None, None

    # --- /promo --------------------------------------------------------------------------------------

    def on_promo(self, message: types.Message, turn: Turn) -> None:
        user = message.from_user
        if user is None or user.is_bot:
            return
        lang = language_of(user.language_code)
        chat_id = message.chat.id
        code = promo_argument(message.text)
        if not code:
            turn.say(chat_id, messages.text(lang, "promo_hint"))
            return
        key = f"tg:{chat_id}:{message.message_id}"

        def answer(outcome: RedeemOutcome) -> None:
            text, buttons = self._redeem_answer(lang, outcome)
            turn.say(chat_id, text, buttons)

        try:
            outcome = self._redemptions.redeem(user.id, code, key, recorder=turn.recorder(answer))
        except ValidationError as exc:
            log_event(log, "telegram_promo_rejected", level=logging.WARNING, user_id=user.id,
                      fields=[e["field"] for e in exc.errors])
            turn.say(chat_id, messages.text(lang, "result_INVALID"))
            return
        log_event(log, "telegram_promo_redeemed", user_id=user.id, result=outcome.result.value,
                  replayed=outcome.replayed,
                  redemption_id=outcome.redemption.id if outcome.redemption is not None else None)

    def _redeem_answer(self, lang: str, outcome: RedeemOutcome) -> tuple[str, list[list[Button]]]:
        if outcome.result is RedeemResult.RATE_LIMITED:
            until = outcome.retry_after or self._clock.now()
            minutes = max(1, math.ceil((until - self._clock.now()).total_seconds() / 60))
            return messages.text(lang, "result_RATE_LIMITED", until=messages.when(lang, until), minutes=minutes), []
        if outcome.result is not RedeemResult.ACCEPTED or outcome.redemption is None or outcome.campaign is None:
            return messages.text(lang, f"result_{outcome.result.value}"), []
        campaign, redemption = outcome.campaign, outcome.redemption
        if campaign.promo_type is PromoType.PREMIUM_GRANT:
            return messages.text(lang, "grant_accepted", plan=campaign.grant_plan_code, days=campaign.grant_days), []
        if redemption.status is not RedemptionStatus.RESERVED:
            return messages.text(lang, "discount_done", status=redemption.status.value), []
        return self._discount_offer(lang, campaign, redemption)

    def _discount_offer(self, lang: str, campaign: Campaign,
                        redemption: Redemption) -> tuple[str, list[list[Button]]]:
        # The price each button shows is the price checkout will charge (the same function computes both).
        if redemption.discount_stars is not None:
            discount = messages.text(lang, "discount_stars", stars=redemption.discount_stars)
        else:
            discount = messages.text(lang, "discount_percent", percent=redemption.discount_percent or 0)
        rows: list[list[Button]] = []
        for product in self._checkout.catalog:
            if not campaign.applies_to(product.code):
                continue
            _, final = discounted_price(product.stars, redemption.discount_percent, redemption.discount_stars)
            try:
                data = buy_callback_data(product.code, redemption.id)
            except ValueError:
                log_event(log, "telegram_button_skipped", level=logging.WARNING, product_code=product.code)
                continue
            label = messages.text(lang, "discount_button", product=self._name(lang, product), final=final,
                                  base=product.stars)
            rows.append([Button(label, data)])
        if not rows:
            return messages.text(lang, "discount_no_products", discount=discount), []
        until = redemption.reserved_until or self._clock.now()
        return messages.text(lang, "discount_offer", discount=discount, until=messages.when(lang, until)), rows

    @staticmethod
    def _name(lang: str, product: Product) -> str:
        default_title = (product.code, product.title) in _DEFAULT_TITLES
        return messages.product_name(lang, product.title, product.days, default_title)

    # --- callbacks -----------------------------------------------------------------------------------

    def on_callback(self, call: types.CallbackQuery, turn: Turn) -> None:
        user = call.from_user
        lang = language_of(user.language_code)
        chat_id = call.message.chat.id if call.message is not None else user.id
        data = call.data or ""
        if data == PROMO_OPEN:
            self._answer_callback(call)
            turn.say(chat_id, messages.text(lang, "promo_open_hint"))
            return
        buy = parse_buy(data)
        if buy is None:
            self._answer_callback(call, messages.text(lang, "unknown_action"))
            return
        self._buy(call, turn, lang, chat_id, user.id, buy)

    def _buy(self, call: types.CallbackQuery, turn: Turn, lang: str, chat_id: int, user_id: int,
             buy: BuyRequest) -> None:
        product = self._checkout.catalog.get(buy.product_code)
        if product is None:
            self._refuse(call, turn, chat_id, messages.text(lang, "checkout_UNKNOWN_PRODUCT"))
            return
        name = self._name(lang, product)

        def invoice(purchase: Purchase) -> None:
            if purchase.discount_stars_amount:
                price = messages.text(lang, "invoice_description_discount", product=name,
                                      final=purchase.final_stars_amount, base=purchase.base_stars_amount)
            else:
                price = messages.text(lang, "invoice_description", product=name, final=purchase.final_stars_amount)
            turn.invoice(chat_id, messages.text(lang, "invoice_title", product=name),
                         invoice_description(product.description, price),
                         f"purchase:{purchase.id}", name, purchase.final_stars_amount)

        recorder = turn.recorder(invoice)
        try:
            # The invoice is written with the purchase (INVOICE_SENT once it commits); a repeated tap finds the
            # open purchase with its invoice and sends no second one.
            purchase = self._checkout.init(user_id, product.code, buy.redemption_id, invoice=recorder)
        except CheckoutError as exc:
            log_event(log, "telegram_checkout_refused", user_id=user_id, product_code=product.code, code=exc.code)
            key = f"checkout_{exc.code}"
            self._refuse(call, turn, chat_id, messages.text(lang, key if messages.has(key) else "error"))
            return
        if not recorder.recorded:
            log_event(log, "telegram_invoice_not_repeated", user_id=user_id, purchase_id=purchase.id,
                      status=purchase.status.value)
            self._answer_callback(call, messages.text(lang, "invoice_already_sent"))
            return
        log_event(log, "telegram_invoice_owed", user_id=user_id, purchase_id=purchase.id,
                  product_code=product.code, final_stars_amount=purchase.final_stars_amount)
        self._answer_callback(call, messages.text(lang, "invoice_sent"))

    def _refuse(self, call: types.CallbackQuery, turn: Turn, chat_id: int, text: str) -> None:
        self._answer_callback(call)
        turn.say(chat_id, text)

    def _answer_callback(self, call: types.CallbackQuery, text: str | None = None) -> None:
        """Answer at once (no pacing: it is no message); a failure only leaves the button spinning a while."""
        try:
            self.api.answer_callback_query(call.id, text)
        except TelegramApiError as exc:
            log_event(log, "telegram_callback_answer_failed", level=logging.WARNING, error_code=exc.error_code,
                      description=exc.description)

    # --- payments ------------------------------------------------------------------------------------

    def on_pre_checkout(self, query: types.PreCheckoutQuery, turn: Turn) -> None:
        lang = language_of(query.from_user.language_code)
        purchase_id = parse_purchase_payload(query.invoice_payload)
        if query.currency != "XTR":
            code: str | None = "INVALID_CURRENCY"
        elif purchase_id is None:
            code = "INVALID_PAYLOAD"
        else:
            try:
                answer = self._checkout.precheckout(purchase_id, int(query.total_amount))
            except StorageUnavailable:
                # Telegram waits at most 10 s for this answer: say no now rather than never.
                self._answer_pre_checkout(query, False, messages.text(lang, "error"))
                raise
            code = None if answer.ok else answer.error_code
        if code is not None and not messages.has(f"precheckout_{code}"):
            code = "PURCHASE_NOT_PAYABLE"
        log_event(log, "telegram_pre_checkout_answered", user_id=query.from_user.id, purchase_id=purchase_id,
                  ok=code is None, code=code)
        self._answer_pre_checkout(query, code is None,
                                  None if code is None else messages.text(lang, f"precheckout_{code}"))

    def _answer_pre_checkout(self, query: types.PreCheckoutQuery, ok: bool, error_message: str | None) -> None:
        try:
            self.api.answer_pre_checkout_query(query.id, ok, error_message)
        except TelegramApiError as exc:
            log_event(log, "telegram_pre_checkout_answer_failed", level=logging.ERROR, error_code=exc.error_code,
                      description=exc.description)

    def on_successful_payment(self, message: types.Message, turn: Turn) -> None:
        payment = message.successful_payment
        user = message.from_user
        if payment is None:
            return
        lang = language_of(user.language_code if user is not None else None)
        chat_id = message.chat.id
        purchase_id = parse_purchase_payload(payment.invoice_payload)
        charge_id = payment.telegram_payment_charge_id
        if purchase_id is None:
            log_event(log, "payment_not_settled", level=logging.ERROR, reason="INVALID_PAYLOAD",
                      user_id=getattr(user, "id", None))
            turn.say(chat_id, messages.text(lang, "payment_review"))
            return

        def confirm(settlement: Settlement) -> None:
            purchase = settlement.purchase
            product = self._checkout.catalog.get(purchase.product_code)
            if purchase.review_reason is not None or product is None:
                turn.say(chat_id, messages.text(lang, "payment_review"))
                return
            turn.say(chat_id, messages.text(lang, "payment_confirmed", amount=purchase.final_stars_amount,
                                            product=self._name(lang, product), days=product.days))

        try:
            settlement = self._checkout.successful_payment(purchase_id, charge_id, int(payment.total_amount),
                                                           recorder=turn.recorder(confirm))
        except (CheckoutError, NotFound, ValidationError) as exc:
            # Telegram has the money: ops must look (run_payment_recovery / reconciliation catch it too).
            log_event(log, "payment_not_settled", level=logging.ERROR, reason=exc.code, purchase_id=purchase_id,
                      user_id=getattr(user, "id", None))
            turn.say(chat_id, messages.text(lang, "payment_review"))
            return
        purchase = settlement.purchase
        # A replay records nothing: the first delivery already confirmed it.
        log_event(log, "telegram_payment_settled", purchase_id=purchase.id, user_id=purchase.user_id,
                  replayed=settlement.replayed, review_reason=purchase.review_reason)

    def on_refunded_payment(self, message: types.Message, turn: Turn) -> None:
        refund = message.refunded_payment
        user = message.from_user
        if refund is None:
            return
        lang = language_of(user.language_code if user is not None else None)
        chat_id = message.chat.id
        purchase_id = parse_purchase_payload(refund.invoice_payload)
        charge_id = refund.telegram_payment_charge_id
        if purchase_id is None:
            log_event(log, "telegram_refund_unmatched", level=logging.WARNING, reason="INVALID_PAYLOAD")
            return

        def notify(purchase: Purchase) -> None:
            product = self._checkout.catalog.get(purchase.product_code)
            name = self._name(lang, product) if product is not None else purchase.product_code
            turn.say(chat_id, messages.text(lang, "payment_refunded", amount=purchase.final_stars_amount,
                                            product=name))

        try:
            purchase = self._checkout.get(purchase_id)
            if purchase.telegram_payment_charge_id != charge_id:
                log_event(log, "telegram_refund_unmatched", level=logging.WARNING, reason="CHARGE_ID_MISMATCH",
                          purchase_id=purchase_id)
                return
            already = purchase.status is PurchaseStatus.REFUNDED
            # An already refunded purchase records nothing: its notice went out with the first delivery.
            self._checkout.mark_refunded(purchase_id, recorder=turn.recorder(notify))
        except (NotFound, InvalidPurchaseState) as exc:
            log_event(log, "telegram_refund_unmatched", level=logging.WARNING, reason=exc.code,
                      purchase_id=purchase_id)
            return
        log_event(log, "telegram_refund_recorded", purchase_id=purchase_id, replayed=already)

    # --- errors --------------------------------------------------------------------------------------

    def _tell_error(self, obj: Any, turn: Turn) -> None:
        """Best effort: answer a pre-checkout query (Telegram waits for it) or a button, or owe the chat the
        catalog's ``error`` text."""
        try:
            lang = language_of(getattr(getattr(obj, "from_user", None), "language_code", None))
            if isinstance(obj, types.PreCheckoutQuery):
                self._answer_pre_checkout(obj, False, messages.text(lang, "error"))
            elif isinstance(obj, types.CallbackQuery):
                self._answer_callback(obj, messages.text(lang, "error"))
            elif isinstance(obj, types.Message):
                turn.say(obj.chat.id, messages.text(lang, "error"))
        except AttributeError:
            log_event(log, "telegram_error_reply_failed", level=logging.WARNING)
