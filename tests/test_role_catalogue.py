"""The role catalogue: built-in templates, the Guest, the gallery and the role's Users tab."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Client, Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import quotas, roles
from crm_rbac_plugin.defaults import CATALOGUE, expand_grants
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import access_of, filtered_ids
from tests.test_settings_ui import role

NINE = ["Owner", "Admin", "Manager", "Sales", "Marketing", "Finance & Accounting", "Support",
        "Member", "Viewer"]


def test_new_workspaces_get_the_catalogue(world: SimpleNamespace) -> None:
    names = {r.name for r in rbac.models.Role.query.filter_by(workspace_id=world.ws.id)}
    assert set(NINE) | {"Junior Rep", "Client Success", "Finance", "Guest"} <= names
    assert [t["name"] for t in CATALOGUE][:9] == NINE


def test_finance_templates_differ(world: SimpleNamespace) -> None:
    closed = roles.matrix(rbac, role(world, "finance"))
    accounting = roles.matrix(rbac, role(world, "finance_accounting"))
    crm = {"leads", "deals", "clients", "notes", "tasks"}
    assert set(closed) & crm == {"deals"}  # 000's: of the CRM, closed deals only
    # 003's: the whole CRM read, and Accounting (the demo's invoices) in full.
    assert crm <= set(accounting)
    assert all(set(accounting[name]) == {"view"} for name in crm)
    assert {"view", "create", "edit", "delete"} <= set(accounting["invoices"])


def test_templates_skip_modules_the_host_lacks(app: Flask) -> None:
    # Support: Helpdesk in full, which the demo does not register, and the CRM read.
    support = next(t for t in CATALOGUE if t["key"] == "support")
    granted = expand_grants(rbac.registry, support)
    assert granted and all(action == "view" for _, action, _, _ in granted)


def test_the_guest_sees_only_records_assigned_to_them(world: SimpleNamespace) -> None:
    guest = world.members["viewer"]
    for mr in list(guest.member_roles):
        db.session.delete(mr)
    roles.assign_role(rbac, access_of(world.members["owner"]), guest, role(world, "guest"))
    db.session.commit()
    with rbac.system():
        db.session.add(Lead(workspace_id=world.ws.id, owner_id=world.users["viewer"].id,
                            name="assigned to the guest"))
        db.session.commit()
    with rbac.as_member(guest):
        names = set(db.session.scalars(sa.select(Lead.name)))
        assert names == {"assigned to the guest"}  # not the unowned lead, not others'
        assert filtered_ids(Client) == set()


def test_the_guest_assignment_expires_by_default(app: Flask, world: SimpleNamespace) -> None:
    owner = access_of(world.members["owner"])
    mr = roles.assign_role(rbac, owner, world.members["viewer"], role(world, "guest"))
    assert mr.expires_at is not None
    assert abs(mr.expires_at - (utcnow() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)
    chosen = utcnow() + dt.timedelta(days=3)
    mr2 = roles.assign_role(rbac, owner, world.members["member2"], role(world, "guest"),
                            expires_at=chosen)
    assert mr2.expires_at == chosen
    db.session.rollback()
    app.config["RBAC_ROLE_DEFAULT_EXPIRY_DAYS"] = {"guest": None}
    mr3 = roles.assign_role(rbac, owner, world.members["viewer"], role(world, "guest"))
    assert mr3.expires_at is None
    db.session.rollback()


# -- pages --------------------------------------------------------------------------------------


def test_the_create_page_offers_the_gallery(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/settings/roles/new")
    assert page.status_code == 200 and "Start from a template" in page.text
    assert "Reads only the records assigned to them" in page.text
    started = owner.get("/settings/roles/new?template=junior_rep")
    assert started.status_code == 200 and 'value="Junior Rep (custom)"' in started.text
    assert "Start from a template" not in started.text
    assert owner.get("/settings/roles/new?template=nope").status_code == 404
    assert owner.get("/settings/roles/new?template=owner").status_code == 404


def test_the_users_tab_lists_assigns_and_removes(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    junior = role(world, "junior_rep")
    page = owner.get(f"/settings/roles/{junior.id}/users")
    assert page.status_code == 200 and "Junior Rep" in page.text
    until = (utcnow() + dt.timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    r = owner.post(f"/settings/roles/{junior.id}/users",
                   data={"membership_id": world.members["member2"].id, "expires_at": until})
    assert r.status_code == 302, r.text
    db.session.expire_all()
    mr = next(mr for mr in world.members["member2"].member_roles if mr.role_id == junior.id)
    assert mr.expires_at is not None
    page = owner.get(f"/settings/roles/{junior.id}/users").text
    assert "Member2" in page and until.replace("T", " ") in page
    r = owner.post(f"/settings/roles/{junior.id}/users/{mr.id}/remove")
    assert r.status_code == 302
    db.session.expire_all()
    assert junior.id not in {m.role_id for m in world.members["member2"].member_roles}


def test_the_users_tab_refusals(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    admin_role = role(world, "admin")
    # Only an Owner gives Admin: 403, nothing assigned.
    r = admin.post(f"/settings/roles/{admin_role.id}/users",
                   data={"membership_id": world.members["viewer"].id})
    assert r.status_code == 403
    assert admin.post(f"/settings/roles/{admin_role.id}/users", data={}).status_code == 400
    assert admin.post("/settings/roles/999999/users",
                      data={"membership_id": world.members["viewer"].id}).status_code == 404
    viewer = login(world.users["viewer"], world.ws)
    assert viewer.get(f"/settings/roles/{admin_role.id}/users").status_code == 403
    other_ws_role = rbac.models.Role.query.filter_by(workspace_id=world.ws2.id).first()
    assert admin.get(f"/settings/roles/{other_ws_role.id}/users").status_code == 404


def test_caps_on_the_role_page(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    junior = role(world, "junior_rep")
    r = owner.post(f"/settings/roles/{junior.id}/caps", data={"resource": "leads", "max_records": 500})
    assert r.status_code == 302
    page = owner.get(f"/settings/roles/{junior.id}/users").text
    assert "Record caps" in page and ">500<" in page
    assert owner.post(f"/settings/roles/{junior.id}/caps",
                      data={"resource": "leads", "max_records": -1}).status_code == 400
    assert owner.post(f"/settings/roles/{junior.id}/caps",
                      data={"resource": "members", "max_records": 5}).status_code == 400
    admin_role = role(world, "admin")
    assert owner.post(f"/settings/roles/{admin_role.id}/caps",
                      data={"resource": "leads", "max_records": 5}).status_code == 403
    db.session.expire_all()
    assert [(c.resource, c.max_records) for c in quotas.caps_of(junior)] == [("leads", 500)]


@pytest.mark.parametrize("who", ["manager", "viewer"])
def test_only_roles_managers_set_caps_on_the_page(world: SimpleNamespace, login: Any, who: str) -> None:
    junior = role(world, "junior_rep")
    r = login(world.users[who], world.ws).post(f"/settings/roles/{junior.id}/caps",
                                               data={"resource": "leads", "max_records": 5})
    assert r.status_code == 403
    assert quotas.caps_of(junior) == []
