"""Promo code normalization, HMAC hashing with pepper rotation, and secure generation (SPEC 2)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence

import attrs

MAX_RAW_CODE_LENGTH = 256
CODE_PATTERN = re.compile(r"^[A-Z0-9]{4,32}$")
GENERATION_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PREFIX_LENGTH = 4

# hyphen-minus, U+2010..U+2015 (hyphen .. horizontal bar), U+2212 minus sign
_DASHES = "-" + "".join(chr(c) for c in range(0x2010, 0x2016)) + "\u2212"
_REMOVE = re.compile(r"[\s" + re.escape(_DASHES) + r"]+")


def normalize_code(raw: str) -> str:
    """NFKC, strip, drop whitespace and dashes, uppercase. Idempotent; does not validate."""
    text = unicodedata.normalize("NFKC", raw).strip()
    text = _REMOVE.sub("", text).upper()
    # Uppercasing can produce characters NFKC would rewrite again (e.g. U+0345 -> U+0399);
    # a second pass keeps normalize_code idempotent.
    again = _REMOVE.sub("", unicodedata.normalize("NFKC", text)).upper()
    while again != text:
        text = again
        again = _REMOVE.sub("", unicodedata.normalize("NFKC", text)).upper()
    return text


def is_valid_normalized(code: str) -> bool:
    return CODE_PATTERN.fullmatch(code) is not None


def parse_code(raw: str) -> str | None:
    """The normalized code, or None when the raw input is too long or not a valid code."""
    if len(raw) > MAX_RAW_CODE_LENGTH:
        return None
    code = normalize_code(raw)
    return code if is_valid_normalized(code) else None


def code_prefix(normalized: str) -> str:
    return normalized[:PREFIX_LENGTH]


def hmac_hash(pepper: str, normalized: str) -> str:
    return hmac.new(pepper.encode("utf-8"), normalized.encode("utf-8"), hashlib.sha256).hexdigest()


@attrs.frozen
class CodeHasher:
    """HMAC-SHA256 with the current pepper; lookups also try the previous peppers."""

    pepper: str = attrs.field(repr=False)
    previous_peppers: tuple[str, ...] = attrs.field(default=(), repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.pepper:
            raise ValueError("pepper must not be empty")

    def hash(self, normalized: str) -> str:
        return hmac_hash(self.pepper, normalized)

    def lookup_hashes(self, normalized: str) -> tuple[str, ...]:
        """Current hash first, then one per previous pepper."""
        return (self.hash(normalized), *(hmac_hash(p, normalized) for p in self.previous_peppers))


def generate_code(length: int = 12, prefix: str = "", alphabet: str = GENERATION_ALPHABET) -> str:
    """A cryptographically random code: ``prefix`` (normalized) followed by random characters
    so that the whole code is ``length`` characters long."""
    norm_prefix = normalize_code(prefix)
    random_len = length - len(norm_prefix)
    if random_len < 1:
        raise ValueError("length must exceed the prefix length")
    code = norm_prefix + "".join(secrets.choice(alphabet) for _ in range(random_len))
    if not is_valid_normalized(code):
        raise ValueError(f"generated code would be invalid: prefix={prefix!r} length={length}")
    return code


def generate_unique_codes(
    count: int,
    length: int = 12,
    prefix: str = "",
    taken: Sequence[str] = (),
) -> list[str]:
    """``count`` distinct codes, none in ``taken``; collisions are retried, never dropped.

    Raises ValueError when fewer than ``count`` such codes exist (retrying would never end)."""
    seen = set(taken)
    norm_prefix = normalize_code(prefix)
    possible = len(GENERATION_ALPHABET) ** max(length - len(norm_prefix), 0)
    free = possible - sum(
        1 for t in seen
        if len(t) == length and t.startswith(norm_prefix) and set(t[len(norm_prefix):]) <= set(GENERATION_ALPHABET)
    )
    if count > free:
        raise ValueError(f"only {free} unused codes of length {length} with prefix {norm_prefix!r} exist; "
                         f"{count} requested")
    out: list[str] = []
    while len(out) < count:
        code = generate_code(length, prefix)
        if code in seen:
            continue
        seen.add(code)
        out.append(code)
    return out
