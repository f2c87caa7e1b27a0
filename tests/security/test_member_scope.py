"""A member's rights at team or department scope reach only the members in that scope.

The built-in Manager holds ``members.edit`` at ``team`` scope and
``members.create`` at ``department`` scope (seed ``000``, ``001``). Every
operation that changes a member is read against that scope
(:func:`crm_rbac_plugin.roles.require_member_in_scope`), through the pages and
the JSON API alike: an assignment's condition, a department's roles (which
change every member of the department), department moves (never one's own),
visibility, manager links, and resending or revoking an invitation. A refusal
is a 403 naming the problem, with nothing changed. Each test runs on SQLite
and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, team, tokens
from tests.security.conftest import body_text, snapshot_database, snapshot_diff
from tests.test_api import Api


def _role(world: SimpleNamespace, key: str) -> Any:
    R = rbac.models.Role
    return db.session.scalar(sa.select(R).where(R.workspace_id == world.ws.id, R.key == key))


def _api(app: Flask, world: SimpleNamespace, key: str) -> Api:
    _, plaintext = tokens.create_token(rbac, world.members[key], f"scope {key}")
    db.session.commit()
    return Api(app, plaintext)


def _owner(world: SimpleNamespace) -> Any:
    return rbac.access_for(world.members["owner"])


def _refused(response: Any, *words: str) -> None:
    assert response.status_code == 403, (response.status_code, body_text(response)[:300])
    text = body_text(response)
    for word in words:
        assert word in text, (word, text[:300])


def test_the_manager_sets_conditions_and_department_roles_of_their_team_only(
        app: Flask, world: SimpleNamespace) -> None:
    member, junior = _role(world, "member"), _role(world, "junior_rep")
    support = world.departments["support"]
    viewer = world.members["viewer"]
    # The Owner gives the Support members a role the Manager could give, to
    # Support itself and to Viewer directly.
    given = roles.assign_role(rbac, _owner(world), viewer, member)
    roles.give_department_role(rbac, _owner(world), support, junior)
    pod = rbac.models.Department(workspace=world.ws, name="Pod")
    db.session.add(pod)
    db.session.flush()
    team.set_department(rbac, _owner(world), world.members["member"], pod)
    db.session.commit()
    ids = SimpleNamespace(assignment=given.id, support=support.id, pod=pod.id,
                          viewer=viewer.id, member=member.id, junior=junior.id)
    manager = _api(app, world, "manager")
    before = snapshot_database()

    _refused(manager.patch(f"/members/{ids.viewer}/roles/{ids.assignment}",
                           {"condition": {"weekdays": ["sun"]}}), "Viewer")
    _refused(manager.post(f"/departments/{ids.support}/roles", {"role_id": ids.member}),
             "Support", "Viewer", "Client Success")
    _refused(manager.delete(f"/departments/{ids.support}/roles/{ids.junior}"), "Support")
    client = app.test_client(user=world.users["manager"])
    _refused(client.post(f"/settings/departments/{ids.support}/roles",
                         data={"role_id": str(ids.member)}), "Viewer")
    _refused(client.post(f"/settings/departments/{ids.support}/roles/{ids.junior}/remove"),
             "Support")
    assert snapshot_diff(before, snapshot_database()) == []

    # The Manager's team is the whole of Pod: a department role there is theirs to give.
    assert manager.post(f"/departments/{ids.pod}/roles",
                        {"role_id": ids.junior}).status_code == 201
    assert manager.delete(f"/departments/{ids.pod}/roles/{ids.junior}").status_code in (200, 204)


def test_the_manager_moves_and_links_only_their_team(app: Flask, world: SimpleNamespace) -> None:
    finance, viewer = world.members["finance"], world.members["viewer"]
    team.set_visibility(rbac, _owner(world), finance, "own")
    team.assign_to_manager(rbac, _owner(world), world.members["admin"], viewer)
    db.session.commit()
    ids = SimpleNamespace(**{key: world.members[key].id for key in (
        "manager", "member", "admin", "viewer", "finance", "client_success")})
    sales, support = world.departments["sales"].id, world.departments["support"].id
    client = app.test_client(user=world.users["manager"])
    before = snapshot_database()

    _refused(client.post(f"/settings/members/{ids.viewer}/department",
                         data={"department_id": str(sales)}), "Viewer")
    _refused(client.post(f"/settings/members/{ids.manager}/department",
                         data={"department_id": str(support)}), "your own department")
    _refused(client.post(f"/settings/members/{ids.finance}/department",
                         data={"department_id": "", "visibility": ""}), "Finance")
    _refused(client.post(f"/settings/members/{ids.admin}/team",
                         data={"member_id": str(ids.client_success)}), "Admin")
    _refused(client.post(f"/settings/members/{ids.admin}/team/{ids.viewer}/remove"), "Admin")
    _refused(client.post(f"/settings/members/{ids.manager}/team",
                         data={"member_id": str(ids.viewer)}), "widen your own team")
    assert snapshot_diff(before, snapshot_database()) == []

    # Their own team member: moved, capped and linked as before.
    moved = client.post(f"/settings/members/{ids.member}/department",
                        data={"department_id": str(support), "visibility": "own"})
    assert moved.status_code == 302, body_text(moved)[:300]
    db.session.expire_all()
    member = db.session.get(rbac.models.Membership, ids.member)
    assert (member.department_id, member.visibility) == (support, "own")


def _invite(client: Any, world: SimpleNamespace, email: str, dept: str) -> int:
    answer = client.post("/settings/members/invite", data={
        "email": email, "roles": [str(_role(world, "junior_rep").id)],
        "department_id": str(world.departments[dept].id)})
    assert answer.status_code == 302, body_text(answer)[:300]
    Invitation = rbac.models.Invitation
    return int(db.session.scalar(sa.select(Invitation.id).where(Invitation.email == email)))


def test_the_manager_resends_and_revokes_invitations_into_their_department_only(
        app: Flask, world: SimpleNamespace) -> None:
    owner = app.test_client(user=world.users["owner"])
    manager = app.test_client(user=world.users["manager"])
    elsewhere = _invite(owner, world, "support.hire@example.test", "support")
    own = _invite(manager, world, "sales.hire@example.test", "sales")
    before = snapshot_database()

    _refused(manager.post(f"/settings/invitations/{elsewhere}/resend"), "your own department")
    _refused(manager.post(f"/settings/invitations/{elsewhere}/revoke"), "your own department")
    assert snapshot_diff(before, snapshot_database()) == []

    assert manager.post(f"/settings/invitations/{own}/resend").status_code == 302
    assert manager.post(f"/settings/invitations/{own}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(rbac.models.Invitation, own).revoked_at is not None
    assert db.session.get(rbac.models.Invitation, elsewhere).revoked_at is None


def _owner_invites(owner: Any, world: SimpleNamespace, email: str, role: str) -> int:
    answer = owner.post("/settings/members/invite", data={
        "email": email, "roles": [str(_role(world, role).id)],
        "department_id": str(world.departments["sales"].id)})
    assert answer.status_code == 302, body_text(answer)[:300]
    Invitation = rbac.models.Invitation
    return int(db.session.scalar(sa.select(Invitation.id).where(Invitation.email == email)))


def test_the_manager_handles_no_invitation_to_a_role_they_could_not_give(
        app: Flask, world: SimpleNamespace) -> None:
    """An Owner's invitation into the Manager's own department, to Admin (Owner-only)
    or to Finance (wider than the Manager): no new link, no revocation, nothing changed."""
    owner = app.test_client(user=world.users["owner"])
    manager = app.test_client(user=world.users["manager"])
    admin_id = _owner_invites(owner, world, "new.admin@example.test", "admin")
    finance_id = _owner_invites(owner, world, "new.finance@example.test", "finance")
    with rbac.system():
        for inv_id in (admin_id, finance_id):  # an expired link is not revived either
            db.session.get(rbac.models.Invitation, inv_id).expires_at = (
                db.session.get(rbac.models.Invitation, inv_id).created_at)
        db.session.commit()
    before = snapshot_database()
    for verb in ("resend", "revoke"):
        _refused(manager.post(f"/settings/invitations/{admin_id}/{verb}"),
                 "Only an Owner", "Admin")
        _refused(manager.post(f"/settings/invitations/{finance_id}/{verb}"), "Finance")
    assert snapshot_diff(before, snapshot_database()) == []
    assert owner.post(f"/settings/invitations/{admin_id}/resend").status_code == 302
    assert owner.post(f"/settings/invitations/{finance_id}/revoke").status_code == 302
