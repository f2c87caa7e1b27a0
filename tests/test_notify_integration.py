"""The services that raise alerts, decide approvals and remind of reviews reach people.

Each service only sends its signal (``alert_raised``, ``approval_requested``,
``approval_decided``, ``review_due``); the notification receivers turn it
into rows in the same transaction, and the worker mails them. These tests
drive the real services end to end, on SQLite and PostgreSQL, and read the
mail with ``mail.record_messages()``.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import alerts, approvals, gate, roles, workspaces
from crm_rbac_plugin.certification import schedule
from crm_rbac_plugin.context import change_reason
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.notify import delivery, preferences
from tests.rbac_helpers import access_of


def told(event: str) -> set[int]:
    """The membership ids holding a notification of ``event``."""
    N = rbac.models.Notification
    db.session.expire_all()
    return set(db.session.scalars(sa.select(N.membership_id).where(N.event == event)))


def mailed(outbox: list[Any]) -> set[str]:
    return {address for message in outbox for address in message.recipients}


def test_a_refusal_alert_mails_owners_and_admins(app: Flask, world: SimpleNamespace,
                                                 login: Any) -> None:
    """Refusals are stored after the request, in a session of their own: the alert and
    its notifications commit together, and an Owner's "off" still means mail."""
    alerts.save(rbac, access_of(world.members["owner"]), {"refusals_per_10_minutes": 2})
    db.session.commit()
    with pytest.raises(ValidationError):  # an Owner's security alerts cannot be switched off
        preferences.save(rbac, world.members["owner"], {"security": "off"})
    db.session.rollback()
    client = login(world.users["member"], world.ws)
    for _ in range(2):
        assert client.get("/settings/security").status_code == 403
    owners_admins = {world.members["owner"].id, world.members["admin"].id}
    assert told("alert.raised") == owners_admins
    with mail.record_messages() as outbox:
        delivery.send_due(rbac)
    assert mailed(outbox) == {"owner@example.test", "admin@example.test"}
    assert all("/settings/alerts" in m.body for m in outbox)


def test_a_due_review_mails_owners_and_admins_once(app: Flask, world: SimpleNamespace) -> None:
    world.ws.created_at = utcnow() - dt.timedelta(days=91)
    db.session.commit()
    runner = app.test_cli_runner()
    for _ in range(2):  # cron runs it twice: one reminder
        assert runner.invoke(args=["rbac", "review", "remind"]).exit_code == 0
    assert told("review.due") == {world.members["owner"].id, world.members["admin"].id}
    with mail.record_messages() as outbox:
        delivery.send_due(rbac)
    assert len(outbox) == 2 and mailed(outbox) == {"owner@example.test", "admin@example.test"}
    assert all("/settings/reviews" in m.body for m in outbox)


def test_an_approval_tells_approvers_then_the_requester(app: Flask, world: SimpleNamespace) -> None:
    """Requested: the approvers hear of it (not the requester). Executed: the requester
    and the other approvers (not the one who decided). The replayed change carries
    the requester's reason, which this workspace requires."""
    owner = access_of(world.members["owner"])
    approvals.save(rbac, owner, {"operations": {"assign_privileged_role": True}})
    schedule.save(rbac, owner, require_reason=True)
    db.session.commit()
    admin_role = workspaces.role_by_key(rbac, world.ws, "admin")
    viewer = world.members["viewer"]
    with pytest.raises(gate.ApprovalPending) as pending, change_reason("covers the audit"):
        roles.assign_role(rbac, owner, viewer, admin_role)
    req = db.session.get(rbac.models.ApprovalRequest, pending.value.request_id)
    assert told("approval.requested") == {world.members["admin"].id}
    assert approvals.approve(rbac, access_of(world.members["admin"]), req) == "executed"
    db.session.commit()
    executed = told("approval.executed")
    # The requester hears of it, the deciding Admin does not; the viewer, an Admin
    # (and so an approver) from this very change on, may.
    assert world.members["owner"].id in executed and world.members["admin"].id not in executed
    assert executed <= {world.members["owner"].id, viewer.id}
    A = rbac.models.AuditEvent
    added = db.session.scalars(sa.select(A).where(A.action == "assignment.added")
                               .order_by(A.id.desc())).first()
    assert added.detail["reason"] == "covers the audit"
    with mail.record_messages() as outbox:
        delivery.send_due(rbac)
    for address in ("admin@example.test", "owner@example.test"):
        assert any(address in m.recipients and "/settings/approvals/" in m.body
                   for m in outbox), address
