"""The SQL unit of work: one connection, one transaction (re-begun after each commit), closed on exit.

A lost connection (server restart, ``pg_terminate_backend``, network) surfaces as
``domain.errors.StorageUnavailable``: the transaction is gone, so nothing of it was kept.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import sqlalchemy as sa

from adapters.sql.attempts import SqlAttempts
from adapters.sql.audit import SqlAuditLog
from adapters.sql.campaigns import SqlCampaigns
from adapters.sql.codes import SqlPromoCodes
from adapters.sql.engine import EngineHolder
from adapters.sql.entitlements import SqlEntitlements, SqlLedger, SqlProcessedUpdates
from adapters.sql.movements import SqlStarMovements
from adapters.sql.operators import SqlOperators, SqlSignInFailures
from adapters.sql.outbox import SqlTelegramOutbox
from adapters.sql.purchases import SqlPurchases
from adapters.sql.redemptions import SqlRedemptions
from adapters.sql.reviews import SqlPaymentReviews
from domain.errors import StorageUnavailable
from ports.entitlements import EntitlementLedger, Entitlements
from ports.operators import Operators, SignInFailures
from ports.outbox import TelegramOutbox
from ports.repositories import (
    Attempts,
    AuditLog,
    Campaigns,
    PaymentReviews,
    ProcessedUpdates,
    PromoCodes,
    Purchases,
    Redemptions,
    StarMovements,
)


class SqlUnitOfWork:
    campaigns: Campaigns
    promo_codes: PromoCodes
    audit: AuditLog
    redemptions: Redemptions
    attempts: Attempts
    purchases: Purchases
    entitlements: Entitlements
    ledger: EntitlementLedger
    processed_updates: ProcessedUpdates
    payment_reviews: PaymentReviews
    star_movements: StarMovements
    operators: Operators
    sign_in_failures: SignInFailures
    telegram_outbox: TelegramOutbox

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._conn: sa.Connection | None = None

    def __enter__(self) -> Self:
        try:
            conn = self._engine.connect()
        except sa.exc.OperationalError as exc:
            raise StorageUnavailable(f"database unreachable: {type(exc.orig).__name__}") from exc
        self._conn = conn
        self.campaigns = SqlCampaigns(conn)
        self.promo_codes = SqlPromoCodes(conn)
        self.audit = SqlAuditLog(conn)
        self.redemptions = SqlRedemptions(conn)
        self.attempts = SqlAttempts(conn)
        self.purchases = SqlPurchases(conn)
        self.entitlements = SqlEntitlements(conn)
        self.ledger = SqlLedger(conn)
        self.processed_updates = SqlProcessedUpdates(conn)
        self.payment_reviews = SqlPaymentReviews(conn)
        self.star_movements = SqlStarMovements(conn)
        self.operators = SqlOperators(conn)
        self.sign_in_failures = SqlSignInFailures(conn)
        self.telegram_outbox = SqlTelegramOutbox(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        except sa.exc.DBAPIError:
            pass  # the connection is already gone; closing it returns nothing to the pool
        finally:
            conn.close()
        if isinstance(exc, sa.exc.DBAPIError) and _is_disconnect(exc):
            raise StorageUnavailable("database connection lost; nothing of this operation was kept") from exc

    @property
    def connection(self) -> sa.Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._conn

    def commit(self) -> None:
        try:
            self.connection.commit()
        except sa.exc.DBAPIError as exc:
            if _is_disconnect(exc):
                raise StorageUnavailable("database connection lost during commit") from exc
            raise

    def rollback(self) -> None:
        conn = self.connection
        if conn.in_transaction():
            conn.rollback()


def _is_disconnect(exc: sa.exc.DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or isinstance(exc, sa.exc.OperationalError)


class SqlUnitOfWorkFactory:
    """Callable producing units of work on the engine of the current process."""

    def __init__(self, engines: EngineHolder) -> None:
        self.engines = engines

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engines.engine)
