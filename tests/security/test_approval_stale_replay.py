"""An approved settings change applies only the fields it changes, and only if they did not move.

A request to change the approval policy, the security policy, the plan or a
sharing agreement's terms keeps each field it changes with the value the
requester saw ("before") and the value asked for ("after"). Approving it:

* applies those fields only, so a change made meanwhile to another field
  (another request approved first, a narrowing that never waits) survives;
* fails (HTTP 409 on the approve route, a CLI error, the request ``failed``
  with a reason naming the fields) when a field it changes moved since, and
  applies nothing;
* fails the same way for a request stored without "before" values (a
  whole-state payload), which cannot be checked against later changes.

Run on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, sharing
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.security.policy import policy_for
from tests.rbac_helpers import (
    access_of,
    fast_passwords,  # noqa: F401  (autouse fixture)
)


def set_policy(w: SimpleNamespace, **changes: Any) -> None:
    approvals.save(rbac, access_of(w.members["owner"]), changes)
    db.session.commit()


def asked(response: Any) -> int:
    assert response.status_code == 202, response.text
    return int(response.get_json()["request_id"])


def request_row(rid: int) -> Any:
    db.session.expire_all()
    return db.session.get(rbac.models.ApprovalRequest, rid)


def approve_ok(client: Any, rid: int) -> None:
    decided = client.post(f"/api/v1/approvals/{rid}/approve", json={})
    assert decided.status_code == 200 and decided.get_json()["status"] == "executed", decided.text


def approve_conflict(client: Any, rid: int, *fields: str) -> None:
    decided = client.post(f"/api/v1/approvals/{rid}/approve", json={})
    assert decided.status_code == 409, decided.text
    body = decided.get_json()
    assert body["status"] == "failed" and body["error"] == "conflict", body
    req = request_row(rid)
    assert req.status == "failed" and "changed since the request" in req.failure
    for name in fields:
        assert name in req.failure


# -- the approval policy ---------------------------------------------------------------


def test_approval_policy_keeps_a_change_made_meanwhile(world: SimpleNamespace, login: Any) -> None:
    set_policy(world, operations={"approval_policy": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    expiry = asked(owner.patch("/api/v1/approvals/policy", json={"expiry_hours": 24}))
    exports = asked(owner.patch("/api/v1/approvals/policy", json={
        "operations": {"approval_policy": True, "export": 100}}))
    assert request_row(expiry).payload == {
        "fields": {"expiry_hours": {"before": 72, "after": 24}}}
    approve_ok(admin, exports)
    approve_ok(admin, expiry)
    db.session.expire_all()
    now = approvals.settings_for(rbac, world.ws.id)
    assert now.expiry_hours == 24
    assert now.operations == {"approval_policy": 0, "export": 100}  # the later change stays


def test_approval_policy_refuses_a_field_moved_meanwhile(world: SimpleNamespace,
                                                         login: Any) -> None:
    set_policy(world, operations={"approval_policy": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    first = asked(owner.patch("/api/v1/approvals/policy", json={
        "expiry_hours": 24, "approvals_required": 2}))
    second = asked(owner.patch("/api/v1/approvals/policy", json={"expiry_hours": 48}))
    approve_ok(admin, second)
    approve_conflict(admin, first, "expiry_hours")
    db.session.expire_all()
    now = approvals.settings_for(rbac, world.ws.id)
    assert (now.expiry_hours, now.approvals_required) == (48, 1)  # nothing of it applied


def test_a_field_moved_meanwhile_to_the_asked_value_is_no_conflict(
        world: SimpleNamespace, login: Any) -> None:
    """Another request set a field to the value this one asks for: approving it applies
    the rest of the change and undoes nothing, and with nothing left, writes nothing."""
    set_policy(world, operations={"approval_policy": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    first = asked(owner.patch("/api/v1/approvals/policy", json={"expiry_hours": 24}))
    # The same request filed again is the pending one; a wider one is another request.
    assert asked(owner.patch("/api/v1/approvals/policy", json={"expiry_hours": 24})) == first
    twin = asked(owner.patch("/api/v1/approvals/policy", json={
        "expiry_hours": 24, "operations": {"approval_policy": True, "export": 100}}))
    approve_ok(admin, twin)
    approve_ok(admin, first)
    assert request_row(first).failure in ("", None)
    both = asked(owner.patch("/api/v1/approvals/policy", json={
        "expiry_hours": 12, "approvals_required": 2}))
    same = asked(owner.patch("/api/v1/approvals/policy", json={"expiry_hours": 12}))
    approve_ok(admin, same)
    approve_ok(admin, both)
    db.session.expire_all()
    now = approvals.settings_for(rbac, world.ws.id)
    assert (now.expiry_hours, now.approvals_required) == (12, 2)


def test_a_request_stored_without_before_values_fails(world: SimpleNamespace,
                                                      login: Any) -> None:
    """A whole-state payload (as requests kept it before) cannot be told apart from later
    changes: it fails, 409, and nothing is applied."""
    set_policy(world, operations={"approval_policy": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    rid = asked(owner.patch("/api/v1/approvals/policy", json={"expiry_hours": 24}))
    req = request_row(rid)
    req.payload = {"changes": {"operations": {}, "approvals_required": 1,
                               "approver_permission": "approvals.decide", "expiry_hours": 24}}
    db.session.commit()
    approve_conflict(admin, rid, "without the values it changes from")
    db.session.expire_all()
    now = approvals.settings_for(rbac, world.ws.id)
    assert (now.operations, now.expiry_hours) == ({"approval_policy": 0}, 72)


# -- the security policy ---------------------------------------------------------------


def test_security_policy_keeps_a_change_made_meanwhile_and_refuses_a_moved_field(
        world: SimpleNamespace, login: Any) -> None:
    set_policy(world, operations={"security_policy": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    idle = asked(owner.patch("/api/v1/security-policy", json={"idle_minutes_member": 60}))
    cap = asked(owner.patch("/api/v1/security-policy", json={"max_sessions": 3}))
    approve_ok(admin, cap)
    approve_ok(admin, idle)
    db.session.expire_all()
    policy = policy_for(rbac, world.ws.id)
    assert (policy.idle_minutes_member, policy.max_sessions) == (60, 3)

    first = asked(owner.patch("/api/v1/security-policy", json={"idle_minutes_member": 90,
                                                                "step_up_minutes": 5}))
    second = asked(owner.patch("/api/v1/security-policy", json={"idle_minutes_member": 120}))
    approve_ok(admin, second)
    approve_conflict(admin, first, "idle_minutes_member")
    db.session.expire_all()
    policy = policy_for(rbac, world.ws.id)
    assert (policy.idle_minutes_member, policy.step_up_minutes) == (120, 15)


def test_the_cli_says_a_stale_request_failed(world: SimpleNamespace, app: Any,
                                             login: Any) -> None:
    set_policy(world, operations={"security_policy": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    first = asked(owner.patch("/api/v1/security-policy", json={"idle_minutes_member": 90}))
    approve_ok(admin, asked(owner.patch("/api/v1/security-policy",
                                        json={"idle_minutes_member": 120})))
    out = app.test_cli_runner().invoke(args=[
        "rbac", "approvals", "approve", str(first), "--workspace", "acme",
        "--as", "admin@example.test"])
    assert out.exit_code != 0, out.output
    assert "failed" in out.output and "idle_minutes_member" in out.output
    assert request_row(first).status == "failed"
    db.session.expire_all()
    assert policy_for(rbac, world.ws.id).idle_minutes_member == 120


# -- the plan -------------------------------------------------------------------------


def test_plan_refuses_a_plan_changed_meanwhile(world: SimpleNamespace, login: Any) -> None:
    set_policy(world, operations={"plan": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    rids = []
    for plan in ("pro", "free"):
        assert owner.post("/settings/plan", data={"plan": plan}).status_code in (302, 303)
        rids.append(max(db.session.scalars(sa.select(rbac.models.ApprovalRequest.id))))
    assert request_row(rids[0]).payload == {
        "fields": {"plan": {"before": "enterprise", "after": "pro"}}}
    approve_ok(admin, rids[1])
    page = admin.post(f"/settings/approvals/{rids[0]}/approve", data={"reason": ""})
    assert page.status_code == 409 and "changed since the request" in page.text
    assert request_row(rids[0]).status == "failed"
    db.session.refresh(world.ws)
    assert world.ws.plan == "free"


# -- a sharing agreement's terms -------------------------------------------------------


def _agreement(w: SimpleNamespace) -> Any:
    agreement = sharing.create_agreement(
        rbac, access_of(w.members["owner"]), workspace="beta",
        permissions=["clients.view", "deals.view", "leads.view"], notes="q4",
        expires_at=utcnow() + dt.timedelta(days=10))
    db.session.commit()
    return agreement


def _shared(agreement_id: int) -> tuple[list[str], str, dt.datetime | None]:
    db.session.expire_all()
    agreement = db.session.get(rbac.models.SharingAgreement, agreement_id)
    return (sorted(p.permission for p in agreement.permissions), agreement.notes,
            agreement.expires_at)


def test_sharing_keeps_terms_edited_meanwhile(world: SimpleNamespace, login: Any) -> None:
    agreement = _agreement(world)
    set_policy(world, operations={"sharing": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    later = (utcnow() + dt.timedelta(days=30)).replace(microsecond=0)
    # The edit form sends every field: the request keeps only the expiry it changes.
    rid = asked(owner.patch(f"/api/v1/sharing/{agreement.id}", json={
        "permissions": ["clients.view", "deals.view", "leads.view"], "notes": "q4",
        "expires_at": later.isoformat() + "Z"}))
    assert set(request_row(rid).payload["fields"]) == {"expires_at"}
    narrowed = admin.patch(f"/api/v1/sharing/{agreement.id}", json={
        "permissions": ["clients.view", "leads.view"], "notes": "no deals"})
    assert narrowed.status_code == 200, narrowed.text  # narrowing never waits
    approve_ok(admin, rid)
    assert _shared(agreement.id) == (["clients.view", "leads.view"], "no deals", later)


def test_sharing_keeps_an_action_removed_meanwhile(world: SimpleNamespace, login: Any) -> None:
    """Sharing one more action: the request holds that action alone, so deals.view,
    taken away meanwhile, does not come back."""
    agreement = _agreement(world)
    set_policy(world, operations={"sharing": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    rid = asked(owner.patch(f"/api/v1/sharing/{agreement.id}", json={
        "permissions": ["clients.view", "deals.view", "leads.view", "leads.edit"],
        "notes": "q4"}))
    assert request_row(rid).payload["fields"] == {
        "permissions.leads.edit": {"before": None, "after": []}}
    assert admin.patch(f"/api/v1/sharing/{agreement.id}", json={
        "permissions": ["clients.view", "leads.view"], "notes": "no deals"}).status_code == 200
    approve_ok(admin, rid)
    assert _shared(agreement.id)[:2] == (["clients.view", "leads.edit", "leads.view"], "no deals")


def test_sharing_refuses_an_action_changed_meanwhile(world: SimpleNamespace, login: Any) -> None:
    agreement = _agreement(world)
    set_policy(world, operations={"sharing": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    wanted = ["clients.view", "deals.view", "leads.view", "leads.edit"]
    first = asked(owner.patch(f"/api/v1/sharing/{agreement.id}", json={"permissions": wanted}))
    second = asked(owner.patch(f"/api/v1/sharing/{agreement.id}", json={"permissions": [
        "clients.view", "deals.view", "leads.view",
        {"resource": "leads", "action": "edit",
         "condition": [{"field": "status", "op": "eq", "value": "new"}]}]}))
    approve_ok(admin, second)
    shared_now = _shared(agreement.id)
    approve_conflict(admin, first, "permissions.leads.edit")
    assert _shared(agreement.id) == shared_now
    db.session.expire_all()
    edit = next(p for p in db.session.get(rbac.models.SharingAgreement, agreement.id).permissions
                if p.permission == "leads.edit")
    assert edit.condition  # the approved condition stays


def test_sharing_refuses_terms_moved_meanwhile(world: SimpleNamespace, login: Any) -> None:
    agreement = _agreement(world)
    set_policy(world, operations={"sharing": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    sooner = (utcnow() + dt.timedelta(days=5)).replace(microsecond=0)
    later = (utcnow() + dt.timedelta(days=30)).replace(microsecond=0)
    rid = asked(owner.patch(f"/api/v1/sharing/{agreement.id}", json={
        "expires_at": later.isoformat() + "Z", "notes": "longer"}))
    shortened = admin.patch(f"/api/v1/sharing/{agreement.id}", json={
        "expires_at": sooner.isoformat() + "Z"})
    assert shortened.status_code == 200, shortened.text  # an earlier end never waits
    approve_conflict(admin, rid, "expires_at")
    assert _shared(agreement.id) == (["clients.view", "deals.view", "leads.view"], "q4", sooner)


def test_a_new_agreement_with_an_end_is_created_when_approved(world: SimpleNamespace,
                                                              login: Any) -> None:
    """A new agreement keeps its whole terms (there is nothing earlier to keep), and its end,
    stored as text in the request, is read back as an instant when replayed."""
    set_policy(world, operations={"sharing": True})
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    end = (utcnow() + dt.timedelta(days=10)).replace(microsecond=0)
    rid = asked(owner.post("/api/v1/sharing", json={
        "workspace": "beta", "permissions": ["clients.view"], "expires_at": end.isoformat() + "Z"}))
    approve_ok(admin, rid)
    agreement = db.session.scalar(sa.select(rbac.models.SharingAgreement))
    assert _shared(agreement.id) == (["clients.view"], "", end)
