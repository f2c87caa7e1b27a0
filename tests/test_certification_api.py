"""The access-review API: schedule, runs, decisions, report; who may do what. SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from tests.rbac_helpers import custom_role, give_role
from tests.test_api import Api


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
        rbac.models.Membership).where(rbac.models.Membership.workspace_id == world.ws2.id)),
        "other")[1])
    db.session.commit()
    for url in (path, f"{path}/report", f"{path}/report.csv"):
        assert other.get(url).status_code == 404, url
    assert other.post(f"{path}/complete").status_code == 404


