"""RBACModelView in a host's own Flask-Admin views: the idioms an adopter writes.

The ``host`` fixture adds views to the demo's ``/admin`` the way a host
would: subclasses setting ``can_export = True`` and friends, a view of the
user model, a view of a model with no workspace column, relation fields and
``form_ajax_refs``, and export limits. Each test signs in as a member of
workspace A (``world.ws``) and checks what the pages, forms, lookups and
exports show of workspace B and of records out of the member's scope.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import re
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.model.ajax import AjaxModelLoader

from crm_app.extensions import db
from crm_app.models import Client, Lead, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.admin import RBACModelView, ReadOnlyRBACModelView, ScopedAjaxLoader
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

#: Flask-Admin 2.2's relation fields yield raw tuples from ``iter_choices``, which
#: WTForms 3.2 deprecates; the pages that render such fields ignore that warning.
relation_fields = pytest.mark.filterwarnings(
    "ignore:Yielding raw tuples from iter_choices:DeprecationWarning")


class HostTaskView(RBACModelView):
    """Flask-Admin's usual idiom: the host switches buttons on in the class body."""

    can_export = True
    can_delete = True
    can_create = True
    column_list = ["id", "title", "client", "owner"]
    column_export_list = ["id", "title"]
    form_columns = ["title", "client", "owner"]


class HostAjaxTaskView(HostTaskView):
    form_ajax_refs = {"client": {"fields": ["name"]}, "owner": {"fields": ["name", "email"]}}


class NoCreateTaskView(HostTaskView):
    can_create = False


class HostPropertyView(RBACModelView):
    @property
    def can_export(self) -> bool:  # type: ignore[override]
        return True  # a host's own rule that allows everyone


class WideningReadOnlyView(ReadOnlyRBACModelView):
    can_create = True  # the plugin's read-only panel stays read-only


class CatalogueView(RBACModelView):
    """A host view of a model with no workspace column, scoped by the host's hook."""

    def scope_query(self, query: Any) -> Any:
        W = rbac.models.Workspace
        return query.filter(W.slug == "acme")


def add_views(app: Flask) -> dict[str, RBACModelView]:
    """Add the host's views to the demo's Flask-Admin, by endpoint (also their URL)."""
    W = rbac.models.Workspace
    specs: dict[str, tuple[type[RBACModelView], type, str, dict[str, Any]]] = {
        "host_tasks": (HostTaskView, Task, "tasks", {}),
        "host_ajax_tasks": (HostAjaxTaskView, Task, "tasks", {}),
        "host_nocreate": (NoCreateTaskView, Task, "tasks", {}),
        "host_property": (HostPropertyView, Lead, "leads", {}),
        "host_readonly": (WideningReadOnlyView, Lead, "leads", {}),
        "host_kwarg": (HostTaskView, Task, "tasks", {"can_edit": False}),
        "host_users": (RBACModelView, User, "members", {"column_list": ["name", "email"],
                                                        "form_columns": ["name", "email"]}),
        "host_workspaces": (RBACModelView, W, "settings", {"column_list": ["name"]}),
        "host_catalogue": (CatalogueView, W, "settings", {"column_list": ["name"]}),
        "host_page_export": (RBACModelView, Lead, "leads", {
            "export_max_rows": None, "column_list": ["name"],
            "column_export_list": ["id", "name"], "column_searchable_list": ["name"]}),
        "host_simple_export": (RBACModelView, Lead, "leads", {
            "export_max_rows": 5, "simple_list_pager": True, "column_list": ["name"],
            "column_export_list": ["id", "name"]}),
    }
    admin = app.extensions["admin"][0]
    views = {}
    for endpoint, (cls, model, resource, options) in specs.items():
        views[endpoint] = cls(model, db, rbac=rbac, resource=resource, endpoint=endpoint,
                              url=endpoint, name=endpoint, **options)
        admin.add_view(views[endpoint])
    return views


@pytest.fixture
def host(app: Flask, world: SimpleNamespace) -> SimpleNamespace:
    """The demo app with the host's views added (before any request), and a pending
    invitee of workspace A: ``outsider``, a member of B only until they accept."""
    views = add_views(app)
    with rbac.system():
        db.session.add(rbac.models.Membership(workspace_id=world.ws.id,
                                              user_id=world.users["outsider"].id,
                                              status="pending"))
        db.session.commit()
    return SimpleNamespace(views=views, **vars(world))


def visible_clients(world: SimpleNamespace, who: str) -> set[str]:
    """The client names ``who`` sees in workspace A, by the plugin's own query filter."""
    with rbac.as_member(rbac.access_for(world.members[who])):
        return set(db.session.scalars(sa.select(Client.name)))


def option_labels(page: str, field: str) -> set[str]:
    """The labels of a ``<select>``'s options in a rendered form (the blank one left out)."""
    start = page.index(f'name="{field}"')
    select = page[start:page.index("</select>", start)]
    return {label.strip() for value, label in re.findall(
        r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)<', select) if value != "__None"}


def lookup(client: Any, view: str, name: str, query: str) -> list[str]:
    response = client.get(f"/admin/{view}/ajax/lookup/?name={name}&query={query}&limit=100")
    assert response.status_code == 200, response.status_code
    return [label for _, label in json.loads(response.text)]


def tasks_titled(title: str) -> list[Task]:
    db.session.expire_all()
    with rbac.system():
        return list(db.session.scalars(sa.select(Task).where(Task.title == title)))


# -- 1. permissions: the host narrows, never widens -----------------------------------------


def test_class_attributes_are_host_flags_under_the_plugins_decision(
        host: SimpleNamespace, login: Any) -> None:
    for name in ("can_create", "can_edit", "can_delete", "can_export", "can_view_details"):
        assert isinstance(inspect.getattr_static(host.views["host_tasks"], name), property)
    member = login(host.users["member"], host.ws)  # tasks: own CRUD, no export
    page = member.get("/admin/host_tasks/").text
    assert "/admin/host_tasks/export/csv/" not in page and "/admin/host_tasks/new/" in page
    refused = member.get("/admin/host_tasks/export/csv/")
    assert refused.status_code == 302 and "text/csv" not in refused.headers["Content-Type"]
    viewer = login(host.users["viewer"], host.ws)  # view only
    page = viewer.get("/admin/host_tasks/").text
    assert "/admin/host_tasks/new/" not in page and "/admin/host_tasks/delete/" not in page
    viewer.post("/admin/host_tasks/new/", data={"title": "Viewer task"})
    assert tasks_titled("Viewer task") == []
    manager = login(host.users["manager"], host.ws)  # team CRUD and export
    assert "/admin/host_tasks/export/csv/" in manager.get("/admin/host_tasks/").text
    assert manager.get("/admin/host_tasks/export/csv/").status_code == 200


def test_a_host_property_is_anded_with_the_plugin(host: SimpleNamespace, login: Any) -> None:
    member = login(host.users["member"], host.ws)
    assert "/admin/host_property/export/csv/" not in member.get("/admin/host_property/").text
    assert member.get("/admin/host_property/export/csv/").status_code == 302
    manager = login(host.users["manager"], host.ws)
    assert "/admin/host_property/export/csv/" in manager.get("/admin/host_property/").text


def test_false_narrows_for_good(host: SimpleNamespace, login: Any) -> None:
    admin = login(host.users["admin"], host.ws)
    assert "/admin/host_nocreate/new/" not in admin.get("/admin/host_nocreate/").text
    admin.post("/admin/host_nocreate/new/", data={"title": "Not created"})
    assert tasks_titled("Not created") == []
    # A subclass of the plugin's read-only panel cannot switch create back on.
    assert host.views["host_readonly"].can_create is False
    assert "/admin/host_readonly/new/" not in admin.get("/admin/host_readonly/").text
    # A constructor keyword narrows one view; assigning True is the host's flag again,
    # still under the plugin's decision.
    assert "/admin/host_kwarg/edit/" not in admin.get("/admin/host_kwarg/").text
    assert "/admin/host_tasks/edit/" in admin.get("/admin/host_tasks/").text
    host.views["host_kwarg"].can_edit = True
    assert "/admin/host_kwarg/edit/" in admin.get("/admin/host_kwarg/").text
    viewer = login(host.users["viewer"], host.ws)
    assert "/admin/host_kwarg/edit/" not in viewer.get("/admin/host_kwarg/").text


# -- 2. models that are not resources -------------------------------------------------------


def test_the_user_view_lists_the_members_of_the_workspace(host: SimpleNamespace,
                                                          login: Any) -> None:
    manager = login(host.users["manager"], host.ws)  # members.view
    page = manager.get("/admin/host_users/").text
    joined = {k for k in host.users if k != "outsider"}
    for key in joined:
        assert host.users[key].email in page, key
    # A member of B only, with a pending invitation to A: not listed, not reachable.
    outsider = host.users["outsider"]
    assert outsider.email not in page and "Outsider" not in page
    assert manager.get(f"/admin/host_users/details/?id={outsider.id}").status_code == 404
    admin = login(host.users["admin"], host.ws)  # members.edit
    assert admin.get(f"/admin/host_users/edit/?id={outsider.id}").status_code == 404
    assert admin.get(f"/admin/host_users/edit/?id={host.users['viewer'].id}").status_code == 200
    assert manager.get(f"/admin/host_users/details/?id={host.users['member'].id}").status_code \
        == 200
    beta = login(host.users["dual"], host.ws2)  # Owner of B
    page = beta.get("/admin/host_users/").text
    assert outsider.email in page and host.users["member"].email not in page


def test_other_models_list_nothing_unless_the_host_scopes_them(host: SimpleNamespace,
                                                               login: Any) -> None:
    owner = login(host.users["owner"], host.ws)
    page = owner.get("/admin/host_workspaces/")
    assert page.status_code == 200
    assert "/admin/host_workspaces/details/?id=" not in page.text
    assert "Beta Education" not in page.text
    url = f"/admin/host_workspaces/details/?id={host.ws.id}"
    assert owner.get(url).status_code == 404
    scoped = owner.get("/admin/host_catalogue/").text
    assert scoped.count("/admin/host_catalogue/details/?id=") == 1
    assert "Beta Education" not in scoped


# -- 3. relation choices and ajax lookups ---------------------------------------------------


@relation_fields
def test_relation_choices_hold_what_the_member_sees(host: SimpleNamespace, login: Any) -> None:
    member = login(host.users["member"], host.ws)
    form = member.get("/admin/host_tasks/new/").text
    clients = option_labels(form, "client")
    assert clients == visible_clients(host, "member")
    assert "Client of member" in clients
    assert "Client of manager" not in clients and "Beta client" not in clients
    owners = option_labels(form, "owner")
    assert owners == {u.name for k, u in host.users.items() if k != "outsider"}
    own = host.tasks["loose-member"]
    assert option_labels(member.get(f"/admin/host_tasks/edit/?id={own.id}").text,
                         "client") == clients


@relation_fields
@pytest.mark.parametrize("view", ["host_tasks", "host_ajax_tasks"])
def test_a_posted_id_outside_the_choices_never_links(host: SimpleNamespace, login: Any,
                                                     view: str) -> None:
    """The id is not among the field's choices: Flask-Admin leaves a nullable
    relation empty (select and ajax fields alike), and never links to the row."""
    member = login(host.users["member"], host.ws)
    mine, member_id = host.clients["member"].id, host.users["member"].id
    for title, client_id, owner_id in [
            ("Bad client", host.clients["manager"].id, member_id),
            ("Beta client task", host.other["client"].id, member_id),
            ("Bad owner", mine, host.users["outsider"].id)]:
        member.post(f"/admin/{view}/new/", data={
            "title": title, "client": str(client_id), "owner": str(owner_id)})
        links = {(t.client_id, t.owner_id) for t in tasks_titled(title)}
        assert (client_id, owner_id) not in links, (view, title)
        assert all(c in (None, mine) and o in (None, member_id) for c, o in links)
    member.post(f"/admin/{view}/new/", data={"title": "Good task", "client": str(mine),
                                             "owner": str(member_id)})
    created = tasks_titled("Good task")
    assert [(t.client_id, t.owner_id) for t in created] == [(mine, member_id)]


def test_ajax_lookups_return_visible_rows_and_workspace_users(host: SimpleNamespace,
                                                              login: Any) -> None:
    loaders = host.views["host_ajax_tasks"]._form_ajax_refs
    assert all(isinstance(loader, ScopedAjaxLoader) for loader in loaders.values())
    member = login(host.users["member"], host.ws)
    assert set(lookup(member, "host_ajax_tasks", "client", "Client")) == \
        visible_clients(host, "member")
    assert lookup(member, "host_ajax_tasks", "client", "Beta") == []
    assert lookup(member, "host_ajax_tasks", "client", "manager") == []
    users = set(lookup(member, "host_ajax_tasks", "owner", "e"))
    assert users == {u.name for k, u in host.users.items() if k != "outsider"}
    assert lookup(member, "host_ajax_tasks", "owner", "outsider") == []
    beta = login(host.users["dual"], host.ws2)  # Owner of B
    assert set(lookup(beta, "host_ajax_tasks", "client", "client")) == {"Beta client"}
    assert set(lookup(beta, "host_ajax_tasks", "owner", "e")) == {"Dual", "Outsider"}


def test_ajax_loaders_are_scoped_or_refused(app: Flask) -> None:
    """A host's ``QueryAjaxModelLoader`` is scoped; a loader class the view cannot
    scope fails at construction rather than list every workspace's rows."""
    session = db.session
    plain = {"client": QueryAjaxModelLoader("client", session, Client, fields=["name"])}
    view = RBACModelView(Task, db, rbac=rbac, resource="tasks", endpoint="plain_loader",
                         form_ajax_refs=plain)
    assert isinstance(view._form_ajax_refs["client"], ScopedAjaxLoader)

    class OwnLoader(AjaxModelLoader):
        def get_list(self, query: str, offset: int = 0, limit: int = 10) -> list[Any]:
            return []

    with pytest.raises(TypeError, match="ScopedAjaxLoader"):
        RBACModelView(Task, db, rbac=rbac, resource="tasks", endpoint="own_loader",
                      form_ajax_refs={"client": OwnLoader("client", {})})


# -- 4. the plugin's bar on the host's base template ----------------------------------------


def test_pages_extend_the_hosts_base_and_show_the_workspace(app: Flask, host: SimpleNamespace,
                                                            login: Any) -> None:
    admin = app.extensions["admin"][0]
    app.jinja_loader = jinja2.ChoiceLoader([  # type: ignore[assignment]
        jinja2.DictLoader({"host_admin_base.html": (
            '{% extends "admin/base.html" %}'
            '{% block brand %}<span class="host-brand">Host brand</span>{% endblock %}')}),
        app.jinja_loader])
    admin.theme.base_template = "host_admin_base.html"
    owner = login(host.users["owner"], host.ws)
    page = owner.get("/admin/host_tasks/").text
    assert "host-brand" in page and "rbac-admin-bar" in page
    assert "Acme Sales" in page and 'href="/"' in page
    assert "rbac-view-as-banner" not in page
    admin_client = login(host.users["admin"], host.ws)
    admin_client.post("/settings/view-as", data={
        "membership_id": str(host.members["viewer"].id), "next": "/leads/"})
    page = admin_client.get("/admin/leads/").text
    assert "rbac-view-as-banner" in page and "Viewer" in page


# -- 5. exports hold every row, or say why not ---------------------------------------------


def many_leads(world: SimpleNamespace, count: int) -> None:
    with rbac.system():
        db.session.add_all(Lead(workspace_id=world.ws.id, owner_id=world.users["owner"].id,
                                name=f"Bulk lead n{i:02d}") for i in range(count))
        db.session.commit()


def export_audits() -> int:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    with rbac.system():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(A)
                                     .where(A.action == "export")) or 0)


def test_an_export_holds_more_rows_than_a_page(host: SimpleNamespace, login: Any) -> None:
    many_leads(host, 45)
    view = host.views["host_tasks"]
    assert view.page_size < 45 and view.export_max_rows == 0
    owner = login(host.users["owner"], host.ws)
    response = owner.get("/admin/leads/export/csv/")
    rows = list(csv.reader(io.StringIO(response.text)))[1:]
    with rbac.system():
        want = {str(i) for i in db.session.scalars(
            sa.select(Lead.id).where(Lead.workspace_id == host.ws.id))}
    assert len(want) == 50 and {row[0] for row in rows} == want


def test_an_export_over_the_hosts_limit_is_refused_with_a_message(host: SimpleNamespace,
                                                                  login: Any) -> None:
    many_leads(host, 25)
    owner = login(host.users["owner"], host.ws)
    before = export_audits()
    for view, words in [("host_page_export", "would hold 30 rows"),
                        ("host_simple_export", "would hold more rows")]:
        response = owner.get(f"/admin/{view}/export/csv/", follow_redirects=True)
        assert "text/csv" not in response.headers["Content-Type"]
        assert words in response.text and "at most" in response.text, view
    assert export_audits() == before  # nothing was exported
    # Narrowed below the limit (one page, 20 rows), the export is whole.
    response = owner.get("/admin/host_page_export/export/csv/?search=n1")
    rows = list(csv.reader(io.StringIO(response.text)))[1:]
    assert sorted(row[1] for row in rows) == [f"Bulk lead n{i}" for i in range(10, 20)]
    assert export_audits() == before + 1
