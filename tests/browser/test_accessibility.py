"""axe-core on every page of the console (SPEC 14): no serious or critical violation, with the page's own strict
Content-Security-Policy in force. The same walk takes the screenshots of docs/ops-console.md (docs/img)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserDeps, Console
from tests.browser.pages import ConsolePage, axe_violations, describe_violations, screenshot

pytestmark = pytest.mark.browser


def check(page: Page, deps: BrowserDeps, failures: list[str], shot: str | None = None) -> None:
    violations = axe_violations(page, deps.axe_js)
    if violations:
        failures.append(describe_violations(page.url, violations))
    if shot:
        screenshot(page, shot)


def test_every_page_has_no_serious_accessibility_violation(
        anonymous: Page, admin: Page, browser_deps: BrowserDeps, every_page: list[ConsolePage],
        console: Console) -> None:
    failures: list[str] = []

    anonymous.goto("/ops/sign-in")
    check(anonymous, browser_deps, failures, "sign-in")
    # the sign-in form refused, its error shown
    anonymous.get_by_role("button", name="Sign in").click()
    check(anonymous, browser_deps, failures)

    for p in every_page:
        response = admin.goto(p.path)
        assert response is not None and response.status == 200, p.path
        expect(admin.get_by_role("heading", level=1)).to_contain_text(p.heading)
        check(admin, browser_deps, failures, p.name)

    # forms sent back with errors next to their fields, and an error page
    admin.goto("/ops/campaigns/new")
    admin.get_by_role("button", name="Create campaign").click()
    expect(admin.locator(".field.has-error").first).to_be_visible()
    check(admin, browser_deps, failures)
    admin.goto(f"/ops/campaigns/{console.seeded.spring_campaign_id}")
    admin.get_by_role("button", name="Generate codes").click()
    expect(admin.locator(".field.has-error").first).to_be_visible()
    check(admin, browser_deps, failures)
    admin.goto("/ops/users?user_id=not-a-number")
    check(admin, browser_deps, failures)
    admin.goto("/ops/campaigns/987654321")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Not found")
    check(admin, browser_deps, failures)

    assert not failures, "axe-core found serious or critical violations:\n" + "\n".join(failures)
