"""A member who is no longer active hears nothing more, and their pending requests end.

* Deactivating a member cancels their pending approval requests, audited
  (``approval.cancelled`` with the reason): approvers can no longer decide them.
* No notification is mailed to a member who is not active when it is due
  (``send_due``, ``send_digests``) nor queued for them (``enqueue``), except the
  notice of their own deactivation.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db, mail
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, workspaces
from crm_rbac_plugin.notify import delivery, preferences
from crm_rbac_plugin.notify import queue as notify_queue
from tests.rbac_helpers import (
    access_of,
    ask_for_approval,
    fast_passwords,  # noqa: F401  (autouse fixture)
)


def notes_of(membership_id: int) -> dict[str, str]:
    N = rbac.models.Notification
    db.session.expire_all()
    return {r.event: r.mail_state for r in db.session.scalars(
        sa.select(N).where(N.membership_id == membership_id).order_by(N.id))}


def test_deactivation_cancels_pending_requests_and_stops_mail(world: SimpleNamespace,
                                                              login: Any) -> None:
    approvals.save(rbac, access_of(world.members["owner"]), {"operations": {"export": 1}})
    preferences.save(rbac, world.members["client_success"], {"roles": "digest"})
    db.session.commit()
    fid, cid = world.members["finance"].id, world.members["client_success"].id
    finance, owner, admin = (login(world.users[k], world.ws) for k in ("finance", "owner", "admin"))
    asked = ask_for_approval(finance, "/deals/export.csv", "q4")
    assert asked.status_code == 303
    rid = int(asked.headers["Location"].rsplit("/", 1)[1])
    member_role = workspaces.role_by_key(rbac, world.ws, "member")
    for mid in (fid, cid):  # client_success: a digest entry queued while active
        given = owner.post(f"/api/v1/members/{mid}/roles", json={"role_id": member_role.id})
        assert given.status_code == 201, given.text
    with mail.record_messages() as outbox:
        for mid in (fid, cid):
            assert owner.post(f"/settings/members/{mid}/deactivate").status_code == 302
        held = owner.get(f"/api/v1/members/{fid}/roles").get_json()["roles"]
        taken = next(r["id"] for r in held if r["role"] == "Member")
        assert owner.delete(f"/api/v1/members/{fid}/roles/{taken}").status_code == 204

        db.session.expire_all()
        req = db.session.get(rbac.models.ApprovalRequest, rid)
        assert req.status == "cancelled" and req.decided_at is not None
        A = rbac.models.AuditEvent
        cancelled = db.session.scalar(sa.select(A).where(A.action == "approval.cancelled"))
        assert cancelled is not None
        assert cancelled.actor_membership_id == world.members["owner"].id
        assert "no longer an active member" in str(cancelled.detail)
        assert admin.post(f"/api/v1/approvals/{rid}/reject",
                          json={"reason": "x"}).status_code == 409
        assert admin.post(f"/api/v1/approvals/{rid}/approve", json={}).status_code == 409

        queued = notify_queue.enqueue(db.session, rbac.models, workspace_id=world.ws.id,
                                      recipients=[fid, cid, world.members["viewer"].id],
                                      category="approvals", event_name="approval.requested",
                                      summary="later")
        assert [r.membership_id for r in queued] == [world.members["viewer"].id]
        db.session.commit()
        delivery.send_due(rbac)
        delivery.send_digests(rbac)
    to_them = [(m.recipients[0], m.subject) for m in outbox if m.recipients[0] in (
        "finance@example.test", "client_success@example.test")]
    assert to_them == [
        ("finance@example.test", "Your membership of Acme Sales was deactivated."),
        ("client_success@example.test", "Your membership of Acme Sales was deactivated.")]
    assert notes_of(fid)["role.removed"] == "skipped"
    assert notes_of(fid)["membership.deactivated"] == "sent"
    assert notes_of(cid)["role.assigned"] == "skipped"
