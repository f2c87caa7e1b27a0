"""Alert rules: each fires at its threshold and not below, once per window, on counters.

Every test runs on SQLite and PostgreSQL. The clock is the events' own
(``AuditEvent.at``), set by the ``clock`` fixture, so windows and business
hours are tested at chosen instants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import alerts, roles, signals
from crm_rbac_plugin.alerts import engine
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.roles.grants import GrantSpec, specs_of
from tests.rbac_helpers import access_of

#: A Monday.
MONDAY = dt.datetime(2026, 1, 5, 12, 0)


class Clock:
    """A settable naive-UTC clock for the audit trail and the alert engine."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(MONDAY)
    for module in ("crm_rbac_plugin.audit.events", "crm_rbac_plugin.audit.refusals",
                   "crm_rbac_plugin.alerts.engine"):
        monkeypatch.setattr(f"{module}.utcnow", c)
    return c


@pytest.fixture
def raised() -> Iterator[list[dict[str, Any]]]:
    """Every ``alert_raised`` signal sent, with its arguments."""
    sent: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        sent.append(kwargs)

    signals.alert_raised.connect(receiver)
    yield sent
    signals.alert_raised.disconnect(receiver)


def set_thresholds(world: SimpleNamespace, **changes: Any) -> None:
    alerts.save(rbac, access_of(world.members["owner"]), changes)
    db.session.commit()


def stored_alerts(rule: str | None = None) -> list[Any]:
    A = rbac.models.Alert
    stmt = sa.select(A).order_by(A.id)
    if rule:
        stmt = stmt.where(A.rule == rule)
    return list(db.session.scalars(stmt))


def export(member: Any, rows: int) -> None:
    with rbac.as_member(member):
        rbac.audit_export("leads", {member.workspace_id: rows}, target=f"leads ({rows} rows)")
    db.session.commit()


# -- export volume ------------------------------------------------------------------------------


def test_export_volume_fires_at_its_threshold_once_per_hour(
        app: Flask, world: SimpleNamespace, clock: Clock, raised: list[dict[str, Any]]) -> None:
    set_thresholds(world, export_rows_per_hour=100)
    member = world.members["member"]
    export(member, 60)
    clock.advance(minutes=30)
    export(member, 39)
    assert stored_alerts("export_volume") == []
    export(member, 1)  # 100: the threshold
    found = stored_alerts("export_volume")
    assert len(found) == 1
    alert = found[0]
    assert (alert.severity, alert.status, alert.membership_id) == ("high", "open", member.id)
    assert alert.workspace_id == world.ws.id and "member@example.test" in alert.summary
    export(member, 500)  # past the threshold, same window: no second alert
    assert len(stored_alerts("export_volume")) == 1
    clock.advance(hours=1)
    export(member, 99)
    assert len(stored_alerts("export_volume")) == 1
    export(member, 1)
    assert len(stored_alerts("export_volume")) == 2
    # Another member's exports count on their own counter.
    export(world.members["member2"], 99)
    assert len(stored_alerts("export_volume")) == 2
    assert [s["alert"].rule for s in raised] == ["export_volume", "export_volume"]


def test_counters_not_scans(app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    """An audited export costs the thresholds read and one counter upsert: no statement
    reads the audit trail, however long it is."""
    set_thresholds(world, export_rows_per_hour=100)
    member = world.members["member"]
    export(member, 10)  # warm up: the counter row exists
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        export(member, 10)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    reads_of_trail = [s for s in statements if s.upper().startswith("SELECT")
                      and "rbac_audit_event" in s]
    assert reads_of_trail == []
    upserts = [s for s in statements if s.startswith("INSERT INTO rbac_alert_counter")]
    assert len(upserts) == 1 and "ON CONFLICT" in upserts[0]
    settings_reads = [s for s in statements if "rbac_alert_settings" in s]
    assert len(settings_reads) == 1
    counter = db.session.scalar(sa.select(rbac.models.AlertCounter).where(
        rbac.models.AlertCounter.rule == "export_volume"))
    assert counter.count == 20 and counter.mark is None


def test_alerts_off_evaluates_nothing(app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    app.config["RBAC_ALERTS"] = False
    set_thresholds(world, export_rows_per_hour=1)
    export(world.members["member"], 10)
    assert stored_alerts() == []
    assert db.session.scalar(sa.select(sa.func.count(rbac.models.AlertCounter.id))) == 0


# -- refusals -----------------------------------------------------------------------------------


def test_refusals_fire_at_their_threshold_per_10_minutes(
        app: Flask, world: SimpleNamespace, login: Any, clock: Clock) -> None:
    set_thresholds(world, refusals_per_10_minutes=3)
    client = login(world.users["member"], world.ws)
    clock.now = MONDAY.replace(minute=1)
    for _ in range(2):
        assert client.get("/settings/security").status_code == 403
    assert stored_alerts("refusals") == []
    clock.now = MONDAY.replace(minute=11)  # a new window: the count starts again
    for _ in range(2):
        client.get("/settings/security")
    assert stored_alerts("refusals") == []
    client.get("/settings/security")
    found = stored_alerts("refusals")
    assert len(found) == 1 and found[0].membership_id == world.members["member"].id
    assert found[0].severity == "medium"
    client.get("/settings/security")
    assert len(stored_alerts("refusals")) == 1


# -- sign-in from a new address -----------------------------------------------------------------


def sign_in(user: Any, ip: str) -> None:
    rbac.auth.succeeded(user, ip=ip)


def test_new_address_fires_for_an_address_unseen_for_90_days(
        app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    user = world.users["member"]
    sign_in(user, "203.0.113.1")  # the first sign-in: nothing to compare with
    assert stored_alerts("new_address") == []
    sign_in(user, "203.0.113.1")
    assert stored_alerts("new_address") == []
    clock.advance(days=1)
    sign_in(user, "198.51.100.7")
    found = stored_alerts("new_address")
    assert len(found) == 1 and "198.51.100.7" in found[0].summary
    sign_in(user, "198.51.100.7")  # seen now
    assert len(stored_alerts("new_address")) == 1
    clock.advance(days=90)  # 203.0.113.1 last seen 91 days ago
    sign_in(user, "198.51.100.7")
    assert len(stored_alerts("new_address")) == 1
    clock.advance(days=-1)
    sign_in(user, "203.0.113.1")  # last seen 90 days before: still within 90 days
    assert len(stored_alerts("new_address")) == 1
    clock.advance(days=91)
    sign_in(user, "203.0.113.1")  # unseen for 91 days
    assert len(stored_alerts("new_address")) == 2


# -- business hours -----------------------------------------------------------------------------


def act(member: Any) -> None:
    """Something audited by ``member`` (an export of one row)."""
    export(member, 1)


def test_business_hours_in_the_workspace_time_zone(
        app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    set_thresholds(world, business_days=["mon", "tue", "wed", "thu", "fri"],
                   business_start_hour=9, business_end_hour=17, timezone="America/New_York")
    member = world.members["member"]
    clock.now = dt.datetime(2026, 1, 5, 14, 30)  # Monday 09:30 in New York (UTC-5)
    act(member)
    clock.now = dt.datetime(2026, 1, 5, 21, 59)  # 16:59 there
    act(member)
    assert stored_alerts("off_hours") == []
    clock.now = dt.datetime(2026, 1, 5, 13, 59)  # 08:59 there: within UTC's office hours
    act(member)
    assert len(stored_alerts("off_hours")) == 1
    clock.now = dt.datetime(2026, 1, 5, 23, 0)  # 18:00 the same local day: no second alert
    act(member)
    assert len(stored_alerts("off_hours")) == 1
    clock.now = dt.datetime(2026, 1, 6, 3, 0)  # Tuesday in UTC, still Monday 22:00 there
    act(member)
    assert len(stored_alerts("off_hours")) == 1
    clock.now = dt.datetime(2026, 1, 6, 5, 0)  # Tuesday 00:00 there: a new day
    act(member)
    assert len(stored_alerts("off_hours")) == 2
    clock.now = dt.datetime(2026, 1, 10, 15, 0)  # Saturday 10:00 there
    act(member)
    found = stored_alerts("off_hours")
    assert len(found) == 3 and found[-1].severity == "low" and "Sat 10:00" in found[-1].summary


def test_no_business_days_means_the_off_hours_rule_is_off(
        app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    clock.now = dt.datetime(2026, 1, 10, 3, 0)  # Saturday night
    act(world.members["member"])
    assert stored_alerts("off_hours") == []


# -- privilege increases ------------------------------------------------------------------------


def test_privileged_role_and_widened_held_role(
        app: Flask, world: SimpleNamespace, clock: Clock, raised: list[dict[str, Any]]) -> None:
    owner = access_of(world.members["owner"])
    R = rbac.models.Role
    ws_roles = {r.key: r for r in db.session.scalars(sa.select(R).where(
        R.workspace_id == world.ws.id))}
    viewer = world.members["viewer"]
    roles.assign_role(rbac, owner, viewer, ws_roles["finance"])
    db.session.commit()
    assert stored_alerts("privilege") == []  # not a privileged role, no grant widened
    roles.assign_role(rbac, owner, viewer, ws_roles["admin"])
    db.session.commit()
    found = stored_alerts("privilege")
    assert len(found) == 1
    assert (found[0].membership_id, found[0].severity) == (viewer.id, "high")
    assert "Admin" in found[0].summary
    # Widening a held role: leads.view from own to all on Member.
    member_role = ws_roles["member"]
    specs = [GrantSpec(s.resource, s.action, "all" if s.permission == "leads.view" else s.scope,
                       s.effect, s.condition) for s in specs_of(member_role)]
    with rbac.as_member(world.members["owner"]):  # as a page or the API runs it
        roles.update_role(rbac, owner, member_role, grants=specs)
        db.session.commit()
    found = stored_alerts("privilege")
    assert len(found) == 2 and found[1].severity == "medium"
    assert found[1].membership_id == world.members["owner"].id
    assert "leads.view (all)" in found[1].summary
    # Narrowing it back is no increase.
    roles.update_role(rbac, owner, member_role, grants=specs_of(member_role)[:1])
    db.session.commit()
    assert len(stored_alerts("privilege")) == 2
    assert [s["severity"] for s in raised] == ["high", "medium"]


def test_privilege_increases_through_departments_and_inheritance(
        app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    """A privileged role given to a department, a role held only through a department
    widened, and a held role re-parented: each is a privilege increase."""
    owner = access_of(world.members["owner"])
    R = rbac.models.Role
    ws_roles = {r.key: r for r in db.session.scalars(sa.select(R).where(
        R.workspace_id == world.ws.id))}
    support = world.departments["support"]
    with rbac.as_member(world.members["owner"]):
        roles.give_department_role(rbac, owner, support, ws_roles["admin"])
        db.session.commit()
    found = stored_alerts("privilege")
    assert len(found) == 1 and found[0].severity == "high"
    assert "Admin" in found[0].summary and "Support" in found[0].summary
    # A role nobody holds directly, held by the Sales department only.
    dept_only = roles.create_role(rbac, owner, name="Sales desk",
                                  grants=[GrantSpec("leads", "view", "own")])
    db.session.commit()
    roles.give_department_role(rbac, owner, world.departments["sales"], dept_only)
    db.session.commit()
    with rbac.as_member(world.members["owner"]):
        roles.update_role(rbac, owner, dept_only, grants=[GrantSpec("leads", "view", "all")])
        db.session.commit()
    found = stored_alerts("privilege")
    assert len(found) == 2 and "leads.view (all)" in found[1].summary
    with rbac.as_member(world.members["owner"]):
        roles.update_role(rbac, owner, dept_only, parent=ws_roles["manager"])
        db.session.commit()
    found = stored_alerts("privilege")
    assert len(found) == 3 and "inherits Manager" in found[2].summary


# -- mass deletion ------------------------------------------------------------------------------


def test_mass_deletion_counts_rows(app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    set_thresholds(world, deletions_per_hour=4)
    member = world.members["member"]
    with rbac.system():
        leads = [Lead(workspace_id=world.ws.id, owner_id=world.users["member"].id,
                      name=f"Doomed {i}") for i in range(6)]
        db.session.add_all(leads)
        db.session.commit()
        ids = [lead.id for lead in leads]
    with rbac.as_member(member):
        db.session.delete(db.session.get(Lead, ids[0]))
        db.session.commit()
        for i in ids[1:3]:  # a bulk delete of two rows: 3 in all
            db.session.delete(db.session.get(Lead, i))
        db.session.commit()
    assert stored_alerts("mass_deletion") == []
    with rbac.as_member(member):
        for i in ids[3:5]:  # 5: past the threshold of 4
            db.session.delete(db.session.get(Lead, i))
        db.session.commit()
        db.session.delete(db.session.get(Lead, ids[5]))
        db.session.commit()
    found = stored_alerts("mass_deletion")
    assert len(found) == 1 and found[0].membership_id == member.id
    assert found[0].severity == "high"


# -- the signal ---------------------------------------------------------------------------------


def test_signal_arguments_and_rollback(app: Flask, world: SimpleNamespace, clock: Clock,
                                       raised: list[dict[str, Any]]) -> None:
    set_thresholds(world, export_rows_per_hour=10)
    member = world.members["member"]
    with rbac.as_member(member):
        rbac.audit_export("leads", {member.workspace_id: 10}, target="leads")
    db.session.flush()
    assert len(raised) == 1
    sent = raised[0]
    alert = sent["alert"]
    assert alert.id is not None and sa.inspect(alert).session is db.session()
    expected = sorted([world.members["owner"].id, world.members["admin"].id])
    assert sent["recipients"] == expected
    assert sent["workspace_id"] == world.ws.id and sent["severity"] == "high"
    assert sent["summary"] == alert.summary
    assert sent["link"] == f"/settings/alerts?status=open#alert-{alert.id}"
    db.session.rollback()  # the user's change goes: the alert and the counter go with it
    assert stored_alerts() == []
    assert db.session.scalar(sa.select(sa.func.count(rbac.models.AlertCounter.id))) == 0


# -- thresholds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "field"), [
    ({"export_rows_per_hour": 0}, "export_rows_per_hour"),
    ({"export_rows_per_hour": "lots"}, "export_rows_per_hour"),
    ({"refusals_per_10_minutes": 10**9}, "refusals_per_10_minutes"),
    ({"deletions_per_hour": -1}, "deletions_per_hour"),
    ({"new_address_days": True}, "new_address_days"),
    ({"business_start_hour": 24}, "business_start_hour"),
    ({"business_end_hour": 0}, "business_end_hour"),
    ({"business_start_hour": 18, "business_end_hour": 9}, "business_end_hour"),
    ({"business_days": ["mon", "funday"]}, "business_days"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"nonsense": 1}, "nonsense"),
])
def test_thresholds_out_of_range_name_the_field(app: Flask, world: SimpleNamespace,
                                                changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        alerts.save(rbac, access_of(world.members["owner"]), changes)
    assert caught.value.field == field
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(rbac.models.AlertSettings.id))) == 0


def test_thresholds_defaults_and_overrides(app: Flask, world: SimpleNamespace) -> None:
    values = alerts.thresholds_for(rbac, world.ws.id)
    assert values.export_rows_per_hour == app.config["RBAC_ALERT_EXPORT_ROWS_PER_HOUR"]
    assert values.business_days == () and values.timezone == "UTC"
    changes = alerts.save(rbac, access_of(world.members["owner"]),
                          {"export_rows_per_hour": "250", "business_days": "mon,wed",
                           "timezone": "Europe/Paris"})
    db.session.commit()
    assert changes["export_rows_per_hour"] == [values.export_rows_per_hour, 250]
    values = alerts.thresholds_for(rbac, world.ws.id)
    assert (values.export_rows_per_hour, values.business_days, values.timezone) == (
        250, (0, 2), "Europe/Paris")
    assert alerts.thresholds_for(rbac, world.ws2.id).timezone == "UTC"
    A = rbac.models.AuditEvent
    event = db.session.scalar(sa.select(A).where(A.action == "alert_settings.changed"))
    assert event.detail["settings"]["timezone"] == ["UTC", "Europe/Paris"]
    assert alerts.save(rbac, access_of(world.members["owner"]), {"timezone": "Europe/Paris"}) == {}


def test_only_owners_change_thresholds(app: Flask, world: SimpleNamespace) -> None:
    from crm_rbac_plugin.errors import PermissionDenied
    with pytest.raises(PermissionDenied):
        alerts.save(rbac, access_of(world.members["admin"]), {"export_rows_per_hour": 5})


def test_prune_deletes_old_counters(app: Flask, world: SimpleNamespace, clock: Clock) -> None:
    export(world.members["member"], 1)
    clock.advance(days=3)
    export(world.members["member"], 1)
    assert engine.prune(rbac, clock.now - dt.timedelta(days=2)) == 1
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(rbac.models.AlertCounter.id))) == 1


def test_a_receiver_writes_into_the_alerts_session_on_the_refusal_path(
        app: Flask, world: SimpleNamespace, login: Any, clock: Clock) -> None:
    """Refusals are stored after the request in a session of their own: a receiver that
    writes into ``object_session(alert)`` commits with the alert."""
    set_thresholds(world, refusals_per_10_minutes=2)
    seen: list[bool] = []

    def receiver(sender: Any, alert: Any, **kwargs: Any) -> None:
        session = sa.orm.object_session(alert)
        seen.append(session is not db.session())
        session.add(rbac.models.Alert(workspace_id=alert.workspace_id, rule=alert.rule,
                                      severity="low", status="open",
                                      summary="written by a receiver"))

    signals.alert_raised.connect(receiver)
    try:
        client = login(world.users["member"], world.ws)
        for _ in range(2):
            assert client.get("/settings/security").status_code == 403
    finally:
        signals.alert_raised.disconnect(receiver)
    db.session.expire_all()
    assert seen == [True]
    assert [a.summary for a in stored_alerts("refusals")][-1] == "written by a receiver"
