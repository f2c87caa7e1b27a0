"""What a permission change pays for its audit event, alert rules and notifications.

A role given to a member writes, inside the change's transaction, the audit
event, the member's notification and the alert rules' counters. Those side
effects take three statements: one inserts the notification as the member's
channel says (reading it with the workspace's name), one reads the
workspace's reason rule with its alert settings (the alert rules evaluate
the event with them, without reading them again) and one inserts the event.
In a request whose workspace version the worker has met (a change after a
change), the worker keeps the reason rule and alert settings: two
statements. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import alerts, roles
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.notify import preferences, queue
from tests.rbac_helpers import access_of

#: Statements of one role assignment and its commit from a fresh session: nine for the
#: change (the member's row locked, so that two assignments at once see each other;
#: the service's four reads, the role's grants and the workspace's approver permission,
#: which decide whether it is privileged, the insert, the policy version's bump) and
#: three for its audit event, alert rules and notification.
ASSIGNMENT_STATEMENTS = 12
#: Side-effect statements of a role change in a request after another: the notification's
#: and the audit event's inserts (the reason rule and alert settings are kept per version).
KEPT_RULES_SIDE_EFFECTS = 2
#: A Monday, 20:00 UTC: outside business hours of 9 to 17.
MONDAY_EVENING = dt.datetime(2026, 1, 5, 20, 0)


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)


def role(world: SimpleNamespace, key: str) -> Any:
    R = rbac.models.Role
    return db.session.scalar(sa.select(R).where(R.workspace_id == world.ws.id, R.key == key))


def ids_of(world: SimpleNamespace) -> SimpleNamespace:
    """The ids the tests use, read while ``world``'s objects are bound to the session."""
    return SimpleNamespace(ws=world.ws.id, owner=world.members["owner"].id,
                           viewer=world.members["viewer"].id, finance=role(world, "finance").id)


def assign(ids: SimpleNamespace) -> list[str]:
    """Give the viewer the Finance role as the Owner, from a fresh session as a request
    starts; return the statements it ran."""
    M = rbac.models.Membership
    db.session.remove()
    owner, target = db.session.get(M, ids.owner), db.session.get(M, ids.viewer)
    given = db.session.get(rbac.models.Role, ids.finance)
    access = access_of(owner)
    with rbac.as_member(owner), statements() as seen:
        roles.assign_role(rbac, access, target, given)
        db.session.commit()
    return seen


def test_a_role_change_writes_its_side_effects_in_three_statements(
        app: Flask, world: SimpleNamespace) -> None:
    ids = ids_of(world)
    seen = assign(ids)
    on_table = {name: [s for s in seen if name in s] for name in (
        "rbac_notification_preference", "INSERT INTO rbac_notification ", "rbac_review_schedule",
        "rbac_alert_settings", "INSERT INTO rbac_audit_event")}
    assert {name: len(found) for name, found in on_table.items()} == dict.fromkeys(on_table, 1)
    # The notification's insert reads the channel; the reason rule's statement reads
    # the alert settings: nothing else reads either.
    assert on_table["rbac_notification_preference"] == on_table["INSERT INTO rbac_notification "]
    assert on_table["rbac_review_schedule"] == on_table["rbac_alert_settings"]
    assert len(seen) == ASSIGNMENT_STATEMENTS, "\n".join(seen)
    N, A = rbac.models.Notification, rbac.models.AuditEvent
    [told] = db.session.scalars(sa.select(N).where(N.event == "role.assigned"))
    assert (told.membership_id, told.summary, told.mail_state) == (
        ids.viewer, "You were given the role Finance in Acme Sales.", "pending")
    event = db.session.scalar(sa.select(A).where(A.action == "assignment.added"))
    assert (event.workspace_id, event.actor_membership_id) == (ids.ws, ids.owner)


def test_the_commit_writes_the_event_without_a_flush_of_its_own(
        app: Flask, world: SimpleNamespace) -> None:
    """The change's flush is the transaction's only one: the commit inserts the audit
    event with a plain statement, and the alert rules evaluate it all the same
    (Finance is no privileged role: an Admin role given raises the privilege alert)."""
    ids = ids_of(world)
    flushes: list[int] = []

    def count(session: Any, context: Any) -> None:
        flushes.append(len(session.new) + len(session.dirty) + len(session.deleted))

    sa.event.listen(db.session, "after_flush", count)
    try:
        seen = assign(ids)
    finally:
        sa.event.remove(db.session, "after_flush", count)
    assert len(flushes) == 1, flushes
    assert len([s for s in seen if "INSERT INTO rbac_audit_event" in s]) == 1
    A = rbac.models.Alert
    assert db.session.scalar(sa.select(sa.func.count()).select_from(A)) == 0
    ids.finance = role(world, "admin").id
    assign(ids)
    [alert] = db.session.scalars(sa.select(A).where(A.rule == "privilege"))
    assert (alert.membership_id, alert.severity) == (ids.viewer, "high")
    assert "was given the privileged role Admin" in alert.summary


def test_the_event_rolls_back_with_a_commit_that_fails_after_writing_it(
        app: Flask, world: SimpleNamespace) -> None:
    m = rbac.models
    ids = ids_of(world)
    written: list[int] = []

    def fail(session: Any) -> None:
        written.append(session.scalar(sa.select(sa.func.count()).select_from(m.AuditEvent)))
        raise RuntimeError("refused after the audit event")

    counts_before = {model: db.session.scalar(sa.select(sa.func.count()).select_from(model))
                     for model in (m.Notification, m.AuditEvent)}
    db.session.remove()
    sa.event.listen(db.session, "before_commit", fail)
    try:
        with pytest.raises(RuntimeError):
            assign(ids)
    finally:
        sa.event.remove(db.session, "before_commit", fail)
    db.session.rollback()
    assert written == [counts_before[m.AuditEvent] + 1]  # written in the transaction...
    assert {model: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in counts_before} == counts_before  # ...and rolled back with it
    assert ids.finance not in set(db.session.scalars(sa.select(m.MemberRole.role_id).where(
        m.MemberRole.membership_id == ids.viewer)))


def test_a_role_change_after_another_writes_its_side_effects_in_two_statements(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    ids = ids_of(world)
    client = login(world.users["owner"], world.ws)
    assigned = f"/settings/members/{ids.viewer}/roles"
    assert client.post(assigned, data={"role_id": ids.finance}).status_code == 302
    held = next(mr.id for mr in db.session.get(rbac.models.Membership, ids.viewer).member_roles
                if mr.role_id == ids.finance)
    db.session.remove()
    with statements() as seen:
        assert client.post(f"{assigned}/{held}/remove").status_code == 302
    side = [s for s in seen if any(name in s for name in (
        "rbac_review_schedule", "rbac_alert_settings", "INSERT INTO rbac_notification ",
        "INSERT INTO rbac_audit_event"))]
    assert len(side) == KEPT_RULES_SIDE_EFFECTS, "\n".join(side)


def test_the_settings_read_with_the_reason_rule_drive_the_alert_rules(
        app: Flask, world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = ids_of(world)
    alerts.save(rbac, access_of(world.members["owner"]),
                {"business_days": ["mon", "tue", "wed", "thu", "fri"],
                 "business_start_hour": 9, "business_end_hour": 17})
    db.session.commit()
    for module in ("crm_rbac_plugin.audit.changes", "crm_rbac_plugin.alerts.engine"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: MONDAY_EVENING)
    seen = assign(ids)
    assert len([s for s in seen if "rbac_alert_settings" in s]) == 1
    A = rbac.models.Alert
    [alert] = db.session.scalars(sa.select(A).where(A.rule == "off_hours"))
    assert alert.membership_id == ids.owner
    assert "assignment.added at Mon 20:00 UTC" in alert.summary


def test_a_required_reason_still_refuses_the_change_and_writes_nothing(
        app: Flask, world: SimpleNamespace) -> None:
    m = rbac.models
    ids = ids_of(world)
    db.session.add(m.ReviewSchedule(workspace_id=ids.ws, require_reason=True))
    db.session.commit()
    counts_before = {model: db.session.scalar(sa.select(sa.func.count()).select_from(model))
                     for model in (m.Notification, m.AuditEvent)}
    with pytest.raises(ValidationError) as refused:
        assign(ids)
    assert refused.value.field == "reason"
    db.session.rollback()
    assert {model: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in counts_before} == counts_before
    assert ids.finance not in set(db.session.scalars(sa.select(m.MemberRole.role_id).where(
        m.MemberRole.membership_id == ids.viewer)))


def test_write_now_writes_what_enqueue_writes_for_every_channel(
        app: Flask, world: SimpleNamespace) -> None:
    """The one-statement insert of the session listeners and :func:`enqueue` agree:
    ``mail`` pending, ``digest`` kept, ``app`` and ``notify_email`` off skipped,
    ``off`` and another workspace's member nothing."""
    channels = {"viewer": "mail", "finance": "app", "junior_rep": "off", "client_success": "digest"}
    for key, channel in channels.items():
        preferences.save(rbac, world.members[key], {"roles": channel})
    world.members["member"].notify_email = False
    db.session.commit()
    keys = [*channels, "member", "admin"]
    recipients = [world.members[k].id for k in keys] + [world.members["dual"].id + 1000]
    outsider = db.session.scalar(sa.select(rbac.models.Membership.id).where(
        rbac.models.Membership.workspace_id == world.ws2.id))
    N = rbac.models.Notification

    def written(event: str) -> dict[int, tuple[str, str, bool]]:
        return {n.membership_id: (n.summary, n.mail_state, n.next_attempt_at is not None)
                for n in db.session.scalars(sa.select(N).where(N.event == event))}

    queue.enqueue(db.session, rbac.models, workspace_id=world.ws.id,
                  recipients=[*recipients, outsider], category="roles", event_name="test.orm",
                  summary="Something happened in Acme Sales.")
    db.session.flush()
    assert queue.write_now(db.session, rbac.models, workspace_id=world.ws.id,
                           recipients=[*recipients, outsider], category="roles",
                           event_name="test.core",
                           summary=("Something happened in ", ".")) == 5
    db.session.commit()
    assert written("test.core") == written("test.orm")
    assert {mid: state for mid, (_, state, _) in written("test.core").items()} == {
        world.members["viewer"].id: "pending", world.members["finance"].id: "skipped",
        world.members["client_success"].id: "digest", world.members["member"].id: "skipped",
        world.members["admin"].id: "pending"}
    assert queue.take_ready(db.session) == sorted(
        n.id for n in db.session.scalars(sa.select(N).where(N.mail_state == "pending")))


def test_write_now_without_inline_delivery_writes_the_same_rows_and_notes_no_ids(
        app: Flask, world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``RBAC_NOTIFY_INLINE`` nothing reads the pending mails' ids: the insert
    returns no rows, writes what it writes with it and counts them all the same."""
    preferences.save(rbac, world.members["finance"], {"roles": "app"})
    preferences.save(rbac, world.members["junior_rep"], {"roles": "off"})
    db.session.commit()
    keys = ["viewer", "finance", "junior_rep", "admin"]
    recipients = [world.members[k].id for k in keys]
    N = rbac.models.Notification

    def written(event: str) -> dict[int, tuple[str, str, bool]]:
        return {n.membership_id: (n.summary, n.mail_state, n.next_attempt_at is not None)
                for n in db.session.scalars(sa.select(N).where(N.event == event))}

    for event, inline in (("test.inline", True), ("test.queued", False)):
        monkeypatch.setitem(app.config, "RBAC_NOTIFY_INLINE", inline)
        with statements() as seen:
            assert queue.write_now(db.session, rbac.models, workspace_id=world.ws.id,
                                   recipients=recipients, category="roles", event_name=event,
                                   summary=("Something happened in ", ".")) == 3
        assert ("RETURNING" in seen[-1]) is inline
        with statements() as seen:
            assert queue.write_now(db.session, rbac.models, workspace_id=world.ws.id,
                                   recipients=recipients[:1], category="roles",
                                   event_name=f"{event}.one",
                                   summary=("Something happened in ", ".")) == 1
        assert ("RETURNING" in seen[-1]) is inline
        db.session.commit()
        # The viewer's two mails and the admin's; finance's entry has no mail.
        assert len(queue.take_ready(db.session)) == (3 if inline else 0)
    assert written("test.queued") == written("test.inline")
    assert written("test.queued.one") == written("test.inline.one")


def test_the_request_reason_is_read_once_per_request(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit trail asks for the reason at the flush and again at the commit: the
    request's values are read once; a reason set by code still comes first."""
    from crm_rbac_plugin import context

    reads: list[Any] = []
    read = context._request_reason

    def counted(req: Any) -> str | None:
        reads.append(req)
        return read(req)

    monkeypatch.setattr(context, "_request_reason", counted)
    with app.test_request_context("/x?reason=%20audit%20", method="POST"):
        assert [context.current_reason() for _ in range(3)] == ["audit"] * 3
        with context.change_reason("by code"):
            assert context.current_reason() == "by code"
        assert context.current_reason() == "audit"
    with app.test_request_context("/x", method="POST", json={"reason": "json"}):
        assert context.current_reason() == context.current_reason() == "json"
    with app.test_request_context("/x", method="POST", data={"other": "1"}):
        assert context.current_reason() is None and context.current_reason() is None
    assert len(reads) == 3


def test_old_state_of_an_untouched_row_is_its_loaded_values(
        app: Flask, world: SimpleNamespace) -> None:
    """An object nothing was set on since it was loaded gives its loaded values without
    reading history; one set, or expired, still gives what the database holds."""
    from crm_rbac_plugin.guard import old_state

    M = rbac.models.Membership
    viewer = world.members["viewer"].id
    db.session.remove()
    member = db.session.get(M, viewer)
    columns = [a.key for a in sa.inspect(M).column_attrs]
    loaded = {k: getattr(member, k) for k in columns}
    assert vars(old_state(member)) == loaded
    member.status = "inactive"
    assert vars(old_state(member)) == loaded
    db.session.rollback()
    db.session.expire(member, ["status"])
    assert vars(old_state(member)) == loaded
    member.status = "inactive"  # set while expired: read from the row
    assert vars(old_state(member)) == loaded
    db.session.rollback()
