"""A link never files an approval request: a GET that needs approval records nothing.

An export over the workspace's threshold is a link. If following it recorded
a request, a link on another site (a browser sends the member's cookies with
it) would file requests in the member's name, with a reason of the link's
choosing, and notify every approver. A GET answers with an offer instead: a
signed token that only a POST of the same member, with their reason, turns
into a request (:mod:`crm_rbac_plugin.approvals.asking`).
"""

from __future__ import annotations

import re
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals
from crm_rbac_plugin.approvals import asking
from tests.rbac_helpers import (
    access_of,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.security.conftest import logged_in
from tests.security.test_get_writes import get_urls


def set_policy(w: SimpleNamespace, ws: Any = None, **operations: Any) -> None:
    owner = w.members["owner"] if ws is None else ws
    approvals.save(rbac, access_of(owner), {"operations": operations})
    db.session.commit()


def counts() -> tuple[int, int, int]:
    m = rbac.models
    with rbac.system():
        return tuple(int(db.session.scalar(sa.select(sa.func.count()).select_from(model)))
                     for model in (m.ApprovalRequest, m.Notification, m.AuditEvent))  # type: ignore[return-value]


def offered_token(response: Any) -> str:
    found = re.search(r'name="token" value="([^"]+)"', response.text)
    assert found is not None, response.text[:400]
    return found.group(1)


def test_an_export_link_records_nothing_and_offers_to_ask(world: SimpleNamespace,
                                                          login: Any) -> None:
    set_policy(world, export=1)
    manager = login(world.users["manager"], world.ws)
    before = counts()
    offer = manager.get("/leads/export.csv?reason=Urgent:+approve+now")
    assert offer.status_code == 200 and "data-rbac-approval-required" in offer.text
    assert "needs approval" in offer.text and 'action="/settings/approvals/ask"' in offer.text
    assert counts() == before  # no request, no notification, no audit event

    as_json = manager.get("/leads/export.csv", headers={"Accept": "application/json"})
    assert as_json.status_code == 409 and as_json.json["status"] == "approval_required"
    ask = as_json.json["ask"]
    assert ask["url"] == "/settings/approvals/ask" and counts() == before
    asked = manager.post(ask["url"], json={"token": ask["token"], "reason": "quarterly"},
                         headers={"Accept": "application/json"})
    assert asked.status_code == 202 and asked.json["status"] == "pending_approval"
    req = db.session.get(rbac.models.ApprovalRequest, asked.json["request_id"])
    assert (req.operation, req.reason, req.status) == ("export", "quarterly", "pending")
    assert req.requester_id == world.members["manager"].id


def test_the_members_export_link_records_nothing(world: SimpleNamespace, login: Any) -> None:
    set_policy(world, export=1)
    owner = login(world.users["owner"], world.ws)
    before = counts()
    offer = owner.get("/settings/members.csv")
    assert offer.status_code == 200 and counts() == before
    asked = owner.post("/settings/approvals/ask",
                       data={"token": offered_token(offer), "reason": "audit"})
    assert asked.status_code == 303 and "/settings/approvals/" in asked.headers["Location"]
    assert counts()[0] == before[0] + 1


@pytest.mark.parametrize("case", ["forged", "truncated", "someone_else", "expired", "missing"])
def test_an_offer_is_good_only_for_its_member_and_for_an_hour(
        world: SimpleNamespace, login: Any, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    set_policy(world, export=1)
    manager = login(world.users["manager"], world.ws)
    token = offered_token(manager.get("/leads/export.csv"))
    asker = manager
    if case == "forged":
        token = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    elif case == "truncated":
        token = token[: len(token) // 2]
    elif case == "someone_else":
        asker = login(world.users["admin"], world.ws)
    elif case == "expired":
        monkeypatch.setattr(asking, "MAX_AGE_SECONDS", -1)
    elif case == "missing":
        token = ""
    before = counts()
    refused = asker.post("/settings/approvals/ask", data={"token": token, "reason": "x"})
    assert refused.status_code == 400, refused.text[:300]
    assert "token" in refused.text
    assert counts() == before


def test_no_get_route_records_a_request(app: Flask, security_world: SimpleNamespace,
                                        probe_stats: Counter[str]) -> None:
    """Every GET route, as every member, with the lowest export threshold and every
    operation the policy can name: no request, and so no approver is told anything."""
    w = security_world
    M = rbac.models.Membership
    for ws_id in {p.workspace_id for p in w.probers}:
        owner = next(a for a in (rbac.access_for(mid) for mid in db.session.scalars(
            sa.select(M.id).where(M.workspace_id == ws_id, M.status == "active")))
            if a is not None and a.is_owner)
        approvals.save(rbac, owner, {"operations": {
            "export": 1, "bulk_delete": 1, "assign_privileged_role": True, "sharing": True,
            "delete_role": True, "reassign": True, "plan": True, "security_policy": True}})
        db.session.commit()
    R = rbac.models.ApprovalRequest
    before = int(db.session.scalar(sa.select(sa.func.count()).select_from(R)))
    asked = offers = 0
    for prober in w.probers:
        client = logged_in(app, prober.user, prober.workspace)
        token = {"Authorization": f"Bearer {prober.token}"}
        for url in get_urls(app, w, prober):
            response = client.get(url, headers=token if url.startswith("/api/") else {})
            asked += 1
            offers += response.status_code == 200 and b"data-rbac-approval-required" in (
                response.data)
    db.session.expire_all()
    after = int(db.session.scalar(sa.select(sa.func.count()).select_from(R)))
    probe_stats["approval_get_requests"] += asked
    probe_stats["approval_get_recorded"] += after - before
    assert after == before, f"{after - before} request(s) recorded by GET requests"
    assert offers > 0, "no GET route met the export threshold: the sweep tested nothing"
