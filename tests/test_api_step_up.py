"""Step-up on the JSON API's role and ownership changes, and on the pages' bulk role changes.

A member who is enrolled in MFA, or whom the workspace's policy requires to
be, changes roles only from a session that passed a check within
``step_up_minutes``. A bearer token carries no session: such a member's
token is refused ``403 {"error": "mfa_step_up_required"}``. A member the
policy asks nothing of, without MFA, passes with a token. A refusal changes
nothing, and a member without the permission, or asking about another
workspace's id, gets the 403 or 404 they would get anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens, workspaces
from tests.test_mfa import VERIFY_PAGE, enrolled_directly, set_check, set_policy
from tests.test_settings_ui import role

#: A request: (method, path, JSON body) built from the world.
Call = tuple[str, str, dict[str, Any] | None]
Send = Callable[[str, str, dict[str, Any] | None], TestResponse]


def calls(world: SimpleNamespace) -> list[tuple[Call, int]]:
    """Each role or ownership route of the API with a valid request, and its success status."""
    member2 = world.members["member2"]
    viewer = role(world, "viewer").id
    assignment = next((mr for mr in member2.member_roles if mr.role_id == viewer), None)
    if assignment is None:  # a second role, so that taking it away leaves one
        assignment = workspaces.assign_role(rbac, member2, role(world, "viewer"))
        db.session.commit()
    return [
        (("post", "/roles", {"name": "Stepped"}), 201),
        (("patch", f"/roles/{role(world, 'junior_rep').id}", {"description": "checked"}), 200),
        (("put", f"/roles/{role(world, 'junior_rep').id}/condition",
          {"condition": {"weekdays": ["mon", "tue"]}}), 200),
        (("post", f"/roles/{role(world, 'finance').id}/clone", {"name": "Finance copy"}), 201),
        (("delete", f"/roles/{role(world, 'client_success').id}?move_to={viewer}", None), 204),
        (("post", f"/members/{world.members['member'].id}/roles", {"role_id": viewer}), 201),
        (("delete", f"/members/{member2.id}/roles/{assignment.id}", None), 204),
    ]


def state() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The roles (id, name, description, condition) and assignments (member, role) of every
    workspace."""
    R, MR = rbac.models.Role, rbac.models.MemberRole
    db.session.expire_all()
    roles = set(db.session.execute(sa.select(R.id, R.name, R.description,
                                             sa.cast(R.access_condition, sa.Text))).tuples())
    held = set(db.session.execute(sa.select(MR.membership_id, MR.role_id)).tuples())
    return roles, held


def by_token(app: Flask, membership: Any) -> Send:
    _, plaintext = tokens.create_token(rbac, membership, "step-up test")
    db.session.commit()
    client = app.test_client()
    return lambda method, path, body: client.open(
        f"/api/v1{path}", method=method.upper(), json=body,
        headers={"Authorization": f"Bearer {plaintext}"})


def by_session(client: FlaskClient) -> Send:
    return lambda method, path, body: client.open(f"/api/v1{path}", method=method.upper(),
                                                  json=body)


def assert_all_refused(send: Send, world: SimpleNamespace, error: str, status: int = 403) -> None:
    todo = calls(world)
    before = state()
    for (method, path, body), _ in todo:
        answer = send(method, path, body)
        assert answer.status_code == status, (path, answer.status_code, answer.text)
        assert answer.json is not None and answer.json["error"] == error, (path, answer.json)
    assert state() == before


def assert_all_pass(send: Send, world: SimpleNamespace) -> None:
    for (method, path, body), status in calls(world):
        answer = send(method, path, body)
        assert answer.status_code == status, (path, answer.status_code, answer.text)


def test_a_stale_session_is_refused_and_a_fresh_one_passes(world: SimpleNamespace,
                                                           login: Any) -> None:
    enrolled_directly(world.users["admin"])
    client = login(world.users["admin"], world.ws)
    set_check(client, world.users["admin"], minutes_ago=60)
    assert_all_refused(by_session(client), world, "mfa_step_up_required")
    answer = by_session(client)("post", "/roles", {"name": "Stepped"})
    assert "recent check" in answer.json["message"]
    set_check(client, world.users["admin"], minutes_ago=1)
    assert_all_pass(by_session(client), world)


def test_a_session_that_never_passed_a_check_is_refused(world: SimpleNamespace,
                                                        login: Any) -> None:
    """The MFA gate answers first: the session has not verified since it signed in."""
    enrolled_directly(world.users["admin"])
    assert_all_refused(by_session(login(world.users["admin"], world.ws)), world,
                       "mfa_verification_required", status=401)


def test_the_token_of_an_enrolled_member_is_refused(app: Flask, world: SimpleNamespace) -> None:
    enrolled_directly(world.users["admin"])
    assert_all_refused(by_token(app, world.members["admin"]), world, "mfa_step_up_required")
    # Reading stays open to the token: only the changes need the session's check.
    assert by_token(app, world.members["admin"])("get", "/roles", None).status_code == 200


def test_the_token_of_a_member_the_policy_requires_is_refused(app: Flask,
                                                              world: SimpleNamespace) -> None:
    """Required but not enrolled: the MFA gate or the step-up refuses, never a change."""
    set_policy(world.ws, "privileged")
    todo = calls(world)
    before = state()
    send = by_token(app, world.members["admin"])
    for (method, path, body), _ in todo:
        answer = send(method, path, body)
        assert answer.status_code in (401, 403), (path, answer.status_code)
        assert answer.json["error"] in ("mfa_required", "mfa_step_up_required")
    assert state() == before


def test_a_token_without_mfa_under_policy_nobody_passes(app: Flask,
                                                        world: SimpleNamespace) -> None:
    set_policy(world.ws, "nobody")
    assert_all_pass(by_token(app, world.members["admin"]), world)


@pytest.mark.parametrize("key", ["viewer", "dual"])
def test_a_refused_member_is_refused_before_the_step_up(app: Flask, world: SimpleNamespace,
                                                        key: str) -> None:
    """Without the permission: 403 forbidden; another workspace's ids: 404 (the Owner of
    ``ws2`` creating a role in ``ws2`` is no such probe, so it is left out)."""
    enrolled_directly(world.users[key])
    M = rbac.models.Membership
    membership = (world.members["viewer"] if key == "viewer" else db.session.scalar(
        sa.select(M).where(M.workspace_id == world.ws2.id, M.user_id == world.users["dual"].id)))
    send = by_token(app, membership)
    todo = [c for c in calls(world) if key == "viewer" or c[0][1] != "/roles"]
    before = state()
    for (method, path, body), _ in todo:
        answer = send(method, path, body)
        assert answer.status_code in (403, 404), (path, answer.status_code)
        assert answer.json["error"] in ("forbidden", "not_found"), (path, answer.json)
    assert state() == before


def test_bulk_role_changes_and_review_removals_need_a_recent_check(world: SimpleNamespace,
                                                                   login: Any) -> None:
    enrolled_directly(world.users["admin"])
    client = login(world.users["admin"], world.ws)
    set_check(client, world.users["admin"], minutes_ago=60)
    before = state()
    viewer = role(world, "viewer").id
    bulk = client.post("/settings/members/bulk", data={
        "members": [world.members["member"].id], "action": "add_role", "role": viewer})
    assert bulk.status_code == 302 and bulk.location.startswith(VERIFY_PAGE)
    assignment = workspaces.assign_role(rbac, world.members["member2"], role(world, "viewer"))
    db.session.commit()
    before = state()
    removal = client.post(f"/settings/access-review/assignments/{assignment.id}/remove")
    assert removal.status_code == 302 and removal.location.startswith(VERIFY_PAGE)
    assert state() == before
    set_check(client, world.users["admin"], minutes_ago=1)
    assert client.post(f"/settings/access-review/assignments/{assignment.id}/remove"
                       ).status_code == 302
    assert state() != before


def test_a_token_beside_a_checked_session_cookie_is_still_refused(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """A check belongs to the browser session that passed it: a token sent beside that
    session's cookie (a token and a copy of the cookie in one client) counts as a token."""
    enrolled_directly(world.users["admin"])
    client = login(world.users["admin"], world.ws)
    set_check(client, world.users["admin"], minutes_ago=1)
    _, plaintext = tokens.create_token(rbac, world.members["admin"], "beside a cookie")
    db.session.commit()
    send: Send = lambda method, path, body: client.open(  # noqa: E731
        f"/api/v1{path}", method=method.upper(), json=body,
        headers={"Authorization": f"Bearer {plaintext}"})
    assert_all_refused(send, world, "mfa_step_up_required")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/settings/account/mfa"), ("GET", "/settings/tokens"), ("POST", "/settings/tokens"),
    ("GET", "/settings/profile"), ("POST", "/settings/account/sessions/sign-out-others"),
    ("GET", "/settings/members"), ("GET", "/leads/"), ("GET", "/admin/"), ("GET", "/"),
])
def test_a_token_signs_nobody_in_outside_the_api(app: Flask, world: SimpleNamespace,
                                                method: str, path: str) -> None:
    """A leaked token must not reach the account's own pages (its MFA secret, new tokens,
    its sessions) nor the HTML app: outside the JSON API the request is anonymous."""
    _, plaintext = tokens.create_token(rbac, world.members["admin"], "outside the API")
    db.session.commit()
    T = rbac.models.ApiToken
    before = db.session.scalar(sa.select(sa.func.count()).select_from(T))
    answer = app.test_client().open(path, method=method, data={"name": "minted"},
                                    headers={"Authorization": f"Bearer {plaintext}"})
    assert answer.status_code in (302, 401, 403), (path, answer.status_code)
    if answer.status_code == 302:
        assert "/login" in answer.headers["Location"], answer.headers["Location"]
    assert "otpauth://" not in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(T)) == before
