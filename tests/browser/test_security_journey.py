"""The Security page in a real Chromium: an Owner previews a change, saves it, and is kept
from locking themselves out, at laptop and phone widths (nothing scrolls sideways)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from crm_app.extensions import db
from crm_app.rbac_setup import rbac

from .conftest import Browse, Live, page_width

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
PAGE = "/settings/security"


def no_sideways_scroll(page: Page, width: int) -> None:
    assert page_width(page) <= width, page.url


def saved_policy(live: Live) -> tuple[int, str] | None:
    P = rbac.models.SecurityPolicy
    with live.app.app_context():
        row = db.session.execute(sa.select(P.idle_minutes_member, P.ip_allowlist)).first()
        return None if row is None else (row[0], row[1])


@pytest.mark.parametrize("width", [1280, 390])
def test_owner_previews_saves_and_cannot_lock_themselves_out(
        live: Live, browse: Browse, screenshot: Shot, width: int) -> None:
    page = browse.login("owner@example.test", width=width)
    page.goto(PAGE)
    expect(page.locator("[data-rbac-your-ip]")).to_have_text("127.0.0.1")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)

    browse.watch.expected_failures.add(live.url(PAGE + "#security-preview"))  # the 409
    page.fill("textarea[name=ip_allowlist]", "203.0.113.0/24")
    page.click("button:has-text('Preview the change')")
    expect(page.locator("#ip_allowlist-errors")).to_contain_text("127.0.0.1")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)

    page.fill("textarea[name=ip_allowlist]", "127.0.0.1/32\n203.0.113.0/24")
    page.fill("input[name=idle_minutes_member]", "60")
    page.click("button:has-text('Preview the change')")
    expect(page.locator("[data-change=idle_minutes_member]")).to_contain_text("480 → 60")
    expect(page.locator("[data-change=ip_allowlist]")).to_contain_text(
        "none → 127.0.0.1/32, 203.0.113.0/24")
    expect(page.locator("[data-preview-count=must_enrol]")).to_be_visible()
    no_sideways_scroll(page, width)
    screenshot(page, f"security-preview-{width}")
    assert saved_policy(live) is None

    page.get_by_role("button", name="Save").click()
    dialog = page.locator("dialog.rbac-dialog[open]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-rbac-dialog-confirm]").click()
    expect(page.locator(".rbac-flash", has_text="Security policy saved")).to_be_visible()
    assert saved_policy(live) == (60, "127.0.0.1/32\n203.0.113.0/24")
    no_sideways_scroll(page, width)
