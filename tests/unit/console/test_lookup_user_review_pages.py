"""Code lookup, user and payment-review pages of the console (SPEC 14): the typed code kept nowhere, a user's
history and the refund / rollback actions (a local in-memory payment gateway, not a mock), payment reviews resolved
with a note; viewers see no change control and are refused 403; every audit row names the operator."""

from __future__ import annotations

import logging
import re
from itertools import count

import pytest
from dependency_injector import providers
from flask import Flask

from adapters.memory.payments import InMemoryPaymentGateway
from domain.campaigns import CampaignSpec
from domain.model import PaymentReview, PromoType, Purchase, PurchaseStatus, RedemptionStatus
from entrypoints.console.views import codes as code_views
from entrypoints.console.views import payments as review_views
from entrypoints.container import Container
from tests.unit.console.conftest import ADMIN, VIEWER, signed_in

USER = 4242
CODE = "SUPPORTME42"
TYPED = "support-me 42"  # normalizes to CODE
SEEDER = "cli:test"
_keys = count(1)


def container_of(app: Flask) -> Container:
    c: Container = app.extensions["starpromo.container"]
    return c


def add_campaign(app: Flask, code: str, name: str | None = None, percent: int = 20) -> int:
    _, stored = container_of(app).campaign_service().create(
        CampaignSpec(name=name or f"Campaign {code}", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=percent,
                     per_user_limit=5),
        actor=SEEDER, code=code)
    assert stored is not None and stored.id is not None
    return stored.id


def redeem(app: Flask, code: str, user_id: int = USER) -> int:
    outcome = container_of(app).redemption_service().redeem(user_id, code, f"key-{next(_keys)}")
    assert outcome.accepted and outcome.redemption is not None and outcome.redemption.id is not None
    return outcome.redemption.id


def paid_purchase(app: Flask, code: str, user_id: int = USER) -> Purchase:
    """A PREMIUM_30D purchase paid with a reservation of ``code``."""
    checkout = container_of(app).checkout_service()
    purchase = checkout.init(user_id, "PREMIUM_30D", redeem(app, code, user_id))
    assert purchase.id is not None
    checkout.mark_invoice_sent(purchase.id)
    checkout.successful_payment(purchase.id, f"charge-{purchase.id}", purchase.final_stars_amount)
    return checkout.get(purchase.id)


def use_gateway(app: Flask) -> InMemoryPaymentGateway:
    gateway = InMemoryPaymentGateway()
    container_of(app).payment_gateway.override(providers.Object(gateway))
    return gateway


def add_review(app: Flask, key: str, purchase_id: int | None = None, user_id: int | None = USER) -> int:
    details = {"telegram_stars": 150, "local_stars": 120, **({"user_id": user_id} if user_id else {})}
    now = container_of(app).clock().now()
    with container_of(app).uow_factory()() as uow:
        review = uow.payment_reviews.add(PaymentReview(
            id=None, dedup_key=key, event="payments_reconciliation_diff_detected", kind="AMOUNT_MISMATCH",
            purchase_id=purchase_id, telegram_payment_charge_id=f"ch-{key}", details=details, created_at=now))
        uow.commit()
    assert isinstance(review, PaymentReview) and review.id is not None
    return review.id


def audit_actors(app: Flask) -> list[tuple[str, str]]:
    """(actor, action) of every audit row not written by the test's own seeding."""
    return [(e.actor, e.action) for e in container_of(app).memory_store().audit if e.actor != SEEDER]


def purchase_status(app: Flask, purchase_id: int | None) -> PurchaseStatus:
    assert purchase_id is not None
    return container_of(app).checkout_service().get(purchase_id).status


def field_value(html: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no input {name}"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else None


# --- code lookup ---------------------------------------------------------------------------------------


def test_a_lookup_redirects_to_the_code_page_and_the_typed_code_is_kept_nowhere(
        console_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    code_id = add_campaign(console_app, CODE, name="Influencer Ann")
    store = container_of(console_app).memory_store()
    attempts_before, audit_before = len(store.attempts), len(store.audit)
    caplog.set_level(logging.DEBUG)
    client = console_app.test_client()
    token = signed_in(client, ADMIN)

    form = client.get("/ops/codes/lookup")
    assert form.status_code == 200
    assert 'autocomplete="off"' in form.text and ">Code</label>" in form.text and "Look up" in form.text
    answer = client.post("/ops/codes/lookup", data={"code": TYPED, "csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/ops/codes/{code_id}"
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    assert "SUPP" in page.text and "Influencer Ann" in page.text and "20 % off" in page.text
    assert re.search(r'href="/ops/campaigns/\d+"', page.text)
    assert "Pause code" in page.text  # the admin's control (ops.code_status)

    # Nothing written by the lookup; the code in no response, address, log record or stored row.
    assert (len(store.attempts), len(store.audit)) == (attempts_before, audit_before)
    seen = [answer.text, str(answer.headers), page.text, str(page.headers),
            *(str(r.__dict__) for r in caplog.records), repr(store.__dict__)]
    for text in seen:
        assert CODE not in text and TYPED not in text and CODE.lower() not in text


def test_a_miss_answers_404_without_echoing_the_code(console_app: Flask) -> None:
    add_campaign(console_app, CODE)
    client = console_app.test_client()
    token = signed_in(client, ADMIN)
    miss = client.post("/ops/codes/lookup", data={"code": "NOSUCHCODE99", "csrf_token": token})
    assert miss.status_code == 404
    assert "No code matches" in miss.text
    assert "NOSUCHCODE99" not in miss.text and not field_value(miss.text, "code")


@pytest.mark.parametrize(("typed", "error"), [
    ("", "type the code to look up"),
    ("A" * 300, "at most 256 characters"),
    ("?!#", "must normalize to 4..32 characters A-Z 0-9"),
    ("ABC", "must normalize to 4..32 characters A-Z 0-9"),
])
def test_bad_input_gets_an_error_next_to_the_field(console_app: Flask, typed: str, error: str) -> None:
    client = console_app.test_client()
    token = signed_in(client, ADMIN)
    page = client.post("/ops/codes/lookup", data={"code": typed, "csrf_token": token})
    assert page.status_code == 400
    assert f"Code: {error}" in page.text and 'class="error"' in page.text
    assert not field_value(page.text, "code")
    if typed:
        assert typed not in page.text


def test_a_lookup_needs_the_csrf_token(console_app: Flask) -> None:
    add_campaign(console_app, CODE)
    client = console_app.test_client()
    signed_in(client, ADMIN)
    assert client.post("/ops/codes/lookup", data={"code": CODE}).status_code == 400


def test_a_viewer_may_look_up_a_code_but_gets_no_change_control(console_app: Flask) -> None:
    code_id = add_campaign(console_app, CODE)
    client = console_app.test_client()
    token = signed_in(client, VIEWER)
    answer = client.post("/ops/codes/lookup", data={"code": CODE, "csrf_token": token})
    assert answer.headers["Location"] == f"/ops/codes/{code_id}"
    page = client.get(f"/ops/codes/{code_id}")
    assert page.status_code == 200 and "Pause code" not in page.text and 'method="post"' not in page.text.split(
        "</header>")[1]


def test_the_code_page_lists_its_redemptions_newest_first_in_pages(
        console_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    code_id = add_campaign(console_app, CODE)
    ids = [redeem(console_app, CODE, user_id=u) for u in (11, 12, 13)]
    monkeypatch.setattr(code_views, "REDEMPTIONS_PAGE_SIZE", 2)
    client = console_app.test_client()
    signed_in(client, ADMIN)
    first = client.get(f"/ops/codes/{code_id}")
    assert first.status_code == 200
    assert first.text.index('href="/ops/users/13"') < first.text.index('href="/ops/users/12"')
    assert 'href="/ops/users/11"' not in first.text
    next_link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_link and f"cursor={ids[1]}" in next_link.group(1)
    second = client.get(next_link.group(1).replace("&amp;", "&"))
    assert 'href="/ops/users/11"' in second.text and 'href="/ops/users/12"' not in second.text
    assert "RESERVED" in second.text


@pytest.mark.parametrize("path", ["/ops/codes/999", f"/ops/codes/{2**64}"])
def test_an_unknown_code_is_404(console_app: Flask, path: str) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    assert client.get(path).status_code == 404


def test_a_bad_page_cursor_is_400_not_500(console_app: Flask) -> None:
    code_id = add_campaign(console_app, CODE)
    client = console_app.test_client()
    signed_in(client, ADMIN)
    page = client.get(f"/ops/codes/{code_id}?cursor=abc")
    assert page.status_code == 400 and "Page:" in page.text


# --- user ----------------------------------------------------------------------------------------------


def test_the_user_search_opens_the_user_page(console_app: Flask) -> None:
    client = console_app.test_client()
    signed_in(client, VIEWER)
    form = client.get("/ops/users")
    assert form.status_code == 200 and ">Telegram user id</label>" in form.text and "Open user" in form.text
    answer = client.get("/ops/users?user_id=+4242+")
    assert answer.status_code == 302 and answer.headers["Location"] == "/ops/users/4242"


@pytest.mark.parametrize("typed", ["abc", "-5", "0", str(2**63), "1e3", "", "١٢"])
def test_a_bad_user_id_gets_an_error_next_to_the_field(console_app: Flask, typed: str) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    page = client.get("/ops/users", query_string={"user_id": typed})
    assert page.status_code == 400
    assert re.search(r'<p class="error" id="user_id-error">Telegram user id: ', page.text)


def test_an_id_too_big_in_the_address_is_400(console_app: Flask) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    page = client.get(f"/ops/users/{2**63}")
    assert page.status_code == 400 and "must be a whole number from 1 to" in page.text
    assert client.get("/ops/users/-3").status_code == 404


def test_the_user_page_shows_redemptions_purchases_entitlement_attempts_and_throttling(console_app: Flask) -> None:
    add_campaign(console_app, CODE, name="Influencer Ann")
    purchase = paid_purchase(console_app, CODE)
    for i in range(5):
        outcome = container_of(console_app).redemption_service().redeem(USER, f"WRONG{i}CODE", f"bad-{i}")
        assert not outcome.accepted
    client = console_app.test_client()
    signed_in(client, VIEWER)
    page = client.get(f"/ops/users/{USER}")
    assert page.status_code == 200
    text = page.text
    assert f"<h1>User {USER}</h1>" in text
    assert "Influencer Ann" in text and "APPLIED" in text and "SUPP" in text
    assert f'<td class="num">{purchase.id}</td>' in text and "PAID" in text and "PREMIUM_30D" in text
    assert "PREMIUM" in text and "active until" in text
    assert "Blocked" in text and "Not blocked" not in text and "INVALID" in text
    assert "<code>WRON</code>" in text  # the attempts' code prefixes (what SPEC 2 allows to show)
    assert "Refund through Telegram" not in text  # a viewer sees no change control


def test_a_user_the_system_never_saw_gets_an_empty_page(console_app: Flask) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    page = client.get("/ops/users/77")
    assert page.status_code == 200 and "No purchases." in page.text and "Not blocked" in page.text


def test_an_admin_refunds_through_telegram_then_rolls_back_the_redemption(console_app: Flask) -> None:
    add_campaign(console_app, CODE)
    purchase = paid_purchase(console_app, CODE)
    gateway = use_gateway(console_app)
    client = console_app.test_client()
    token = signed_in(client, ADMIN)
    base = f"/ops/users/{USER}/purchases/{purchase.id}"
    page = client.get(f"/ops/users/{USER}")
    assert "Refund through Telegram" in page.text and f"Confirm refund of purchase {purchase.id}" in page.text

    unconfirmed = client.post(f"{base}/refund", data={"csrf_token": token})
    assert unconfirmed.status_code == 400 and "tick the box to confirm" in unconfirmed.text
    assert purchase_status(console_app, purchase.id) is PurchaseStatus.PAID and gateway.refunds == []

    done = client.post(f"{base}/refund", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["Location"] == f"/ops/users/{USER}#purchases"
    assert purchase_status(console_app, purchase.id) is PurchaseStatus.REFUNDED
    assert gateway.refunds == [(USER, purchase.telegram_payment_charge_id)]
    page = client.get(f"/ops/users/{USER}")
    assert f"Purchase {purchase.id} is refunded" in page.text and "Roll back redemption" in page.text

    unconfirmed = client.post(f"{base}/rollback", data={"csrf_token": token})
    assert unconfirmed.status_code == 400 and "tick the box to confirm" in unconfirmed.text
    rolled = client.post(f"{base}/rollback", data={"csrf_token": token, "confirm": "yes"})
    assert rolled.status_code == 303
    redemption_id = purchase.promo_redemption_id
    assert redemption_id is not None
    assert container_of(console_app).memory_store().redemptions[redemption_id].status is RedemptionStatus.REVOKED
    page = client.get(f"/ops/users/{USER}")
    assert f"promo redemption {redemption_id} is REVOKED" in page.text and "Roll back redemption" not in page.text
    again = client.post(f"{base}/rollback", data={"csrf_token": token, "confirm": "yes"})
    assert again.status_code == 303 and "it already was" in client.get(f"/ops/users/{USER}").text
    assert audit_actors(console_app) == [(ADMIN, "purchase.refunded"), (ADMIN, "purchase.refund_rolled_back")]


def test_without_a_bot_token_the_refund_is_disabled_and_a_forged_one_refused(console_app: Flask) -> None:
    add_campaign(console_app, CODE)
    purchase = paid_purchase(console_app, CODE)
    client = console_app.test_client()
    token = signed_in(client, ADMIN)
    page = client.get(f"/ops/users/{USER}")
    assert "refunds need TELEGRAM_BOT_TOKEN" in page.text
    assert re.search(r"<button[^>]*disabled[^>]*>Refund through Telegram</button>", page.text)
    forged = client.post(f"/ops/users/{USER}/purchases/{purchase.id}/refund",
                         data={"csrf_token": token, "confirm": "yes"})
    assert forged.status_code == 409 and "refunds need TELEGRAM_BOT_TOKEN" in forged.text
    assert purchase_status(console_app, purchase.id) is PurchaseStatus.PAID


def test_refused_refunds_and_rollbacks_are_shown_on_the_page_never_a_500(console_app: Flask) -> None:
    add_campaign(console_app, CODE)
    purchase = paid_purchase(console_app, CODE)
    checkout = container_of(console_app).checkout_service()
    open_one = checkout.init(USER, "PREMIUM_7D")
    gateway = use_gateway(console_app)
    gateway.refuse_refunds = True
    client = console_app.test_client()
    token = signed_in(client, ADMIN)
    confirm = {"csrf_token": token, "confirm": "yes"}

    refused = client.post(f"/ops/users/{USER}/purchases/{purchase.id}/refund", data=confirm)
    assert refused.status_code == 502 and "Telegram refused the refund" in refused.text
    assert purchase_status(console_app, purchase.id) is PurchaseStatus.PAID
    not_paid = client.post(f"/ops/users/{USER}/purchases/{open_one.id}/refund", data=confirm)
    assert not_paid.status_code == 409 and "only PAID can be refunded" in not_paid.text
    not_refunded = client.post(f"/ops/users/{USER}/purchases/{purchase.id}/rollback", data=confirm)
    assert not_refunded.status_code == 409 and "not REFUNDED" in not_refunded.text
    assert client.post(f"/ops/users/999/purchases/{purchase.id}/refund", data=confirm).status_code == 404
    assert client.post(f"/ops/users/{USER}/purchases/{2**64}/rollback", data=confirm).status_code == 404
    assert client.post(f"/ops/users/{USER}/purchases/12345/rollback", data=confirm).status_code == 404
    assert audit_actors(console_app) == []


# --- payment reviews -----------------------------------------------------------------------------------


def test_an_admin_resolves_a_review_with_a_note_and_not_without(console_app: Flask) -> None:
    review_id = add_review(console_app, "a")
    other = add_review(console_app, "b", user_id=None)
    client = console_app.test_client()
    token = signed_in(client, ADMIN)
    page = client.get("/ops/payment-reviews")
    assert page.status_code == 200
    assert ">Note</label>" in page.text and ">Resolve</button>" in page.text and "AMOUNT_MISMATCH" in page.text
    assert f'href="/ops/users/{USER}"' in page.text
    url = f"/ops/payment-reviews/{review_id}/resolve"

    for note, error in (("", "say what was done"), ("   ", "say what was done"), ("x" * 501, "1 to 500 characters")):
        refused = client.post(url, data={"csrf_token": token, f"r{review_id}-note": note})
        assert refused.status_code == 400 and f"Note: {error}" in refused.text
    assert client.post(url, data={"csrf_token": token}).status_code == 400
    assert container_of(console_app).memory_store().payment_reviews[review_id].is_open

    done = client.post(url, data={"csrf_token": token, f"r{review_id}-note": "  refunded by hand in Telegram  "})
    assert done.status_code == 303 and done.headers["Location"] == "/ops/payment-reviews"
    stored = container_of(console_app).memory_store().payment_reviews[review_id]
    assert not stored.is_open and stored.resolution_note == "refunded by hand in Telegram"
    page = client.get("/ops/payment-reviews")
    assert f"Payment review {review_id} (AMOUNT_MISMATCH) is resolved" in page.text
    assert f'id="review-{review_id}"' not in page.text and f'id="review-{other}"' in page.text
    everything = client.get("/ops/payment-reviews?all=y")
    assert f'id="review-{review_id}"' in everything.text and "refunded by hand in Telegram" in everything.text

    again = client.post(url, data={"csrf_token": token, f"r{review_id}-note": "twice"})
    assert again.status_code == 409 and "already resolved" in again.text
    assert client.post("/ops/payment-reviews/999/resolve",
                       data={"csrf_token": token, "r999-note": "x"}).status_code == 404
    entries = [e for e in container_of(console_app).memory_store().audit if e.actor != SEEDER]
    assert [(e.actor, e.action, e.details["note"]) for e in entries] == [
        (ADMIN, "payment_review.resolved", "refunded by hand in Telegram")]


def test_reviews_come_in_pages(console_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [add_review(console_app, f"k{i}") for i in range(3)]
    monkeypatch.setattr(review_views, "PAGE_SIZE", 2)
    client = console_app.test_client()
    signed_in(client, VIEWER)
    first = client.get("/ops/payment-reviews")
    assert f'id="review-{ids[0]}"' in first.text and f'id="review-{ids[2]}"' not in first.text
    next_link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_link
    second = client.get(next_link.group(1).replace("&amp;", "&"))
    assert f'id="review-{ids[2]}"' in second.text and f'id="review-{ids[0]}"' not in second.text
    assert client.get("/ops/payment-reviews?cursor=-1").status_code == 400


# --- viewers -------------------------------------------------------------------------------------------


def test_a_viewer_sees_no_control_and_every_change_is_refused_403(console_app: Flask) -> None:
    code_id = add_campaign(console_app, CODE)
    purchase = paid_purchase(console_app, CODE)
    review_id = add_review(console_app, "a")
    use_gateway(console_app)
    client = console_app.test_client()
    token = signed_in(client, VIEWER)
    for path in (f"/ops/users/{USER}", "/ops/payment-reviews", f"/ops/codes/{code_id}"):
        page = client.get(path)
        assert page.status_code == 200
        for control in ("Refund through Telegram", "Roll back redemption", ">Resolve<", "Pause code", ">Note<"):
            assert control not in page.text, (path, control)
    for path, data in ((f"/ops/users/{USER}/purchases/{purchase.id}/refund", {"confirm": "yes"}),
                       (f"/ops/users/{USER}/purchases/{purchase.id}/rollback", {"confirm": "yes"}),
                       (f"/ops/payment-reviews/{review_id}/resolve", {f"r{review_id}-note": "x"})):
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, path
    assert purchase_status(console_app, purchase.id) is PurchaseStatus.PAID
    assert container_of(console_app).memory_store().payment_reviews[review_id].is_open
    assert audit_actors(console_app) == []
