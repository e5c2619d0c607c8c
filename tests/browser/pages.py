"""What the browser tests do on the console's pages: sign in, read the forms a page offers, run axe-core, take the
screenshots docs/ops-console.md shows."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import attrs
from playwright.sync_api import APIResponse, FilePayload, FloatRect, Page, ViewportSize

from tests.browser.server import PASSWORD

# What Playwright's request API takes as a form body and a multipart body.
Form = dict[str, str | float | bool]
Multipart = dict[str, str | float | bool | bytes | FilePayload]

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# What must never reach an operator's screen: a Python traceback or a server error page's wording.
STACK_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+|"
                         r"Internal Server Error|werkzeug\.exceptions|sqlalchemy\.exc", re.I)


def sign_in(page: Page, name: str, password: str = PASSWORD) -> None:
    """Sign ``name`` in through the form, as a person does (typing into the labelled fields)."""
    page.goto("/ops/sign-in")
    page.get_by_label("Operator name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def csrf_token(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token, f"no CSRF token on {page.url}"
    return token


@attrs.frozen
class FormInfo:
    """A form as the page offers it: where it goes, how, and its named controls (name, type, value)."""

    page_url: str
    action: str
    method: str
    enctype: str
    fields: tuple[tuple[str, str, str], ...]
    submit: str

    @property
    def inputs(self) -> tuple[tuple[str, str, str], ...]:
        """The controls a person fills in or ticks (not the CSRF token)."""
        return tuple(f for f in self.fields if f[0] != "csrf_token")


# Attributes, not properties: a form with a field named "action" (the audit filter) hides its action property.
_FORMS_JS = """() => Array.from(document.forms).map(f => ({
  action: new URL(f.getAttribute('action') || '', document.baseURI).href,
  method: (f.getAttribute('method') || 'get').toLowerCase(),
  enctype: (f.getAttribute('enctype') || 'application/x-www-form-urlencoded').toLowerCase(),
  fields: Array.from(f.elements).filter(e => e.name && e.tagName !== 'BUTTON')
            .map(e => [e.name, (e.type || e.tagName).toLowerCase(), e.value || '']),
  submit: (f.querySelector('button[type=submit], button:not([type])') || {}).textContent || ''
}))"""


def forms(page: Page) -> list[FormInfo]:
    found: list[dict[str, Any]] = page.evaluate(_FORMS_JS)
    return [FormInfo(page.url, f["action"], f["method"], f["enctype"],
                     tuple((str(n), str(t), str(v)) for n, t, v in f["fields"]), str(f["submit"]).strip())
            for f in found]


def post_forms(page: Page) -> list[FormInfo]:
    return [f for f in forms(page) if f.method == "post"]


# POSTs any signed-in operator may send: they change nothing (the code lookup is a read sent by POST, so that the
# code stays out of the address).
READ_POSTS = ("/ops/sign-out", "/ops/codes/lookup")


def change_forms(page: Page) -> list[FormInfo]:
    """The POST forms that change something (every one but sign-out and the code lookup)."""
    return [f for f in post_forms(page) if not f.action.endswith(READ_POSTS)]


@attrs.frozen
class ConsolePage:
    """A page of the console: its name in docs/img (``console-<name>.png``) and its address."""

    name: str
    path: str
    heading: str


def console_pages(campaign_id: int, campaign_name: str, code_id: int, user_id: int) -> list[ConsolePage]:
    """Every page of the console behind the sign-in, showing the given campaign, code and user."""
    return [
        ConsolePage("overview", "/ops/", "Overview"),
        ConsolePage("campaigns", "/ops/campaigns", "Campaigns"),
        ConsolePage("campaign-new", "/ops/campaigns/new", "New campaign"),
        ConsolePage("campaign", f"/ops/campaigns/{campaign_id}", campaign_name),
        ConsolePage("code-lookup", "/ops/codes/lookup", "Code lookup"),
        ConsolePage("code", f"/ops/codes/{code_id}", f"Code {code_id}"),
        ConsolePage("users", "/ops/users", "Users"),
        ConsolePage("user", f"/ops/users/{user_id}", f"User {user_id}"),
        ConsolePage("payment-reviews", "/ops/payment-reviews", "Payment reviews"),
        ConsolePage("audit", "/ops/audit", "Audit log"),
    ]


def assert_no_stack_trace(text: str, where: str) -> None:
    match = STACK_TRACE.search(text)
    assert match is None, f"{where} shows {match.group(0)!r}" if match else ""


def assert_answered(response: APIResponse, where: str) -> None:
    """A clear answer to bad input: not a server error, and no stack trace in it."""
    assert response.status < 500, f"{where} answered {response.status}: {response.text()[:2000]}"
    assert_no_stack_trace(response.text(), where)


# --- axe-core ---------------------------------------------------------------------------------------------------

_AXE_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ' -> ' + (n.failureSummary || '').replace(/\\s+/g, ' '))}));
}"""


@functools.cache
def _axe_source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def axe_violations(page: Page, axe_js: Path) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now. The script is evaluated through the
    DevTools protocol, which the page's Content-Security-Policy does not govern (a <script> tag would be refused:
    the console allows only its own files), so the page is checked with its real CSP in force."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source(axe_js))
    violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def describe_violations(url: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{url}:"]
    for v in violations:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
        lines.extend(f"      {node}" for node in v["nodes"][:5])
    return "\n".join(lines)


# --- screenshots -------------------------------------------------------------------------------------------------

# A long page (a campaign's 50 codes) is cut here: the picture shows the top, and stays a few hundred KB.
MAX_SHOT_HEIGHT = 2400


def csv_file(content: bytes) -> FilePayload:
    return {"name": "codes.csv", "mimeType": "text/csv", "buffer": content}


def screenshot(page: Page, name: str) -> Path:
    """docs/img/console-<name>.png: the whole page at 1280 px wide (at most ``MAX_SHOT_HEIGHT`` high), for
    docs/ops-console.md."""
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / f"console-{name}.png"
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    clip: FloatRect | None = None
    if height > MAX_SHOT_HEIGHT:
        clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": MAX_SHOT_HEIGHT}
    page.screenshot(path=str(path), full_page=True, clip=clip, animations="disabled", caret="hide")
    return path
