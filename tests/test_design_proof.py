"""Issue 18's design points that a test client can prove on every page at once.

- The settings navigation puts workspace administration (roles, members,
  departments, sharing, security, audit, reviews) under one heading and the
  member's own pages (profile, API tokens) under another; a member who may
  administer nothing sees only their own group.
- Every settings page a signed-in Owner opens highlights exactly one tab, so
  the current section is always shown (the page list comes from the URL map,
  so a new page is checked without being listed).
- Flask-Admin: every list and details page of every view shows timestamps as
  ``YYYY-MM-DD HH:MM UTC``, no raw id column (a ``*_id`` column reads as a
  name, never a bare number) and carries the favicon.
- A person who joins through an invitation is greeted "Welcome", not
  "Welcome back", on their first dashboard.
- The components are one set of macros (``rbac/macros/ui.html``): a host's
  copy of that template replaces them on the plugin's and the CRM's pages.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from flask import Flask

import crm_rbac_plugin
from crm_app.extensions import mail
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from tests.browser.sweep import Visit, is_page, path_of, seed_extra
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_team import link_token

#: Page-only checks: what they read does not depend on the database engine.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

NAV_GROUP = re.compile(r'<p class="rbac-nav-heading">([^<]+)</p>\s*<ul class="rbac-tabs">(.*?)</ul>',
                       re.S)
TAB_LABEL = re.compile(r'<a class="rbac-tab[^"]*" href="[^"]+"[^>]*>([^<]+)')
CURRENT = re.compile(r'<a class="rbac-tab is-current" href="([^"]+)"[^>]*aria-current="page">')


def nav_groups(html: str) -> dict[str, list[str]]:
    """The settings navigation of ``html``: heading -> tab labels, in order."""
    return {heading: [label.strip() for label in TAB_LABEL.findall(body)]
            for heading, body in NAV_GROUP.findall(html)}


# -- navigation -----------------------------------------------------------------------------


@sqlite_only
def test_administration_and_personal_pages_are_separate_groups(
        world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    groups = nav_groups(owner.get("/settings/profile").text)
    assert list(groups) == ["Workspace administration", "Your account"]
    admin, personal = groups["Workspace administration"], groups["Your account"]
    for label in ("Roles", "Members", "Departments", "Sharing", "Security", "Audit trail",
                  "Access review", "Certification"):
        assert label in admin and label not in personal, label
    for label in ("Profile", "API tokens"):
        assert label in personal and label not in admin, label
    assert "Approvals" in admin  # the Owner decides the workspace's requests
    # A Viewer administers nothing: only their own group. Approvals lists only their own
    # requests, so it sits there too.
    viewer = nav_groups(login(world.users["viewer"], world.ws).get("/settings/profile").text)
    assert list(viewer) == ["Your account"]
    assert {"Profile", "API tokens", "Approvals"} <= set(viewer["Your account"])


def settings_pages(app: Flask) -> list[Visit]:
    """Every settings and oversight page (GET, HTML) of the app's URL map, as the Owner."""
    return [Visit("owner", 1280, r.endpoint, tuple(sorted(r.arguments)))
            for r in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint)
            if is_page(r) and r.endpoint.startswith(("rbac_settings.", "rbac_oversight."))]


@sqlite_only
def test_every_settings_page_highlights_exactly_one_tab(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    values = seed_extra(world)
    owner = login(world.users["owner"], world.ws)
    rules = {r.endpoint: r for r in app.url_map.iter_rules()}
    checked, wrong = 0, []
    for visit in settings_pages(app):
        path = path_of(visit, rules, values)
        response = owner.get(path)
        if response.status_code != 200 or 'class="rbac-nav"' not in response.text:
            continue  # a redirect, a refusal, a download, or a page outside the layout
        checked += 1
        nav = response.text.split('class="rbac-nav"', 1)[1].split("</nav>", 1)[0]
        current = CURRENT.findall(nav)
        if len(current) != 1:
            wrong.append(f"{visit.endpoint} ({path}): {current or 'no tab highlighted'}")
    assert wrong == [], "\n".join(wrong)
    assert checked >= 30, checked  # the sweep reached the pages, not only redirects


# -- Flask-Admin ----------------------------------------------------------------------------

#: A time as Python's str() or isoformat() prints it (what a raw column would show).
RAW_TIME = re.compile(r"(?<![T\d])\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
#: A list cell of a ``*_id`` column, or of the ``id`` column, and what it shows.
ID_CELL = re.compile(r'<td class="col-(id|\w+_id)">\s*(.*?)\s*</td>', re.S)
LIST_HEADER = re.compile(r'<th class="column-header col-([\w]+)">')


@sqlite_only
def test_every_admin_page_formats_times_hides_ids_and_has_the_favicon(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    values = seed_extra(world)
    owner = login(world.users["owner"], world.ws)
    rules = {r.endpoint: r for r in app.url_map.iter_rules()}
    lists = sorted(r.endpoint for r in app.url_map.iter_rules()
                   if r.endpoint.endswith(".index_view") or r.endpoint == "admin.index")
    assert len(lists) >= 10, lists
    shown_times = 0
    for endpoint in lists + [e.replace("index_view", "details_view") for e in lists
                             if e != "admin.index"]:
        path = path_of(Visit("owner", 1280, endpoint, ()), rules, values)
        response = owner.get(path)
        assert response.status_code == 200, (path, response.status_code)
        # Machine-readable ISO (a <time>'s datetime, an audit row's JSON values) is fine.
        page = re.sub(r' datetime="[^"]*"|&#34;(?:(?!&#34;).)*&#34;', "", response.text)
        assert 'rel="icon" href="data:image/svg+xml' in page, (path, "no favicon")
        assert not RAW_TIME.search(page), (path, RAW_TIME.search(page))
        shown_times += len(re.findall(r">\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC</time>", page))
        headers = LIST_HEADER.findall(page)
        assert "id" not in headers, (path, headers)
        for column, cell in ID_CELL.findall(page):
            text = re.sub(r"<[^>]+>", "", cell).strip()
            assert column != "id" and not text.isdigit(), (path, column, text)
        assert "<b>Id</b>" not in page and not re.search(r"<b>\w[\w ]* Id</b>", page), path
    assert shown_times > 0  # the audit trail at least shows its times, formatted


# -- greeting -------------------------------------------------------------------------------


def test_a_person_who_joins_by_invitation_is_welcomed_not_welcomed_back(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    role = workspaces.role_by_key(rbac, world.ws, "member")
    with mail.record_messages() as outbox:
        assert owner.post("/settings/members/invite", data={
            "email": "joiner@example.test", "roles": [role.id]}).status_code == 302
    token = link_token(outbox[0].body)
    newcomer = app.test_client()
    joined = newcomer.post(f"/settings/invitations/{token}",
                           data={"name": "Jo Iner", "password": "Tq8#vLp2!mZr", "confirm": "Tq8#vLp2!mZr"})
    assert joined.status_code == 302, joined.text[:300]
    page = newcomer.get("/").text
    assert "<h1>Welcome, Jo</h1>" in page and "Welcome back" not in page
    # Later requests of the same first session keep the first greeting.
    assert "<h1>Welcome, Jo</h1>" in newcomer.get("/").text


# -- the components are the host's to override ----------------------------------------------


@sqlite_only
def test_a_host_overrides_the_components_on_plugin_and_demo_pages(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """A host's ``rbac/macros/ui.html`` replaces the plugin's, on its pages and the CRM's."""
    source = (Path(crm_rbac_plugin.__file__).parent / "templates" / "rbac" / "macros"
              / "ui.html").read_text(encoding="utf-8")
    host = (source.replace('class="rbac-button rbac-button--{{ kind }}{% if class_ %}',
                           'class="host-button rbac-button rbac-button--{{ kind }}{% if class_ %}')
            .replace("data-rbac-select-all=", "data-host-select-all data-rbac-select-all="))
    assert host.count("host-button") == 2 and "data-host-select-all" in host
    app.jinja_loader = jinja2.ChoiceLoader([  # type: ignore[assignment]
        jinja2.DictLoader({"rbac/macros/ui.html": host}), app.jinja_loader])
    owner = login(world.users["owner"], world.ws)
    members = owner.get("/settings/members").text
    assert 'class="host-button rbac-button' in members
    assert 'class="rbac-button' not in members  # every button of the page came from the macro
    leads = owner.get("/leads/").text
    assert "data-host-select-all" in leads
    assert 'class="host-button rbac-button' in leads  # the CRM's buttons are the macro's too
