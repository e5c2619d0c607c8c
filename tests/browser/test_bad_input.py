"""Bad input everywhere in the console (SPEC 13): every form of every page sent with junk in every field —
letters in number fields, huge and negative numbers, empty required fields, far too long text, control characters,
broken dates, broken CSV files — and addresses with impossible ids. Each answer is a page (400, 404, 409, ...),
never a 5xx, never a stack trace; and nothing a junk request could have touched changed."""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urlencode

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Console
from tests.browser.pages import (
    ConsolePage,
    Form,
    FormInfo,
    Multipart,
    assert_answered,
    csrf_token,
    csv_file,
    forms,
)

pytestmark = pytest.mark.browser

HUGE = "9" * 40
JUNK = ("", "abc", "-1", HUGE, "1e309", "x" * 5000, "\u0000\u202e\U0001f4a5", "2026-13-45T99:99")
# Only what the sign-in form refuses before it checks a password: wrong passwords would throttle this address.
SIGN_IN_JUNK = ("", "x" * 5000)
JUNK_FILES = (b"", b"\xff\xfe\x00\x00not utf-8", b"code\n" + b"A" * 70_000 + b"\n", b"code,campaign_name\n,\n",
              b'"unterminated\nquote', b"no,code,column\n1,2,3\n", b"code\nABC\nABC\n")
BAD_ADDRESSES = (
    "/ops/?window_hours=abc", "/ops/?window_hours=" + HUGE,
    "/ops/campaigns?cursor=" + HUGE, "/ops/campaigns?cursor=-5&status=NOPE&promo_type=x",
    "/ops/campaigns/abc", "/ops/campaigns/0", "/ops/campaigns/" + HUGE,
    "/ops/codes/0", "/ops/codes/" + HUGE, "/ops/codes/abc",
    "/ops/users?user_id=" + HUGE, "/ops/users?user_id=-1", "/ops/users?user_id=%00",
    "/ops/users/0", "/ops/users/" + HUGE, "/ops/users/abc",
    "/ops/payment-reviews?cursor=abc", "/ops/payment-reviews?cursor=" + HUGE,
    "/ops/audit?cursor=-1", "/ops/audit?cursor=" + HUGE, "/ops/audit?target_id=" + "x" * 5000,
)
BAD_POSTS = (
    f"/ops/campaigns/{HUGE}/status", f"/ops/campaigns/{HUGE}/change", "/ops/campaigns/0/generate",
    f"/ops/campaigns/{HUGE}/import", f"/ops/codes/{HUGE}/status", f"/ops/users/1/purchases/{HUGE}/refund",
    f"/ops/users/{HUGE}/purchases/1/rollback", f"/ops/payment-reviews/{HUGE}/resolve",
)


def unchanged(console: Console) -> list[list[tuple[object, ...]]]:
    return [console.server.query(sql) for sql in (
        "SELECT id, name, status, max_total_uses, per_user_limit, valid_until, updated_at FROM promo_campaigns "
        "ORDER BY id",
        "SELECT count(*), max(id), max(updated_at) FROM promo_codes",
        "SELECT id, status, updated_at FROM purchases ORDER BY id",
    )]


def send(page: Page, form: FormInfo, value: str, token: str) -> None:
    where = f"{form.method.upper()} {form.action} with {value[:20]!r}"
    fields: Form = {name: value for name, _, _ in form.inputs}
    if form.method == "get":
        address = urldefrag(form.action).url.split("?", 1)[0]
        assert_answered(page.request.get(address + "?" + urlencode(fields)), where)
        return
    fields["csrf_token"] = token
    if form.enctype != "multipart/form-data":
        assert_answered(page.request.post(form.action, form=fields), where)
        return
    files = [name for name, kind, _ in form.inputs if kind == "file"]
    multipart: Multipart = {k: v for k, v in fields.items() if k not in files}
    multipart.update({f: csv_file(value.encode()) for f in files})
    assert_answered(page.request.post(form.action, multipart=multipart), where)


def send_files(page: Page, form: FormInfo, token: str) -> None:
    """An upload form, confirmed, with each junk file."""
    files = [name for name, kind, _ in form.inputs if kind == "file"]
    for content in JUNK_FILES:
        multipart: Multipart = {name: "" for name, _, _ in form.inputs if name not in files}
        multipart.update({"csrf_token": token, "confirm": "yes", **{f: csv_file(content) for f in files}})
        assert_answered(page.request.post(form.action, multipart=multipart), f"{form.action} with {content[:20]!r}")


def test_no_page_answers_junk_with_a_server_error(admin: Page, anonymous: Page, console: Console,
                                                  every_page: list[ConsolePage]) -> None:
    before = unchanged(console)
    anonymous.goto("/ops/sign-in")
    (sign_in_form,) = forms(anonymous)
    for value in SIGN_IN_JUNK:
        send(anonymous, sign_in_form, value, csrf_token(anonymous))

    # The resolve form of one review only (a junk note can be a fine note: it would resolve the review).
    junk_review = f"/payment-reviews/{console.seeded.review_ids[1]}/resolve"
    seen: set[str] = set()
    for p in every_page:
        admin.goto(p.path)
        token = csrf_token(admin)
        for form in forms(admin):
            kind = re.sub(r"\d+", "N", form.action) + form.method
            if form.action.endswith("/ops/sign-out") or (kind in seen and "/payment-reviews/" not in form.action):
                continue
            if "/payment-reviews/" in form.action and not form.action.endswith(junk_review):
                continue
            seen.add(kind)
            for value in JUNK:
                send(admin, form, value, token)
            if form.enctype == "multipart/form-data":
                send_files(admin, form, token)

    problems: list[str] = []
    token = csrf_token(admin)
    # every page with junk in every query parameter any page reads
    junk_query = f"?cursor={HUGE}&window_hours=-1&code_prefix=%F0%9F&code_status=NOPE&all=%00&user_id=1e9"
    addresses = [*BAD_ADDRESSES, *(p.path + junk_query for p in every_page)]
    answers = [(f"GET {a}", admin.request.get(a)) for a in addresses]
    answers += [(f"POST {a}", admin.request.post(a, form={"csrf_token": token, "confirm": "yes"})) for a in BAD_POSTS]
    for where, response in answers:
        try:
            assert_answered(response, where)
        except AssertionError as exc:
            problems.append(str(exc).splitlines()[0])
    assert not problems, "\n".join(problems)
    assert unchanged(console) == before
    assert {"/ops/campaigns/new" + "post", "/ops/campaigns/N/generatepost", "/ops/campaigns/N/importpost",
            "/ops/users/N/purchases/N/refundpost", "/ops/codes/lookuppost", "/ops/auditget"} <= {
        re.sub(r"^https?://[^/]+", "", k) for k in seen}, seen
