"""Refund rollback, payments refund and the dashboard over HTTP (SPEC 7 rows), on the in-memory family."""

from __future__ import annotations

from typing import Any

import pytest
from dependency_injector import providers
from flask import Flask

from adapters.memory import InMemoryPaymentGateway, ManualClock
from domain.model import Purchase, StarTransaction
from entrypoints.container import Container
from entrypoints.http import create_app
from tests.unit.http.conftest import AUTH, Api, assert_error, make_container


@pytest.fixture
def gateway() -> InMemoryPaymentGateway:
    return InMemoryPaymentGateway()


@pytest.fixture
def container(clock: ManualClock, gateway: InMemoryPaymentGateway) -> Container:
    c = make_container(clock)
    c.payment_gateway.override(providers.Object(gateway))
    return c


@pytest.fixture
def app(container: Container) -> Flask:
    return create_app(container)


def paid_purchase(api: Api, container: Container, user_id: int = 42, code: str = "SPRING-20",
                  with_promo: bool = True) -> Purchase:
    """A PAID purchase of PREMIUM_30D, with a 20% promo reservation applied when ``with_promo``."""
    checkout = container.checkout_service()
    redemption_id = None
    if with_promo:
        api.create_campaign(code, discount_percent=20)
        redemption_id = api.redeem(user_id, code, f"k-{user_id}").json["redemption"]["id"]
    purchase = checkout.init(user_id, "PREMIUM_30D", redemption_id)
    assert purchase.id is not None
    checkout.mark_invoice_sent(purchase.id)
    return checkout.successful_payment(purchase.id, f"charge-{purchase.id}", purchase.final_stars_amount).purchase


def refund(api: Api, purchase_id: int, body: Any = None) -> Any:
    return api.post(f"/internal/payments/{purchase_id}/refund", {} if body is None else body)


# --- POST /internal/payments/{purchase_id}/refund ------------------------------------------------------------


def test_refund_goes_through_telegram_and_marks_the_purchase_refunded(
    api: Api, container: Container, gateway: InMemoryPaymentGateway
) -> None:
    purchase = paid_purchase(api, container)
    r = refund(api, purchase.id or 0)
    assert r.status_code == 200, r.json
    body = r.json
    assert body["id"] == purchase.id and body["status"] == "REFUNDED" and body["refunded_at"] is not None
    assert body["final_stars_amount"] == 120 and body["discount_stars_amount"] == 30
    assert gateway.refunds == [(42, purchase.telegram_payment_charge_id)]


def test_refund_is_one_audit_entry_under_the_x_actor(api: Api, container: Container) -> None:
    purchase = paid_purchase(api, container)
    assert api.post(f"/internal/payments/{purchase.id}/refund", {}, headers={"X-Actor": "support:kim"}
                    ).status_code == 200
    refund(api, purchase.id or 0)
    rows = api.get("/internal/promo/audit?target_type=purchase").json["items"]
    assert [(e["action"], e["actor"], e["target_id"]) for e in rows] == [
        ("purchase.refunded", "support:kim", str(purchase.id))]


def test_refund_with_an_invalid_x_actor_is_400_and_refunds_nothing(
    api: Api, container: Container, gateway: InMemoryPaymentGateway
) -> None:
    purchase = paid_purchase(api, container)
    r = api.post(f"/internal/payments/{purchase.id}/refund", {}, headers={"X-Actor": " "})
    assert_error(r, 400, "VALIDATION_ERROR")
    assert gateway.refunds == []


def test_refund_is_idempotent(api: Api, container: Container, gateway: InMemoryPaymentGateway) -> None:
    purchase = paid_purchase(api, container)
    first = refund(api, purchase.id or 0).json
    again = refund(api, purchase.id or 0)
    assert again.status_code == 200 and again.json == first
    assert len(gateway.refunds) == 1


def test_refund_accepts_an_empty_body_but_no_fields(api: Api, container: Container) -> None:
    purchase = paid_purchase(api, container)
    err = assert_error(refund(api, purchase.id or 0, {"amount": 5}), 400, "VALIDATION_ERROR")
    assert err["details"] == [{"field": "amount", "message": "unknown field"}]
    r = api.client.post(f"/internal/payments/{purchase.id}/refund", headers=AUTH)
    assert r.status_code == 200 and r.json is not None and r.json["status"] == "REFUNDED"


def test_refund_of_an_unpaid_purchase_is_409(api: Api, container: Container) -> None:
    purchase = container.checkout_service().init(7, "PREMIUM_7D")
    err = assert_error(refund(api, purchase.id or 0), 409, "INVALID_PURCHASE_STATE")
    assert err["details"] == {"status": "CREATED"}


def test_refund_of_an_unknown_purchase_is_404(api: Api) -> None:
    assert_error(refund(api, 999), 404, "NOT_FOUND")


def test_refund_refused_by_telegram_is_502_and_changes_nothing(
    api: Api, container: Container, gateway: InMemoryPaymentGateway
) -> None:
    purchase = paid_purchase(api, container)
    gateway.refuse_refunds = True
    assert_error(refund(api, purchase.id or 0), 502, "PAYMENT_REFUND_FAILED")
    assert container.checkout_service().get(purchase.id or 0).status.value == "PAID"


def test_without_a_payment_gateway_the_refund_route_is_not_served(clock: ManualClock) -> None:
    app = create_app(make_container(clock))
    api = Api(app.test_client())
    assert_error(api.post("/internal/payments/1/refund", {}), 404, "NOT_FOUND")
    assert "/internal/payments/{purchase_id}/refund" not in api.get("/internal/openapi.json").json["paths"]


# --- POST /internal/promo/refund-rollback ---------------------------------------------------------------------


def test_refund_rollback_revokes_the_promo_redemption(api: Api, container: Container) -> None:
    purchase = paid_purchase(api, container)
    assert refund(api, purchase.id or 0).status_code == 200
    r = api.post("/internal/promo/refund-rollback", {"purchase_id": purchase.id})
    assert r.status_code == 200
    assert r.json == {"purchase_id": purchase.id, "redemption_id": purchase.promo_redemption_id,
                      "status": "REVOKED", "replayed": False}
    again = api.post("/internal/promo/refund-rollback", {"purchase_id": purchase.id})
    assert again.status_code == 200 and again.json["replayed"] is True


def test_refund_rollback_is_one_audit_entry_under_the_x_actor(api: Api, container: Container) -> None:
    purchase = paid_purchase(api, container)
    refund(api, purchase.id or 0)
    r = api.post("/internal/promo/refund-rollback", {"purchase_id": purchase.id}, headers={"X-Actor": "ops:anna"})
    assert r.status_code == 200
    api.post("/internal/promo/refund-rollback", {"purchase_id": purchase.id}, headers={"X-Actor": "ops:anna"})
    rows = api.get("/internal/promo/audit?action=purchase.refund_rolled_back").json["items"]
    assert [(e["actor"], e["target_id"]) for e in rows] == [("ops:anna", str(purchase.id))]
    assert rows[0]["details"]["redemption_id"] == purchase.promo_redemption_id


def test_refund_rollback_of_a_purchase_that_is_not_refunded_is_409(api: Api, container: Container) -> None:
    purchase = paid_purchase(api, container)
    err = assert_error(api.post("/internal/promo/refund-rollback", {"purchase_id": purchase.id}),
                       409, "PURCHASE_NOT_REFUNDED")
    assert err["details"] == {"status": "PAID"}


def test_refund_rollback_without_a_promo_is_409(api: Api, container: Container) -> None:
    purchase = paid_purchase(api, container, with_promo=False)
    assert refund(api, purchase.id or 0).status_code == 200
    assert_error(api.post("/internal/promo/refund-rollback", {"purchase_id": purchase.id}), 409,
                 "NO_PROMO_REDEMPTION")


def test_refund_rollback_of_an_unknown_purchase_is_404(api: Api) -> None:
    assert_error(api.post("/internal/promo/refund-rollback", {"purchase_id": 12345}), 404, "NOT_FOUND")


def test_refund_rollback_names_a_bad_purchase_id(api: Api) -> None:
    for bad in (0, -3, "7", None, 2**70):
        err = assert_error(api.post("/internal/promo/refund-rollback", {"purchase_id": bad}), 400,
                           "VALIDATION_ERROR")
        assert [d["field"] for d in err["details"]] == ["purchase_id"], bad


# --- GET /internal/promo/dashboard ----------------------------------------------------------------------------


def test_dashboard_reports_the_window(api: Api) -> None:
    api.create_campaign("SPRING-20")
    assert api.redeem(1, "SPRING20", "a").status_code == 200
    assert api.redeem(2, "NOPE0000", "b").status_code == 404
    assert api.redeem(1, "SPRING20", "c").status_code == 409
    r = api.get("/internal/promo/dashboard?window_hours=2")
    assert r.status_code == 200
    body = r.json
    assert body["window"]["hours"] == 2
    assert body["conversion"]["attempts_total"] == 3 and body["conversion"]["attempts_accepted"] == 1
    assert body["conversion"]["acceptance_rate"] == pytest.approx(1 / 3)
    assert body["conversion"]["reservations_total"] == 1 and body["conversion"]["reservation_apply_rate"] == 0
    assert body["failures"]["by_result"]["INVALID"] == 1 and body["failures"]["by_result"]["ALREADY_USED"] == 1
    assert body["failures"]["by_result"]["PAUSED"] == 0
    assert body["guard"] == {"candidate_abusive_hashes": [], "paused_campaigns_total": 0, "paused_codes_total": 0,
                             "paused_campaigns_recent": 0}
    assert [(h["attempts"], h["accepted"]) for h in body["series"]] == [(0, 0), (0, 0), (3, 1)]
    assert set(body["series"][0]) == {"hour", "attempts", "accepted", "applied", "stars_revenue"}


def test_dashboard_counts_codes_paused_on_their_own(api: Api) -> None:
    a = api.create_campaign("SPRING-20")
    b = api.create_campaign("SUMMER-30")
    api.post(f"/internal/promo/codes/{a['code']['id']}/status", {"status": "PAUSED"})
    api.post(f"/internal/promo/campaigns/{b['id']}/status", {"status": "PAUSED"})
    guard = api.get("/internal/promo/dashboard").json["guard"]
    assert guard["paused_codes_total"] == 1 and guard["paused_campaigns_total"] == 1
    assert guard["paused_campaigns_recent"] == 2


def test_dashboard_defaults_to_24_hours(api: Api) -> None:
    assert api.get("/internal/promo/dashboard").json["window"]["hours"] == 24


def test_dashboard_payments_show_the_other_star_movements_the_reconciliation_recorded(
        api: Api, container: Container, gateway: InMemoryPaymentGateway, clock: ManualClock) -> None:
    """Issue 17: a withdrawal and paid broadcasts are no purchase's business: counted, exact, never a difference."""
    now = clock.now()
    gateway.transactions += [
        StarTransaction(id="wd-1", amount=5000, date=now, user_id=None, outgoing=True, partner="fragment",
                        transaction_type=None),
        StarTransaction(id="bc-1", amount=0, date=now, user_id=None, outgoing=True, partner="telegram_api",
                        transaction_type=None, nanostar_amount=300_000_000),
    ]
    assert container.reconciliation_service().reconcile().matches
    movements = api.get("/internal/promo/dashboard").json["payments"]["other_movements"]
    assert movements == {"count": 2, "kinds": [
        {"kind": "paid_broadcast", "direction": "outgoing", "count": 1, "stars": 0, "nanostar_amount": 300_000_000},
        {"kind": "withdrawal", "direction": "outgoing", "count": 1, "stars": 5000, "nanostar_amount": 0}]}


@pytest.mark.parametrize("bad", ["0", "721", "abc", "-1", "1.5", ""])
def test_dashboard_window_hours_must_be_1_to_720(api: Api, bad: str) -> None:
    err = assert_error(api.get(f"/internal/promo/dashboard?window_hours={bad}"), 400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "window_hours"


def test_dashboard_window_edges_are_accepted(api: Api) -> None:
    assert api.get("/internal/promo/dashboard?window_hours=1").status_code == 200
    assert api.get("/internal/promo/dashboard?window_hours=720").status_code == 200
