"""Roles in the browser (SPEC 14): a viewer reads every page but is shown no change control, and a change request
forged from a viewer's session — every form an admin gets, sent with the viewer's own valid CSRF token — is
refused 403 with nothing changed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.pages import ConsolePage, Form, FormInfo, Multipart, change_forms, csrf_token, csv_file
from tests.browser.server import VIEWER

pytestmark = pytest.mark.browser

CHANGE_LABELS = ("New campaign", "Create campaign", "Pause campaign", "Resume campaign", "Save changes",
                 "Generate codes", "Import CSV", "Pause code", "Resume code", "Refund through Telegram",
                 "Roll back redemption", "Resolve")


def forged(page: Page, form: FormInfo, token: str) -> int:
    """Send ``form`` as an admin's browser would, confirmed, with ``token`` as its CSRF token; the status."""
    values: Form = {name: value for name, _, value in form.fields}
    values.update({"csrf_token": token, "confirm": "yes"})
    if form.enctype == "multipart/form-data":
        multipart: Multipart = {**values}
        multipart.update({name: csv_file(b"code\nFORGEDCODE01\n") for name, kind, _ in form.fields if kind == "file"})
        return page.request.post(form.action, multipart=multipart).status
    return page.request.post(form.action, form=values).status


def state(console: Console) -> list[list[tuple[object, ...]]]:
    """What a change would touch: campaigns, codes, purchases, redemptions, reviews and the audit log."""
    return [console.server.query(sql) for sql in (
        "SELECT id, status, max_total_uses, per_user_limit, valid_until, updated_at FROM promo_campaigns ORDER BY id",
        "SELECT count(*), max(id), max(updated_at) FROM promo_codes",
        "SELECT id, status, updated_at FROM purchases ORDER BY id",
        "SELECT count(*), max(updated_at) FROM promo_redemptions",
        "SELECT id, resolved_at FROM payment_reviews ORDER BY id",
        "SELECT count(*) FROM audit_log",
    )]


def test_a_viewer_sees_no_change_control_and_a_forged_change_is_refused(
        admin: Page, viewer: Page, console: Console, every_page: list[ConsolePage]) -> None:
    admin_forms: list[FormInfo] = []
    for p in every_page:
        admin.goto(p.path)
        admin_forms += change_forms(admin)
    actions = {f.action.split("/ops/", 1)[1].split("/", 2)[0] + ":" + f.action.rsplit("/", 1)[1]
               for f in admin_forms}
    # campaign create, status, change, generate, import; a code's status; refund; resolve
    assert {"campaigns:new", "campaigns:status", "campaigns:change", "campaigns:generate", "campaigns:import",
            "codes:status", "users:refund", "payment-reviews:resolve"} <= actions, actions

    shown: dict[str, list[str]] = {}
    for p in every_page:
        response = viewer.goto(p.path)
        assert response is not None
        if p.name == "campaign-new":
            assert response.status == 403, "a viewer may not open the new-campaign form"
            continue
        assert response.status == 200, p.path
        expect(viewer.get_by_role("heading", level=1)).to_contain_text(p.heading)
        controls = [f"form -> {f.action}" for f in change_forms(viewer)]
        controls += [label for label in CHANGE_LABELS
                     if viewer.get_by_role("button", name=label, exact=True).count()
                     or viewer.get_by_role("link", name=label, exact=True).count()]
        if controls:
            shown[p.path] = controls
    assert not shown, f"a viewer is shown change controls: {shown}"

    before = state(console)
    refunds_before = len(console.server.bot_api.calls_to("refundStarPayment"))
    token = csrf_token(viewer)
    answers = {f.action: forged(viewer, f, token) for f in admin_forms}
    assert set(answers.values()) == {403}, {k: v for k, v in answers.items() if v != 403}
    assert state(console) == before
    assert len(console.server.bot_api.calls_to("refundStarPayment")) == refunds_before
    assert console.server.query("SELECT count(*) FROM audit_log WHERE actor = ?", (VIEWER,)) == [(0,)]


def test_a_viewer_may_look_a_code_up(viewer: Page, console: Console, spring_code_id: int) -> None:
    from tests.browser.seed import SPRING_CODE

    viewer.get_by_role("link", name="Code lookup").click()
    viewer.get_by_label("Code", exact=True).fill(SPRING_CODE.lower())
    viewer.get_by_role("button", name="Look up").click()
    expect(viewer.get_by_role("heading", level=1)).to_contain_text(f"Code {spring_code_id}")
    assert SPRING_CODE not in viewer.content() and SPRING_CODE.lower() not in viewer.content()
