"""The attack battery's approval probes: every attempt must fail, on SQLite and PostgreSQL.

Four families, each counted in the battery's summary with its successes
(which must be 0):

- **self-approval**: a requester approving their own request, through the
  page, the API (session and Bearer token) and the CLI;
- **approving without the permission**: every member who lacks
  ``approvals.decide`` approving and rejecting, through the page and the
  API; and members of another workspace naming the request's id;
- **replayed download links**: an approved export's link used a second
  time, by the requester and by others; forged, truncated and expired
  links; the POST download replayed;
- **a requester who lost their rights**: the right the operation needs
  taken away between the request and the approval: the approval fails with
  the reason and changes nothing; the requester deactivated: their pending
  requests are cancelled, and an approval is a 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, gate, roles, signals, team, tokens, workspaces
from crm_rbac_plugin.errors import RuleConflict
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import (
    access_of,
    ask_for_approval,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.security.conftest import logged_in
from tests.test_api import Api
from tests.test_settings_ui import role

APPROVERS = {"owner", "admin"}


def policy(w: SimpleNamespace, **ops: Any) -> None:
    approvals.save(rbac, access_of(w.members["owner"]), {"operations": ops})
    db.session.commit()


def status_of(rid: int) -> tuple[str, int]:
    db.session.expire_all()
    req = db.session.get(rbac.models.ApprovalRequest, rid)
    return req.status, len(req.decisions)


def pending_plan_change(w: SimpleNamespace) -> int:
    with pytest.raises(gate.ApprovalPending) as pending:
        roles.set_plan(rbac, access_of(w.members["owner"]), w.ws, "pro")
    return pending.value.request_id


def api_of(app: Flask, membership: Any) -> Api:
    _, plaintext = tokens.create_token(rbac, membership, "battery")
    db.session.commit()
    return Api(app, plaintext)


def test_self_approval_never_succeeds(app: Flask, world: SimpleNamespace,
                                      probe_stats: Counter[str]) -> None:
    policy(world, plan=True, delete_role=True)
    temp = roles.create_role(rbac, access_of(world.members["owner"]), name="Battery temp")
    db.session.commit()
    requests = {"owner": pending_plan_change(world)}
    with pytest.raises(gate.ApprovalPending) as pending:
        roles.delete_role(rbac, access_of(world.members["admin"]), temp)
    requests["admin"] = pending.value.request_id
    runner = app.test_cli_runner()
    for key, rid in requests.items():
        page = logged_in(app, world.users[key], world.ws)
        api = api_of(app, world.members[key])
        attempts = [
            lambda: page.post(f"/settings/approvals/{rid}/approve", data={"reason": "me"}),
            lambda: page.post(f"/api/v1/approvals/{rid}/approve", json={}),
            lambda: api.post(f"/approvals/{rid}/approve", {}),
        ]
        for attempt in attempts:
            response = attempt()
            probe_stats["approval_self_attempts"] += 1
            if response.status_code != 403 or status_of(rid) != ("pending", 0):
                probe_stats["approval_self_successes"] += 1
        out = runner.invoke(args=["rbac", "approvals", "approve", str(rid), "--workspace",
                                  "acme", "--as", f"{key}@example.test"])
        probe_stats["approval_self_attempts"] += 1
        if out.exit_code == 0 or status_of(rid) != ("pending", 0):
            probe_stats["approval_self_successes"] += 1
    assert probe_stats["approval_self_successes"] == 0
    db.session.refresh(world.ws)
    assert world.ws.plan == "enterprise"


def test_approving_without_the_permission_never_succeeds(
        app: Flask, world: SimpleNamespace, probe_stats: Counter[str]) -> None:
    policy(world, plan=True)
    rid = pending_plan_change(world)
    lacking = [k for k, ms in world.members.items()
               if k not in APPROVERS and not approvals.may_decide(
                   rbac, access_of(ms), "approvals.decide")]
    assert {"manager", "member", "viewer", "finance"} <= set(lacking)
    for key in lacking:
        page = logged_in(app, world.users[key], world.ws)
        api = api_of(app, world.members[key])
        for verb in ("approve", "reject"):
            for send in (lambda: page.post(f"/settings/approvals/{rid}/{verb}", data={}),
                         lambda: api.post(f"/approvals/{rid}/{verb}", {"reason": "x"})):
                response = send()
                probe_stats["approval_unauthorised_attempts"] += 1
                # Neither the requester nor an approver: the request is hidden (404).
                if response.status_code != 404 or status_of(rid) != ("pending", 0):
                    probe_stats["approval_unauthorised_successes"] += 1
    outsider = world.users["outsider"]  # a member of the other workspace only
    other = logged_in(app, outsider, world.ws2)
    dual_owner = logged_in(app, world.users["dual"], world.ws2)  # Owner of ws2
    for client in (other, dual_owner):
        for verb in ("approve", "reject", "cancel"):
            for url in (f"/settings/approvals/{rid}/{verb}", f"/api/v1/approvals/{rid}/{verb}"):
                response = client.post(url, json={}) if "/api/" in url else client.post(url)
                probe_stats["approval_unauthorised_attempts"] += 1
                if response.status_code != 404 or status_of(rid) != ("pending", 0):
                    probe_stats["approval_unauthorised_successes"] += 1
    assert probe_stats["approval_unauthorised_successes"] == 0


def approved_export(app: Flask, world: SimpleNamespace) -> tuple[int, str]:
    """An export of the Manager's approved by the Admin: (request id, the mailed link)."""
    links: list[str] = []

    def catch(sender: Any, **kw: Any) -> None:
        if kw["outcome"] == "download_ready":
            links.append(kw["link"])

    manager = logged_in(app, world.users["manager"], world.ws)
    asked = ask_for_approval(manager, "/leads/export.csv")
    assert asked.status_code == 303
    rid = int(asked.headers["Location"].rsplit("/", 1)[1])
    with signals.approval_decided.connected_to(catch, app):
        ok = logged_in(app, world.users["admin"], world.ws).post(
            f"/settings/approvals/{rid}/approve")
    assert ok.status_code == 302 and status_of(rid)[0] == "executed" and len(links) == 1
    return rid, links[0]


def test_replayed_and_forged_download_links_never_succeed(
        app: Flask, world: SimpleNamespace, probe_stats: Counter[str]) -> None:
    policy(world, export=1)
    rid, link = approved_export(app, world)
    manager = logged_in(app, world.users["manager"], world.ws)
    others = [logged_in(app, world.users[k], world.ws) for k in ("admin", "owner", "member")]
    others.append(logged_in(app, world.users["outsider"], world.ws2))
    token = link.rsplit("/", 1)[1]
    forged = [token[:-1] + ("A" if token[-1] != "A" else "B"), token[:30], token + "x",
              hashlib.sha256(token.encode()).hexdigest(), "0" * 43]
    for client in others:  # the link is the requester's alone, even before it is used
        for url in [link, *(link.replace(token, f) for f in forged)]:
            probe_stats["approval_link_attempts"] += 1
            if client.get(url).status_code != 404:
                probe_stats["approval_link_successes"] += 1
    first = manager.get(link)
    assert first.status_code == 200 and first.mimetype == "text/csv"  # the one honest use
    replays = [lambda: manager.get(link), lambda: manager.post(f"/settings/approvals/{rid}/download"),
               *(lambda f=f: manager.get(link.replace(token, f)) for f in forged),
               lambda: app.test_client().get(link)]
    for replay in replays:
        response = replay()
        probe_stats["approval_link_attempts"] += 1
        if response.status_code not in (302, 401, 404) or response.mimetype == "text/csv":
            probe_stats["approval_link_successes"] += 1
    # An expired link: a second approved export whose 24 hours are over.
    rid2, link2 = approved_export(app, world)
    db.session.get(rbac.models.ApprovalRequest, rid2).download_expires_at = (
        utcnow() - dt.timedelta(seconds=1))
    db.session.commit()
    for send in (lambda: manager.get(link2),
                 lambda: manager.post(f"/settings/approvals/{rid2}/download")):
        probe_stats["approval_link_attempts"] += 1
        if send().status_code != 404:
            probe_stats["approval_link_successes"] += 1
    assert probe_stats["approval_link_successes"] == 0


def _lose_role(world: SimpleNamespace, key: str, to: str = "viewer") -> None:
    membership = world.members[key]
    workspaces.assign_role(rbac, membership, role(world, to))
    for mr in list(membership.member_roles):
        if mr.role.key != to:
            db.session.delete(mr)
    db.session.commit()


def test_a_requester_who_lost_their_rights_never_succeeds(
        app: Flask, world: SimpleNamespace, probe_stats: Counter[str]) -> None:
    policy(world, delete_role=True, export=1, plan=True)
    owner = access_of(world.members["owner"])
    temp = roles.create_role(rbac, owner, name="Battery role A")
    temp2 = roles.create_role(rbac, owner, name="Battery role B")
    db.session.commit()
    ids = (temp.id, temp2.id)
    with pytest.raises(gate.ApprovalPending) as a:
        roles.delete_role(rbac, access_of(world.members["admin"]), temp)
    with pytest.raises(gate.ApprovalPending) as b:
        roles.delete_role(rbac, access_of(world.members["admin"]), temp2)
    manager = logged_in(app, world.users["manager"], world.ws)
    export_rid = int(ask_for_approval(manager, "/leads/export.csv").headers["Location"]
                     .rsplit("/", 1)[1])
    # A second Owner asks for a plan change, then is no longer an Owner.
    workspaces.assign_role(rbac, world.members["finance"], role(world, "owner"))
    db.session.commit()
    with pytest.raises(gate.ApprovalPending) as c:
        roles.set_plan(rbac, access_of(world.members["finance"]), world.ws, "free")

    _lose_role(world, "manager")  # Viewer: no export right any more
    _lose_role(world, "finance", "finance")  # no longer an Owner
    with app.test_request_context():
        team.deactivate(rbac, owner, world.members["admin"])
    db.session.commit()
    # The deactivation cancelled the admin's pending requests: nobody can approve them.
    for rid in (a.value.request_id, b.value.request_id):
        probe_stats["approval_lost_rights_attempts"] += 1
        with pytest.raises(RuleConflict):
            approvals.approve(rbac, owner, db.session.get(rbac.models.ApprovalRequest, rid),
                              "battery")
        db.session.rollback()
        if status_of(rid) != ("cancelled", 0):
            probe_stats["approval_lost_rights_successes"] += 1
    cases = [(export_rid, "manager lost export"), (c.value.request_id, "no longer an Owner")]
    exports = db.session.scalar(sa.select(sa.func.count()).where(
        rbac.models.AuditEvent.action == "export"))
    succeeded = []
    for rid, what in cases:
        outcome = approvals.approve(rbac, owner, db.session.get(rbac.models.ApprovalRequest, rid),
                                    "battery")
        db.session.commit()
        probe_stats["approval_lost_rights_attempts"] += 1
        req = db.session.get(rbac.models.ApprovalRequest, rid)
        if outcome != "failed" or req.status != "failed" or not req.failure:
            probe_stats["approval_lost_rights_successes"] += 1
            succeeded.append(what)
    assert not succeeded, succeeded
    db.session.expire_all()
    still = [db.session.get(rbac.models.Role, i) is not None for i in ids]
    assert still == [True, True]
    assert db.session.get(rbac.models.Workspace, world.ws.id).plan == "enterprise"
    assert db.session.scalar(sa.select(sa.func.count()).where(
        rbac.models.AuditEvent.action == "export")) == exports
    assert db.session.get(rbac.models.ApprovalRequest, export_rid).download_hash is None
    assert probe_stats["approval_lost_rights_successes"] == 0
