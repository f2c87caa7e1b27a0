"""The access-review API: schedule, runs, decisions, report; who may do what. SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, tokens
from crm_rbac_plugin.certification import runs
from crm_rbac_plugin.errors import PermissionDenied
from tests.rbac_helpers import access_of, custom_role, give_role
from tests.security.conftest import snapshot_database, snapshot_diff
from tests.test_api import Api
from tests.test_mfa import enrolled_directly, set_check


def api_of(app: Flask, world: SimpleNamespace, key: str) -> Api:
    _, plaintext = tokens.create_token(rbac, world.members[key], f"reviews {key}")
    db.session.commit()
    return Api(app, plaintext)


def test_schedule_through_the_api(app: Flask, world: SimpleNamespace) -> None:
    owner, admin = api_of(app, world, "owner"), api_of(app, world, "admin")
    assert owner.get("/reviews/schedule").json["interval_days"] == 90
    for value in (0, 3651, "x", True, None):
        response = owner.patch("/reviews/schedule", {"interval_days": value})
        assert response.status_code == 400 and response.json["field"] == "interval_days", value
    assert owner.patch("/reviews/schedule", {"require_reason": "yes"}).json["field"] == \
        "require_reason"
    assert owner.patch("/reviews/schedule", {"every": 3}).status_code == 400
    assert admin.patch("/reviews/schedule", {"interval_days": 30}).status_code == 403
    assert db.session.scalar(sa.select(rbac.models.ReviewSchedule)) is None
    saved = owner.patch("/reviews/schedule", {"interval_days": 30})
    assert saved.status_code == 200 and saved.json["changes"] == {"interval_days": [90, 30]}
    assert admin.get("/reviews/schedule").json["interval_days"] == 30
    for key in ("member", "viewer", "manager"):
        assert api_of(app, world, key).get("/reviews/schedule").status_code == 403


def test_a_run_through_the_api(app: Flask, world: SimpleNamespace) -> None:
    give_role(world.members["member"], custom_role(world, "Tasks only", [("tasks", "view", "own")]))
    db.session.commit()
    owner, admin = api_of(app, world, "owner"), api_of(app, world, "admin")
    assert api_of(app, world, "member").post("/reviews/runs", {}).status_code == 403
    assert admin.post("/reviews/runs", {"resource": "nope"}).json["field"] == "resource"
    started = admin.post("/reviews/runs", {"resource": "deals"})
    assert started.status_code == 201, started.json
    run = started.json
    items = {i["membership_id"]: i for i in run["items"]}
    own = items[world.members["admin"].id]["id"]
    path = f"/reviews/runs/{run['id']}"
    assert admin.post(f"{path}/decisions", {"item_id": own, "decision": "keep"}).status_code == 403
    assert owner.post(f"{path}/decisions", {"item_id": own, "decision": "keep"}).status_code == 200
    assert owner.post(f"{path}/decisions", {"item_id": own, "decision": "revoke"}).status_code == 409
    assert admin.post(f"{path}/decisions", {"item_id": 10**6, "decision": "keep"}).status_code == 404
    refused = admin.post(f"{path}/decisions", {
        "item_id": items[world.members["owner"].id]["id"], "decision": "revoke"})
    assert refused.status_code == 200 and refused.json["outcome"].startswith("refused")
    revoked = admin.post(f"{path}/decisions", {
        "item_id": items[world.members["member"].id]["id"], "decision": "revoke",
        "reason": "=cmd"})
    assert revoked.status_code == 200 and revoked.json["outcome"].startswith("revoked")
    assert admin.post(f"{path}/complete").status_code == 409
    for item in admin.get(path).json["items"]:
        if item["decision"] is None:
            assert admin.post(f"{path}/decisions", {"item_id": item["id"],
                                                    "decision": "keep"}).status_code == 200
    done = admin.post(f"{path}/complete")
    assert done.status_code == 200 and done.json["status"] == "completed"
    assert owner.get("/reviews/schedule").json["last_reviewed_at"] is not None
    sections = admin.get(f"{path}/report").json["sections"]
    assert [s["key"] for s in sections] == ["run", "items", "changes", "alerts"]
    rows = list(csv.reader(io.StringIO(admin.get(f"{path}/report.csv").text)))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    # Another workspace's member sees none of it.
    other = Api(app, tokens.create_token(rbac, db.session.scalar(sa.select(
        rbac.models.Membership).where(rbac.models.Membership.workspace_id == world.ws2.id,
                                      rbac.models.Membership.user_id
                                      == world.users["dual"].id)), "other")[1])
    db.session.commit()
    for url in (path, f"{path}/report", f"{path}/report.csv"):
        assert other.get(url).status_code == 404, url
    assert other.post(f"{path}/complete").status_code == 404




def test_a_run_reviews_the_roles_in_force_now(app: Flask, world: SimpleNamespace) -> None:
    """Lines show department roles; a decision and the sign-off are about what was shown."""
    as_owner = access_of(world.members["owner"])
    people = roles.create_role(rbac, as_owner, name="People admin",
                               grants=roles.parse_grants(rbac, ["members.view", "members.manage"]))
    roles.give_department_role(rbac, as_owner, world.departments["support"], people)
    db.session.commit()
    owner, admin = api_of(app, world, "owner"), api_of(app, world, "admin")
    run = admin.post("/reviews/runs", {}).json
    path = path_of(run)
    items = {i["membership_id"]: i for i in run["items"]}
    viewer, finance, cs = (world.members[k] for k in ("viewer", "finance", "client_success"))
    assert items[viewer.id]["roles"] == [{
        "source": "department", "department_role_id": items[viewer.id]["roles"][0][
            "department_role_id"], "role_id": people.id, "role": "People admin",
        "department_id": world.departments["support"].id, "department": "Support"}]
    # A revoke cannot take a department's role from one member: a 409 saying how.
    before = snapshot_database()
    r = admin.post(f"{path}/decisions", {"item_id": items[viewer.id]["id"], "decision": "revoke"})
    assert r.status_code == 409 and "via department Support" in r.json["message"], r.json
    assert "Take the role away from the department" in r.json["message"]
    assert snapshot_diff(before, snapshot_database()) == []
    for item in run["items"]:
        client = owner if item["membership_id"] == world.members["admin"].id else admin
        assert client.post(f"{path}/decisions", {"item_id": item["id"], "decision": "keep"}
                           ).status_code == 200, item
    # Roles given after the run started: the run is not completed until it shows them.
    roles.assign_role(rbac, as_owner, finance, roles_named(world, "Admin"))
    roles.assign_role(rbac, as_owner, cs, roles_named(world, "Admin"))
    db.session.commit()
    r = admin.post(f"{path}/complete")
    assert r.status_code == 409 and "Finance is listed now (Admin)" in r.json["message"], r.json
    assert "Client Success gained Admin" in r.json["message"]
    # Reading the run names what its lines do not show yet and writes nothing.
    before = snapshot_database()
    shown = admin.get(path).json
    assert snapshot_diff(before, snapshot_database()) == []
    assert "Finance is listed now (Admin)" in shown["pending_changes"], shown
    assert finance.id not in {i["membership_id"] for i in shown["items"]}
    refreshed = admin.post(f"{path}/refresh")
    assert refreshed.status_code == 200, refreshed.json
    assert "Finance is listed now (Admin)" in refreshed.json["refreshed"]
    assert refreshed.json["pending_changes"] == []
    fresh = {(i["membership_id"], i["decision"]): i for i in refreshed.json["items"]}
    assert [e["role"] for e in fresh[(finance.id, None)]["roles"]] == ["Admin"]
    assert {e["role"] for e in fresh[(cs.id, None)]["roles"]} == {"Admin", "People admin"}
    # A line whose roles changed since it was listed is not certified unseen.
    roles.give_department_role(rbac, as_owner, world.departments["sales"], people)
    roles.assign_role(rbac, as_owner, finance, people)
    db.session.commit()
    r = admin.post(f"{path}/decisions", {"item_id": fresh[(finance.id, None)]["id"],
                                         "decision": "keep"})
    assert r.status_code == 409 and "Finance's roles changed" in r.json["message"], r.json
    assert "gained People admin" in r.json["message"]
    assert admin.post(f"{path}/refresh").status_code == 200
    for item in admin.get(path).json["items"]:
        if item["decision"] is None:
            client = owner if item["membership_id"] == world.members["admin"].id else admin
            r = client.post(f"{path}/decisions", {"item_id": item["id"], "decision": "keep"})
            assert r.status_code == 200, (item, r.json)
    done = admin.post(f"{path}/complete")
    assert done.status_code == 200 and done.json["status"] == "completed", done.json


def path_of(run: dict[str, Any]) -> str:
    return f"/reviews/runs/{run['id']}"


def roles_named(world: SimpleNamespace, name: str) -> Any:
    Role = rbac.models.Role
    return db.session.scalar(sa.select(Role).where(Role.workspace_id == world.ws.id,
                                                   Role.name == name))


def test_a_role_given_after_the_start_is_reviewed_before_completion(
        app: Flask, world: SimpleNamespace) -> None:
    owner, admin = api_of(app, world, "owner"), api_of(app, world, "admin")
    run = admin.post("/reviews/runs", {}).json
    path = path_of(run)
    finance = world.members["finance"]
    assert finance.id not in {i["membership_id"] for i in run["items"]}
    roles.assign_role(rbac, access_of(world.members["owner"]), finance, roles_named(world, "Admin"))
    db.session.commit()
    for item in run["items"]:  # the lines as listed at the start, decided unseen
        client = owner if item["membership_id"] == world.members["admin"].id else admin
        assert client.post(f"{path}/decisions", {"item_id": item["id"], "decision": "keep"}
                           ).status_code == 200, item
    r = admin.post(f"{path}/complete")
    assert r.status_code == 409 and "Finance is listed now (Admin)" in r.json["message"], r.json
    assert "Refresh the run's lines" in r.json["message"]
    assert admin.post(f"{path}/refresh").json["refreshed"] == ["Finance is listed now (Admin)"]
    line = next(i for i in admin.get(path).json["items"] if i["membership_id"] == finance.id)
    assert line["decision"] is None and [e["role"] for e in line["roles"]] == ["Admin"]
    assert admin.post(f"{path}/decisions", {"item_id": line["id"], "decision": "keep"}
                      ).status_code == 200
    assert admin.post(f"{path}/complete").status_code == 200


def test_a_refresh_is_a_reviewers_step_audited_and_a_completed_run_keeps_its_lines(
        app: Flask, world: SimpleNamespace) -> None:
    owner, admin = api_of(app, world, "owner"), api_of(app, world, "admin")
    run = admin.post("/reviews/runs", {}).json
    path = path_of(run)
    assert admin.post(f"{path}/refresh").json["refreshed"] == []  # nothing changed: no event
    A = rbac.models.AuditEvent
    refreshed_events = sa.select(sa.func.count()).where(A.action == "certification.refreshed")
    assert db.session.scalar(refreshed_events) == 0
    roles.assign_role(rbac, access_of(world.members["owner"]), world.members["finance"],
                      roles_named(world, "Admin"))
    db.session.commit()
    assert api_of(app, world, "member").post(f"{path}/refresh").status_code == 403
    assert admin.post("/reviews/runs/999999/refresh").status_code == 404
    r = admin.post(f"{path}/refresh")
    assert r.status_code == 200 and r.json["refreshed"] == ["Finance is listed now (Admin)"]
    event = db.session.scalars(sa.select(A).where(A.action == "certification.refreshed")).one()
    assert event.detail["changes"] == ["Finance is listed now (Admin)"]
    assert event.actor_membership_id == world.members["admin"].id
    for item in admin.get(path).json["items"]:
        client = owner if item["membership_id"] == world.members["admin"].id else admin
        assert client.post(f"{path}/decisions", {"item_id": item["id"], "decision": "keep"}
                           ).status_code == 200, item
    assert admin.post(f"{path}/complete").status_code == 200
    roles.assign_role(rbac, access_of(world.members["owner"]), world.members["client_success"],
                      roles_named(world, "Admin"))
    db.session.commit()
    completed = admin.get(path).json
    assert completed["pending_changes"] == []
    before = snapshot_database()
    r = admin.post(f"{path}/refresh")
    assert r.status_code == 409 and r.json["field"] == "run", r.json
    assert snapshot_diff(before, snapshot_database()) == []


def test_the_schedule_asks_the_api_for_the_pages_recent_mfa_check(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """An enrolled Owner whose check is stale is sent to verify by the page; the API
    refuses the same change, from that session and from the Owner's token."""
    owner = world.users["owner"]
    enrolled_directly(owner)
    db.session.commit()
    client = login(owner, world.ws)
    set_check(client, owner, minutes_ago=60)
    page = client.post("/settings/reviews/schedule", data={"interval_days": "30",
                                                          "require_reason": "y"})
    assert page.status_code == 302 and "/verify" in page.location
    from_session = client.open("/api/v1/reviews/schedule", method="PATCH",
                               json={"require_reason": True})
    assert from_session.status_code == 403
    assert from_session.json["error"] == "mfa_step_up_required"
    token = api_of(app, world, "owner").patch("/reviews/schedule", {"interval_days": 7})
    assert token.status_code == 403 and token.json["error"] == "mfa_step_up_required"
    assert db.session.scalar(sa.select(rbac.models.ReviewSchedule)) is None
    set_check(client, owner, minutes_ago=1)
    fresh = client.open("/api/v1/reviews/schedule", method="PATCH", json={"interval_days": 7})
    assert fresh.status_code == 200 and fresh.json["interval_days"] == 7


def test_a_run_is_started_and_answered_only_by_who_may_read_it(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """A run lists members with their roles: roles.manage without settings.view starts,
    refreshes, decides and completes none, on the page and through the API alike."""
    manager = custom_role(world, "Role manager", [("roles", "view", "all"),
                                                  ("roles", "manage", "all")])
    give_role(world.members["member"], manager)
    db.session.commit()
    run = runs.start_run(rbac, access_of(world.members["owner"]), "")
    db.session.commit()
    item = run.items[0].id
    api = api_of(app, world, "member")
    page = login(world.users["member"], world.ws)
    assert page.post("/settings/reviews/runs", data={"resource": ""}).status_code == 403
    path = f"/reviews/runs/{run.id}"
    for response in (api.post("/reviews/runs", {}), api.post(f"{path}/refresh", {}),
                     api.post(f"{path}/decisions", {"item_id": item, "decision": "keep"}),
                     api.post(f"{path}/complete", {})):
        assert response.status_code == 403 and "view on settings" in response.text, response.json
    with pytest.raises(PermissionDenied):
        runs.start_run(rbac, access_of(world.members["member"]), "")
    db.session.rollback()
    R = rbac.models.CertificationRun
    assert db.session.scalar(sa.select(sa.func.count()).select_from(R)) == 1
