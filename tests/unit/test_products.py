"""SPEC 5: the product catalog — the four default plans, a products file that replaces them (and names the file
and the field when it is wrong), an unknown product — and the composition root building it from the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.checkout import CheckoutService
from domain.errors import ConfigurationError, ValidationError
from domain.products import DEFAULT_PRODUCTS, ProductCatalog, parse_products
from tests.unit.checkout_setup import USER


def test_default_catalog_is_the_four_premium_plans_of_the_spec() -> None:
    catalog = ProductCatalog()
    assert [(p.code, p.stars, p.days, p.plan_code) for p in catalog] == [
        ("PREMIUM_7D", 50, 7, "PREMIUM"), ("PREMIUM_30D", 150, 30, "PREMIUM"),
        ("PREMIUM_90D", 350, 90, "PREMIUM"), ("PREMIUM_365D", 1000, 365, "PREMIUM"),
    ]
    assert tuple(DEFAULT_PRODUCTS) == tuple(catalog)


def test_products_file_replaces_the_catalog() -> None:
    text = json.dumps({"products": [{"code": "GOLD_14D", "stars": 99, "days": 14, "title": "Gold",
                                     "plan_code": "GOLD"}, {"code": "PREMIUM_7D", "stars": 40, "days": 7}]})
    catalog = parse_products(text, "/etc/products.json")
    assert catalog.codes == ("GOLD_14D", "PREMIUM_7D")
    gold = catalog.require("GOLD_14D")
    assert (gold.stars, gold.days, gold.plan_code, gold.title) == (99, 14, "GOLD", "Gold")
    assert catalog.require("PREMIUM_7D").plan_code == "PREMIUM"
    assert parse_products(json.dumps([{"code": "X1", "stars": 1, "days": 1}])).codes == ("X1",)


@pytest.mark.parametrize(("text", "fragment"), [
    ("{not json", "/p.json: invalid JSON"),
    ("[]", "/p.json: products: must be a non-empty list"),
    ('{"items": []}', "/p.json: unknown key(s) items"),
    ('[{"code": "bad code", "stars": 5, "days": 1}]', "/p.json: products[0].code"),
    ('[{"code": "A", "stars": 0, "days": 1}]', "/p.json: products[0].stars"),
    ('[{"code": "A", "stars": true, "days": 1}]', "/p.json: products[0].stars"),
    ('[{"code": "A", "stars": 5, "days": "7"}]', "/p.json: products[0].days"),
    ('[{"code": "A", "stars": 5, "days": 7, "price": 3}]', "/p.json: products[0]: unknown field(s) price"),
    ('[{"code": "A", "stars": 5, "days": 7}, {"code": "A", "stars": 6, "days": 7}]',
     "/p.json: products[1].code: duplicate"),
    ('[{"code": "A", "stars": 5, "days": 7, "title": ""}]', "/p.json: products[0].title"),
])
def test_bad_products_file_names_the_file_and_the_field(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_products(text, "/p.json")
    assert fragment in err.value.message


def test_unknown_product_is_a_validation_error_naming_product_code(checkout: CheckoutService) -> None:
    with pytest.raises(ValidationError) as err:
        checkout.init(USER, "PREMIUM_2D")
    assert err.value.errors[0]["field"] == "product_code"


def test_container_builds_the_catalog_from_the_products_file(tmp_path: Path) -> None:
    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    path = tmp_path / "products.json"
    path.write_text('[{"code": "GOLD_14D", "stars": 99, "days": 14}]', encoding="utf-8")
    container = build_container(Settings(database_url="memory://", products_file=str(path)))
    assert container.products().codes == ("GOLD_14D",)
    assert container.checkout_service().catalog.codes == ("GOLD_14D",)
    assert build_container(Settings(database_url="memory://")).products().codes == tuple(
        p.code for p in DEFAULT_PRODUCTS)
    path.write_text('[{"code": "GOLD_14D", "stars": -1, "days": 14}]', encoding="utf-8")
    with pytest.raises(ConfigurationError) as err:
        build_container(Settings(database_url="memory://", products_file=str(path))).products()
    assert err.value.message.startswith(f"STARPROMO_PRODUCTS_FILE {path}: products[0].stars")
    with pytest.raises(ConfigurationError, match="STARPROMO_PRODUCTS_FILE: cannot read"):
        build_container(Settings(database_url="memory://", products_file=str(path) + ".missing")).products()
