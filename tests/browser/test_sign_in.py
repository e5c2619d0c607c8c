"""Signing in and out in a real browser, the session cookie as the browser keeps it, sign-in throttling, and POSTs
without a CSRF token refused (SPEC 13/14)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.pages import Form, csrf_token, sign_in
from tests.browser.server import ADMIN, PASSWORD, THROTTLED

pytestmark = pytest.mark.browser


def test_an_admin_signs_in_lands_on_the_overview_and_signs_out(anonymous: Page) -> None:
    page = anonymous
    page.goto("/ops/audit")
    expect(page).to_have_url(re.compile(r"/ops/sign-in\?next=/ops/audit$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")

    page.get_by_label("Operator name").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # back where the operator was going, signed in
    expect(page).to_have_url(re.compile(r"/ops/audit$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(page.locator("header")).to_contain_text(ADMIN)

    (cookie,) = [c for c in page.context.cookies() if c["name"] == "starpromo_ops"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ops"
    assert not cookie["secure"]  # plain HTTP on loopback; behind HTTPS the cookie is Secure

    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ops/sign-in$"))
    page.goto("/ops/")
    expect(page).to_have_url(re.compile(r"/ops/sign-in\?next=/ops/$"))


def test_a_wrong_password_gets_the_form_back_without_saying_which_part_was_wrong(anonymous: Page) -> None:
    page = anonymous
    page.goto("/ops/sign-in")
    page.get_by_label("Operator name").fill("nobody-here")
    page.get_by_label("Password").fill("not the password at all")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("Wrong operator name or password.")
    expect(page.get_by_label("Password")).to_have_value("")


def test_sign_in_is_throttled_after_repeated_failures(anonymous: Page) -> None:
    page = anonymous
    statuses = []
    for attempt in range(6):
        page.goto("/ops/sign-in")
        page.get_by_label("Operator name").fill(THROTTLED)
        page.get_by_label("Password").fill(f"wrong password number {attempt}")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Sign in").click()
        statuses.append(answer.value.status)
    assert statuses == [401] * 5 + [429]
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins. Try again in")

    # The right password changes nothing while the name is throttled.
    sign_in(page, THROTTLED, PASSWORD)
    expect(page).to_have_url(re.compile(r"/ops/sign-in"))
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")


def test_a_post_without_the_csrf_token_is_refused(admin: Page) -> None:
    page = admin
    token = csrf_token(page)
    forms: list[Form] = [{}, {"csrf_token": "forged-" + token[7:]}]
    for form in forms:
        response = page.request.post("/ops/sign-out", form=form)
        assert response.status == 400, response.text()
        assert "Form refused" in response.text()
    # still signed in: neither request did anything
    page.goto("/ops/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")


def test_a_post_from_another_site_is_refused(admin: Page, console: Console) -> None:
    response = admin.request.post("/ops/sign-out", form={"csrf_token": csrf_token(admin)},
                                  headers={"Origin": "http://evil.example"})
    assert response.status == 403
    admin.goto("/ops/")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Overview")
