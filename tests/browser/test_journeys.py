"""Three journeys through the demo CRM in a real Chromium.

The rest of the suite checks the rules through Flask's test client; these
check what a person actually gets: the buttons a page shows or hides, the
403 page, the matrix editor's JavaScript shortcuts and its two-step save,
a role change reaching an already signed-in member on their next page
load, and an emailed invitation link accepted in a browser that has never
seen the app. SQLite only (see conftest.py). Each journey runs at 1280
and at 390 px (where the sidebar folds into a menu) and leaves screenshots
of the pages it passes through, suffixed with the width, for a reviewer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask_mail import Message
from playwright.sync_api import Page, expect

from crm_app.extensions import mail

from .conftest import Browse, Live, settings_tab

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("width", [1280, 390])]

Shot = Callable[[Page, str], None]
#: Accessible names of the controls a Junior Rep must not be offered, however labelled.
EXPORT = re.compile("export", re.IGNORECASE)
DELETE = re.compile("delete", re.IGNORECASE)


@pytest.fixture
def shot(screenshot: Shot, width: int) -> Shot:
    """``screenshot`` with the width in the name: both runs of a journey keep theirs."""
    return lambda page, name: screenshot(page, f"{name}-{width}")


def nav_click(page: Page, label: str) -> None:
    """Follow the sidebar's link ``label``, opening the phone-width menu first if folded."""
    toggle = page.locator("[data-menu-toggle]")
    if toggle.is_visible():
        toggle.click()
        expect(page.locator("#sidebar-menu")).to_be_visible()
    page.click(f"nav.nav a.nav-item:has-text('{label}')")


def sidebar_records(page: Page) -> list[str]:
    """The record lists the sidebar offers (it shows only what the member may view)."""
    return page.locator("nav.nav a.nav-item span").all_inner_texts()


def test_junior_rep_sees_only_their_own_leads_and_no_forbidden_button(
        live: Live, browse: Browse, shot: Shot, width: int) -> None:
    """A Junior Rep (view/create/edit own leads, nothing else) finds nothing more in the UI.

    Unowned leads are visible to whoever may view leads (``RBAC_UNOWNED_VISIBLE``,
    the default), so the list is their own lead plus the unowned one; every
    other member's lead is absent. Forcing URLs: the export is a visible
    action they lack (403, the refusal page), another member's lead is a
    record outside their view (404, not a 403 that would confirm it exists).
    """
    w = live.world
    page = browse.login("junior_rep@example.test", screenshot=shot, width=width)
    shot(page, "dashboard")
    assert sidebar_records(page) == ["Dashboard", "Leads", "My access", "Settings", "Admin"]

    nav_click(page, "Leads")
    expect(page.locator("h1")).to_have_text("Leads")
    names = sorted(page.locator("tbody a.row-title").all_inner_texts())
    assert names == sorted([w.leads_by_owner["junior_rep"], w.leads_by_owner["unowned"]])
    others = set(w.leads_by_owner) - {"junior_rep", "unowned"}
    assert others and not {w.leads_by_owner[k] for k in others} & set(names)
    assert page.locator("[data-action=export], [data-action=bulk-delete]").count() == 0
    assert page.get_by_role("link", name=EXPORT).count() == 0
    assert page.get_by_role("button", name=DELETE).count() == 0
    assert page.locator("[data-action=create]").count() == 1  # what they may do is there
    shot(page, "leads-list")

    page.click(f"a.row-title:text-is('{w.leads_by_owner['junior_rep']}')")
    expect(page.locator("h1")).to_have_text(w.leads_by_owner["junior_rep"])
    assert page.locator("[data-action=edit]").count() == 1
    assert page.locator("[data-action=delete], [data-action=export]").count() == 0
    assert page.get_by_role("button", name=DELETE).count() == 0
    assert (page.locator(".perm-no").text_content() or "").strip() == "delete"
    shot(page, "lead-detail")

    browse.goto_refused(page, "/leads/export.csv", 403)
    expect(page.locator(".rbac-refusal h1")).to_have_text("You don't have access to this")
    assert page.locator(".rbac-refusal p").first.inner_text().strip()  # says why
    assert "Lead of" not in page.content()
    shot(page, "403")

    browse.goto_refused(page, f"/leads/{w.lead_ids['member']}/edit", 404)
    expect(page.locator("h1")).to_have_text("Not found")
    assert w.leads_by_owner["member"] not in page.content()


def test_owner_builds_a_role_with_the_matrix_shortcuts_and_the_member_sees_it(
        live: Live, browse: Browse, shot: Shot, width: int) -> None:
    """Owner: new role, Whole role None then Sales View, preview, save, give it to the rep.

    The Junior Rep is signed in (a second context) before the change and has
    no Deals; their next page load shows Deals with every deal of the
    workspace, because each request checks the workspace's policy version.
    """
    member = browse.login("junior_rep@example.test", width=width)
    assert "Deals" not in sidebar_records(member)

    owner = browse.login("owner@example.test", width=width)
    nav_click(owner, "Team & roles")
    expect(owner.locator("h1")).to_have_text("Roles")
    shot(owner, "settings-roles")

    owner.click("a:text-is('New role')")
    expect(owner.locator("h1")).to_have_text("New role")
    owner.fill("input[name=name]", "Deal desk")
    owner.fill("textarea[name=description]", "Reads the whole sales pipeline.")
    owner.click("button[data-shortcut='*:full']")
    owner.click("button[data-shortcut='*:none']")
    owner.click("button[data-shortcut='sales:view']")
    scopes = owner.locator("select.rbac-scope")
    granted = sorted(scopes.nth(i).get_attribute("aria-label") or ""
                     for i in range(scopes.count()) if scopes.nth(i).input_value())
    # Sales View reaches every resource of the sales module: its records (deals, leads)
    # and the record-less reports and analytics (crm_app/reports registers them in sales).
    assert granted == ["Analytics: view scope", "Deals: view scope", "Leads: view scope",
                       "Reports: view scope"], "matrix.js did not apply the shortcuts"
    expect(owner.locator("td.rbac-cell.is-granted")).to_have_count(4)

    owner.click(".rbac-form-actions button[value=preview]")
    preview = owner.locator(".rbac-preview")
    expect(preview).to_be_visible()
    assert sorted(preview.locator("tbody tr td:first-child code").all_inner_texts()) == [
        "analytics.view", "deals.view", "leads.view", "reports.view"]
    # Any change after the preview makes it stale: Save is disabled until previewed again.
    owner.click("button[data-shortcut='clients:view']")
    expect(owner.locator("[data-rbac-save]").first).to_be_disabled()
    expect(owner.locator("[data-rbac-stale]")).to_be_visible()
    owner.click("button[data-shortcut='clients:none']")
    owner.click(".rbac-form-actions button[value=preview]")
    expect(owner.locator("[data-rbac-save]").first).to_be_enabled()
    shot(owner, "matrix-editor")
    owner.click(".rbac-preview [data-rbac-save]")
    expect(owner.locator("h1")).to_have_text("Roles")
    expect(owner.locator("tbody th:has-text('Deal desk')")).to_have_count(1)
    expect(owner.locator(".rbac-flash")).to_contain_text("Role Deal desk saved.")

    settings_tab(owner, "Members")
    shot(owner, "members")
    owner.click("tr[data-member='junior_rep@example.test'] a:text-is('Access')")
    expect(owner.locator("h1")).to_have_text("Access of Junior Rep")
    owner.select_option("select[name=role_id]", label="Deal desk")
    owner.click("button:has-text('Give role')")
    expect(owner.locator("table.rbac-table").first.locator("tbody th")).to_have_text(
        ["Junior Rep", "Deal desk"])
    shot(owner, "member-access")

    settings_tab(owner, "Audit trail")
    actions = owner.locator("tr.rbac-audit-row code").all_inner_texts()
    assert "role.created" in actions and "assignment.added" in actions
    shot(owner, "audit")

    member.reload()
    assert "Deals" in sidebar_records(member)
    assert sorted(member.locator(".role-pill").all_inner_texts()) == ["Deal desk", "Junior Rep"]
    nav_click(member, "Deals")
    expect(member.locator("tbody tr[data-id]")).to_have_count(live.world.deal_count)
    assert member.locator("[data-action=create], [data-action=export]").count() == 0


def test_admin_invites_by_email_and_the_link_is_accepted_in_a_fresh_browser(
        live: Live, browse: Browse, shot: Shot, width: int) -> None:
    """The invitation mail's link, opened with no session, creates the account and signs in.

    The server runs in this process, so Flask-Mail's recorder sees the mail
    its request thread sends.
    """
    admin = browse.login("admin@example.test", width=width)
    admin.goto("/settings/members")
    admin.click("a:text-is('Invite a member')")
    expect(admin.locator("h1")).to_have_text("Invite a member")
    admin.fill("input[name=email]", "New.Hire@example.test")
    admin.locator("label.rbac-check", has_text=re.compile(r"^\s*Member")).locator(
        "input[name=roles]").check()
    shot(admin, "invite")
    outbox: list[Message]
    with mail.record_messages() as outbox:
        admin.click("button:has-text('Send invitation')")
        expect(admin.locator("h1")).to_have_text("Members")
    assert len(outbox) == 1 and outbox[0].recipients == ["new.hire@example.test"]
    links = re.findall(r"https?://\S+/settings/invitations/\S+", outbox[0].body or "")
    assert len(links) == 1 and links[0].startswith(live.base_url + "/"), outbox[0].body
    expect(admin.locator("#invitations table")).to_contain_text(
        "new.hire@example.test")

    newcomer = browse.page(width)  # a browser context that never signed in
    newcomer.goto(links[0])
    expect(newcomer.locator("h1")).to_have_text(f"Join {live.world.workspace}")
    newcomer.fill("input[name=name]", "Nova Hire")
    newcomer.fill("input[name=password]", "a-long-passphrase")
    newcomer.fill("input[name=confirm]", "a-long-passphrase")
    shot(newcomer, "invitation-accept")
    newcomer.click("button:has-text('Create my account and join')")
    newcomer.wait_for_url(live.url("/"))
    expect(newcomer.locator(".user-menu summary")).to_contain_text("new.hire@example.test")
    expect(newcomer.locator(".ws-switcher .ws-name")).to_have_text(live.world.workspace)
    expect(newcomer.locator(".role-pill")).to_have_text(["Member"])
    assert {"Leads", "Deals", "Clients", "Tasks", "Notes"} <= set(sidebar_records(newcomer))
    shot(newcomer, "invitation-accepted")

    # The link was single-use: opening it again is refused, not a second account.
    again = browse.page(width)
    url = links[0]
    browse.watch.expected_failures.add(url)
    response = again.goto(url)
    assert response is not None and response.status in (400, 404, 410)
    assert again.locator("form input[name=password]").count() == 0
