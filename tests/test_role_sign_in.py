"""Roles that let their members sign in, or not (seed 004's "Administrate Login").

A role with ``sign_in`` off gives its members the workspace through API
tokens only: the sign-in form refuses them as a wrong password, a browser
session in that workspace is refused on its next request, and their tokens
keep working. Another role letting them sign in, and the Owner role, always
lets them.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, tokens
from crm_rbac_plugin.security import signin
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

WRONG = "That email and password do not match an account."


def _api_only_role(world: SimpleNamespace, name: str = "Integration") -> Any:
    with rbac.as_member(world.members["owner"]) as owner:
        role = roles.create_role(rbac, owner, name=name,
                                 grants=roles.parse_grants(rbac, ["leads.view"]), sign_in=False)
    db.session.commit()
    return role


def _hold_only(world: SimpleNamespace, key: str, role: Any) -> None:
    """Make ``role`` the only role of member ``key`` (directly; no department)."""
    m = rbac.models
    member = world.members[key]
    db.session.execute(sa.delete(m.MemberRole).where(m.MemberRole.membership_id == member.id))
    member.department_id = None
    db.session.add(m.MemberRole(membership_id=member.id, role_id=role.id))
    ws = db.session.get(m.Workspace, member.workspace_id)
    ws.policy_version += 1
    db.session.commit()


def _form_login(app: Flask, email: str) -> Any:
    client = app.test_client()
    return client, client.post("/login", data={"email": email, "password": "password"})


def _events(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == action)))


def test_an_api_only_member_cannot_sign_in_but_their_token_works(
        app: Flask, world: SimpleNamespace) -> None:
    role = _api_only_role(world)
    _hold_only(world, "viewer", role)
    failed_before = len(_events("auth.failed"))

    client, response = _form_login(app, "viewer@example.test")
    assert response.status_code == 200 and WRONG in response.text
    assert client.get("/").status_code == 302  # not signed in
    assert len(_events("auth.failed")) == failed_before + 1

    _, plaintext = tokens.create_token(rbac, world.members["viewer"], "integration")
    db.session.commit()
    api = app.test_client()
    answer = api.get("/api/v1/records/leads", headers={"Authorization": f"Bearer {plaintext}"})
    assert answer.status_code == 200, answer.text


def test_a_session_is_refused_at_its_next_request_once_its_roles_turn_sign_in_off(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    role = _api_only_role(world)
    with rbac.as_member(world.members["owner"]) as owner:
        roles.update_role(rbac, owner, role, sign_in=True)
    db.session.commit()
    _hold_only(world, "viewer", role)
    client = login(world.users["viewer"], world.ws)
    assert client.get("/leads/").status_code == 200

    with rbac.as_member(world.members["owner"]) as owner:
        roles.update_role(rbac, owner, role, sign_in=False)
    db.session.commit()
    page = client.get("/leads/")
    assert page.status_code == 403 and "API tokens only" in page.text
    answer = client.get("/api/v1/records/leads")
    assert answer.status_code == 403 and "API tokens only" in answer.json["message"]
    # Signing out stays reachable.
    assert client.post("/logout").status_code == 302


def test_another_role_that_lets_them_sign_in_wins(app: Flask, world: SimpleNamespace) -> None:
    role = _api_only_role(world)
    with rbac.as_member(world.members["owner"]) as owner:
        roles.assign_role(rbac, owner, world.members["member"], role)
    db.session.commit()
    client, response = _form_login(app, "member@example.test")
    assert response.status_code == 302
    assert client.get("/leads/").status_code == 200


def test_an_inherited_role_does_not_lift_it(app: Flask, world: SimpleNamespace) -> None:
    m = rbac.models
    member_role = db.session.scalar(sa.select(m.Role).where(
        m.Role.workspace_id == world.ws.id, m.Role.key == "member"))
    role = _api_only_role(world)
    with rbac.as_member(world.members["owner"]) as owner:
        roles.update_role(rbac, owner, role, parent=member_role)
    db.session.commit()
    _hold_only(world, "viewer", role)
    access = rbac.access_for(world.members["viewer"].id)
    assert access.rules_for("leads", "view")[0] and not access.sign_in


def test_owners_and_admins_always_sign_in(app: Flask, world: SimpleNamespace) -> None:
    role = _api_only_role(world)
    with rbac.as_member(world.members["owner"]) as owner:
        roles.assign_role(rbac, owner, world.members["admin"], role)
    db.session.commit()
    assert rbac.access_for(world.members["admin"].id).sign_in
    assert rbac.access_for(world.members["owner"].id).sign_in
    _, response = _form_login(app, "admin@example.test")
    assert response.status_code == 302


def test_sign_in_starts_in_a_workspace_that_lets_the_user_in(
        app: Flask, world: SimpleNamespace) -> None:
    """``dual`` owns Beta and is an API-only member of Acme: the sign-in lands in Beta."""
    _hold_only(world, "dual", _api_only_role(world))
    assert signin.open_workspaces(rbac, world.users["dual"]) == [world.ws2.id]
    client, response = _form_login(app, "dual@example.test")
    assert response.status_code == 302
    with client.session_transaction() as sess:
        assert sess[app.config["RBAC_SESSION_KEY"]] == world.ws2.id


def test_the_api_reads_and_writes_sign_in(app: Flask, world: SimpleNamespace,
                                          login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    made = client.post("/api/v1/roles", json={"name": "Robot", "permissions": ["leads.view"],
                                              "sign_in": False})
    assert made.status_code == 201, made.text
    assert made.json["sign_in"] is False
    plain = client.post("/api/v1/roles", json={"name": "Person", "permissions": ["leads.view"]})
    assert plain.json["sign_in"] is True
    for value in ("no", 0, None, "false", [False]):
        refused = client.patch(f"/api/v1/roles/{plain.json['id']}", json={"sign_in": value})
        assert refused.status_code == 400, value
        assert refused.json["field"] == "sign_in"
    db.session.expire_all()
    assert db.session.get(rbac.models.Role, plain.json["id"]).sign_in is True
    turned = client.patch(f"/api/v1/roles/{plain.json['id']}", json={"sign_in": False})
    assert turned.status_code == 200 and turned.json["sign_in"] is False


def test_the_role_form_sets_it_and_a_form_without_the_box_leaves_it_on(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    page = client.get("/settings/roles/new")
    assert "API tokens only" in page.text
    body = {"name": "Form robot", "scope__leads__view": "all", "step": "save"}
    assert client.post("/settings/roles/new", data={**body, "no_sign_in": "y"}).status_code == 302
    assert client.post("/settings/roles/new",
                       data={**body, "name": "Form person"}).status_code == 302
    R = rbac.models.Role
    db.session.expire_all()
    by_name = {r.name: r for r in db.session.scalars(sa.select(R).where(
        R.workspace_id == world.ws.id, R.name.in_(["Form robot", "Form person"])))}
    assert by_name["Form robot"].sign_in is False and by_name["Form person"].sign_in is True
    edit = client.get(f"/settings/roles/{by_name['Form robot'].id}/edit")
    assert 'name="no_sign_in" type="checkbox" value="y" checked' in edit.text \
        or ("no_sign_in" in edit.text and "checked" in edit.text)


def test_a_copy_keeps_it(app: Flask, world: SimpleNamespace) -> None:
    role = _api_only_role(world)
    with rbac.as_member(world.members["owner"]) as owner:
        copy = roles.clone_role(rbac, owner, role, "Integration 2")
    db.session.commit()
    assert copy.sign_in is False


def test_the_roles_page_marks_an_api_only_role(app: Flask, world: SimpleNamespace,
                                               login: Any) -> None:
    _api_only_role(world)
    page = login(world.users["owner"], world.ws).get("/settings/roles")
    assert page.status_code == 200 and "API tokens only" in page.text


def test_an_owner_issues_a_token_to_an_api_only_member_from_the_cli(
        app: Flask, world: SimpleNamespace) -> None:
    _hold_only(world, "viewer", _api_only_role(world))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rbac", "members", "token", "viewer@example.test",
                                 "--workspace", world.ws.slug, "--name", "CI import",
                                 "--days", "30"])
    assert result.exit_code == 0, result.output
    plaintext = result.output.strip()
    answer = app.test_client().get("/api/v1/records/leads",
                                   headers={"Authorization": f"Bearer {plaintext}"})
    assert answer.status_code == 200
    issued = _events("member.token_issued")
    assert issued and issued[-1].target == "Viewer" and plaintext not in str(issued[-1].detail)

    refused = runner.invoke(args=["rbac", "members", "token", "viewer@example.test",
                                  "--workspace", world.ws.slug, "--name", "x",
                                  "--as", "admin@example.test"])
    assert refused.exit_code != 0 and "Only an Owner" in refused.output
    blank = runner.invoke(args=["rbac", "members", "token", "viewer@example.test",
                                "--workspace", world.ws.slug, "--name", " "])
    assert blank.exit_code != 0 and "name" in blank.output
    assert len(_events("member.token_issued")) == len(issued)
