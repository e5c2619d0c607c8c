"""``purchases`` (port ``Purchases``): premium plans bought for Telegram Stars, with or without a promo
reservation. The database keeps one open purchase per ``(user_id, product_code)`` and a unique
``telegram_payment_charge_id``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.sql._base import ColumnValues, SqlRepository, hour_bucket, hour_start, in_chunks
from adapters.sql.tables import promo_redemptions, purchases
from domain.model import OPEN_PURCHASE_STATUSES, HourCount, PaymentTotals, Purchase, PurchaseStatus, RedemptionStatus

_OPEN = sorted(status.value for status in OPEN_PURCHASE_STATUSES)


def purchase_from_row(row: ColumnValues) -> Purchase:
    return Purchase(
        id=row["id"],
        user_id=row["user_id"],
        product_code=row["product_code"],
        base_stars_amount=row["base_stars_amount"],
        discount_stars_amount=row["discount_stars_amount"],
        final_stars_amount=row["final_stars_amount"],
        promo_redemption_id=row["promo_redemption_id"],
        status=PurchaseStatus(row["status"]),
        telegram_payment_charge_id=row["telegram_payment_charge_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        paid_at=row["paid_at"],
        refunded_at=row["refunded_at"],
        review_reason=row["review_reason"],
    )


class SqlPurchases(SqlRepository):
    table = purchases

    def _one(self, statement: sa.Executable) -> Purchase | None:
        row = self._execute(statement).first()
        return purchase_from_row(row._mapping) if row is not None else None

    def _many(self, statement: sa.Executable) -> list[Purchase]:
        return [purchase_from_row(row._mapping) for row in self._connection.execute(statement)]

    def add(self, purchase: Purchase) -> Purchase:
        values = {
            "user_id": purchase.user_id,
            "product_code": purchase.product_code,
            "base_stars_amount": purchase.base_stars_amount,
            "discount_stars_amount": purchase.discount_stars_amount,
            "final_stars_amount": purchase.final_stars_amount,
            "promo_redemption_id": purchase.promo_redemption_id,
            "status": purchase.status.value,
            "telegram_payment_charge_id": purchase.telegram_payment_charge_id,
            "created_at": purchase.created_at,
            "updated_at": purchase.updated_at,
            "paid_at": purchase.paid_at,
            "refunded_at": purchase.refunded_at,
            "review_reason": purchase.review_reason,
        }
        if purchase.promo_redemption_id is not None:  # its redemption's campaign (copied: read by index)
            values["campaign_id"] = (sa.select(promo_redemptions.c.campaign_id)
                                     .where(promo_redemptions.c.id == purchase.promo_redemption_id)
                                     .scalar_subquery())
        row = self._execute(sa.insert(self.table).values(values).returning(self.table)).one()
        return purchase_from_row(row._mapping)

    def get(self, purchase_id: int) -> Purchase | None:
        return self._one(sa.select(self.table).where(self.table.c.id == purchase_id))

    def get_open(self, user_id: int, product_code: str) -> Purchase | None:
        table = self.table
        return self._one(sa.select(table).where(table.c.user_id == user_id, table.c.product_code == product_code,
                                                table.c.status.in_(_OPEN)))

    def get_by_charge_id(self, telegram_payment_charge_id: str) -> Purchase | None:
        table = self.table
        return self._one(sa.select(table).where(table.c.telegram_payment_charge_id == telegram_payment_charge_id))

    def get_by_charge_ids(self, telegram_payment_charge_ids: Sequence[str]) -> dict[str, Purchase]:
        table = self.table
        found: dict[str, Purchase] = {}
        for chunk in in_chunks(sorted(set(telegram_payment_charge_ids))):
            statement = sa.select(table).where(table.c.telegram_payment_charge_id.in_(chunk))
            for row in self._execute(statement):
                p = purchase_from_row(row._mapping)
                if p.telegram_payment_charge_id is not None:
                    found[p.telegram_payment_charge_id] = p
        return found

    def user_has_paid(self, user_id: int) -> bool:
        table = self.table
        statement = sa.select(sa.exists().where(
            table.c.user_id == user_id,
            table.c.status.in_([PurchaseStatus.PAID.value, PurchaseStatus.REFUNDED.value])))
        return bool(self._connection.execute(statement).scalar_one())

    def set_status(
        self,
        purchase_id: int,
        expected: Sequence[PurchaseStatus],
        status: PurchaseStatus,
        now: datetime,
        telegram_payment_charge_id: str | None = None,
    ) -> Purchase | None:
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if telegram_payment_charge_id is not None:
            values["telegram_payment_charge_id"] = telegram_payment_charge_id
        if status is PurchaseStatus.PAID:
            values["paid_at"] = now
        if status is PurchaseStatus.REFUNDED:
            values["refunded_at"] = now
        table = self.table
        return self._one(sa.update(table)
                         .where(table.c.id == purchase_id, table.c.status.in_([s.value for s in expected]))
                         .values(values).returning(table))

    def mark_review(self, purchase_id: int, reason: str, now: datetime) -> Purchase | None:
        table = self.table
        return self._one(sa.update(table).where(table.c.id == purchase_id)
                         .values(review_reason=reason, updated_at=now).returning(table))

    def stale_open(self, cutoff: datetime, limit: int) -> list[Purchase]:
        table = self.table
        statement = (sa.select(table).where(table.c.status.in_(_OPEN), table.c.created_at < cutoff)
                     .order_by(table.c.id).limit(limit))
        return self._many(self._skip_locked(statement, table))

    def refunded_needing_rollback(self, limit: int) -> list[Purchase]:
        table, redemptions = self.table, promo_redemptions
        statement = (
            sa.select(table).join(redemptions, redemptions.c.id == table.c.promo_redemption_id)
            .where(table.c.status == PurchaseStatus.REFUNDED.value,
                   redemptions.c.status != RedemptionStatus.REVOKED.value,
                   redemptions.c.applied_purchase_id == table.c.id)
            .order_by(table.c.id).limit(limit)
        )
        return self._many(self._skip_locked(statement, table))

    def in_window(self, since: datetime, until: datetime) -> list[Purchase]:
        table = self.table
        return self._many(sa.select(table).where(table.c.created_at >= since, table.c.created_at < until)
                          .order_by(table.c.id))

    def count_in_review(self) -> int:
        table = self.table
        statement = sa.select(sa.func.count()).select_from(table).where(table.c.review_reason.is_not(None))
        return int(self._connection.execute(statement).scalar_one())

    def settled_between(self, since: datetime, until: datetime) -> list[Purchase]:
        table = self.table
        return self._many(sa.select(table).where(sa.or_(
            sa.and_(table.c.paid_at >= since, table.c.paid_at < until),
            sa.and_(table.c.refunded_at >= since, table.c.refunded_at < until),
        )).order_by(table.c.id))

    def flagged_for_review(self, since: datetime, limit: int) -> list[Purchase]:
        table = self.table
        return self._many(sa.select(table).where(table.c.review_reason.is_not(None), table.c.updated_at >= since)
                          .order_by(table.c.id).limit(limit))

    def totals(self, since: datetime, until: datetime) -> PaymentTotals:
        table = self.table
        paid = sa.and_(table.c.paid_at >= since, table.c.paid_at < until)
        refunded = sa.and_(table.c.refunded_at >= since, table.c.refunded_at < until)
        failed = sa.and_(table.c.status == PurchaseStatus.FAILED.value, table.c.updated_at >= since,
                         table.c.updated_at < until)

        def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
            return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

        def stars(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
            return sa.func.coalesce(sa.func.sum(sa.case((condition, table.c.final_stars_amount), else_=0)), 0)

        # One pass over the rows any of the three windows can touch (each served by its own index).
        statement = (sa.select(count(paid), stars(paid), count(refunded), stars(refunded), count(failed),
                               stars(failed))
                     .where(sa.or_(paid, refunded, failed)))
        row = self._connection.execute(statement).one()
        return PaymentTotals(*(int(value) for value in row))

    def for_user(self, user_id: int, limit: int) -> list[Purchase]:
        table = self.table
        return self._many(sa.select(table).where(table.c.user_id == user_id)
                          .order_by(table.c.created_at.desc(), table.c.id.desc()).limit(max(limit, 0)))

    def _paid_since(self, since: datetime, campaign_id: int | None) -> sa.Select[Any]:
        """The purchases paid at or after ``since``; with ``campaign_id``, only those made with a redemption of
        that campaign (``purchases.campaign_id``, its redemption's, by the index with ``paid_at``)."""
        table = self.table
        statement = sa.select().select_from(table).where(table.c.paid_at >= since)
        if campaign_id is not None:
            statement = statement.where(table.c.campaign_id == campaign_id)
        return statement

    def hourly_revenue(self, since: datetime, until: datetime, campaign_id: int | None = None) -> list[HourCount]:
        table = self.table
        hour = hour_bucket(table.c.paid_at, self._postgres).label("hour")
        statement = (self._paid_since(since, campaign_id)
                     .add_columns(hour, sa.func.coalesce(sa.func.sum(table.c.final_stars_amount), 0))
                     .where(table.c.paid_at < until).group_by(hour).order_by(hour))
        return [HourCount(hour_start(bucket), int(stars)) for bucket, stars in self._connection.execute(statement)]

    def paid_in_campaign(self, campaign_id: int, since: datetime) -> tuple[int, int, int]:
        table = self.table
        statement = self._paid_since(since, campaign_id).add_columns(
            sa.func.count(), sa.func.coalesce(sa.func.sum(table.c.final_stars_amount), 0),
            sa.func.coalesce(sa.func.sum(table.c.discount_stars_amount), 0))
        count, final_stars, discount_stars = self._connection.execute(statement).one()
        return int(count), int(final_stars), int(discount_stars)
