"""The members pages in a real browser: at phone width nothing scrolls sideways, and
a bulk change asks with the count before it runs.

The watcher (see conftest) also fails the test on a console error, a
Content-Security-Policy violation or a 5xx from any of these pages.
"""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from crm_app.extensions import db
from crm_app.rbac_setup import rbac

from .conftest import Browse, Live, sideways

PAGES = ("/settings/members", "/settings/members/invite", "/settings/members/{id}",
         "/settings/members/{id}/reassign", "/settings/departments", "/settings/profile",
         "/settings/tokens", "/settings/access-review")


def member_id(live: Live, email: str) -> int:
    with live.app.app_context():
        M = rbac.models.Membership
        U = rbac.user_model
        return int(db.session.scalar(sa.select(M.id).join(U, U.id == M.user_id).where(
            U.email == email)))


def unstyled_controls(page: Page) -> list[str]:
    """Visible form controls that keep the browser's default look (no border radius set)."""
    return list(page.evaluate("""() => Array.from(document.querySelectorAll(
        '.rbac-ui input:not([type=checkbox]):not([type=radio]):not([type=hidden]),'
        + '.rbac-ui select, .rbac-ui button'))
        .filter(el => el.offsetParent !== null)
        .filter(el => getComputedStyle(el).borderTopLeftRadius === '0px')
        .map(el => el.outerHTML.slice(0, 80))"""))


def invisible_buttons(page: Page) -> list[str]:
    """Visible buttons whose text has the colour of their background."""
    return list(page.evaluate("""() => Array.from(document.querySelectorAll(
        '.rbac-ui button, .rbac-ui a.rbac-button'))
        .filter(el => el.offsetParent !== null)
        .filter(el => { const s = getComputedStyle(el);
                        return s.color === s.backgroundColor; })
        .map(el => el.outerHTML.slice(0, 80))"""))


def test_every_members_page_fits_a_phone(live: Live, browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    owner.set_viewport_size({"width": 390, "height": 844})
    mid = member_id(live, "member@example.test")
    for path in PAGES:
        owner.goto(path.format(id=mid))
        expect(owner.locator("h1")).to_be_visible()
        assert sideways(owner) <= 0, path
        assert unstyled_controls(owner) == [], path
        assert invisible_buttons(owner) == [], path


def test_bulk_deactivate_asks_with_the_count_and_the_bar_stays_reachable(
        live: Live, browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    owner.set_viewport_size({"width": 390, "height": 844})
    owner.goto("/settings/members")
    deactivate = owner.locator(".rbac-bulkbar button[value=deactivate]")
    expect(deactivate).to_be_disabled()
    for email in ("member@example.test", "member2@example.test"):
        owner.check(f"input[name=members][value='{member_id(live, email)}']")
    expect(owner.locator("[data-rbac-selected-count=members]")).to_have_text("2 selected")
    expect(deactivate).to_be_enabled()
    assert owner.locator(".rbac-bulkbar").evaluate("el => getComputedStyle(el).position") == (
        "sticky")
    deactivate.click()
    dialog = owner.locator("dialog.rbac-dialog")
    expect(dialog).to_contain_text("Deactivate 2 selected members?")
    dialog.locator("[data-rbac-dialog-confirm]").click()
    expect(owner.locator("main")).to_contain_text("2 of 2 selected member(s) deactivated")
    expect(owner.locator('tr[data-member="member@example.test"]')).to_contain_text("inactive")
