"""Migration 0010 (campaign code counts, the campaign of each purchase) on SQLite and PostgreSQL, over a 0009
database with rows in every code status and purchases with and without a redemption: every row is kept, the counts
equal the codes, each purchase gets its redemption's campaign; the downgrade drops only the derived table, column and
index, and upgrading again gives the same figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.sql.engine import EngineHolder
from adapters.sql.migrations import current_revision, downgrade, upgrade
from tests.sql import unmigrated_engines

NOW = "2026-11-30 12:00:00+00:00"
TABLES = ("promo_campaigns", "promo_codes", "promo_redemptions", "purchases")
# (campaign, status, how many codes)
CODES = [(1, "ACTIVE", 7), (1, "PAUSED", 2), (1, "DEPLETED", 3), (2, "EXPIRED", 4), (3, "ACTIVE", 1)]


@pytest.fixture(params=["postgresql", "sqlite"])
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHolder]:
    with unmigrated_engines(request.param, tmp_path, "starpromo_m0010") as holder:
        yield holder


def _seed_0009(conn: sa.Connection) -> None:
    for campaign_id in (1, 2, 3):
        conn.execute(sa.text(
            "INSERT INTO promo_campaigns (id, name, promo_type, discount_percent, applicable_products, target_scope, "
            "status, valid_from, per_user_limit, used_total, created_at, updated_at) "
            "VALUES (:id, :name, 'PERCENT_DISCOUNT', 10, '[\"PREMIUM_30D\"]', 'ALL', :status, :now, 1, 0, :now, :now)"),
            {"id": campaign_id, "name": f"campaign {campaign_id}", "now": NOW,
             "status": "EXPIRED" if campaign_id == 2 else "ACTIVE"})
    code_id = 0
    for campaign_id, status, n in CODES:
        for _ in range(n):
            code_id += 1
            conn.execute(sa.text(
                "INSERT INTO promo_codes (id, campaign_id, code_hash, code_prefix, status, paused_reason, "
                "max_total_uses, used_total, created_at, updated_at, campaign_name, promo_type, target_scope, "
                "valid_from) VALUES (:id, :campaign, :hash, 'ABCD', :status, :reason, :cap, :used, :now, :now, "
                ":name, 'PERCENT_DISCOUNT', 'ALL', :now)"),
                {"id": code_id, "campaign": campaign_id, "hash": f"{code_id:064x}", "status": status,
                 "reason": "MANUAL" if status == "PAUSED" else None, "cap": 1 if status == "DEPLETED" else None,
                 "used": 1 if status == "DEPLETED" else 0, "now": NOW, "name": f"campaign {campaign_id}"})
    # Redemptions of code 1 (campaign 1) and code 17 (campaign 2); a purchase for each and one without a code.
    for redemption_id, code, campaign_id in ((1, 1, 1), (2, 17, 2)):
        conn.execute(sa.text(
            "INSERT INTO promo_redemptions (id, promo_code_id, campaign_id, user_id, idempotency_key, status, "
            "discount_percent, created_at, updated_at, user_slot) "
            "VALUES (:id, :code, :campaign, :user, :key, 'APPLIED', 10, :now, :now, 1)"),
            {"id": redemption_id, "code": code, "campaign": campaign_id, "user": 100 + redemption_id,
             "key": f"k{redemption_id}", "now": NOW})
    paid: list[tuple[int, int | None]] = [(1, 1), (2, 2), (3, None)]
    for purchase_id, bound in paid:
        conn.execute(sa.text(
            "INSERT INTO purchases (id, user_id, product_code, base_stars_amount, discount_stars_amount, "
            "final_stars_amount, promo_redemption_id, status, telegram_payment_charge_id, created_at, updated_at, "
            "paid_at) VALUES (:id, :user, 'PREMIUM_30D', 100, :discount, :final, :redemption, 'PAID', :charge, "
            ":now, :now, :now)"),
            {"id": purchase_id, "user": 100 + purchase_id, "discount": 10 if bound else 0,
             "final": 90 if bound else 100, "redemption": bound, "charge": f"charge-{purchase_id}",
             "now": NOW})


def _rows(conn: sa.Connection) -> dict[str, list[Any]]:
    """Every row of the four tables, columns of the 0009 shape only (what the migration must keep)."""
    out: dict[str, list[Any]] = {}
    for table in TABLES:
        columns = [c for c in sa.inspect(conn).get_columns(table) if c["name"] != "campaign_id" or table != "purchases"]
        names = ", ".join(c["name"] for c in columns)
        out[table] = [tuple(row) for row in conn.execute(sa.text(f"SELECT {names} FROM {table} ORDER BY id"))]
    return out


def _counts(conn: sa.Connection) -> dict[tuple[int, str], int]:
    return {(int(c), str(s)): int(n) for c, s, n in
            conn.execute(sa.text("SELECT campaign_id, status, codes FROM promo_code_counts"))}


def test_0010_counts_every_code_and_gives_each_purchase_its_campaign_and_keeps_every_row(
        engines: EngineHolder) -> None:
    assert upgrade(engines, "0009") == (None, "0009")
    with engines.engine.begin() as conn:
        _seed_0009(conn)
    with engines.engine.connect() as conn:
        before = _rows(conn)

    assert upgrade(engines, "0010") == ("0009", "0010")
    expected_counts = {(campaign, status): n for campaign, status, n in CODES}
    with engines.engine.connect() as conn:
        assert _rows(conn) == before
        assert _counts(conn) == expected_counts
        assert {int(i): c for i, c in conn.execute(sa.text("SELECT id, campaign_id FROM purchases"))} == \
            {1: 1, 2: 2, 3: None}
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("purchases")}
        assert "ix_purchases_campaign_id_paid_at" in indexes

    assert downgrade(engines, "0009") == ("0010", "0009")
    with engines.engine.connect() as conn:
        assert "promo_code_counts" not in sa.inspect(conn).get_table_names()
        assert "campaign_id" not in {c["name"] for c in sa.inspect(conn).get_columns("purchases")}
        assert _rows(conn) == before

    assert upgrade(engines, "0010") == ("0009", "0010")
    with engines.engine.connect() as conn:
        assert _counts(conn) == expected_counts
        assert _rows(conn) == before
    assert current_revision(engines) == "0010"
