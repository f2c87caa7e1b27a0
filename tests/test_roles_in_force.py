"""Only role assignments in force now count for "every member keeps a role" and
"a workspace keeps an Owner".

An expired assignment, or one that starts later, gives no access (the loader
applies the same window), so a change that would leave a member only such
assignments is refused with 409 and the rule's wording, and changes nothing:
through the member page, the role deletion page and the JSON API.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, tokens
from crm_rbac_plugin.errors import PermissionDenied, RuleConflict, ValidationError
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_api import Api
from tests.test_settings_ui import errors_in, policy_snapshot, role

RULE = "every member keeps at least one role in force now"


def window(kind: str) -> dict[str, dt.datetime]:
    """An assignment window that is not in force now: ``expired`` or ``future``."""
    now = utcnow()
    if kind == "expired":
        return {"starts_at": now - dt.timedelta(days=30), "expires_at": now - dt.timedelta(days=1)}
    return {"starts_at": now + dt.timedelta(days=1)}


def give(membership: Any, role_obj: Any, **when: dt.datetime) -> Any:
    mr = rbac.models.MemberRole(membership=membership, role=role_obj, **when)
    db.session.add(mr)
    db.session.commit()
    return mr


def api_client(app: Flask, world: SimpleNamespace) -> Api:
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "in force")
    db.session.commit()
    return Api(app, plaintext)


@pytest.mark.parametrize("kind", ["expired", "future"])
def test_removing_the_last_role_in_force_is_refused(app: Flask, world: SimpleNamespace,
                                                    login: Any, kind: str) -> None:
    member2 = world.members["member2"]
    give(member2, role(world, "viewer"), **window(kind))
    current = next(mr for mr in member2.member_roles if mr.role.key == "member")
    api = api_client(app, world)
    before = policy_snapshot()

    page = login(world.users["owner"], world.ws).post(
        f"/settings/members/{member2.id}/roles/{current.id}/remove")
    assert page.status_code == 409 and RULE in errors_in(page)
    assert policy_snapshot() == before

    response = api.delete(f"/members/{member2.id}/roles/{current.id}")
    assert response.status_code == 409, response.json
    assert response.json["field"] == "role_id" and RULE in response.json["message"]
    assert "not started yet" in response.json["message"]  # the refusal says what counts
    assert policy_snapshot() == before

    with pytest.raises(RuleConflict, match=RULE):
        roles.remove_role(rbac, rbac.access_for(world.members["owner"]), current)
    db.session.rollback()
    assert policy_snapshot() == before


def test_an_assignment_not_in_force_may_go_while_one_in_force_stays(
        app: Flask, world: SimpleNamespace) -> None:
    member2 = world.members["member2"]
    old = give(member2, role(world, "viewer"), **window("expired"))
    response = api_client(app, world).delete(f"/members/{member2.id}/roles/{old.id}")
    assert response.status_code == 204, response.json
    db.session.expire_all()
    assert [mr.role.key for mr in member2.member_roles] == ["member"]


@pytest.mark.parametrize("kind", ["expired", "future"])
def test_a_role_held_out_of_force_can_be_given_from_now(world: SimpleNamespace,
                                                        kind: str) -> None:
    member2 = world.members["member2"]
    give(member2, role(world, "viewer"), **window(kind))
    roles.assign_role(rbac, rbac.access_for(world.members["owner"]), member2,
                      role(world, "viewer"))
    db.session.commit()
    assert "Viewer" in {mr.role.name for mr in roles.assignments_in_force(member2)}
    with pytest.raises(ValidationError, match="already holds Viewer"):
        roles.assign_role(rbac, rbac.access_for(world.members["owner"]), member2,
                          role(world, "viewer"))
    db.session.rollback()


@pytest.mark.parametrize("kind", ["expired", "future"])
def test_deleting_a_role_held_alone_in_force_is_refused(app: Flask, world: SimpleNamespace,
                                                        login: Any, kind: str) -> None:
    junior = role(world, "junior_rep")
    give(world.members["junior_rep"], role(world, "viewer"), **window(kind))
    api = api_client(app, world)
    before = policy_snapshot()

    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{junior.id}/delete"
    assert "only this role in force" in client.get(url).text
    page = client.post(url, data={"move_to": ""})
    assert page.status_code == 409 and RULE in errors_in(page)
    assert policy_snapshot() == before

    response = api.delete(f"/roles/{junior.id}")
    assert response.status_code == 409 and response.json["field"] == "move_to"
    assert RULE in response.json["message"] and "hold only this role" in response.json["message"]
    assert policy_snapshot() == before

    # Moving the members to another role is the way out.
    assert api.delete(f"/roles/{junior.id}?move_to={role(world, 'member').id}"
                      ).status_code == 204
    db.session.expire_all()
    assert "Member" in {mr.role.name
                        for mr in roles.assignments_in_force(world.members["junior_rep"])}


def test_an_expired_owner_assignment_does_not_count_as_an_owner(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = world.members["owner"]
    roles.assign_role(rbac, rbac.access_for(owner), owner, role(world, "admin"))
    db.session.commit()
    # The only other Owner assignment ended yesterday.
    give(world.members["admin"], role(world, "owner"), **window("expired"))
    assert roles.active_owner_count(rbac, world.ws.id) == 1
    owner_mr = next(mr for mr in owner.member_roles if mr.role.is_owner)
    api = api_client(app, world)
    before = policy_snapshot()

    response = api.delete(f"/members/{owner.id}/roles/{owner_mr.id}")
    assert response.status_code == 403 and "at least one active Owner" in response.json["message"]
    assert policy_snapshot() == before
    page = login(world.users["owner"], world.ws).post(
        f"/settings/members/{owner.id}/roles/{owner_mr.id}/remove")
    assert page.status_code == 403 and "at least one active Owner" in errors_in(page)
    assert policy_snapshot() == before
    with pytest.raises(PermissionDenied, match="at least one active Owner"):
        roles.remove_role(rbac, rbac.access_for(owner), owner_mr)
    db.session.rollback()
    assert policy_snapshot() == before
