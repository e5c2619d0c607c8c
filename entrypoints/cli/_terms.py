"""The campaign terms as flags, shared by ``campaigns create`` and ``codes generate``: each flag is named after its
SPEC 3 column and read as text, so that ``domain.code_files.parse_campaign_fields`` judges flags and CSV cells alike
and reports every bad one at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from domain.campaigns import MAX_DISCOUNT_STARS, MAX_GRANT_DAYS, MAX_PER_USER_LIMIT
from domain.model import PromoType, TargetScope

F = TypeVar("F", bound=Callable[..., Any])

# The flags below, by the column (keyword argument) they set.
TERMS_FIELDS = ("discount_percent", "discount_stars", "grant_plan_code", "grant_days", "target_scope", "valid_from",
                "valid_until", "applicable_products", "per_user_limit")

type_option = click.option(
    "--type", "promo_type", required=True, metavar="PROMO_TYPE",
    type=click.Choice([t.value for t in PromoType], case_sensitive=False),
    help="What the campaign gives: " + ", ".join(t.value for t in PromoType) + ".")

_TERMS_OPTIONS = (
    click.option("--discount-percent", metavar="1..99", help="Percent off the price (PERCENT_DISCOUNT only)."),
    click.option("--discount-stars", metavar="STARS",
                 help=f"Stars off the base price, 1..{MAX_DISCOUNT_STARS:,} (STARS_DISCOUNT only)."),
    click.option("--grant-plan-code", metavar="PLAN", help="Plan granted (PREMIUM_GRANT only)."),
    click.option("--grant-days", metavar="DAYS", help=f"Days granted, 1..{MAX_GRANT_DAYS} (PREMIUM_GRANT only)."),
    click.option("--target-scope", type=click.Choice([s.value for s in TargetScope], case_sensitive=False),
                 help="Who may redeem (default ALL)."),
    click.option("--valid-from", metavar="TIME",
                 help="ISO 8601 with timezone, e.g. 2026-05-01T00:00:00Z (default: now)."),
    click.option("--valid-until", metavar="TIME", help="ISO 8601 with timezone (default: no end)."),
    click.option("--applicable-products", metavar="P1,P2",
                 help="Comma-separated product codes (default: every product)."),
    click.option("--per-user-limit", metavar="N",
                 help=f"Redemptions one user may hold across all codes of the campaign, 1..{MAX_PER_USER_LIMIT} "
                      "(default 1)."),
)


def terms_options(f: F) -> F:
    """Add the terms flags (``TERMS_FIELDS``) to a command."""
    for option in reversed(_TERMS_OPTIONS):
        f = option(f)
    return f


def terms_values(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """The terms flags of a command's keyword arguments, as the column values ``parse_campaign_fields`` reads."""
    return {k: values.get(k) for k in TERMS_FIELDS}
