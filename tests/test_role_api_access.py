"""Roles that let their members use the JSON API, or not (seed 001's "API Access: Limit
API endpoint access").

A role with ``api_access`` off gives its members the workspace through a browser
session only: every request made with one of their API tokens is refused with
``403 {"error": "api_access_denied"}`` from the next request after the role
changes, while their browser session keeps working. Another role allowing the
API, and the Owner role, always lets them. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, tokens
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_api import Api
from tests.test_role_sign_in import _hold_only


def _browser_only_role(world: SimpleNamespace, name: str = "Desk clerk") -> Any:
    with rbac.as_member(world.members["owner"]) as owner:
        role = roles.create_role(rbac, owner, name=name,
                                 grants=roles.parse_grants(rbac, ["leads.view"]),
                                 api_access=False)
    db.session.commit()
    return role


def _token(world: SimpleNamespace, key: str) -> str:
    _, plaintext = tokens.create_token(rbac, world.members[key], f"{key}'s script")
    db.session.commit()
    return plaintext


def test_a_browser_only_members_token_is_refused_and_their_session_works(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    role = _browser_only_role(world)
    _hold_only(world, "viewer", role)
    api = Api(app, _token(world, "viewer"))
    refused = api.get("/records/leads")
    assert refused.status_code == 403
    assert refused.json["error"] == "api_access_denied"
    assert "do not let you use the API" in refused.json["message"]
    assert api.get("/notifications").json["error"] == "api_access_denied"
    assert login(world.users["viewer"], world.ws).get("/leads/").status_code == 200
    with rbac.as_member(world.members["owner"]) as owner:
        roles.update_role(rbac, owner, role, api_access=True)
    db.session.commit()
    assert api.get("/records/leads").status_code == 200  # the next request, no new token
    with rbac.as_member(world.members["owner"]) as owner:
        roles.update_role(rbac, owner, role, api_access=False)
    db.session.commit()
    assert api.get("/records/leads").status_code == 403


def test_another_role_allowing_the_api_wins_and_owners_always_may(
        app: Flask, world: SimpleNamespace) -> None:
    role = _browser_only_role(world)
    with rbac.as_member(world.members["owner"]) as owner:
        roles.assign_role(rbac, owner, world.members["member"], role)
        roles.assign_role(rbac, owner, world.members["owner"], role)
    db.session.commit()
    assert rbac.access_for(world.members["member"].id).api_access  # Member allows it
    assert rbac.access_for(world.members["owner"].id).api_access
    assert Api(app, _token(world, "member")).get("/records/leads").status_code == 200
    _hold_only(world, "member2", role)
    access = rbac.access_for(world.members["member2"].id)
    assert access.rules_for("leads", "view")[0] and not access.api_access


def test_the_api_reads_and_writes_api_access(app: Flask, world: SimpleNamespace,
                                             login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    made = client.post("/api/v1/roles", json={"name": "Clerk", "permissions": ["leads.view"],
                                              "api_access": False})
    assert made.status_code == 201, made.text
    assert made.json["api_access"] is False and made.json["sign_in"] is True
    plain = client.post("/api/v1/roles", json={"name": "Scripted", "permissions": ["leads.view"]})
    assert plain.json["api_access"] is True
    for value in ("no", 0, None, "false", [False]):
        refused = client.patch(f"/api/v1/roles/{plain.json['id']}", json={"api_access": value})
        assert refused.status_code == 400, value
        assert refused.json["field"] == "api_access"
    db.session.expire_all()
    assert db.session.get(rbac.models.Role, plain.json["id"]).api_access is True
    turned = client.patch(f"/api/v1/roles/{plain.json['id']}", json={"api_access": False})
    assert turned.status_code == 200 and turned.json["api_access"] is False


def test_the_role_form_and_the_roles_page(app: Flask, world: SimpleNamespace,
                                          login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    assert "No API access" in client.get("/settings/roles/new").text
    body = {"name": "Form clerk", "scope__leads__view": "all", "step": "save"}
    assert client.post("/settings/roles/new", data={**body, "no_api": "y"}).status_code == 302
    assert client.post("/settings/roles/new",
                       data={**body, "name": "Form scripted"}).status_code == 302
    R = rbac.models.Role
    db.session.expire_all()
    by_name = {r.name: r for r in db.session.scalars(sa.select(R).where(
        R.workspace_id == world.ws.id, R.name.in_(["Form clerk", "Form scripted"])))}
    assert by_name["Form clerk"].api_access is False
    assert by_name["Form scripted"].api_access is True
    edit = client.get(f"/settings/roles/{by_name['Form clerk'].id}/edit").text
    assert 'name="no_api" type="checkbox" value="y"' in edit and "checked" in edit
    assert "No API access" in client.get("/settings/roles").text
    with rbac.as_member(world.members["owner"]) as owner:
        copy = roles.clone_role(rbac, owner, by_name["Form clerk"], "Form clerk 2")
    db.session.commit()
    assert copy.api_access is False
