"""A Telegram user buys a plan with a discount code, pays in Stars, gets refunded — over real HTTP:
Telegram's deliveries go to the webhook of a real `starpromo serve`, whose telebot calls a fake Bot API."""

from __future__ import annotations

import re
import sqlite3

from domain.model import PurchaseStatus, RedemptionStatus
from tests.e2e.stack import Stack
from tests.fakes.bot_api import FakeBotApi


def _button(api: FakeBotApi, chat_id: int, product: str) -> dict[str, str]:
    call = [c for c in api.calls_to("sendMessage") if c.params["chat_id"] == str(chat_id)][-1]
    rows = call.json("reply_markup")["inline_keyboard"]
    buttons = [b for row in rows for b in row if b["callback_data"].startswith(f"buy:{product}:")]
    assert len(buttons) == 1, rows
    button: dict[str, str] = buttons[0]
    return button


def _invoices(api: FakeBotApi, chat_id: int) -> list[dict[str, str]]:
    return [c.params for c in api.calls_to("sendInvoice") if c.params["chat_id"] == str(chat_id)]


def test_discount_code_purchase_refund_and_rollback(stack: Stack, bot_api: FakeBotApi, user_id: int) -> None:
    campaign = stack.discount_campaign("SPRING20", 20, max_total_uses=10)

    # /promo CODE -> discount with one buy button per product, discounted price shown
    stack.deliver(stack.updates.promo(user_id, "spring-20"))
    offer = bot_api.texts(user_id)[-1]
    assert offer.startswith("Code angenommen: 20 % Rabatt")
    button = _button(bot_api, user_id, "PREMIUM_30D")
    assert "120 ⭐" in button["text"] and "150 ⭐" in button["text"]
    redemption_id = int(button["callback_data"].rsplit(":", 1)[1])
    assert len(button["callback_data"].encode()) <= 64

    # buy -> one invoice in Stars for exactly 120, payload purchase:<id>
    stack.deliver(stack.updates.callback(user_id, button["callback_data"]))
    (invoice,) = _invoices(bot_api, user_id)
    assert invoice["currency"] == "XTR" and invoice["provider_token"] == ""
    assert bot_api.last("sendInvoice").json("prices") == [{"label": "Premium 30 Tage", "amount": 120}]
    payload = invoice["payload"]
    purchase_id = int(re.fullmatch(r"purchase:(\d+)", payload).group(1))  # type: ignore[union-attr]

    # the same button tapped again: no second purchase, no second invoice
    stack.deliver(stack.updates.callback(user_id, button["callback_data"]))
    assert len(_invoices(bot_api, user_id)) == 1
    assert "schon unterwegs" in (bot_api.last("answerCallbackQuery").params.get("text") or "")

    # pre-checkout: a wrong amount is refused with a German reason, the right one accepted
    stack.deliver(stack.updates.pre_checkout(user_id, payload, 150, query_id="pcq-wrong"))
    wrong = bot_api.last("answerPreCheckoutQuery").params
    assert (wrong["pre_checkout_query_id"], wrong["ok"]) == ("pcq-wrong", "False")
    assert "Betrag stimmt nicht" in wrong["error_message"]
    stack.deliver(stack.updates.pre_checkout(user_id, payload, 120, query_id="pcq-right"))
    right = bot_api.last("answerPreCheckoutQuery").params
    assert (right["pre_checkout_query_id"], right["ok"]) == ("pcq-right", "True")

    # payment -> PAID, reservation APPLIED, 30 days of premium, a confirmation
    bot_api.add_payment("charge-e2e-1", 120, user_id, payload)
    stack.deliver(stack.updates.successful_payment(user_id, payload, 120, "charge-e2e-1"))
    assert bot_api.texts(user_id)[-1].startswith("Danke! 120 ⭐ erhalten.")
    # paying twice with the same charge id credits once
    stack.deliver(stack.updates.successful_payment(user_id, payload, 120, "charge-e2e-1"))
    with stack.uow() as uow:
        purchase = uow.purchases.get(purchase_id)
        assert purchase.status is PurchaseStatus.PAID
        assert (purchase.base_stars_amount, purchase.final_stars_amount) == (150, 120)
        assert purchase.telegram_payment_charge_id == "charge-e2e-1"
        redemption = uow.redemptions.get(redemption_id)
        assert redemption.status is RedemptionStatus.APPLIED and redemption.applied_purchase_id == purchase_id
        ledger = [e for e in uow.ledger.for_user(user_id) if e.purchase_id == purchase_id]
        assert [(e.source.value, e.days) for e in ledger] == [("PURCHASE", 30)]

    # ops refund through Telegram -> REFUNDED (idempotent)
    response = stack.post(f"/internal/payments/{purchase_id}/refund", {})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "REFUNDED"
    refund = bot_api.last("refundStarPayment").params
    assert refund == {"user_id": str(user_id), "telegram_payment_charge_id": "charge-e2e-1"}
    assert stack.post(f"/internal/payments/{purchase_id}/refund", {}).json()["status"] == "REFUNDED"
    assert len([c for c in bot_api.calls_to("refundStarPayment")
                if c.params["telegram_payment_charge_id"] == "charge-e2e-1"]) == 1

    # the refund rollback job revokes the redemption; used_total stays (audit-conservative)
    stack.run_job("run_refund_promo_rollback")
    with stack.uow() as uow:
        assert uow.redemptions.get(redemption_id).status is RedemptionStatus.REVOKED
    assert stack.get(f"/internal/promo/campaigns/{campaign['id']}").json()["used_total"] == 1

    # the plaintext code reached neither the log nor any table
    dump = "\n".join(sqlite3.connect(stack.database_url.removeprefix("sqlite:///")).iterdump())
    for shown in ("SPRING20", "spring-20"):
        assert shown not in stack.log() and shown not in dump


def test_stars_discount_code_settles_at_the_base_price_minus_the_discount(
        stack: Stack, bot_api: FakeBotApi, user_id: int) -> None:
    """A STARS_DISCOUNT campaign takes ``discount_stars`` off every plan, but never below 1 Star (SPEC 5):
    each button shows that price, the invoice asks exactly it, and the payment settles the reservation."""
    campaign = stack.stars_campaign("STARS60OFF", 60, max_total_uses=5)
    code_id = campaign["code"]["id"]

    stack.deliver(stack.updates.promo(user_id, "stars-60-off"))
    assert bot_api.texts(user_id)[-1].startswith("Code angenommen: 60 ⭐ Rabatt")
    prices = {"PREMIUM_7D": (50, 1), "PREMIUM_30D": (150, 90), "PREMIUM_90D": (350, 290),
              "PREMIUM_365D": (1000, 940)}  # 7 days: min(60, 50 - 1) off -> 1 Star
    for product, (base, final) in prices.items():
        label = _button(bot_api, user_id, product)["text"]
        assert label.endswith(f"· {final} ⭐ statt {base} ⭐"), label
    button = _button(bot_api, user_id, "PREMIUM_30D")
    redemption_id = int(button["callback_data"].rsplit(":", 1)[1])

    # the button's price is the invoice's: one price of exactly 90 Stars
    stack.deliver(stack.updates.callback(user_id, button["callback_data"]))
    (invoice,) = _invoices(bot_api, user_id)
    assert (invoice["currency"], invoice["provider_token"]) == ("XTR", "")
    assert bot_api.last("sendInvoice").json("prices") == [{"label": "Premium 30 Tage", "amount": 90}]
    assert "90 ⭐ statt 150 ⭐" in invoice["description"]
    payload = invoice["payload"]
    purchase_id = int(re.fullmatch(r"purchase:(\d+)", payload).group(1))  # type: ignore[union-attr]

    # pre-checkout: the base price is refused, the discounted one accepted
    stack.deliver(stack.updates.pre_checkout(user_id, payload, 150, query_id="pcq-stars-base"))
    assert bot_api.last("answerPreCheckoutQuery").params["ok"] == "False"
    stack.deliver(stack.updates.pre_checkout(user_id, payload, 90, query_id="pcq-stars-ok"))
    ok = bot_api.last("answerPreCheckoutQuery").params
    assert (ok["pre_checkout_query_id"], ok["ok"]) == ("pcq-stars-ok", "True")

    bot_api.add_payment(f"charge-stars-{user_id}", 90, user_id, payload)
    stack.deliver(stack.updates.successful_payment(user_id, payload, 90, f"charge-stars-{user_id}"))
    assert bot_api.texts(user_id)[-1].startswith("Danke! 90 ⭐ erhalten.")
    with stack.uow() as uow:
        purchase = uow.purchases.get(purchase_id)
        assert purchase.status is PurchaseStatus.PAID
        assert (purchase.base_stars_amount, purchase.discount_stars_amount, purchase.final_stars_amount) == (
            150, 60, 90)
        assert purchase.promo_redemption_id == redemption_id
        redemption = uow.redemptions.get(redemption_id)
        assert redemption.status is RedemptionStatus.APPLIED and redemption.applied_purchase_id == purchase_id
        assert (redemption.discount_stars, redemption.discount_percent) == (60, None)
        assert (redemption.promo_code_id, redemption.campaign_id) == (code_id, campaign["id"])
        ledger = [e for e in uow.ledger.for_user(user_id) if e.purchase_id == purchase_id]
        assert [(e.source.value, e.days) for e in ledger] == [("PURCHASE", 30)]
    settled = stack.get(f"/internal/promo/campaigns/{campaign['id']}").json()
    assert settled["used_total"] == 1 and settled["promo_type"] == "STARS_DISCOUNT"
    assert stack.get(f"/internal/promo/codes/{code_id}").json()["used_total"] == 1


def test_stars_discount_larger_than_a_price_still_charges_one_star(
        stack: Stack, bot_api: FakeBotApi, user_id: int) -> None:
    stack.stars_campaign("STARS999", 999, applicable_products=["PREMIUM_7D", "PREMIUM_365D"])
    stack.deliver(stack.updates.promo(user_id, "STARS999", language_code="en"))
    assert bot_api.texts(user_id)[-1].startswith("Code accepted: 999 ⭐ off")
    assert _button(bot_api, user_id, "PREMIUM_365D")["text"].endswith("· 1 ⭐ instead of 1000 ⭐")
    button = _button(bot_api, user_id, "PREMIUM_7D")
    assert button["text"].endswith("· 1 ⭐ instead of 50 ⭐")
    stack.deliver(stack.updates.callback(user_id, button["callback_data"], language_code="en"))
    (invoice,) = _invoices(bot_api, user_id)
    assert bot_api.last("sendInvoice").json("prices")[0]["amount"] == 1
    stack.deliver(stack.updates.pre_checkout(user_id, invoice["payload"], 1, language_code="en"))
    assert bot_api.last("answerPreCheckoutQuery").params["ok"] == "True"
    purchase_id = int(invoice["payload"].split(":")[1])
    stack.deliver(stack.updates.successful_payment(user_id, invoice["payload"], 1, f"charge-one-{user_id}",
                                                   language_code="en"))
    with stack.uow() as uow:
        purchase = uow.purchases.get(purchase_id)
        assert (purchase.status, purchase.discount_stars_amount, purchase.final_stars_amount) == (
            PurchaseStatus.PAID, 49, 1)


def test_grant_code_unlocks_premium(stack: Stack, bot_api: FakeBotApi, user_id: int) -> None:
    stack.create_campaign("GIFTWEEK", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM", grant_days=7)
    stack.deliver(stack.updates.promo(user_id, "GIFTWEEK"))
    assert bot_api.texts(user_id)[-1] == "Code angenommen: PREMIUM für 7 Tage ist jetzt freigeschaltet. Viel Spaß!"
    with stack.uow() as uow:
        entitlement = uow.entitlements.get(user_id)
    assert entitlement is not None and entitlement.plan_code == "PREMIUM"


def test_first_purchase_only_code_is_refused_after_a_purchase(stack: Stack, bot_api: FakeBotApi,
                                                              user_id: int) -> None:
    stack.discount_campaign("NEWBIE30", 30, target_scope="FIRST_PURCHASE_ONLY")
    # a purchase without a code: buy:<product> alone
    stack.deliver(stack.updates.callback(user_id, "buy:PREMIUM_7D"))
    (invoice,) = _invoices(bot_api, user_id)
    assert bot_api.last("sendInvoice").json("prices")[0]["amount"] == 50
    stack.deliver(stack.updates.pre_checkout(user_id, invoice["payload"], 50))
    assert bot_api.last("answerPreCheckoutQuery").params["ok"] == "True"
    stack.deliver(stack.updates.successful_payment(user_id, invoice["payload"], 50, f"charge-first-{user_id}"))

    stack.deliver(stack.updates.promo(user_id, "NEWBIE30"))
    assert bot_api.texts(user_id)[-1].startswith("Dieser Code gilt für dich nicht")


def test_refunded_payment_message_marks_the_purchase_refunded(stack: Stack, bot_api: FakeBotApi,
                                                              user_id: int) -> None:
    stack.deliver(stack.updates.callback(user_id, "buy:PREMIUM_90D"))
    payload = _invoices(bot_api, user_id)[-1]["payload"]
    purchase_id = int(payload.split(":")[1])
    stack.deliver(stack.updates.successful_payment(user_id, payload, 350, f"charge-rp-{user_id}"))

    # a refund with another charge id is not this purchase's
    stack.deliver(stack.updates.refunded_payment(user_id, payload, 350, "charge-someone-else"))
    with stack.uow() as uow:
        assert uow.purchases.get(purchase_id).status is PurchaseStatus.PAID

    stack.deliver(stack.updates.refunded_payment(user_id, payload, 350, f"charge-rp-{user_id}"))
    with stack.uow() as uow:
        assert uow.purchases.get(purchase_id).status is PurchaseStatus.REFUNDED
    assert bot_api.texts(user_id)[-1] == "Deine Zahlung von 350 ⭐ wurde erstattet; Premium 90 Tage ist damit beendet."
