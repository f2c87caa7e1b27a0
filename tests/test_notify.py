"""Notifications: each source writes the right rows for the right members, each channel
is honoured, nothing is told of a rolled-back change, and mails are retried.

Services are called directly here (as the CLI and host code call them); the
pages, the API, the bell and the worker command are in ``test_notify_pages.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import sharing, signals
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.notify import delivery, expiry, preferences
from crm_rbac_plugin.roles import assignments
from crm_rbac_plugin.team import lifecycle


def rows(**where: Any) -> list[Any]:
    """Notifications matching ``where`` (column = value), oldest first."""
    N = rbac.models.Notification
    query = sa.select(N).order_by(N.id)
    for key, value in where.items():
        query = query.where(getattr(N, key) == value)
    return list(db.session.scalars(query))


def told(event: str) -> set[int]:
    """The membership ids told of ``event``."""
    return {r.membership_id for r in rows(event=event)}


def role(world: SimpleNamespace, key: str) -> Any:
    R = rbac.models.Role
    return db.session.scalar(sa.select(R).where(R.workspace_id == world.ws.id, R.key == key))


def set_channel(membership: Any, category: str, channel: str) -> None:
    preferences.save(rbac, membership, {category: channel})
    db.session.commit()


# -- the plugin's own events ---------------------------------------------------------------


def test_role_assigned_and_removed_tell_the_member(app: Flask, world: SimpleNamespace) -> None:
    owner = rbac.access_for(world.members["owner"])
    viewer = world.members["viewer"]
    mr = assignments.assign_role(rbac, owner, viewer, role(world, "finance"))
    db.session.commit()
    [row] = rows(event="role.assigned")
    assert row.membership_id == viewer.id and row.category == "roles"
    assert row.workspace_id == world.ws.id and "Finance" in row.summary
    assert row.mail_state == "pending" and row.link == "/settings/profile"
    assignments.remove_role(rbac, owner, mr)
    db.session.commit()
    assert told("role.removed") == {viewer.id}
    # Nobody else hears of it (the acting Owner included: it is not theirs).
    assert {r.membership_id for r in rows()} == {viewer.id}
    with mail.record_messages() as outbox:
        counts = delivery.send_due(rbac)
    assert counts.sent == 2 and [m.recipients for m in outbox] == [["viewer@example.test"]] * 2
    assert "http://" in outbox[0].body and "/settings/profile" in outbox[0].body
    assert "/settings/account/notifications" in outbox[0].html
    assert {r.mail_state for r in rows()} == {"sent"}
    with mail.record_messages() as outbox:
        assert delivery.send_due(rbac).sent == 0  # never twice
    assert outbox == []


def test_membership_deactivated_and_reactivated(app: Flask, world: SimpleNamespace) -> None:
    owner = rbac.access_for(world.members["owner"])
    member = world.members["member2"]
    lifecycle.deactivate(rbac, owner, member)
    db.session.commit()
    lifecycle.reactivate(rbac, owner, member)
    db.session.commit()
    assert told("membership.deactivated") == {member.id}
    assert told("membership.reactivated") == {member.id}
    assert {r.category for r in rows()} == {"membership"}


def test_sharing_agreement_events_tell_the_other_side(app: Flask, world: SimpleNamespace) -> None:
    acme_owner = rbac.access_for(world.members["owner"])
    beta = world.ws2
    M = rbac.models.Membership
    beta_owner_m = db.session.scalar(sa.select(M).where(M.workspace_id == beta.id,
                                                        M.user_id == world.users["dual"].id))
    beta_owner = rbac.access_for(beta_owner_m)
    acme_deciders = {world.members["owner"].id, world.members["admin"].id}

    agreement = sharing.create_agreement(rbac, acme_owner, workspace="beta",
                                         permissions=["clients.view"])
    db.session.commit()
    # Beta's Owner decides; Beta's plain member (outsider) is not told.
    assert told("sharing.offered") == {beta_owner_m.id}
    sharing.accept(rbac, beta_owner, agreement)
    db.session.commit()
    assert told("sharing.accepted") == acme_deciders
    sharing.update_agreement(rbac, acme_owner, agreement,
                             permissions=["clients.view", "leads.view"])
    db.session.commit()
    assert told("sharing.widened") == {beta_owner_m.id}
    # Widened, it is offered again: Beta accepts again.
    assert len(rows(event="sharing.offered")) == 2
    sharing.accept(rbac, beta_owner, agreement)
    db.session.commit()
    sharing.update_agreement(rbac, acme_owner, agreement, permissions=["clients.view"])
    db.session.commit()
    assert told("sharing.changed") == {beta_owner_m.id}
    sharing.leave(rbac, beta_owner, agreement)
    db.session.commit()
    assert told("sharing.left") == acme_deciders

    second = sharing.create_agreement(rbac, acme_owner, workspace="beta",
                                      permissions=["clients.view"], notes="again")
    db.session.commit()
    sharing.revoke(rbac, acme_owner, second)
    db.session.commit()
    assert told("sharing.revoked") == {beta_owner_m.id}
    # One row per event and member, however many flushes the change took.
    assert len(rows(event="sharing.widened")) == 1
    assert {r.category for r in rows()} == {"sharing"}
    assert all(r.link == "/settings/sharing" for r in rows())


def test_rollback_writes_and_sends_nothing(app: Flask, world: SimpleNamespace) -> None:
    owner = rbac.access_for(world.members["owner"])
    assignments.assign_role(rbac, owner, world.members["viewer"], role(world, "finance"))
    db.session.flush()
    signals.alert_raised.send(app, workspace_id=world.ws.id, alert=None, severity="high",
                              recipients=[world.members["owner"].id], summary="Odd sign-in.",
                              link="/settings/alerts")
    assert rows()  # written in the transaction ...
    db.session.rollback()
    with mail.record_messages() as outbox:
        counts = delivery.send_due(rbac)
    assert rows() == [] and outbox == [] and counts.sent == 0  # ... and gone with it


# -- channels --------------------------------------------------------------------------------


def test_each_channel_is_honoured(app: Flask, world: SimpleNamespace) -> None:
    owner = rbac.access_for(world.members["owner"])
    keys = {"viewer": "mail", "finance": "app", "junior_rep": "off", "client_success": "digest"}
    for key, channel in keys.items():
        set_channel(world.members[key], "roles", channel)
    for key in keys:
        assignments.assign_role(rbac, owner, world.members[key], role(world, "member"))
        db.session.commit()
    state = {r.membership_id: r.mail_state for r in rows()}
    assert state == {world.members["viewer"].id: "pending",
                     world.members["finance"].id: "skipped",
                     world.members["client_success"].id: "digest"}
    with mail.record_messages() as outbox:
        delivery.send_due(rbac)
    assert [m.recipients for m in outbox] == [["viewer@example.test"]]
    # The digest gathers the day's rows in one mail.
    assignments.assign_role(rbac, owner, world.members["client_success"], role(world, "finance"))
    db.session.commit()
    with mail.record_messages() as outbox:
        counts = delivery.send_digests(rbac)
    assert counts.sent == 1 and [m.recipients for m in outbox] == [["client_success@example.test"]]
    assert outbox[0].body.count("You were given the role") == 2
    assert {r.mail_state for r in rows(membership_id=world.members["client_success"].id)} == {
        "digested"}
    with mail.record_messages() as outbox:
        assert delivery.send_digests(rbac).sent == 0
    assert outbox == []
    # At most one digest a day, however often the worker runs with --digest.
    assignments.assign_role(rbac, owner, world.members["client_success"], role(world, "viewer"))
    db.session.commit()
    with mail.record_messages() as outbox:
        assert delivery.send_digests(rbac).sent == 0
        assert delivery.send_digests(rbac, now=utcnow() + dt.timedelta(days=1)).sent == 1
    assert len(outbox) == 1 and "Viewer" in outbox[0].body and "Finance" not in outbox[0].body


def test_old_notify_email_switch_still_means_no_mail(app: Flask, world: SimpleNamespace) -> None:
    viewer = world.members["viewer"]
    viewer.notify_email = False
    db.session.commit()
    assert preferences.preferences_of(rbac, viewer)["roles"]["channel"] == "app"
    assignments.assign_role(rbac, rbac.access_for(world.members["owner"]), viewer,
                            role(world, "finance"))
    db.session.commit()
    assert [r.mail_state for r in rows()] == ["skipped"]
    # A category set one by one overrides the switch.
    set_channel(viewer, "roles", "mail")
    assert preferences.preferences_of(rbac, viewer)["roles"]["channel"] == "mail"


def test_owner_security_alerts_cannot_be_switched_off(app: Flask, world: SimpleNamespace) -> None:
    owner, admin = world.members["owner"], world.members["admin"]
    with pytest.raises(ValidationError) as refused:
        preferences.save(rbac, owner, {"security": "off"})
    assert refused.value.field == "security" and refused.value.status == 400
    db.session.rollback()
    assert preferences.preferences_of(rbac, owner)["security"] == {
        "channel": "mail", "locked": True, "label": preferences.CATEGORIES["security"]}
    set_channel(admin, "security", "off")  # an Admin may
    # An Owner who switched it off before becoming Owner still gets the mail.
    P = rbac.models.NotificationPreference
    db.session.add(P(membership_id=owner.id, category="security", channel="off"))
    db.session.commit()
    signals.alert_raised.send(app, workspace_id=world.ws.id, alert=None, severity="high",
                              recipients=[owner.id, admin.id], summary="Mass deletion.",
                              link="/settings/alerts")
    db.session.commit()
    assert [(r.membership_id, r.mail_state, r.category) for r in rows()] == [
        (owner.id, "pending", "security")]


def test_bad_preferences_name_the_field(app: Flask, world: SimpleNamespace) -> None:
    member = world.members["member"]
    for values, field in [({"nope": "mail"}, "nope"), ({"roles": "pigeon"}, "roles"),
                          ({"roles": None}, "roles")]:
        with pytest.raises(ValidationError) as refused:
            preferences.save(rbac, member, values)
        assert refused.value.field == field
    assert rows() == [] and db.session.scalars(sa.select(rbac.models.NotificationPreference)).all() == []


# -- the signals of approvals, alerts and reviews ---------------------------------------------


def test_signals_from_other_services_queue_rows_and_mail(app: Flask, world: SimpleNamespace) -> None:
    owner, admin, manager = (world.members[k] for k in ("owner", "admin", "manager"))
    M = rbac.models.Membership
    outsider = db.session.scalar(sa.select(M).where(M.user_id == world.users["outsider"].id))
    signals.approval_requested.send(
        app, request=None, workspace_id=world.ws.id, recipients=[owner.id, admin.id, outsider.id],
        summary="Manager asks to export 5,000 leads.", link="/settings/approvals/1")
    signals.approval_decided.send(
        app, request=None, outcome="executed", actor=rbac.access_for(admin), reason="ok",
        workspace_id=world.ws.id, recipients=[manager.id, admin.id],
        summary="Your export was approved.", link="/settings/approvals/1")
    signals.review_due.send(app, due_at=utcnow(), workspace_id=world.ws.id,
                            recipients=[owner.id], summary="The access review is due.",
                            link="/settings/review")
    db.session.commit()
    assert told("approval.requested") == {owner.id, admin.id}  # not another workspace's member
    assert told("approval.executed") == {manager.id}  # not the deciding Admin
    assert told("review.due") == {owner.id}
    assert {r.category for r in rows()} == {"approvals", "reviews"}
    with mail.record_messages() as outbox:
        assert delivery.send_due(rbac).sent == 4
    by_address = {m.recipients[0]: m for m in outbox}
    # An absolute link to the page where one acts on it.
    assert re.search(r"https?://[\w.:-]+/settings/approvals/1\b", by_address["manager@example.test"].body)
    assert by_address["manager@example.test"].subject == "Your export was approved."


# -- delivery ------------------------------------------------------------------------------------


def test_a_failing_mail_is_retried_with_a_growing_delay(
        app: Flask, world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["RBAC_NOTIFY_MAX_ATTEMPTS"] = 3
    assignments.assign_role(rbac, rbac.access_for(world.members["owner"]), world.members["viewer"],
                            role(world, "finance"))
    db.session.commit()

    def broken(message: Any) -> None:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(app.extensions["mail"], "send", broken)
    now = utcnow()
    first = delivery.send_due(rbac, now=now)
    [row] = rows()
    assert (first.retried, row.attempts, row.mail_state) == (1, 1, "pending")
    assert "smtp down" in row.last_error
    assert row.next_attempt_at == now + dt.timedelta(seconds=60)
    assert delivery.send_due(rbac, now=now).retried == 0  # not due yet
    later = now + dt.timedelta(seconds=61)
    delivery.send_due(rbac, now=later)
    assert row.attempts == 2 and row.next_attempt_at == later + dt.timedelta(seconds=120)
    monkeypatch.undo()
    with mail.record_messages() as outbox:
        assert delivery.send_due(rbac, now=later + dt.timedelta(seconds=121)).sent == 1
    assert len(outbox) == 1 and row.mail_state == "sent" and row.last_error is None


def test_a_mail_failing_every_time_is_marked_failed(
        app: Flask, world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["RBAC_NOTIFY_MAX_ATTEMPTS"] = 2
    assignments.assign_role(rbac, rbac.access_for(world.members["owner"]), world.members["viewer"],
                            role(world, "finance"))
    db.session.commit()
    monkeypatch.setattr(app.extensions["mail"], "send", lambda message: 1 / 0)
    now = utcnow()
    delivery.send_due(rbac, now=now)
    counts = delivery.send_due(rbac, now=now + dt.timedelta(hours=1))
    [row] = rows()
    assert counts.failed == 1 and row.mail_state == "failed" and row.attempts == 2
    assert delivery.send_due(rbac, now=now + dt.timedelta(days=1)).failed == 0


def test_expiring_assignments_are_told_once(app: Flask, world: SimpleNamespace) -> None:
    owner = rbac.access_for(world.members["owner"])
    soon = utcnow() + dt.timedelta(days=3)
    later = utcnow() + dt.timedelta(days=30)
    mr = assignments.assign_role(rbac, owner, world.members["viewer"], role(world, "finance"),
                                 expires_at=soon)
    assignments.assign_role(rbac, owner, world.members["member"], role(world, "finance"),
                            expires_at=later)
    db.session.commit()
    assert expiry.scan_expiring(rbac) == 1
    assert expiry.scan_expiring(rbac) == 0
    [row] = rows(event="role.expiring")
    assert row.membership_id == world.members["viewer"].id
    assert row.dedupe_key == expiry.expiry_key(mr.id, mr.expires_at)
    # Thirty days out is told once it comes within the window.
    assert expiry.scan_expiring(rbac, now=utcnow() + dt.timedelta(days=25)) == 1
    assert expiry.scan_expiring(rbac, now=utcnow() + dt.timedelta(days=25)) == 0


def test_two_workers_never_send_one_mail_twice(app: Flask, world: SimpleNamespace,
                                               backend: str) -> None:
    """On PostgreSQL a row another worker holds is skipped (FOR UPDATE SKIP LOCKED)."""
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers: there is no second worker to race")
    assignments.assign_role(rbac, rbac.access_for(world.members["owner"]),
                            world.members["viewer"], role(world, "finance"))
    db.session.commit()
    [row] = rows()
    table = rbac.models.Notification.__table__
    with db.engine.connect() as other:  # the other worker, mid-send
        other.execute(sa.select(table.c.id).where(table.c.id == row.id).with_for_update())
        with mail.record_messages() as outbox:
            assert delivery.send_due(rbac).sent == 0
        assert outbox == []
        other.rollback()
    with mail.record_messages() as outbox:
        assert delivery.send_due(rbac).sent == 1
    assert len(outbox) == 1
