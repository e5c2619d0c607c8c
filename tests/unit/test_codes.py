"""SPEC 2: normalization, HMAC hashing, pepper rotation and code generation."""

from __future__ import annotations

import hashlib
import hmac
import string
import unicodedata

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService
from domain.codes import (
    CODE_PATTERN,
    GENERATION_ALPHABET,
    MAX_RAW_CODE_LENGTH,
    CodeHasher,
    code_prefix,
    generate_code,
    generate_unique_codes,
    hmac_hash,
    is_valid_normalized,
    normalize_code,
    parse_code,
)
from domain.errors import CodeExists
from domain.model import RedeemResult
from domain.redemption import RedemptionService
from tests.unit.promo_setup import ACTOR, DISCOUNT

DASHES = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212"]


# --- normalization -------------------------------------------------------------------------------


def test_normalize_uppercases_and_strips() -> None:
    assert normalize_code("  summer2026 \n") == "SUMMER2026"


@pytest.mark.parametrize("dash", DASHES, ids=[f"U+{ord(d):04X}" for d in DASHES])
def test_every_hyphen_and_dash_character_is_removed(dash: str) -> None:
    assert normalize_code(f"abcd{dash}efgh{dash}{dash}1234") == "ABCDEFGH1234"


@pytest.mark.parametrize(
    "space",
    [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u2009", "\u200a", "\u3000", "\u202f", "\u2028"],
)
def test_every_whitespace_character_is_removed_also_inside_the_code(space: str) -> None:
    assert normalize_code(f"{space}ab{space}cd{space}{space}ef{space}") == "ABCDEF"


def test_nfkc_folds_fullwidth_and_compatibility_characters() -> None:
    # Fullwidth letters/digits (as typed on some phone keyboards) and the "fi" ligature (U+FB01).
    assert normalize_code("\uff33\uff35\uff2d\uff2d\uff25\uff32\uff12\uff10\uff12\uff16") == "SUMMER2026"
    assert normalize_code("\ufb01ve55") == "FIVE55"
    # A superscript two is "2" under NFKC.
    assert normalize_code("code\u00b2") == "CODE2"


def test_normalize_does_not_validate() -> None:
    assert normalize_code("a!b") == "A!B"
    assert normalize_code("") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abcd", "ABCD"),  # 4 is the shortest valid code
        ("a" * 32, "A" * 32),  # 32 the longest
        ("ab-cd 12", "ABCD12"),
        ("Ab\u2013Cd\u221212", "ABCD12"),
    ],
)
def test_parse_code_accepts_codes_that_normalize_to_the_pattern(raw: str, expected: str) -> None:
    assert parse_code(raw) == expected
    assert is_valid_normalized(expected)


@pytest.mark.parametrize(
    "raw",
    [
        "abc",  # too short
        "a" * 33,  # too long
        "ab-c",  # 3 after normalization
        "ABCD!",  # punctuation
        "ABCD_1",  # underscore is not a separator
        "ÄBCD",  # non A-Z letter
        "",
        "   ",
        "----",
    ],
)
def test_parse_code_rejects_what_does_not_match_the_pattern(raw: str) -> None:
    assert parse_code(raw) is None


def test_raw_input_longer_than_256_characters_is_rejected_even_if_it_would_normalize_to_a_valid_code() -> None:
    padded_ok = "ABCD" + " " * (MAX_RAW_CODE_LENGTH - 4)
    padded_too_long = "ABCD" + " " * (MAX_RAW_CODE_LENGTH - 3)
    assert len(padded_ok) == 256 and len(padded_too_long) == 257
    assert parse_code(padded_ok) == "ABCD"
    assert parse_code(padded_too_long) is None


def test_code_prefix_is_the_first_four_normalized_characters() -> None:
    assert code_prefix(normalize_code("sum-mer 2026")) == "SUMM"


def test_validity_regex_is_the_spec_one() -> None:
    assert CODE_PATTERN.pattern == r"^[A-Z0-9]{4,32}$"


# --- normalization properties (hypothesis) -------------------------------------------------------

SEPARATORS = st.lists(st.sampled_from([*DASHES, " ", "\t", "\n", "\u00a0", "\u3000", "\u2009"]), max_size=3).map(
    "".join
)
VALID_CODES = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=4, max_size=32)


def _is_dash(ch: str) -> bool:
    return ch in DASHES


@given(st.text(max_size=80))
@example("\u0345")  # COMBINING GREEK YPOGEGRAMMENI uppercases to a letter NFKC rewrites again
@example("\u1e9e\u0130")
@example("\ufb01\u2163 \u2015")
def test_normalize_is_idempotent(raw: str) -> None:
    once = normalize_code(raw)
    assert normalize_code(once) == once


@given(st.text(max_size=80))
@example("a\u2212b\u2010c\u3000d")
def test_normalized_output_never_contains_whitespace_or_dashes(raw: str) -> None:
    out = normalize_code(raw)
    assert not any(ch.isspace() for ch in out)
    assert not any(_is_dash(ch) for ch in out)
    assert out == out.upper()
    assert unicodedata.normalize("NFKC", out) == out


@given(VALID_CODES, st.data())
def test_valid_codes_survive_random_separators_and_case(code: str, data: st.DataObject) -> None:
    mangled = "".join(
        data.draw(SEPARATORS)
        + (ch.lower() if ch.isalpha() and data.draw(st.booleans()) else ch)
        for ch in code
    ) + data.draw(SEPARATORS)
    assert normalize_code(mangled) == code
    assert parse_code(mangled) == code or len(mangled) > MAX_RAW_CODE_LENGTH


@given(VALID_CODES)
def test_valid_codes_survive_fullwidth_round_trip(code: str) -> None:
    fullwidth = "".join(chr(ord(ch) + 0xFEE0) for ch in code.lower())
    assert normalize_code(fullwidth) == code


# --- hashing ---------------------------------------------------------------------------------------


def test_code_hash_is_hmac_sha256_of_the_normalized_code_keyed_with_the_pepper() -> None:
    expected = hmac.new(b"test-pepper", b"SUMMER2026", hashlib.sha256).hexdigest()
    assert expected == "8713051acf8ca59bd80901c3b104984997775076b7be008aa0649543a56d53d7"
    assert CodeHasher("test-pepper").hash("SUMMER2026") == expected
    assert hmac_hash("test-pepper", "SUMMER2026") == expected


def test_code_hash_encodes_pepper_as_utf8_and_is_lowercase_hex() -> None:
    pepper = "päpper-€"
    digest = CodeHasher(pepper).hash("ABCD")
    assert digest == hmac.new(pepper.encode("utf-8"), b"ABCD", hashlib.sha256).hexdigest()
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")


def test_different_peppers_give_different_hashes() -> None:
    assert CodeHasher("one").hash("ABCD") != CodeHasher("two").hash("ABCD")


def test_empty_pepper_is_refused() -> None:
    with pytest.raises(ValueError, match="pepper"):
        CodeHasher("")


def test_pepper_never_appears_in_repr() -> None:
    assert "s3cret" not in repr(CodeHasher("s3cret", ("old-s3cret",)))


def test_lookup_hashes_try_the_current_pepper_first_then_the_previous_ones() -> None:
    hasher = CodeHasher("new", ("old1", "old2"))
    assert hasher.lookup_hashes("ABCD") == (
        hmac_hash("new", "ABCD"),
        hmac_hash("old1", "ABCD"),
        hmac_hash("old2", "ABCD"),
    )


# --- pepper rotation, end to end on the in-memory adapters ----------------------------------------


def test_code_created_under_an_old_pepper_still_redeems_when_the_old_pepper_is_a_previous_pepper() -> None:
    uow, clock = InMemoryUnitOfWorkFactory(), ManualClock()
    old = CodeHasher("pepper-2025")
    _, code = CampaignService(uow, clock, old).create(DISCOUNT, actor=ACTOR, code="ROTATE1")
    assert code is not None and code.code_hash == hmac_hash("pepper-2025", "ROTATE1")

    rotated = CodeHasher("pepper-2026", ("pepper-2025",))
    outcome = RedemptionService(uow, clock, rotated).redeem(7, "rotate1", "k1")
    assert outcome.result is RedeemResult.ACCEPTED
    assert outcome.redemption is not None and outcome.redemption.promo_code_id == code.id


def test_code_created_under_an_old_pepper_is_invalid_once_the_old_pepper_is_dropped() -> None:
    uow, clock = InMemoryUnitOfWorkFactory(), ManualClock()
    CampaignService(uow, clock, CodeHasher("pepper-2025")).create(DISCOUNT, actor=ACTOR, code="ROTATE1")
    outcome = RedemptionService(uow, clock, CodeHasher("pepper-2026")).redeem(7, "ROTATE1", "k1")
    assert outcome.result is RedeemResult.INVALID


def test_new_codes_always_use_the_current_pepper() -> None:
    uow, clock = InMemoryUnitOfWorkFactory(), ManualClock()
    rotated = CodeHasher("pepper-2026", ("pepper-2025",))
    _, code = CampaignService(uow, clock, rotated).create(DISCOUNT, actor=ACTOR, code="FRESH1")
    assert code is not None and code.code_hash == hmac_hash("pepper-2026", "FRESH1")
    assert code.code_hash != hmac_hash("pepper-2025", "FRESH1")


def test_a_code_stored_under_a_previous_pepper_cannot_be_created_again() -> None:
    uow, clock = InMemoryUnitOfWorkFactory(), ManualClock()
    CampaignService(uow, clock, CodeHasher("pepper-2025")).create(DISCOUNT, actor=ACTOR, code="ROTATE1")
    with pytest.raises(CodeExists):
        CampaignService(uow, clock, CodeHasher("pepper-2026", ("pepper-2025",))).create(
            attrs.evolve(DISCOUNT, name="another"), actor=ACTOR, code="rotate-1")
    assert len(uow.store.campaigns) == 1 and len(uow.store.codes) == 1


# --- generation --------------------------------------------------------------------------------------


def test_generation_alphabet_has_no_look_alikes() -> None:
    assert GENERATION_ALPHABET == "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    assert not set("01IO") & set(GENERATION_ALPHABET)


def test_generated_codes_have_the_requested_length_and_use_only_the_alphabet() -> None:
    for length in (4, 12, 32):
        code = generate_code(length)
        assert len(code) == length
        assert set(code) <= set(GENERATION_ALPHABET)
        assert parse_code(code) == code


def test_generated_codes_start_with_the_normalized_prefix() -> None:
    code = generate_code(12, prefix="sum-mer")
    assert code.startswith("SUMMER") and len(code) == 12
    assert set(code[6:]) <= set(GENERATION_ALPHABET)


def test_generation_refuses_a_prefix_that_leaves_no_room_or_makes_an_invalid_code() -> None:
    with pytest.raises(ValueError):
        generate_code(4, prefix="ABCD")
    with pytest.raises(ValueError):
        generate_code(12, prefix="AB_")
    with pytest.raises(ValueError):
        generate_code(40)


def test_generated_codes_are_not_predictable() -> None:
    codes = {generate_code(16) for _ in range(200)}
    assert len(codes) == 200


def test_generate_unique_codes_retries_collisions_instead_of_dropping_them() -> None:
    # Prefix of 3 + 1 random character: only 32 codes exist, so collisions are certain.
    codes = generate_unique_codes(32, length=4, prefix="ABC")
    assert len(codes) == 32
    assert sorted(codes) == sorted("ABC" + ch for ch in GENERATION_ALPHABET)


def test_generate_unique_codes_never_returns_a_taken_code() -> None:
    everything = ["XYZ" + ch for ch in GENERATION_ALPHABET]
    taken, free = everything[:-1], everything[-1]
    for _ in range(5):
        assert generate_unique_codes(1, length=4, prefix="XYZ", taken=taken) == [free]


def test_asking_for_more_codes_than_exist_fails_fast_instead_of_retrying_forever() -> None:
    with pytest.raises(ValueError, match="only 32 unused codes"):
        generate_unique_codes(33, length=4, prefix="ABC")
    taken = ["ABC" + ch for ch in GENERATION_ALPHABET[:30]]
    with pytest.raises(ValueError, match="only 2 unused codes"):
        generate_unique_codes(3, length=4, prefix="ABC", taken=taken)
    assert sorted(generate_unique_codes(2, length=4, prefix="ABC", taken=taken)) == sorted(
        "ABC" + ch for ch in GENERATION_ALPHABET[30:])
