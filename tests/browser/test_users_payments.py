"""An admin opens a Telegram user, refunds their paid purchase through Telegram and rolls back its promo redemption,
and resolves a payment review with a note (SPEC 14) — each change in the audit log under the operator's name."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.pages import csrf_token
from tests.browser.server import ADMIN

pytestmark = pytest.mark.browser


def flash(page: Page) -> str:
    return page.locator(".flashes").inner_text()


def audit_actions(page: Page, **query: str) -> list[tuple[str, str]]:
    """(actor, action) of the audit log's entries for ``query``, newest first."""
    page.goto("/ops/audit?" + "&".join(f"{k}={v}" for k, v in query.items()))
    rows = page.locator("tbody tr").all()
    return [(r.locator("td").nth(1).inner_text(), r.locator("td").nth(2).inner_text()) for r in rows
            if r.locator("td").count() >= 5]


def test_an_admin_refunds_a_purchase_through_telegram_and_rolls_back_its_redemption(
        admin: Page, console: Console) -> None:
    page, seeded = admin, console.seeded
    purchase = seeded.purchase_id
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    page.get_by_label("Telegram user id").fill(str(seeded.buyer))
    page.get_by_role("button", name="Open user").click()
    expect(page).to_have_url(re.compile(rf"/ops/users/{seeded.buyer}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"User {seeded.buyer}")

    purchases = page.locator("section[aria-labelledby=purchases] tbody tr")
    row = purchases.filter(has=page.locator("td:first-child", has_text=re.compile(rf"^{purchase}$")))
    expect(row).to_contain_text("PAID")
    redemptions = page.locator("section[aria-labelledby=redemptions] tbody tr")
    expect(redemptions.first).to_contain_text("Spring sale")
    expect(redemptions.first).to_contain_text("APPLIED")

    # Unconfirmed (the browser would not send it: the box is required): refused, the error beside the button.
    refund_url = f"/ops/users/{seeded.buyer}/purchases/{purchase}/refund"
    refused = page.request.post(refund_url, form={"csrf_token": csrf_token(page)})
    assert refused.status == 400 and "tick the box to confirm" in refused.text()
    assert not console.server.bot_api.calls_to("refundStarPayment")

    row.get_by_label(f"Confirm refund of purchase {purchase}").check()
    row.get_by_role("button", name="Refund through Telegram").click()
    assert f"Purchase {purchase} is refunded" in flash(page)
    expect(row).to_contain_text("REFUNDED")
    (call,) = console.server.bot_api.calls_to("refundStarPayment")
    assert call.params == {"user_id": str(seeded.buyer), "telegram_payment_charge_id": f"browser-charge-{purchase}"}

    row.get_by_label(f"Confirm rollback of purchase {purchase}").check()
    row.get_by_role("button", name="Roll back redemption").click()
    assert f"promo redemption {seeded.redemption_id} is REVOKED" in flash(page)
    expect(redemptions.first).to_contain_text("REVOKED")
    expect(row.get_by_role("button")).to_have_count(0)  # nothing more to do with it

    assert (ADMIN, "purchase.refunded") in audit_actions(page, target_type="purchase", target_id=str(purchase))


def test_an_admin_resolves_a_payment_review_with_a_note(admin: Page, console: Console) -> None:
    page = admin
    review = console.seeded.review_ids[0]
    page.get_by_role("link", name="Payment reviews").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment reviews")
    row = page.locator(f"#review-{review}")
    expect(row).to_contain_text("MISSING_LOCAL_PURCHASE")

    # no note: refused, the error next to the note field, the review still open
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        row.get_by_role("button", name="Resolve").click()
    assert answer.value.status == 400
    expect(row.locator(".field.has-error .error")).to_contain_text("Note: say what was done")
    assert console.server.query("SELECT resolved_at FROM payment_reviews WHERE id = ?", (review,)) == [(None,)]

    note = "Telegram payment without a purchase: refunded by hand in the Stars dashboard (ticket 4711)."
    row.get_by_label("Note").fill(note)
    row.get_by_role("button", name="Resolve").click()
    assert f"Payment review {review} (MISSING_LOCAL_PURCHASE) is resolved" in flash(page)
    expect(page.locator(f"#review-{review}")).to_have_count(0)  # no longer among the open ones
    page.get_by_role("link", name="All reviews, resolved too").click()
    expect(page.locator(f"#review-{review}")).to_contain_text(note)

    assert audit_actions(page, target_type="payment_review", target_id=str(review)) == [
        (ADMIN, "payment_review.resolved")]
