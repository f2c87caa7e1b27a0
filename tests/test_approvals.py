"""Approval workflows through the services: the gate, deciding, executing once, nothing on refusal.

Every test runs on SQLite and PostgreSQL (the ``app`` fixture). The pages,
the API and the CLI are in ``test_approvals_http.py``; two approvers at once
on PostgreSQL in ``test_approvals_race.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, gate, roles, signals
from crm_rbac_plugin.approvals import requests as approval_requests
from crm_rbac_plugin.errors import PermissionDenied, RuleConflict, ValidationError
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.roles.grants import GrantSpec
from tests.rbac_helpers import (
    access_of,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
)


@pytest.fixture
def sent(app: Any) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The approval signals sent during the test, as (name, arguments)."""
    out: list[tuple[str, dict[str, Any]]] = []

    def requested(sender: Any, **kw: Any) -> None:
        out.append(("requested", kw))

    def decided(sender: Any, **kw: Any) -> None:
        out.append((kw["outcome"], kw))

    signals.approval_requested.connect(requested, app)
    signals.approval_decided.connect(decided, app)
    yield out
    signals.approval_requested.disconnect(requested, app)
    signals.approval_decided.disconnect(decided, app)


def policy(w: SimpleNamespace, **changes: Any) -> None:
    """Save the approval policy as the Owner (no approval for that while it is not named)."""
    approvals.save(rbac, access_of(w.members["owner"]), changes)
    db.session.commit()


def ask(w: SimpleNamespace, key: str, change: Any, reason: str = "") -> Any:
    """Run ``change(access)`` as member ``key``; return the request it leaves pending."""
    with pytest.raises(gate.ApprovalPending) as pending, gate.with_reason(reason):
        change(access_of(w.members[key]))
    db.session.expire_all()
    return db.session.get(rbac.models.ApprovalRequest, pending.value.request_id)


def change_plan(w: SimpleNamespace, plan: str = "pro") -> Any:
    return lambda access: roles.set_plan(rbac, access, w.ws, plan)


def events(prefix: str) -> list[Any]:
    A = rbac.models.AuditEvent
    return list(db.session.scalars(sa.select(A).where(A.action.startswith(prefix)).order_by(A.id)))


def test_no_policy_changes_nothing(world: SimpleNamespace) -> None:
    """A workspace without a policy needs no approval: the operation runs at once."""
    roles.set_plan(rbac, access_of(world.members["owner"]), world.ws, "pro")
    db.session.commit()
    assert world.ws.plan == "pro"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        rbac.models.ApprovalRequest)) == 0


def test_request_then_approval_executes_once(world: SimpleNamespace, sent: list[Any]) -> None:
    policy(world, operations={"plan": True})
    req = ask(world, "owner", change_plan(world), reason="cheaper")
    assert (req.status, req.reason, req.operation) == ("pending", "cheaper", "plan")
    db.session.refresh(world.ws)
    assert world.ws.plan == "enterprise"  # nothing changed yet
    assert sent[0][0] == "requested"
    assert sent[0][1]["recipients"] == [world.members["admin"].id]  # the Owner asked
    assert sent[0][1]["link"] == f"/settings/approvals/{req.id}"

    outcome = approvals.approve(rbac, access_of(world.members["admin"]), req, "fine")
    db.session.commit()
    assert outcome == "executed"
    db.session.refresh(world.ws)
    assert world.ws.plan == "pro"
    assert req.status == "executed"
    executed = [kw for name, kw in sent if name == "executed"]
    assert len(executed) == 1
    assert set(executed[0]["recipients"]) == {world.members["owner"].id, world.members["admin"].id}
    assert [e.action for e in events("approval.")] == ["approval.requested", "approval.executed"]
    assert events("approval.executed")[0].actor_membership_id == world.members["admin"].id
    assert events("approval.executed")[0].detail["reason"] == "fine"
    assert [e.actor_membership_id for e in events("plan.changed")] == [world.members["owner"].id]
    with pytest.raises(RuleConflict):  # already decided
        approvals.approve(rbac, access_of(world.members["admin"]), req)


def test_self_approval_and_no_permission_are_refused(world: SimpleNamespace) -> None:
    policy(world, operations={"plan": True})
    req = ask(world, "owner", change_plan(world))
    with pytest.raises(PermissionDenied, match="your own request"):
        approvals.approve(rbac, access_of(world.members["owner"]), req)
    db.session.rollback()
    for key in ("viewer", "manager", "member"):
        with pytest.raises(PermissionDenied, match="approvals.decide"):
            approvals.approve(rbac, access_of(world.members[key]), req)
        db.session.rollback()
        with pytest.raises(PermissionDenied):
            approvals.reject(rbac, access_of(world.members[key]), req)
        db.session.rollback()
    db.session.refresh(req)
    assert req.status == "pending" and req.decisions == []


def test_two_approvals_from_two_people(world: SimpleNamespace) -> None:
    policy(world, operations={"plan": True}, approvals_required=2)
    second = world.members["manager"]
    roles.assign_role(rbac, access_of(world.members["owner"]), second,
                      rbac.db.session.scalar(sa.select(rbac.models.Role).where(
                          rbac.models.Role.workspace_id == world.ws.id,
                          rbac.models.Role.key == "admin")))
    db.session.commit()
    req = ask(world, "owner", change_plan(world))
    assert approvals.approve(rbac, access_of(world.members["admin"]), req) == "approved"
    db.session.commit()
    with pytest.raises(RuleConflict, match="already approved"):
        approvals.approve(rbac, access_of(world.members["admin"]), req)
    db.session.rollback()
    db.session.refresh(world.ws)
    assert world.ws.plan == "enterprise"
    assert approvals.approve(rbac, access_of(second), req) == "executed"
    db.session.commit()
    db.session.refresh(world.ws)
    assert world.ws.plan == "pro"


def test_reject_cancel_and_expiry_change_nothing(world: SimpleNamespace, sent: list[Any]) -> None:
    policy(world, operations={"plan": True})
    owner, admin = access_of(world.members["owner"]), access_of(world.members["admin"])
    rejected = ask(world, "owner", change_plan(world))
    approvals.reject(rbac, admin, rejected, "not now")
    db.session.commit()
    cancelled = ask(world, "owner", change_plan(world))
    with pytest.raises(PermissionDenied):
        approvals.cancel(rbac, admin, cancelled)
    db.session.rollback()
    approvals.cancel(rbac, owner, cancelled)
    db.session.commit()
    old = ask(world, "owner", change_plan(world))
    old.expires_at = utcnow() - dt.timedelta(minutes=1)
    db.session.commit()
    with pytest.raises(RuleConflict, match="expired"):
        approvals.approve(rbac, admin, old)
    db.session.rollback()
    assert approvals.expire_due(rbac, world.ws.id) == 1
    db.session.commit()
    db.session.refresh(world.ws)
    assert world.ws.plan == "enterprise"
    assert [r.status for r in (rejected, cancelled, old)] == ["rejected", "cancelled", "expired"]
    for req in (rejected, cancelled, old):
        with pytest.raises(RuleConflict):
            approvals.approve(rbac, admin, req)
        db.session.rollback()
    assert [n for n, _ in sent if n != "requested"] == ["rejected", "cancelled", "expired"]
    assert events("approval.rejected")[0].detail["reason"] == "not now"


def test_requester_who_lost_rights_fails_with_reason(world: SimpleNamespace) -> None:
    """The replay runs under the requester's rights at approval: gone rights, a stored failure."""
    policy(world, operations={"delete_role": True})
    custom = roles.create_role(rbac, access_of(world.members["owner"]), name="Temp")
    db.session.commit()
    req = ask(world, "admin", lambda a: roles.delete_role(rbac, a, custom))
    admin_role = next(mr for mr in world.members["admin"].member_roles)
    with rbac.system():
        viewer = db.session.scalar(sa.select(rbac.models.Role).where(
            rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == "viewer"))
        roles.assign_role(rbac, access_of(world.members["owner"]), world.members["admin"], viewer)
        roles.remove_role(rbac, access_of(world.members["owner"]), admin_role)
    db.session.commit()
    assert approvals.approve(rbac, access_of(world.members["owner"]), req) == "failed"
    db.session.commit()
    db.session.refresh(req)
    assert req.status == "failed" and "roles" in req.failure
    assert db.session.get(rbac.models.Role, custom.id) is not None


@pytest.mark.parametrize("changes, field", [
    ({"operations": {"export": -1}}, "operations.export"),
    ({"operations": {"export": 10**9}}, "operations.export"),
    ({"operations": {"export": "many"}}, "operations.export"),
    ({"operations": {"plan": 5}}, "operations.plan"),
    ({"operations": {"nonsense": True}}, "operations.nonsense"),
    ({"operations": []}, "operations"),
    ({"approvals_required": 3}, "approvals_required"),
    ({"expiry_hours": 0}, "expiry_hours"),
    ({"expiry_hours": 10_000}, "expiry_hours"),
    ({"approver_permission": "nope.nothing"}, "approver_permission"),
    ({"colour": "red"}, "colour"),
])
def test_policy_out_of_range_names_the_field(world: SimpleNamespace, changes: dict[str, Any],
                                             field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        approvals.save(rbac, access_of(world.members["owner"]), changes)
    assert refused.value.field == field
    db.session.rollback()
    assert approvals.settings_for(rbac, world.ws.id).operations == {}


def test_only_owners_edit_the_policy_and_its_change_waits(world: SimpleNamespace) -> None:
    with pytest.raises(PermissionDenied):
        approvals.save(rbac, access_of(world.members["admin"]), {"operations": {"plan": True}})
    db.session.rollback()
    policy(world, operations={"approval_policy": True, "plan": True})
    req = ask(world, "owner", lambda a: approvals.save(rbac, a, {"operations": {}}))
    assert approvals.settings_for(rbac, world.ws.id).threshold("plan") == 0
    approvals.approve(rbac, access_of(world.members["admin"]), req)
    db.session.commit()
    assert approvals.settings_for(rbac, world.ws.id).operations == {}


def test_an_invitation_as_admin_is_refused_not_half_recorded(world: SimpleNamespace,
                                                             app: Any) -> None:
    """A role given inside an invitation cannot be replayed alone: a 409 names the field."""
    from crm_rbac_plugin import team
    policy(world, operations={"assign_privileged_role": True})
    admin_role = db.session.scalar(sa.select(rbac.models.Role).where(
        rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == "admin"))
    with app.test_request_context(), pytest.raises(RuleConflict) as refused:
        team.invite(rbac, access_of(world.members["owner"]), "new-admin@example.test",
                    [admin_role], send=False)
    assert refused.value.field == "roles"
    db.session.rollback()
    req = ask(world, "owner", lambda a: roles.assign_role(rbac, a, world.members["viewer"],
                                                          admin_role), reason="cover")
    assert req.payload["membership_id"] == world.members["viewer"].id
    approvals.approve(rbac, access_of(world.members["admin"]), req)
    db.session.commit()
    db.session.refresh(world.members["viewer"])
    assert "admin" in {mr.role.key for mr in world.members["viewer"].member_roles}


def test_only_an_owner_gives_or_widens_the_approver_permission(world: SimpleNamespace) -> None:
    """The second pair of eyes is not chosen by the requester: a role that lets its holders
    decide approvals (``approvals.decide`` or the policy's approver permission) is
    privileged, so an Admin neither gives it nor widens a held role to it."""
    admin, owner = access_of(world.members["admin"]), access_of(world.members["owner"])
    approver = custom_role(world, "Approver", [("approvals", "view", "all"),
                                               ("approvals", "decide", "all")])
    db.session.commit()
    assert roles.is_privileged(approver)
    with pytest.raises(PermissionDenied, match="Only an Owner"):
        roles.assign_role(rbac, admin, world.members["member"], approver)
    db.session.rollback()
    assert approvals.may_decide(rbac, rbac.access_for(world.members["member"]),
                                "approvals.decide") is False
    # A held role widened to decide approvals is refused to the Admin too.
    tasks = custom_role(world, "Tasks", [("tasks", "view", "own")])
    roles.assign_role(rbac, admin, world.members["member"], tasks)
    db.session.commit()
    with pytest.raises(PermissionDenied, match="Only an Owner"):
        roles.update_role(rbac, admin, tasks, grants=[GrantSpec("tasks", "view", "own"),
                                                      GrantSpec("approvals", "decide", "all")])
    db.session.rollback()
    # The policy's own approver permission counts the same way.
    policy(world, approver_permission="tasks.bulk")
    exporter = custom_role(world, "Task bulk", [("tasks", "bulk", "all")])
    db.session.commit()
    assert roles.is_privileged(exporter)
    with pytest.raises(PermissionDenied, match="Only an Owner"):
        roles.assign_role(rbac, admin, world.members["member"], exporter)
    db.session.rollback()
    roles.assign_role(rbac, owner, world.members["member"], approver)
    db.session.commit()


def test_the_same_request_filed_again_is_the_pending_one(world: SimpleNamespace,
                                                         sent: list[Any]) -> None:
    """One member filing an identical request gets the pending one back: one row, one
    notification, its first reason kept."""
    policy(world, operations={"plan": True})
    first = ask(world, "owner", change_plan(world), reason="cheaper")
    again = ask(world, "owner", change_plan(world), reason="really")
    assert again.id == first.id and again.reason == "cheaper"
    other = ask(world, "owner", change_plan(world, "free"))
    assert other.id != first.id  # another change is another request
    R = rbac.models.ApprovalRequest
    assert db.session.scalar(sa.select(sa.func.count()).select_from(R)) == 2
    assert [name for name, _ in sent] == ["requested", "requested"]


def test_no_number_of_newer_requests_hides_a_pending_one(world: SimpleNamespace) -> None:
    """A pending request stays in its approvers' queue and its requester's list, however
    many requests are filed after it."""
    policy(world, operations={"plan": True})
    buried = ask(world, "owner", change_plan(world))
    now, R = utcnow(), rbac.models.ApprovalRequest
    manager = world.members["manager"]
    db.session.add_all([R(workspace_id=world.ws.id, requester_id=manager.id, operation="export",
                          payload={"n": n}, summary=f"Export {n}", reason="",
                          status="pending" if n % 2 else "rejected", approvals_required=1,
                          approver_permission="approvals.decide", created_at=now,
                          expires_at=now + dt.timedelta(hours=1)) for n in range(1100)])
    db.session.commit()
    admin = approval_requests.listing(rbac, access_of(world.members["admin"]))
    assert buried.id in [r.id for r in admin["to_decide"]]
    assert len(admin["to_decide"]) == 551
    assert buried.id in [r.id for r in approval_requests.listing(
        rbac, access_of(world.members["owner"]))["mine"]]


def test_a_privileged_role_changed_while_its_request_waits_is_stale(
        world: SimpleNamespace) -> None:
    """The approvers approve the role as it stood when asked: widened (or given other
    field rules) meanwhile, the approval fails as stale and gives nothing; unchanged,
    it gives the role."""
    policy(world, operations={"assign_privileged_role": True})
    owner = access_of(world.members["owner"])
    ops = custom_role(world, "Ops2", [("members", "view", "all"), ("members", "manage", "all")])
    db.session.commit()
    member = world.members["member"]
    req = ask(world, "owner", lambda a: roles.assign_role(rbac, a, member, ops))
    roles.update_role(rbac, owner, ops, grants=[
        GrantSpec("members", "view", "all"), GrantSpec("members", "manage", "all"),
        GrantSpec("settings", "manage", "all")])
    db.session.commit()
    assert approvals.approve(rbac, access_of(world.members["admin"]), req) == "failed"
    db.session.commit()
    assert approvals.is_stale(req.failure) and "Ops2" in req.failure
    assert "Ops2" not in {mr.role.name for mr in member.member_roles}
    again = ask(world, "owner", lambda a: roles.assign_role(rbac, a, member, ops))
    assert approvals.approve(rbac, access_of(world.members["admin"]), again) == "executed"
    db.session.commit()
    db.session.refresh(member)
    assert "Ops2" in {mr.role.name for mr in member.member_roles}


def test_each_vote_is_judged_from_its_own_address(world: SimpleNamespace, app: Any) -> None:
    """An approver whose Admin role holds only on the office network votes from there; a
    second approver's vote from elsewhere completes the request, whichever comes last."""
    policy(world, operations={"plan": True}, approvals_required=2)
    owner = access_of(world.members["owner"])
    admin_role = db.session.scalar(sa.select(rbac.models.Role).where(
        rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == "admin"))
    roles.assign_role(rbac, owner, world.members["manager"], admin_role)
    admin = world.members["admin"]
    roles.set_assignment_condition(rbac, owner, admin.member_roles[0],
                                   {"networks": ["127.0.0.2/32"]})
    db.session.commit()
    req = ask(world, "owner", change_plan(world))
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.2"}):
        assert approvals.approve(rbac, rbac.access_for(admin), req) == "approved"
        db.session.commit()
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        assert approvals.approve(rbac, rbac.access_for(world.members["manager"]),
                                 req) == "executed"
        db.session.commit()
    db.session.refresh(world.ws)
    assert world.ws.plan == "pro"
