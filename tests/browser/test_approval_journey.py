"""The approval journey in a real Chromium: a Manager's large export waits, the Admin approves
it on the Approvals page, the Manager downloads the file once and the second try is refused.

The Owner first sets the policy on its page (exports over 1 row need one
approval). Every dialog is the design system's confirmation; the pages are
checked at 1280 px and 390 px (nothing scrolls sideways) and the watcher
fails the test on a console error, a CSP violation or a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from crm_app.extensions import db
from crm_app.rbac_setup import rbac

from .conftest import Browse, Live, page_width

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]


def confirm(page: Page) -> None:
    dialog = page.locator("dialog.rbac-dialog[open]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-rbac-dialog-confirm]").click()


def no_sideways_scroll(page: Page, width: int) -> None:
    assert page_width(page) <= width, page.url


def request_status(live: Live) -> list[tuple[str, str]]:
    R = rbac.models.ApprovalRequest
    with live.app.app_context():
        return [(r.operation, r.status) for r in db.session.scalars(sa.select(R).order_by(R.id))]


@pytest.mark.parametrize("width", [1280, 390])
def test_large_export_is_approved_then_downloaded_once(
        live: Live, browse: Browse, screenshot: Shot, width: int) -> None:
    owner = browse.login("owner@example.test", width=width)
    owner.goto("/settings/approvals/policy")
    owner.check("input[name=op_export]")
    owner.fill("input[name=n_export]", "1")
    owner.get_by_role("button", name="Save policy").click()
    confirm(owner)
    expect(owner.locator(".rbac-flash", has_text="Approval policy saved")).to_be_visible()
    no_sideways_scroll(owner, width)

    manager = browse.login("manager@example.test", width=width)
    manager.goto("/leads/")
    manager.locator("[data-action=export]").click()
    # The export link records nothing: its page offers to ask, with a reason.
    expect(manager.locator("[data-rbac-approval-required]")).to_be_visible()
    assert request_status(live) == []
    manager.fill("textarea[name=reason]", "Quarterly review")
    manager.get_by_role("button", name="Ask for approval").click()
    expect(manager.locator("[data-rbac-approval-status=pending]")).to_be_visible()
    expect(manager.get_by_text("pending approval").first).to_be_visible()
    assert request_status(live) == [("export", "pending")]
    screenshot(manager, f"approval-pending-{width}")
    no_sideways_scroll(manager, width)

    admin = browse.login("admin@example.test", width=width)
    admin.goto("/")
    # The bell in the header counts the request; its page links to it.
    bell = admin.locator("[data-rbac-bell]").first
    expect(bell.locator("[data-rbac-bell-count]")).to_have_text(re.compile(r"^[1-9]"))
    bell.click()
    expect(admin.locator("main")).to_contain_text("approval")
    admin.goto("/settings/approvals")
    row = admin.locator("#approvals-to-decide [data-rbac-approval]")
    expect(row).to_have_count(1)
    row.locator("a").click()
    admin.fill("textarea[name=reason]", "Quarterly review, checked")
    admin.locator("[data-rbac-approve]").click()
    confirm(admin)
    expect(admin.locator("[data-rbac-approval-status=executed]")).to_be_visible()
    assert request_status(live) == [("export", "executed")]
    screenshot(admin, f"approval-executed-{width}")
    no_sideways_scroll(admin, width)

    manager.reload()
    button = manager.locator("[data-rbac-download]")
    expect(button).to_be_visible()
    token = manager.locator("form:has([data-rbac-download]) input[name=csrf_token]").input_value()
    action = manager.locator("form:has([data-rbac-download])").get_attribute("action")
    with manager.expect_download() as download:
        button.click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("ID,Name") and "Lead of member" in text and "Lead of member2" not in text

    manager.reload()
    expect(manager.locator("[data-rbac-download]")).to_have_count(0)
    expect(manager.locator("[data-rbac-downloaded]")).to_be_visible()
    again = manager.request.post(live.url(action or ""), form={"csrf_token": token})
    assert again.status == 404  # the file downloads once
