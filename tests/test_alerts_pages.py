"""The Alerts page, the alert API and ``flask rbac alerts``: who sees what, status changes,
threshold edits with field-named 400s, nothing saved on a refusal."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from tests.test_api import Api


def raise_alert(ws_id: int, membership_id: int, rule: str = "export_volume",
                severity: str = "high") -> Any:
    alert = rbac.models.Alert(workspace_id=ws_id, rule=rule, severity=severity, status="open",
                              membership_id=membership_id, summary=f"Test alert {rule}")
    db.session.add(alert)
    db.session.commit()
    return alert


@pytest.fixture
def seeded(world: SimpleNamespace) -> SimpleNamespace:
    world.alert = raise_alert(world.ws.id, world.members["member"].id)
    world.low = raise_alert(world.ws.id, world.members["member2"].id, "off_hours", "low")
    world.foreign = raise_alert(world.ws2.id, None, "refusals", "medium")
    return world


def api_of(app: Flask, membership: Any) -> Api:
    _, plaintext = tokens.create_token(rbac, membership, "alerts test")
    db.session.commit()
    return Api(app, plaintext)


def audit_actions(prefix: str) -> list[str]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A.action).where(A.action.startswith(prefix))
                                   .order_by(A.id)))


# -- the page -----------------------------------------------------------------------------------


def test_page_lists_filters_and_is_only_for_owners_and_admins(
        app: Flask, seeded: SimpleNamespace, login: Any) -> None:
    w = seeded
    owner = login(w.users["owner"], w.ws)
    page = owner.get("/settings/alerts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Test alert export_volume" in html and "Test alert off_hours" in html
    assert "Test alert refusals" not in html  # another workspace's
    assert 'action="/settings/alerts/settings"' in html  # Owners edit the thresholds
    high = owner.get("/settings/alerts?severity=high").get_data(as_text=True)
    assert "Test alert export_volume" in high and "Test alert off_hours" not in high
    assert owner.get("/settings/alerts?status=bogus").status_code == 400
    admin = login(w.users["admin"], w.ws).get("/settings/alerts")
    assert admin.status_code == 200
    html = admin.get_data(as_text=True)
    assert "Test alert export_volume" in html and "Only an Owner can change" in html
    assert 'action="/settings/alerts/settings"' not in html
    for key in ("member", "manager", "viewer", "finance"):
        client = login(w.users[key], w.ws)
        assert client.get("/settings/alerts").status_code == 403
        assert client.post("/settings/alerts/acknowledge",
                           data={"alert_id": w.alert.id}).status_code == 403
    db.session.expire_all()
    assert db.session.get(rbac.models.Alert, w.alert.id).status == "open"


def test_page_acknowledges_and_resolves_with_audit(app: Flask, seeded: SimpleNamespace,
                                                   login: Any) -> None:
    w = seeded
    admin = login(w.users["admin"], w.ws)
    done = admin.post("/settings/alerts/acknowledge", data={"alert_id": w.alert.id})
    assert done.status_code == 302
    db.session.expire_all()
    alert = db.session.get(rbac.models.Alert, w.alert.id)
    assert alert.status == "acknowledged" and alert.acknowledged_by_id == w.members["admin"].id
    again = admin.post("/settings/alerts/acknowledge", data={"alert_id": w.alert.id})
    assert again.status_code == 409
    assert admin.post("/settings/alerts/resolve", data={"alert_id": w.alert.id}).status_code == 302
    db.session.expire_all()
    alert = db.session.get(rbac.models.Alert, w.alert.id)
    assert alert.status == "resolved" and alert.resolved_at is not None
    assert admin.post("/settings/alerts/resolve",
                      data={"alert_id": w.foreign.id}).status_code == 404
    assert admin.post("/settings/alerts/resolve", data={"alert_id": "x"}).status_code == 400
    assert audit_actions("alert.") == ["alert.acknowledged", "alert.resolved"]
    db.session.expire_all()
    assert db.session.get(rbac.models.Alert, w.foreign.id).status == "open"


def test_page_saves_thresholds_and_names_the_bad_field(app: Flask, world: SimpleNamespace,
                                                       login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    form = {"export_rows_per_hour": "300", "refusals_per_10_minutes": "20",
            "deletions_per_hour": "200", "new_address_days": "90",
            "business_days": ["mon", "tue"], "business_start_hour": "8",
            "business_end_hour": "18", "timezone": "Europe/Paris"}
    assert owner.post("/settings/alerts/settings", data=form).status_code == 302
    bad = owner.post("/settings/alerts/settings", data={**form, "business_end_hour": "25",
                                                        "export_rows_per_hour": "1"})
    assert bad.status_code == 400
    assert "must be from 1 to 24" in bad.get_data(as_text=True)
    tz = owner.post("/settings/alerts/settings", data={**form, "timezone": "Nowhere/Land"})
    assert tz.status_code == 400 and "not a known time zone" in tz.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.scalar(sa.select(rbac.models.AlertSettings))
    assert (row.export_rows_per_hour, row.business_days, row.business_end_hour) == (300, "01", 18)
    assert db.session.get(rbac.models.Workspace, world.ws.id).timezone == "Europe/Paris"
    admin = login(world.users["admin"], world.ws)
    assert admin.post("/settings/alerts/settings", data=form).status_code == 403


# -- the API ------------------------------------------------------------------------------------


def test_api_lists_and_moves_alerts(app: Flask, seeded: SimpleNamespace) -> None:
    w = seeded
    admin = api_of(app, w.members["admin"])
    listed = admin.get("/alerts?status=open")
    assert listed.status_code == 200
    assert {a["id"] for a in listed.json["alerts"]} == {w.alert.id, w.low.id}
    assert admin.get("/alerts?severity=extreme").json["field"] == "severity"
    done = admin.post("/alerts/acknowledge", {"alert_id": w.alert.id})
    assert done.status_code == 200 and done.json["alert"]["status"] == "acknowledged"
    conflict = admin.post("/alerts/acknowledge", {"alert_id": w.alert.id})
    assert conflict.status_code == 409 and conflict.json["error"] == "conflict"
    assert admin.post("/alerts/resolve", {"alert_id": w.foreign.id}).status_code == 404
    assert admin.post("/alerts/resolve", {"alert_id": "1"}).json["field"] == "alert_id"
    assert admin.post("/alerts/resolve", {"alert_id": w.low.id}).json["alert"]["status"] == (
        "resolved")
    member = api_of(app, w.members["member"])
    assert member.get("/alerts").status_code == 403
    assert member.post("/alerts/resolve", {"alert_id": w.alert.id}).status_code == 403
    assert member.get("/alert-settings").status_code == 403


@pytest.mark.parametrize(("body", "field"), [
    ({"export_rows_per_hour": 0}, "export_rows_per_hour"),
    ({"refusals_per_10_minutes": 100001}, "refusals_per_10_minutes"),
    ({"business_days": ["someday"]}, "business_days"),
    ({"business_start_hour": 12, "business_end_hour": 12}, "business_end_hour"),
    ({"timezone": "Atlantis/Capital"}, "timezone"),
    ({"colour": "red"}, "colour"),
    ({"deletions_per_hour": 50, "reason": 7}, "reason"),
])
def test_api_thresholds_out_of_range_are_a_400_naming_the_field(
        app: Flask, world: SimpleNamespace, body: dict[str, Any], field: str) -> None:
    owner = api_of(app, world.members["owner"])
    response = owner.patch("/alert-settings", body)
    assert response.status_code == 400
    assert response.json["field"] == field and response.json["error"] == "validation_error"
    assert db.session.scalar(sa.select(sa.func.count(rbac.models.AlertSettings.id))) == 0
    assert owner.get("/alert-settings").json["settings"]["timezone"] == "UTC"


def test_api_changes_thresholds_owner_only(app: Flask, world: SimpleNamespace) -> None:
    owner = api_of(app, world.members["owner"])
    done = owner.patch("/alert-settings", {"deletions_per_hour": 50,
                                           "business_days": ["mon", "fri"]})
    assert done.status_code == 200
    assert done.json["settings"]["deletions_per_hour"] == 50
    assert done.json["settings"]["business_days"] == ["mon", "fri"]
    assert done.json["changes"]["deletions_per_hour"][1] == 50
    admin = api_of(app, world.members["admin"])
    assert admin.get("/alert-settings").status_code == 200
    assert admin.patch("/alert-settings", {"deletions_per_hour": 5}).status_code == 403
    assert audit_actions("alert_settings.") == ["alert_settings.changed"]
    # A reason is taken as by every other write, not refused as an unknown setting.
    again = owner.patch("/alert-settings", {"deletions_per_hour": 60, "reason": "quieter"})
    assert again.status_code == 200 and again.json["settings"]["deletions_per_hour"] == 60
    assert "reason" not in again.json["changes"]


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_lists_acknowledges_and_sets(app: Flask, seeded: SimpleNamespace) -> None:
    w = seeded
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["rbac", "alerts", "list", "--workspace", "acme",
                                 "--severity", "high"])
    assert listed.exit_code == 0, listed.output
    assert "Test alert export_volume" in listed.output and "off_hours" not in listed.output
    bad = runner.invoke(args=["rbac", "alerts", "list", "--workspace", "acme",
                              "--status", "closed"])
    assert bad.exit_code != 0 and "status" in bad.output
    ack = runner.invoke(args=["rbac", "alerts", "ack", str(w.alert.id), "--workspace", "acme",
                              "--as", "admin@example.test"])
    assert ack.exit_code == 0 and "acknowledged" in ack.output
    refused = runner.invoke(args=["rbac", "alerts", "resolve", str(w.alert.id),
                                  "--workspace", "acme", "--as", "member@example.test"])
    assert refused.exit_code != 0 and "Only Owners and Admins" in refused.output
    foreign = runner.invoke(args=["rbac", "alerts", "resolve", str(w.foreign.id),
                                  "--workspace", "acme", "--as", "admin@example.test"])
    assert foreign.exit_code != 0 and "No alert with that id" in foreign.output
    out_of_range = runner.invoke(args=["rbac", "alerts", "set", "--workspace", "acme", "--as",
                                       "owner@example.test", "business_start_hour=30"])
    assert out_of_range.exit_code != 0 and "business_start_hour" in out_of_range.output
    done = runner.invoke(args=["rbac", "alerts", "set", "--workspace", "acme", "--as",
                               "owner@example.test", "business_days=mon,tue",
                               "timezone=Asia/Tokyo"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(args=["rbac", "alerts", "settings", "--workspace", "acme"])
    assert "Asia/Tokyo" in shown.output and "mon,tue" in shown.output
    assert runner.invoke(args=["rbac", "alerts", "prune"]).exit_code == 0


def test_the_member_an_alert_is_about_cannot_acknowledge_or_resolve_it(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    w = world
    mine = raise_alert(w.ws.id, w.members["admin"].id, "refusals", "medium")
    page = login(w.users["admin"], w.ws)
    api = api_of(app, w.members["admin"])
    runner = app.test_cli_runner()
    for action in ("acknowledge", "resolve"):
        refused = page.post(f"/settings/alerts/{action}", data={"alert_id": mine.id})
        assert refused.status_code == 403 and "about yourself" in refused.get_data(as_text=True)
        answer = api.post(f"/alerts/{action}", {"alert_id": mine.id})
        assert answer.status_code == 403 and "about yourself" in answer.json["message"]
    for verb in ("ack", "resolve"):
        out = runner.invoke(args=["rbac", "alerts", verb, str(mine.id), "--workspace", "acme",
                                  "--as", "admin@example.test"])
        assert out.exit_code != 0 and "about yourself" in out.output
    db.session.expire_all()
    alert = db.session.get(rbac.models.Alert, mine.id)
    assert (alert.status, alert.acknowledged_by_id, alert.resolved_by_id) == ("open", None, None)
    assert audit_actions("alert.") == []
    owner = login(w.users["owner"], w.ws)
    assert owner.post("/settings/alerts/resolve", data={"alert_id": mine.id}).status_code == 302
    db.session.expire_all()
    assert db.session.get(rbac.models.Alert, mine.id).status == "resolved"


def test_the_member_who_gave_a_privilege_cannot_close_its_alert(
        app: Flask, world: SimpleNamespace) -> None:
    """A privilege alert is about the grantor's act as much as the grantee: the Owner who
    gave Admin neither acknowledges nor resolves it; another Owner or Admin does."""
    w = world
    R = rbac.models.Role
    admin_role = db.session.scalars(sa.select(R).where(R.workspace_id == w.ws.id,
                                                       R.key == "admin")).one()
    owner = api_of(app, w.members["owner"])
    given = owner.post(f"/members/{w.members['viewer'].id}/roles", {"role_id": admin_role.id})
    assert given.status_code == 201, given.json
    A = rbac.models.Alert
    alert = db.session.scalars(sa.select(A).where(A.rule == "privilege",
                                                  A.workspace_id == w.ws.id)).one()
    assert alert.detail["by_membership_id"] == w.members["owner"].id
    for action in ("acknowledge", "resolve"):
        answer = owner.post(f"/alerts/{action}", {"alert_id": alert.id})
        assert answer.status_code == 403 and "a change you made" in answer.json["message"]
    db.session.expire_all()
    assert db.session.get(A, alert.id).status == "open"
    assert api_of(app, w.members["admin"]).post(
        "/alerts/resolve", {"alert_id": alert.id}).status_code == 200
