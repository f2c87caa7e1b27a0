"""What reaches a member through a role obeys the rules of giving them the role.

A role's rules reach a member through an assignment, their department, and
every role inheriting from it, so editing a role, giving a role to a
department and moving a member into a department are checked as giving:

- an Admin always has full access: no deny reaches an Admin (409);
- a privileged role (Owner, Admin, or manage on members, roles or settings,
  a clone of Admin included) is given only by an Owner, through the approval
  policy's "assigning a privileged role";
- an actor holds what their visibility level leaves them: a capped Admin
  gives no role wider than that.

Each refusal goes through the HTTP routes and changes nothing.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, roles, team, tokens
from tests.rbac_helpers import (
    access_of,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.security.conftest import snapshot_database, snapshot_diff
from tests.test_api import Api
from tests.test_settings_ui import role

DENIES = [{"resource": "members", "action": a, "effect": "deny"} for a in ("view", "edit")]


@pytest.fixture
def api(app: Flask, world: SimpleNamespace) -> Any:
    """Return ``api(key)``: a client holding a fresh token of member ``key`` of ``world.ws``."""
    def make(key: str) -> Api:
        _, plaintext = tokens.create_token(rbac, world.members[key], f"test {key}")
        db.session.commit()
        return Api(app, plaintext)
    return make


def as_owner(w: SimpleNamespace) -> Any:
    return access_of(w.members["owner"])


def policy(w: SimpleNamespace, **ops: Any) -> None:
    approvals.save(rbac, as_owner(w), {"operations": ops})
    db.session.commit()


def make_admin(w: SimpleNamespace, key: str) -> Any:
    """The Owner makes ``key`` an Admin; returns the membership."""
    roles.assign_role(rbac, as_owner(w), w.members[key], role(w, "admin"))
    db.session.commit()
    return w.members[key]


def still_admin(membership: Any) -> bool:
    db.session.expire_all()
    return bool(rbac.decide(access_of(membership), "edit", "members"))


def test_a_role_edit_never_puts_a_deny_on_an_admin(world: SimpleNamespace, api: Any) -> None:
    victor = make_admin(world, "viewer")
    plain = roles.create_role(rbac, access_of(world.members["admin"]), name="Harmless",
                              grants=roles.parse_grants(rbac, ["leads.view"]))
    roles.assign_role(rbac, access_of(world.members["admin"]), victor, plain)
    child = roles.create_role(rbac, as_owner(world), name="Child", parent=plain)
    denier = custom_role(world, "Denier", [("members", "view", "all")], effect="deny")
    db.session.commit()
    clients = {key: api(key) for key in ("admin", "owner")}
    before = snapshot_database()
    for key, client in clients.items():
        r = client.patch(f"/roles/{plain.id}", {"permissions": ["leads.view", *DENIES]})
        assert r.status_code == 409, (key, r.status_code, r.text)
        assert "Admins always have full access" in r.text and "members.view" in r.text
        r = client.patch(f"/roles/{plain.id}", {"parent_id": denier.id})
        assert r.status_code == 409 and "Admins always have full access" in r.text
    assert snapshot_diff(before, snapshot_database()) == []
    # A role inheriting from the one Victor holds reaches him too.
    roles.remove_role(rbac, as_owner(world), next(
        mr for mr in victor.member_roles if mr.role_id == plain.id))
    roles.assign_role(rbac, as_owner(world), victor, child)
    db.session.commit()
    before = snapshot_database()
    r = clients["owner"].patch(f"/roles/{plain.id}", {"permissions": ["leads.view", *DENIES]})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.text
    assert snapshot_diff(before, snapshot_database()) == []
    assert still_admin(victor)
    # A deny on a role no Admin holds is still an ordinary edit.
    r = clients["owner"].patch(f"/roles/{denier.id}", {"permissions": DENIES})
    assert r.status_code == 200, r.text


def test_a_department_never_puts_a_deny_on_an_admin(world: SimpleNamespace, api: Any,
                                                    login: Any) -> None:
    support, sales = world.departments["support"], world.departments["sales"]
    victor = make_admin(world, "viewer")  # in Support
    denier = custom_role(world, "Denier", [("members", "view", "all")], effect="deny")
    db.session.commit()
    roles.give_department_role(rbac, as_owner(world), sales, denier)
    db.session.commit()
    owner_api, owner = api("owner"), login(world.users["owner"], world.ws)
    before = snapshot_database()
    r = owner_api.post(f"/departments/{support.id}/roles", {"role_id": denier.id})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.text
    r = owner.post(f"/settings/members/{victor.id}/department", data={"department_id": sales.id})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.status_code
    # Admin given straight to a member whose department denies something: refused too.
    r = owner_api.post(f"/members/{world.members['member'].id}/roles",
                          {"role_id": role(world, "admin").id})
    assert r.status_code == 409 and "Denier denies members.view" in r.text, r.text
    assert snapshot_diff(before, snapshot_database()) == []
    assert still_admin(victor) and victor.department_id == support.id


def test_making_a_held_role_privileged_needs_the_owner_and_the_approval(
        world: SimpleNamespace, api: Any) -> None:
    plain = roles.create_role(rbac, as_owner(world), name="Plain",
                              grants=roles.parse_grants(rbac, ["leads.view"]))
    roles.assign_role(rbac, as_owner(world), world.members["member2"], plain)
    db.session.commit()
    policy(world, assign_privileged_role=True)
    admin, owner = api("admin"), api("owner")
    before = snapshot_database()
    wider = {"permissions": ["leads.view", "members.view", "members.manage"]}
    r = admin.patch(f"/roles/{plain.id}", wider)
    assert r.status_code == 403 and "Only an Owner" in r.text, r.text
    r = owner.patch(f"/roles/{plain.id}", wider)
    assert r.status_code == 409 and "needs approval" in r.text, r.text
    assert snapshot_diff(before, snapshot_database()) == []
    # Without holders, the role is an ordinary edit (giving it later is gated).
    spare = roles.create_role(rbac, as_owner(world), name="Spare")
    db.session.commit()
    assert owner.patch(f"/roles/{spare.id}", wider).status_code == 200


def test_moving_into_a_department_with_a_privileged_role_needs_the_approval(
        world: SimpleNamespace, login: Any) -> None:
    support = world.departments["support"]
    privileged = roles.create_role(rbac, as_owner(world), name="DeptPriv",
                                   grants=roles.parse_grants(rbac, ["members.view", "members.manage"]))
    roles.give_department_role(rbac, as_owner(world), support, privileged)
    db.session.commit()
    policy(world, assign_privileged_role=True)
    member2 = world.members["member2"]
    before = snapshot_database()
    owner = login(world.users["owner"], world.ws)
    r = owner.post(f"/settings/members/{member2.id}/department",
                   data={"department_id": support.id})
    assert r.status_code == 409 and "needs approval" in r.text, r.status_code
    assert snapshot_diff(before, snapshot_database()) == []


def test_an_admin_never_gives_a_clone_of_admin(world: SimpleNamespace, api: Any) -> None:
    admin, owner = api("admin"), api("owner")
    r = admin.post(f"/roles/{role(world, 'admin').id}/clone", {"name": "Admin (copy)"})
    assert r.status_code == 201, r.text
    clone = r.get_json()["id"]
    target = world.members["junior_rep"].id
    before = snapshot_database()
    r = admin.post(f"/members/{target}/roles", {"role_id": clone})
    assert r.status_code == 403 and "Only an Owner can give the Admin (copy) role" in r.text
    assert snapshot_diff(before, snapshot_database()) == []
    r = owner.post(f"/members/{target}/roles", {"role_id": clone})
    assert r.status_code == 201, r.text
    # Its holder is protected as an Admin: the Admin takes it neither away nor narrows it.
    assignment = next(mr.id for mr in world.members["junior_rep"].member_roles
                      if mr.role_id == clone)
    before = snapshot_database()
    assert admin.delete(f"/members/{target}/roles/{assignment}").status_code == 403
    r = admin.patch(f"/roles/{clone}", {"permissions": ["leads.view"]})
    assert r.status_code == 403 and "Only an Owner" in r.text, r.text
    assert snapshot_diff(before, snapshot_database()) == []


def test_a_capped_admin_gives_no_more_than_their_visibility_leaves(
        world: SimpleNamespace, api: Any) -> None:
    team.set_visibility(rbac, as_owner(world), world.members["admin"], "own")
    wide = roles.create_role(rbac, as_owner(world), name="AllLeads",
                             grants=roles.parse_grants(rbac, ["leads.view", "leads.export"]))
    db.session.commit()
    admin = api("admin")
    before = snapshot_database()
    r = admin.post("/roles", {"name": "Capped", "permissions": ["leads.view", "leads.export"]})
    assert r.status_code == 403 and "leads.export [all]" in r.text, r.text
    r = admin.post(f"/members/{world.members['viewer'].id}/roles", {"role_id": wide.id})
    assert r.status_code == 403 and "grants more than you hold" in r.text, r.text
    assert snapshot_diff(before, snapshot_database()) == []
    # The members, roles and settings grants read members, not records: not capped.
    r = admin.post("/roles", {"name": "People", "permissions": ["members.view"]})
    assert r.status_code == 201, r.text
    scoped = {"name": "OwnLeads", "permissions": ["leads.view"], "scopes": {"leads": "own"}}
    assert admin.post("/roles", scoped).status_code == 201



def test_no_deny_reaches_the_holder_of_a_privileged_custom_role(
        world: SimpleNamespace, api: Any, login: Any) -> None:
    """A privileged custom role's holder is protected as an Admin, against an Owner too."""
    support, sales = world.departments["support"], world.departments["sales"]
    people = roles.create_role(rbac, as_owner(world), name="People admin",
                               grants=roles.parse_grants(rbac, ["members.view", "members.manage"]))
    heir = roles.create_role(rbac, as_owner(world), name="People heir", parent=people)
    plain = roles.create_role(rbac, as_owner(world), name="Harmless",
                              grants=roles.parse_grants(rbac, ["leads.view"]))
    victor, heidi = world.members["viewer"], world.members["finance"]  # Support; none
    for member, given in ((victor, people), (victor, plain), (heidi, heir)):
        roles.assign_role(rbac, as_owner(world), member, given)
    denier = custom_role(world, "Denier", [("members", "view", "all")], effect="deny")
    db.session.commit()
    roles.give_department_role(rbac, as_owner(world), sales, denier)
    db.session.commit()
    owner_api, admin_api = api("owner"), api("admin")
    owner = login(world.users["owner"], world.ws)
    before = snapshot_database()
    for target in (victor, heidi):  # directly, and through a role inheriting the privilege
        for client in (owner_api, admin_api):
            r = client.post(f"/members/{target.id}/roles", {"role_id": denier.id})
            assert r.status_code in (403, 409) and r.status_code != 201, r.text
        r = owner_api.post(f"/members/{target.id}/roles", {"role_id": denier.id})
        assert r.status_code == 409 and "Admins always have full access" in r.text, r.text
        assert "Denier denies members.view" in r.text
    r = owner_api.patch(f"/roles/{plain.id}", {"permissions": ["leads.view", *DENIES]})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.text
    r = owner_api.patch(f"/roles/{plain.id}", {"parent_id": denier.id})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.text
    r = owner_api.post(f"/departments/{support.id}/roles", {"role_id": denier.id})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.text
    r = owner.post(f"/settings/members/{victor.id}/department", data={"department_id": sales.id})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.status_code
    # Making a role privileged while its holder carries a deny is refused the same way.
    r = owner_api.patch(f"/roles/{denier.id}",
                        {"permissions": ["members.view", "members.manage", *DENIES[1:]]})
    assert r.status_code == 409 and "Admins always have full access" in r.text, r.text
    assert snapshot_diff(before, snapshot_database()) == []
    db.session.expire_all()
    assert rbac.decide(access_of(victor), "view", "members")
    assert rbac.decide(access_of(heidi), "view", "members")
