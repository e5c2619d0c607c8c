"""The ``Purchases`` port (``purchases``) on memory, SQLite and PostgreSQL: one open purchase per user and product,
conditional status moves with their timestamps and a unique charge id, and the maintenance jobs' queries. The
payments and reporting queries over purchases are in test_payment_repositories.py.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import DuplicateChargeId, OpenPurchaseExists
from domain.model import PurchaseStatus, RedemptionStatus
from tests.builders import Factory, make_purchase, make_redemption, store_campaign_with_code
from tests.conftest import T0
from tests.contract.conftest import LATER


def test_one_open_purchase_per_user_and_product(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        p = uow.purchases.add(make_purchase())
        uow.commit()
    with uow_factory() as uow, pytest.raises(OpenPurchaseExists):
        uow.purchases.add(make_purchase())
    with uow_factory() as uow:
        assert uow.purchases.get_open(1, "PREMIUM_30D") == p
        uow.purchases.add(make_purchase(product="PREMIUM_7D"))
        uow.purchases.add(make_purchase(user_id=2))
        failed = uow.purchases.set_status(p.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.FAILED, T0)
        assert failed is not None and failed.status is PurchaseStatus.FAILED
        assert uow.purchases.get_open(1, "PREMIUM_30D") is None
        again = uow.purchases.add(make_purchase())
        uow.commit()
    with uow_factory() as uow:
        assert uow.purchases.get_open(1, "PREMIUM_30D") == again


def test_payment_and_refund_set_their_timestamps_and_the_charge_id_is_unique(uow_factory: Factory) -> None:
    paid_at, refunded_at = T0 + timedelta(minutes=2), T0 + timedelta(days=1)
    with uow_factory() as uow:
        p = uow.purchases.add(make_purchase())
        q = uow.purchases.add(make_purchase(user_id=2))
        assert not uow.purchases.user_has_paid(1)
        sent = uow.purchases.set_status(p.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.INVOICE_SENT, T0)
        assert sent is not None and sent.paid_at is None
        assert uow.purchases.set_status(p.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.PAID, T0) is None
        paid = uow.purchases.set_status(p.id or 0, [PurchaseStatus.INVOICE_SENT], PurchaseStatus.PAID, paid_at,
                                        telegram_payment_charge_id="charge-1")
        assert paid is not None and paid.paid_at == paid_at and paid.telegram_payment_charge_id == "charge-1"
        assert uow.purchases.user_has_paid(1)
        uow.commit()
    with uow_factory() as uow, pytest.raises(DuplicateChargeId):
        uow.purchases.set_status(q.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.PAID, paid_at,
                                 telegram_payment_charge_id="charge-1")
    with uow_factory() as uow:
        assert uow.purchases.get_by_charge_id("charge-1") == paid
        assert uow.purchases.get_by_charge_ids(["charge-1", "unknown", "charge-1"]) == {"charge-1": paid}
        assert uow.purchases.get_by_charge_ids([]) == {}
        refunded = uow.purchases.set_status(p.id or 0, [PurchaseStatus.PAID], PurchaseStatus.REFUNDED, refunded_at)
        assert refunded is not None and refunded.refunded_at == refunded_at and refunded.paid_at == paid_at
        assert uow.purchases.user_has_paid(1)
        assert (uow.purchases.get(q.id or 0) or q).status is PurchaseStatus.CREATED
        uow.commit()


def test_job_queries_over_purchases(uow_factory: Factory) -> None:
    _, code = store_campaign_with_code(uow_factory)
    with uow_factory() as uow:
        r1 = uow.redemptions.add(make_redemption(code, user_id=1, key="a", status=RedemptionStatus.RESERVED))
        r2 = uow.redemptions.add(make_redemption(code, user_id=2, key="b", status=RedemptionStatus.REVOKED))
        old = uow.purchases.add(make_purchase(user_id=1, product="PREMIUM_7D"))
        fresh = uow.purchases.add(make_purchase(user_id=1, product="PREMIUM_90D", created_at=LATER))
        refunded = uow.purchases.add(make_purchase(user_id=1, status=PurchaseStatus.REFUNDED,
                                                   promo_redemption_id=r1.id))
        assert r1.id is not None and refunded.id is not None
        assert uow.redemptions.apply(r1.id, refunded.id, T0) is not None
        uow.purchases.add(make_purchase(user_id=2, status=PurchaseStatus.REFUNDED, promo_redemption_id=r2.id))
        uow.purchases.add(make_purchase(user_id=3, status=PurchaseStatus.REFUNDED))
        uow.commit()
    with uow_factory() as uow:
        assert [p.id for p in uow.purchases.stale_open(T0 + timedelta(minutes=30), 10)] == [old.id]
        assert [p.id for p in uow.purchases.refunded_needing_rollback(10)] == [refunded.id]
        assert [p.id for p in uow.purchases.in_window(T0 + timedelta(minutes=1), T0 + timedelta(hours=2))] == [
            fresh.id]
        assert len(uow.purchases.in_window(T0, T0 + timedelta(hours=2))) == 5
        assert uow.purchases.count_in_review() == 0
        marked = uow.purchases.mark_review(old.id or 0, "amount mismatch", T0)
        assert marked is not None and marked.review_reason == "amount mismatch"
        assert uow.purchases.mark_review(10_000, "x", T0) is None
        assert uow.purchases.count_in_review() == 1
        uow.commit()
