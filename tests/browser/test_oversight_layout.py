"""The oversight pages on a phone (390 px) and a desktop, in a real Chromium.

Nothing may scroll sideways: wide tables scroll inside their wrapper, the
audit rows stack. The refusal page's "Request access" goes through the real
form (CSRF token included) and the sharing list asks before revoking.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Browse, Live, page_width

pytestmark = pytest.mark.browser

PAGES = ("/settings/audit", "/settings/who-could?mode=now&resource=deals&action=export",
         "/settings/sharing", "/settings/sharing/new")


def assert_no_sideways_scroll(page: Page, what: str) -> None:
    width = page_width(page)
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{what}: {width}px wide in a {viewport}px window"


def test_oversight_pages_fit_a_phone(live: Live, browse: Browse,
                                     screenshot: Callable[[Page, str], None]) -> None:
    owner = browse.login("owner@example.test")
    for width in (1280, 390):
        owner.set_viewport_size({"width": width, "height": 860})
        for path in PAGES:
            response = owner.goto(path)
            assert response is not None and response.status == 200, path
            assert_no_sideways_scroll(owner, f"{path} at {width}")
            name = path.strip("/").split("?")[0].replace("/", "-")
            screenshot(owner, f"oversight-{name}-{width}")


def test_refusal_page_requests_access(live: Live, browse: Browse,
                                      screenshot: Callable[[Page, str], None]) -> None:
    junior = browse.login("junior_rep@example.test")
    junior.set_viewport_size({"width": 390, "height": 860})
    browse.goto_refused(junior, "/settings/roles", 403)
    expect(junior.locator(".rbac-refusal-need")).to_contain_text("You need view on roles.")
    assert_no_sideways_scroll(junior, "refusal page")
    screenshot(junior, "oversight-refusal-390")
    browse.watch.expected_failures.add(live.url("/settings/roles"))
    junior.fill("#rbac-request-note", "to review my team's roles")
    junior.click("button:has-text('Request access')")
    expect(junior.get_by_text("Request sent to Owner, Admin.")).to_be_visible()


def test_offer_by_name_then_revoke_after_confirming(live: Live, browse: Browse,
                                                     screenshot: Callable[[Page, str], None]
                                                     ) -> None:
    owner = browse.login("owner@example.test")
    owner.set_viewport_size({"width": 390, "height": 860})
    owner.goto("/settings/sharing/new")
    owner.fill("input[name=workspace]", "Beta Education")
    owner.check("input[name=share__clients__view]")
    owner.click("button:has-text('Offer agreement')")
    expect(owner.get_by_text("offered to Beta Education")).to_be_visible()
    row = owner.locator("tr[data-agreement]")
    expect(row).to_contain_text("Beta Education")
    assert_no_sideways_scroll(owner, "sharing list with an agreement")
    owner.click("tr[data-agreement] button:has-text('Revoke')")
    dialog = owner.locator("dialog.rbac-dialog")
    expect(dialog).to_contain_text("Beta Education loses access to 5 Clients.")
    screenshot(owner, "oversight-revoke-dialog-390")
    dialog.locator("[data-rbac-dialog-confirm]").click()
    expect(owner.get_by_text("revoked.")).to_be_visible()
    expect(owner.locator("tr[data-agreement] .rbac-status-revoked")).to_be_visible()
