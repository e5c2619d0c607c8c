"""The message catalog and the bot's small parsers."""

from __future__ import annotations

import string

import pytest

from domain.model import RedeemResult
from entrypoints.bot import messages
from entrypoints.bot.handlers import (
    BuyRequest,
    buy_callback_data,
    parse_buy,
    parse_purchase_payload,
    promo_argument,
)

PRECHECKOUT_CODES = ("PURCHASE_NOT_FOUND", "PURCHASE_NOT_PAYABLE", "AMOUNT_MISMATCH", "PROMO_NO_LONGER_RESERVED")
CHECKOUT_CODES = ("PROMO_NOT_FOUND", "PROMO_NOT_RESERVED", "PROMO_RESERVATION_EXPIRED", "PROMO_NOT_APPLICABLE",
                  "PROMO_IN_USE", "CHECKOUT_CONFLICT")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_german_and_english_have_the_same_keys_and_placeholders() -> None:
    de, en = messages.CATALOG[messages.GERMAN], messages.CATALOG[messages.ENGLISH]
    assert de.keys() == en.keys()
    for key in de:
        assert _fields(de[key]) == _fields(en[key]), key


def test_every_refused_redeem_result_has_a_text_in_both_languages() -> None:
    for result in RedeemResult:
        if result is RedeemResult.ACCEPTED:
            continue
        for lang in (messages.GERMAN, messages.ENGLISH):
            assert f"result_{result.value}" in messages.CATALOG[lang], (lang, result)


@pytest.mark.parametrize("code", PRECHECKOUT_CODES)
def test_every_pre_checkout_refusal_has_a_text(code: str) -> None:
    assert messages.has(f"precheckout_{code}")


@pytest.mark.parametrize("code", CHECKOUT_CODES)
def test_every_checkout_refusal_has_a_text(code: str) -> None:
    assert messages.has(f"checkout_{code}")


@pytest.mark.parametrize(("code", "lang"), [("en", "en"), ("en-GB", "en"), ("EN", "en"), ("de", "de"),
                                            ("fr", "de"), ("", "de"), (None, "de")])
def test_english_only_for_en_language_codes(code: str | None, lang: str) -> None:
    assert messages.language_of(code) == lang


def test_buy_callback_data_fits_64_bytes_for_the_longest_product_code_and_largest_id() -> None:
    data = buy_callback_data("P" * 32, 2**63 - 1)
    assert len(data.encode()) <= 64
    assert parse_buy(data) == BuyRequest("P" * 32, 2**63 - 1)
    with pytest.raises(ValueError, match="64 bytes"):
        buy_callback_data("P" * 60, 2**63 - 1)


@pytest.mark.parametrize(("data", "parsed"), [
    ("buy:PREMIUM_30D:17", BuyRequest("PREMIUM_30D", 17)),
    ("buy:PREMIUM_7D", BuyRequest("PREMIUM_7D", None)),
    ("buy:PREMIUM_7D:", None),
    ("buy:PREMIUM_7D:0", None),
    ("buy:premium_7d:1", None),
    ("buy:PREMIUM_7D:1:2", None),
    ("buy:PREMIUM_7D:99999999999999999999", None),
    ("promo:open", None),
])
def test_buy_callback_data_is_parsed_strictly(data: str, parsed: BuyRequest | None) -> None:
    assert parse_buy(data) == parsed


@pytest.mark.parametrize(("payload", "purchase_id"), [
    ("purchase:42", 42), ("purchase:0", None), ("purchase:-1", None), ("purchase:", None), ("purchase:4x", None),
    ("other:42", None), (None, None), (42, None), ("purchase:" + "9" * 20, None),
])
def test_invoice_payload_names_a_purchase(payload: object, purchase_id: int | None) -> None:
    assert parse_purchase_payload(payload) == purchase_id


@pytest.mark.parametrize(("text", "code"), [
    ("/promo SPRING20", "SPRING20"), ("/promo@starpromo_bot  spring - 20 ", "spring - 20"), ("/promo", ""),
    ("/promo   ", ""), (None, ""),
])
def test_the_code_is_whatever_follows_the_command(text: str | None, code: str) -> None:
    assert promo_argument(text) == code
