"""The JSON API: each endpoint, authentication, the escalation table and bad input.

Requests authenticate with personal API tokens (``Authorization: Bearer``)
from a client that has no session, as a script would; one test uses the
browser session and its CSRF header instead. Every refusal is checked to
leave every policy table exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens, workspaces
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import give_role_admin, grants_of, policy_snapshot, role, role_named

CLOSED = [{"field": "stage", "op": "in", "value": ["won", "lost"]}]


class Api:
    """A session-less client sending one member's API token."""

    def __init__(self, app: Flask, plaintext: str | None) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {plaintext}"} if plaintext else {}

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        if body is not None:
            kwargs["json"] = body
        return self.client.open(f"/api/v1{path}", method=method.upper(), headers=self.headers,
                                **kwargs)

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.call("get", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> TestResponse:
        return self.call("post", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> TestResponse:
        return self.call("patch", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.call("delete", path, **kw)


@pytest.fixture
def api(app: Flask, world: SimpleNamespace) -> Any:
    """Return ``api(key)``: a client holding a fresh token of member ``key`` of ``world.ws``."""
    def make(key: str) -> Api:
        _, plaintext = tokens.create_token(rbac, world.members[key], f"test {key}")
        db.session.commit()
        return Api(app, plaintext)
    return make


# -- the description ---------------------------------------------------------------------------


def test_openapi_describes_every_route(app: Flask) -> None:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": "/api/v1"}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "A personal API token (crmrbac_...)."}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("rbac_api."):
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}",
                      rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == described
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


# -- authentication ----------------------------------------------------------------------------


def test_authentication(app: Flask, world: SimpleNamespace, api: Any) -> None:
    path = f"/members/{world.members['viewer'].id}/access"
    nobody = Api(app, None)
    response = nobody.get(path)
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert Api(app, "crmrbac_not-a-token").get(path).status_code == 401
    assert Api(app, "garbage").get(path).status_code == 401

    viewer = api("viewer")
    assert viewer.get(path).status_code == 200
    token = db.session.scalar(sa.select(rbac.models.ApiToken).order_by(
        rbac.models.ApiToken.id.desc()))
    tokens.revoke_token(rbac, world.members["viewer"], token)
    db.session.commit()
    assert viewer.get(path).status_code == 401

    expiring = api("viewer")
    db.session.execute(sa.update(rbac.models.ApiToken.__table__).values(
        expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.session.commit()
    assert expiring.get(path).status_code == 401

    deactivated = api("viewer")
    world.members["viewer"].status = "inactive"
    db.session.commit()
    assert deactivated.get(path).status_code == 401


def test_the_host_request_loader_path_works_too(app: Flask, world: SimpleNamespace, api: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``login_manager.request_loader(rbac.load_user_from_request)`` registered."""
    monkeypatch.setattr(app.login_manager, "_request_callback", rbac.load_user_from_request)
    admin = api("admin")
    assert admin.get("/roles").status_code == 200
    assert Api(app, "crmrbac_nope").get("/roles").status_code == 401


def test_token_acts_in_its_own_workspace(app: Flask, world: SimpleNamespace, api: Any) -> None:
    """``dual`` is Viewer in ws and Owner in ws2: a ws token has Viewer's rights only."""
    dual = api("dual")
    assert dual.get("/roles").status_code == 403
    assert dual.post("/roles", {"name": "Nope"}).status_code == 403
    own = world.members["dual"].id
    body = dual.get(f"/members/{own}/access").json
    assert body["is_owner"] is False and body["roles"] == ["Viewer"]


# -- roles ---------------------------------------------------------------------------------------


def test_roles_happy_path(world: SimpleNamespace, api: Any) -> None:
    owner = api("owner")
    listing = owner.get("/roles").json["roles"]
    by_name = {r["name"]: r for r in listing}
    assert by_name["Member"]["member_count"] == 2 and by_name["Owner"]["is_owner"]
    assert by_name["Finance"]["permissions"][0]["condition"] == CLOSED

    created = owner.post("/roles", {
        "name": "Rep", "description": "Sales rep", "parent_id": role(world, "junior_rep").id,
        "permissions": ["leads.view", "leads.edit",
                        {"resource": "deals", "action": "view", "scope": "all",
                         "condition": CLOSED},
                        {"resource": "leads", "action": "export", "effect": "deny"}],
        "scopes": {"leads": "own"}, "field_rules": {"deals": {"amount": "hidden"}}})
    assert created.status_code == 201, created.json
    rep = created.json
    assert created.headers["Location"].endswith(f"/api/v1/roles/{rep['id']}")
    assert rep["parent_id"] == role(world, "junior_rep").id
    assert rep["field_rules"] == {"deals": {"amount": "hidden"}}
    assert rep["effective_permissions"]["leads.create"] == "own"  # inherited
    assert grants_of(rep["id"]) == {
        ("leads", "view", "own", "allow", ""), ("leads", "edit", "own", "allow", ""),
        ("deals", "view", "all", "allow", str(CLOSED)), ("leads", "export", "all", "deny", "")}
    assert owner.get(f"/roles/{rep['id']}").json == rep

    patched = owner.patch(f"/roles/{rep['id']}", {"name": "Senior rep", "parent_id": None,
                                                  "permissions": ["leads.view"]})
    assert patched.status_code == 200
    assert patched.json["name"] == "Senior rep" and patched.json["parent_id"] is None
    assert patched.json["field_rules"] == {"deals": {"amount": "hidden"}}  # not sent: kept
    assert grants_of(rep["id"]) == {("leads", "view", "all", "allow", "")}

    clone = owner.post(f"/roles/{role(world, 'finance').id}/clone", {"name": "Finance EU"})
    assert clone.status_code == 201 and clone.json["permissions"][0]["condition"] == CLOSED

    compare = owner.get(f"/roles/compare?ids={role(world, 'viewer').id},"
                        f"{role(world, 'finance').id}&filter=deals").json
    rows = {r["permission"]: r for r in compare["rows"]}
    assert rows["deals.view"] == {"permission": "deals.view", "differs": True,
                                  "cells": ["all", "all where stage in (won, lost)"]}
    granting = owner.get("/roles/granting?permission=deals.export").json
    assert [r["name"] for r in granting["roles"]] == ["Owner", "Admin", "Manager", "Finance",
                                                     "Sales", "Finance EU"]

    workspaces.assign_role(rbac, world.members["member2"], role_named("Senior rep"))
    db.session.commit()
    refused = owner.delete(f"/roles/{rep['id']}?move_to=999999")
    assert refused.status_code == 400 and refused.json["field"] == "move_to"
    assert owner.delete(f"/roles/{rep['id']}?move_to={role(world, 'viewer').id}"
                        ).status_code == 204
    assert role_named("Senior rep") is None
    held = {mr.role.name for mr in world.members["member2"].member_roles}
    assert held == {"Member", "Viewer"}


def test_delete_refuses_to_strand_members(world: SimpleNamespace, api: Any) -> None:
    owner = api("owner")
    before = policy_snapshot()
    response = owner.delete(f"/roles/{role(world, 'junior_rep').id}")
    assert response.status_code == 409 and response.json["field"] == "move_to"
    assert "hold only this role" in response.json["message"]
    assert policy_snapshot() == before


def test_other_workspaces_ids_are_404(world: SimpleNamespace, api: Any) -> None:
    owner = api("owner")
    other_role = workspaces.role_by_key(rbac, world.ws2, "viewer").id
    other_member = db.session.scalar(sa.select(rbac.models.Membership.id).where(
        rbac.models.Membership.workspace_id == world.ws2.id))
    mine = role(world, "viewer").id
    before = policy_snapshot()
    for method, path, body in [
        ("get", f"/roles/{other_role}", None),
        ("patch", f"/roles/{other_role}", {"name": "Mine now"}),
        ("delete", f"/roles/{other_role}", None),
        ("post", f"/roles/{other_role}/clone", {"name": "Copy"}),
        ("get", f"/roles/compare?ids={mine},{other_role}", None),
        ("get", f"/members/{other_member}/roles", None),
        ("get", f"/members/{other_member}/access", None),
        ("post", f"/members/{other_member}/roles", {"role_id": mine}),
        ("get", "/roles/999999", None),
    ]:
        response = owner.call(method, path, body)
        assert response.status_code == 404, (method, path)
        assert response.json["error"] == "not_found"
    # A role of another workspace given to one of ours is not found either.
    response = owner.post(f"/members/{world.members['viewer'].id}/roles",
                          {"role_id": other_role})
    assert response.status_code == 400 and response.json["field"] == "role_id"
    assert policy_snapshot() == before


# -- members and assignments -----------------------------------------------------------------


def test_members_and_assignments(world: SimpleNamespace, api: Any) -> None:
    owner = api("owner")
    members = {m["name"]: m for m in owner.get("/members").json["members"]}
    assert members["Finance"]["roles"][0]["role"] == "Finance"
    assert members["Owner"]["email"] == "owner@example.test"

    viewer = world.members["viewer"].id
    starts = (utcnow() + dt.timedelta(days=1)).replace(microsecond=0)
    response = owner.post(f"/members/{viewer}/roles", {
        "role_id": role(world, "finance").id,
        "starts_at": starts.isoformat() + "Z",
        "expires_at": (starts + dt.timedelta(days=7)).replace(tzinfo=dt.UTC)
        .astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()})
    assert response.status_code == 201, response.json
    assignment = response.json
    assert assignment["status"] == "scheduled"
    assert assignment["starts_at"] == starts.isoformat() + "Z"
    assert assignment["expires_at"] == (starts + dt.timedelta(days=7)).isoformat() + "Z"
    listed = owner.get(f"/members/{viewer}/roles").json["roles"]
    assert [a["role"] for a in listed] == ["Viewer", "Finance"]

    access = owner.get(f"/members/{viewer}/access").json["permissions"]
    assert access["deals.export"]["allowed"] is False  # not started yet
    assert access["leads.view"] == {"allowed": True, "scope": "all", "roles": ["Viewer"],
                                    "denied_by": [], "reason": access["leads.view"]["reason"]}

    assert owner.delete(f"/members/{viewer}/roles/{assignment['id']}").status_code == 204
    assert owner.delete(f"/members/{viewer}/roles/{assignment['id']}").status_code == 404
    last = listed[0]["id"]
    refused = owner.delete(f"/members/{viewer}/roles/{last}")
    assert refused.status_code == 409 and "at least one role" in refused.json["message"]


def test_effective_access_shows_inherited_roles(world: SimpleNamespace, api: Any) -> None:
    m = rbac.models
    base = m.Role(workspace=world.ws, name="Base")
    workspaces.add_grant(rbac, base, "clients", "export", "own")
    child = m.Role(workspace=world.ws, name="Child", parent=base)
    db.session.add_all([base, child])
    db.session.flush()
    workspaces.assign_role(rbac, world.members["member2"], child)
    db.session.commit()
    # A member may read their own access without members.view.
    me = api("member2")
    body = me.get(f"/members/{world.members['member2'].id}/access").json
    assert body["permissions"]["clients.export"]["roles"] == ["Base (inherited)"]
    assert body["permissions"]["clients.view"]["roles"] == ["Member"]
    assert me.get(f"/members/{world.members['member'].id}/access").status_code == 403
    assert me.get("/members").status_code == 403


# -- the escalation table ----------------------------------------------------------------------


def _ids(world: SimpleNamespace) -> dict[str, int]:
    ids = {f"role:{key}": role(world, key).id for key in
           ("owner", "admin", "manager", "member", "viewer", "finance", "junior_rep")}
    ids.update({f"member:{key}": ms.id for key, ms in world.members.items()})
    owner_mr = world.members["owner"].member_roles[0].id
    return {**ids, "owner_assignment": owner_mr}


ESCALATION = [
    # (actor, method, path, body, expected status); actor "x+" also holds a role-admin role
    ("admin", "post", "/members/{member:viewer}/roles", {"role_id": "{role:owner}"}, 403),
    ("admin", "post", "/members/{member:viewer}/roles", {"role_id": "{role:admin}"}, 403),
    ("admin", "delete", "/members/{member:owner}/roles/{owner_assignment}", None, 403),
    ("admin", "patch", "/roles/{role:admin}", {"permissions": ["leads.view"]}, 403),
    ("admin", "post", "/members/{member:admin}/roles", {"role_id": "{role:viewer}"}, 403),
    ("admin", "post", "/roles/{role:owner}/clone", {"name": "Owner 2"}, 400),
    ("manager+", "post", "/roles", {"name": "Wide", "permissions": ["leads.view"]}, 403),
    ("manager+", "post", "/roles", {"name": "Manage", "permissions": ["leads.manage"],
                                    "scopes": {"leads": "own"}}, 403),
    ("manager+", "post", "/roles", {"name": "Heir", "parent_id": "{role:viewer}"}, 403),
    ("manager+", "patch", "/roles/{role:junior_rep}", {"scopes": {"leads": "all"},
                                                       "permissions": ["leads.view"]}, 403),
    ("manager+", "patch", "/roles/{role:viewer}", {"name": "Renamed"}, 403),
    ("manager+", "delete", "/roles/{role:finance}", None, 403),
    ("manager+", "post", "/members/{member:member2}/roles", {"role_id": "{role:viewer}"}, 403),
    ("manager+", "post", "/members/{member:manager}/roles", {"role_id": "{role:member}"}, 403),
    ("manager", "post", "/members/{member:member2}/roles", {"role_id": "{role:junior_rep}"},
     403),
    ("member", "post", "/members/{member:member}/roles", {"role_id": "{role:manager}"}, 403),
    ("member", "delete", "/members/{member:member}/roles/{owner_assignment}", None, 403),
    ("viewer", "post", "/roles", {"name": "Mine", "permissions": ["leads.view"]}, 403),
    ("viewer", "delete", "/roles/{role:finance}", None, 403),
    ("viewer", "get", "/roles", None, 403),
    # ... and what the same actors may do
    ("owner", "post", "/members/{member:viewer}/roles", {"role_id": "{role:admin}"}, 201),
    ("manager+", "post", "/roles", {"name": "Team", "permissions": ["leads.view"],
                                    "scopes": {"leads": "team"}}, 201),
    ("manager+", "post", "/members/{member:member2}/roles", {"role_id": "{role:junior_rep}"},
     201),
    ("manager+", "patch", "/roles/{role:junior_rep}", {"description": "Narrow"}, 200),
]


def _path(path: str, ids: dict[str, int]) -> str:
    """Put ids into a path written as ``/roles/{role:viewer}``."""
    return re.sub(r"\{([\w:]+)\}", lambda m: str(ids[m.group(1)]), path)


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\{[\w:]+\}", value):
        return ids[value[1:-1]]
    return value


@pytest.mark.parametrize("actor, method, path, body, expected", ESCALATION)
def test_escalation_table(world: SimpleNamespace, api: Any, actor: str, method: str, path: str,
                          body: Any, expected: int) -> None:
    key = actor.rstrip("+")
    if actor.endswith("+"):
        give_role_admin(world, key)
    client = api(key)
    ids = _ids(world)
    before = policy_snapshot()
    response = client.call(method, _path(path, ids), _fill(body, ids))
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert response.json["message"]
        assert policy_snapshot() == before


# -- bad input -------------------------------------------------------------------------------


BAD_ROLES = [
    # (raw body or JSON value, expected field); status 400 unless given
    ('{"name": "X", ', None),
    ('["leads.view"]', None),
    ("", None),
    ('{"name": NaN}', None),
    ({"name": 5}, "name"),
    ({"permissions": ["leads.view"]}, "name"),
    ({"name": "X", "colour": "red"}, "colour"),
    ({"name": "X", "permissions": "leads.view"}, "permissions"),
    ({"name": "X", "permissions": {"leads.view": "own"}}, "permissions"),
    ({"name": "X", "permissions": [5]}, "permissions[0]"),
    ({"name": "X", "permissions": ["spaceships.view"]}, "permissions[0]"),
    ({"name": "X", "permissions": ["leads.view", "leads.fly"]}, "permissions[1]"),
    ({"name": "X", "permissions": [{"resource": "leads", "action": "view", "scope": "galaxy"}]},
     "permissions[0].scope"),
    ({"name": "X", "permissions": [{"resource": "leads", "action": "view", "scope": ["all"]}]},
     "permissions[0].scope"),
    ({"name": "X", "permissions": [{"resource": "leads", "action": "view", "colour": 1}]},
     "permissions[0]"),
    ({"name": "X", "permissions": [{"resource": "deals", "action": "view",
                                    "condition": [{"field": "nope", "op": "eq", "value": 1}]}]},
     "permissions[0].condition"),
    ({"name": "X", "permissions": [{"resource": "deals", "action": "view",
                                    "condition": [{"field": "stage", "op": "like",
                                                   "value": "w"}]}]},
     "permissions[0].condition"),
    ({"name": "X", "permissions": [{"resource": "deals", "action": "view",
                                    "condition": [{"field": "amount", "op": "gt",
                                                   "value": "lots"}]}]},
     "permissions[0].condition"),
    ({"name": "X", "permissions": [{"resource": "roles", "action": "view",
                                    "condition": CLOSED}]}, "permissions[0].condition"),
    ({"name": "X", "permissions": ["leads.view"], "scopes": {"leads": "galaxy"}},
     "scopes.leads"),
    ({"name": "X", "permissions": ["leads.view"], "scopes": {"rockets": "own"}},
     "scopes.rockets"),
    ({"name": "X", "permissions": ["leads.view"], "scopes": ["own"]}, "scopes"),
    ({"name": "X", "field_rules": {"deals": {"nope": "hidden"}}}, "field_rules"),
    ({"name": "X", "field_rules": {"deals": {"amount": "invisible"}}}, "field_rules"),
    ({"name": "X", "field_rules": {"deals": "hidden"}}, "field_rules.deals"),
    ({"name": "X", "field_rules": {"rockets": {"fuel": "hidden"}}}, "field_rules"),
    ({"name": "X", "parent_id": "3"}, "parent_id"),
    ({"name": "X", "parent_id": True}, "parent_id"),
    ({"name": "X", "parent_id": 999999}, "parent_id"),
    ({"name": "Viewer"}, "name"),
    ({"name": "x" * 81}, "name"),
]


def test_bad_role_input(world: SimpleNamespace, api: Any) -> None:
    """One world for the whole table: every case is refused and writes nothing."""
    owner = api("owner")
    before = policy_snapshot()
    for body, field in BAD_ROLES:
        if isinstance(body, str):
            response = owner.post("/roles", data=body, content_type="application/json")
        else:
            response = owner.post("/roles", body)
        case = f"{body!r:.80} -> {response.status_code} {response.json}"
        assert response.status_code == 400, case
        assert response.json["message"] and response.json["field"] == field, case
        assert response.json["error"] in ("bad_request", "validation_error"), case
        assert policy_snapshot() == before, case


BAD_OTHER = [
    ("patch", "/roles/{role:junior_rep}", {"name": None}, "name"),
    ("patch", "/roles/{role:junior_rep}", {"scopes": {"leads": "own"}}, "scopes"),
    ("patch", "/roles/{role:junior_rep}", {"parent_id": "{role:junior_rep}"}, "parent_id"),
    ("post", "/roles/{role:finance}/clone", {}, "name"),
    ("post", "/roles/{role:finance}/clone", {"name": "Y", "grants": []}, "grants"),
    ("post", "/members/{member:viewer}/roles", {}, "role_id"),
    ("post", "/members/{member:viewer}/roles", {"role_id": "{role:finance}",
                                                 "starts_at": "tomorrow"}, "starts_at"),
    ("post", "/members/{member:viewer}/roles", {"role_id": "{role:finance}",
                                                 "expires_at": 20300101}, "expires_at"),
    ("post", "/members/{member:viewer}/roles", {"role_id": "{role:finance}",
                                                 "starts_at": "2030-01-02T00:00:00Z",
                                                 "expires_at": "2030-01-01T00:00:00Z"},
     "expires_at"),
    ("post", "/members/{member:viewer}/roles", {"role_id": "{role:viewer}"}, "role_id"),
    ("delete", "/roles/{role:junior_rep}?move_to=abc", None, "move_to"),
    ("get", "/roles/compare?ids=1,abc", None, "ids"),
    ("get", "/roles/compare?ids={role:viewer}", None, "ids"),
    ("get", "/roles/granting?permission=rockets.launch", None, "permission"),
    ("get", "/roles/granting", None, "permission"),
]


def test_bad_input_elsewhere(world: SimpleNamespace, api: Any) -> None:
    owner = api("owner")
    ids = _ids(world)
    before = policy_snapshot()
    for method, path, body, field in BAD_OTHER:
        response = owner.call(method, _path(path, ids), _fill(body, ids))
        case = f"{method} {path} {body!r:.60} -> {response.status_code} {response.json}"
        assert response.status_code == 400, case
        assert response.json["field"] == field and response.json["message"], case
        assert policy_snapshot() == before, case


def test_oversized_body_is_refused(world: SimpleNamespace, api: Any) -> None:
    owner = api("owner")
    before = policy_snapshot()
    big = {"name": "Big", "description": "x" * (64 * 1024)}
    response = owner.post("/roles", big)
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    assert policy_snapshot() == before


# -- the browser session and CSRF ---------------------------------------------------------------


def test_session_requests_need_a_csrf_header(app: Flask, world: SimpleNamespace,
                                             login: Any, api: Any) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    browser = login(world.users["owner"], world.ws)
    assert browser.get("/api/v1/roles").status_code == 200  # reading needs no token
    before = policy_snapshot()
    refused = browser.post("/api/v1/roles", json={"name": "Via session"})
    assert refused.status_code == 400 and refused.json["error"] == "csrf_failed"
    assert policy_snapshot() == before
    page = browser.get("/settings/tokens").text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    accepted = browser.post("/api/v1/roles", json={"name": "Via session"},
                            headers={"X-CSRFToken": csrf})
    assert accepted.status_code == 201
    # A token request needs no CSRF token, even with CSRF protection on.
    assert api("owner").post("/roles", {"name": "Via token"}).status_code == 201


def test_token_prefix_fits_its_column(world: SimpleNamespace) -> None:
    """The displayed prefix of a token fits its column (PostgreSQL checks lengths)."""
    token, plaintext = tokens.create_token(rbac, world.members["viewer"], "prefix")
    db.session.commit()
    length = rbac.models.ApiToken.__table__.c.prefix.type.length
    assert plaintext.startswith(token.prefix) and len(token.prefix) <= length
