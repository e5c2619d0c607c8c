"""An admin runs a campaign from the browser (SPEC 14): creates it, generates 100 codes and receives them as the one
CSV download, imports more from a CSV file, changes the budget, pauses and resumes it and one code, and looks one
of the codes up — and no plaintext code reaches an address, a page, a log line or the database (SPEC 13)."""

from __future__ import annotations

import csv
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.server import ADMIN

pytestmark = pytest.mark.browser

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"


def flash(page: Page) -> str:
    return page.locator(".flashes").inner_text()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def assert_kept_nowhere(console: Console, page: Page, codes: list[str]) -> None:
    """None of ``codes`` (as typed, or normalized) is in the address bar, the page, the server's log or the
    database file (an SQL dump of every table, and the raw bytes of the file and its write-ahead log)."""
    log, database, html = console.server.log(), console.server.database_text(), page.content()
    for code in codes:
        for shown in {code, code.upper(), code.replace("-", "")}:
            assert shown not in page.url, f"a code is in the address {page.url}"
            assert shown not in html, f"a code is on the page {page.url}"
            assert shown not in log, "a code is in the server's log"
            assert shown not in database, "a code is in the database"


def test_an_admin_runs_a_campaign_and_no_code_is_kept_anywhere(admin: Page, console: Console,
                                                               tmp_path: Path) -> None:
    page = admin
    name = "Summer sale 30"

    # --- create --------------------------------------------------------------------------------------
    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Campaigns")
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Type", exact=True).select_option("PERCENT_DISCOUNT")
    page.get_by_label("Discount percent").fill("30")
    page.get_by_label("Budget (max total uses)").fill("500")
    page.get_by_label("Per-user limit").fill("1")
    page.get_by_label("Valid until").fill("2031-06-30T23:59")
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/ops/campaigns/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    assert "created" in flash(page)
    campaign_id = int(page.url.rsplit("/", 1)[1])
    terms = page.locator("dl.terms")
    expect(terms).to_contain_text("30 %")
    expect(terms).to_contain_text("2031-06-30 23:59 UTC")

    # --- generate 100 codes: the CSV download is their only copy -------------------------------------
    page.get_by_label("Number of codes").fill("100")
    page.get_by_label("I understand these codes are shown only in this one download").check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Generate codes").click()
    download = download_info.value
    assert download.suggested_filename == f"campaign-{campaign_id}-codes.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = read_csv(saved)
    assert len(rows) == 100
    assert {r["campaign_id"] for r in rows} == {str(campaign_id)}
    assert {r["campaign_name"] for r in rows} == {name}
    codes = [r["code"] for r in rows]
    assert len(set(codes)) == 100 and all(len(c) >= 8 for c in codes)

    page.reload()
    assert "100 codes generated" in flash(page)
    expect(page.locator("table", has=page.locator("caption", has_text="Codes by status"))).to_contain_text(
        "100 in all")

    # --- import 3 more from a CSV file (only the code column: the campaign's terms apply) --------------
    imported = ["IMP" + "".join(secrets.choice(ALPHABET) for _ in range(9)) for _ in range(3)]
    upload = tmp_path / "import.csv"
    upload.write_text("code\n" + "".join(f"{c.lower()}\n" for c in imported), encoding="utf-8")
    page.get_by_label("CSV file").set_input_files(upload)
    page.get_by_label("I understand an import cannot be undone").check()
    with page.expect_download() as import_info:
        page.get_by_role("button", name="Import CSV").click()
    report = tmp_path / "import-report.csv"
    import_info.value.save_as(report)
    assert sorted(r["normalized_code"] for r in read_csv(report)) == sorted(imported)
    page.reload()
    assert "3 codes imported" in flash(page)

    # --- change the budget ----------------------------------------------------------------------------
    page.get_by_label("Budget (max total uses)").fill("750")
    page.get_by_role("button", name="Save changes").click()
    assert "budget 750" in flash(page)
    expect(terms).to_contain_text("750")

    # --- pause and resume the campaign, then one code -------------------------------------------------
    page.get_by_role("button", name="Pause campaign").click()
    assert "is paused now" in flash(page)
    expect(page.locator("p.lead")).to_contain_text("PAUSED")
    page.get_by_role("button", name="Resume campaign").click()
    assert "is active now" in flash(page)
    expect(page.locator("p.lead")).to_contain_text("ACTIVE")

    first_row = page.locator("#codes tbody tr").first
    code_id = first_row.locator("td").first.inner_text().strip()
    first_row.get_by_role("button", name="Pause code").click()
    assert f"Code {code_id}" in flash(page) and "paused" in flash(page)
    row = page.locator("#codes tbody tr", has=page.locator("td.num", has_text=re.compile(rf"^{code_id}$")))
    expect(row).to_contain_text("PAUSED")
    row.get_by_role("button", name="Resume code").click()
    assert "active now" in flash(page)

    # --- look one of the codes up, typed as a user would send it --------------------------------------
    code = codes[7]
    typed = "-".join(code[i:i + 4] for i in range(0, len(code), 4)).lower()
    page.get_by_role("link", name="Code lookup").click()
    page.get_by_label("Code", exact=True).fill(typed)
    page.get_by_role("button", name="Look up").click()
    expect(page).to_have_url(re.compile(r"/ops/codes/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(code[:4])
    expect(page.get_by_role("link", name=name)).to_be_visible()
    assert_kept_nowhere(console, page, [typed, *codes, *imported])
    # Back to the lookup page: its field is empty (the browser keeps no copy either).
    page.go_back()
    expect(page.get_by_label("Code", exact=True)).to_have_value("")

    # A code nobody issued: the form again, empty, with the answer above it.
    page.get_by_label("Code", exact=True).fill("NOSUCHCODE42")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("alert")).to_contain_text("No code matches")
    expect(page.get_by_label("Code", exact=True)).to_have_value("")
    assert "NOSUCHCODE42" not in page.content()

    # --- every change is in the audit log under the operator's name ----------------------------------
    page.goto(f"/ops/audit?actor={ADMIN}&target_type=campaign&target_id={campaign_id}")
    log_rows = page.locator("tbody tr")
    actions = set(log_rows.locator("td:nth-child(3)").all_inner_texts())
    assert {"campaign.created", "codes.generated", "codes.imported", "campaign.changed", "campaign.paused",
            "campaign.resumed"} <= actions, actions
    assert_kept_nowhere(console, page, [*codes, *imported])


def test_bad_input_gets_the_form_back_with_the_error_next_to_the_field(admin: Page, console: Console) -> None:
    page = admin
    page.goto("/ops/campaigns/new")
    page.get_by_label("Name", exact=True).fill("Bad input campaign")
    page.get_by_label("Type", exact=True).select_option("PERCENT_DISCOUNT")
    page.get_by_label("Discount percent").fill("lots")
    page.get_by_label("Budget (max total uses)").fill("99999999999999999999999999")
    page.get_by_label("Per-user limit").fill("-3")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create campaign").click()
    assert answer.value.status == 400
    for label in ("Discount percent", "Budget (max total uses)", "Per-user limit"):
        field = page.locator(".field.has-error", has=page.get_by_label(label, exact=True))
        expect(field.locator(".error")).to_contain_text(label)
    # what was typed is still there to correct; nothing was created
    expect(page.get_by_label("Name", exact=True)).to_have_value("Bad input campaign")
    assert console.server.query("SELECT count(*) FROM promo_campaigns WHERE name = ?",
                                ("Bad input campaign",)) == [(0,)]
