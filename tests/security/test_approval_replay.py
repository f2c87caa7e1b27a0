"""An approved request executes what was approved, and only what its current approvers approved.

* **Only the approved operation passes the gate** during its replay. The
  other gates it reaches are asked again: deleting a role moves its holders
  to another role, and when that role became privileged after the request,
  giving it needs its own approval: the replay fails naming that operation,
  and nothing changes.
* **Only votes of members who may still decide count**: with two approvals
  required, a vote from a member who has since lost the approver permission
  does not make the quorum.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, workspaces
from tests.rbac_helpers import (
    access_of,
    ask_for_approval,
    fast_passwords,  # noqa: F401  (autouse fixture)
)


def set_policy(w: SimpleNamespace, **changes: Any) -> None:
    approvals.save(rbac, access_of(w.members["owner"]), changes)
    db.session.commit()


def role_names(membership_id: int) -> set[str]:
    db.session.expire_all()
    membership = db.session.get(rbac.models.Membership, membership_id)
    return {mr.role.name for mr in membership.member_roles}


def test_a_role_deletion_cannot_move_holders_to_a_role_made_privileged_since(
        world: SimpleNamespace, login: Any) -> None:
    set_policy(world, operations={"assign_privileged_role": True, "delete_role": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    x = owner.post("/api/v1/roles", json={"name": "Temp X", "permissions": ["leads.view"]})
    y = owner.post("/api/v1/roles", json={"name": "Helpers Y", "permissions": ["leads.view"]})
    assert x.status_code == y.status_code == 201, (x.text, y.text)
    x_id, y_id = x.get_json()["id"], y.get_json()["id"]
    holders = [world.members[k].id for k in ("junior_rep", "client_success")]
    for mid in holders:
        given = owner.post(f"/api/v1/members/{mid}/roles", json={"role_id": x_id})
        assert given.status_code == 201, given.text
    asked = owner.delete(f"/api/v1/roles/{x_id}?move_to={y_id}")
    assert asked.status_code == 202, asked.text
    rid = asked.get_json()["request_id"]
    widened = owner.patch(f"/api/v1/roles/{y_id}", json={
        "permissions": ["leads.view", "members.manage", "roles.manage"]})
    assert widened.status_code == 200, widened.text
    direct = owner.post(f"/api/v1/members/{world.members['viewer'].id}/roles",
                        json={"role_id": y_id})
    assert direct.status_code == 202  # giving Helpers Y now waits for approval

    decided = admin.post(f"/api/v1/approvals/{rid}/approve", json={"reason": "fine"})
    assert decided.status_code == 200, decided.text
    body = decided.get_json()
    assert body["status"] == "failed"
    assert "assign_privileged_role" in body["failure"] and "own approval" in body["failure"]
    db.session.expire_all()
    req = db.session.get(rbac.models.ApprovalRequest, rid)
    assert req.status == "failed" and "Assigning a privileged role" in req.failure
    assert db.session.get(rbac.models.Role, x_id) is not None
    for mid in holders:
        names = role_names(mid)
        assert "Temp X" in names and "Helpers Y" not in names


def test_the_approved_operation_itself_still_runs(world: SimpleNamespace, login: Any) -> None:
    set_policy(world, operations={"assign_privileged_role": True, "delete_role": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    y = owner.post("/api/v1/roles", json={"name": "Helpers Y", "permissions": [
        "leads.view", "members.manage", "roles.manage"]}).get_json()
    asked = owner.post(f"/api/v1/members/{world.members['viewer'].id}/roles",
                       json={"role_id": y["id"]})
    assert asked.status_code == 202, asked.text
    decided = admin.post(f"/api/v1/approvals/{asked.get_json()['request_id']}/approve",
                         json={})
    assert decided.get_json()["status"] == "executed", decided.text
    assert "Helpers Y" in role_names(world.members["viewer"].id)


def test_a_vote_of_a_former_approver_does_not_make_the_quorum(world: SimpleNamespace,
                                                              login: Any) -> None:
    set_policy(world, operations={"export": 1}, approvals_required=2)
    manager, owner, admin = (login(world.users[k], world.ws) for k in ("manager", "owner", "admin"))
    asked = ask_for_approval(manager, "/leads/export.csv", "q4")
    assert asked.status_code == 303
    rid = int(asked.headers["Location"].rsplit("/", 1)[1])
    first = admin.post(f"/api/v1/approvals/{rid}/approve", json={})
    assert first.get_json()["outcome"] == "approved", first.text
    admin_id = world.members["admin"].id
    member_role = workspaces.role_by_key(rbac, world.ws, "member")
    assert owner.post(f"/api/v1/members/{admin_id}/roles",
                      json={"role_id": member_role.id}).status_code == 201
    held = owner.get(f"/api/v1/members/{admin_id}/roles").get_json()["roles"]
    admin_mr = next(r["id"] for r in held if r["role"] == "Admin")
    assert owner.delete(f"/api/v1/members/{admin_id}/roles/{admin_mr}").status_code == 204
    assert admin.get(f"/api/v1/approvals/{rid}").status_code == 404  # no longer an approver

    second = owner.post(f"/api/v1/approvals/{rid}/approve", json={})
    assert second.status_code == 200 and second.get_json()["outcome"] == "approved", second.text
    db.session.expire_all()
    req = db.session.get(rbac.models.ApprovalRequest, rid)
    assert req.status == "pending" and req.download_hash is None and len(req.decisions) == 2

    workspaces.assign_role(rbac, world.members["finance"],
                           workspaces.role_by_key(rbac, world.ws, "admin"))
    db.session.commit()
    finance = login(world.users["finance"], world.ws)
    third = finance.post(f"/api/v1/approvals/{rid}/approve", json={})
    assert third.get_json()["outcome"] == "executed", third.text
