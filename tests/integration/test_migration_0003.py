"""Migration 0003 (campaigns as groups of codes) on a database holding real 0002 data, PostgreSQL and SQLite.

The upgrade keeps every row: codes sharing a name and terms become one campaign, a same-name group with other
terms a suffixed one, codes keep their own status, cap and count, redemptions get their code's campaign and the
user's slots in it, attempts the campaign of the code they named. The incident runbook's queries run unchanged
afterwards (the original ones answer exactly as before). The downgrade brings the 0002 shape and values back, and
refuses, changing nothing, when the data no longer fits in it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.sql.engine import EngineHolder
from adapters.sql.migrations import current_revision, downgrade, upgrade
from adapters.sql.tables import Json, UTCDateTime
from adapters.sql.unit_of_work import SqlUnitOfWork
from domain.model import CampaignStatus, PausedReason, PromoType, RedemptionStatus
from tests.builders import make_code
from tests.sql import fresh_pg_database, live_units_mismatch, unmigrated_engines

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbooks" / "promo_incident_response.md"
LONG_NAME = "L" * 200

# The 0002 shape of the tables this test fills (what a 0002 database held).
_old = sa.MetaData()
codes_0002 = sa.Table(
    "promo_codes", _old,
    sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("campaign_name", sa.String),
    sa.Column("code_hash", sa.String), sa.Column("code_prefix", sa.String), sa.Column("promo_type", sa.String),
    sa.Column("grant_plan_code", sa.String), sa.Column("grant_days", sa.Integer),
    sa.Column("discount_percent", sa.Integer), sa.Column("applicable_products", Json),
    sa.Column("target_scope", sa.String), sa.Column("status", sa.String), sa.Column("paused_reason", sa.String),
    sa.Column("valid_from", UTCDateTime), sa.Column("valid_until", UTCDateTime),
    sa.Column("max_total_uses", sa.Integer), sa.Column("used_total", sa.Integer),
    sa.Column("created_at", UTCDateTime), sa.Column("updated_at", UTCDateTime),
)
redemptions_0002 = sa.Table(
    "promo_redemptions", _old,
    sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("promo_code_id", sa.BigInteger),
    sa.Column("user_id", sa.BigInteger), sa.Column("idempotency_key", sa.String), sa.Column("status", sa.String),
    sa.Column("discount_percent", sa.Integer), sa.Column("reserved_until", UTCDateTime),
    sa.Column("purchase_id", sa.BigInteger), sa.Column("applied_purchase_id", sa.BigInteger),
    sa.Column("created_at", UTCDateTime), sa.Column("updated_at", UTCDateTime), sa.Column("revoked_at", UTCDateTime),
)
attempts_0002 = sa.Table(
    "promo_attempts", _old,
    sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("user_id", sa.BigInteger),
    sa.Column("normalized_code_hash", sa.String), sa.Column("code_prefix", sa.String),
    sa.Column("result", sa.String), sa.Column("attempted_at", UTCDateTime),
)
purchases_0002 = sa.Table(
    "purchases", _old,
    sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("user_id", sa.BigInteger),
    sa.Column("product_code", sa.String), sa.Column("base_stars_amount", sa.Integer),
    sa.Column("discount_stars_amount", sa.Integer), sa.Column("final_stars_amount", sa.Integer),
    sa.Column("promo_redemption_id", sa.BigInteger), sa.Column("status", sa.String),
    sa.Column("telegram_payment_charge_id", sa.String), sa.Column("created_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime), sa.Column("paid_at", UTCDateTime),
)


def code_hash(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


@dataclass
class Seed:
    """What the 0002 database holds, by role; ``now`` is close to the database's clock (the runbook looks back
    two hours from ``now()``)."""

    now: datetime
    codes: dict[str, int] = field(default_factory=dict)
    redemptions: dict[str, int] = field(default_factory=dict)


def seed_0002(engines: EngineHolder) -> Seed:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    seed = Seed(now)
    spring = {"promo_type": "PERCENT_DISCOUNT", "grant_plan_code": None, "grant_days": None, "discount_percent": 20,
              "applicable_products": ["PREMIUM_30D"], "target_scope": "ALL", "valid_from": now - timedelta(days=10),
              "valid_until": now + timedelta(days=30)}
    gift = {"promo_type": "PREMIUM_GRANT", "grant_plan_code": "PREMIUM", "grant_days": 30, "discount_percent": None,
            "applicable_products": [], "target_scope": "FIRST_PURCHASE_ONLY", "valid_from": now - timedelta(days=60),
            "valid_until": now - timedelta(days=1)}
    forever = {**spring, "discount_percent": 5, "applicable_products": [], "valid_until": None}
    codes: list[tuple[str, str, dict[str, Any], str, str | None, int | None, int]] = [
        # role, campaign_name, terms, status, paused_reason, cap, used
        ("spring_capped", "spring", spring, "ACTIVE", None, 1, 1),
        ("spring_paused", "spring", spring, "PAUSED", "AUTO_BRUTEFORCE", None, 0),
        ("other_terms_live", "spring", {**spring, "discount_percent": 30}, "ACTIVE", None, None, 1),
        ("spring_depleted", "spring", spring, "DEPLETED", None, 2, 2),
        ("named_like_a_suffix", "spring (2)", spring, "ACTIVE", None, None, 0),
        ("other_terms_expired", "spring", {**spring, "discount_percent": 30}, "EXPIRED", None, None, 0),
        ("gift_used", "gift", gift, "EXPIRED", None, None, 1),
        ("gift_unused", "gift", gift, "EXPIRED", None, None, 0),
        ("long_first", LONG_NAME, spring, "ACTIVE", None, None, 0),
        ("long_other", LONG_NAME, {**spring, "target_scope": "FIRST_PURCHASE_ONLY"}, "ACTIVE", None, None, 0),
        ("forever_a", "forever", forever, "ACTIVE", None, None, 0),
        ("forever_b", "forever", forever, "ACTIVE", None, 10, 0),
    ]
    code_rows = []
    for number, (role, name, terms, status, reason, cap, used) in enumerate(codes, start=1):
        seed.codes[role] = number
        code_rows.append({"id": number, "campaign_name": name, "code_hash": code_hash(role),
                          "code_prefix": role[:4].upper(), **terms, "status": status, "paused_reason": reason,
                          "max_total_uses": cap, "used_total": used, "created_at": now - timedelta(days=20 - number),
                          "updated_at": now - timedelta(hours=number)})
    c = seed.codes
    redemptions = [
        # role, code, user, status, discount_percent, purchase bound, applied purchase
        ("expired_first", c["spring_paused"], 100, "EXPIRED", 20, None, None),
        ("user100_reserved", c["spring_capped"], 100, "RESERVED", 20, 3, None),
        ("user100_applied", c["spring_depleted"], 100, "APPLIED", 20, 1, 1),
        ("user101_applied", c["spring_depleted"], 101, "APPLIED", 20, None, None),
        ("user101_revoked", c["other_terms_live"], 101, "REVOKED", 30, 2, 2),
        ("user102_expired", c["other_terms_live"], 102, "EXPIRED", 30, None, None),
        ("grant", c["gift_used"], 103, "APPLIED", None, None, None),
    ]
    redemption_rows = []
    for number, (role, code_id, user, status, percent, bound, applied) in enumerate(redemptions, start=1):
        seed.redemptions[role] = number
        redemption_rows.append({
            "id": number, "promo_code_id": code_id, "user_id": user, "idempotency_key": f"key-{role}",
            "status": status, "discount_percent": percent,
            "reserved_until": now + timedelta(minutes=15) if percent is not None else None,
            "purchase_id": bound, "applied_purchase_id": applied, "created_at": now - timedelta(minutes=number),
            "updated_at": now, "revoked_at": now if status == "REVOKED" else None,
        })
    purchases = [
        {"id": 1, "user_id": 100, "product_code": "PREMIUM_30D", "base_stars_amount": 150,
         "discount_stars_amount": 30, "final_stars_amount": 120, "promo_redemption_id": 3, "status": "PAID",
         "telegram_payment_charge_id": "charge-1", "created_at": now, "updated_at": now, "paid_at": now},
        {"id": 2, "user_id": 101, "product_code": "PREMIUM_30D", "base_stars_amount": 150,
         "discount_stars_amount": 45, "final_stars_amount": 105, "promo_redemption_id": 5, "status": "REFUNDED",
         "telegram_payment_charge_id": "charge-2", "created_at": now, "updated_at": now, "paid_at": now},
        {"id": 3, "user_id": 100, "product_code": "PREMIUM_30D", "base_stars_amount": 150,
         "discount_stars_amount": 30, "final_stars_amount": 120, "promo_redemption_id": 2, "status": "CREATED",
         "telegram_payment_charge_id": None, "created_at": now, "updated_at": now, "paid_at": None},
    ]
    attempts = [
        (100, code_hash("spring_capped"), "SPRI", "ACCEPTED"),
        (104, code_hash("spring_capped"), "SPRI", "ALREADY_USED"),
        (105, code_hash("spring_paused"), "SPRI", "PAUSED"),
        (106, code_hash("spring_paused"), "SPRI", "PAUSED"),
        (103, code_hash("gift_used"), "GIFT", "ACCEPTED"),
        (107, code_hash("never stored"), "SPRI", "INVALID"),
        (108, None, None, "INVALID"),
    ]
    with engines.engine.begin() as conn:
        conn.execute(codes_0002.insert(), code_rows)
        conn.execute(redemptions_0002.insert(), redemption_rows)
        conn.execute(purchases_0002.insert(), purchases)
        conn.execute(attempts_0002.insert(), [
            {"id": number, "user_id": user, "normalized_code_hash": hashed, "code_prefix": prefix, "result": result,
             "attempted_at": now - timedelta(minutes=number)}
            for number, (user, hashed, prefix, result) in enumerate(attempts, start=1)])
    return seed


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHolder]:
    """An empty database at revision 0002."""
    with unmigrated_engines(request.param, tmp_path, "starpromo_m0003") as engines:
        assert upgrade(engines, "0002") == (None, "0002")
        yield engines


def rows(engines: EngineHolder, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` by id, as stored (columns by name: their physical order does not matter)."""
    with engines.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]


def scalar_rows(engines: EngineHolder, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engines.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql), params)]


def test_upgrade_groups_codes_by_name_and_terms_and_keeps_every_row(database: EngineHolder) -> None:
    seed = seed_0002(database)
    before = {table: rows(database, table) for table in ("promo_codes", "promo_redemptions", "promo_attempts",
                                                          "purchases")}

    assert upgrade(database, "0003") == ("0002", "0003")

    c = seed.codes
    campaign_of = dict(scalar_rows(database, "SELECT id, campaign_id FROM promo_codes"))
    # Same name and terms: one campaign. Same name, other terms: another, suffixed -- past the name a code
    # already had; the suffix keeps a 200-character name within 200 characters.
    assert len({campaign_of[c[r]] for r in ("spring_capped", "spring_paused", "spring_depleted")}) == 1
    campaigns = {row["id"]: row for row in rows(database, "promo_campaigns")}
    assert set(campaign_of.values()) == set(campaigns)
    names = {role: campaigns[campaign_of[c[role]]]["name"] for role in c}
    assert names["spring_capped"] == "spring"
    assert names["named_like_a_suffix"] == "spring (2)"
    assert names["other_terms_live"] == names["other_terms_expired"] == "spring (2.1)"
    assert names["long_first"] == LONG_NAME
    assert names["long_other"] == "L" * 196 + " (2)"
    # One campaign per group, numbered in the order of each group's first code.
    assert [campaign_of[c[r]] for r in ("spring_capped", "other_terms_live", "named_like_a_suffix", "gift_used",
                                        "long_first", "long_other", "forever_a")] == [1, 2, 3, 4, 5, 6, 7]
    assert len(campaigns) == 7
    assert campaign_of[c["forever_b"]] == campaign_of[c["forever_a"]]  # a cap of its own is no term
    spring = campaigns[campaign_of[c["spring_capped"]]]
    assert (spring["used_total"], spring["max_total_uses"], spring["per_user_limit"], spring["status"],
            spring["paused_reason"], spring["discount_percent"], spring["discount_stars"]) == \
           (3, None, 1, "ACTIVE", None, 20, None)
    gift = campaigns[campaign_of[c["gift_used"]]]
    assert (gift["status"], gift["used_total"], gift["grant_plan_code"], gift["grant_days"], gift["target_scope"]) == \
           ("EXPIRED", 1, "PREMIUM", 30, "FIRST_PURCHASE_ONLY")
    assert campaigns[campaign_of[c["forever_a"]]]["valid_until"] is None

    # Codes keep what was theirs and copy their campaign's fields.
    after_codes = {row["id"]: row for row in rows(database, "promo_codes")}
    for old in before["promo_codes"]:
        new = after_codes[old["id"]]
        for name in ("code_hash", "code_prefix", "status", "paused_reason", "max_total_uses", "used_total",
                     "created_at", "updated_at", "promo_type", "target_scope", "valid_from", "valid_until"):
            assert new[name] == old[name], (old["id"], name)
        assert new["campaign_name"] == campaigns[new["campaign_id"]]["name"]
        assert not {"grant_plan_code", "grant_days", "discount_percent", "applicable_products"} & new.keys()

    # Redemptions keep every column and get their campaign and the user's slots in it.
    after_redemptions = {row["id"]: row for row in rows(database, "promo_redemptions")}
    for old in before["promo_redemptions"]:
        new = after_redemptions[old["id"]]
        assert {k: new[k] for k in old} == old
        assert new["campaign_id"] == campaign_of[old["promo_code_id"]]
        assert new["discount_stars"] is None
    r = seed.redemptions
    slots = {role: after_redemptions[r[role]]["user_slot"] for role in r}
    # User 100 holds two live redemptions of two codes of the merged campaign: both kept, slots 1 and 2 by id.
    assert (slots["user100_reserved"], slots["user100_applied"], slots["expired_first"]) == (1, 2, 1)
    assert slots["user101_applied"] == slots["user101_revoked"] == slots["grant"] == 1
    assert after_redemptions[r["user100_reserved"]]["campaign_id"] == \
        after_redemptions[r["user100_applied"]]["campaign_id"]

    # Attempts keep every column; those naming a stored code get its campaign.
    after_attempts = rows(database, "promo_attempts")
    assert [{k: a[k] for k in old} for a, old in zip(after_attempts, before["promo_attempts"], strict=True)] == \
        before["promo_attempts"]
    assert [a["campaign_id"] for a in after_attempts] == [
        campaign_of[c["spring_capped"]], campaign_of[c["spring_capped"]], campaign_of[c["spring_paused"]],
        campaign_of[c["spring_paused"]], campaign_of[c["gift_used"]], None, None]
    assert rows(database, "purchases") == before["purchases"]
    assert rows(database, "audit_log") == []
    assert live_units_mismatch(database, derived=False) == []

    # The adapters (at head: they keep the later migrations' derived rows) work on the migrated rows, and new rows
    # take ids after the old ones.
    upgrade(database)
    assert live_units_mismatch(database) == []
    with SqlUnitOfWork(database.engine) as uow:
        snapshot = uow.redemptions.redeem_snapshot("new-key", 100, [code_hash("spring_capped")], seed.now)
        assert snapshot.code is not None and snapshot.code.id == c["spring_capped"]
        assert snapshot.campaign is not None and snapshot.campaign.name == "spring"
        assert snapshot.campaign.promo_type is PromoType.PERCENT_DISCOUNT
        assert snapshot.live is not None and snapshot.live.status is RedemptionStatus.RESERVED
        assert snapshot.held_slots == (1, 2)
        assert uow.campaigns.get_by_name("spring (2.1)") is not None
        stored = uow.promo_codes.add(make_code(snapshot.campaign, code_hash("new code")))
        assert stored.id == len(c) + 1
        assert uow.campaigns.code_counts([spring["id"]])[spring["id"]][CampaignStatus.PAUSED] == 1
        uow.rollback()


def runbook_queries() -> list[str]:
    """The SQL blocks of section 1 of the incident runbook, as written."""
    text = RUNBOOK.read_text()
    section = text[text.index("## 1."):text.index("## 2.")]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def run_query(engines: EngineHolder, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    wanted = {name: value for name, value in params.items() if f":{name}" in sql}
    return scalar_rows(engines, sql, **wanted)


def test_the_runbook_queries_run_unchanged_and_the_original_ones_answer_as_before(tmp_path: Path) -> None:
    with fresh_pg_database("starpromo_m0003") as url:
        engines = EngineHolder(url)
        try:
            assert upgrade(engines, "0002") == (None, "0002")
            seed = seed_0002(engines)
            paused_code = seed.codes["spring_paused"]
            queries = runbook_queries()
            assert len(queries) >= 10
            originals = [sql for sql in queries if not re.search(r"promo_campaigns|audit_log|campaign_id", sql)]
            assert len(originals) >= 8  # 1.1 to 1.7 (1.6 has two)
            answers_0002 = [run_query(engines, sql, id=paused_code) for sql in originals]
            assert answers_0002[0] and answers_0002[1]  # 1.1 sees the paused code, 1.2 its attempts

            assert upgrade(engines, "0003") == ("0002", "0003")
            upgrade(engines)  # and on to head: the later queries (1.11) read tables of later revisions

            campaign_id = scalar_rows(engines, "SELECT campaign_id FROM promo_codes WHERE id = :id", id=paused_code)
            for sql in queries:
                run_query(engines, sql, id=paused_code, campaign_id=campaign_id[0][0])
            assert [run_query(engines, sql, id=paused_code) for sql in originals] == answers_0002
        finally:
            engines.dispose()


def schema(engines: EngineHolder) -> dict[str, Any]:
    """Tables with their columns in order, keys, indexes (with conditions) and checks, as the database has them."""
    inspector = sa.inspect(engines.engine)
    out: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in
                        inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": sorted((fk["name"] or "", tuple(fk["constrained_columns"]), fk["referred_table"])
                                   for fk in inspector.get_foreign_keys(table)),
            "unique": sorted((u["name"] or "", tuple(u["column_names"]))
                             for u in inspector.get_unique_constraints(table)),
            "indexes": sorted((i["name"] or "", tuple(i["column_names"]), bool(i["unique"]),
                               sorted((option, str(value)) for option, value in i.get("dialect_options", {}).items()))
                              for i in inspector.get_indexes(table)),
            "checks": sorted((c["name"] or "", " ".join(c["sqltext"].split())) for c in
                             inspector.get_check_constraints(table)),
        }
    return out


def test_downgrade_restores_the_0002_shape_and_values(database: EngineHolder, tmp_path: Path) -> None:
    seed_0002(database)
    before = {table: rows(database, table) for table in ("promo_codes", "promo_redemptions", "promo_attempts",
                                                          "purchases")}
    shape_0002 = schema(database)
    upgrade(database, "0003")
    # A change that 0002 can hold (a code's status), made by the adapters at head (they keep the later
    # migrations' derived rows), then every downgrade down to 0002.
    upgrade(database)
    with SqlUnitOfWork(database.engine) as uow:
        uow.promo_codes.set_status(1, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, PausedReason.MANUAL,
                                   datetime.now(UTC))
        uow.commit()

    assert downgrade(database, "0002")[1] == "0002"

    assert schema(database) == shape_0002
    after = {table: rows(database, table) for table in before}
    paused_on_0003 = after["promo_codes"][0]
    assert (paused_on_0003["status"], paused_on_0003["paused_reason"]) == ("PAUSED", "MANUAL")
    # Every value is back, but for what the two revisions did on purpose: the suffixed names stay, and the
    # code paused on 0003 stays paused.
    renamed = {"spring (2.1)", "L" * 196 + " (2)"}
    for old, new in zip(before["promo_codes"], after["promo_codes"], strict=True):
        changed = {k for k in old if old[k] != new[k]}
        if new["campaign_name"] in renamed:
            changed.discard("campaign_name")
        if new["id"] == 1:
            changed -= {"status", "paused_reason", "updated_at"}
        assert not changed, (old["id"], changed)
    assert after["promo_redemptions"] == before["promo_redemptions"]
    assert after["promo_attempts"] == before["promo_attempts"]
    assert after["purchases"] == before["purchases"]
    assert current_revision(database) == "0002"
    # Upgrading again is the same upgrade.
    assert upgrade(database, "0003") == ("0002", "0003")
    assert live_units_mismatch(database, derived=False) == []


def test_downgrade_refuses_what_0002_cannot_hold_and_changes_nothing(database: EngineHolder) -> None:
    seed_0002(database)
    upgrade(database, "0003")
    with database.engine.begin() as conn:
        conn.execute(sa.text("UPDATE promo_campaigns SET max_total_uses = 100 WHERE name = 'spring'"))
        conn.execute(sa.text("UPDATE promo_campaigns SET per_user_limit = 3 WHERE name = 'forever'"))
        conn.execute(sa.text("INSERT INTO audit_log (at, actor, action, target_type, target_id, details) "
                             "VALUES (CURRENT_TIMESTAMP, 'api', 'campaign.changed', 'campaign', '1', '{}')"))
    before = {table: rows(database, table) for table in ("promo_campaigns", "promo_codes", "audit_log")}

    with pytest.raises(RuntimeError) as refused:
        downgrade(database, "0002")

    message = str(refused.value)
    assert "cannot downgrade to 0002" in message
    assert "campaigns with a budget (max_total_uses)" in message
    assert "per_user_limit other than 1" in message
    assert "audit_log entries" in message
    assert current_revision(database) == "0003"
    assert {table: rows(database, table) for table in before} == before
