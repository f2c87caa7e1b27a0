"""Every CSV of records passes the export approval gate, as ``/leads/export.csv`` does.

A campaign's members CSV is an export of leads, and the settings members CSV
an export of members: over the workspace's threshold each waits (a page
gets 303 to the request, a JSON client 202), and once approved the
requester downloads the same rows the export would have given. Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.campaigns.models import Campaign
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals
from crm_rbac_plugin.certification import runs
from tests.rbac_helpers import (
    access_of,
    ask_for_approval,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
    give_role,
)
from tests.test_certification_api import api_of


def set_threshold(w: SimpleNamespace, rows: int) -> None:
    approvals.save(rbac, access_of(w.members["owner"]), {"operations": {"export": rows}})
    db.session.commit()


def latest_request() -> Any:
    R = rbac.models.ApprovalRequest
    db.session.expire_all()
    return db.session.scalar(sa.select(R).order_by(R.id.desc()))


def approve_and_download(requester: Any, approver: Any) -> Any:
    """Approve the latest request as ``approver``; return the requester's download."""
    req = latest_request()
    assert approver.post(f"/settings/approvals/{req.id}/approve",
                         data={"reason": "ok"}).status_code == 302
    req = latest_request()
    assert req.status == "executed", req.failure
    got = requester.post(f"/settings/approvals/{req.id}/download")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    return got


def asked(client: Any, path: str) -> Any:
    """The pending request a CSV over the threshold leads to: a JSON client is offered
    the ask (409), a page asks and is sent to the request (303)."""
    api = client.get(path, headers={"Accept": "application/json"})
    assert api.status_code == 409 and api.get_json()["status"] == "approval_required"
    assert ask_for_approval(client, path).status_code == 303
    return latest_request()


def cells(text: str) -> list[list[str]]:
    """The rows of a members CSV without their last column (the last activity)."""
    return [row[:-1] for row in csv.reader(io.StringIO(text))]


def test_campaign_members_csv_over_the_threshold_waits(world: SimpleNamespace,
                                                       login: Any) -> None:
    with rbac.system():
        for tag, lead in world.leads.items():
            lead.email = f"{tag}@leads.test"
        campaign = Campaign(workspace_id=world.ws.id, owner_id=world.users["member"].id,
                            name="All leads", subject="s", body="b")
        campaign.leads = list(world.leads.values())
        db.session.add(campaign)
        db.session.commit()
        cid = campaign.id
    admin = login(world.users["admin"], world.ws)
    owner = login(world.users["owner"], world.ws)
    direct = admin.get(f"/campaigns/{cid}/members.csv")
    assert direct.status_code == 200 and direct.text.count("\n") > 2
    set_threshold(world, 1)
    waits = ask_for_approval(admin, f"/campaigns/{cid}/members.csv")
    req = latest_request()
    assert waits.status_code == 303
    assert waits.headers["Location"].endswith(f"/settings/approvals/{req.id}")
    assert (req.status, req.operation, req.payload["via"]) == ("pending", "export", "campaign")
    api = admin.get(f"/campaigns/{cid}/members.csv", headers={"Accept": "application/json"})
    assert api.status_code == 409 and api.get_json()["status"] == "approval_required"
    got = approve_and_download(admin, owner)
    assert got.text == direct.text


def test_settings_members_csv_over_the_threshold_waits(world: SimpleNamespace,
                                                       login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    admin = login(world.users["admin"], world.ws)
    direct = owner.get("/settings/members.csv?sort=email")
    assert direct.status_code == 200 and direct.text.count("\n") > 2
    set_threshold(world, 1)
    waits = ask_for_approval(owner, "/settings/members.csv?sort=email")
    req = latest_request()
    assert waits.status_code == 303
    assert waits.headers["Location"].endswith(f"/settings/approvals/{req.id}")
    assert (req.status, req.operation, req.payload["via"]) == ("pending", "export", "members")
    api = owner.get("/settings/members.csv?sort=email", headers={"Accept": "application/json"})
    assert api.status_code == 409 and api.get_json()["status"] == "approval_required"
    got = approve_and_download(owner, admin)
    # The same rows in the same order; "Last activity" moves as the approver works.
    assert cells(got.text) == cells(direct.text) and len(cells(got.text)) > 3


def test_who_can_and_review_report_csvs_pass_the_members_gate(world: SimpleNamespace,
                                                               login: Any) -> None:
    """who-can.csv and a review's report.csv list members with their roles: like
    members.csv they need members.export and wait over the threshold, then download
    the rows the export would have given."""
    run = runs.start_run(rbac, access_of(world.members["owner"]), "")
    db.session.commit()
    paths = {"who_can": "/settings/who-can.csv?action=view&resource=leads",
             "review_report": f"/settings/reviews/runs/{run.id}/report.csv"}
    owner = login(world.users["owner"], world.ws)
    admin = login(world.users["admin"], world.ws)
    direct = {via: owner.get(path) for via, path in paths.items()}
    assert all(r.status_code == 200 and r.text.count("\n") > 2 for r in direct.values())
    set_threshold(world, 1)
    for via, path in paths.items():
        req = asked(owner, path)
        assert (req.status, req.operation, req.payload["via"], req.payload["resource"]) == (
            "pending", "export", via, "members")
        assert approve_and_download(owner, admin).text == direct[via].text
    # A role with settings.view but no members.export gets neither file.
    auditor = custom_role(world, "Auditor", [("settings", "view", "all")])
    give_role(world.members["viewer"], auditor)
    db.session.commit()
    viewer = login(world.users["viewer"], world.ws)
    for path in paths.values():
        assert viewer.get(path).status_code == 403


def test_the_api_review_report_csv_passes_the_members_gate(app: Flask, world: SimpleNamespace,
                                                           login: Any) -> None:
    """The JSON API's report.csv is the same file as the settings page's: without
    members.export it is refused, and over the threshold it answers 409 with the
    offer to ask, which, approved, downloads the page's file."""
    run = runs.start_run(rbac, access_of(world.members["owner"]), "")
    auditor = custom_role(world, "Auditor", [("settings", "view", "all")])
    give_role(world.members["viewer"], auditor)
    db.session.commit()
    path = f"/reviews/runs/{run.id}/report.csv"
    owner_api, viewer_api = api_of(app, world, "owner"), api_of(app, world, "viewer")
    assert viewer_api.get(f"/reviews/runs/{run.id}/report").status_code == 200
    refused = viewer_api.get(path)
    assert refused.status_code == 403 and "members.export" in refused.text
    direct = owner_api.get(path)
    assert direct.status_code == 200 and direct.text.count("\n") > 2
    events = db.session.scalar(sa.select(sa.func.count()).select_from(rbac.models.AuditEvent))
    set_threshold(world, 1)
    waits = owner_api.get(path)
    assert waits.status_code == 409 and waits.json["status"] == "approval_required"
    assert latest_request() is None  # a GET records nothing
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        rbac.models.AuditEvent)) == events + 1  # the threshold's own change, no export
    owner = login(world.users["owner"], world.ws)
    admin = login(world.users["admin"], world.ws)
    assert ask_for_approval(owner, f"/settings{path}").status_code == 303
    assert approve_and_download(owner, admin).text == direct.text


def test_the_audit_trail_csv_is_an_export(world: SimpleNamespace, login: Any) -> None:
    """Reading the trail takes settings.view; its CSV takes settings.export as well
    (no button without it) and, over the threshold, waits for approval, then
    downloads the rows the export would have given, with the same filters."""
    reader = custom_role(world, "Trail reader", [("settings", "view", "all")])
    give_role(world.members["viewer"], reader)
    db.session.commit()
    viewer = login(world.users["viewer"], world.ws)
    page = viewer.get("/settings/audit")
    assert page.status_code == 200 and "/settings/audit.csv" not in page.text
    refused = viewer.get("/settings/audit.csv")
    assert refused.status_code == 403 and "settings.export" in refused.text
    owner = login(world.users["owner"], world.ws)
    admin = login(world.users["admin"], world.ws)
    assert "/settings/audit.csv" in owner.get("/settings/audit").text
    path = "/settings/audit.csv?action=export"
    assert owner.get(path).status_code == 200  # under the threshold: audited as an export
    assert len(list(csv.reader(io.StringIO(owner.get(path).text)))) >= 2
    set_threshold(world, 1)
    req = asked(owner, path)
    assert (req.status, req.operation, req.payload["via"], req.payload["resource"]) == (
        "pending", "export", "audit", "settings")
    got = approve_and_download(owner, admin)
    rows = list(csv.reader(io.StringIO(got.text)))
    assert len(rows) > 2 and all(row[rows[0].index("action")] == "export" for row in rows[1:])
