"""The Certification pages: schedule, runs, decisions, the report (page and CSV), and who
reaches them. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles
from tests.rbac_helpers import (
    access_of,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
    give_role,
)
from tests.security.conftest import snapshot_database, snapshot_diff


def runs_count() -> int:
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(
        rbac.models.CertificationRun)))


def item_id(run_id: int, membership: Any) -> int:
    I = rbac.models.CertificationItem  # noqa: E741
    db.session.expire_all()
    return int(db.session.scalar(sa.select(I.id).where(I.run_id == run_id,
                                                       I.membership_id == membership.id)))


def start(client: Any, resource: str = "") -> int:
    response = client.post("/settings/reviews/runs", data={"resource": resource})
    assert response.status_code == 302, response.text[:500]
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])


def test_pages_reach_only_owners_and_admins(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    run_id = start(owner)
    urls = ["/settings/reviews", f"/settings/reviews/runs/{run_id}",
            f"/settings/reviews/runs/{run_id}/report", f"/settings/reviews/runs/{run_id}/report.csv"]
    for key in ("owner", "admin"):
        client = login(world.users[key], world.ws)
        for url in urls:
            assert client.get(url).status_code == 200, (key, url)
    for key in ("manager", "member", "viewer", "finance"):
        client = login(world.users[key], world.ws)
        for url in urls:
            assert client.get(url).status_code == 403, (key, url)
    # Another workspace's Owner gets a 404 for this workspace's run.
    other = login(world.users["dual"], world.ws2)
    for url in urls[1:]:
        assert other.get(url).status_code == 404, url


def test_schedule_page_saves_and_refuses_out_of_range(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    response = owner.post("/settings/reviews/schedule", data={"interval_days": "0"})
    assert response.status_code == 400 and "from 1 to 3650 days" in response.text
    assert db.session.scalar(sa.select(rbac.models.ReviewSchedule)) is None
    response = owner.post("/settings/reviews/schedule", data={"interval_days": "30",
                                                              "require_reason": "y"})
    assert response.status_code == 302
    row = db.session.scalar(sa.select(rbac.models.ReviewSchedule))
    assert row.interval_days == 30 and row.require_reason is True
    admin = login(world.users["admin"], world.ws)
    assert admin.post("/settings/reviews/schedule",
                      data={"interval_days": "60"}).status_code == 403
    db.session.expire_all()
    assert db.session.scalar(sa.select(rbac.models.ReviewSchedule)).interval_days == 30


def test_a_run_through_the_pages(world: SimpleNamespace, login: Any) -> None:
    member = world.members["member"]
    give_role(member, custom_role(world, "Tasks only", [("tasks", "view", "own")]))
    db.session.commit()
    admin = login(world.users["admin"], world.ws)
    run_id = start(admin, "deals")
    page = admin.get(f"/settings/reviews/runs/{run_id}")
    assert "Member" in page.text and "Your own access" in page.text
    # The Admin's own item is refused; the Owner decides it.
    own = admin.post(f"/settings/reviews/runs/{run_id}/decide",
                     data={"item_id": item_id(run_id, world.members["admin"]), "decision": "keep"})
    assert own.status_code == 403
    owner = login(world.users["owner"], world.ws)
    assert owner.post(f"/settings/reviews/runs/{run_id}/decide", data={
        "item_id": item_id(run_id, world.members["admin"]), "decision": "keep"}).status_code == 302
    # The Admin revokes the Owner: the role service refuses, the item shows it (not a 500).
    refused = admin.post(f"/settings/reviews/runs/{run_id}/decide", data={
        "item_id": item_id(run_id, world.members["owner"]), "decision": "revoke"},
        follow_redirects=True)
    assert refused.status_code == 200 and "refused" in refused.text
    revoked = admin.post(f"/settings/reviews/runs/{run_id}/decide", data={
        "item_id": item_id(run_id, member), "decision": "revoke", "reason": "moved teams"})
    assert revoked.status_code == 302
    db.session.expire_all()
    assert {mr.role.name for mr in db.session.get(type(member), member.id).member_roles} == {
        "Tasks only"}
    # Completing before every item is decided is a 409.
    assert admin.post(f"/settings/reviews/runs/{run_id}/complete").status_code == 409
    I = rbac.models.CertificationItem  # noqa: E741
    for ident in db.session.scalars(sa.select(I.id).where(I.run_id == run_id,
                                                          I.decision.is_(None))).all():
        assert admin.post(f"/settings/reviews/runs/{run_id}/decide", data={
            "item_id": ident, "decision": "keep"}).status_code == 302
    assert admin.post(f"/settings/reviews/runs/{run_id}/complete").status_code == 302
    report = admin.get(f"/settings/reviews/runs/{run_id}/report")
    assert report.status_code == 200 and "print.css" in report.text
    assert "Permission changes during the run" in report.text and "moved teams" in report.text
    rows = list(csv.reader(io.StringIO(admin.get(
        f"/settings/reviews/runs/{run_id}/report.csv").text)))
    assert ["Members and decisions"] in rows and any("moved teams" in r for r in rows)


def test_other_workspaces_items_are_404(world: SimpleNamespace, login: Any) -> None:
    owner2 = login(world.users["dual"], world.ws2)
    run2 = start(owner2)
    owner = login(world.users["owner"], world.ws)
    run1 = start(owner)
    M = rbac.models.Membership
    dual = db.session.scalar(sa.select(M).where(M.workspace_id == world.ws2.id,
                                                M.user_id == world.users["dual"].id))
    foreign_item = item_id(run2, dual)
    assert owner.post(f"/settings/reviews/runs/{run1}/decide", data={
        "item_id": foreign_item, "decision": "revoke"}).status_code == 404
    assert owner.post(f"/settings/reviews/runs/{run2}/complete").status_code == 404
    assert runs_count() == 2


def test_a_run_page_shows_department_roles_and_refreshes_changed_lines(
        world: SimpleNamespace, login: Any) -> None:
    owner_access = access_of(world.members["owner"])
    people = roles.create_role(rbac, owner_access, name="People admin",
                               grants=roles.parse_grants(rbac, ["members.view", "members.manage"]))
    roles.give_department_role(rbac, owner_access, world.departments["support"], people)
    db.session.commit()
    admin = login(world.users["admin"], world.ws)
    run_id = start(admin)
    viewer = world.members["viewer"]
    page = admin.get(f"/settings/reviews/runs/{run_id}")
    assert "People admin <small class=\"rbac-help\">(via department Support)</small>" in page.text
    decide = f"/settings/reviews/runs/{run_id}/decide"
    refused = admin.post(decide, data={"item_id": item_id(run_id, viewer), "decision": "revoke"})
    assert refused.status_code == 409 and "given to everyone in Support" in refused.text
    db.session.expire_all()
    assert [r.role.name for r in roles.member_group_roles(rbac, viewer)] == ["People admin"]
    # A role given after the line was shown: keeping it unseen is a 409 naming it.
    admin_role = db.session.scalar(sa.select(rbac.models.Role).where(
        rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == "admin"))
    roles.assign_role(rbac, owner_access, viewer, admin_role)
    db.session.commit()
    stale = admin.post(decide, data={"item_id": item_id(run_id, viewer), "decision": "keep"})
    assert stale.status_code == 409 and "roles changed since this line was listed" in stale.text
    assert "gained Admin" in stale.text
    # Viewing the run names the change and writes nothing; the reviewer's POST refreshes.
    before = snapshot_database()
    shown = admin.get(f"/settings/reviews/runs/{run_id}")
    assert snapshot_diff(before, snapshot_database()) == []
    assert "Roles changed since these lines were listed" in shown.text
    assert "Viewer gained Admin" in shown.text and "Admin, People admin" not in shown.text
    refreshed = admin.post(f"/settings/reviews/runs/{run_id}/refresh")
    assert refreshed.status_code == 302
    page = admin.get(f"/settings/reviews/runs/{run_id}")
    assert "Admin, People admin" in page.text and "1 line(s) refreshed" in page.text
    assert "Roles changed since these lines were listed" not in page.text
    kept = admin.post(decide, data={"item_id": item_id(run_id, viewer), "decision": "keep"})
    assert kept.status_code == 302
