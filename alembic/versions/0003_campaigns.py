"""campaigns as groups of codes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A campaign is now a row of ``promo_campaigns`` (terms, validity, budget, per-user limit) and a code a row of
``promo_codes`` pointing at it (SPEC 3). Upgrade, set-based (a few INSERT ... SELECT statements, no row loop):

- Code rows sharing ``campaign_name`` AND identical terms (promo_type, grant_plan_code, grant_days,
  discount_percent, applicable_products, target_scope, valid_from, valid_until; NULLs equal) become one
  campaign, numbered in the order of their first code's id: no budget, ``per_user_limit`` 1, ``used_total`` the
  sum of its codes', EXPIRED when every code of it is EXPIRED (else ACTIVE), created/updated the min/max of its
  codes'. The first group of a name (by first code id) keeps the name; the others get `` (2)``, `` (3)``...
  (the name shortened to stay within 200 characters; a suffixed name that another campaign already has gets
  `` (n.1)``, `` (n.2)``... until it is unique).
- Codes keep their id, hash, prefix, status, paused reason, own ``max_total_uses`` and ``used_total``; they get
  ``campaign_id`` and the copies of the campaign's fields (``campaign_name`` is the campaign's, suffix
  included). The terms that moved (grant_plan_code, grant_days, discount_percent, applicable_products) leave
  ``promo_codes``.
- Redemptions get their code's ``campaign_id``, ``discount_stars`` NULL and a ``user_slot``: the user's live
  (not EXPIRED) redemptions in a campaign are numbered 1, 2, ... by id; EXPIRED ones get 1. Nothing is revoked
  where a user now holds more than ``per_user_limit`` (SPEC 3).
- Attempts get ``campaign_id`` where their ``normalized_code_hash`` is a stored ``code_hash`` (one hash join
  while the table is copied; an in-place UPDATE of the matching rows took three times as long).
- ``audit_log`` is new and empty.
- Refused, with a message naming the rows, when a code row breaks a rule the new constraints state: a
  ``grant_days`` outside 1..3650, or a ``paused_reason`` on a code that is not PAUSED.

``promo_codes``, ``promo_redemptions`` and ``promo_attempts`` are rebuilt (new table, INSERT ... SELECT, old one
dropped, new one renamed; ids and identity positions kept), on PostgreSQL with their keys and indexes built after
the load (a bulk build, not 1,000,000 single inserts into each index), then analyzed. Their columns then stand in
the order of adapters/sql/tables.py. Measured on PostgreSQL 15 (2 cores shared with other work, load average
4-6): 1,000,000 codes in 1,100 campaigns, 300,000 redemptions and 1,000,000 attempts migrate in 40-49 s.
SQLite runs the same statements with its foreign keys switched off for the run (alembic/env.py;
``PRAGMA foreign_key_check`` must come back empty before the commit). The whole migration is one transaction on
both.

Downgrade restores the 0002 shape only when the data fits in it, and otherwise refuses, naming what does not
fit and changing nothing:
- a STARS_DISCOUNT campaign (0002 knows two types), a campaign with a budget (``max_total_uses``) or a
  ``per_user_limit`` other than 1 (0002 has no campaign level to hold them);
- a PAUSED or DEPLETED campaign, or an EXPIRED one with a code still ACTIVE or PAUSED (0002 would show its
  codes as redeemable);
- a campaign without codes (0002 has no row to keep it in);
- audit_log entries (0002 has no table for them: export and delete them first if losing them is acceptable).
What the downgrade drops is derived data: ``campaign_id`` on attempts and redemptions, ``user_slot`` (numbered
again by the next upgrade) and the campaign rows themselves, whose terms go back onto each code row. Suffixed
names stay suffixed.

Why this is one file of some 670 lines (past the house limit of about 500): a migration is one ordered unit.
Alembic runs this revision's ``upgrade`` or ``downgrade`` as one transaction, statement after statement, and the
table shapes here (``codes_0002``, ``codes_0003``, ...) are frozen copies of the schema at revision 0003, not
imports of adapters/sql/tables.py, which moves on with later revisions. Split into helper modules, what this
revision does would depend on files outside alembic/versions/ that a later change could edit, and a reader
checking the order of the steps would have to follow them across files. A later change of schema is a new
revision, not an edit of this one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Timestamp = sa.DateTime(timezone=True)

STAGING = "_m0003_"  # prefix of the tables a rebuild loads before it takes the final name
NAME_LENGTH = 200


def _is_postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def _run(sql: str, **params: Any) -> sa.CursorResult[Any]:
    return op.get_bind().execute(sa.text(sql), params)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


_STATUSES = ["ACTIVE", "PAUSED", "EXPIRED", "DEPLETED"]
_PAUSED_REASONS = ["MANUAL", "AUTO_BRUTEFORCE"]
_SCOPES = ["ALL", "FIRST_PURCHASE_ONLY"]
_REDEMPTION_STATUSES = ["RESERVED", "APPLIED", "EXPIRED", "REVOKED"]


# -- table shapes ------------------------------------------------------------------------------------------
# Written out here, not imported from adapters/sql/tables.py: a migration is the schema of its revision.
# ``keys``: with primary key, unique constraints and foreign keys (SQLite always; PostgreSQL adds them after the
# load, ``_add_keys``).

def _id() -> sa.Column[Any]:
    """The identity column; the primary key is a named constraint (``pk_<table>``)."""
    return sa.Column("id", BigId, sa.Identity(always=False), nullable=False)


def _code_checks(table: str, promo_types: Sequence[str]) -> list[sa.CheckConstraint]:
    return [
        sa.CheckConstraint(f"paused_reason IS NULL OR {_in('paused_reason', _PAUSED_REASONS)}",
                           name=f"ck_{table}_paused_reason"),
        sa.CheckConstraint(_in("promo_type", promo_types), name=f"ck_{table}_promo_type"),
        sa.CheckConstraint(_in("status", _STATUSES), name=f"ck_{table}_status"),
        sa.CheckConstraint(_in("target_scope", _SCOPES), name=f"ck_{table}_target_scope"),
        sa.CheckConstraint("used_total >= 0", name=f"ck_{table}_used_total_not_negative"),
    ]


def campaigns_0003(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "promo_campaigns", metadata,
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("promo_type", sa.String(20), nullable=False),
        sa.Column("grant_plan_code", sa.String(64)),
        sa.Column("grant_days", sa.Integer),
        sa.Column("discount_percent", sa.Integer),
        sa.Column("discount_stars", sa.Integer),
        sa.Column("applicable_products", Json, nullable=False),
        sa.Column("target_scope", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paused_reason", sa.String(32)),
        sa.Column("valid_from", Timestamp, nullable=False),
        sa.Column("valid_until", Timestamp),
        sa.Column("max_total_uses", sa.Integer),
        sa.Column("per_user_limit", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("used_total", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_promo_campaigns"),
        sa.UniqueConstraint("name", name="uq_promo_campaigns_name"),
        *_code_checks("promo_campaigns", ["PREMIUM_GRANT", "PERCENT_DISCOUNT", "STARS_DISCOUNT"]),
        sa.CheckConstraint("paused_reason IS NULL OR status = 'PAUSED'",
                           name="ck_promo_campaigns_paused_reason_only_when_paused"),
        sa.CheckConstraint("discount_percent IS NULL OR discount_percent BETWEEN 1 AND 99",
                           name="ck_promo_campaigns_discount_percent"),
        sa.CheckConstraint("discount_stars IS NULL OR discount_stars BETWEEN 1 AND 1000000",
                           name="ck_promo_campaigns_discount_stars"),
        sa.CheckConstraint("grant_days IS NULL OR grant_days BETWEEN 1 AND 3650", name="ck_promo_campaigns_grant_days"),
        sa.CheckConstraint("per_user_limit BETWEEN 1 AND 1000", name="ck_promo_campaigns_per_user_limit"),
        sa.CheckConstraint("max_total_uses IS NULL OR used_total <= max_total_uses",
                           name="ck_promo_campaigns_used_total_within_budget"),
    )


def codes_0003(metadata: sa.MetaData, name: str, keys: bool) -> sa.Table:
    return sa.Table(
        name, metadata,
        _id(),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("code_prefix", sa.String(4), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paused_reason", sa.String(32)),
        sa.Column("max_total_uses", sa.Integer),
        sa.Column("used_total", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("campaign_name", sa.String(200), nullable=False),
        sa.Column("promo_type", sa.String(20), nullable=False),
        sa.Column("target_scope", sa.String(32), nullable=False),
        sa.Column("valid_from", Timestamp, nullable=False),
        sa.Column("valid_until", Timestamp),
        *_code_checks("promo_codes", ["PREMIUM_GRANT", "PERCENT_DISCOUNT", "STARS_DISCOUNT"]),
        sa.CheckConstraint("paused_reason IS NULL OR status = 'PAUSED'",
                           name="ck_promo_codes_paused_reason_only_when_paused"),
        sa.CheckConstraint("max_total_uses IS NULL OR used_total <= max_total_uses",
                           name="ck_promo_codes_used_total_within_capacity"),
        *_keys(keys, CODES_KEYS_0003),
    )


def codes_0002(metadata: sa.MetaData, name: str, keys: bool) -> sa.Table:
    return sa.Table(
        name, metadata,
        _id(),
        sa.Column("campaign_name", sa.String(200), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("code_prefix", sa.String(4), nullable=False),
        sa.Column("promo_type", sa.String(20), nullable=False),
        sa.Column("grant_plan_code", sa.String(64)),
        sa.Column("grant_days", sa.Integer),
        sa.Column("discount_percent", sa.Integer),
        sa.Column("applicable_products", Json, nullable=False),
        sa.Column("target_scope", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paused_reason", sa.String(32)),
        sa.Column("valid_from", Timestamp, nullable=False),
        sa.Column("valid_until", Timestamp),
        sa.Column("max_total_uses", sa.Integer),
        sa.Column("used_total", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        *_code_checks("promo_codes", ["PREMIUM_GRANT", "PERCENT_DISCOUNT"]),
        sa.CheckConstraint("discount_percent IS NULL OR discount_percent BETWEEN 1 AND 99",
                           name="ck_promo_codes_discount_percent"),
        sa.CheckConstraint("max_total_uses IS NULL OR used_total <= max_total_uses",
                           name="ck_promo_codes_used_total_within_capacity"),
        *_keys(keys, CODES_KEYS_0002),
    )


def redemptions_0003(metadata: sa.MetaData, name: str, keys: bool) -> sa.Table:
    return sa.Table(
        name, metadata,
        _id(),
        sa.Column("promo_code_id", BigId, nullable=False),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("discount_percent", sa.Integer),
        sa.Column("discount_stars", sa.Integer),
        sa.Column("reserved_until", Timestamp),
        sa.Column("purchase_id", BigId),
        sa.Column("applied_purchase_id", BigId),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp),
        sa.Column("user_slot", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.CheckConstraint(_in("status", _REDEMPTION_STATUSES), name="ck_promo_redemptions_status"),
        sa.CheckConstraint("user_slot >= 1", name="ck_promo_redemptions_user_slot_positive"),
        *_keys(keys, REDEMPTIONS_KEYS_0003),
    )


def redemptions_0002(metadata: sa.MetaData, name: str, keys: bool) -> sa.Table:
    return sa.Table(
        name, metadata,
        _id(),
        sa.Column("promo_code_id", BigId, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("discount_percent", sa.Integer),
        sa.Column("reserved_until", Timestamp),
        sa.Column("purchase_id", BigId),
        sa.Column("applied_purchase_id", BigId),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp),
        sa.CheckConstraint(_in("status", _REDEMPTION_STATUSES), name="ck_promo_redemptions_status"),
        *_keys(keys, REDEMPTIONS_KEYS_0002),
    )


def attempts_0003(metadata: sa.MetaData, name: str, keys: bool) -> sa.Table:
    return sa.Table(
        name, metadata,
        _id(),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("normalized_code_hash", sa.String(64)),
        sa.Column("code_prefix", sa.String(4)),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("attempted_at", Timestamp, nullable=False),
        sa.Column("campaign_id", sa.BigInteger),
        sa.CheckConstraint(_in("result", ["ACCEPTED", "INVALID", "PAUSED", "EXPIRED", "NOT_APPLICABLE", "DEPLETED",
                                          "ALREADY_USED", "RATE_LIMITED"]), name="ck_promo_attempts_result"),
        *_keys(keys, ATTEMPTS_KEYS),
    )


# Keys of a rebuilt table: (kind, name, columns, referred table). On SQLite they are part of CREATE TABLE; on
# PostgreSQL they are added after the load and the rename.
Key = tuple[str, str, list[str], str | None]
CODES_KEYS_0003: list[Key] = [
    ("pk", "pk_promo_codes", ["id"], None),
    ("uq", "uq_promo_codes_code_hash", ["code_hash"], None),
    ("fk", "fk_promo_codes_campaign_id_promo_campaigns", ["campaign_id"], "promo_campaigns"),
]
CODES_KEYS_0002: list[Key] = [
    ("pk", "pk_promo_codes", ["id"], None),
    ("uq", "uq_promo_codes_code_hash", ["code_hash"], None),
]
REDEMPTIONS_KEYS_0003: list[Key] = [
    ("pk", "pk_promo_redemptions", ["id"], None),
    ("uq", "uq_promo_redemptions_idempotency_key", ["idempotency_key"], None),
    ("fk", "fk_promo_redemptions_promo_code_id_promo_codes", ["promo_code_id"], "promo_codes"),
    ("fk", "fk_promo_redemptions_campaign_id_promo_campaigns", ["campaign_id"], "promo_campaigns"),
]
REDEMPTIONS_KEYS_0002: list[Key] = [
    ("pk", "pk_promo_redemptions", ["id"], None),
    ("uq", "uq_promo_redemptions_idempotency_key", ["idempotency_key"], None),
    ("fk", "fk_promo_redemptions_promo_code_id_promo_codes", ["promo_code_id"], "promo_codes"),
]
ATTEMPTS_KEYS: list[Key] = [("pk", "pk_promo_attempts", ["id"], None)]
PURCHASES_FK = "fk_purchases_promo_redemption_id_promo_redemptions"


def _keys(keys: bool, definitions: list[Key]) -> list[sa.Constraint]:
    if not keys:
        return []
    out: list[sa.Constraint] = []
    for kind, name, columns, referred in definitions:
        if kind == "pk":
            out.append(sa.PrimaryKeyConstraint(*columns, name=name))
        elif kind == "uq":
            out.append(sa.UniqueConstraint(*columns, name=name))
        else:
            out.append(sa.ForeignKeyConstraint(columns, [f"{referred}.id"], name=name))
    return out


# Indexes: (name, table, columns, unique, where).
Index = tuple[str, str, list[str], bool, str | None]
CAMPAIGNS_INDEXES: list[Index] = [
    ("ix_promo_campaigns_status_valid_until", "promo_campaigns", ["status", "valid_until"], False, None),
]
CODES_INDEXES_0003: list[Index] = [
    ("ix_promo_codes_campaign_id_status", "promo_codes", ["campaign_id", "status"], False, None),
    ("ix_promo_codes_code_prefix_campaign_id", "promo_codes", ["code_prefix", "campaign_id"], False, None),
    ("ix_promo_codes_used_up", "promo_codes", ["id"], False,
     "status = 'ACTIVE' AND max_total_uses IS NOT NULL AND used_total >= max_total_uses"),
]
CODES_INDEXES_0002: list[Index] = [
    ("ix_promo_codes_code_prefix_status", "promo_codes", ["code_prefix", "status"], False, None),
    ("ix_promo_codes_status_valid_until", "promo_codes", ["status", "valid_until"], False, None),
]
_REDEMPTIONS_INDEXES_COMMON: list[Index] = [
    ("ix_promo_redemptions_created_at", "promo_redemptions", ["created_at"], False, None),
    ("ix_promo_redemptions_reserved_until", "promo_redemptions", ["reserved_until"], False, "status = 'RESERVED'"),
    ("uq_promo_redemptions_live_per_user", "promo_redemptions", ["promo_code_id", "user_id"], True,
     "status <> 'EXPIRED'"),
]
REDEMPTIONS_INDEXES_0003: list[Index] = [
    *_REDEMPTIONS_INDEXES_COMMON,
    ("uq_promo_redemptions_user_slot", "promo_redemptions", ["campaign_id", "user_id", "user_slot"], True,
     "status <> 'EXPIRED'"),
    ("ix_promo_redemptions_campaign_id_status", "promo_redemptions", ["campaign_id", "status"], False, None),
    ("ix_promo_redemptions_user_id_id", "promo_redemptions", ["user_id", "id"], False, None),
]
REDEMPTIONS_INDEXES_0002 = _REDEMPTIONS_INDEXES_COMMON
ATTEMPTS_CAMPAIGN_INDEX: Index = ("ix_promo_attempts_campaign_id_attempted_at", "promo_attempts",
                                  ["campaign_id", "attempted_at"], False, "campaign_id IS NOT NULL")
ATTEMPTS_INDEXES_0003: list[Index] = [
    ("ix_promo_attempts_user_id_attempted_at", "promo_attempts", ["user_id", "attempted_at"], False, None),
    ("ix_promo_attempts_window", "promo_attempts",
     ["attempted_at", "result", "normalized_code_hash", "user_id", "code_prefix"], False, None),
    ATTEMPTS_CAMPAIGN_INDEX,
]
AUDIT_INDEXES: list[Index] = [
    ("ix_audit_log_action_id", "audit_log", ["action", "id"], False, None),
    ("ix_audit_log_actor_id", "audit_log", ["actor", "id"], False, None),
    ("ix_audit_log_target_type_target_id_id", "audit_log", ["target_type", "target_id", "id"], False, None),
]


def _create_index(index: Index) -> None:
    name, table, columns, unique, where = index
    condition = sa.text(where) if where else None
    op.create_index(name, table, columns, unique=unique, postgresql_where=condition, sqlite_where=condition)


def _drop_index(index: Index) -> None:
    op.drop_index(index[0], table_name=index[1])


# -- rebuilding a table --------------------------------------------------------------------------------------

TableShape = Callable[[sa.MetaData, str, bool], sa.Table]


class Rebuild:
    """One table rebuilt into a new shape: created as ``_m0003_<name>`` (keys on SQLite only), loaded with
    ``INSERT ... SELECT``, then, in ``_swap``, the old table is dropped and the new one takes the name."""

    def __init__(self, name: str, shape: TableShape, keys: list[Key], indexes: list[Index]) -> None:
        self.name, self.shape, self.keys, self.indexes = name, shape, keys, indexes
        self.staging = STAGING + name

    def create(self) -> None:
        metadata = sa.MetaData()
        for referred in {referred for _, _, _, referred in self.keys if referred is not None}:
            sa.Table(referred, metadata, sa.Column("id", BigId, primary_key=True))  # what a foreign key names
        self.shape(metadata, self.staging, not _is_postgres()).create(op.get_bind())

    def load(self, select_sql: str) -> None:
        columns = [column.name for column in self.shape(sa.MetaData(), self.staging, False).columns]
        _run(f"INSERT INTO {self.staging} ({', '.join(columns)}) {select_sql}")


def _swap(rebuilds: Sequence[Rebuild], foreign_keys_into: Sequence[tuple[str, str, str, str]]) -> None:
    """Drop the old tables (dependents first: ``rebuilds`` in load order, dropped in reverse) and give the
    staging tables their names; on PostgreSQL then add keys, identity positions and indexes. ``foreign_keys_into``:
    foreign keys of tables that stay (name, table, column, referred table), dropped before and added after."""
    postgres = _is_postgres()
    positions: dict[str, int] = {}
    if postgres:
        for name, table, _, _ in foreign_keys_into:
            op.drop_constraint(name, table, type_="foreignkey")
        for rebuild in rebuilds:
            # The old sequence's position: ids handed out once are never handed out again.
            positions[rebuild.name] = int(_run(
                f"SELECT last_value FROM {_sequence(rebuild.name)}").scalar_one())
    for rebuild in reversed(rebuilds):
        op.drop_table(rebuild.name)
    for rebuild in rebuilds:
        op.rename_table(rebuild.staging, rebuild.name)
    if postgres:
        for rebuild in rebuilds:
            _run(f"ALTER SEQUENCE {_sequence(rebuild.name)} RENAME TO {rebuild.name}_id_seq")
            _run(f"SELECT setval('{rebuild.name}_id_seq', greatest(CAST(:position AS bigint), "
                 f"(SELECT coalesce(max(id), 1) FROM {rebuild.name})))", position=positions[rebuild.name])
            for kind, key_name, columns, _ in rebuild.keys:
                if kind == "pk":
                    op.create_primary_key(key_name, rebuild.name, columns)
                elif kind == "uq":
                    op.create_unique_constraint(key_name, rebuild.name, columns)
        for rebuild in rebuilds:
            for kind, key_name, columns, referred in rebuild.keys:
                if kind == "fk":
                    assert referred is not None
                    op.create_foreign_key(key_name, rebuild.name, referred, columns, ["id"])
        for name, table, column, referred in foreign_keys_into:
            op.create_foreign_key(name, table, referred, [column], ["id"])
    for rebuild in rebuilds:
        for index in rebuild.indexes:
            _create_index(index)


def _sequence(table: str) -> str:
    return str(_run(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar_one())


def _refuse(problems: list[str], what: str) -> None:
    if problems:
        raise RuntimeError(f"{what}:\n- " + "\n- ".join(problems))


def _ids(sql: str, limit: int = 10) -> list[Any]:
    return [row[0] for row in _run(f"{sql} ORDER BY 1 LIMIT {limit}")]


def _tune_postgres() -> None:
    """Room for the migration's sorts, hash joins and index builds (this transaction only)."""
    if _is_postgres():
        _run("SET LOCAL work_mem = '256MB'")
        _run("SET LOCAL maintenance_work_mem = '512MB'")


def _check_sqlite_foreign_keys_off() -> None:
    """A rebuild drops tables other tables refer to: SQLite must run it with its foreign keys off (env.py does;
    the PRAGMA is a no-op inside a transaction, so it must be off before it begins)."""
    if not _is_postgres() and _run("PRAGMA foreign_keys").scalar_one():
        raise RuntimeError("SQLite foreign keys are on: run this migration through alembic/env.py "
                           "(`starpromo db upgrade`), which switches them off for the run")


def _analyze(*tables: str) -> None:
    """Fresh statistics for the rebuilt tables: a plan made on an unanalyzed table of 1,000,000 rows is a
    sequential scan."""
    for table in tables:
        _run(f"ANALYZE {table}")


# -- upgrade -----------------------------------------------------------------------------------------------

# The terms that make code rows one campaign (with the name); the first five are NOT NULL in 0002. A nullable
# one is compared NULL-safe, and on PostgreSQL also as ``coalesce(term, stand-in)``: a plain equality the hash join
# can take as a key (two campaigns of one name that differ only in a nullable term would otherwise share one hash
# bucket, and every code row would be checked against each of them).
_TERMS_NOT_NULL = ["campaign_name", "promo_type", "applicable_products", "target_scope", "valid_from"]
_TERMS_NULLABLE = {"grant_plan_code": "''", "grant_days": "-1", "discount_percent": "-1",
                   "valid_until": "'-infinity'::timestamptz"}


def _same_terms(code: str, campaign: str) -> str:
    """The join of a code row to its group: equal terms, NULLs equal."""
    equal = [f"{code}.{term} = {campaign}.{term}" for term in _TERMS_NOT_NULL]
    if not _is_postgres():
        return " AND ".join(equal + [f"{code}.{term} IS {campaign}.{term}" for term in _TERMS_NULLABLE])
    for term, stand_in in _TERMS_NULLABLE.items():
        equal.append(f"coalesce({code}.{term}, {stand_in}) = coalesce({campaign}.{term}, {stand_in})")
        equal.append(f"{code}.{term} IS NOT DISTINCT FROM {campaign}.{term}")
    return " AND ".join(equal)


def upgrade() -> None:
    _check_sqlite_foreign_keys_off()
    _tune_postgres()
    _refuse(_upgrade_problems(), "cannot migrate to campaigns: code rows break a rule of the new constraints")

    # One row per group of code rows with the same name and terms (GROUP BY takes NULLs as equal, as the
    # grouping must): its campaign id (in the order of the groups' first codes), the rank of the group among the
    # groups of its name, and the figures summed over its codes.
    terms = ", ".join([*_TERMS_NOT_NULL, *_TERMS_NULLABLE])
    _run(f"""
        CREATE TEMPORARY TABLE {STAGING}campaigns AS
        SELECT row_number() OVER (ORDER BY first_code_id) AS campaign_id,
               row_number() OVER (PARTITION BY campaign_name ORDER BY first_code_id) AS name_rank,
               campaign_name AS name, {terms}, first_code_id, used_total, all_expired, created_at, updated_at
        FROM (SELECT {terms}, min(id) AS first_code_id, sum(used_total) AS used_total,
                     min(CASE WHEN status = 'EXPIRED' THEN 1 ELSE 0 END) AS all_expired,
                     min(created_at) AS created_at, max(updated_at) AS updated_at
              FROM promo_codes GROUP BY {terms}) AS grouped
    """)
    _run(f"CREATE INDEX {STAGING}campaigns_name ON {STAGING}campaigns (name)")
    _analyze(f"{STAGING}campaigns")  # a temporary table is never analyzed on its own
    _name_campaigns()

    campaigns_0003(sa.MetaData()).create(op.get_bind())
    for index in CAMPAIGNS_INDEXES:
        _create_index(index)
    _run(f"""
        INSERT INTO promo_campaigns (id, name, promo_type, grant_plan_code, grant_days, discount_percent,
                                     discount_stars, applicable_products, target_scope, status, paused_reason,
                                     valid_from, valid_until, max_total_uses, per_user_limit, used_total,
                                     created_at, updated_at)
        SELECT campaign_id, name, promo_type, grant_plan_code, grant_days, discount_percent, NULL,
               applicable_products, target_scope, CASE WHEN all_expired = 1 THEN 'EXPIRED' ELSE 'ACTIVE' END, NULL,
               valid_from, valid_until, NULL, 1, used_total, created_at, updated_at
        FROM {STAGING}campaigns
    """)
    if _is_postgres():
        _run("SELECT setval(pg_get_serial_sequence('promo_campaigns', 'id'), "
             "(SELECT coalesce(max(id), 1) FROM promo_campaigns))")

    codes = Rebuild("promo_codes", codes_0003, CODES_KEYS_0003, CODES_INDEXES_0003)
    redemptions = Rebuild("promo_redemptions", redemptions_0003, REDEMPTIONS_KEYS_0003, REDEMPTIONS_INDEXES_0003)
    attempts = Rebuild("promo_attempts", attempts_0003, ATTEMPTS_KEYS, ATTEMPTS_INDEXES_0003)
    codes.create()
    codes.load(f"""
        SELECT code.id, campaign.campaign_id, code.code_hash, code.code_prefix, code.status, code.paused_reason,
               code.max_total_uses, code.used_total, code.created_at, code.updated_at, campaign.name,
               code.promo_type, code.target_scope, code.valid_from, code.valid_until
        FROM promo_codes AS code JOIN {STAGING}campaigns AS campaign ON {_same_terms("code", "campaign")}
    """)
    redemptions.create()
    # The user's live redemptions in a campaign take the slots 1, 2, ... by id; EXPIRED ones hold no slot (1).
    live = "CASE WHEN redemption.status = 'EXPIRED' THEN 0 ELSE 1 END"
    redemptions.load(f"""
        SELECT redemption.id, redemption.promo_code_id, code.campaign_id, redemption.user_id,
               redemption.idempotency_key, redemption.status, redemption.discount_percent, NULL,
               redemption.reserved_until, redemption.purchase_id, redemption.applied_purchase_id,
               redemption.created_at, redemption.updated_at, redemption.revoked_at,
               CASE WHEN redemption.status = 'EXPIRED' THEN 1
                    ELSE row_number() OVER (PARTITION BY code.campaign_id, redemption.user_id, {live}
                                            ORDER BY redemption.id) END
        FROM promo_redemptions AS redemption JOIN {codes.staging} AS code ON code.id = redemption.promo_code_id
    """)
    # Attempts naming a stored code get its campaign: one hash join, written once into the new table (an UPDATE
    # of half a million attempt rows in place took three times as long).
    attempts.create()
    attempts.load(f"""
        SELECT attempt.id, attempt.user_id, attempt.normalized_code_hash, attempt.code_prefix, attempt.result,
               attempt.attempted_at, code.campaign_id
        FROM promo_attempts AS attempt LEFT JOIN {codes.staging} AS code
             ON code.code_hash = attempt.normalized_code_hash
    """)
    _swap([codes, redemptions, attempts],
          [(PURCHASES_FK, "purchases", "promo_redemption_id", "promo_redemptions")])

    op.create_table(
        "audit_log",
        sa.Column("id", BigId, sa.Identity(always=False), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("details", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    for index in AUDIT_INDEXES:
        _create_index(index)

    _run(f"DROP TABLE {STAGING}campaigns")
    _analyze("promo_campaigns", "promo_codes", "promo_redemptions", "promo_attempts")


def _upgrade_problems() -> list[str]:
    problems = []
    bad_days = _ids("SELECT id FROM promo_codes WHERE grant_days IS NOT NULL AND grant_days NOT BETWEEN 1 AND 3650")
    if bad_days:
        problems.append(f"grant_days outside 1..3650 on promo_codes {bad_days}")
    bad_reason = _ids("SELECT id FROM promo_codes WHERE paused_reason IS NOT NULL AND status <> 'PAUSED'")
    if bad_reason:
        problems.append(f"paused_reason on codes that are not PAUSED: promo_codes {bad_reason}")
    return problems


def _name_campaigns() -> None:
    """The first group of a name keeps it; the others get `` (rank)``, and while a suffixed name equals another
    campaign's, `` (rank.round)`` -- the campaign that keeps a contested name is the one with the name as it was,
    else the lowest campaign id."""
    table = f"{STAGING}campaigns"

    def suffixed(suffix_sql: str) -> str:
        return f"substr(campaign_name, 1, {NAME_LENGTH} - length({suffix_sql})) || {suffix_sql}"

    rank = "CAST(name_rank AS VARCHAR(20))"
    first_suffix = suffixed(f"' (' || {rank} || ')'")
    _run(f"UPDATE {table} SET name = {first_suffix} WHERE name_rank > 1")
    for attempt in range(1, 50):
        next_suffix = suffixed(f"' (' || {rank} || '.{attempt})'")
        renamed = _run(f"""
            UPDATE {table} SET name = {next_suffix}
            WHERE name_rank > 1 AND EXISTS (
                SELECT 1 FROM {table} AS other
                WHERE other.name = {table}.name AND other.campaign_id <> {table}.campaign_id
                  AND (other.name_rank = 1 OR other.campaign_id < {table}.campaign_id))
        """).rowcount
        if not renamed:
            return
    raise RuntimeError("cannot give every campaign a unique name")


# -- downgrade ---------------------------------------------------------------------------------------------

def downgrade() -> None:
    _check_sqlite_foreign_keys_off()
    _tune_postgres()
    _refuse(_downgrade_problems(), "cannot downgrade to 0002: data the 0002 schema cannot hold (nothing changed)")

    _drop_index(ATTEMPTS_CAMPAIGN_INDEX)
    op.drop_column("promo_attempts", "campaign_id")
    for index in AUDIT_INDEXES:
        _drop_index(index)
    op.drop_table("audit_log")

    codes = Rebuild("promo_codes", codes_0002, CODES_KEYS_0002, CODES_INDEXES_0002)
    redemptions = Rebuild("promo_redemptions", redemptions_0002, REDEMPTIONS_KEYS_0002, REDEMPTIONS_INDEXES_0002)
    codes.create()
    codes.load("""
        SELECT code.id, campaign.name, code.code_hash, code.code_prefix, campaign.promo_type,
               campaign.grant_plan_code, campaign.grant_days, campaign.discount_percent, campaign.applicable_products,
               campaign.target_scope, code.status, code.paused_reason, campaign.valid_from, campaign.valid_until,
               code.max_total_uses, code.used_total, code.created_at, code.updated_at
        FROM promo_codes AS code JOIN promo_campaigns AS campaign ON campaign.id = code.campaign_id
    """)
    redemptions.create()
    redemptions.load("""
        SELECT id, promo_code_id, user_id, idempotency_key, status, discount_percent, reserved_until, purchase_id,
               applied_purchase_id, created_at, updated_at, revoked_at
        FROM promo_redemptions
    """)
    _swap([codes, redemptions], [(PURCHASES_FK, "purchases", "promo_redemption_id", "promo_redemptions")])
    for index in CAMPAIGNS_INDEXES:
        _drop_index(index)
    op.drop_table("promo_campaigns")
    _analyze("promo_codes", "promo_redemptions")


def _downgrade_problems() -> list[str]:
    checks = [
        ("STARS_DISCOUNT campaigns (0002 knows PREMIUM_GRANT and PERCENT_DISCOUNT)",
         "SELECT id FROM promo_campaigns WHERE promo_type = 'STARS_DISCOUNT'"),
        ("campaigns with a budget (max_total_uses)", "SELECT id FROM promo_campaigns WHERE max_total_uses IS NOT NULL"),
        ("campaigns with a per_user_limit other than 1", "SELECT id FROM promo_campaigns WHERE per_user_limit <> 1"),
        ("PAUSED or DEPLETED campaigns (their codes would read as redeemable)",
         "SELECT id FROM promo_campaigns WHERE status IN ('PAUSED', 'DEPLETED')"),
        ("EXPIRED campaigns with ACTIVE or PAUSED codes",
         "SELECT DISTINCT campaign.id FROM promo_campaigns AS campaign JOIN promo_codes AS code "
         "ON code.campaign_id = campaign.id WHERE campaign.status = 'EXPIRED' AND code.status IN ('ACTIVE', 'PAUSED')"),
        ("campaigns without codes",
         "SELECT id FROM promo_campaigns AS campaign WHERE NOT EXISTS "
         "(SELECT 1 FROM promo_codes AS code WHERE code.campaign_id = campaign.id)"),
        ("audit_log entries (export and delete them first if losing them is acceptable)",
         "SELECT id FROM audit_log"),
    ]
    problems = []
    for what, sql in checks:
        found = _ids(sql)
        if found:
            problems.append(f"{what}: ids {found}{' ...' if len(found) == 10 else ''}")
    return problems
