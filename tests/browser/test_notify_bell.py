"""The bell and the notifications page in a real browser, at phone width.

The watcher of ``tests/browser`` also fails the test on a console error, a
CSP violation or a 5xx from any of these pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.notify import queue

from .conftest import Browse, Live, sideways

pytestmark = pytest.mark.browser


def notify_member(live: Live, email: str, *summaries: str) -> None:
    with live.app.app_context():
        M, U = rbac.models.Membership, rbac.user_model
        member: Any = db.session.scalar(sa.select(M).join(U, U.id == M.user_id).where(
            U.email == email, M.status == "active").order_by(M.id))
        for summary in summaries:
            queue.enqueue(db.session, rbac.models, workspace_id=member.workspace_id,
                          recipients=[member.id], category="roles", event_name="test.event",
                          summary=summary, link="/settings/profile")
        db.session.commit()


def test_bell_page_open_and_mark_all_read_at_phone_width(
        live: Live, browse: Browse, screenshot: Callable[[Page, str], None]) -> None:
    notify_member(live, "member@example.test", "Your role Finance in Acme Sales ends soon.",
                  "You were given the role Viewer in Acme Sales, with a rather long summary "
                  "that must wrap inside the table rather than widen the page.")
    page = browse.login("member@example.test", width=390)
    bell = page.locator("[data-rbac-bell]")
    expect(bell).to_have_count(1)
    expect(bell.locator("[data-rbac-bell-count]")).to_have_text("2")
    bell.click()
    page.wait_for_url(live.url("/settings/account/notifications"))
    expect(page.locator("h1")).to_have_text("Notifications")
    expect(page.locator("[data-rbac-bell]")).to_have_count(1)  # one bell on a settings page
    assert sideways(page) <= 0
    screenshot(page, "notifications-390")
    page.locator("tr", has_text="ends soon").get_by_role("button", name="Open").click()
    page.wait_for_url(live.url("/settings/profile"))
    expect(page.locator("[data-rbac-bell-count]")).to_have_text("1")
    page.goto("/settings/account/notifications")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("main")).to_contain_text("1 notification(s) marked read")
    expect(page.locator("[data-rbac-bell]")).to_have_count(1)
    expect(page.locator("[data-rbac-bell-count]")).to_have_count(0)
