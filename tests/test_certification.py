"""Reviews and certification: the schedule's reminder, certification runs, the report.

The reminder is counted through the ``review_due`` signal and the schedule
row (once per due period, never before the due date); a run's revoke goes
through the role service, so the last-Owner rule refuses one and the item
shows why; the report's CSV neutralises formulas. SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, workspaces
from crm_rbac_plugin.certification import lines, report, runs, schedule
from crm_rbac_plugin.errors import PermissionDenied, RuleConflict, ValidationError
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.signals import review_due
from tests.rbac_helpers import access_of, custom_role, give_role

#: On SQLite, a database file of the module's own (see ``database_url``).
pytestmark = pytest.mark.sqlite_file


@pytest.fixture
def sent(app: Flask) -> Any:
    """The ``review_due`` signals sent during the test, as their keyword arguments."""
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    review_due.connect(receiver, app)
    yield calls
    review_due.disconnect(receiver, app)


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["rbac", *args])


def schedule_row(ws: Any) -> Any:
    S = rbac.models.ReviewSchedule
    db.session.expire_all()
    return db.session.scalar(sa.select(S).where(S.workspace_id == ws.id))


def age_workspace(ws: Any, days: int) -> None:
    """Pretend the workspace was created ``days`` ago (its first review counts from then)."""
    ws.created_at = utcnow() - dt.timedelta(days=days)
    db.session.commit()


# -- the reminder ----------------------------------------------------------------------------


def test_remind_sends_nothing_before_the_review_is_due(world: SimpleNamespace, sent: list,
                                                       app: Flask) -> None:
    age_workspace(world.ws, 89)
    age_workspace(world.ws2, 10)
    result = invoke(app, "review", "remind")
    assert result.exit_code == 0, result.output
    assert sent == [] and "Reminded 0" in result.output


def test_remind_sends_once_per_due_period(world: SimpleNamespace, sent: list, app: Flask) -> None:
    age_workspace(world.ws, 91)
    for _ in range(3):  # cron runs it three times the same day
        assert invoke(app, "review", "remind").exit_code == 0
    assert len(sent) == 1
    call = sent[0]
    assert call["workspace_id"] == world.ws.id
    owners_admins = {world.members["owner"].id, world.members["admin"].id}
    assert set(call["recipients"]) == owners_admins
    assert call["link"] == "/settings/reviews" and "Acme Sales" in call["summary"]
    assert call["due_at"] == schedule_row(world.ws).reminded_due_at
    # One period later, still not reviewed: one more reminder.
    age_workspace(world.ws, 91 + 90)
    invoke(app, "review", "remind")
    invoke(app, "review", "remind")
    assert len(sent) == 2 and sent[1]["due_at"] > sent[0]["due_at"]


def test_remind_follows_the_schedule_and_the_last_review(world: SimpleNamespace, sent: list,
                                                         app: Flask) -> None:
    age_workspace(world.ws, 40)
    owner = access_of(world.members["owner"])
    schedule.save(rbac, owner, interval_days=30)
    db.session.commit()
    schedule_row(world.ws).last_reviewed_at = utcnow() - dt.timedelta(days=5)
    db.session.commit()
    invoke(app, "review", "remind")
    assert sent == []  # reviewed 5 days ago, every 30 days: not due
    schedule_row(world.ws).last_reviewed_at = utcnow() - dt.timedelta(days=31)
    db.session.commit()
    invoke(app, "review", "remind")
    assert [c["workspace_id"] for c in sent] == [world.ws.id]


def test_a_rolled_back_reminder_records_nothing(world: SimpleNamespace, app: Flask) -> None:
    age_workspace(world.ws, 91)

    def boom(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("the receiver failed")

    review_due.connect(boom, app)
    try:
        with pytest.raises(RuntimeError):
            schedule.remind_workspace(rbac, world.ws.id)
        db.session.rollback()
    finally:
        review_due.disconnect(boom, app)
    row = schedule_row(world.ws)
    assert row is None or row.reminded_due_at is None


@pytest.mark.parametrize("row_exists", [False, True])
def test_two_reminders_at_once_send_one(world: SimpleNamespace, sent: list, app: Flask,
                                        backend: str, row_exists: bool) -> None:
    """Two cron runs racing: the schedule row's lock (or its unique workspace) lets one
    of them remind (on SQLite, in a database file: :func:`database_url`)."""
    age_workspace(world.ws2, 10)

    def slow(sender: Any, **kwargs: Any) -> None:
        time.sleep(0.2)  # the first run holds its lock while the second one waits

    review_due.connect(slow, app)
    for round_ in range(5):
        S = rbac.models.ReviewSchedule
        db.session.execute(sa.delete(S))
        if row_exists:
            db.session.add(S(workspace_id=world.ws.id, interval_days=90, require_reason=False))
        db.session.commit()
        age_workspace(world.ws, 91)
        barrier = threading.Barrier(2)
        errors: list[str] = []

        def run() -> None:
            with app.app_context(), rbac.system():
                barrier.wait()
                try:
                    schedule.remind(rbac)
                except Exception as exc:  # noqa: BLE001  (reported below)
                    errors.append(repr(exc))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(sent) == round_ + 1, (round_, row_exists)
    review_due.disconnect(slow, app)


@pytest.mark.parametrize("value", [0, 3651, -5, "ninety", 1.5, True, None])
def test_schedule_out_of_range_names_the_field(world: SimpleNamespace, value: Any) -> None:
    owner = access_of(world.members["owner"])
    with pytest.raises(ValidationError) as exc:
        schedule.save(rbac, owner, interval_days=value if value is not None else [])
    assert exc.value.field == "interval_days"
    db.session.rollback()
    assert schedule_row(world.ws) is None


def test_only_an_owner_changes_the_schedule(world: SimpleNamespace) -> None:
    with pytest.raises(PermissionDenied):
        schedule.save(rbac, access_of(world.members["admin"]), interval_days=30)
    db.session.rollback()
    assert schedule_row(world.ws) is None


# -- certification runs ----------------------------------------------------------------------


def item_of(run: Any, membership: Any) -> Any:
    return next(i for i in run.items if i.membership_id == membership.id)


def role_keys(membership: Any) -> set[str]:
    db.session.expire_all()
    return {mr.role.key for mr in db.session.get(type(membership), membership.id).member_roles}


def role_names(membership: Any) -> set[str]:
    db.session.expire_all()
    return {mr.role.name for mr in db.session.get(type(membership), membership.id).member_roles}


def test_a_run_lists_privileged_members_and_a_resources_viewers(world: SimpleNamespace) -> None:
    run = runs.start_run(rbac, access_of(world.members["admin"]), "deals")
    db.session.commit()
    listed = {i.membership_id: i.why for i in run.items}
    assert "privileged" in listed[world.members["owner"].id]
    assert "privileged" in listed[world.members["admin"].id]
    assert listed[world.members["member"].id] == "resource"
    assert listed[world.members["dual"].id] == "resource"  # a Viewer sees deals
    assert world.members["client_success"].id not in listed  # no access to deals
    assert run.started_by_membership_id == world.members["admin"].id and run.status == "open"


@pytest.mark.parametrize("condition", [{"networks": ["10.0.0.0/8"]},
                                       {"weekdays": ["sat"], "start": "00:00", "end": "00:01"}])
def test_a_run_lists_a_privileged_role_whatever_its_condition_holds_now(
        world: SimpleNamespace, condition: dict[str, Any]) -> None:
    """A condition limits when and where the Admin role applies; its holder holds it still,
    so a run started outside the window or off the network lists them all the same."""
    admin = world.members["admin"]
    roles.set_assignment_condition(rbac, access_of(world.members["owner"]),
                                   admin.member_roles[0], condition)
    db.session.commit()
    run = runs.start_run(rbac, access_of(world.members["owner"]), "")
    db.session.commit()
    item = item_of(run, admin)
    assert "privileged" in item.why and [r["role"] for r in item.roles] == ["Admin"]
    assert lines.pending_words(rbac, run) == []


def test_keep_and_revoke_through_the_role_service(world: SimpleNamespace) -> None:
    give_role(world.members["member"], custom_role(world, "Tasks only", [("tasks", "view", "own")]))
    db.session.commit()
    owner = access_of(world.members["owner"])
    run = runs.start_run(rbac, owner, "deals")
    db.session.commit()
    runs.decide(rbac, owner, item_of(run, world.members["admin"]), "keep")
    db.session.commit()
    runs.decide(rbac, owner, item_of(run, world.members["member"]), "revoke",
                "no longer sells")
    db.session.commit()
    assert role_names(world.members["member"]) == {"Tasks only"}
    assert role_keys(world.members["admin"]) == {"admin"}
    item = item_of(run, world.members["member"])
    assert item.decision == "revoke" and item.outcome.startswith("revoked")
    assert item.decided_by_membership_id == world.members["owner"].id and item.decided_at
    A = rbac.models.AuditEvent
    event = db.session.scalars(sa.select(A).where(A.action == "certification.revoked")).one()
    assert event.detail["reason"] == "no longer sells"
    assert any(c["action"] == "assignment.removed" for c in event.detail["changes"])


def test_a_revoke_of_the_last_owner_is_refused_and_reported(world: SimpleNamespace) -> None:
    """The workspace's only Owner: its own item is another reviewer's, and an Admin may not
    take the Owner role away (an Owner reviewing is never the last one: they hold it too).
    The item records the role service's refusal; nothing changes."""
    admin = access_of(world.members["admin"])
    run = runs.start_run(rbac, admin)
    db.session.commit()
    item = runs.decide(rbac, admin, item_of(run, world.members["owner"]), "revoke")
    db.session.commit()
    assert item.outcome.startswith("refused: ") and "Owner" in item.outcome
    assert "owner" in role_keys(world.members["owner"])


def test_a_revoke_that_would_leave_no_role_is_refused(world: SimpleNamespace) -> None:
    owner = access_of(world.members["owner"])
    run = runs.start_run(rbac, owner, "deals")
    db.session.commit()
    # The Member's only role is the one that grants deals: the one-role rule refuses.
    item = runs.decide(rbac, owner, item_of(run, world.members["member2"]), "revoke")
    db.session.commit()
    assert item.decision == "revoke" and item.outcome.startswith("refused: ")
    assert "would keep no role" in item.outcome
    assert role_keys(world.members["member2"]) == {"member"}
    A = rbac.models.AuditEvent
    assert db.session.scalar(sa.select(sa.func.count()).select_from(A).where(
        A.action == "certification.revoked")) == 0


def test_a_privileged_revoke_takes_the_privileged_roles(world: SimpleNamespace) -> None:
    admin = world.members["admin"]
    give_role(admin, workspaces.role_by_key(rbac, world.ws, "member"))
    db.session.commit()
    owner = access_of(world.members["owner"])
    run = runs.start_run(rbac, owner)
    db.session.commit()
    assert [r["role"] for r in item_of(run, admin).roles] == ["Admin"]
    runs.decide(rbac, owner, item_of(run, admin), "revoke", "moved to sales")
    db.session.commit()
    assert role_keys(admin) == {"member"}


def test_nobody_certifies_themselves_and_decisions_are_final(world: SimpleNamespace) -> None:
    owner, admin = access_of(world.members["owner"]), access_of(world.members["admin"])
    run = runs.start_run(rbac, admin)
    db.session.commit()
    with pytest.raises(PermissionDenied):
        runs.decide(rbac, admin, item_of(run, world.members["admin"]), "keep")
    db.session.rollback()
    runs.decide(rbac, owner, item_of(run, world.members["admin"]), "keep")
    db.session.commit()
    with pytest.raises(RuleConflict):
        runs.decide(rbac, owner, item_of(run, world.members["admin"]), "revoke")
    db.session.rollback()
    with pytest.raises(ValidationError) as exc:
        runs.decide(rbac, admin, item_of(run, world.members["owner"]), "maybe")
    assert exc.value.field == "decision"
    db.session.rollback()


def test_two_reviewers_deciding_one_item_at_once_decide_once(
        world: SimpleNamespace, app: Flask, backend: str) -> None:
    """The item's lock lets one decision through; the other is a 409 (on SQLite, in a
    database file: :func:`database_url`)."""
    workspaces.assign_role(rbac, world.members["manager"], workspaces.role_by_key(
        rbac, world.ws, "admin"))
    give_role(world.members["member"], custom_role(world, "Tasks only", [("tasks", "view", "own")]))
    db.session.commit()
    run = runs.start_run(rbac, access_of(world.members["owner"]), "deals")
    db.session.commit()
    target = item_of(run, world.members["member"]).id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(key: str, decision: str) -> None:
        with app.app_context():
            barrier.wait()
            reviewer = rbac.access_for(db.session.get(rbac.models.Membership,
                                                      world.members[key].id))
            item = db.session.get(rbac.models.CertificationItem, target)
            try:
                runs.decide(rbac, reviewer, item, decision)
                db.session.commit()
                outcomes.append("decided")
            except RuleConflict:
                db.session.rollback()
                outcomes.append("conflict")

    threads = [threading.Thread(target=decide, args=args)
               for args in (("admin", "revoke"), ("manager", "keep"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "decided"]
    db.session.expire_all()
    item = db.session.get(rbac.models.CertificationItem, target)
    assert item.outcome in ("kept",) or item.outcome.startswith("revoked")


def test_completing_needs_every_decision_and_sets_the_last_review(
        world: SimpleNamespace) -> None:
    owner, admin = access_of(world.members["owner"]), access_of(world.members["admin"])
    run = runs.start_run(rbac, admin)
    db.session.commit()
    with pytest.raises(RuleConflict) as exc:
        runs.complete_run(rbac, admin, run)
    assert exc.value.field == "items"
    db.session.rollback()
    for item in run.items:
        reviewer = owner if item.membership_id == admin.membership_id else admin
        runs.decide(rbac, reviewer, item, "keep")
        db.session.commit()
    runs.complete_run(rbac, admin, run)
    db.session.commit()
    assert run.status == "completed" and run.completed_by_membership_id == admin.membership_id
    assert schedule_row(world.ws).last_reviewed_at == run.completed_at
    with pytest.raises(RuleConflict):
        runs.decide(rbac, owner, run.items[0], "keep")
    db.session.rollback()


def test_only_reviewers_start_runs(world: SimpleNamespace) -> None:
    for key in ("member", "viewer", "manager"):
        with pytest.raises(PermissionDenied):
            runs.start_run(rbac, access_of(world.members[key]))
        db.session.rollback()
    with pytest.raises(ValidationError) as exc:
        runs.start_run(rbac, access_of(world.members["owner"]), "no_such_thing")
    assert exc.value.field == "resource"
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        rbac.models.CertificationRun)) == 0


# -- the report ------------------------------------------------------------------------------


def test_report_csv_neutralises_formulas(world: SimpleNamespace) -> None:
    world.users["member"].name = "=HYPERLINK(\"http://evil.test\",\"x\")"
    db.session.commit()
    owner = access_of(world.members["owner"])
    run = runs.start_run(rbac, owner, "deals")
    db.session.commit()
    runs.decide(rbac, owner, item_of(run, world.members["member"]), "keep", "+cmd|' /C calc'!A0")
    db.session.commit()
    text = report.to_csv(report.build(rbac, run))
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert cells, text
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@")), cell
    assert any("HYPERLINK" in c for c in cells) and any("calc" in c for c in cells)
    titles = [s.title for s in report.build(rbac, run)]
    assert titles[1:] == ["Members and decisions", "Permission changes during the run",
                          "Open alerts"]


def test_report_lists_the_workspaces_unresolved_alerts(world: SimpleNamespace) -> None:
    """Open and acknowledged alerts of the run's workspace; not resolved ones, not others'."""
    A = rbac.models.Alert

    def alert(ws: int, status: str, summary: str) -> None:
        db.session.add(A(workspace_id=ws, rule="refusals", severity="medium", status=status,
                         summary=summary))
    alert(world.ws.id, "open", "=1+1 refusals by Member")
    alert(world.ws.id, "acknowledged", "Export volume by Manager")
    alert(world.ws.id, "resolved", "Mass deletion, settled")
    alert(world.ws2.id, "open", "Another workspace's alert")
    owner = access_of(world.members["owner"])
    run = runs.start_run(rbac, owner, "deals")
    db.session.commit()
    section = report.build(rbac, run)[-1]
    assert section.key == "alerts"
    assert sorted(row[4] for row in section.rows) == ["=1+1 refusals by Member",
                                                      "Export volume by Manager"]
    cells = [c for row in csv.reader(io.StringIO(report.to_csv([section]))) for c in row]
    assert any("=1+1 refusals" in c for c in cells)
    assert not any(c.startswith("=") for c in cells)


# -- the CLI ---------------------------------------------------------------------------------


def test_review_commands(app: Flask, world: SimpleNamespace) -> None:
    give_role(world.members["member"], custom_role(world, "Tasks only", [("tasks", "view", "own")]))
    db.session.commit()
    ws = ["--workspace", "acme"]
    bad = invoke(app, "review", "schedule", *ws, "--as", "owner@example.test", "--every", "0")
    assert bad.exit_code != 0 and "interval_days" in bad.output
    refused = invoke(app, "review", "schedule", *ws, "--as", "admin@example.test", "--every", "9")
    assert refused.exit_code != 0 and "Owner" in refused.output
    saved = invoke(app, "review", "schedule", *ws, "--as", "owner@example.test", "--every", "30",
                   "--require-reason")
    assert saved.exit_code == 0 and "interval_days: 90 -> 30" in saved.output, saved.output
    assert invoke(app, "review", "start", *ws, "--as", "member@example.test").exit_code != 0
    started = invoke(app, "review", "start", *ws, "--as", "admin@example.test",
                     "--resource", "deals")
    assert started.exit_code == 0, started.output
    run_id = db.session.scalar(sa.select(sa.func.max(rbac.models.CertificationRun.id)))
    listed = invoke(app, "review", "runs", *ws)
    assert f"#{run_id}\topen" in listed.output
    run = ["--run", str(run_id)]
    own = invoke(app, "review", "decide", *ws, "--as", "admin@example.test", *run,
                 "--member", "admin@example.test", "--decision", "keep")
    assert own.exit_code != 0 and "your own access" in own.output
    revoked = invoke(app, "review", "decide", *ws, "--as", "admin@example.test", *run,
                     "--member", "member@example.test", "--decision", "revoke")
    assert revoked.exit_code == 0 and "revoked" in revoked.output, revoked.output
    assert role_names(world.members["member"]) == {"Tasks only"}
    assert invoke(app, "review", "complete", *ws, "--as", "admin@example.test", *run).exit_code != 0
    report_csv = invoke(app, "review", "report", *ws, *run)
    assert report_csv.exit_code == 0 and "Members and decisions" in report_csv.output
    assert "Certification run" in report_csv.output
    assert invoke(app, "review", "report", *ws, "--run", "999").exit_code != 0


def test_the_runs_command_names_changes_and_refresh_brings_them_in(
        app: Flask, world: SimpleNamespace) -> None:
    ws = ["--workspace", "acme"]
    assert invoke(app, "review", "start", *ws, "--as", "admin@example.test").exit_code == 0
    run_id = db.session.scalar(sa.select(sa.func.max(rbac.models.CertificationRun.id)))
    admin_role = db.session.scalar(sa.select(rbac.models.Role).where(
        rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == "admin"))
    roles.assign_role(rbac, access_of(world.members["owner"]), world.members["finance"],
                      admin_role)
    db.session.commit()
    Item = rbac.models.CertificationItem
    items = sa.select(sa.func.count()).where(Item.run_id == run_id)
    before = db.session.scalar(items)
    listed = invoke(app, "review", "runs", *ws)
    assert f"#{run_id}: changed since listed: Finance is listed now (Admin)" in listed.output
    db.session.expire_all()
    assert db.session.scalar(items) == before  # listing writes nothing
    run = ["--run", str(run_id)]
    refused = invoke(app, "review", "refresh", *ws, "--as", "member@example.test", *run)
    assert refused.exit_code != 0 and db.session.scalar(items) == before, refused.output
    done = invoke(app, "review", "refresh", *ws, "--as", "admin@example.test", *run)
    assert done.exit_code == 0 and "refreshed: Finance is listed now (Admin)" in done.output
    db.session.expire_all()
    assert db.session.scalar(items) == before + 1
    assert "changed since listed" not in invoke(app, "review", "runs", *ws).output
    assert invoke(app, "review", "refresh", *ws, "--as", "admin@example.test",
                  "--run", "999").exit_code != 0
