"""Approval workflows through the pages, the JSON API and the CLI, on SQLite and PostgreSQL.

The export path end to end: a Manager's export over the threshold is a
request (a page, or HTTP 202), the Admin approves it, the Manager downloads
the file once; a second download, a forged token and another member's
attempt are 404s.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, gate, roles, signals
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import (
    access_of,
    ask_for_approval,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.security.test_hidden_field_sweep import RANDOM_TOKENS


def set_policy(w: SimpleNamespace, **changes: Any) -> None:
    approvals.save(rbac, access_of(w.members["owner"]), changes)
    db.session.commit()


def client_of(login: Any, w: SimpleNamespace, key: str) -> Any:
    return login(w.users[key], w.ws)


def latest_request() -> Any:
    R = rbac.models.ApprovalRequest
    db.session.expire_all()
    return db.session.scalar(sa.select(R).order_by(R.id.desc()))


def test_export_over_threshold_waits_then_downloads_once(world: SimpleNamespace, login: Any,
                                                         app: Any) -> None:
    set_policy(world, operations={"export": 1})
    links: list[str] = []

    def mailed(sender: Any, **kw: Any) -> None:
        if kw["outcome"] == "download_ready":
            links.append(kw["link"])

    signals.approval_decided.connect(mailed, app)
    manager, admin = client_of(login, world, "manager"), client_of(login, world, "admin")
    small = manager.get("/leads/export.csv?q=Lead+of+manager")
    assert small.status_code == 200 and small.text.count("\n") == 2  # 1 row: under the threshold

    asked = ask_for_approval(manager, "/leads/export.csv", "quarterly review")
    assert asked.status_code == 303
    req = latest_request()
    assert asked.headers["Location"].endswith(f"/settings/approvals/{req.id}")
    assert (req.status, req.operation, req.reason) == ("pending", "export", "quarterly review")
    page = manager.get(f"/settings/approvals/{req.id}")
    assert page.status_code == 200 and "pending approval" in page.text
    assert manager.post(f"/settings/approvals/{req.id}/approve").status_code == 403

    listing = admin.get("/settings/approvals")
    assert f'data-rbac-approval="{req.id}"' in listing.text
    done = admin.post(f"/settings/approvals/{req.id}/approve", data={"reason": "ok"})
    assert done.status_code == 302
    req = latest_request()
    assert req.status == "executed", req.failure
    assert admin.post(f"/settings/approvals/{req.id}/download").status_code == 403

    page = manager.get(f"/settings/approvals/{req.id}")
    assert "data-rbac-download" in page.text
    got = manager.post(f"/settings/approvals/{req.id}/download")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert "Lead of member" in got.text and "Lead of manager" in got.text
    assert "Lead of member2" not in got.text  # the Manager's team only, as their own export
    assert manager.post(f"/settings/approvals/{req.id}/download").status_code == 404
    assert links and manager.get(links[0]).status_code == 404  # the link is spent too
    assert manager.get("/settings/approvals/download/" + "x" * 43).status_code == 404
    signals.approval_decided.disconnect(mailed, app)


def test_exports_add_up_per_member_over_a_day(world: SimpleNamespace, login: Any) -> None:
    """Exports of one row against a threshold of 2: the third in a day waits, as one of 3 would."""
    set_policy(world, operations={"export": 2})
    manager, admin = client_of(login, world, "manager"), client_of(login, world, "admin")
    one = "/leads/export.csv?q=Lead+of+manager"
    for _ in range(2):
        got = manager.get(one)
        assert got.status_code == 200 and got.text.count("\n") == 2  # 1 row; 2 in the day
    asked = ask_for_approval(manager, one)
    assert asked.status_code == 303
    req = latest_request()
    assert (req.status, req.operation) == ("pending", "export")
    assert req.summary.endswith("(2 more in the last 24 hours)")
    assert admin.get(one).status_code == 200  # another member's day

    C = rbac.models.AlertCounter
    with rbac.system():  # a day later: the manager's rows leave the window
        for counter in db.session.scalars(sa.select(C).where(C.rule == "approval.export")):
            counter.window_start -= dt.timedelta(hours=24)
        db.session.commit()
    assert manager.get(one).status_code == 200


def test_api_answers_202_and_decides(world: SimpleNamespace, login: Any) -> None:
    set_policy(world, operations={"delete_role": True})
    from crm_rbac_plugin import roles
    temp_id = roles.create_role(rbac, access_of(world.members["owner"]), name="Temp").id
    db.session.commit()
    owner, admin, viewer = (client_of(login, world, k) for k in ("owner", "admin", "viewer"))
    r = admin.delete(f"/api/v1/roles/{temp_id}", json={"reason": "unused"})
    assert r.status_code == 202, r.text
    body = r.get_json()
    assert body["status"] == "pending_approval"
    rid = body["request_id"]
    db.session.expire_all()
    assert db.session.get(rbac.models.Role, temp_id) is not None
    assert admin.get(f"/api/v1/approvals/{rid}").get_json()["reason"] == "unused"
    assert viewer.get(f"/api/v1/approvals/{rid}").status_code == 404
    assert admin.post(f"/api/v1/approvals/{rid}/approve", json={}).status_code == 403
    assert viewer.post(f"/api/v1/approvals/{rid}/approve", json={}).status_code == 404
    bad = owner.post(f"/api/v1/approvals/{rid}/approve", json={"reason": 5})
    assert bad.status_code == 400 and bad.get_json()["field"] == "reason"
    ok = owner.post(f"/api/v1/approvals/{rid}/approve", json={"reason": "fine"})
    assert ok.status_code == 200 and ok.get_json()["status"] == "executed"
    assert owner.post(f"/api/v1/approvals/{rid}/approve", json={}).status_code == 409
    assert owner.post(f"/api/v1/approvals/{rid}/reject").status_code == 409
    db.session.expire_all()
    assert db.session.get(rbac.models.Role, temp_id) is None
    listed = owner.get("/api/v1/approvals").get_json()
    assert [r["id"] for r in listed["history"]] == [rid]
    assert [r["id"] for r in admin.get("/api/v1/approvals").get_json()["mine"]] == [rid]
    policy = owner.get("/api/v1/approvals/policy").get_json()
    assert policy["operations"] == {"delete_role": 0}
    bad = owner.patch("/api/v1/approvals/policy", json={"operations": {"export": -5}})
    assert bad.status_code == 400 and bad.get_json()["field"] == "operations.export"
    bad = owner.patch("/api/v1/approvals/policy", json={"approvals_required": 7})
    assert bad.status_code == 400 and bad.get_json()["field"] == "approvals_required"
    assert admin.patch("/api/v1/approvals/policy", json={"expiry_hours": 5}).status_code == 403
    ok = owner.patch("/api/v1/approvals/policy", json={"operations": {"export": 10}})
    assert ok.status_code == 200 and ok.get_json()["operations"] == {"export": 10}


def test_cli_lists_and_decides(world: SimpleNamespace, app: Any) -> None:
    set_policy(world, operations={"plan": True})
    from crm_rbac_plugin import roles
    from crm_rbac_plugin.gate import ApprovalPending
    with pytest.raises(ApprovalPending) as pending:
        roles.set_plan(rbac, access_of(world.members["owner"]), world.ws, "pro")
    rid = pending.value.request_id
    runner = app.test_cli_runner()
    out = runner.invoke(args=["rbac", "approvals", "list", "--workspace", "acme"])
    assert out.exit_code == 0 and f"#{rid}" in out.output and "pending" in out.output
    refused = runner.invoke(args=["rbac", "approvals", "approve", str(rid), "--as",
                                  "owner@example.test", "--workspace", "acme"])
    assert refused.exit_code != 0 and "own request" in refused.output
    done = runner.invoke(args=["rbac", "approvals", "reject", str(rid), "--as",
                               "admin@example.test", "--workspace", "acme", "--reason", "no"])
    assert done.exit_code == 0, done.output
    db.session.expire_all()
    assert db.session.get(rbac.models.ApprovalRequest, rid).status == "rejected"
    assert db.session.get(rbac.models.Workspace, world.ws.id).plan == "enterprise"


def test_pages_for_whom_they_are(world: SimpleNamespace, login: Any) -> None:
    set_policy(world, operations={"plan": True})
    owner = client_of(login, world, "owner")
    r = owner.post("/settings/plan", data={"plan": "pro", "reason": "page"})
    assert r.status_code == 303
    rid = int(re.search(r"/approvals/(\d+)", r.headers["Location"]).group(1))
    for key in ("viewer", "member", "manager"):
        c = client_of(login, world, key)
        assert c.get("/settings/approvals").status_code == 200
        assert c.get(f"/settings/approvals/{rid}").status_code == 404
        assert c.post(f"/settings/approvals/{rid}/approve").status_code == 404
        assert c.get("/settings/approvals/policy").status_code == 403
    admin = client_of(login, world, "admin")
    assert admin.post(f"/settings/approvals/{rid}/cancel").status_code == 403
    assert owner.post(f"/settings/approvals/{rid}/cancel", data={"reason": "x"}).status_code == 302
    assert latest_request().status == "cancelled"
    again = admin.post(f"/settings/approvals/{rid}/approve")
    assert again.status_code == 409 and "already cancelled" in again.text
    bad = owner.post("/settings/approvals/policy", data={
        "op_export": "y", "n_export": "-3", "approvals_required": "1",
        "approver_permission": "approvals.decide", "expiry_hours": "72"})
    assert bad.status_code == 400
    saved = owner.post("/settings/approvals/policy", data={
        "op_export": "y", "n_export": "50", "approvals_required": "2",
        "approver_permission": "approvals.decide", "expiry_hours": "24"})
    assert saved.status_code == 302
    assert approvals.settings_for(rbac, world.ws.id).operations == {"export": 50}


@pytest.mark.parametrize("emptied", [("export",), ("bulk_delete",), ("export", "bulk_delete")])
def test_a_ticked_threshold_left_empty_is_refused_naming_it(world: SimpleNamespace, login: Any,
                                                            emptied: tuple[str, ...]) -> None:
    """An empty "over N rows" is no N = 0 (every export waiting): a 400 naming the field,
    nothing saved; the service refuses blank text as a threshold too."""
    set_policy(world, operations={"export": 5, "bulk_delete": 2})
    form = {"op_export": "y", "n_export": "5", "op_bulk_delete": "y", "n_bulk_delete": "2",
            "approvals_required": "1", "approver_permission": "approvals.decide",
            "expiry_hours": "48"}
    form.update({f"n_{name}": "" for name in emptied})
    bad = client_of(login, world, "owner").post("/settings/approvals/policy", data=form)
    assert bad.status_code == 400
    assert "operations." + emptied[0] in bad.text or "whole number" in bad.text
    db.session.expire_all()
    assert approvals.settings_for(rbac, world.ws.id).operations == {"export": 5,
                                                                     "bulk_delete": 2}
    with pytest.raises(ValidationError) as refused:
        approvals.save(rbac, access_of(world.members["owner"]), {"operations": {"export": ""}})
    assert refused.value.field == "operations.export"


POST_ROUTES = [f"/settings/approvals/{{}}/{name}" for name in
               ("download", "approve", "reject", "cancel")] + [
    f"/api/v1/approvals/{{}}/{name}" for name in ("approve", "reject", "cancel")]


@pytest.mark.parametrize("route", POST_ROUTES)
def test_a_request_one_may_not_see_answers_every_post_as_a_missing_one(
        world: SimpleNamespace, login: Any, route: str) -> None:
    """Neither the requester nor an approver: an existing id and a missing one look alike."""
    set_policy(world, operations={"plan": True})
    asked = client_of(login, world, "owner").post("/settings/plan",
                                                   data={"plan": "pro", "reason": "x"})
    rid = int(re.search(r"/approvals/(\d+)", asked.headers["Location"]).group(1))
    for key in ("viewer", "member", "manager"):
        c = client_of(login, world, key)
        send = ((lambda url: c.post(url, json={})) if route.startswith("/api/")
                else (lambda url: c.post(url, data={"reason": "x"})))
        hidden, missing = send(route.format(rid)), send(route.format(rid + 1000))
        assert hidden.status_code == missing.status_code == 404, (key, hidden.text)
        assert (RANDOM_TOKENS.sub("", hidden.get_data(as_text=True))
                == RANDOM_TOKENS.sub("", missing.get_data(as_text=True)))
    assert latest_request().status == "pending"


def test_a_cli_change_that_needs_approval_says_so_and_changes_nothing(
        world: SimpleNamespace, app: Any) -> None:
    set_policy(world, operations={"security_policy": True})
    out = app.test_cli_runner().invoke(args=[
        "rbac", "security", "set", "--workspace", "acme", "--as", "owner@example.test",
        "idle_minutes_member=60"])
    assert "Pending approval: request #" in out.output
    req = latest_request()
    assert (req.operation, req.status, req.payload) == (
        "security_policy", "pending",
        {"fields": {"idle_minutes_member": {"before": 480, "after": 60}}})
    from crm_rbac_plugin.security.policy import policy_for
    assert policy_for(rbac, world.ws.id).idle_minutes_member == 480


def test_an_export_the_app_cannot_replay_is_refused_not_recorded(world: SimpleNamespace,
                                                                 login: Any) -> None:
    """Flask-Admin's export keeps its filters in the request; the demo registers no
    producer for it (``via="admin"``), so an approved request could only fail. Over
    the threshold it is refused with a message naming the way that works, and no
    request or notification is written."""
    set_policy(world, operations={"export": 1})
    manager = client_of(login, world, "manager")
    R, N = rbac.models.ApprovalRequest, rbac.models.Notification
    with rbac.system():
        before = (db.session.scalar(sa.select(sa.func.count()).select_from(R)),
                  db.session.scalar(sa.select(sa.func.count()).select_from(N)))
    refused = manager.get("/admin/leads/export/csv/")
    assert refused.status_code == 409 and refused.mimetype == "text/html"
    assert "export from the record&#39;s list page instead" in refused.text
    assert 'name="token"' not in refused.text  # nothing to ask for
    with rbac.system():
        after = (db.session.scalar(sa.select(sa.func.count()).select_from(R)),
                 db.session.scalar(sa.select(sa.func.count()).select_from(N)))
    assert after == before
    assert manager.get("/leads/export.csv?q=Lead+of+manager").status_code == 200


def test_the_request_page_shows_what_would_change(world: SimpleNamespace, login: Any) -> None:
    """The approver decides on the change itself: a settings request's fields before and
    after, an assignment's member, role (with what it grants), condition and end."""
    set_policy(world, operations={"approval_policy": True, "assign_privileged_role": True})
    owner = access_of(world.members["owner"])
    with pytest.raises(gate.ApprovalPending) as policy_wait:
        approvals.save(rbac, owner, {"approvals_required": 2, "expiry_hours": 1})
    ops = custom_role(world, "Ops2", [("members", "manage", "all")])
    db.session.commit()
    until = utcnow() + dt.timedelta(days=3)
    with pytest.raises(gate.ApprovalPending) as role_wait:
        roles.assign_role(rbac, owner, world.members["member"], ops, expires_at=until,
                          condition={"networks": ["10.0.0.0/8"]})
    admin = client_of(login, world, "admin")
    page = admin.get(f"/settings/approvals/{policy_wait.value.request_id}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Change approvals_required" in text and "1 → 2" in text and "72 → 1" in text
    page = admin.get(f"/settings/approvals/{role_wait.value.request_id}")
    text = html.unescape(page.text)
    member = world.members["member"]
    assert f"{member.display_name} (#{member.id})" in text
    assert f"Ops2 (#{ops.id})" in text and "members.manage (all)" in text
    assert "networks 10.0.0.0/8" in text and until.isoformat()[:10] in text
