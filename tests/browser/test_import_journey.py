"""Importing leads from a CSV in a real Chromium: upload, a preview with errors, import.

An Admin uploads a file with one bad row: the preview names the line and
the field, and the Import button stays disabled. The corrected file previews
clean; Import posts through the page's script, which polls the progress
endpoint, then lands on the leads list showing the new rows. A Member (no
``import``) is offered no import link and is refused the page. SQLite only
(see conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import Browse, Live

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]

BAD = ("Name,Company,Status\n"
       "Imported Ada,Analytical,new\n"
       "Imported Grace,Navy,sunk\n")
GOOD = BAD.replace("sunk", "qualified")


def choose_file(page: Page, text: str) -> None:
    page.set_input_files("#import-file", files=[{"name": "leads.csv", "mimeType": "text/csv",
                                                  "buffer": text.encode("utf-8")}])
    page.click("form.import-upload button[type=submit]")


@pytest.mark.parametrize("width", [1280, 390])
def test_admin_imports_leads_after_a_preview(live: Live, browse: Browse, screenshot: Shot,
                                             tmp_path: Path, width: int) -> None:
    live.app.config["CRM_IMPORT_PROGRESS_DIR"] = str(tmp_path / "progress")
    page = browse.login("admin@example.test", width=width)
    page.goto("/leads/")
    page.click("[data-action=import]")
    expect(page.locator("h1")).to_have_text("Import leads")

    choose_file(page, BAD)
    summary = page.locator(".import-summary")
    expect(summary).to_have_attribute("data-errors", "1")
    row = page.locator("table.import-errors tr[data-line='3']")
    expect(row).to_contain_text("status")
    expect(row).to_contain_text("is not one of")
    expect(page.locator("[data-import-start]")).to_be_disabled()
    screenshot(page, f"import-preview-errors-{width}")

    choose_file(page, GOOD)
    expect(summary).to_have_attribute("data-errors", "0")
    expect(page.locator("[data-import-start]")).to_be_enabled()
    screenshot(page, f"import-preview-ready-{width}")
    page.click("[data-import-start]")
    page.wait_for_url(live.url("/leads/"))
    expect(page.locator(".flash, .rbac-flash").first).to_contain_text("Imported 2 leads")
    expect(page.get_by_text("Imported Grace")).to_be_visible()
    screenshot(page, f"import-done-{width}")


def test_member_is_offered_no_import(live: Live, browse: Browse) -> None:
    page = browse.login("member@example.test")
    page.goto("/leads/")
    assert page.locator("[data-action=import]").count() == 0
    browse.goto_refused(page, "/imports/leads", 403)
