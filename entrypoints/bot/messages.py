"""Every text the bot sends, in one catalog: German by default, English for ``language_code`` ``en*``.

Each answer tells the user what to do next. Keys are stable; placeholders are ``str.format`` fields and
the same in both languages (a unit test checks that).
"""

from __future__ import annotations

from datetime import datetime

GERMAN = "de"
ENGLISH = "en"

CATALOG: dict[str, dict[str, str]] = {
    GERMAN: {
        "promo_hint": "Sende deinen Promo-Code so: /promo DEINCODE (zum Beispiel /promo SOMMER20).",
        "promo_open_hint": "Schick mir einfach eine Nachricht: /promo DEINCODE",
        "discount_offer": ("Code angenommen: {discount} Rabatt, reserviert bis {until}. "
                           "Wähle dein Paket, um mit Telegram Stars zu bezahlen:"),
        "discount_percent": "{percent} %",
        "discount_stars": "{stars} ⭐",
        "discount_no_products": "Code angenommen ({discount} Rabatt), aber derzeit passt kein Paket dazu. "
                                "Bitte melde dich beim Support.",
        "discount_button": "{product} · {final} ⭐ statt {base} ⭐",
        "discount_done": "Diesen Code hast du mit dieser Nachricht schon eingelöst (Status: {status}). "
                         "Für einen neuen Kauf sende /promo mit einem neuen Code.",
        "grant_accepted": "Code angenommen: {plan} für {days} Tage ist jetzt freigeschaltet. Viel Spaß!",
        "result_INVALID": "Diesen Code kenne ich nicht. Prüfe die Schreibweise und sende /promo CODE erneut.",
        "result_PAUSED": "Dieser Code ist gerade pausiert. Versuche es später noch einmal.",
        "result_EXPIRED": "Dieser Code ist abgelaufen. Frag nach einem aktuellen Code.",
        "result_NOT_APPLICABLE": "Dieser Code gilt für dich nicht (zum Beispiel nur für den ersten Kauf oder "
                                 "noch nicht gültig). Du kannst ohne Code kaufen oder einen anderen Code senden.",
        "result_DEPLETED": "Dieser Code ist leider aufgebraucht. Frag nach einem anderen Code.",
        "result_ALREADY_USED": ("Du hast diesen Code schon eingelöst oder so viele Codes dieser Aktion, "
                                "wie eine Person einlösen darf."),
        "result_RATE_LIMITED": "Zu viele Fehlversuche. Du kannst es ab {until} wieder versuchen "
                               "(in etwa {minutes} Minuten).",
        "result_IDEMPOTENCY_KEY_REUSED": "Diese Nachricht wurde schon verarbeitet. "
                                         "Sende den Code bitte in einer neuen Nachricht: /promo CODE",
        "invoice_title": "{product}",
        "invoice_description_discount": "{product} mit Promo-Rabatt: {final} ⭐ statt {base} ⭐.",
        "invoice_description": "{product} für {final} ⭐.",
        "invoice_already_sent": "Die Rechnung dafür ist schon unterwegs: scrolle nach oben und tippe auf "
                                "„Bezahlen“.",
        "invoice_sent": "Rechnung gesendet.",
        "checkout_PROMO_NOT_FOUND": "Diese Reservierung gibt es nicht (mehr). Sende /promo CODE erneut.",
        "checkout_PROMO_NOT_RESERVED": "Dieser Rabatt ist nicht mehr reserviert. Sende /promo CODE erneut.",
        "checkout_PROMO_RESERVATION_EXPIRED": "Deine Reservierung ist abgelaufen. Sende /promo CODE erneut, "
                                              "um den Rabatt neu zu reservieren.",
        "checkout_PROMO_NOT_APPLICABLE": "Der Rabatt gilt nicht für dieses Paket. Wähle ein anderes Paket.",
        "checkout_PROMO_IN_USE": "Dieser Rabatt wird schon für einen anderen Kauf verwendet.",
        "checkout_UNKNOWN_PRODUCT": "Dieses Paket gibt es nicht mehr. Sende /promo CODE für eine aktuelle Auswahl.",
        "checkout_CHECKOUT_CONFLICT": "Das hat gerade nicht geklappt. Tippe bitte noch einmal auf das Paket.",
        "precheckout_PURCHASE_NOT_FOUND": "Diese Rechnung kenne ich nicht. Bitte fordere eine neue an.",
        "precheckout_PURCHASE_NOT_PAYABLE": "Diese Rechnung ist nicht mehr gültig. Bitte fordere über das "
                                            "Paket eine neue an.",
        "precheckout_AMOUNT_MISMATCH": "Der Betrag stimmt nicht mit deiner Rechnung überein. Bitte fordere "
                                       "eine neue Rechnung an.",
        "precheckout_PROMO_NO_LONGER_RESERVED": "Dein Rabatt ist nicht mehr reserviert. Sende /promo CODE "
                                                "erneut und fordere eine neue Rechnung an.",
        "precheckout_INVALID_CURRENCY": "Diese Rechnung kann nur mit Telegram Stars bezahlt werden.",
        "precheckout_INVALID_PAYLOAD": "Diese Rechnung kenne ich nicht. Bitte fordere eine neue an.",
        "payment_confirmed": "Danke! {amount} ⭐ erhalten. {product} ist jetzt aktiv ({days} Tage).",
        "payment_review": "Danke, deine Zahlung ist angekommen. Wir prüfen sie noch und melden uns; "
                          "du musst nichts weiter tun.",
        "payment_refunded": "Deine Zahlung von {amount} ⭐ wurde erstattet; {product} ist damit beendet.",
        "unknown_action": "Diese Schaltfläche ist veraltet. Sende /promo CODE, um neu zu starten.",
        "error": "Da ist etwas schiefgelaufen. Bitte versuche es in ein paar Minuten noch einmal.",
    },
    ENGLISH: {
        "promo_hint": "Send your promo code like this: /promo YOURCODE (for example /promo SUMMER20).",
        "promo_open_hint": "Just send me a message: /promo YOURCODE",
        "discount_offer": ("Code accepted: {discount} off, reserved until {until}. "
                           "Choose your plan to pay with Telegram Stars:"),
        "discount_percent": "{percent}%",
        "discount_stars": "{stars} ⭐",
        "discount_no_products": "Code accepted ({discount} off), but no plan matches it right now. "
                                "Please contact support.",
        "discount_button": "{product} · {final} ⭐ instead of {base} ⭐",
        "discount_done": "You already redeemed this code with this message (status: {status}). "
                         "For a new purchase send /promo with a new code.",
        "grant_accepted": "Code accepted: {plan} for {days} days is now unlocked. Enjoy!",
        "result_INVALID": "I don't know this code. Check the spelling and send /promo CODE again.",
        "result_PAUSED": "This code is paused right now. Please try again later.",
        "result_EXPIRED": "This code has expired. Ask for a current code.",
        "result_NOT_APPLICABLE": "This code does not apply to you (for example first purchase only, or not "
                                 "valid yet). You can buy without a code or send another code.",
        "result_DEPLETED": "This code has been used up. Ask for another code.",
        "result_ALREADY_USED": ("You have already redeemed this code, or as many codes of this promotion as "
                                "one person may."),
        "result_RATE_LIMITED": "Too many failed attempts. You can try again from {until} "
                               "(in about {minutes} minutes).",
        "result_IDEMPOTENCY_KEY_REUSED": "This message was already processed. "
                                         "Please send the code in a new message: /promo CODE",
        "invoice_title": "{product}",
        "invoice_description_discount": "{product} with a promo discount: {final} ⭐ instead of {base} ⭐.",
        "invoice_description": "{product} for {final} ⭐.",
        "invoice_already_sent": "The invoice is already on its way: scroll up and tap “Pay”.",
        "invoice_sent": "Invoice sent.",
        "checkout_PROMO_NOT_FOUND": "This reservation does not exist (any more). Send /promo CODE again.",
        "checkout_PROMO_NOT_RESERVED": "This discount is no longer reserved. Send /promo CODE again.",
        "checkout_PROMO_RESERVATION_EXPIRED": "Your reservation has expired. Send /promo CODE again to "
                                              "reserve the discount anew.",
        "checkout_PROMO_NOT_APPLICABLE": "The discount does not apply to this plan. Choose another plan.",
        "checkout_PROMO_IN_USE": "This discount is already used for another purchase.",
        "checkout_UNKNOWN_PRODUCT": "This plan is no longer available. Send /promo CODE for a current choice.",
        "checkout_CHECKOUT_CONFLICT": "That did not work just now. Please tap the plan once more.",
        "precheckout_PURCHASE_NOT_FOUND": "I don't know this invoice. Please request a new one.",
        "precheckout_PURCHASE_NOT_PAYABLE": "This invoice is no longer valid. Please request a new one "
                                            "from the plan button.",
        "precheckout_AMOUNT_MISMATCH": "The amount does not match your invoice. Please request a new invoice.",
        "precheckout_PROMO_NO_LONGER_RESERVED": "Your discount is no longer reserved. Send /promo CODE again "
                                                "and request a new invoice.",
        "precheckout_INVALID_CURRENCY": "This invoice can only be paid with Telegram Stars.",
        "precheckout_INVALID_PAYLOAD": "I don't know this invoice. Please request a new one.",
        "payment_confirmed": "Thank you! {amount} ⭐ received. {product} is now active ({days} days).",
        "payment_review": "Thank you, your payment arrived. We are still checking it and will get back to you; "
                          "there is nothing else you need to do.",
        "payment_refunded": "Your payment of {amount} ⭐ was refunded; {product} has ended.",
        "unknown_action": "This button is outdated. Send /promo CODE to start again.",
        "error": "Something went wrong. Please try again in a few minutes.",
    },
}


def language_of(language_code: str | None) -> str:
    """English for ``en``, ``en-US``, ...; German for everything else (and for no language at all)."""
    return ENGLISH if (language_code or "").lower().startswith("en") else GERMAN


def text(lang: str, key: str, **fields: object) -> str:
    """The text ``key`` in ``lang`` (German when the key is missing there), formatted with ``fields``."""
    template = CATALOG.get(lang, CATALOG[GERMAN]).get(key) or CATALOG[GERMAN][key]
    return template.format(**fields)


def has(key: str) -> bool:
    return key in CATALOG[GERMAN]


def when(lang: str, moment: datetime) -> str:
    """A moment as the user reads it (UTC, the server's only time zone)."""
    if lang == ENGLISH:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%d.%m.%Y, %H:%M Uhr UTC")


def product_name(lang: str, title: str, days: int, default_title: bool) -> str:
    """The plan's display name: the catalog title, or for the built-in English titles a German one."""
    if lang == GERMAN and default_title:
        return f"Premium {days} Tage"
    return title
