"""The product catalog (SPEC 5): premium plans sold for Telegram Stars.

The default catalog is the SPEC's four plans. A host replaces it with a JSON file
(``STARPROMO_PRODUCTS_FILE``): either a list of products or ``{"products": [...]}``, each
``{"code", "stars", "days", "title"?, "description"?, "plan_code"?}``. The file replaces the whole catalog
(a shop chooses its plans); errors name the file, the product and the field, and stop start-up.

Telegram's limits hold here, not at the first tap on "buy" (issue 17): ``sendInvoice`` takes a ``title`` of
1..32 characters and a ``description`` of 1..255, so a longer one is refused when the file is read — otherwise
every buyer of that product would get "Something went wrong". The invoice payload (``purchase:<id>``, at most
128 bytes) is ``domain.star_transactions.invoice_payload``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from domain.errors import ConfigurationError, ValidationError
from domain.model import Product

PREMIUM_PLAN = "PREMIUM"
PRODUCT_CODE_PATTERN = re.compile(r"^[A-Z0-9_]{1,32}$")
PLAN_CODE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_STARS = 1_000_000
MAX_DAYS = 3650
MAX_TITLE = 32  # sendInvoice: title 1..32 characters
MAX_DESCRIPTION = 255  # sendInvoice: description 1..255 characters

DEFAULT_PRODUCTS: tuple[Product, ...] = (
    Product(code="PREMIUM_7D", title="Premium 7 days", stars=50, plan_code=PREMIUM_PLAN, days=7),
    Product(code="PREMIUM_30D", title="Premium 30 days", stars=150, plan_code=PREMIUM_PLAN, days=30),
    Product(code="PREMIUM_90D", title="Premium 90 days", stars=350, plan_code=PREMIUM_PLAN, days=90),
    Product(code="PREMIUM_365D", title="Premium 365 days", stars=1000, plan_code=PREMIUM_PLAN, days=365),
)


class ProductCatalog:
    """The products on sale, in display order."""

    def __init__(self, products: Iterable[Product] = DEFAULT_PRODUCTS) -> None:
        self._products = {p.code: p for p in products}
        if not self._products:
            raise ValueError("a product catalog needs at least one product")

    def __iter__(self) -> Iterator[Product]:
        return iter(self._products.values())

    def __len__(self) -> int:
        return len(self._products)

    def __contains__(self, code: object) -> bool:
        return code in self._products

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._products)

    def get(self, code: str) -> Product | None:
        return self._products.get(code)

    def require(self, code: str) -> Product:
        """The product, or a ValidationError naming ``product_code``."""
        product = self._products.get(code) if isinstance(code, str) else None
        if product is None:
            raise ValidationError.single("product_code", f"unknown product; one of {', '.join(self._products)}")
        return product


def parse_products(text: str, source: str = "STARPROMO_PRODUCTS_FILE") -> ProductCatalog:
    """Parse a products file; ``source`` (the file name) starts every error message."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{source}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"products"})
        if unknown:
            raise ConfigurationError(f"{source}: unknown key(s) {', '.join(unknown)}; expected 'products'")
        data = data.get("products")
    if not isinstance(data, list) or not data:
        raise ConfigurationError(f"{source}: products: must be a non-empty list of products")
    products: list[Product] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        product = _parse_product(item, f"{source}: products[{i}]")
        if product.code in seen:
            raise ConfigurationError(f"{source}: products[{i}].code: duplicate product {product.code!r}")
        seen.add(product.code)
        products.append(product)
    return ProductCatalog(products)


def _parse_product(item: Any, where: str) -> Product:
    if not isinstance(item, dict):
        raise ConfigurationError(f"{where}: must be an object")
    unknown = sorted(set(item) - {"code", "title", "description", "stars", "plan_code", "days"})
    if unknown:
        raise ConfigurationError(f"{where}: unknown field(s) {', '.join(unknown)}")
    code = item.get("code")
    if not isinstance(code, str) or not PRODUCT_CODE_PATTERN.fullmatch(code):
        raise ConfigurationError(f"{where}.code: must be 1..32 characters A-Z 0-9 _")

    def field(name: str) -> str:  # ``products[3].title (product GOLD_14D)``: where, and which product
        return f"{where}.{name} (product {code})"

    stars = _integer(item.get("stars"), field("stars"), MAX_STARS)
    days = _integer(item.get("days"), field("days"), MAX_DAYS)
    plan_code = item.get("plan_code", PREMIUM_PLAN)
    if not isinstance(plan_code, str) or not PLAN_CODE_PATTERN.fullmatch(plan_code):
        raise ConfigurationError(f"{field('plan_code')}: must be 1..64 characters [A-Za-z0-9_.:-]")
    title = _invoice_text(item.get("title", code), field("title"), MAX_TITLE)
    description = item.get("description")
    if description is not None:
        description = _invoice_text(description, field("description"), MAX_DESCRIPTION)
    return Product(code=code, title=title, stars=stars, plan_code=plan_code, days=days, description=description)


def _invoice_text(value: Any, where: str, maximum: int) -> str:
    """A text Telegram's ``sendInvoice`` takes: 1..``maximum`` characters, not blank."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}: must be a text of 1..{maximum} characters (Telegram sendInvoice)")
    if len(value) > maximum:
        raise ConfigurationError(f"{where}: {len(value)} characters; Telegram's sendInvoice takes at most "
                                 f"{maximum}")
    return value


def _integer(value: Any, where: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ConfigurationError(f"{where}: must be an integer 1..{maximum}")
    return value
