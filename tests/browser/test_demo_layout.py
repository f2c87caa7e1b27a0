"""The demo's pages in a real Chromium: at phone width nothing scrolls sideways, the
sidebar folds into a menu, and a bulk delete asks with the number of records first.

Screenshots of every page at 390 px go to ``screenshots/phone-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import team, workspaces
from crm_rbac_plugin.security import PasswordRules, describe_rules

from .conftest import Browse, Live, sideways

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def pages(live: Live) -> list[str]:
    lead = live.world.lead_ids["member"]
    return ["/", "/leads/", "/deals/", "/clients/", "/tasks/", "/notes/", "/access",
            "/leads/new", f"/leads/{lead}", f"/leads/{lead}/edit", "/admin/", "/admin/leads/",
            "/settings/profile", "/settings/members", "/settings/roles"]


def test_no_page_scrolls_sideways_at_390_or_1280_px(live: Live, browse: Browse,
                                                  screenshot: Callable[[Page, str], None]
                                                  ) -> None:
    owner = browse.login("owner@example.test")
    for size in (PHONE, DESKTOP):
        owner.set_viewport_size(size)
        for path in pages(live):
            response = owner.goto(path)
            assert response is not None and response.status == 200, path
            assert sideways(owner) <= 0, (size["width"], path, sideways(owner))
            if size is PHONE:
                screenshot(owner, "phone-" + (re.sub(r"\W+", "-", path).strip("-") or "home"))


def test_the_sidebar_is_a_menu_at_phone_width(live: Live, browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    owner.set_viewport_size(PHONE)
    owner.goto("/leads/")
    menu = owner.locator("#sidebar-menu")
    expect(menu).to_be_hidden()
    owner.click("[data-menu-toggle]")
    expect(menu).to_be_visible()
    expect(owner.locator("[data-menu-toggle]")).to_have_attribute("aria-expanded", "true")
    owner.click("#sidebar-menu a.nav-item:has-text('Deals')")
    owner.wait_for_url(live.url("/deals/"))


def invitation_token(live: Live, email: str = "new.rep@example.test",
                     role: str = "member") -> str:
    """Invite ``email`` to the world's workspace as its Owner, with the role of key
    ``role``; return the link's token."""
    with live.app.test_request_context():
        ws = db.session.scalar(sa.select(rbac.models.Workspace).where(
            rbac.models.Workspace.slug == "acme"))
        owner = db.session.scalar(sa.select(rbac.models.Membership).where(
            rbac.models.Membership.workspace_id == ws.id).order_by(rbac.models.Membership.id))
        _, token = team.invite(rbac, rbac.access_for(owner), email,
                               [workspaces.role_by_key(rbac, ws, role)], send=False)
        db.session.commit()
        db.session.remove()
    return str(token)


def test_public_pages_fit_a_phone(live: Live, browse: Browse,
                                  screenshot: Callable[[Page, str], None]) -> None:
    token = invitation_token(live)
    page = browse.page()
    for size, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page.set_viewport_size(size)
        for path, shot in (("/login", "login"), (f"/settings/invitations/{token}", "invitation")):
            page.goto(path)
            assert sideways(page) <= 0, (name, path)
            screenshot(page, f"{name}-{shot}")
    expect(page.locator(".auth-card h1")).to_have_text("Join Acme Sales")
    # The rule the service applies (no workspace of this account has a policy row).
    expect(page.locator("#password-help")).to_have_text(describe_rules(PasswordRules()))


def test_bulk_delete_asks_with_the_count_and_needs_a_selection(live: Live,
                                                               browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    owner.set_viewport_size(PHONE)
    owner.goto("/leads/")
    delete = owner.locator("[data-action=bulk-delete]")
    expect(delete).to_be_disabled()
    boxes = owner.locator("input[name=ids]")
    total = boxes.count()
    assert total >= 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    expect(owner.locator("[data-rbac-selected-count=ids]")).to_have_text("2 selected")
    expect(delete).to_be_enabled()
    delete.scroll_into_view_if_needed()
    expect(delete).to_be_in_viewport()  # the bulk bar is reachable at 390 px
    delete.click()
    dialog = owner.locator("dialog.rbac-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".rbac-dialog-message")).to_have_text(
        "Delete 2 selected leads? This cannot be undone.")
    dialog.locator("[value=cancel]").click()
    expect(dialog).to_be_hidden()
    assert owner.locator("input[name=ids]").count() == total  # nothing was deleted
    owner.check("[data-rbac-select-all=ids]")
    expect(owner.locator("[data-rbac-selected-count=ids]")).to_have_text(f"{total} selected")
