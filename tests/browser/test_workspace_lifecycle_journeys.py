"""The workspace lifecycle in a real Chromium: an Owner transfers the ownership; an
Owner deletes a workspace (after a wrong confirmation), finds it hidden, and restores
it from the Workspaces page; a user creates a workspace from the demo's switcher.
At laptop and phone widths, nothing scrolls sideways."""

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


def no_sideways_scroll(page: Page, width: int) -> None:
    assert page_width(page) <= width, page.url


def role_keys(live: Live, email: str, slug: str = "acme") -> set[str]:
    m = rbac.models
    with live.app.app_context():
        return set(db.session.scalars(
            sa.select(m.Role.key).join(m.MemberRole, m.MemberRole.role_id == m.Role.id)
            .join(m.Membership, m.Membership.id == m.MemberRole.membership_id)
            .join(m.Workspace, m.Workspace.id == m.Membership.workspace_id)
            .join(live.app.extensions["rbac"].rbac.user_model)
            .where(m.Workspace.slug == slug,
                   live.app.extensions["rbac"].rbac.user_model.email == email)))


def deleted_at(live: Live, slug: str = "acme") -> object:
    W = rbac.models.Workspace
    with live.app.app_context():
        return db.session.scalar(sa.select(W.deleted_at).where(W.slug == slug))


def confirm_dialog(page: Page) -> None:
    dialog = page.locator("dialog.rbac-dialog[open]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-rbac-dialog-confirm]").click()


@pytest.mark.parametrize("width", [1280, 390])
def test_owner_transfers_the_ownership(live: Live, browse: Browse, screenshot: Shot,
                                       width: int) -> None:
    page = browse.login("owner@example.test", width=width)
    page.goto("/settings/lifecycle")
    expect(page.get_by_role("heading", name="Transfer ownership")).to_be_visible()
    no_sideways_scroll(page, width)
    screenshot(page, f"workspace-lifecycle-{width}")

    browse.watch.expected_failures.add(live.url("/settings/lifecycle/transfer"))  # the 400
    page.select_option("select[name=membership_id]", label="Admin (admin@example.test)")
    page.fill("input[name=password]", "wrong password")
    page.get_by_role("button", name="Transfer ownership").click()
    confirm_dialog(page)
    expect(page.locator("#password-errors")).to_contain_text("password is not correct")
    assert role_keys(live, "owner@example.test") == {"owner"}

    page.select_option("select[name=membership_id]", label="Admin (admin@example.test)")
    page.fill("input[name=password]", "password")
    page.get_by_role("button", name="Transfer ownership").click()
    confirm_dialog(page)
    expect(page.locator(".rbac-flash", has_text="is now the Owner")).to_be_visible()
    assert role_keys(live, "owner@example.test") == {"admin"}
    assert role_keys(live, "admin@example.test") == {"admin", "owner"}
    no_sideways_scroll(page, width)
    # The old Owner no longer sees the Owner's page.
    expect(page.get_by_role("link", name="Workspace", exact=True)).to_have_count(0)


@pytest.mark.parametrize("width", [1280, 390])
def test_owner_deletes_then_restores_a_workspace(live: Live, browse: Browse, screenshot: Shot,
                                                 width: int) -> None:
    page = browse.login("owner@example.test", width=width)
    page.goto("/settings/lifecycle")
    browse.watch.expected_failures.add(live.url("/settings/lifecycle/delete"))  # the 400
    page.fill("input[name=confirm]", "Acme")
    page.get_by_role("button", name="Delete workspace").click()
    confirm_dialog(page)
    expect(page.locator("#confirm-errors")).to_contain_text("exactly to confirm")
    assert deleted_at(live) is None

    page.fill("input[name=confirm]", "Acme Sales")
    page.get_by_role("button", name="Delete workspace").click()
    confirm_dialog(page)
    expect(page.locator(".rbac-flash", has_text="Deleted Acme Sales")).to_be_visible()
    assert deleted_at(live) is not None
    restore = page.get_by_role("button", name="Restore Acme Sales")
    expect(restore).to_be_visible()
    no_sideways_scroll(page, width)
    screenshot(page, f"workspace-restore-{width}")

    # Another member of the deleted workspace sees nothing of it.
    admin = browse.login("admin@example.test", width=width)
    admin.goto("/settings/workspaces")
    expect(admin.get_by_role("button", name="Restore Acme Sales")).to_have_count(0)
    expect(admin.locator("#your-workspaces")).not_to_contain_text("Acme Sales")

    restore.click()
    confirm_dialog(page)
    expect(page.locator(".rbac-flash", has_text="Restored Acme Sales")).to_be_visible()
    assert deleted_at(live) is None
    page.goto("/settings/roles")
    expect(page.get_by_role("heading", name="Roles")).to_be_visible()


def test_new_workspace_from_the_switcher(live: Live, browse: Browse) -> None:
    page = browse.login("viewer@example.test")
    page.locator("details.ws-switcher summary").click()
    page.get_by_role("link", name="New workspace").click()
    page.fill("input[name=name]", "Viewer Lab")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.locator(".rbac-flash", has_text="Created Viewer Lab")).to_be_visible()
    assert role_keys(live, "viewer@example.test", "viewer-lab") == {"owner"}
