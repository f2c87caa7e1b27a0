"""Each operation an approval policy can name waits, and its approval replays it (SQLite, PostgreSQL).

The plan, the role deletion and the export are in ``test_approvals.py`` and
``test_approvals_http.py``; here: a privileged role (Admin, and a custom
role managing members), the security policy, sharing (creating, widening;
narrowing never waits), bulk deletes over N (and under N), reassigning all
of a member's records (a chosen few never waits).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, bulk, gate, roles, sharing, team
from crm_rbac_plugin.approvals import volume
from crm_rbac_plugin.errors import RuleConflict
from crm_rbac_plugin.security import editing
from crm_rbac_plugin.security.policy import policy_for
from tests.rbac_helpers import (
    access_of,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
)


def policy(w: SimpleNamespace, **ops: Any) -> None:
    approvals.save(rbac, access_of(w.members["owner"]), {"operations": ops})
    db.session.commit()


def waits(w: SimpleNamespace, key: str, change: Any) -> int:
    with pytest.raises(gate.ApprovalPending) as pending:
        change(access_of(w.members[key]))
    return pending.value.request_id


def approve(w: SimpleNamespace, rid: int, by: str = "admin") -> str:
    req = db.session.get(rbac.models.ApprovalRequest, rid)
    outcome = approvals.approve(rbac, access_of(w.members[by]), req)
    db.session.commit()
    assert outcome == "executed", req.failure
    return outcome


def role_keys(membership: Any) -> set[str]:
    db.session.refresh(membership)
    return {mr.role.key or mr.role.name for mr in membership.member_roles}


def test_privileged_roles_wait_others_do_not(world: SimpleNamespace) -> None:
    policy(world, assign_privileged_role=True)
    admin_role = db.session.scalar(sa.select(rbac.models.Role).where(
        rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == "admin"))
    managing = custom_role(world, "Team lead", [("members", "manage", "all")])
    plain = custom_role(world, "Reader", [("leads", "view", "all")])
    db.session.commit()
    target = world.members["viewer"]
    roles.assign_role(rbac, access_of(world.members["owner"]), target, plain)  # not privileged
    db.session.commit()
    for role in (admin_role, managing):
        rid = waits(world, "owner", lambda a, r=role: roles.assign_role(rbac, a, target, r))
        assert role.name not in {mr.role.name for mr in target.member_roles}
        approve(world, rid)
    assert {"admin", "Team lead", "Reader"} <= role_keys(target)


def test_a_privileged_role_for_several_members_at_once_is_refused_whole(
        world: SimpleNamespace, login: Any) -> None:
    """Each member's privileged role is a request of its own: a bulk "Add a role" of
    several members is refused before anyone is tried (it recorded the first member's
    request and dropped the rest); for one member it waits as a single change does."""
    policy(world, assign_privileged_role=True)
    admin_role = db.session.scalar(sa.select(rbac.models.Role).where(
        rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == "admin"))
    owner = login(world.users["owner"], world.ws)
    picked = [world.members[k].id for k in ("member", "member2", "viewer")]
    R = rbac.models.ApprovalRequest
    before = db.session.scalar(sa.select(sa.func.count()).select_from(R))
    refused = owner.post("/settings/members/bulk", data={
        "members": picked, "action": "add_role", "role_id": admin_role.id})
    assert refused.status_code == 409, refused.status_code
    assert "one request per member" in refused.text
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(R)) == before
    assert all("admin" not in role_keys(db.session.get(rbac.models.Membership, mid))
               for mid in picked)
    with pytest.raises(RuleConflict, match="one by one"):
        team.bulk_change(rbac, access_of(world.members["owner"]),
                         [db.session.get(rbac.models.Membership, mid) for mid in picked],
                         "add_role", admin_role)
    db.session.rollback()
    one = owner.post("/settings/members/bulk", data={
        "members": picked[:1], "action": "add_role", "role_id": admin_role.id})
    assert one.status_code == 303 and "/settings/approvals/" in one.headers["Location"]
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(R)) == before + 1


def test_security_policy_waits(world: SimpleNamespace) -> None:
    policy(world, security_policy=True)
    rid = waits(world, "owner", lambda a: editing.save(
        rbac, a, {"idle_minutes_member": 60}, ip=None, enrolled=False))
    assert policy_for(rbac, world.ws.id).idle_minutes_member == 480
    approve(world, rid)
    assert policy_for(rbac, world.ws.id).idle_minutes_member == 60


def test_sharing_waits_when_created_or_widened(world: SimpleNamespace) -> None:
    policy(world, sharing=True)
    rid = waits(world, "owner", lambda a: sharing.create_agreement(
        rbac, a, workspace="beta", permissions=["clients.view"]))
    SA = rbac.models.SharingAgreement
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SA)) == 0
    approve(world, rid)
    agreement = db.session.scalar(sa.select(SA))
    assert [p.permission for p in agreement.permissions] == ["clients.view"]
    rid = waits(world, "owner", lambda a: sharing.update_agreement(
        rbac, a, agreement, permissions=["clients.view", "leads.view"]))
    approve(world, rid)
    db.session.refresh(agreement)
    assert sorted(p.permission for p in agreement.permissions) == ["clients.view", "leads.view"]
    sharing.update_agreement(rbac, access_of(world.members["owner"]), agreement,
                             permissions=["clients.view"], notes="narrower")  # never waits
    db.session.commit()
    assert [p.permission for p in agreement.permissions] == ["clients.view"]


def test_bulk_delete_over_n_waits(world: SimpleNamespace) -> None:
    policy(world, bulk_delete=2)
    owner_ids = [world.leads[k].id for k in ("member", "member2", "manager")]
    with rbac.as_member(access_of(world.members["owner"])):
        for record in bulk.select(rbac, "leads", owner_ids[:2], "delete"):  # 2: not over N
            db.session.delete(record)
        db.session.commit()
    lead = world.leads["junior_rep"].id
    rest = [owner_ids[2], lead, world.leads["unowned"].id]
    with rbac.as_member(access_of(world.members["owner"])):
        rid = waits(world, "owner", lambda a: bulk.select(rbac, "leads", rest, "delete"))
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
            Lead.id.in_(rest))) == 3
    approve(world, rid)
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
            Lead.id.in_(rest))) == 0


def test_bulk_deletes_add_up_over_a_day(world: SimpleNamespace) -> None:
    """Deletes of 2 then 1 against a threshold of 2 make the second wait; rolled back and
    approved rows count nothing."""
    policy(world, bulk_delete=2)
    owner = access_of(world.members["owner"])
    first = [world.leads[k].id for k in ("member", "member2")]
    with rbac.as_member(owner):
        bulk.select(rbac, "leads", first, "delete")
        db.session.rollback()  # the operation failed: its rows are not counted
        assert volume.used(rbac, owner, "bulk_delete") == 0
        for record in bulk.select(rbac, "leads", first, "delete"):
            db.session.delete(record)
        db.session.commit()
        assert volume.used(rbac, owner, "bulk_delete") == 2
        rid = waits(world, "owner", lambda a: bulk.select(
            rbac, "leads", [world.leads["manager"].id], "delete"))
    approve(world, rid)
    assert volume.used(rbac, owner, "bulk_delete") == 2  # the approvers saw that one


def test_reassigning_listed_records_waits_as_all_of_them_do(world: SimpleNamespace,
                                                             app: Any) -> None:
    """Spelling out every id of a member moves what "all" moves: the policy's reassign
    applies by what is moved, so a list of more than one record waits, nothing moved,
    and the approval moves exactly those records."""
    policy(world, reassign=True)
    member, member2 = world.users["member"].id, world.users["member2"].id
    with rbac.system():
        db.session.add_all([Lead(workspace_id=world.ws.id, owner_id=member, name=f"More {n}")
                            for n in range(2)])
        db.session.commit()
        listed = list(db.session.scalars(sa.select(Lead.id).where(Lead.owner_id == member)))
    assert len(listed) == 3
    with app.test_request_context():
        rid = waits(world, "owner", lambda a: team.reassign(rbac, a, member, member2,
                                                             ["leads"], listed))
        with rbac.system():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
                Lead.owner_id == member)) == 3
        approve(world, rid)
    with rbac.system():
        assert db.session.scalars(sa.select(Lead.id).where(Lead.owner_id == member)).all() == []


def test_reassigning_all_records_waits_a_chosen_few_do_not(world: SimpleNamespace, app: Any) -> None:
    policy(world, reassign=True)
    member, member2 = world.users["member"].id, world.users["member2"].id
    few = [world.leads["member"].id]
    with app.test_request_context():
        team.reassign(rbac, access_of(world.members["owner"]), member, member2, ["leads"], few)
        db.session.commit()
        rid = waits(world, "owner", lambda a: team.reassign(rbac, a, member, member2))
        with rbac.system():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
                Lead.owner_id == member2)) == 2
        approve(world, rid)
    with rbac.system():
        owned = db.session.scalars(sa.select(Lead.id).where(Lead.owner_id == member)).all()
    assert owned == []
