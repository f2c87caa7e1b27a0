"""What an approver saw stays what was approved.

* Changing when a privileged role applies (an assignment's condition, or a held
  role's own condition) widens what was given: where giving the role needs
  approval, so does changing its condition.
* An approved export's file is the requester's only while they may still
  export: a role taken away after the approval stops the download, as it stops
  the export page.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, roles
from tests.rbac_helpers import access_of, approved_leads_export, custom_role


def _role(w: SimpleNamespace, key: str) -> Any:
    R = rbac.models.Role
    return db.session.scalar(sa.select(R).where(R.workspace_id == w.ws.id, R.key == key))


def _require_privileged_approval(w: SimpleNamespace) -> None:
    approvals.save(rbac, access_of(w.members["owner"]),
                   {"operations": {"assign_privileged_role": True}})
    db.session.commit()


def test_an_approved_assignments_condition_cannot_be_loosened_alone(
        world: SimpleNamespace, login: Any) -> None:
    _require_privileged_approval(world)
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    role, target = _role(world, "admin"), world.members["viewer"]
    asked = owner.post(f"/api/v1/members/{target.id}/roles",
                       json={"role_id": role.id, "condition": {"networks": ["10.1.2.0/24"]},
                             "reason": "office only"})
    assert asked.status_code == 202, asked.text
    approved = admin.post(f"/api/v1/approvals/{asked.get_json()['request_id']}/approve",
                          json={})
    assert approved.get_json()["status"] == "executed", approved.text
    MR = rbac.models.MemberRole
    held = db.session.scalar(sa.select(MR).where(MR.membership_id == target.id,
                                                 MR.role_id == role.id))
    for condition in (None, {"networks": ["0.0.0.0/0"]}):
        r = owner.patch(f"/api/v1/members/{target.id}/roles/{held.id}",
                        json={"condition": condition})
        assert r.status_code == 409, r.text
        assert r.get_json()["field"] == "condition"
    db.session.expire_all()
    assert db.session.get(MR, held.id).access_condition == {"networks": ["10.1.2.0/24"]}


def test_a_held_privileged_roles_condition_needs_approval(world: SimpleNamespace,
                                                          login: Any) -> None:
    M = rbac.models
    with rbac.system():
        role = custom_role(world, "Office hours lead", [("members", "manage", "all")])
        role.access_condition = {"start": "09:00", "end": "10:00"}
        db.session.add(M.MemberRole(membership_id=world.members["viewer"].id, role=role))
        db.session.commit()
    owner = login(world.users["owner"], world.ws)
    url = f"/api/v1/roles/{role.id}/condition"
    # Without an approval policy the Owner changes it at once.
    assert owner.put(url, json={"condition": {"start": "09:00", "end": "11:00"}}).status_code == 200
    _require_privileged_approval(world)
    r = owner.put(url, json={"condition": None})
    assert r.status_code == 409, r.text
    assert r.get_json()["field"] == "condition"
    db.session.expire_all()
    assert db.session.get(M.Role, role.id).access_condition == {"start": "09:00", "end": "11:00"}


def test_an_approved_export_is_not_downloaded_after_the_right_is_gone(
        world: SimpleNamespace, login: Any) -> None:
    manager, req = approved_leads_export(world, login)
    owner = access_of(world.members["owner"])
    target = db.session.get(rbac.models.Membership, world.members["manager"].id)
    roles.assign_role(rbac, owner, target, _role(world, "viewer"))
    db.session.flush()
    for held in list(target.member_roles):
        if held.role.key == "manager":
            roles.remove_role(rbac, owner, held)
    db.session.commit()
    assert manager.post(f"/settings/approvals/{req.id}/download").status_code == 404
    db.session.expire_all()
    assert db.session.get(type(req), req.id).download_used_at is None
