"""A form is bound to the workspace it was rendered in.

``dual`` is Owner of Beta and Viewer of Acme; the tests make them a Member of
Acme too, so that they may create records in both. A form opened in Beta and
submitted after switching to Acme (another tab) is refused with a 409 naming
both workspaces, and nothing is written; the same form submitted in Beta
saves. The workspace switch itself is never refused as stale.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Client, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from tests.rbac_helpers import fast_passwords, give_role  # noqa: F401


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no {name} field"
    return found.group(1)


def token(page: str) -> dict[str, str]:
    """The page's CSRF token, when the app checks them (the tests' app does not)."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', page)
    return {"csrf_token": found.group(1)} if found else {}


def count(model: Any) -> int:
    with rbac.system():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@pytest.mark.parametrize("resource, model, data", [
    ("clients", Client, {"name": "Beta intended client", "region": "north"}),
    ("tasks", Task, {"title": "Beta-only follow-up", "status": "open"}),
])
def test_a_form_of_one_workspace_is_refused_after_switching(
        world: SimpleNamespace, login: Any, resource: str, model: Any,
        data: dict[str, str]) -> None:
    give_role(world.members["dual"], workspaces.role_by_key(rbac, world.ws, "member"))
    db.session.commit()
    client = login(world.users["dual"], world.ws2)
    page = client.get(f"/{resource}/new").get_data(as_text=True)
    assert hidden(page, "rbac_workspace") == str(world.ws2.id)
    form = {**data, **token(page),
            "rbac_workspace": hidden(page, "rbac_workspace"),
            "owner_id": str(world.users["dual"].id)}
    switched = client.post("/settings/workspace", data={"workspace_id": str(world.ws.id)})
    assert switched.status_code in (302, 303)
    before = count(model)
    response = client.post(f"/{resource}/new", data=form)
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "Beta Education" in text and "Acme Sales" in text
    assert count(model) == before
    response = client.post(f"/{resource}/new", data=form,
                           headers={"Accept": "application/json"})
    assert response.status_code == 409
    assert response.json["field"] == "rbac_workspace"
    client.post("/settings/workspace", data={"workspace_id": str(world.ws2.id)})
    response = client.post(f"/{resource}/new", data=form)
    assert response.status_code == 302
    assert count(model) == before + 1
    with rbac.system():
        newest = db.session.scalars(sa.select(model).order_by(model.id.desc())).first()
        assert newest.workspace_id == world.ws2.id


def test_a_forged_workspace_is_named_by_nothing(world: SimpleNamespace, login: Any) -> None:
    """A workspace the user is not in is never named: the answer says "another workspace"."""
    client = login(world.users["member"], world.ws)
    page = client.get("/clients/new").get_data(as_text=True)
    response = client.post("/clients/new", data={
        "name": "x", **token(page),
        "rbac_workspace": str(world.ws2.id)})
    assert response.status_code == 409
    assert "Beta Education" not in response.get_data(as_text=True)
    assert "another workspace" in response.get_data(as_text=True)


#: Templates whose forms act on the account, not on a workspace: a tab left on
#: another workspace may still post them.
ACCOUNT_TEMPLATES = frozenset({"rbac/settings/team/profile.html",
                               "rbac/settings/account/mfa.html"})


def test_every_workspace_form_of_the_plugin_names_its_workspace() -> None:
    """A form that renders its CSRF token with ``hidden_tag()`` names its workspace
    beside it, as the shared macros do, unless it acts on the account alone."""
    from pathlib import Path

    import crm_rbac_plugin

    root = Path(crm_rbac_plugin.__file__).parent / "templates"
    unbound = []
    for path in sorted(root.rglob("*.html")):
        name = path.relative_to(root).as_posix()
        text = path.read_text()
        for found in re.finditer(r"\{\{ \w+\.hidden_tag\(\) \}\}", text):
            bound = text.startswith("{{ rbac_workspace_field() }}", found.end())
            if not bound and name not in ACCOUNT_TEMPLATES:
                unbound.append(f"{name}:{text.count(chr(10), 0, found.start()) + 1}")
    assert unbound == []


def test_a_settings_form_of_one_workspace_is_refused_after_switching(
        world: SimpleNamespace, login: Any) -> None:
    """The notification page's "Mark all read" is one of the plugin's own forms: opened in
    Beta and posted from Acme, it marks nothing."""
    m = rbac.models
    client = login(world.users["dual"], world.ws2)
    page = client.get("/settings/account/notifications").get_data(as_text=True)
    assert hidden(page, "rbac_workspace") == str(world.ws2.id)
    with rbac.system():
        membership = db.session.scalar(sa.select(m.Membership).where(
            m.Membership.user_id == world.users["dual"].id,
            m.Membership.workspace_id == world.ws.id))
        db.session.add(m.Notification(workspace_id=world.ws.id, membership_id=membership.id,
                                      category="roles", event="role.assigned",
                                      summary="You were given a role in Acme Sales."))
        db.session.commit()
        membership_id = membership.id
    client.post("/settings/workspace", data={"workspace_id": str(world.ws.id)})
    response = client.post("/settings/account/notifications/read-all",
                           data={**token(page), "rbac_workspace": str(world.ws2.id)})
    assert response.status_code == 409
    with rbac.system():
        unread = db.session.scalar(sa.select(sa.func.count()).select_from(m.Notification)
                                   .where(m.Notification.membership_id == membership_id,
                                          m.Notification.read_at.is_(None)))
    assert unread == 1
