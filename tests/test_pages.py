"""The settings layout's tabs: each page blueprint adds its own, in order, gated per member.

The settings and oversight blueprints add their tabs from their own
``register(app)``; a host adds one the same way, and it shows between the
others by its ``order``, only to members who may see it.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from flask import Flask

from crm_rbac_plugin import pages
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

TAB = re.compile(r'<a class="rbac-tab( is-current)?" href="([^"]+)"[^>]*>([^<]+)</a>')


def tabs_on(client: Any, url: str) -> list[tuple[str, str, bool]]:
    """(label, href, current) of each tab of the page at ``url``."""
    response = client.get(url)
    assert response.status_code == 200
    return [(label, href, bool(current))
            for current, href, label in TAB.findall(response.get_data(as_text=True))]


def test_each_blueprint_adds_its_tabs_in_order(app: Flask) -> None:
    assert [t.endpoint for t in pages.tabs_of(app)] == [
        "rbac_settings.roles", "rbac_settings.role_overview", "rbac_settings.compare",
        "rbac_settings.members",
        "rbac_settings.conflicts", "rbac_settings.plan", "rbac_settings.workspace_lifecycle",
        "rbac_settings.departments",
        "rbac_settings.sharing", "rbac_oversight.audit_page", "rbac_oversight.who_could",
        "rbac_oversight.explain_page", "rbac_oversight.access_review",
        "rbac_settings.alerts_page", "rbac_settings.reviews", "rbac_settings.security",
        "rbac_settings.approvals", "rbac_settings.profile", "rbac_settings.notifications",
        "rbac_settings.mfa", "rbac_settings.tokens", "rbac_settings.workspaces"]


def test_owner_sees_every_tab_and_the_current_one(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    tabs = tabs_on(owner, "/settings/roles/new")
    assert [label for label, _, _ in tabs] == [
        "Roles", "Overview", "Compare roles", "Members", "Segregation of duties", "Plan",
        "Workspace", "Departments",
        "Sharing", "Audit trail", "Who could", "Explain", "Access review", "Alerts",
        "Certification", "Security", "Approvals", "Profile", "Notifications",
        "Two-factor authentication", "API tokens", "Workspaces"]
    assert [label for label, _, current in tabs if current] == ["Roles"]
    assert [label for label, _, current in tabs_on(owner, "/settings/audit") if current] == [
        "Audit trail"]


def test_a_host_tab_shows_by_its_order_to_members_who_may_see_it(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    pages.add_tab(app, "rbac_settings.index", "Host page", order=75, permission="settings.view")
    owner = [label for label, _, _ in tabs_on(login(world.users["owner"], world.ws),
                                              "/settings/profile")]
    assert owner.index("Sharing") < owner.index("Host page") == owner.index("Audit trail") - 1
    viewer = [label for label, _, _ in tabs_on(login(world.users["viewer"], world.ws),
                                               "/settings/profile")]
    assert "Host page" not in viewer
    assert "Plan" not in viewer and "Audit trail" not in viewer
    assert "Workspace" not in viewer
    assert viewer[-5:] == ["Profile", "Notifications", "Two-factor authentication", "API tokens",
                           "Workspaces"]
