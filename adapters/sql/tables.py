"""SQLAlchemy 2 Core tables: the exact names of SPEC sections 3-5, one metadata for PostgreSQL and SQLite.

The database enforces the SPEC 3-5 invariants itself: a unique campaign ``name`` and ``code_hash``, counters
within their caps (CHECK), a unique ``idempotency_key``, one live redemption per ``(promo_code_id, user_id)``
and per ``(campaign_id, user_id, user_slot)`` (partial unique indexes ``WHERE status <> 'EXPIRED'``),
one open purchase per ``(user_id, product_code)`` and a unique ``telegram_payment_charge_id``.
Constraint names come from the naming convention, so errors map back to domain exceptions by name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from domain.model import (
    CampaignStatus,
    LedgerSource,
    PausedReason,
    PromoType,
    PurchaseStatus,
    RedeemResult,
    RedemptionStatus,
    TargetScope,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out: ``timestamptz`` on PostgreSQL; on SQLite (no time zones) the UTC
    wall time as text in one fixed format, so text comparison is time comparison."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Integer ids: BIGINT identity on PostgreSQL, the rowid alias (INTEGER PRIMARY KEY) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


def _partial_index(name: str, *columns: sa.Column[Any], where: str) -> sa.Index:
    """An index over the rows matching ``where``, on PostgreSQL and SQLite alike."""
    return sa.Index(name, *columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, sa.Identity(), primary_key=True)


promo_campaigns = sa.Table(
    "promo_campaigns",
    metadata,
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
    sa.Column("valid_from", UTCDateTime, nullable=False),
    sa.Column("valid_until", UTCDateTime),
    sa.Column("max_total_uses", sa.Integer),
    sa.Column("per_user_limit", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("used_total", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("name"),
    sa.CheckConstraint(_in("promo_type", PromoType), name="promo_type"),
    sa.CheckConstraint(_in("target_scope", TargetScope), name="target_scope"),
    sa.CheckConstraint(_in("status", CampaignStatus), name="status"),
    sa.CheckConstraint(f"paused_reason IS NULL OR {_in('paused_reason', PausedReason)}", name="paused_reason"),
    sa.CheckConstraint("paused_reason IS NULL OR status = 'PAUSED'", name="paused_reason_only_when_paused"),
    sa.CheckConstraint("discount_percent IS NULL OR discount_percent BETWEEN 1 AND 99", name="discount_percent"),
    sa.CheckConstraint("discount_stars IS NULL OR discount_stars BETWEEN 1 AND 1000000", name="discount_stars"),
    sa.CheckConstraint("grant_days IS NULL OR grant_days BETWEEN 1 AND 3650", name="grant_days"),
    sa.CheckConstraint("per_user_limit BETWEEN 1 AND 1000", name="per_user_limit"),
    sa.CheckConstraint("used_total >= 0", name="used_total_not_negative"),
    sa.CheckConstraint("max_total_uses IS NULL OR used_total <= max_total_uses", name="used_total_within_budget"),
)
# Rollover (status + valid_until).
sa.Index(None, promo_campaigns.c.status, promo_campaigns.c.valid_until)

promo_codes = sa.Table(
    "promo_codes",
    metadata,
    _id(),
    sa.Column("campaign_id", BigId, sa.ForeignKey("promo_campaigns.id"), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("code_prefix", sa.String(4), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("paused_reason", sa.String(32)),
    sa.Column("max_total_uses", sa.Integer),
    sa.Column("used_total", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Copies of the campaign's fields (kept equal on every change of the campaign): the runbook queries read
    # promo_codes alone and must show what the system acts on.
    sa.Column("campaign_name", sa.String(200), nullable=False),
    sa.Column("promo_type", sa.String(20), nullable=False),
    sa.Column("target_scope", sa.String(32), nullable=False),
    sa.Column("valid_from", UTCDateTime, nullable=False),
    sa.Column("valid_until", UTCDateTime),
    sa.UniqueConstraint("code_hash"),
    sa.CheckConstraint(_in("promo_type", PromoType), name="promo_type"),
    sa.CheckConstraint(_in("target_scope", TargetScope), name="target_scope"),
    sa.CheckConstraint(_in("status", CampaignStatus), name="status"),
    sa.CheckConstraint(f"paused_reason IS NULL OR {_in('paused_reason', PausedReason)}", name="paused_reason"),
    sa.CheckConstraint("paused_reason IS NULL OR status = 'PAUSED'", name="paused_reason_only_when_paused"),
    sa.CheckConstraint("used_total >= 0", name="used_total_not_negative"),
    sa.CheckConstraint("max_total_uses IS NULL OR used_total <= max_total_uses", name="used_total_within_capacity"),
)
# A campaign's codes by status (counts, listing, cascades); the guard's prefix rule (prefix -> campaigns).
sa.Index(None, promo_codes.c.campaign_id, promo_codes.c.status)
sa.Index(None, promo_codes.c.code_prefix, promo_codes.c.campaign_id)
# Rollover: ACTIVE codes that reached their own cap, without scanning every code.
_partial_index("ix_promo_codes_used_up", promo_codes.c.id,
               where="status = 'ACTIVE' AND max_total_uses IS NOT NULL AND used_total >= max_total_uses")

# A campaign's codes counted by status (migration 0010): the campaign page and list read these rows instead of
# counting the codes (700,000 in a launch). Written in the transaction of every code insert and status change, by
# adapters/sql/code_counts.py; never by the redeem path (a redeem changes no code's status).
promo_code_counts = sa.Table(
    "promo_code_counts",
    metadata,
    sa.Column("campaign_id", BigId, sa.ForeignKey("promo_campaigns.id"), primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("codes", sa.BigInteger, nullable=False),
    sa.CheckConstraint(_in("status", CampaignStatus), name="status"),
    sa.CheckConstraint("codes >= 0", name="codes_not_negative"),
)

promo_redemptions = sa.Table(
    "promo_redemptions",
    metadata,
    _id(),
    sa.Column("promo_code_id", BigId, sa.ForeignKey("promo_codes.id"), nullable=False),
    sa.Column("campaign_id", BigId, sa.ForeignKey("promo_campaigns.id"), nullable=False),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("discount_percent", sa.Integer),
    sa.Column("discount_stars", sa.Integer),
    sa.Column("reserved_until", UTCDateTime),
    sa.Column("purchase_id", BigId),
    sa.Column("applied_purchase_id", BigId),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("user_slot", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.UniqueConstraint("idempotency_key"),
    sa.CheckConstraint(_in("status", RedemptionStatus), name="status"),
    sa.CheckConstraint("user_slot >= 1", name="user_slot_positive"),
)
# One live redemption per user and code: the database, not the code, guarantees it.
sa.Index(
    "uq_promo_redemptions_live_per_user",
    promo_redemptions.c.promo_code_id,
    promo_redemptions.c.user_id,
    unique=True,
    postgresql_where=sa.text("status <> 'EXPIRED'"),
    sqlite_where=sa.text("status <> 'EXPIRED'"),
)
# At most per_user_limit live redemptions per user and campaign: each takes one of the slots 1..per_user_limit,
# and a slot holds one live redemption. No counter row: racing redeems of one user collide on the slot.
sa.Index(
    "uq_promo_redemptions_user_slot",
    promo_redemptions.c.campaign_id,
    promo_redemptions.c.user_id,
    promo_redemptions.c.user_slot,
    unique=True,
    postgresql_where=sa.text("status <> 'EXPIRED'"),
    sqlite_where=sa.text("status <> 'EXPIRED'"),
)
# Reservation expiry: only RESERVED rows, by deadline.
sa.Index(
    "ix_promo_redemptions_reserved_until",
    promo_redemptions.c.reserved_until,
    postgresql_where=sa.text("status = 'RESERVED'"),
    sqlite_where=sa.text("status = 'RESERVED'"),
)
sa.Index(None, promo_redemptions.c.created_at)
# Campaign stats and the support view of one user.
sa.Index(None, promo_redemptions.c.campaign_id, promo_redemptions.c.status)
sa.Index(None, promo_redemptions.c.user_id, promo_redemptions.c.id)
# The ops console's code page: one code's redemptions, newest first (migration 0007).
sa.Index(None, promo_redemptions.c.promo_code_id, promo_redemptions.c.id)

promo_attempts = sa.Table(
    "promo_attempts",
    metadata,
    _id(),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("normalized_code_hash", sa.String(64)),
    sa.Column("code_prefix", sa.String(4)),
    sa.Column("result", sa.String(32), nullable=False),
    sa.Column("attempted_at", UTCDateTime, nullable=False),
    # The code's campaign when the code exists (no foreign key: an attempt is a log line, written on every call).
    sa.Column("campaign_id", sa.BigInteger),
    sa.CheckConstraint(_in("result", [r for r in RedeemResult if r is not RedeemResult.IDEMPOTENCY_KEY_REUSED]),
                       name="result"),
)
# Throttling: one user's trailing window. Guard and dashboard: the time window, covering the grouped columns.
sa.Index(None, promo_attempts.c.user_id, promo_attempts.c.attempted_at)
sa.Index(
    "ix_promo_attempts_window",
    promo_attempts.c.attempted_at,
    promo_attempts.c.result,
    promo_attempts.c.normalized_code_hash,
    promo_attempts.c.user_id,
    promo_attempts.c.code_prefix,
)
# Campaign stats: one campaign's attempts in a window.
_partial_index("ix_promo_attempts_campaign_id_attempted_at", promo_attempts.c.campaign_id,
               promo_attempts.c.attempted_at, where="campaign_id IS NOT NULL")

# The attempts of each complete UTC hour counted by result, once the hour is over (PostgreSQL; migration 0008):
# ``campaign_id`` 0 counts every attempt of the hour, a campaign's id its attempts; a row of campaign -1 marks the
# hour folded (even when it had no attempt). The dashboard and campaign stats read these rows for the folded hours
# of their window and promo_attempts only for the rest (adapters/sql/attempts.py).
promo_attempts_hourly = sa.Table(
    "promo_attempts_hourly",
    metadata,
    sa.Column("campaign_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("result", sa.String(32), primary_key=True),
    sa.Column("attempts", sa.BigInteger, nullable=False),
)

purchases = sa.Table(
    "purchases",
    metadata,
    _id(),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("product_code", sa.String(64), nullable=False),
    sa.Column("base_stars_amount", sa.Integer, nullable=False),
    sa.Column("discount_stars_amount", sa.Integer, nullable=False),
    sa.Column("final_stars_amount", sa.Integer, nullable=False),
    sa.Column("promo_redemption_id", BigId, sa.ForeignKey("promo_redemptions.id")),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("telegram_payment_charge_id", sa.String(255)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("paid_at", UTCDateTime),
    sa.Column("refunded_at", UTCDateTime),
    sa.Column("review_reason", sa.String(500)),
    # The campaign of ``promo_redemption_id`` (copied on insert; a purchase's redemption never changes), so a
    # campaign's payments are read by index (migration 0010). No foreign key: the redemption's already holds.
    sa.Column("campaign_id", BigId),
    sa.UniqueConstraint("telegram_payment_charge_id"),
    sa.CheckConstraint(_in("status", PurchaseStatus), name="status"),
    sa.CheckConstraint("final_stars_amount >= 1", name="final_stars_amount_positive"),
)
sa.Index(
    "uq_purchases_open_per_user_product",
    purchases.c.user_id,
    purchases.c.product_code,
    unique=True,
    postgresql_where=sa.text("status IN ('CREATED', 'INVOICE_SENT')"),
    sqlite_where=sa.text("status IN ('CREATED', 'INVOICE_SENT')"),
)
sa.Index(None, purchases.c.created_at)
sa.Index(None, purchases.c.status, purchases.c.user_id)
# Reconciliation and the dashboard's payments section: what was paid / refunded in a window.
sa.Index(None, purchases.c.paid_at)
sa.Index(None, purchases.c.refunded_at)
_partial_index("ix_purchases_failed_updated_at", purchases.c.updated_at, where="status = 'FAILED'")
_partial_index("ix_purchases_review_updated_at", purchases.c.updated_at, where="review_reason IS NOT NULL")
# The support view of one user (the ops console's user page): the user's purchases, newest first (migration 0009).
sa.Index(None, purchases.c.user_id, purchases.c.created_at)
# A campaign's payments in a window (the campaign page's figures and revenue chart; migration 0010).
sa.Index(None, purchases.c.campaign_id, purchases.c.paid_at)

# Payment differences and unsafe recoveries for a human (issue 10). The unique dedup_key is what makes each
# distinct difference one row and one alert, however many job runs (or racing runs) find it.
payment_reviews = sa.Table(
    "payment_reviews",
    metadata,
    _id(),
    sa.Column("dedup_key", sa.String(128), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("purchase_id", BigId, sa.ForeignKey("purchases.id")),
    sa.Column("telegram_payment_charge_id", sa.String(255)),
    sa.Column("details", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolution_note", sa.String(500)),
    sa.UniqueConstraint("dedup_key"),
)
_partial_index("ix_payment_reviews_open", payment_reviews.c.id, where="resolved_at IS NULL")

# Star transactions that are no purchase payment nor its refund (withdrawals, ads, paid broadcasts, gifts, affiliate
# commissions, paid media, subscriptions, ...): one row per Telegram transaction id and direction (a refund shares
# its payment's id), recorded by the reconciliation job for the dashboard's ``other_movements`` (issue 17).
star_movements = sa.Table(
    "star_movements",
    metadata,
    sa.Column("transaction_id", sa.String(255), primary_key=True),
    sa.Column("outgoing", sa.Boolean, primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("transaction_type", sa.String(64)),
    sa.Column("stars", sa.BigInteger, nullable=False),
    sa.Column("nanostars", sa.Integer, nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("stars >= 0 AND nanostars >= 0 AND nanostars < 1000000000", name="amount_valid"),
)
sa.Index(None, star_movements.c.occurred_at)

# Every change made by a person or a job (SPEC 7 "Audit"): append only, written in the change's transaction.
audit_log = sa.Table(
    "audit_log",
    metadata,
    _id(),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("details", Json, nullable=False),
)
sa.Index(None, audit_log.c.actor, audit_log.c.id)
sa.Index(None, audit_log.c.action, audit_log.c.id)
sa.Index(None, audit_log.c.target_type, audit_log.c.target_id, audit_log.c.id)

entitlements = sa.Table(
    "entitlements",
    metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("plan_code", sa.String(64), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

entitlement_ledger = sa.Table(
    "entitlement_ledger",
    metadata,
    _id(),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("plan_code", sa.String(64), nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("promo_redemption_id", BigId),
    sa.Column("purchase_id", BigId),
    sa.Column("expires_at_after", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("source", LedgerSource), name="source"),
)
sa.Index(None, entitlement_ledger.c.user_id)

processed_updates = sa.Table(
    "processed_updates",
    metadata,
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("processed_at", UTCDateTime, nullable=False),
)
sa.Index(None, processed_updates.c.processed_at)

# The ops console's operators (SPEC 14): unique by ``name_key`` (the name case-folded, so ``Ann`` and ``ann`` are one
# operator); ``password_hash`` is a memory-hard hash, never the password.
ops_operators = sa.Table(
    "ops_operators",
    metadata,
    _id(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("name_key", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(512), nullable=False),
    sa.Column("session_epoch", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("name_key"),
    sa.CheckConstraint("role IN ('admin', 'viewer')", name="role"),
    sa.CheckConstraint("session_epoch >= 0", name="session_epoch_not_negative"),
)

# Refused console sign-ins (SPEC 13 throttling), counted per name and per address over a trailing window.
ops_sign_in_failures = sa.Table(
    "ops_sign_in_failures",
    metadata,
    _id(),
    sa.Column("name_key", sa.String(64), nullable=False),
    sa.Column("address", sa.String(64)),
    sa.Column("at", UTCDateTime, nullable=False),
)
sa.Index(None, ops_sign_in_failures.c.name_key, ops_sign_in_failures.c.at)
sa.Index(None, ops_sign_in_failures.c.address, ops_sign_in_failures.c.at)
sa.Index(None, ops_sign_in_failures.c.at)

# Replies the Telegram bot owes (SPEC 9, issue 17): written in the transaction of the change that caused them and
# delivered from here in ``id`` order per chat. ``dedup_key`` makes the same reply written twice one row; a claim
# leases a chat's oldest PENDING row until ``leased_until``; ``telegram_message_id`` is Telegram's, set with SENT.
telegram_outbox = sa.Table(
    "telegram_outbox",
    metadata,
    _id(),
    sa.Column("chat_id", sa.BigInteger, nullable=False),
    sa.Column("dedup_key", sa.String(128), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("leased_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("telegram_message_id", sa.BigInteger),
    sa.Column("last_error", sa.String(300)),
    sa.UniqueConstraint("dedup_key"),
    sa.CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED')", name="status"),
    sa.CheckConstraint("method IN ('sendMessage', 'sendInvoice')", name="method"),
    sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
)
# The claim: due PENDING rows in order, and "is there an older PENDING row in this chat".
_partial_index("ix_telegram_outbox_pending_due", telegram_outbox.c.next_attempt_at, telegram_outbox.c.id,
               where="status = 'PENDING'")
_partial_index("ix_telegram_outbox_pending_chat", telegram_outbox.c.chat_id, telegram_outbox.c.id,
               where="status = 'PENDING'")
# Housekeeping of SENT rows, and the FAILED ones ops look at.
_partial_index("ix_telegram_outbox_sent_at", telegram_outbox.c.sent_at, where="status = 'SENT'")
_partial_index("ix_telegram_outbox_failed", telegram_outbox.c.id, where="status = 'FAILED'")
